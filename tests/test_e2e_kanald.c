/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: the real kanald over loopback HTTP, events sent with the real
 * kanalctl, counts read back from the views of a real PostgreSQL.
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

#include "harness.h"

static int
setup(void **state)
{
	*state = th_fixture_new("e2e", "dukcapil.*,bapenda.pbb");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* kanalctl send with the fixture's token; returns its exit status. */
static int
send_events(struct th_fixture *f, const char *service, const char *channel,
    const char *region, const char *outcome, const char *count,
    const char *duration, int assisted)
{
	const char *argv[32];
	int n = 0;
	char out[4096];

	argv[n++] = th_env("KANALCTL");
	argv[n++] = "send";
	argv[n++] = "--url";
	argv[n++] = f->k.url;
	argv[n++] = "--token";
	argv[n++] = f->token;
	argv[n++] = "--service";
	argv[n++] = service;
	argv[n++] = "--channel";
	argv[n++] = channel;
	argv[n++] = "--region";
	argv[n++] = region;
	argv[n++] = "--outcome";
	argv[n++] = outcome;
	argv[n++] = "--count";
	argv[n++] = count;
	argv[n++] = "--duration-ms";
	argv[n++] = duration;
	if (assisted)
		argv[n++] = "--assisted";
	argv[n] = NULL;
	return th_run(out, sizeof(out), argv);
}


/* Events sent with kanalctl arrive in the daily view with the right sums. */
static void
test_sent_events_reach_the_views(void **state)
{
	struct th_fixture *f = *state;
	char v[64];

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	/* 6 digital (2 assisted), 4 manual; 8 completed, 1 abandoned, 1 failed. */
	assert_int_equal(send_events(f, "dukcapil.akta-lahir", "web", "32.73.01",
	    "completed", "4", "60000", 0), 0);
	assert_int_equal(send_events(f, "dukcapil.akta-lahir", "kiosk",
	    "32.73.01", "completed", "2", "0", 1), 0);
	assert_int_equal(send_events(f, "dukcapil.akta-lahir", "counter",
	    "32.73.01", "completed", "2", "600000", 0), 0);
	assert_int_equal(send_events(f, "dukcapil.akta-lahir", "counter",
	    "32.73.01", "abandoned", "1", "300000", 0), 0);
	assert_int_equal(send_events(f, "dukcapil.akta-lahir", "phone",
	    "32.73.01", "failed", "1", "0", 0), 0);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 10);

	/* All sent now, so all in today's (WIB) row, or yesterday's near 17:00 UTC. */
	th_query_text(f->conn, "SELECT format('%s/%s/%s/%s', sum(digital_events),"
	    " sum(manual_events), sum(assisted_events), sum(completed_events))"
	    " FROM kanal.digital_adoption_daily", v, sizeof(v));
	assert_string_equal(v, "6/4/2/8");
	/* One row unless the sends straddled midnight WIB. */
	if (th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.digital_adoption_daily") == 1) {
		th_query_text(f->conn, "SELECT format('%s %s %s %s %s',"
		    " round(digital_take_up, 4), round(self_service_rate, 4),"
		    " round(completion_rate, 4), round(mean_duration_digital_ms),"
		    " round(mean_duration_manual_ms))"
		    " FROM kanal.digital_adoption_daily", v, sizeof(v));
		/* take-up 6/8, self-service 4/8, completion 8/10, */
		/* digital 240000/4, manual (1200000+300000)/3. */
		assert_string_equal(v, "0.7500 0.5000 0.8000 60000 500000");
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* SIGTERM writes what is held before exiting, even mid-interval. */
static void
test_sigterm_flushes_held_counts(void **state)
{
	struct th_fixture *f = *state;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "1h", NULL });
	assert_int_equal(send_events(f, "bapenda.pbb", "partner", "32.73.05",
	    "completed", "7", "1000", 0), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'bapenda.pbb'"), 7);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint"), 1);
}

/* A flush that fails keeps its counts and retries; nothing is lost or doubled. */
static void
test_failed_flush_keeps_counts_and_retries(void **state)
{
	struct th_fixture *f = *state;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", NULL });
	/* The database refuses kanald's writes for a while: a real fault. */
	th_exec(f->conn, "REVOKE INSERT, UPDATE ON kanal.usage_hourly FROM "
	    "kanal_ingest");
	assert_int_equal(send_events(f, "dukcapil.ktp-el", "counter",
	    "32.73.10", "completed", "3", "0", 0), 0);
	assert_int_equal(send_events(f, "dukcapil.ktp-el", "counter",
	    "32.73.10", "completed", "2", "0", 0), 0);
	/* Several failed attempts, each logged, none of them writing. */
	th_wait_log(&f->k, "flush will be retried", 3);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);
	th_exec(f->conn, "GRANT INSERT, UPDATE ON kanal.usage_hourly TO "
	    "kanal_ingest");
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 5);
	assert_int_equal(send_events(f, "dukcapil.ktp-el", "counter",
	    "32.73.10", "completed", "1", "0", 0), 0);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 6);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 6);
}

/*
 * Invariant 8: serves and acknowledges with no database (/readyz says
 * why), and what it acknowledged is counted once the database is there,
 * after a restart on the same WAL.
 */
static void
test_acknowledges_without_database_and_counts_later(void **state)
{
	struct th_fixture *f = *state;
	char body[256];

	/* Port 1 on loopback: nothing listens there. */
	th_kanald_start(&f->k, NULL, f->sources, (const char *const[]){
	    "--pg", "host=127.0.0.1 port=1 dbname=x connect_timeout=1",
	    "--flush-interval", "100ms", "--shutdown-timeout", "500ms",
	    NULL });
	assert_int_equal(th_http(&f->k, "GET", "/healthz", NULL, NULL, 0, body,
	    sizeof(body)), 200);
	assert_int_equal(th_http(&f->k, "GET", "/readyz", NULL, NULL, 0, body,
	    sizeof(body)), 503);
	assert_non_null(strstr(body, "PostgreSQL"));
	assert_int_equal(send_events(f, "dukcapil.kia", "web", "32.73.02",
	    "completed", "4", "0", 0), 0);
	/* What PostgreSQL did not take stays in the WAL: a clean stop. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 4);
	assert_int_equal(send_events(f, "dukcapil.kia", "web", "32.73.02",
	    "completed", "1", "0", 0), 0);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 5);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 5);
}

/* Each request that is not a good batch gets its own status and reason. */
static void
test_http_errors_are_specific(void **state)
{
	struct th_fixture *f = *state;
	char auth[128], hdr[256], body[512];
	static const struct {
		const char *name, *method, *path;
		int with_token;		/* prepend the fixture's token */
		const char *headers, *body;
		int status;
		const char *reason;
	} cases[] = {
		{ "no token", "POST", "/v1/events", 0, "Content-Type: "
		  "application/x-protobuf\r\n", "", 401, "token_missing" },
		{ "unknown token", "POST", "/v1/events", 0, "Authorization: Bearer "
		  "nope\r\nContent-Type: application/x-protobuf\r\n", "", 401,
		  "token_unknown" },
		{ "wrong content type", "POST", "/v1/events", 1, "Content-Type: "
		  "text/csv\r\n", "a,b", 415, "content_type_unsupported" },
		{ "garbage body", "POST", "/v1/events", 1, "Content-Type: "
		  "application/x-protobuf\r\n", "\xff\xff\xff\xff", 400,
		  "body_undecodable" },
		{ "empty batch id", "POST", "/v1/events", 1, "Content-Type: "
		  "application/x-protobuf\r\n", "", 400, "batch_id_invalid" },
		{ "GET on events", "GET", "/v1/events", 1, "", "", 405,
		  "method_not_allowed" },
		{ "unknown path", "GET", "/v2/nothing", 0, "", "", 404,
		  "not_found" },
	};

	th_kanald_start(&f->k, f->db, f->sources, NULL);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", f->token);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st;

		snprintf(hdr, sizeof(hdr), "%s%s", cases[i].with_token ? auth
		    : "", cases[i].headers);
		st = th_http(&f->k, cases[i].method, cases[i].path, hdr,
		    cases[i].body, strlen(cases[i].body), body, sizeof(body));
		if (st != cases[i].status || strncmp(body, cases[i].reason,
		    strlen(cases[i].reason)) != 0)
			fail_msg("%s: got %d \"%s\", want %d %s", cases[i].name,
			    st, body, cases[i].status, cases[i].reason);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* kanalctl demo makes plausible indicators, and every accepted event is counted. */
static void
test_demo_gives_plausible_indicators(void **state)
{
	struct th_fixture *f = *state;
	char sources[600], token[65], out[4096], pg[128], v[256];
	int64_t total;

	th_make_source(f->dir, "demo", "*", token, sources, sizeof(sources));
	th_kanald_start(&f->k, f->db, sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	snprintf(pg, sizeof(pg), "dbname=%s", f->db);
	{
		const char *argv[] = { th_env("KANALCTL"), "demo", "--days",
		    "7", "--per-day", "5000", "--url", f->k.url, "--token",
		    token, "--pg", pg, NULL };
		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	total = th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly");
	/* demo_total(5000, 7) */
	assert_int_equal(total, 29000);
	th_query_text(f->conn, "SELECT format('%s %s %s %s',"
	    " sum(completed_events * digital_take_up) / sum(completed_events)"
	    "   BETWEEN 0.3 AND 0.5,"
	    " sum(completed_events) / sum(digital_events + manual_events)::numeric"
	    "   BETWEEN 0.8 AND 0.95,"
	    " count(DISTINCT region_code) = 30,"
	    " sum(mean_duration_manual_ms * manual_events) / sum(manual_events) >"
	    " 2 * sum(mean_duration_digital_ms * digital_events) / sum(digital_events))"
	    " FROM kanal.digital_adoption_monthly", v, sizeof(v));
	assert_string_equal(v, "t t t t");
	/* Manual channels only in office hours, weekdays, WIB. */
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly u JOIN kanal.channel c ON c.code = u.channel"
	    " WHERE c.mode = 'manual' AND (extract(hour FROM u.bucket AT TIME"
	    " ZONE 'Asia/Jakarta') NOT BETWEEN 8 AND 15 OR extract(isodow FROM"
	    " u.bucket AT TIME ZONE 'Asia/Jakarta') > 5)"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sent_events_reach_the_views,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_flushes_held_counts,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failed_flush_keeps_counts_and_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_acknowledges_without_database_and_counts_later, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_http_errors_are_specific,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_demo_gives_plausible_indicators, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
