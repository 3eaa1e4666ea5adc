/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fleet's batch ledger (daemon/ledger.c, schema/006_batch_ledger.sql)
 * against a real PostgreSQL, with several sessions at once where the
 * claims race:
 *
 *  - a batch claimed once is found counted by every later claim, in the
 *    same slot and across an epoch change;
 *  - two transactions claiming the same batch at once: the second waits
 *    for the first and, once it commits, finds the batch counted (and
 *    counts it itself when the first rolls back);
 *  - at the epoch boundary: a claim that starts while the advance waits
 *    for an older claim still finds that older claim's batch;
 *  - expiry empties exactly the slot the epoch enters, whatever the rows'
 *    first_seen or collector say (a clock far in the future, a collector
 *    that no longer exists); an epoch started in the future is due;
 *  - the collector lease: one session at a time, a retired collector is
 *    refused, a stale session of the same process is recognised.
 *
 * No sleeps: a session that must be waiting is waited for in pg_locks.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "ledger.h"

#define EPOCH_MS (8ULL * 3600 * 1000)

struct fx {
	char db[64];
	PGconn *a, *b, *c;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	th_db_create("ledger", f->db, sizeof(f->db));
	f->a = th_pg_connect(f->db);
	f->b = th_pg_connect(f->db);
	f->c = th_pg_connect(f->db);
	assert_int_equal(ledger_prepare(f->a, err, sizeof(err)), 0);
	assert_int_equal(ledger_prepare(f->b, err, sizeof(err)), 0);
	assert_int_equal(ledger_prepare(f->c, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	PQfinish(f->a);
	PQfinish(f->b);
	PQfinish(f->c);
	th_db_drop(f->db);
	free(f);
	return 0;
}

static void
batch(struct ledger_batch *b, uint8_t tag, uint64_t start)
{
	memset(b, 0, sizeof(*b));
	memset(b->digest, tag, sizeof(b->digest));
	b->source = "dukcapil-salaman";
	b->start = start;
}

/* One claim of batches tagged tags[0..n) in its own committed transaction. */
static long
claim_commit(PGconn *conn, const char *collector, const uint8_t *tags,
    size_t n)
{
	struct ledger_batch b[8];
	char err[512];
	int advance;
	long counted;

	for (size_t i = 0; i < n; i++)
		batch(&b[i], tags[i], 100 + i);
	th_exec(conn, "BEGIN");
	counted = ledger_claim(conn, collector, b, n, EPOCH_MS, &advance, err,
	    sizeof(err));
	if (counted < 0)
		fail_msg("ledger_claim: %s", err);
	th_exec(conn, "COMMIT");
	return counted;
}

static void
test_a_batch_claimed_once_is_counted_for_every_later_claim(void **state)
{
	struct fx *f = *state;
	const uint8_t first[] = { 1, 2 }, again[] = { 2, 3, 3 };
	struct ledger_batch b[3];
	char err[512];
	int advance;

	assert_int_equal(claim_commit(f->a, "a", first, 2), 0);
	/* 2 was counted by "a"; the second 3 repeats the first. */
	for (size_t i = 0; i < 3; i++)
		batch(&b[i], again[i], 200 + i);
	th_exec(f->b, "BEGIN");
	assert_int_equal(ledger_claim(f->b, "b", b, 3, EPOCH_MS, &advance,
	    err, sizeof(err)), 2);
	th_exec(f->b, "COMMIT");
	for (size_t i = 0; i < 3; i++) {
		uint8_t tag = b[i].digest[0];
		if (tag == 2)
			assert_true(b[i].counted);
		if (tag == 3)
			assert_int_equal(b[i].counted, b[i].start == 202);
	}
	assert_int_equal(advance, 0);
	assert_int_equal(th_query_i64(f->a, "SELECT count(*) FROM "
	    "kanal.batch_ledger"), 3);
	/* Across an epoch change: the old slot is still looked in. */
	th_exec(f->a, "UPDATE kanal.batch_ledger_epoch SET started_at = "
	    "now() - interval '9 hours'");
	assert_int_equal(ledger_advance(f->a, EPOCH_MS, err, sizeof(err)), 1);
	assert_int_equal(th_query_i64(f->a, "SELECT epoch FROM "
	    "kanal.batch_ledger_epoch"), 1);
	assert_int_equal(claim_commit(f->c, "c", first, 2), 2);
}

struct claimer {
	PGconn *conn;
	uint8_t tag;
	long counted;
	char err[512];
};

static void *
claim_thread(void *arg)
{
	struct claimer *c = arg;
	struct ledger_batch b;
	int advance;

	batch(&b, c->tag, 7);
	c->counted = ledger_claim(c->conn, "thread", &b, 1, EPOCH_MS, &advance,
	    c->err, sizeof(c->err));
	return NULL;
}

struct advancer {
	PGconn *conn;
	int moved;
	char err[512];
};

static void *
advance_thread(void *arg)
{
	struct advancer *a = arg;

	a->moved = ledger_advance(a->conn, EPOCH_MS, a->err, sizeof(a->err));
	return NULL;
}

/* Sessions waiting for a lock, as pg_locks sees them. */
struct waiting {
	PGconn *conn;
	int64_t want;
};

static int
n_waiting(void *arg)
{
	struct waiting *w = arg;

	/* Only this test's database: other tests run beside it. */
	return th_query_i64(w->conn, "SELECT count(*) FROM pg_locks l JOIN "
	    "pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND "
	    "a.datname = current_database()") >= w->want;
}

static void
test_a_concurrent_claim_waits_and_then_finds_it_counted(void **state)
{
	struct fx *f = *state;
	struct ledger_batch b;
	struct claimer c = { f->b, 9, -1, "" };
	struct waiting w = { f->c, 1 };
	pthread_t t;
	char err[512];
	int advance;

	batch(&b, 9, 1);
	th_exec(f->a, "BEGIN");
	assert_int_equal(ledger_claim(f->a, "a", &b, 1, EPOCH_MS, &advance,
	    err, sizeof(err)), 0);
	th_exec(f->b, "BEGIN");
	pthread_create(&t, NULL, claim_thread, &c);
	assert_true(th_wait(n_waiting, &w, 10000));
	th_exec(f->a, "COMMIT");
	pthread_join(t, NULL);
	assert_int_equal(c.counted, 1);
	th_exec(f->b, "COMMIT");

	/* The first rolls back: the waiting one counts it. */
	batch(&b, 10, 1);
	c.tag = 10;
	th_exec(f->a, "BEGIN");
	assert_int_equal(ledger_claim(f->a, "a", &b, 1, EPOCH_MS, &advance,
	    err, sizeof(err)), 0);
	th_exec(f->b, "BEGIN");
	pthread_create(&t, NULL, claim_thread, &c);
	assert_true(th_wait(n_waiting, &w, 10000));
	th_exec(f->a, "ROLLBACK");
	pthread_join(t, NULL);
	assert_int_equal(c.counted, 0);
	th_exec(f->b, "COMMIT");
	assert_int_equal(th_query_i64(f->c, "SELECT count(*) FROM "
	    "kanal.batch_ledger WHERE collector_id = 'thread'"), 1);
}

static void
test_a_claim_behind_the_epoch_advance_finds_the_older_claim(void **state)
{
	struct fx *f = *state;
	struct ledger_batch b;
	struct claimer c = { f->c, 11, -1, "" };
	struct advancer adv = { f->b, -1, "" };
	struct waiting w = { NULL, 1 };
	PGconn *watch = th_pg_connect(f->db);
	pthread_t ta, tc;
	char err[512];
	int advance;

	w.conn = watch;
	th_exec(f->a, "UPDATE kanal.batch_ledger_epoch SET started_at = "
	    "now() - interval '9 hours'");
	/* a claims 11 in epoch 0 (slot 0) and has not committed yet. */
	batch(&b, 11, 1);
	th_exec(f->a, "BEGIN");
	assert_int_equal(ledger_claim(f->a, "a", &b, 1, EPOCH_MS, &advance,
	    err, sizeof(err)), 0);
	assert_int_equal(advance, 1);
	/* The advance waits for a; c's claim waits behind the advance. */
	pthread_create(&ta, NULL, advance_thread, &adv);
	assert_true(th_wait(n_waiting, &w, 10000));
	th_exec(f->c, "BEGIN");
	pthread_create(&tc, NULL, claim_thread, &c);
	w.want = 2;
	assert_true(th_wait(n_waiting, &w, 10000));
	th_exec(f->a, "COMMIT");
	pthread_join(ta, NULL);
	pthread_join(tc, NULL);
	assert_int_equal(adv.moved, 1);
	/* c ran in epoch 1 (slot 1) and still saw a's row in slot 0. */
	if (c.counted != 1)
		fail_msg("claim behind the advance: counted=%ld err=%s",
		    c.counted, c.err);
	th_exec(f->c, "COMMIT");
	assert_int_equal(th_query_i64(watch, "SELECT count(*) FROM "
	    "kanal.batch_ledger WHERE slot = 1"), 1);
	PQfinish(watch);
}

static void
test_expiry_empties_the_slot_entered_whatever_its_rows_say(void **state)
{
	struct fx *f = *state;
	char err[512];

	/* Rows in slots 0..3; slot 1's from a clock far ahead, a gone one. */
	th_exec(f->a, "INSERT INTO kanal.batch_ledger (slot, digest, source, "
	    "first_seen, collector_id) SELECT s, md5(s::text)::uuid, 'src', "
	    "CASE s WHEN 1 THEN timestamptz '2100-01-01' ELSE now() END, "
	    "CASE s WHEN 1 THEN 'gone-long-ago' ELSE 'a' END "
	    "FROM generate_series(0, 3) s");
	/* Not due: nothing moves. */
	assert_int_equal(ledger_advance(f->a, EPOCH_MS, err, sizeof(err)), 0);
	/* An epoch that began in the server's future is due at once. */
	th_exec(f->a, "UPDATE kanal.batch_ledger_epoch SET started_at = "
	    "timestamptz '2100-01-01'");
	assert_int_equal(ledger_advance(f->a, EPOCH_MS, err, sizeof(err)), 1);
	assert_int_equal(th_query_i64(f->a, "SELECT count(*) FROM "
	    "kanal.batch_ledger WHERE slot = 1"), 0);
	assert_int_equal(th_query_i64(f->a, "SELECT count(*) FROM "
	    "kanal.batch_ledger"), 3);
	assert_int_equal(th_query_i64(f->a, "SELECT "
	    "(started_at <= now())::int FROM kanal.batch_ledger_epoch"), 1);
	/* Three more epochs: every slot has been emptied once. */
	for (int i = 0; i < 3; i++) {
		th_exec(f->a, "UPDATE kanal.batch_ledger_epoch SET "
		    "started_at = now() - interval '9 hours'");
		assert_int_equal(ledger_advance(f->a, EPOCH_MS, err,
		    sizeof(err)), 1);
	}
	assert_int_equal(th_query_i64(f->a, "SELECT count(*) FROM "
	    "kanal.batch_ledger"), 0);
	assert_int_equal(th_query_i64(f->a, "SELECT epoch FROM "
	    "kanal.batch_ledger_epoch"), 4);
}

struct lease_try {
	PGconn *conn;
	const char *name;
};

static int
lease_taken(void *arg)
{
	struct lease_try *l = arg;
	char holder[512], err[512];

	return ledger_lease_take(l->conn, "inst", l->name, holder,
	    sizeof(holder), err, sizeof(err)) == LEASE_TAKEN;
}

static void
test_the_lease_is_one_session_at_a_time(void **state)
{
	struct fx *f = *state;
	char holder[512], err[512], name_a[128], name_b[128];

	ledger_session_name(name_a, sizeof(name_a), "inst", 1);
	ledger_session_name(name_b, sizeof(name_b), "inst", 2);
	assert_int_equal(ledger_lease_take(f->a, "inst", name_a, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_TAKEN);
	/* Taking it again on the holding session is fine (re-entrant). */
	assert_int_equal(ledger_lease_take(f->a, "inst", name_a, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_TAKEN);
	assert_int_equal(ledger_lease_take(f->b, "inst", name_b, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_HELD);
	/* Another collector is free. */
	assert_int_equal(ledger_lease_take(f->b, "other", name_b, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_TAKEN);
	/*
	 * The holder ends: the lease goes with its session, as soon as the
	 * server has seen the session end (not at once: kanald's grace).
	 */
	PQfinish(f->a);
	f->a = th_pg_connect(f->db);
	{
		struct lease_try l = { f->b, name_b };

		assert_true(th_wait(lease_taken, &l, 10000));
	}
	/* Retired: refused, whoever asks. */
	assert_int_equal(ledger_retire(f->c, "gone", "test", err, sizeof(err)),
	    0);
	assert_int_equal(ledger_lease_take(f->c, "gone", name_a, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_RETIRED);
	assert_non_null(strstr(holder, "by test"));
}

static void
test_a_stale_session_of_this_process_is_recognised(void **state)
{
	struct fx *f = *state;
	char holder[512], err[512], name[128], other[128];
	char conninfo[256];
	PGconn *stale;
	struct lease_try l = { NULL, NULL };

	ledger_session_name(name, sizeof(name), "inst", 42);
	ledger_session_name(other, sizeof(other), "inst", 43);
	snprintf(conninfo, sizeof(conninfo), "dbname=%s application_name=%s",
	    f->db, name);
	stale = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(stale), CONNECTION_OK);
	assert_int_equal(ledger_lease_take(stale, "inst", name, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_TAKEN);
	/* Another process is told who holds it, and nothing is ended. */
	assert_int_equal(ledger_lease_take(f->b, "inst", other, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_HELD);
	assert_non_null(strstr(holder, name));
	/* The same process on a new session: the old one is ended. */
	assert_int_equal(ledger_lease_take(f->a, "inst", name, holder,
	    sizeof(holder), err, sizeof(err)), LEASE_OURS_STALE);
	l.conn = f->a;
	l.name = name;
	assert_true(th_wait(lease_taken, &l, 10000));
	PQfinish(stale);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_a_batch_claimed_once_is_counted_for_every_later_claim,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_concurrent_claim_waits_and_then_finds_it_counted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_claim_behind_the_epoch_advance_finds_the_older_claim,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_expiry_empties_the_slot_entered_whatever_its_rows_say,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_lease_is_one_session_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_stale_session_of_this_process_is_recognised, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
