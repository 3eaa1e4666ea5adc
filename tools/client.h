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

struct client_result {
	int status;			/* HTTP status; 0 = no answer */
	Kanal__V1__BatchAck *ack;	/* on 200; free with client_result_clear */
	char error[512];		/* reason line, or transport error */
};

/*
 * POSTs batch to /v1/events. attempts: how many times to try on transport
 * errors and 503 (waiting Retry-After, at least 1 s, between). Returns 0
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
