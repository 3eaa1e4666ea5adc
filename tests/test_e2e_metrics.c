/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: GET /metrics of the real kanald, after batches with
 * accepted, rejected and duplicate events, a 403 and a 401, flushes to a
 * real PostgreSQL and a late event; and of a kanald whose database is
 * unreachable. Each scrape must pass `promtool check metrics` (Debian
 * package "prometheus"; the test fails, not skips, without it).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"
#include "httpc.h"

#define HOUR_MS 3600000LL
#define DEADLINE_MS 15000

static int
setup(void **state)
{
	*state = th_fixture_new("met", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* ------------------------------------------------------------- sending */

struct ev {
	const char *service;
	const char *region;
	int64_t at_ms;
};

struct ack {
	int status;
	uint32_t accepted, rejected;
	int duplicate;
};

/* POSTs one batch of the events in evs, once; the answer in *a. */
static void
send_batch(struct th_fixture *f, const char *batch_id, const struct ev *evs,
    size_t n, struct ack *a)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[8], *evp[8];
	struct client_result res;
	struct httpc *c;
	char err[256];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)evs[i].service;
		ev[i].channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
		ev[i].region_code = (char *)evs[i].region;
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].occurred_at_ms = evs[i].at_ms;
		evp[i] = &ev[i];
	}
	b.batch_id = (char *)batch_id;
	b.n_events = n;
	b.events = evp;
	c = httpc_new(f->k.url, 10000, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(client_send(c, f->token, &b, 1, &res), 0);
	memset(a, 0, sizeof(*a));
	a->status = res.status;
	if (res.ack != NULL) {
		a->accepted = res.ack->accepted;
		a->rejected = res.ack->rejected;
		a->duplicate = res.ack->duplicate;
	}
	client_result_clear(&res);
	httpc_free(c);
}

/* ------------------------------------------------------------- scraping */

/* GET /metrics: 200 with the exposition content type; the body, malloc'd. */
static char *
scrape(struct th_fixture *f)
{
	struct httpc_response r;
	struct httpc *c;
	char err[256], *body;

	c = httpc_new(f->k.url, 10000, err, sizeof(err));
	assert_non_null(c);
	if (httpc_request(c, "GET", "/metrics", NULL, NULL, 0, &r, err,
	    sizeof(err)) == -1)
		fail_msg("GET /metrics: %s", err);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type,
	    "text/plain; version=0.0.4; charset=utf-8");
	body = strdup(r.body);
	assert_non_null(body);
	httpc_free(c);
	return body;
}

/* The value of the sample series ("name" or "name{labels}"); -1: absent. */
static long long
value_in(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0'; ) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

static long long
metric(struct th_fixture *f, const char *series)
{
	char *text = scrape(f);
	long long v = value_in(text, series);

	if (v == -1)
		fail_msg("no series %s in /metrics:\n%s", series, text);
	free(text);
	return v;
}

struct want {
	struct th_fixture *f;
	const char *series;
	long long value;
};

static int
metric_is(void *arg)
{
	struct want *w = arg;

	return metric(w->f, w->series) == w->value;
}

static void
wait_metric(struct th_fixture *f, const char *series, long long value)
{
	struct want w = { f, series, value };

	if (!th_wait(metric_is, &w, DEADLINE_MS))
		fail_msg("%s is %lld after %d ms, want %lld", series,
		    metric(f, series), DEADLINE_MS, value);
}

static int
metric_at_least(void *arg)
{
	struct want *w = arg;

	return metric(w->f, w->series) >= w->value;
}

static void
wait_metric_at_least(struct th_fixture *f, const char *series, long long value)
{
	struct want w = { f, series, value };

	if (!th_wait(metric_at_least, &w, DEADLINE_MS))
		fail_msg("%s is %lld after %d ms, want at least %lld", series,
		    metric(f, series), DEADLINE_MS, value);
}

/* Each series at its expected value, in one scrape. */
static void
assert_metrics(struct th_fixture *f, const char *const *series,
    const long long *want, size_t n)
{
	char *text = scrape(f);

	for (size_t i = 0; i < n; i++) {
		long long got = value_in(text, series[i]);
		if (got != want[i])
			fail_msg("%s is %lld, want %lld; /metrics:\n%s",
			    series[i], got, want[i], text);
	}
	free(text);
}

/* The promtool binary on PATH, or the test fails saying what to install. */
static void
find_promtool(char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096], *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s", path != NULL ? path :
	    "/usr/bin:/bin");
	for (char *d = strtok_r(dirs, ":", &save); d != NULL;
	    d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/promtool", d);
		if (access(out, X_OK) == 0)
			return;
	}
	fail_msg("promtool not found on PATH: install the Debian package "
	    "\"prometheus\" (apt-get install prometheus; it ships "
	    "/usr/bin/promtool), which scripts/lib.sh lists");
}

/* `promtool check metrics` must accept a scrape: exit 0, nothing said. */
static void
promtool_accepts(struct th_fixture *f)
{
	char promtool[1024], file[700], cmd[2048], out[8192];
	char *text = scrape(f);
	size_t n = 0;
	FILE *fp;
	int st;

	find_promtool(promtool, sizeof(promtool));
	snprintf(file, sizeof(file), "%s/metrics.prom", f->dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", promtool,
	    file);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	st = pclose(fp);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* The scrape first: cmocka cuts long failure messages. */
		fprintf(stderr, "the scrape promtool refused (also in %s):\n%s",
		    file, text);
		fail_msg("%s check metrics failed (status %d): %s", promtool,
		    st == -1 ? -1 : WEXITSTATUS(st), out);
	}
	free(text);
}

/* ---------------------------------------------------------------- tests */

static void
test_metrics_count_what_was_answered_and_pass_promtool(void **state)
{
	struct th_fixture *f = *state;
	/*
	 * "Now" events two minutes ahead: their hour can't end while the
	 * test runs, so none of them can be late by accident.
	 */
	int64_t now = client_now_ms() + 2 * 60000;
	int64_t past = (client_now_ms() - 3 * HOUR_MS) / HOUR_MS * HOUR_MS +
	    60000;
	const struct ev mixed[] = {
		{ "dukcapil.akta-lahir", "32.73.01.1001", now },
		{ "dukcapil.akta-lahir", "32.73.01.1001", now },
		{ "dukcapil.akta-lahir", "32.73.01.1001", now },
		{ "Not A Code", "32.73.01.1001", now },
		{ "dukcapil.akta-lahir", "99.x", now },
		{ "bapenda.pbb", "32.73.01.1001", now },
	};
	const struct ev other_key[] = {
		{ "dukcapil.kia", "32.73.02", now },
		{ "dukcapil.kia", "32.73.02", now },
		{ "dukcapil.kia", "32.73.02", now - 30 * 24 * HOUR_MS },
	};
	const struct ev not_allowed[] = {
		{ "bapenda.pbb", "32.73", now },
		{ "bapenda.pbb", "32.73", now },
	};
	const struct ev three_hours_ago[] = {
		{ "dukcapil.ktp", "32.73", past },
		{ "dukcapil.ktp", "32.73", past + 1000 },
	};
	static const char *const answered[] = {
		"kanal_events_total{result=\"accepted\"}",
		"kanal_events_total{result=\"rejected\"}",
		"kanal_events_total{result=\"duplicate\"}",
		"kanal_rejections_total{code=\"service_code_invalid\"}",
		"kanal_rejections_total{code=\"region_code_invalid\"}",
		"kanal_rejections_total{code=\"service_not_allowed\"}",
		"kanal_rejections_total{code=\"too_old\"}",
		"kanal_rejections_total{code=\"in_future\"}",
		"kanal_rejections_total{code=\"citizen_ref_nik\"}",
		"kanal_batches_total{result=\"ok\"}",
		"kanal_batches_total{result=\"duplicate\"}",
		"kanal_batches_total{result=\"client_error\"}",
		"kanal_batches_total{result=\"unavailable\"}",
		"kanal_flush_rows_total",
		"kanal_dedup_entries",
		"kanal_database_up",
		"kanal_wal_full",
		"kanal_wal_failed",
		"kanal_late_events_total",
		"kanal_inflight_requests",
		"kanal_checkpoint_lag_bytes",
	};
	static const long long want[] = {
		5, 6, 3,
		1, 1, 3, 1, 0, 0,
		2, 1, 2, 0,
		2, 2, 1, 0, 0, 0, 0, 0,
	};
	struct ack a;
	char body[256];

	(void)state;
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });

	send_batch(f, "mixed-1", mixed, 6, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.accepted, 3);
	assert_int_equal(a.rejected, 3);
	send_batch(f, "other-1", other_key, 3, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.accepted, 2);
	send_batch(f, "mixed-1", mixed, 6, &a);	/* a retry */
	assert_int_equal(a.status, 200);
	assert_int_equal(a.duplicate, 1);
	assert_int_equal(a.accepted, 3);
	send_batch(f, "pbb-1", not_allowed, 2, &a);
	assert_int_equal(a.status, 403);
	assert_int_equal(th_http(&f->k, "POST", "/v1/events", NULL, "x", 1,
	    body, sizeof(body)), 401);

	/* Everything flushed: nothing held, the checkpoint caught up. */
	wait_metric(f, "kanal_rollup_keys", 0);
	wait_metric(f, "kanal_checkpoint_lag_bytes", 0);
	assert_metrics(f, answered, want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 5);
	assert_true(metric(f, "kanal_wal_bytes") > 0);
	assert_true(metric(f, "kanal_wal_segments") >= 1);
	assert_true(metric(f, "kanal_wal_sync_seconds_count") >= 2);
	assert_int_equal(metric(f, "kanal_wal_sync_seconds_bucket{le=\"+Inf\"}"),
	    metric(f, "kanal_wal_sync_seconds_count"));
	assert_true(metric(f, "kanal_flushes_total") >= 1);
	assert_int_equal(metric(f, "kanal_flush_seconds_count"),
	    metric(f, "kanal_flushes_total"));
	assert_int_equal(metric(f, "kanal_database_errors_total"), 0);
	assert_int_equal(metric(f, "kanal_build_info{version=\"" KANAL_VERSION
	    "\"}"), 1);
	assert_true(metric(f, "process_start_time_seconds") >
	    client_now_ms() / 1000 - 600);

	/*
	 * Late events: an hour three hours back is flushed; one more event
	 * for it afterwards is late, and only that one.
	 */
	send_batch(f, "past-1", three_hours_ago, 2, &a);
	assert_int_equal(a.accepted, 2);
	wait_metric(f, "kanal_flush_rows_total", 3);
	wait_metric(f, "kanal_rollup_keys", 0);
	assert_int_equal(metric(f, "kanal_late_events_total"), 0);
	send_batch(f, "past-2", three_hours_ago, 1, &a);
	assert_int_equal(a.accepted, 1);
	wait_metric(f, "kanal_late_events_total", 1);
	wait_metric(f, "kanal_flush_rows_total", 4);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.ktp'"), 3);

	promtool_accepts(f);
	/* GET (and HEAD) only. */
	assert_int_equal(th_http(&f->k, "POST", "/metrics", NULL, "", 0, body,
	    sizeof(body)), 405);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

static void
test_metrics_show_an_unreachable_database(void **state)
{
	struct th_fixture *f = *state;
	const struct ev one[] = {
		{ "dukcapil.kia", "32.73.02", client_now_ms() },
	};
	struct ack a;
	long long bytes;

	(void)state;
	/* Port 1 on loopback: nothing listens there. */
	th_kanald_start(&f->k, NULL, f->sources, (const char *const[]){
	    "--pg", "host=127.0.0.1 port=1 dbname=x connect_timeout=1",
	    "--flush-interval", "100ms", "--shutdown-timeout", "500ms",
	    NULL });
	send_batch(f, "no-db-1", one, 1, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(metric(f, "kanal_database_up"), 0);
	/* Held in the WAL only until the checkpoint is known (invariant 8). */
	assert_int_equal(metric(f, "kanal_rollup_keys"), 0);
	assert_int_equal(metric(f, "kanal_flushes_total"), 0);
	/* The checkpoint is unknown: everything in the WAL is behind. */
	bytes = metric(f, "kanal_checkpoint_lag_bytes");
	assert_true(bytes > 0);
	assert_true(bytes < metric(f, "kanal_wal_bytes"));
	wait_metric_at_least(f, "kanal_database_errors_total", 1);
	promtool_accepts(f);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_metrics_count_what_was_answered_and_pass_promtool,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_metrics_show_an_unreachable_database, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
