/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reachdb: the flush's side of the distinct-resident sketches
 * (schema/010_reach.sql): which reach keys the database accepts, and the
 * sketch upserts inside the flush transaction.
 *
 * On every new connection reachdb_prepare looks for the reach tables
 * (migration 010 needs the hll extension, which a database server may
 * lack) and, when kanald has a key, registers it with kanal.reach_key_use:
 * the first key a database sees is its active key; a kanald with another
 * key is told so and its sketches are not written (a fleet whose
 * instances had different keys would count each resident once per key).
 * It then reads the ids of every key the database knows: the flush writes
 * sketches of those keys only (a WAL replayed after a rotation still
 * carries sketches of the old key, which the database knows as retired).
 *
 * reachdb_write runs inside the flush transaction, after the counts: COPY
 * of the frozen table's sketches into a session-local staging table, then
 * an hll_union upsert into the daily and monthly sketch tables, rows in
 * key order (no deadlock between instances). A union is idempotent, so
 * writing a sketch again (a retried flush, a batch that the fleet's
 * ledger says another instance counted) never counts a resident twice:
 * unlike the counts, no sketch is ever taken out.
 */
#ifndef KANAL_REACHDB_H
#define KANAL_REACHDB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct agg;
struct agg_table;

#define REACHDB_MAX_KEYS 64

enum reachdb_state {
	REACHDB_NO_TABLES,	/* migration 010 not applied: no hll */
	REACHDB_OFF,		/* tables there, kanald has no key */
	REACHDB_ACTIVE,		/* this kanald's key is the active one */
	REACHDB_OTHER_KEY,	/* another key is active: ours is not used */
	REACHDB_RETIRED,	/* our key was retired: not used */
	REACHDB_ERROR,		/* a reach query failed: sketches dropped */
};

struct reachdb {
	int reach_on;		/* kanald has a key */
	int64_t key_id;		/* its id, if reach_on */
	enum reachdb_state state;
	enum reachdb_state logged;	/* last state logged, to log changes */
	int64_t known[REACHDB_MAX_KEYS];	/* ids the database accepts */
	size_t nknown;
	char *upsert_sql;	/* made by reachdb_prepare */
	uint8_t *enc;		/* one encoded sketch */
	char *buf;		/* COPY text of one flush */
	size_t len, cap;
	int buf_failed;
	size_t rows;		/* of the last reachdb_write */
	size_t dropped;		/* sketches not written, last write */
	uint64_t failures;	/* reach statements that failed in a row */
};

/*
 * On a new connection, and again while the state is not active. A query
 * that fails on a working connection (no USAGE on the extension's schema,
 * say) sets REACHDB_ERROR and is logged: reach must never hold the counts
 * up. 0, or -1 with err when the connection itself broke.
 */
int reachdb_prepare(PGconn *conn, struct reachdb *r, char *err,
    size_t errlen);

/*
 * Inside the flush transaction: writes the sketches of t, under a
 * savepoint. A statement that fails on a working connection is rolled
 * back to the savepoint, logged, and its sketches counted as dropped: the
 * counts commit all the same. 0, or -1 with err when the connection broke
 * (the transaction must be rolled back). Sets r->rows and r->dropped.
 */
int reachdb_write(PGconn *conn, struct reachdb *r, const struct agg *a,
    const struct agg_table *t, char *err, size_t errlen);

/* A name for a state, for the log and /metrics. */
const char *reachdb_state_name(enum reachdb_state s);

void reachdb_free(struct reachdb *r);

#endif
