/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end, JSON: the real kanald over loopback HTTP takes batches in
 * the proto3 JSON mapping and answers in JSON; per-event rejections keep
 * their index; a batch_id is the same batch whichever encoding carried
 * it; the same events sent as protobuf and as JSON give the same rows in
 * PostgreSQL; the README's curl command and docs/examples/curl-json.sh
 * run as written (only the URL and the token substituted).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "client.h"
#include "harness.h"
#include "httpc.h"
#include "kanal/v1/events.pb-c.h"

static int
setup(void **state)
{
	struct th_fixture *f = th_fixture_new("json", "dukcapil.*");

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/*
 * POSTs body with the fixture's token and the content type; the response
 * (body copied into out) and its status. Fails the test on a transport
 * error.
 */
static int
post(struct th_fixture *f, const char *type, const void *body, size_t len,
    char *out, size_t outlen, char *ctype, size_t ctlen)
{
	char err[256], hdr[256];
	struct httpc *c = httpc_new(f->k.url, 10000, err, sizeof(err));
	struct httpc_response r;
	int status;

	if (c == NULL)
		fail_msg("httpc: %s", err);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
	    "Content-Type: %s\r\n", f->token, type);
	if (httpc_request(c, "POST", "/v1/events", hdr, body, len, &r, err,
	    sizeof(err)) == -1)
		fail_msg("POST: %s", err);
	status = r.status;
	snprintf(out, outlen, "%.*s", (int)r.len, r.body);
	if (ctype != NULL)
		snprintf(ctype, ctlen, "%s", r.content_type);
	httpc_free(c);
	return status;
}

/* POSTs a JSON batch, wants a 200 JSON answer, returns it parsed. */
static json_t *
post_json(struct th_fixture *f, const char *body)
{
	char out[8192], ct[128];
	json_error_t e;
	json_t *ack;
	int st = post(f, "application/json", body, strlen(body), out,
	    sizeof(out), ct, sizeof(ct));

	if (st != 200)
		fail_msg("status %d: %s", st, out);
	assert_string_equal(ct, "application/json");
	ack = json_loads(out, JSON_REJECT_DUPLICATES, &e);
	if (ack == NULL)
		fail_msg("answer is not JSON (%s): %s", e.text, out);
	return ack;
}

static json_int_t
ack_int(json_t *ack, const char *key)
{
	json_t *v = json_object_get(ack, key);

	if (!json_is_integer(v))
		fail_msg("ack has no integer %s", key);
	return json_integer_value(v);
}

/* The acknowledgement's counts and rejections as one line of text. */
static void
ack_text(json_t *ack, char *out, size_t len)
{
	json_t *rs = json_object_get(ack, "rejections"), *r;
	size_t n, i;

	assert_true(json_is_array(rs));
	assert_true(json_is_boolean(json_object_get(ack, "duplicate")));
	n = (size_t)snprintf(out, len, "accepted=%lld rejected=%lld dup=%d",
	    (long long)ack_int(ack, "accepted"),
	    (long long)ack_int(ack, "rejected"),
	    json_is_true(json_object_get(ack, "duplicate")));
	json_array_foreach(rs, i, r) {
		if (n >= len)
			break;
		n += (size_t)snprintf(out + n, len - n, " [%lld %s]",
		    (long long)json_integer_value(json_object_get(r, "index")),
		    json_string_value(json_object_get(r, "code")));
	}
}

/*
 * Per-event rejections keep their index and code, whatever made the event
 * wrong (an unknown enum name, an unknown number, a bad region); the
 * accepted ones reach PostgreSQL; a retry is a duplicate and adds nothing.
 */
static void
test_json_batch_is_answered_in_json_per_event(void **state)
{
	struct th_fixture *f = *state;
	char body[2048], text[512];
	int64_t t = client_now_ms();
	json_t *ack;

	snprintf(body, sizeof(body), "{\"batchId\":\"json-1\",\"events\":["
	    "{\"serviceCode\":\"dukcapil.akta-lahir\",\"channel\":"
	    "\"CHANNEL_WEB\",\"regionCode\":\"32.73.01\",\"occurredAtMs\":"
	    "\"%lld\",\"outcome\":\"OUTCOME_COMPLETED\",\"durationMs\":1000},"
	    "{\"serviceCode\":\"dukcapil.akta-lahir\",\"channel\":"
	    "\"CHANNEL_FAX\",\"regionCode\":\"32.73.01\",\"occurredAtMs\":"
	    "%lld},"
	    "{\"service_code\":\"dukcapil.kia\",\"channel\":6,\"region_code\":"
	    "\"32.73.01\",\"occurred_at_ms\":%lld,\"duration_ms\":\"3000\","
	    "\"assisted\":true},"
	    "{\"serviceCode\":\"dukcapil.kia\",\"channel\":1,\"regionCode\":"
	    "\"32.73.01\",\"occurredAtMs\":%lld,\"outcome\":9},"
	    "{\"serviceCode\":\"dukcapil.kia\",\"channel\":1,\"regionCode\":"
	    "\"Bandung\",\"occurredAtMs\":%lld},"
	    "{\"serviceCode\":\"bapenda.pbb\",\"channel\":1,\"regionCode\":"
	    "\"32.73\",\"occurredAtMs\":%lld}]}",
	    (long long)t, (long long)t, (long long)t, (long long)t,
	    (long long)t, (long long)t);
	ack = post_json(f, body);
	ack_text(ack, text, sizeof(text));
	assert_string_equal(text, "accepted=2 rejected=4 dup=0 "
	    "[1 REJECT_REASON_CHANNEL_INVALID] "
	    "[3 REJECT_REASON_OUTCOME_INVALID] "
	    "[4 REJECT_REASON_REGION_CODE_INVALID] "
	    "[5 REJECT_REASON_SERVICE_NOT_ALLOWED]");
	assert_string_equal(json_string_value(json_object_get(ack, "batchId")),
	    "json-1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(ack, "rejections"), 0), "message")),
	    "channel \"CHANNEL_FAX\" is not a known channel name (see "
	    "proto/kanal/v1/events.proto)");
	json_decref(ack);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 2);
	th_query_text(f->conn, "SELECT string_agg(format('%s %s %s %s %s %s',"
	    " service_code, channel, outcome, assisted, events,"
	    " duration_ms_sum), ', ' ORDER BY service_code)"
	    " FROM kanal.usage_hourly", text, sizeof(text));
	assert_string_equal(text, "dukcapil.akta-lahir web completed f 1 1000, "
	    "dukcapil.kia counter unknown t 1 3000");

	/* The retry: the first counts, duplicate, nothing added. */
	ack = post_json(f, body);
	ack_text(ack, text, sizeof(text));
	assert_string_equal(text, "accepted=2 rejected=4 dup=1");
	json_decref(ack);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 2);
}

/* What the same events give in PostgreSQL, sent one way or the other. */
static const struct {
	const char *service;
	int channel, outcome;
	uint32_t duration;
	int assisted;
} same_events[] = {
	{ "dukcapil.akta-lahir", 1, 1, 60000, 0 },
	{ "dukcapil.akta-lahir", 1, 1, 0, 0 },
	{ "dukcapil.akta-lahir", 3, 1, 30000, 1 },
	{ "dukcapil.ktp-el", 6, 2, 600000, 0 },
	{ "dukcapil.ktp-el", 7, 3, 0, 1 },
	{ "dukcapil.ktp-el", 9, 0, 4294967295u, 0 },
};
#define NSAME (sizeof(same_events) / sizeof(same_events[0]))

static size_t
pack_same(const char *batch_id, const char *region, int64_t t, uint8_t *buf,
    size_t cap)
{
	Kanal__V1__ServiceEvent ev[NSAME], *evp[NSAME];
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;

	for (size_t i = 0; i < NSAME; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)same_events[i].service;
		ev[i].channel = (Kanal__V1__Channel)same_events[i].channel;
		ev[i].outcome = (Kanal__V1__Outcome)same_events[i].outcome;
		ev[i].region_code = (char *)region;
		ev[i].occurred_at_ms = t;
		ev[i].duration_ms = same_events[i].duration;
		ev[i].assisted = same_events[i].assisted;
		evp[i] = &ev[i];
	}
	b.batch_id = (char *)batch_id;
	b.n_events = NSAME;
	b.events = evp;
	assert_true(kanal__v1__event_batch__get_packed_size(&b) <= cap);
	return kanal__v1__event_batch__pack(&b, buf);
}

static void
json_same(const char *batch_id, const char *region, int64_t t, char *buf,
    size_t cap)
{
	static const char *const outcomes[] = { "OUTCOME_UNSPECIFIED",
	    "OUTCOME_COMPLETED", "OUTCOME_ABANDONED", "OUTCOME_FAILED" };
	size_t n = (size_t)snprintf(buf, cap, "{\"batchId\":\"%s\","
	    "\"events\":[", batch_id);

	for (size_t i = 0; i < NSAME; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"serviceCode\":"
		    "\"%s\",\"channel\":%d,\"outcome\":\"%s\",\"regionCode\":"
		    "\"%s\",\"occurredAtMs\":\"%lld\",\"durationMs\":%u,"
		    "\"assisted\":%s}", i > 0 ? "," : "",
		    same_events[i].service, same_events[i].channel,
		    outcomes[same_events[i].outcome], region, (long long)t,
		    same_events[i].duration,
		    same_events[i].assisted ? "true" : "false");
	snprintf(buf + n, cap - n, "]}");
}

static void
region_rows(struct th_fixture *f, const char *region, char *out, size_t len)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT string_agg(format('%%s %%s %%s %%s "
	    "%%s %%s %%s %%s', bucket, service_code, channel, outcome, "
	    "assisted, events, duration_ms_sum, duration_events), '; ' "
	    "ORDER BY service_code, channel, outcome, assisted) FROM "
	    "kanal.usage_hourly WHERE region_code = '%s'", region);
	th_query_text(f->conn, sql, out, len);
}

/*
 * The same events as protobuf (region 32.73.01) and as JSON (32.73.02)
 * give the same rows; a batch_id sent in one encoding is a duplicate in
 * the other, and the protobuf client gets a protobuf answer.
 */
static void
test_protobuf_and_json_are_the_same_batches(void **state)
{
	struct th_fixture *f = *state;
	uint8_t pb[4096];
	char js[4096], out[8192], ct[128], a[2048], b[2048];
	int64_t t = client_now_ms() - 60000;
	size_t n;
	json_t *ack;
	Kanal__V1__BatchAck *pack;

	n = pack_same("mixed-pb", "32.73.01", t, pb, sizeof(pb));
	assert_int_equal(post(f, "application/x-protobuf", pb, n, out,
	    sizeof(out), ct, sizeof(ct)), 200);
	assert_string_equal(ct, "application/x-protobuf");
	json_same("mixed-json", "32.73.02", t, js, sizeof(js));
	ack = post_json(f, js);
	ack_text(ack, a, sizeof(a));
	assert_string_equal(a, "accepted=6 rejected=0 dup=0");
	json_decref(ack);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly",
	    2 * NSAME);
	region_rows(f, "32.73.01", a, sizeof(a));
	region_rows(f, "32.73.02", b, sizeof(b));
	assert_true(strlen(a) > 0);
	assert_string_equal(a, b);

	/* The protobuf batch's id, sent as JSON: its first counts, nothing added. */
	json_same("mixed-pb", "32.73.03", t, js, sizeof(js));
	ack = post_json(f, js);
	ack_text(ack, a, sizeof(a));
	assert_string_equal(a, "accepted=6 rejected=0 dup=1");
	json_decref(ack);
	/* And the JSON batch's id, sent as protobuf: a protobuf duplicate. */
	n = pack_same("mixed-json", "32.73.04", t, pb, sizeof(pb));
	{
		struct httpc *c;
		struct httpc_response r;
		char err[256], hdr[256];

		c = httpc_new(f->k.url, 10000, err, sizeof(err));
		assert_non_null(c);
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
		    "Content-Type: application/x-protobuf\r\n", f->token);
		assert_int_equal(httpc_request(c, "POST", "/v1/events", hdr, pb,
		    n, &r, err, sizeof(err)), 0);
		assert_int_equal(r.status, 200);
		pack = kanal__v1__batch_ack__unpack(NULL, r.len,
		    (const uint8_t *)r.body);
		assert_non_null(pack);
		assert_true(pack->duplicate);
		assert_int_equal(pack->accepted, NSAME);
		kanal__v1__batch_ack__free_unpacked(pack, NULL);
		httpc_free(c);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 2 * NSAME);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly WHERE region_code IN ('32.73.03', "
	    "'32.73.04')"), 0);
}

/* Whole-batch errors for JSON: status, reason and a message naming why. */
static void
test_json_errors_are_specific(void **state)
{
	struct th_fixture *f = *state;
	static const struct {
		const char *name, *type, *body;
		int status;
		const char *want;	/* the answer's beginning */
	} cases[] = {
		{ "type error names the path", "application/json",
		  "{\"batchId\":\"e\",\"events\":[{},{},{},{\"channel\":[]}]}",
		  400, "body_undecodable: events[3].channel: expected a string "
		  "or number\n" },
		{ "unknown field", "application/json",
		  "{\"batchId\":\"e\",\"event\":[]}", 400,
		  "body_undecodable: event: unknown field\n" },
		{ "not JSON", "application/json", "{\"batchId\":", 400,
		  "body_undecodable: not JSON: " },
		{ "charset parameter is fine, empty batch id",
		  "application/json; charset=utf-8", "{}", 400,
		  "batch_id_invalid: " },
		{ "no service allowed", "application/json",
		  "{\"batchId\":\"e\",\"events\":[{\"serviceCode\":"
		  "\"bapenda.pbb\"}]}", 403, "service_not_allowed: " },
		{ "415 names both types", "text/json", "{}", 415,
		  "content_type_unsupported: send Content-Type: "
		  "application/x-protobuf or application/json\n" },
	};
	char out[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = post(f, cases[i].type, cases[i].body,
		    strlen(cases[i].body), out, sizeof(out), NULL, 0);

		if (st != cases[i].status || strncmp(out, cases[i].want,
		    strlen(cases[i].want)) != 0)
			fail_msg("%s: got %d \"%s\", want %d \"%s\"",
			    cases[i].name, st, out, cases[i].status,
			    cases[i].want);
	}
	/* Still serving, and nothing was counted. */
	assert_int_equal(th_http(&f->k, "GET", "/healthz", NULL, NULL, 0, NULL,
	    0), 200);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);
}

/* ------------------------------------------------ documented commands */

/*
 * The README's JSON example: the ```sh block of "Send an event" that
 * posts application/json, with its URL replaced by the test kanald's.
 */
static char *
readme_json_command(const char *url)
{
	char path[1024], *readme, *blk, *end, *at, *cmd;
	const char *fence = "```sh\n", *readme_url = "http://127.0.0.1:8080";
	size_t n;

	snprintf(path, sizeof(path), "%s/README.md", th_env("KANAL_SOURCE_DIR"));
	readme = th_read_file(path, NULL);
	blk = strstr(readme, "## Send an event");
	assert_non_null(blk);
	for (;;) {
		blk = strstr(blk, fence);
		if (blk == NULL)
			fail_msg("README.md: no ```sh block posting "
			    "application/json under \"Send an event\"");
		blk += strlen(fence);
		end = strstr(blk, "```");
		assert_non_null(end);
		*end = '\0';
		if (strstr(blk, "Content-Type: application/json") != NULL)
			break;
		blk = end + 1;
	}
	at = strstr(blk, readme_url);
	if (at == NULL || strstr(at + 1, readme_url) != NULL)
		fail_msg("README.md: the JSON example should name %s once",
		    readme_url);
	n = strlen(blk) + strlen(url) + 1;
	cmd = malloc(n);
	assert_non_null(cmd);
	snprintf(cmd, n, "%.*s%s%s", (int)(at - blk), blk, url,
	    at + strlen(readme_url));
	free(readme);
	return cmd;
}

/* Runs script with bash, KANAL_TOKEN and KANAL_URL set; its stdout. */
static void
run_bash(struct th_fixture *f, const char *script, const char *file,
    char *out, size_t len)
{
	int st;

	setenv("KANAL_TOKEN", f->token, 1);
	setenv("KANAL_URL", f->k.url, 1);
	if (script != NULL) {
		const char *argv[] = { "/bin/bash", "-euo", "pipefail", "-c",
		    script, NULL };
		st = th_run(out, len, argv);
	} else {
		const char *argv[] = { "/bin/sh", file, NULL };
		st = th_run(out, len, argv);
	}
	unsetenv("KANAL_TOKEN");
	unsetenv("KANAL_URL");
	if (st != 0)
		fail_msg("%s exited %d; output: %s", file != NULL ? file :
		    "README command", st, out);
}

static void
test_readme_json_command_works_as_written(void **state)
{
	struct th_fixture *f = *state;
	char *cmd = readme_json_command(f->k.url), out[4096], text[256];
	json_t *ack;

	run_bash(f, cmd, NULL, out, sizeof(out));
	free(cmd);
	ack = json_loads(out, 0, NULL);
	if (ack == NULL)
		fail_msg("README command printed no JSON: %s", out);
	ack_text(ack, text, sizeof(text));
	assert_string_equal(text, "accepted=1 rejected=0 dup=0");
	assert_int_equal(strncmp(json_string_value(json_object_get(ack,
	    "batchId")), "readme-json-", 12), 0);
	json_decref(ack);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.akta-lahir' AND channel = 'web' "
	    "AND region_code = '32.73.01' AND outcome = 'completed' AND "
	    "duration_ms_sum = 240000", 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

static void
test_curl_json_example_works_as_written(void **state)
{
	struct th_fixture *f = *state;
	char path[1024], out[8192], text[256], *nl;
	json_t *ack;

	snprintf(path, sizeof(path), "%s/docs/examples/curl-json.sh",
	    th_env("KANAL_SOURCE_DIR"));
	run_bash(f, NULL, path, out, sizeof(out));
	/* Two answers, one a line: the batch, then its retry. */
	nl = strchr(out, '\n');
	if (nl == NULL)
		fail_msg("want two lines, got: %s", out);
	*nl = '\0';
	ack = json_loads(out, 0, NULL);
	assert_non_null(ack);
	ack_text(ack, text, sizeof(text));
	assert_string_equal(text, "accepted=2 rejected=1 dup=0 "
	    "[2 REJECT_REASON_CHANNEL_INVALID]");
	json_decref(ack);
	ack = json_loads(nl + 1, 0, NULL);
	assert_non_null(ack);
	ack_text(ack, text, sizeof(text));
	assert_string_equal(text, "accepted=2 rejected=1 dup=1");
	json_decref(ack);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	th_query_text(f->conn, "SELECT string_agg(format('%s %s %s %s %s',"
	    " service_code, channel, region_code, outcome, events), ', '"
	    " ORDER BY service_code) FROM kanal.usage_hourly", text,
	    sizeof(text));
	assert_string_equal(text, "dukcapil.akta-lahir web 32.73.01 completed "
	    "1, dukcapil.ktp-el counter 32.73.02 abandoned 1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_json_batch_is_answered_in_json_per_event, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_protobuf_and_json_are_the_same_batches, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_json_errors_are_specific,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_readme_json_command_works_as_written, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_curl_json_example_works_as_written, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
