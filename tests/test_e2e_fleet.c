/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Several kanald instances, one database: exactly once across the fleet
 * (docs/fleet.md), against real kanald processes, their WALs on disk and
 * a real PostgreSQL:
 *
 *  - a batch retried on another instance is answered 200 there but not
 *    counted again: the ledger takes it out of that instance's flush, also
 *    when the flush holds other batches on the same key, and when the
 *    retry was the only thing on its key (no zero row is written);
 *  - a second kanald with the same collector-id exits 4, naming the
 *    holder;
 *  - kanalctl wal adopt counts a dead instance's unflushed batches once
 *    (one of them already counted elsewhere after a retry), refuses while
 *    that instance lives (its WAL directory's lock; its lease, for a copy
 *    of the WAL), marks the collector retired, and the retired collector
 *    cannot come back.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define SUM "SELECT coalesce(sum(events), 0) FROM kanal.usage_hourly"
#define LEDGER_DUPS "kanal_duplicate_batches_total{where=\"ledger\"}"

static int
setup(void **state)
{
	*state = th_fixture_new("fleet", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* POSTs n events of service with this batch_id; returns the status. */
static int
post(struct th_kanald *k, const char *token, const char *batch_id,
    const char *service, unsigned n)
{
	uint8_t body[16384];
	char hdr[256];
	size_t len = th_pack_batch(batch_id, service, n, body, sizeof(body));

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n", token);
	return th_http(k, "POST", "/v1/events", hdr, body, len, NULL, 0);
}

static void
start(struct th_fixture *f, struct th_kanald *k, const char *id,
    const char *interval)
{
	th_kanald_start(k, f->db, f->sources, (const char *const[]){
	    "--collector-id", id, "--flush-interval", interval,
	    "--lease-grace", "1s", NULL });
	/* The first flush runs at the first database contact. */
	th_wait_log(k, "write-ahead log replayed", 1);
}

/*
 * Runs kanald in the foreground on wal_dir as collector id until it exits
 * by itself (30 s at most: then it is killed, status 124); its log in out.
 * For a kanald that must refuse to run: it may exit before it answers
 * /healthz, so th_kanald_start can't be used.
 */
static int
run_until_exit(struct th_fixture *f, const char *wal_dir, const char *id,
    char *out, size_t len)
{
	char pg[128];

	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest", f->db);
	return th_run(out, len, (const char *const[]){ "/bin/sh", "-c",
	    "exec timeout 30 \"$0\" --listen 127.0.0.1:0 --sources \"$1\" "
	    "--wal-dir \"$2\" --collector-id \"$3\" --pg \"$4\" "
	    "--lease-grace 1s 2>&1", th_env("KANALD"), f->sources, wal_dir, id,
	    pg, NULL });
}

static void
test_a_retry_on_another_instance_is_counted_once(void **state)
{
	struct th_fixture *f = *state;
	struct th_kanald a, b, c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	start(f, &a, "fleet-a", "20ms");
	assert_int_equal(post(&a, f->token, "fleet-1", "dukcapil.akta-lahir",
	    50), 200);
	th_wait_count(f->conn, SUM, 50);

	/*
	 * b holds, in one flush, the retry of fleet-1 beside a new batch on
	 * the same key and one on another key: only the retry comes out.
	 */
	start(f, &b, "fleet-b", "1h");
	assert_int_equal(post(&b, f->token, "fleet-1", "dukcapil.akta-lahir",
	    50), 200);
	assert_int_equal(post(&b, f->token, "fleet-2", "dukcapil.akta-lahir",
	    30), 200);
	assert_int_equal(post(&b, f->token, "fleet-3", "dukcapil.kia", 20),
	    200);
	assert_int_equal(th_kanald_stop(&b, SIGTERM), 0);
	assert_int_equal(th_log_count(&b, "taken out of this flush: "
	    "batches=1"), 1);
	assert_int_equal(th_query_i64(f->conn, SUM), 100);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.akta-lahir'"),
	    80);

	/* A flush that holds nothing but a retry writes no row at all. */
	th_kanald_start(&b, f->db, f->sources, (const char *const[]){
	    "--collector-id", "fleet-b", "--flush-interval", "1h", NULL });
	th_wait_log(&b, "write-ahead log replayed", 1);
	assert_int_equal(post(&b, f->token, "fleet-3", "dukcapil.kia", 20),
	    200);
	assert_int_equal(th_kanald_stop(&b, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, SUM), 100);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 2);

	/* The metric says where it was caught; a's own stays at zero. */
	start(f, &c, "fleet-c", "20ms");
	assert_int_equal(post(&c, f->token, "fleet-2", "dukcapil.akta-lahir",
	    30), 200);
	th_wait_metric(&c, LEDGER_DUPS, 1);
	assert_int_equal(th_metric(&c, "kanal_duplicate_batches_total"
	    "{where=\"local\"}"), 0);
	assert_int_equal(th_metric(&a, LEDGER_DUPS), 0);
	assert_int_equal(th_metric(&a, "kanal_collector_lease"), 1);
	assert_int_equal(th_query_i64(f->conn, SUM), 100);
	/* One ledger row per distinct batch. */
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.batch_ledger"), 3);
	assert_int_equal(th_kanald_stop(&c, SIGTERM), 0);
	assert_int_equal(th_kanald_stop(&a, SIGTERM), 0);
}

static void
test_a_second_kanald_with_the_same_collector_id_exits_4(void **state)
{
	struct th_fixture *f = *state;
	struct th_kanald a;
	char dir[600], out[16384];

	memset(&a, 0, sizeof(a));
	start(f, &a, "twin", "20ms");
	th_wait_metric(&a, "kanal_collector_lease", 1);
	snprintf(dir, sizeof(dir), "%s/wal-twin", f->dir);
	assert_int_equal(run_until_exit(f, dir, "twin", out, sizeof(out)), 4);
	assert_non_null(strstr(out, "another process writes as "
	    "collector_id=twin"));
	assert_non_null(strstr(out, "application_name=\"kanald/twin/"));
	/* The first one never noticed. */
	assert_int_equal(post(&a, f->token, "twin-1", "dukcapil.kia", 5), 200);
	th_wait_count(f->conn, SUM, 5);
	assert_int_equal(th_kanald_stop(&a, SIGTERM), 0);
}

/* kanalctl wal adopt; returns its exit status, stdout in out. */
static int
adopt(struct th_fixture *f, const char *dir, const char *id, char *out,
    size_t len)
{
	char pg[128];

	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest", f->db);
	return th_run(out, len, (const char *const[]){ th_env("KANALCTL"),
	    "wal", "adopt", "--wal-dir", dir, "--collector-id", id, "--pg", pg,
	    "--deadline", "30", NULL });
}

static void
test_adopt_counts_a_dead_instance_once_and_retires_it(void **state)
{
	struct th_fixture *f = *state;
	struct th_kanald dead, live;
	char out[16384], copy[600];

	memset(&dead, 0, sizeof(dead));
	memset(&live, 0, sizeof(live));
	start(f, &dead, "dead-1", "1h");
	assert_int_equal(post(&dead, f->token, "d1", "dukcapil.kia", 10), 200);
	assert_int_equal(post(&dead, f->token, "d2", "dukcapil.kia", 20), 200);
	assert_int_equal(post(&dead, f->token, "d3", "dukcapil.akta-lahir",
	    30), 200);

	/* Alive: its WAL directory is locked, and so is its lease. */
	assert_int_equal(adopt(f, dead.wal_dir, "dead-1", out, sizeof(out)), 4);
	snprintf(copy, sizeof(copy), "%s/wal-copy", f->dir);
	assert_int_equal(th_run(out, sizeof(out), (const char *const[]){
	    "/bin/cp", "-a", dead.wal_dir, copy, NULL }), 0);
	assert_int_equal(unlink(strcat(strcpy(out, copy), "/LOCK")), 0);
	assert_int_equal(adopt(f, copy, "dead-1", out, sizeof(out)), 4);
	assert_int_equal(th_query_i64(f->conn, SUM), 0);
	/* A WAL is adopted under its own collector's name only. */
	assert_int_equal(adopt(f, copy, "someone-else", out, sizeof(out)), 1);

	/* The VM dies; one client's retry of d2 lands on another instance. */
	assert_int_equal(th_kanald_stop(&dead, SIGKILL), 128 + SIGKILL);
	start(f, &live, "live-1", "20ms");
	assert_int_equal(post(&live, f->token, "d2", "dukcapil.kia", 20), 200);
	th_wait_count(f->conn, SUM, 20);

	assert_int_equal(adopt(f, dead.wal_dir, "dead-1", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "batches=3 events=60 counted_elsewhere=1"));
	assert_int_equal(th_query_i64(f->conn, SUM), 60);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.kia'"), 30);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint WHERE collector_id = 'dead-1' AND "
	    "retired_at IS NOT NULL"), 1);

	/* Retired: neither kanald nor a second adopt runs under it again. */
	assert_int_equal(run_until_exit(f, dead.wal_dir, "dead-1", out,
	    sizeof(out)), 4);
	assert_non_null(strstr(out, "collector_id=dead-1 was retired"));
	assert_int_equal(adopt(f, copy, "dead-1", out, sizeof(out)), 4);
	assert_int_equal(th_query_i64(f->conn, SUM), 60);
	assert_int_equal(th_kanald_stop(&live, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_a_retry_on_another_instance_is_counted_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_second_kanald_with_the_same_collector_id_exits_4,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_adopt_counts_a_dead_instance_once_and_retires_it,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
