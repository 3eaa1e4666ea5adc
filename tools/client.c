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

#include "httpc.h"
#include "validate.h"

int64_t
client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int
client_send(struct httpc *c, const char *token,
    const Kanal__V1__EventBatch *batch, int attempts,
    struct client_result *res)
{
	size_t len = kanal__v1__event_batch__get_packed_size(batch);
	uint8_t *body = malloc(len ? len : 1);
	char headers[512];
	struct httpc_response r;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (body == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		return -1;
	}
	kanal__v1__event_batch__pack(batch, body);
	snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n", token);
	unsigned wait_s = 1;

	for (int i = 0; i < attempts; i++) {
		if (i > 0) {
			struct timespec ts = { wait_s, 0 };
			nanosleep(&ts, NULL);
		}
		if (httpc_request(c, "POST", "/v1/events", headers, body, len,
		    &r, res->error, sizeof(res->error)) == -1) {
			res->status = 0;
			wait_s = 1;
			continue;
		}
		res->status = r.status;
		if (r.status == 503 && i + 1 < attempts) {
			wait_s = (unsigned)atoi(r.retry_after);
			if (wait_s < 1 || wait_s > 60)
				wait_s = wait_s < 1 ? 1 : 60;
			continue;
		}
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
		rc = 0;
		break;
	}
	free(body);
	return rc;
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
