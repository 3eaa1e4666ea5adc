/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: the checks one ServiceEvent must pass to be counted, as listed
 * in DESIGN.md. Pure functions: no allocation, no I/O, no clock (the caller
 * passes "now"), so they are cheap on the hot path and easy to table-test.
 * The same checks serve the protobuf and the JSON paths.
 */
#ifndef KANAL_VALIDATE_H
#define KANAL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "kanal/v1/events.pb-c.h"

struct source;

struct validate_limits {
	int64_t max_age_ms;	/* oldest accepted: now - max_age_ms */
	int64_t max_ahead_ms;	/* newest accepted: now + max_ahead_ms */
};

/*
 * Checks one event sent by src (NULL skips the grant check). Returns 0
 * (KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED) when it is accepted,
 * else the reason, with a human-readable message in msg (never containing
 * the citizen_ref). Can't fail otherwise.
 */
Kanal__V1__RejectReason validate_event(const Kanal__V1__ServiceEvent *ev,
    const struct source *src, int64_t now_ms,
    const struct validate_limits *lim, char *msg, size_t msglen);

/* Syntax checks, exposed for kanalctl and tests: 1 if valid. */
int validate_service_code(const char *s, size_t len);
int validate_region_code(const char *s, size_t len);
/* 1 if exactly 16 ASCII digits: the shape of a raw NIK. */
int validate_looks_like_nik(const uint8_t *s, size_t len);
/* 1..64 bytes of printable ASCII. */
int validate_batch_id(const char *s, size_t len);

/* Lower-case storage names ("web", "completed"); NULL if out of range. */
const char *validate_channel_name(int channel);
const char *validate_outcome_name(int outcome);
/* Short snake_case name of a reason, as in docs and metrics. */
const char *validate_reason_name(Kanal__V1__RejectReason r);

#define VALIDATE_CHANNEL_MAX 9	/* highest known Channel number */
#define VALIDATE_OUTCOME_MAX 3

#endif
