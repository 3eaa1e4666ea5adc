/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: see client.h.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "httpc.h"
#include "validate.h"

int64_t
client_now_ms(void)
{
	return clock_wall_ms();
}

int
client_random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];

	if (n > sizeof(raw) || getrandom(raw, n, 0) != (ssize_t)n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[2 * n] = '\0';
	return 0;
}

int
client_channel_parse(const char *name)
{
	for (int i = 1; i <= VALIDATE_CHANNEL_MAX; i++)
		if (strcmp(name, validate_channel_name(i)) == 0)
			return i;
	return -1;
}

int
client_outcome_parse(const char *name)
{
	for (int i = 0; i <= VALIDATE_OUTCOME_MAX; i++)
		if (strcmp(name, validate_outcome_name(i)) == 0)
			return i;
	return -1;
}

void
client_result_clear(struct client_result *res)
{
	if (res->ack != NULL)
		kanal__v1__batch_ack__free_unpacked(res->ack, NULL);
	res->ack = NULL;
}

static int
retryable(int status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

int
client_post(struct httpc *c, const char *token, const char *ctype,
    const void *body, size_t len, const struct client_retry *rp,
    struct httpc_response *r, char *err, size_t errlen)
{
	char headers[512], why[600];
	unsigned backoff = rp->base_ms, wait_ms;
	int n, got = 0;

	n = snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\n"
	    "Content-Type: %s\r\n", token, ctype);
	if (n < 0 || (size_t)n >= sizeof(headers)) {
		snprintf(err, errlen, "token too long");
		return -1;
	}
	for (int i = 1; ; i++) {
		if (httpc_request(c, "POST", "/v1/events", headers, body, len,
		    r, err, errlen) == 0) {
			got = 1;
			if (!retryable(r->status))
				return 0;
			snprintf(why, sizeof(why), "HTTP %d: %.*s", r->status,
			    (int)strcspn(r->body, "\n"), r->body);
		} else {
			got = 0;
			snprintf(why, sizeof(why), "%s", err);
			/* A refused certificate stays refused. */
			if (httpc_error_is_final(c))
				break;
		}
		wait_ms = backoff;
		if (got && r->retry_after[0] >= '0' &&
		    r->retry_after[0] <= '9') {
			long ra = atol(r->retry_after);
			wait_ms = (unsigned)(ra > 300 ? 300 : ra) * 1000;
		}
		if (i >= rp->attempts || (rp->deadline_ms != 0 &&
		    client_now_ms() + wait_ms > rp->deadline_ms))
			break;
		if (rp->notify != NULL)
			rp->notify(rp->arg, i, wait_ms, why);
		struct timespec ts = { wait_ms / 1000,
		    (long)(wait_ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		backoff = backoff > rp->cap_ms / 2 ? rp->cap_ms : backoff * 2;
	}
	return got ? 0 : -1;
}

int
client_send(struct httpc *c, const char *token,
    const Kanal__V1__EventBatch *batch, int attempts,
    struct client_result *res)
{
	size_t len = kanal__v1__event_batch__get_packed_size(batch);
	uint8_t *body = malloc(len ? len : 1);
	struct client_retry rp = { attempts, 0, 1000, 1000, NULL, NULL };
	struct httpc_response r;

	memset(res, 0, sizeof(*res));
	if (body == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		return -1;
	}
	kanal__v1__event_batch__pack(batch, body);
	if (client_post(c, token, "application/x-protobuf", body, len, &rp,
	    &r, res->error, sizeof(res->error)) == -1) {
		free(body);
		return -1;
	}
	free(body);
	res->status = r.status;
	if (r.status == 200) {
		res->ack = kanal__v1__batch_ack__unpack(NULL, r.len,
		    (const uint8_t *)r.body);
		if (res->ack == NULL)
			snprintf(res->error, sizeof(res->error),
			    "200 with a body that is not a BatchAck");
	} else {
		snprintf(res->error, sizeof(res->error), "%.*s",
		    (int)strcspn(r.body, "\n"), r.body);
	}
	return 0;
}

void
client_print_result(FILE *out, const struct client_result *res)
{
	const Kanal__V1__BatchAck *a = res->ack;

	if (res->status == 0) {
		fprintf(out, "no answer: %s\n", res->error);
		return;
	}
	if (a == NULL) {
		fprintf(out, "HTTP %d: %s\n", res->status, res->error);
		return;
	}
	fprintf(out, "batch %s: accepted=%u rejected=%u%s\n", a->batch_id,
	    a->accepted, a->rejected, a->duplicate ? " duplicate" : "");
	for (size_t i = 0; i < a->n_rejections; i++)
		fprintf(out, "  event %u: %s: %s\n", a->rejections[i]->index,
		    validate_reason_name(a->rejections[i]->code),
		    a->rejections[i]->message);
}
