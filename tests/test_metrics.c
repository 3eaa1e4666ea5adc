/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics: the histogram's bucket math, and the /metrics text of a
 * known snapshot, compared whole with tests/golden/metrics.prom (run with
 * KANAL_UPDATE_GOLDEN=1 to rewrite it after a deliberate change, and read
 * the diff). That the text passes `promtool check metrics` is checked
 * against the real kanald in test_e2e_metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "harness.h"
#include "histogram.h"
#include "metrics.h"
#include "validate.h"

/* The text metrics_render gives for s, NUL-terminated; free it. */
static char *
render(const struct metrics_snapshot *s)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *text;

	assert_non_null(b);
	assert_int_equal(metrics_render(s, b), 0);
	len = evbuffer_get_length(b);
	text = malloc(len + 1);
	assert_non_null(text);
	assert_int_equal(evbuffer_remove(b, text, len), (int)len);
	text[len] = '\0';
	evbuffer_free(b);
	return text;
}

/* The value of the sample line that starts with series + " ", or fails. */
static const char *
sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return p + n + 1;
		if (strchr(p, '\n') == NULL)
			break;
	}
	fail_msg("no sample %s in:\n%s", series, text);
	return NULL;
}

static void
assert_sample(const char *text, const char *series, const char *want)
{
	const char *v = sample(text, series);
	size_t n = strcspn(v, "\n");

	if (strlen(want) != n || strncmp(v, want, n) != 0)
		fail_msg("%s is %.*s, want %s", series, (int)n, v, want);
}

/* ------------------------------------------------------------ histogram */

static void
test_histogram_bucket_table(void **state)
{
	static const struct {
		const char *name;
		uint64_t us;
		size_t bucket;		/* HISTOGRAM_BUCKETS: +Inf only */
	} cases[] = {
		{ "zero goes in the first bucket", 0, 0 },
		{ "a value on a bound goes in that bound's bucket", 100, 0 },
		{ "one over a bound goes in the next", 101, 1 },
		{ "250 us is le 0.00025", 250, 1 },
		{ "2.2 ms, a typical fdatasync, is le 0.0025", 2200, 4 },
		{ "one second is le 1", 1000000, 12 },
		{ "just over one second is le 2.5", 1000001, 13 },
		{ "ten seconds is the last finite bucket", 10000000, 15 },
		{ "over ten seconds is +Inf only", 10000001, HISTOGRAM_BUCKETS },
		{ "an hour is +Inf only", 3600000000ULL, HISTOGRAM_BUCKETS },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct histogram h;

		memset(&h, 0, sizeof(h));
		histogram_observe(&h, cases[i].us);
		for (size_t j = 0; j <= HISTOGRAM_BUCKETS; j++) {
			uint64_t want = j >= cases[i].bucket ? 1 : 0;
			if (histogram_cumulative(&h, j) != want)
				fail_msg("%s: cumulative bucket %zu is %llu, "
				    "want %llu", cases[i].name, j,
				    (unsigned long long)histogram_cumulative(&h,
				    j), (unsigned long long)want);
		}
		assert_int_equal(h.count, 1);
		assert_int_equal(h.sum_us, cases[i].us);
	}
}

static void
test_histogram_bounds_ascend_from_100us_to_10s(void **state)
{
	(void)state;
	assert_int_equal(histogram_bounds_us[0], 100);
	assert_int_equal(histogram_bounds_us[HISTOGRAM_BUCKETS - 1], 10000000);
	for (size_t i = 1; i < HISTOGRAM_BUCKETS; i++)
		assert_true(histogram_bounds_us[i] > histogram_bounds_us[i - 1]);
}

static void
test_histogram_cumulative_counts_add_up_to_count_and_sum(void **state)
{
	struct histogram h;
	uint64_t sum = 0;

	(void)state;
	memset(&h, 0, sizeof(h));
	for (uint64_t us = 0; us < 20000000; us = us * 3 + 7) {
		histogram_observe(&h, us);
		sum += us;
	}
	assert_int_equal(histogram_cumulative(&h, HISTOGRAM_BUCKETS), h.count);
	assert_int_equal(histogram_cumulative(&h, HISTOGRAM_BUCKETS + 5),
	    h.count);
	assert_int_equal(h.sum_us, sum);
	for (size_t i = 1; i <= HISTOGRAM_BUCKETS; i++)
		assert_true(histogram_cumulative(&h, i) >=
		    histogram_cumulative(&h, i - 1));
}

/* -------------------------------------------------------------- render */

/* Every field set, each to a value of its own. */
static struct metrics_snapshot
known_snapshot(void)
{
	struct metrics_snapshot s;

	memset(&s, 0, sizeof(s));
	s.version = "0.1.0";
	s.start_time_ms = 1780000000123LL;
	s.inflight = 2;
	s.ingest.batches_ok = 7;
	s.ingest.batches_duplicate = 2;
	s.ingest.batches_client_error = 3;
	s.ingest.batches_unavailable = 1;
	s.ingest.batches_rate_limited = 4;
	s.ingest.events_accepted = 1234;
	s.ingest.events_duplicate = 20;
	s.ingest.events_rejected[KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_CODE_INVALID] = 5;
	s.ingest.events_rejected[KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_NOT_ALLOWED] = 6;
	s.ingest.events_rejected[KANAL__V1__REJECT_REASON__REJECT_REASON_TOO_OLD] = 1;
	s.ingest.events_rejected[KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_NIK] = 2;
	s.wal.bytes = 65664;
	s.wal.segments = 2;
	s.wal.first = 1000;
	s.wal.durable = 6000;
	s.wal.appended = 6100;
	s.wal.full = 1;
	s.dedup.no_space = 1;	/* batches.idx met a full disk */
	histogram_observe(&s.wal.sync_us, 100);
	histogram_observe(&s.wal.sync_us, 101);
	histogram_observe(&s.wal.sync_us, 2200);
	histogram_observe(&s.wal.sync_us, 2200);
	histogram_observe(&s.wal.sync_us, 12000000);
	s.flush.db_reached = 1;
	s.flush.connected = 1;
	s.flush.flushes = 9;
	s.flush.rows = 321;
	s.flush.errors = 4;
	s.flush.checkpoint = 5500;
	s.flush.ledger_batches = 40;
	s.flush.ledger_duplicates = 2;
	s.flush.ledger_epoch_advances = 1;
	s.flush.lease_held = 1;
	s.flush.late_past_retention = 6;
	s.flush.hourly_kept_from = 1759276800;	/* 2025-10-01T00:00:00Z */
	s.flush.partitions_created = 3;
	s.flush.partitions_dropped = 2;
	s.flush.default_rows = 0;
	s.flush.reach_state = 2;	/* REACHDB_ACTIVE */
	s.flush.reach_rows = 77;
	s.flush.reach_dropped = 3;
	s.agg.sketches = 12;
	s.agg.sketch_bytes = 40960;
	s.agg.reach_adds = 5000;
	s.agg.reach_dropped = 1;
	s.reach_on = 1;
	s.flush.maintenance_errors = 1;
	histogram_observe(&s.flush.duration_us, 250000);
	histogram_observe(&s.flush.duration_us, 180000);
	s.agg.keys = 17;
	s.agg.late_events = 3;
	s.dedup.entries = 8;
	s.dedup.evicted = 1;
	s.http.connections = 12;
	s.http.max_connections = 1024;
	s.http.refused = 5;
	s.http.overdue = 6;
	return s;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)n, fp);
	buf[*len] = '\0';
	fclose(fp);
	return buf;
}

static void
test_known_snapshot_renders_as_the_golden_text(void **state)
{
	struct metrics_snapshot s = known_snapshot();
	char path[1024], *got = render(&s), *want;
	size_t len, line = 1;
	const char *g, *w;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/golden/metrics.prom",
	    th_env("KANAL_SOURCE_DIR"));
	if (getenv("KANAL_UPDATE_GOLDEN") != NULL) {
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(got, fp);
		assert_int_equal(fclose(fp), 0);
		print_message("rewrote %s\n", path);
	}
	want = read_file(path, &len);
	if (want == NULL)
		fail_msg("cannot read %s", path);
	for (g = got, w = want; *g != '\0' && *g == *w; g++, w++)
		if (*g == '\n')
			line++;
	if (*g != *w)
		fail_msg("%s differs at line %zu:\n got: %.*s\nwant: %.*s\n"
		    "(KANAL_UPDATE_GOLDEN=1 rewrites it)", path, line,
		    (int)strcspn(g, "\n"), g, (int)strcspn(w, "\n"), w);
	free(got);
	free(want);
}

static void
test_known_snapshot_values(void **state)
{
	static const struct {
		const char *series;
		const char *want;
	} cases[] = {
		{ "kanal_events_total{result=\"accepted\"}", "1234" },
		{ "kanal_events_total{result=\"rejected\"}", "14" },
		{ "kanal_events_total{result=\"duplicate\"}", "20" },
		{ "kanal_rejections_total{code=\"service_code_invalid\"}", "5" },
		{ "kanal_rejections_total{code=\"service_not_allowed\"}", "6" },
		{ "kanal_rejections_total{code=\"too_old\"}", "1" },
		{ "kanal_rejections_total{code=\"citizen_ref_nik\"}", "2" },
		{ "kanal_rejections_total{code=\"in_future\"}", "0" },
		{ "kanal_batches_total{result=\"ok\"}", "7" },
		{ "kanal_batches_total{result=\"duplicate\"}", "2" },
		{ "kanal_batches_total{result=\"client_error\"}", "3" },
		{ "kanal_batches_total{result=\"unavailable\"}", "1" },
		{ "kanal_batches_total{result=\"rate_limited\"}", "4" },
		{ "kanal_http_connections", "12" },
		{ "kanal_http_connections_max", "1024" },
		{ "kanal_http_connections_refused_total", "5" },
		{ "kanal_http_requests_overdue_total", "6" },
		{ "kanal_wal_bytes", "65664" },
		{ "kanal_wal_full", "1" },
		{ "kanal_wal_failed", "0" },
		{ "kanal_disk_full", "1" },
		{ "kanal_wal_sync_seconds_bucket{le=\"0.0001\"}", "1" },
		{ "kanal_wal_sync_seconds_bucket{le=\"0.00025\"}", "2" },
		{ "kanal_wal_sync_seconds_bucket{le=\"0.001\"}", "2" },
		{ "kanal_wal_sync_seconds_bucket{le=\"0.0025\"}", "4" },
		{ "kanal_wal_sync_seconds_bucket{le=\"10\"}", "4" },
		{ "kanal_wal_sync_seconds_bucket{le=\"+Inf\"}", "5" },
		{ "kanal_wal_sync_seconds_sum", "12.004601" },
		{ "kanal_wal_sync_seconds_count", "5" },
		{ "kanal_checkpoint_lag_bytes", "500" },
		{ "kanal_flush_seconds_bucket{le=\"0.1\"}", "0" },
		{ "kanal_flush_seconds_bucket{le=\"0.25\"}", "2" },
		{ "kanal_flush_seconds_sum", "0.430000" },
		{ "kanal_flushes_total", "9" },
		{ "kanal_flush_rows_total", "321" },
		{ "kanal_database_errors_total", "4" },
		{ "kanal_database_up", "1" },
		{ "kanal_rollup_keys", "17" },
		{ "kanal_late_events_total", "3" },
		{ "kanal_dedup_entries", "8" },
		{ "kanal_build_info{version=\"0.1.0\"}", "1" },
		{ "process_start_time_seconds", "1780000000.123" },
	};
	struct metrics_snapshot s = known_snapshot();
	char *text = render(&s);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_sample(text, cases[i].series, cases[i].want);
	free(text);
}

static void
test_every_reason_code_is_a_series_even_at_zero(void **state)
{
	struct metrics_snapshot s;
	char *text, series[128];
	size_t n = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	text = render(&s);
	for (int r = 1; strcmp(validate_reason_name(
	    (Kanal__V1__RejectReason)r), "unknown") != 0; r++) {
		snprintf(series, sizeof(series),
		    "kanal_rejections_total{code=\"%s\"}",
		    validate_reason_name((Kanal__V1__RejectReason)r));
		assert_sample(text, series, "0");
		n++;
	}
	assert_int_equal(n, 10);
	assert_null(strstr(text, "code=\"unspecified\""));
	free(text);
}

/* Counters end in _total; each family has HELP then TYPE, once. */
static void
test_every_family_has_help_and_type_and_counters_end_in_total(void **state)
{
	struct metrics_snapshot s = known_snapshot();
	char *text = render(&s), *save = NULL, *line, last_help[128] = "";
	size_t families = 0;

	(void)state;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[128], type[32];

		if (sscanf(line, "# HELP %127s", name) == 1) {
			snprintf(last_help, sizeof(last_help), "%s", name);
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			families++;
			if (strcmp(name, last_help) != 0)
				fail_msg("TYPE %s without its HELP before it",
				    name);
			if (strcmp(type, "counter") == 0) {
				size_t n = strlen(name);
				assert_true(n > 6 &&
				    strcmp(name + n - 6, "_total") == 0);
			}
			continue;
		}
		/* A sample: its name starts with the family's. */
		if (strncmp(line, last_help, strlen(last_help)) != 0)
			fail_msg("sample outside its family: %s", line);
	}
	assert_int_equal(families, 43);
	free(text);
}

static void
test_label_values_are_escaped(void **state)
{
	struct metrics_snapshot s;
	char *text;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.version = "1.0 \"rc\\1\"\nx";
	text = render(&s);
	assert_sample(text,
	    "kanal_build_info{version=\"1.0 \\\"rc\\\\1\\\"\\nx\"}", "1");
	free(text);
}

static void
test_checkpoint_lag_table(void **state)
{
	static const struct {
		const char *name;
		int db_reached;
		uint64_t checkpoint, first, durable, want;
	} cases[] = {
		{ "all flushed", 1, 5000, 1000, 5000, 0 },
		{ "durable past the checkpoint", 1, 5000, 1000, 7500, 2500 },
		{ "checkpoint ahead of this WAL's durable end", 1, 9000, 1000,
		    7500, 0 },
		{ "database never reached: all the WAL holds", 0, 0, 1000,
		    7500, 6500 },
		{ "database never reached, empty WAL", 0, 0, 1000, 1000, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_snapshot s;
		uint64_t got;

		memset(&s, 0, sizeof(s));
		s.flush.db_reached = cases[i].db_reached;
		s.flush.checkpoint = cases[i].checkpoint;
		s.wal.first = cases[i].first;
		s.wal.durable = cases[i].durable;
		got = metrics_checkpoint_lag(&s);
		if (got != cases[i].want)
			fail_msg("%s: lag %llu, want %llu", cases[i].name,
			    (unsigned long long)got,
			    (unsigned long long)cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram_bucket_table),
		cmocka_unit_test(test_histogram_bounds_ascend_from_100us_to_10s),
		cmocka_unit_test(test_histogram_cumulative_counts_add_up_to_count_and_sum),
		cmocka_unit_test(test_known_snapshot_renders_as_the_golden_text),
		cmocka_unit_test(test_known_snapshot_values),
		cmocka_unit_test(test_every_reason_code_is_a_series_even_at_zero),
		cmocka_unit_test(test_every_family_has_help_and_type_and_counters_end_in_total),
		cmocka_unit_test(test_label_values_are_escaped),
		cmocka_unit_test(test_checkpoint_lag_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
