/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: sends EventBatches to kanald, for kanalctl send and demo.
 *
 * Builds the request (protobuf body, bearer token), and decodes the answer:
 * a BatchAck on 200, the "reason: message" line otherwise. A transport
 * error or a 503 is retried with the same batch_id, so a batch is never
 * counted twice by a retry (kanald remembers batch_ids).
 */
#ifndef KANAL_CLIENT_H
#define KANAL_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kanal/v1/events.pb-c.h"

struct httpc;
struct httpc_response;

struct client_result {
	int status;			/* HTTP status; 0 = no answer */
	Kanal__V1__BatchAck *ack;	/* on 200; free with client_result_clear */
	char error[512];		/* reason line, or transport error */
};

/*
 * When and how often client_post tries again: on a transport error
 * (except one httpc_error_is_final calls final: a refused certificate),
 * 429 and any 5xx, waiting base_ms, then twice as long each time up to cap_ms,
 * or what Retry-After says (seconds, at most 300) when the answer has it.
 * No try starts after deadline_ms (client_now_ms() time; 0: none).
 * notify, if set, is called before each wait with why the try failed.
 */
struct client_retry {
	int attempts;		/* tries in all, at least 1 */
	int64_t deadline_ms;
	unsigned base_ms;
	unsigned cap_ms;
	void (*notify)(void *arg, int attempt, unsigned wait_ms,
	    const char *why);
	void *arg;
};

/*
 * POSTs body (content type ctype) to /v1/events with the bearer token,
 * retrying as rp says; the body is the same every time, so a batch keeps
 * its batch_id. Returns 0 with *r the last HTTP answer (any status; its
 * body is the httpc's), or -1 with err set when none came.
 */
int client_post(struct httpc *c, const char *token, const char *ctype,
    const void *body, size_t len, const struct client_retry *rp,
    struct httpc_response *r, char *err, size_t errlen);

/*
 * POSTs batch to /v1/events. attempts: how many times to try on transport
 * errors, 429 and 5xx (waiting Retry-After, else 1 s, between). Returns 0
 * when an HTTP answer came (any status), -1 when none did.
 */
int client_send(struct httpc *c, const char *token,
    const Kanal__V1__EventBatch *batch, int attempts,
    struct client_result *res);
void client_result_clear(struct client_result *res);

/* Prints the answer as kanalctl send shows it. */
void client_print_result(FILE *out, const struct client_result *res);

/* Fills buf with 2*n hex digits of fresh randomness and a NUL. 0 or -1. */
int client_random_hex(char *buf, size_t n);

/* Channel and outcome numbers from their stored names; -1 if unknown. */
int client_channel_parse(const char *name);
int client_outcome_parse(const char *name);

/* Unix time in milliseconds. */
int64_t client_now_ms(void);

#endif
