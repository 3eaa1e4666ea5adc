/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ingest: the HTTP body path of ingest_batch as a table, without a
 * daemon, an HTTP server or a WAL: every whole-batch answer (401, 415,
 * 400, 403) with its reason code, and the 200 answers that need nothing
 * made durable (a batch with no events, a batch whose every event is
 * rejected). What is accepted goes on to the WAL; the end-to-end tests
 * (test_e2e_kanald, test_e2e_hostile) cover that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dedup.h"
#include "ingest.h"
#include "kanal/v1/events.pb-c.h"
#include "sources.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define TOKEN		"unit-test-token-0123456789abcdef"
#define NOW_MS		1764300000000LL
#define MAX_EVENTS	10

struct answer {
	int calls;
	int status;
	char reason[64];
	uint8_t body[4096];
	size_t len;
};

static void
capture(void *arg, const struct ingest_reply *r)
{
	struct answer *a = arg;

	a->calls++;
	a->status = r->status;
	snprintf(a->reason, sizeof(a->reason), "%s",
	    r->reason != NULL ? r->reason : "");
	a->len = r->len < sizeof(a->body) ? r->len : sizeof(a->body);
	memcpy(a->body, r->body, a->len);
}

struct fixture {
	char dir[64];
	struct dedup *dedup;
	struct ingest *in;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct ingest_config cfg = {
		.limits = { .max_age_ms = 7LL * 86400 * 1000,
		    .max_ahead_ms = 300000 },
		.max_batch_events = MAX_EVENTS,
		.max_body_size = 1 << 16,
	};
	char digest[65], line[256];
	struct sources *s;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_ingest-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->dedup = dedup_new(fx->dir, 86400000, 1000);
	assert_non_null(fx->dedup);
	cfg.dedup = fx->dedup;
	fx->in = ingest_new(NULL, &cfg);
	assert_non_null(fx->in);
	sources_digest_hex(TOKEN, strlen(TOKEN), digest);
	snprintf(line, sizeof(line), "unit sha256:%s dukcapil.*\n", digest);
	s = sources_parse(line, strlen(line), "unit.sources", stderr);
	assert_non_null(s);
	ingest_set_sources(fx->in, s);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char path[128];

	ingest_free(fx->in);
	dedup_free(fx->dedup);
	snprintf(path, sizeof(path), "%s/batches.idx", fx->dir);
	unlink(path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* What a case's body is. */
enum body_kind {
	BODY_BATCH,		/* a batch built from the case's fields */
	BODY_RAW,		/* the case's raw bytes */
};

static const struct body_case {
	const char *name;
	const char *auth;		/* NULL: no header */
	const char *content_type;	/* NULL: no header */
	enum body_kind kind;
	const char *raw;		/* BODY_RAW */
	const char *batch_id;		/* BODY_BATCH; NULL: none */
	unsigned events;
	const char *service;
	const char *citizen_ref;	/* NULL: none */
	int status;
	const char *reason;		/* "" on 200 */
} cases[] = {
	{ "no Authorization is token_missing", NULL,
	  "application/x-protobuf", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 401, "token_missing" },
	{ "Basic auth is token_missing", "Basic dXNlcjpwYXNz",
	  "application/x-protobuf", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 401, "token_missing" },
	{ "an empty bearer token is token_missing", "Bearer ",
	  "application/x-protobuf", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 401, "token_missing" },
	{ "a token with a space after it is token_missing",
	  "Bearer " TOKEN " x", "application/x-protobuf", BODY_BATCH, NULL,
	  "b", 1, "dukcapil.kia", NULL, 401, "token_missing" },
	{ "a token not in the file is token_unknown", "Bearer nope",
	  "application/x-protobuf", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 401, "token_unknown" },
	{ "the token's prefix is token_unknown", "Bearer unit-test-token",
	  "application/x-protobuf", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 401, "token_unknown" },
	{ "no Content-Type is 415", "Bearer " TOKEN, NULL, BODY_BATCH, NULL,
	  "b", 1, "dukcapil.kia", NULL, 415, "content_type_unsupported" },
	{ "text/plain is 415", "Bearer " TOKEN, "text/plain", BODY_BATCH, NULL,
	  "b", 1, "dukcapil.kia", NULL, 415, "content_type_unsupported" },
	{ "a longer media type is 415", "Bearer " TOKEN,
	  "application/x-protobufx", BODY_BATCH, NULL, "b", 1, "dukcapil.kia",
	  NULL, 415, "content_type_unsupported" },
	{ "random bytes are body_undecodable", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_RAW, "\xff\xff\xff\xff", NULL, 0,
	  NULL, NULL, 400, "body_undecodable" },
	{ "a length past the end is body_undecodable", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_RAW, "\x0a\x7f" "abc", NULL, 0, NULL,
	  NULL, 400, "body_undecodable" },
	{ "a wrong wire type is body_undecodable", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_RAW, "\x0d\x01", NULL, 0, NULL,
	  NULL, 400, "body_undecodable" },
	{ "an empty body has no batch_id", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_RAW, "", NULL, 0, NULL, NULL, 400,
	  "batch_id_invalid" },
	{ "a batch_id with a space is invalid", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_BATCH, NULL, "a b", 1,
	  "dukcapil.kia", NULL, 400, "batch_id_invalid" },
	{ "a batch_id of 65 characters is invalid", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_BATCH, NULL,
	  "12345678901234567890123456789012345678901234567890123456789012345",
	  1, "dukcapil.kia", NULL, 400, "batch_id_invalid" },
	{ "a batch_id with DEL is invalid", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_BATCH, NULL, "b\x7f", 1,
	  "dukcapil.kia", NULL, 400, "batch_id_invalid" },
	{ "more events than max-batch-events is batch_too_large",
	  "Bearer " TOKEN, "application/x-protobuf", BODY_BATCH, NULL, "big",
	  MAX_EVENTS + 1, "dukcapil.kia", NULL, 400, "batch_too_large" },
	{ "only services the token does not allow is 403", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_BATCH, NULL, "b403", 3,
	  "bapenda.pbb", NULL, 403, "service_not_allowed" },
	{ "no events is a 200 with nothing in it", "Bearer " TOKEN,
	  "application/x-protobuf", BODY_BATCH, NULL, "empty", 0, NULL, NULL,
	  200, "" },
	{ "every event a raw NIK is a 200 with every event rejected",
	  "Bearer " TOKEN, "application/protobuf; charset=binary", BODY_BATCH,
	  NULL, "nik", 2, "dukcapil.kia", "3273010101900001", 200, "" },
	{ "media type case and parameters do not matter", "bearer " TOKEN,
	  "Application/X-Protobuf ; x=y", BODY_BATCH, NULL, "case", 1,
	  "Dukcapil.kia", NULL, 200, "" },
};

static size_t
build_body(const struct body_case *c, uint8_t *out, size_t cap)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[MAX_EVENTS + 1], *evp[MAX_EVENTS + 1];

	if (c->kind == BODY_RAW) {
		size_t n = strlen(c->raw);
		memcpy(out, c->raw, n);
		return n;
	}
	assert_true(c->events <= NELEM(ev));
	for (unsigned i = 0; i < c->events; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)c->service;
		ev[i].channel = KANAL__V1__CHANNEL__CHANNEL_COUNTER;
		ev[i].region_code = (char *)"32.73.01";
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].occurred_at_ms = NOW_MS - 1000;
		if (c->citizen_ref != NULL) {
			ev[i].citizen_ref.data = (uint8_t *)c->citizen_ref;
			ev[i].citizen_ref.len = strlen(c->citizen_ref);
		}
		evp[i] = &ev[i];
	}
	b.batch_id = (char *)c->batch_id;
	b.n_events = c->events;
	b.events = evp;
	assert_true(kanal__v1__event_batch__get_packed_size(&b) <= cap);
	return kanal__v1__event_batch__pack(&b, out);
}

static void
test_each_body_gets_its_answer(void **state)
{
	const struct body_case *c = *state;
	struct fixture *fx;
	struct answer *a = calloc(1, sizeof(*a));
	struct ingest_stats st;
	uint8_t body[4096];
	size_t len;

	assert_non_null(a);
	setup((void **)&fx);
	len = build_body(c, body, sizeof(body));
	ingest_batch(fx->in, c->auth, c->content_type, body, len, NOW_MS,
	    capture, a);
	if (a->calls != 1)
		fail_msg("%s: the reply came %d times", c->name, a->calls);
	if (a->status != c->status || strcmp(a->reason, c->reason) != 0)
		fail_msg("%s: got %d %s, want %d %s", c->name, a->status,
		    a->reason, c->status, c->reason);
	/* Nothing was left for the WAL: every case is answered at once. */
	assert_int_equal(ingest_inflight(fx->in), 0);
	ingest_get_stats(fx->in, &st);
	if (c->status == 200) {
		Kanal__V1__BatchAck *ack = kanal__v1__batch_ack__unpack(NULL,
		    a->len, a->body);

		assert_non_null(ack);
		assert_int_equal(ack->accepted, 0);
		assert_int_equal(ack->rejected, c->events);
		assert_int_equal(ack->n_rejections, c->events);
		for (size_t i = 0; i < ack->n_rejections; i++)
			assert_int_equal(ack->rejections[i]->index, i);
		assert_string_equal(ack->batch_id, c->batch_id);
		kanal__v1__batch_ack__free_unpacked(ack, NULL);
		assert_int_equal(st.batches_ok, 1);
	} else {
		/* The body is the one-line "reason: message" text. */
		assert_true(a->len > strlen(c->reason) + 2);
		assert_memory_equal(a->body, c->reason, strlen(c->reason));
		assert_int_equal(a->body[strlen(c->reason)], ':');
		assert_int_equal(a->body[a->len - 1], '\n');
		assert_int_equal(st.batches_client_error, 1);
		assert_int_equal(st.batches_ok, 0);
	}
	assert_int_equal(st.events_accepted, 0);
	teardown((void **)&fx);
	free(a);
}

int
main(void)
{
	struct CMUnitTest tests[NELEM(cases)];

	for (size_t i = 0; i < NELEM(cases); i++)
		tests[i] = (struct CMUnitTest){
			.name = cases[i].name,
			.test_func = test_each_body_gets_its_answer,
			.initial_state = (void *)&cases[i],
		};
	return _cmocka_run_group_tests("ingest_batch", tests, NELEM(tests),
	    NULL, NULL);
}
