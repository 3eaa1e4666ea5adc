/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_json: the proto3 JSON mapping (daemon/json.c). A must-decode table
 * (each body with the batch it must give, written out as text: int64 as
 * string and number, base64 in both alphabets with and without padding,
 * enum names and numbers, proto field names, null as the default), a
 * must-refuse table (each body with its exact message), unknown enum
 * names reaching the right per-event rejection, the memory budget, and
 * the acknowledgement's encoding (every field, escaping, always valid
 * JSON).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "json.h"
#include "validate.h"

#define R(x) KANAL__V1__REJECT_REASON__REJECT_REASON_##x

/* What ingest allows with the default 4 MiB body limit. */
#define MAX_MEM ((size_t)JSON_MEMORY_FACTOR * 4 * 1024 * 1024)

static struct arena *arena;

static int
setup(void **state)
{
	(void)state;
	arena = arena_new(64 << 20);
	return arena == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	arena_free(arena);
	return 0;
}

static void
hex(char *out, size_t len, const ProtobufCBinaryData *b)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < b->len && n + 3 < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%02x", b->data[i]);
}

/* A decoded batch as one line of text, to compare with the table. */
static void
render(const Kanal__V1__EventBatch *b, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "batch=%s",
	    b->batch_id != NULL ? b->batch_id : "(null)");

	for (size_t i = 0; i < b->n_events && n < len; i++) {
		const Kanal__V1__ServiceEvent *e = b->events[i];
		char id[80], ref[80];

		hex(id, sizeof(id), &e->event_id);
		hex(ref, sizeof(ref), &e->citizen_ref);
		n += (size_t)snprintf(out + n, len - n, " [svc=%s ch=%d at=%lld "
		    "region=%s out=%d dur=%u assisted=%d id=%s ref=%s]",
		    e->service_code != NULL ? e->service_code : "",
		    (int)e->channel, (long long)e->occurred_at_ms,
		    e->region_code != NULL ? e->region_code : "",
		    (int)e->outcome, e->duration_ms, (int)e->assisted, id, ref);
	}
}

static int
decode(const char *body, struct json_batch *jb, char *err, size_t errlen)
{
	arena_reset(arena);
	err[0] = '\0';
	return json_decode_batch(arena, body, strlen(body), MAX_MEM, jb, err,
	    errlen);
}

/* ---------------------------------------------------------- must decode */

#define EV0 "[svc= ch=0 at=0 region= out=0 dur=0 assisted=0 id= ref=]"

static void
test_valid_bodies_decode_to_the_same_batch_as_protobuf(void **state)
{
	static const struct {
		const char *name, *body, *want;
	} cases[] = {
		{ "every field, camelCase, names, int64 as a string",
		  "{\"batchId\":\"b-1\",\"events\":[{\"eventId\":"
		  "\"AAECAwQFBgcICQoLDA0ODw==\",\"serviceCode\":"
		  "\"dukcapil.akta-lahir\",\"channel\":\"CHANNEL_WEB\","
		  "\"occurredAtMs\":\"1780000000000\",\"regionCode\":"
		  "\"32.73.01\",\"outcome\":\"OUTCOME_COMPLETED\","
		  "\"durationMs\":240000,\"assisted\":true,\"citizenRef\":"
		  "\"cHotN2YzYQ==\"}]}",
		  "batch=b-1 [svc=dukcapil.akta-lahir ch=1 at=1780000000000 "
		  "region=32.73.01 out=1 dur=240000 assisted=1 "
		  "id=000102030405060708090a0b0c0d0e0f ref=707a2d37663361]" },
		{ "proto names, numbers, int64 as a number",
		  "{\"batch_id\":\"b-2\",\"events\":[{\"service_code\":\"x\","
		  "\"channel\":6,\"occurred_at_ms\":1780000000000,"
		  "\"region_code\":\"32\",\"outcome\":3,\"duration_ms\":"
		  "\"4294967295\",\"assisted\":false}]}",
		  "batch=b-2 [svc=x ch=6 at=1780000000000 region=32 out=3 "
		  "dur=4294967295 assisted=0 id= ref=]" },
		{ "base64 URL-safe without padding, standard without padding",
		  "{\"events\":[{\"eventId\":\"-_8\",\"citizenRef\":\"+/8\"}]}",
		  "batch= [svc= ch=0 at=0 region= out=0 dur=0 "
		  "assisted=0 id=fbff ref=fbff]" },
		{ "base64 with one and two padding characters",
		  "{\"events\":[{\"eventId\":\"YWI=\",\"citizenRef\":\"YQ==\"}]}",
		  "batch= [svc= ch=0 at=0 region= out=0 dur=0 "
		  "assisted=0 id=6162 ref=61]" },
		{ "null is every field's default",
		  "{\"batchId\":null,\"events\":[{\"eventId\":null,"
		  "\"serviceCode\":null,\"channel\":null,\"occurredAtMs\":null,"
		  "\"regionCode\":null,\"outcome\":null,\"durationMs\":null,"
		  "\"assisted\":null,\"citizenRef\":null}]}",
		  "batch= " EV0 },
		{ "no events, events null",
		  "{\"batchId\":\"e\",\"events\":null}", "batch=e" },
		{ "empty object, empty events",
		  "{\"events\":[]}", "batch=" },
		{ "int64 limits as strings",
		  "{\"events\":[{\"occurredAtMs\":\"9223372036854775807\"},"
		  "{\"occurredAtMs\":\"-9223372036854775808\"}]}",
		  "batch= [svc= ch=0 at=9223372036854775807 region= out=0 "
		  "dur=0 assisted=0 id= ref=] [svc= ch=0 "
		  "at=-9223372036854775808 region= out=0 dur=0 assisted=0 id= "
		  "ref=]" },
		{ "int64 limits as numbers",
		  "{\"events\":[{\"occurredAtMs\":9223372036854775807},"
		  "{\"occurredAtMs\":-9223372036854775808}]}",
		  "batch= [svc= ch=0 at=9223372036854775807 region= out=0 "
		  "dur=0 assisted=0 id= ref=] [svc= ch=0 "
		  "at=-9223372036854775808 region= out=0 dur=0 assisted=0 id= "
		  "ref=]" },
		{ "UTF-8 and escapes in strings",
		  "{\"batchId\":\"caf\\u00e9-\\\"q\\\"\",\"events\":[{}]}",
		  "batch=caf\xc3\xa9-\"q\" " EV0 },
		{ "white space around everything",
		  " \r\n{ \"events\" : [ { } ] } \n", "batch= " EV0 },
		{ "unknown enum names decode to -1",
		  "{\"events\":[{\"channel\":\"CHANNEL_FAX\",\"outcome\":"
		  "\"OUTCOME_MAYBE\"}]}",
		  "batch= [svc= ch=-1 at=0 region= out=-1 dur=0 "
		  "assisted=0 id= ref=]" },
		{ "an enum number kanald does not know is kept",
		  "{\"events\":[{\"channel\":99,\"outcome\":-7}]}",
		  "batch= [svc= ch=99 at=0 region= out=-7 dur=0 "
		  "assisted=0 id= ref=]" },
	};
	char err[256], got[1024];
	struct json_batch jb;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (decode(cases[i].body, &jb, err, sizeof(err)) != 0)
			fail_msg("%s: refused: %s", cases[i].name, err);
		render(jb.batch, got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s:\n got  %s\n want %s", cases[i].name, got,
			    cases[i].want);
	}
}

/* ---------------------------------------------------------- must refuse */

static void
test_bad_bodies_are_refused_with_a_message_naming_the_path(void **state)
{
	static const struct {
		const char *name, *body, *want;
		int prefix;	/* want is the message's beginning only */
	} cases[] = {
		{ "not an object", "[]",
		  "body: expected a JSON object (an EventBatch)", 0 },
		{ "batchId a number", "{\"batchId\":1}",
		  "batchId: expected a string", 0 },
		{ "unknown top-level field", "{\"batchId\":\"a\",\"colour\":1}",
		  "colour: unknown field", 0 },
		{ "events an object", "{\"events\":{}}",
		  "events: expected an array", 0 },
		{ "event a number", "{\"events\":[1]}",
		  "events[0]: expected an object (a ServiceEvent)", 0 },
		{ "event null", "{\"events\":[{},null]}",
		  "events[1]: expected an object (a ServiceEvent)", 0 },
		{ "channel a bool, fourth event",
		  "{\"events\":[{},{},{},{\"channel\":true}]}",
		  "events[3].channel: expected a string or number", 0 },
		{ "outcome an object", "{\"events\":[{\"outcome\":{}}]}",
		  "events[0].outcome: expected a string or number", 0 },
		{ "enum number past int32", "{\"events\":[{\"channel\":"
		  "4294967297}]}",
		  "events[0].channel: enum number 4294967297 is out of range", 0 },
		{ "unknown event field", "{\"events\":[{\"assited\":true}]}",
		  "events[0].assited: unknown field", 0 },
		{ "control character in a field name",
		  "{\"events\":[{\"a\\nb\":1}]}",
		  "events[0].a?b: unknown field", 0 },
		{ "both names of a field",
		  "{\"events\":[{\"serviceCode\":\"a\",\"service_code\":\"b\"}]}",
		  "events[0].service_code: the same field as \"serviceCode\"; "
		  "send it once", 0 },
		{ "both names of batchId",
		  "{\"batch_id\":\"a\",\"batchId\":\"b\"}",
		  "batchId: the same field as \"batch_id\"; send it once", 0 },
		{ "serviceCode a number", "{\"events\":[{\"serviceCode\":7}]}",
		  "events[0].serviceCode: expected a string", 0 },
		{ "regionCode an array", "{\"events\":[{\"region_code\":[]}]}",
		  "events[0].region_code: expected a string", 0 },
		{ "occurredAtMs a fraction",
		  "{\"events\":[{\"occurredAtMs\":1.5}]}",
		  "events[0].occurredAtMs: expected an integer, not a fraction "
		  "or exponent", 0 },
		{ "occurredAtMs with an exponent",
		  "{\"events\":[{\"occurredAtMs\":1e12}]}",
		  "events[0].occurredAtMs: expected an integer, not a fraction "
		  "or exponent", 0 },
		{ "occurredAtMs a string with an exponent",
		  "{\"events\":[{\"occurredAtMs\":\"1e12\"}]}",
		  "events[0].occurredAtMs: expected a decimal integer in range "
		  "(-9223372036854775808..9223372036854775807)", 0 },
		{ "occurredAtMs string past int64",
		  "{\"events\":[{\"occurredAtMs\":\"9223372036854775808\"}]}",
		  "events[0].occurredAtMs: expected a decimal integer in range "
		  "(-9223372036854775808..9223372036854775807)", 0 },
		{ "occurredAtMs string with a plus sign",
		  "{\"events\":[{\"occurredAtMs\":\"+1\"}]}",
		  "events[0].occurredAtMs: expected a decimal integer in range "
		  "(-9223372036854775808..9223372036854775807)", 0 },
		{ "occurredAtMs empty string",
		  "{\"events\":[{\"occurredAtMs\":\"\"}]}",
		  "events[0].occurredAtMs: expected a decimal integer in range "
		  "(-9223372036854775808..9223372036854775807)", 0 },
		{ "occurredAtMs a bool", "{\"events\":[{\"occurredAtMs\":true}]}",
		  "events[0].occurredAtMs: expected an integer or a string of "
		  "digits", 0 },
		{ "occurredAtMs number past int64 (jansson refuses it)",
		  "{\"events\":[{\"occurredAtMs\":9223372036854775808}]}",
		  "not JSON: too big integer", 1 },
		{ "durationMs negative", "{\"events\":[{\"durationMs\":-1}]}",
		  "events[0].durationMs: -1 is out of range (0..4294967295)", 0 },
		{ "durationMs string past uint32",
		  "{\"events\":[{\"durationMs\":\"4294967296\"}]}",
		  "events[0].durationMs: expected a decimal integer in range "
		  "(0..4294967295)", 0 },
		{ "assisted a string", "{\"events\":[{\"assisted\":\"true\"}]}",
		  "events[0].assisted: expected true or false", 0 },
		{ "assisted a number", "{\"events\":[{\"assisted\":1}]}",
		  "events[0].assisted: expected true or false", 0 },
		{ "eventId not base64", "{\"events\":[{\"eventId\":\"ab!d\"}]}",
		  "events[0].eventId: not base64 (standard or URL-safe "
		  "alphabet)", 0 },
		{ "eventId one character too many",
		  "{\"events\":[{\"eventId\":\"YWJjZ\"}]}",
		  "events[0].eventId: not base64 (standard or URL-safe "
		  "alphabet)", 0 },
		{ "citizenRef padding that does not fit",
		  "{\"events\":[{\"citizenRef\":\"YWJj=\"}]}",
		  "events[0].citizenRef: not base64 (standard or URL-safe "
		  "alphabet)", 0 },
		{ "citizenRef padding in the middle",
		  "{\"events\":[{\"citizenRef\":\"YQ==YQ==\"}]}",
		  "events[0].citizenRef: not base64 (standard or URL-safe "
		  "alphabet)", 0 },
		{ "citizenRef a number", "{\"events\":[{\"citizenRef\":5}]}",
		  "events[0].citizenRef: expected a base64 string", 0 },
		{ "a key twice", "{\"batchId\":\"a\",\"batchId\":\"b\"}",
		  "not JSON: duplicate object key", 1 },
		{ "cut short", "{\"batchId\":", "not JSON: ", 1 },
		{ "trailing garbage", "{\"batchId\":\"a\"} x",
		  "not JSON: end of file expected", 1 },
		{ "a NUL in a string", "{\"batchId\":\"a\\u0000b\"}",
		  "not JSON: \\u0000 is not allowed", 1 },
		{ "not UTF-8", "{\"batchId\":\"\xff\"}",
		  "not JSON: unable to decode byte 0xff", 1 },
		{ "single quotes", "{'batchId':'a'}", "not JSON: ", 1 },
		{ "empty body", "", "not JSON: ", 1 },
	};
	char err[256];
	struct json_batch jb;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		if (decode(cases[i].body, &jb, err, sizeof(err)) != -1)
			fail_msg("%s: decoded", cases[i].name);
		if (errno != EINVAL)
			fail_msg("%s: errno %d, want EINVAL", cases[i].name,
			    errno);
		if (cases[i].prefix ? strncmp(err, cases[i].want,
		    strlen(cases[i].want)) != 0 : strcmp(err, cases[i].want)
		    != 0)
			fail_msg("%s:\n got  %s\n want %s%s", cases[i].name, err,
			    cases[i].want, cases[i].prefix ? "..." : "");
	}
}

/*
 * An unknown enum name rejects only its own event, with the reason an
 * unknown number gets, at its own index, and the message names it.
 */
static void
test_unknown_enum_names_reject_the_event_like_unknown_numbers(void **state)
{
	static const struct limits_case {
		const char *event;
		Kanal__V1__RejectReason why;
		const char *msg;	/* NULL: validate's own */
	} cases[] = {
		{ "\"channel\":\"CHANNEL_WEB\"", R(UNSPECIFIED), NULL },
		{ "\"channel\":\"CHANNEL_FAX\"", R(CHANNEL_INVALID),
		  "channel \"CHANNEL_FAX\" is not a known channel name (see "
		  "proto/kanal/v1/events.proto)" },
		{ "\"channel\":\"web\"", R(CHANNEL_INVALID),
		  "channel \"web\" is not a known channel name (see "
		  "proto/kanal/v1/events.proto)" },
		{ "\"channel\":\"CHANNEL_UNSPECIFIED\"", R(CHANNEL_INVALID),
		  NULL },
		{ "\"channel\":42", R(CHANNEL_INVALID), NULL },
		{ "\"channel\":1,\"outcome\":\"OUTCOME_LOST\"",
		  R(OUTCOME_INVALID),
		  "outcome \"OUTCOME_LOST\" is not a known outcome name (see "
		  "proto/kanal/v1/events.proto)" },
		{ "\"channel\":1,\"outcome\":\"OUTCOME_FAILED\"", R(UNSPECIFIED),
		  NULL },
		{ "\"channel\":1,\"outcome\":9", R(OUTCOME_INVALID), NULL },
	};
	const struct validate_limits lim = { INT64_MAX / 4, INT64_MAX / 4 };
	char body[4096], err[256], msg[200];
	size_t n;
	struct json_batch jb;

	(void)state;
	n = (size_t)snprintf(body, sizeof(body), "{\"events\":[");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{"
		    "\"serviceCode\":\"s\",\"regionCode\":\"32\",%s}",
		    i > 0 ? "," : "", cases[i].event);
	snprintf(body + n, sizeof(body) - n, "]}");
	assert_int_equal(decode(body, &jb, err, sizeof(err)), 0);
	assert_int_equal(jb.batch->n_events, sizeof(cases) / sizeof(cases[0]));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Kanal__V1__RejectReason why;
		char before[200];

		why = validate_event(jb.batch->events[i], NULL, 0, &lim, msg,
		    sizeof(msg));
		if (why != cases[i].why)
			fail_msg("event %zu (%s): reason %d, want %d", i,
			    cases[i].event, (int)why, (int)cases[i].why);
		if (why == R(UNSPECIFIED))
			continue;
		snprintf(before, sizeof(before), "%s", msg);
		if (json_event_message(&jb, i, why, msg, sizeof(msg)) !=
		    (cases[i].msg != NULL))
			fail_msg("event %zu: json_event_message disagrees", i);
		assert_string_equal(msg, cases[i].msg != NULL ? cases[i].msg :
		    before);
	}
}

/*
 * The parse tree's memory is capped by the body limit, before parsing: the
 * biggest real batch stays well inside, hostile shapes are refused.
 */
static void
test_memory_is_capped_by_the_body_limit(void **state)
{
	static const char ev[] = "{\"eventId\":\"AAECAwQFBgcICQoLDA0ODw==\","
	    "\"serviceCode\":\"dukcapil.akta-lahir\",\"channel\":"
	    "\"CHANNEL_WEB\",\"occurredAtMs\":\"1780000000000\","
	    "\"regionCode\":\"32.73.01.1001\",\"outcome\":"
	    "\"OUTCOME_COMPLETED\",\"durationMs\":240000,\"assisted\":false,"
	    "\"citizenRef\":\"cHotN2YzYS1wc2V1ZG9ueW0tMDAwMQ\"}";
	static const struct {
		const char *name, *item;
		int count;
		int ok;
	} cases[] = {
		{ "10,000 fully filled events (the default maximum)", ev, 10000,
		  1 },
		{ "10,000 of the smallest events that can be accepted",
		  "{\"serviceCode\":\"a\",\"channel\":1,\"regionCode\":\"32\","
		  "\"occurredAtMs\":1780000000000}", 10000, 1 },
		{ "300,000 empty objects (74 times their size in jansson)",
		  "{}", 300000, 0 },
		{ "400,000 empty arrays", "[]", 400000, 0 },
	};
	char err[256];
	struct json_batch jb;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t il = strlen(cases[c].item), cap, n;
		char *body;
		int rc;

		cap = (size_t)cases[c].count * (il + 1) + 64;
		body = malloc(cap);
		assert_non_null(body);
		n = (size_t)snprintf(body, cap, "{\"events\":[");
		for (int i = 0; i < cases[c].count; i++) {
			if (i > 0)
				body[n++] = ',';
			memcpy(body + n, cases[c].item, il);
			n += il;
		}
		snprintf(body + n, cap - n, "]}");
		assert_true(strlen(body) <= 4 * 1024 * 1024);
		errno = 0;
		rc = decode(body, &jb, err, sizeof(err));
		free(body);
		if (cases[c].ok && rc != 0)
			fail_msg("%s: refused: %s", cases[c].name, err);
		if (cases[c].ok) {
			assert_int_equal(jb.batch->n_events, cases[c].count);
			continue;
		}
		if (rc != -1 || errno != EINVAL || strstr(err, "would take "
		    "more than 67108864 bytes of memory") == NULL)
			fail_msg("%s: want the memory message, got %d: %s",
			    cases[c].name, rc, err);
	}
}

static void
test_deep_nesting_is_refused_before_parsing(void **state)
{
	char body[256], err[256];
	struct json_batch jb;
	size_t n = 0;

	(void)state;
	/* 16 levels: parsed, and refused for its type. */
	n = (size_t)snprintf(body, sizeof(body), "{\"batchId\":");
	memset(body + n, '[', 15);
	memset(body + n + 15, ']', 15);
	snprintf(body + n + 30, sizeof(body) - n - 30, "}");
	assert_int_equal(decode(body, &jb, err, sizeof(err)), -1);
	assert_string_equal(err, "batchId: expected a string");
	/* 17: refused before jansson sees it, even when cut short. */
	memset(body + n, '[', 16);
	body[n + 16] = '\0';
	assert_int_equal(decode(body, &jb, err, sizeof(err)), -1);
	assert_string_equal(err, "the JSON nests deeper than 16 levels (an "
	    "EventBatch needs 3)");
	/* Brackets inside strings are not nesting. */
	assert_int_equal(decode("{\"batchId\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[\"}",
	    &jb, err, sizeof(err)), 0);
	assert_string_equal(jb.batch->batch_id, "[[[[[[[[[[[[[[[[[[[[\"[[");
}

/* A fuzzer finding: jansson 2.14 asserted on this once mallocs failed. */
static void
test_deep_arrays_with_a_bad_byte_are_refused_cleanly(void **state)
{
	char body[2048], err[256];
	struct json_batch jb;
	size_t n;

	(void)state;
	n = (size_t)snprintf(body, sizeof(body), "{\"event-s\":null,"
	    "\"batchId\":");
	memset(body + n, '[', 1500);
	body[n + 700] = 0x1b;
	snprintf(body + n + 1500, sizeof(body) - n - 1500, "tchId\":\"se[p-2[");
	assert_int_equal(decode(body, &jb, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	/* With a small memory allowance it is refused for its size. */
	arena_reset(arena);
	assert_int_equal(json_decode_batch(arena, "{\"events\":[[[[]]]]}", 19,
	    100, &jb, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "the JSON body would take more than 100 bytes "
	    "of memory to decode; send fewer, plainer values");
}

/* ------------------------------------------------------------------ ack */

static char *
encode(const Kanal__V1__BatchAck *ack)
{
	size_t n = json_encode_ack(ack, NULL, 0);
	char *buf = malloc(n + 1);

	assert_non_null(buf);
	assert_int_equal(json_encode_ack(ack, buf, n), n);
	buf[n] = '\0';
	return buf;
}

static void
test_ack_carries_every_field_even_when_default(void **state)
{
	Kanal__V1__BatchAck ack = KANAL__V1__BATCH_ACK__INIT;
	char *s;

	(void)state;
	ack.batch_id = (char *)"b-1";
	s = encode(&ack);
	assert_string_equal(s, "{\"batchId\":\"b-1\",\"accepted\":0,"
	    "\"rejected\":0,\"duplicate\":false,\"rejections\":[]}\n");
	free(s);
	ack.accepted = 4294967295u;
	ack.duplicate = 1;
	s = encode(&ack);
	assert_string_equal(s, "{\"batchId\":\"b-1\",\"accepted\":4294967295,"
	    "\"rejected\":0,\"duplicate\":true,\"rejections\":[]}\n");
	free(s);
}

static void
test_ack_rejections_use_reason_names_and_escape_messages(void **state)
{
	Kanal__V1__Rejection r1 = KANAL__V1__REJECTION__INIT,
	    r2 = KANAL__V1__REJECTION__INIT, r3 = KANAL__V1__REJECTION__INIT;
	Kanal__V1__Rejection *rs[] = { &r1, &r2, &r3 };
	Kanal__V1__BatchAck ack = KANAL__V1__BATCH_ACK__INIT;
	char *s, small[8];
	json_t *v;

	(void)state;
	r1.index = 1;
	r1.code = R(CHANNEL_INVALID);
	r1.message = (char *)"say \"hi\" \\ \n\t\x01 caf\xc3\xa9";
	r2.index = 7;
	r2.code = R(SERVICE_CODE_INVALID);
	/* Cut inside a UTF-8 sequence, a stray continuation byte, 0xff. */
	r2.message = (char *)"x\xc3 \x80 \xff \xed\xa0\x80 end";
	r3.index = 9;
	r3.code = (Kanal__V1__RejectReason)12;	/* no name (yet) */
	r3.message = NULL;
	ack.batch_id = (char *)"b";
	ack.accepted = 2;
	ack.rejected = 3;
	ack.n_rejections = 3;
	ack.rejections = rs;
	s = encode(&ack);
	assert_string_equal(s, "{\"batchId\":\"b\",\"accepted\":2,"
	    "\"rejected\":3,\"duplicate\":false,\"rejections\":["
	    "{\"index\":1,\"code\":\"REJECT_REASON_CHANNEL_INVALID\","
	    "\"message\":\"say \\\"hi\\\" \\\\ \\u000a\\u0009\\u0001 "
	    "caf\xc3\xa9\"},"
	    "{\"index\":7,\"code\":\"REJECT_REASON_SERVICE_CODE_INVALID\","
	    "\"message\":\"x\\ufffd \\ufffd \\ufffd \\ufffd\\ufffd\\ufffd "
	    "end\"},"
	    "{\"index\":9,\"code\":12,\"message\":\"\"}]}\n");
	/* And a strict parser takes it back. */
	v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(v, "rejections"), 0), "message")),
	    "say \"hi\" \\ \n\t\x01 caf\xc3\xa9");
	json_decref(v);
	/* A short buffer gets a prefix, and the whole length is returned. */
	assert_int_equal(json_encode_ack(&ack, small, sizeof(small)),
	    strlen(s));
	assert_memory_equal(small, s, sizeof(small));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_valid_bodies_decode_to_the_same_batch_as_protobuf),
		cmocka_unit_test(
		    test_bad_bodies_are_refused_with_a_message_naming_the_path),
		cmocka_unit_test(
		    test_unknown_enum_names_reject_the_event_like_unknown_numbers),
		cmocka_unit_test(test_memory_is_capped_by_the_body_limit),
		cmocka_unit_test(test_deep_nesting_is_refused_before_parsing),
		cmocka_unit_test(
		    test_deep_arrays_with_a_bad_byte_are_refused_cleanly),
		cmocka_unit_test(test_ack_carries_every_field_even_when_default),
		cmocka_unit_test(
		    test_ack_rejections_use_reason_names_and_escape_messages),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
