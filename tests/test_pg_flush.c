/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flush against a real PostgreSQL: a flush writes exactly what agg held,
 * later flushes add to the same rows, the checkpoint row follows, a flush
 * the database refuses keeps its counts, and several collectors upserting
 * the same keys at once neither deadlock nor lose counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "agg.h"
#include "flush.h"
#include "harness.h"
#include "log.h"

struct fixture {
	char db[64];
	char conninfo[128];
	PGconn *conn;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	log_init("test_pg_flush", LOG_LEVEL_ERR);
	th_db_create("flush", f->db, sizeof(f->db));
	snprintf(f->conninfo, sizeof(f->conninfo), "dbname=%s user=kanal_ingest",
	    f->db);
	f->conn = th_pg_connect(f->db);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	PQfinish(f->conn);
	th_db_drop(f->db);
	free(f);
	return 0;
}

/* 2026-03-01 16:30 UTC, in ms. */
#define T0 1772382600000LL

static struct agg_event
ev(const char *service, const char *region, int channel, int outcome,
    int assisted, uint32_t duration, int64_t at)
{
	struct agg_event e = {
		.occurred_at_ms = at,
		.service = service, .service_len = strlen(service),
		.region = region, .region_len = strlen(region),
		.duration_ms = duration,
		.channel = (uint8_t)channel,
		.outcome = (uint8_t)outcome,
		.assisted = (uint8_t)assisted,
	};
	return e;
}

static struct flush *
new_flush(struct fixture *f, struct agg *a, const char *collector)
{
	struct flush_config fc = { .conninfo = f->conninfo,
	    .collector_id = collector, .interval_ms = 1000,
	    .max_backoff_ms = 1000 };
	struct flush *fl = flush_new(a, &fc);

	assert_non_null(fl);
	return fl;
}

static void
test_flush_writes_exactly_what_agg_held(void **state)
{
	struct fixture *f = *state;
	struct agg *a = agg_new();
	struct flush *fl = new_flush(f, a, "c1");
	struct agg_event e[] = {
		ev("dukcapil.akta-lahir", "32.73.01", 1, 1, 0, 1000, T0),
		ev("dukcapil.akta-lahir", "32.73.01", 1, 1, 0, 3000, T0 + 1),
		ev("dukcapil.akta-lahir", "32.73.01", 1, 1, 0, 0, T0 + 2),
		ev("dukcapil.akta-lahir", "32.73.01", 6, 2, 1, 500, T0),
		/* next hour */
		ev("dukcapil.akta-lahir", "32.73.01", 1, 1, 0, 0, T0 + 1800000),
	};
	char v[256];

	assert_int_equal(agg_add(a, e, 5, 1, NULL), 0);
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(agg_keys(a), 0);
	th_query_text(f->conn, "SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|"
	    "%s|%s', bucket AT TIME ZONE 'UTC', service_code, channel,"
	    " region_code, outcome, assisted, events, duration_ms_sum,"
	    " duration_events), ';' ORDER BY bucket, channel)"
	    " FROM kanal.usage_hourly", v, sizeof(v));
	assert_string_equal(v,
	    "2026-03-01 16:00:00|dukcapil.akta-lahir|counter|32.73.01|abandoned|t|1|500|1;"
	    "2026-03-01 16:00:00|dukcapil.akta-lahir|web|32.73.01|completed|f|3|4000|2;"
	    "2026-03-01 17:00:00|dukcapil.akta-lahir|web|32.73.01|completed|f|1|0|0");
	assert_int_equal(th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint WHERE collector_id = 'c1'"), 1);
	flush_free(fl);
	agg_free(a);
}

static void
test_later_flushes_add_to_the_same_rows(void **state)
{
	struct fixture *f = *state;
	struct agg *a = agg_new();
	struct flush *fl = new_flush(f, a, "c1");
	struct agg_event e = ev("bapenda.pbb", "32.73.02", 5, 1, 0, 100, T0);

	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(agg_add(a, &e, 1, i, NULL), 0);
		assert_int_equal(flush_once(fl), 0);
	}
	assert_int_equal(th_query_i64(f->conn, "SELECT events * 1000 +"
	    " duration_ms_sum FROM kanal.usage_hourly"), 3 * 1000 + 300);
	assert_int_equal(th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint"), 3);
	/* A flush with nothing held writes nothing, not even the checkpoint. */
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint"), 3);
	flush_free(fl);
	agg_free(a);
}

static void
test_refused_flush_keeps_its_counts(void **state)
{
	struct fixture *f = *state;
	struct agg *a = agg_new();
	struct flush *fl = new_flush(f, a, "c1");
	struct agg_event e = ev("dinkes.imunisasi", "32.73.03", 6, 1, 0, 0, T0);

	assert_int_equal(agg_add(a, &e, 1, 1, NULL), 0);
	th_exec(f->conn, "REVOKE INSERT ON kanal.usage_hourly FROM "
	    "kanal_ingest");
	/* Fails after the checkpoint was set: it must roll back with it. */
	assert_int_equal(flush_once(fl), -1);
	assert_int_equal(agg_keys(a), 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);
	/* Newer events wait in the active table meanwhile. */
	assert_int_equal(agg_add(a, &e, 1, 2, NULL), 0);
	assert_int_equal(flush_once(fl), -1);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint"), 0);
	th_exec(f->conn, "GRANT INSERT ON kanal.usage_hourly TO kanal_ingest");
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(agg_keys(a), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT events FROM "
	    "kanal.usage_hourly"), 2);
	flush_free(fl);
	agg_free(a);
}

/*
 * A COMMIT whose answer was lost may still be finishing when the retry
 * comes; the checkpoint is compare-and-set, so a retry that finds it
 * already at or past its own writes nothing.
 */
static void
test_flush_already_covered_by_the_checkpoint_is_not_repeated(void **state)
{
	struct fixture *f = *state;
	struct agg *a = agg_new();
	struct flush *fl = new_flush(f, a, "c1");
	struct agg_event e = ev("dukcapil.kia", "32.73.04", 1, 1, 0, 0, T0);

	assert_int_equal(agg_add(a, &e, 1, 10, NULL), 0);
	assert_int_equal(flush_once(fl), 0);
	/* As if a lost COMMIT of positions up to 20 had happened after all. */
	th_exec(f->conn, "UPDATE kanal.collector_checkpoint SET wal_position "
	    "= 20");
	assert_int_equal(agg_add(a, &e, 1, 20, NULL), 0);
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(agg_keys(a), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT events FROM "
	    "kanal.usage_hourly"), 1);
	/* Past it, flushes write again. */
	assert_int_equal(agg_add(a, &e, 1, 30, NULL), 0);
	assert_int_equal(flush_once(fl), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT events FROM "
	    "kanal.usage_hourly"), 2);
	assert_int_equal(th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint"), 30);
	flush_free(fl);
	agg_free(a);
}

#define NKEYS 3000
#define ROUNDS 20

static char regions[NKEYS][16];	/* filled before the racers start */

struct racer {
	struct fixture *f;
	const char *collector;
	int reverse;
	int failures;
};

/*
 * Each racer holds the same keys, added in opposite orders; the flush's
 * ORDER BY makes both lock rows in one order, so neither waits for the
 * other in a cycle.
 */
static void *
race(void *arg)
{
	struct racer *r = arg;
	struct agg *a = agg_new();
	struct flush_config fc = { .conninfo = r->f->conninfo,
	    .collector_id = r->collector, .interval_ms = 1000,
	    .max_backoff_ms = 1000 };
	struct flush *fl = flush_new(a, &fc);

	for (int round = 1; round <= ROUNDS; round++) {
		for (int j = 0; j < NKEYS; j++) {
			int i = r->reverse ? NKEYS - 1 - j : j;
			struct agg_event e = ev("dukcapil.kia", regions[i], 1,
			    1, 0, 0, T0);
			agg_add(a, &e, 1, (uint64_t)round, NULL);
		}
		if (flush_once(fl) != 0)
			r->failures++;
	}
	while (agg_keys(a) != 0 && r->failures < 100)
		if (flush_once(fl) != 0)
			r->failures++;
	flush_free(fl);
	agg_free(a);
	return NULL;
}

static void
test_collectors_upserting_at_once_add_up(void **state)
{
	struct fixture *f = *state;
	struct racer r[2] = { { f, "c-a", 0, 0 }, { f, "c-b", 1, 0 } };
	pthread_t t[2];

	for (int i = 0; i < NKEYS; i++)
		snprintf(regions[i], sizeof(regions[i]), "32.73.%02d.%04d",
		    1 + i % 30, i);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* A deadlock would show as a failed flush (and a retry). */
	assert_int_equal(r[0].failures + r[1].failures, 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), NKEYS);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 2 * NKEYS * ROUNDS);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint WHERE wal_position = " "20"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_flush_writes_exactly_what_agg_held, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_later_flushes_add_to_the_same_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_flush_keeps_its_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_flush_already_covered_by_the_checkpoint_is_not_repeated,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_collectors_upserting_at_once_add_up, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
