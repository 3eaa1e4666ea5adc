/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger: the fleet's shared memory of counted batches, in PostgreSQL
 * (kanal.batch_ledger, schema/006_batch_ledger.sql), and the lease that
 * lets one process at a time write under a collector_id.
 *
 * Ledger. Inside a flush transaction, ledger_claim inserts one row per
 * batch the flush carries and says which of them were counted already by
 * another transaction (another kanald, or this collector's WAL adopted
 * elsewhere): the flush takes those out before it upserts the counts. The
 * rows commit or roll back with the counts and the checkpoint. After a
 * commit, ledger_advance moves the epoch on when it is due, emptying the
 * slot it enters (TRUNCATE): expiry never deletes row by row.
 *
 * Lease. A session advisory lock on (LEASE_CLASS, hash of the collector_id)
 * held by the flush connection: a second process that wants the same
 * collector_id cannot take it while the first one's session lives. Why an
 * advisory lock and not a lease row with a time-out: it needs no clock,
 * no renewal and no privilege, it is released the moment the holder's
 * session ends (process killed, connection lost, server restarted), and
 * PostgreSQL itself says who holds it (pg_locks). The holder's session is
 * named in application_name as "kanald/ID/NONCE" (NONCE random per
 * process), so a process that finds the lease held by a session of its
 * own, left over from a connection the server has not yet seen die, can
 * tell that apart from another process.
 *
 * Every function runs statements on the caller's connection and returns
 * 0 or -1 with a one-line message in err; none of them opens, closes or
 * commits anything unless it says so.
 */
#ifndef KANAL_LEDGER_H
#define KANAL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* One batch of a flush. */
struct ledger_batch {
	uint8_t digest[16];	/* dedup_digest(source, batch_id) */
	const char *source;	/* NUL-terminated */
	uint64_t start;		/* WAL position of its record */
	int counted;		/* out: 1 = counted before, take it out */
};

/*
 * Creates the session's temporary staging table. Call once per
 * connection. 0, or -1 with err.
 */
int ledger_prepare(PGconn *conn, char *err, size_t errlen);

/*
 * In the caller's open transaction: takes the shared epoch lock, inserts
 * the ledger rows of b[0..n) for collector_id, and sets b[i].counted for
 * every batch another transaction had counted (or that repeats an earlier
 * batch of b). epoch_ms is the epoch length the caller wants (a third of
 * its dedup window); *advance is set to 1 when the epoch is due to move
 * on (call ledger_advance after the commit). Sorts b by digest. Returns
 * the number of batches counted before, or -1 with err (roll back).
 */
long ledger_claim(PGconn *conn, const char *collector_id,
    struct ledger_batch *b, size_t n, uint64_t epoch_ms, int *advance,
    char *err, size_t errlen);

/*
 * Its own transaction (no transaction may be open): moves the epoch on if
 * it is still due and empties the slot it enters. Waits for the flushes
 * in progress on every instance, and holds up new ones for as long as the
 * TRUNCATE takes. 1 moved, 0 not due (another instance did it), -1 with
 * err.
 */
int ledger_advance(PGconn *conn, uint64_t epoch_ms, char *err,
    size_t errlen);

/* The application_name a kanald session carries: "kanald/ID/NONCE". */
void ledger_session_name(char *buf, size_t len, const char *collector_id,
    uint64_t nonce);

enum lease_result {
	LEASE_TAKEN,		/* held by this session now */
	LEASE_OURS_STALE,	/* held by an older session of this process */
	LEASE_HELD,		/* held by another process: *holder says who */
	LEASE_RETIRED,		/* the collector was retired: *holder says when */
	LEASE_ERROR,		/* the query failed: err */
};

/*
 * Takes the collector's lease on this session, unless another session
 * holds it or the collector is retired. session_name is this process's
 * ledger_session_name. On LEASE_OURS_STALE the stale session was asked to
 * end (pg_terminate_backend, allowed for a session of the same role): try
 * again shortly. holder gets a description for the log.
 */
enum lease_result ledger_lease_take(PGconn *conn, const char *collector_id,
    const char *session_name, char *holder, size_t holderlen, char *err,
    size_t errlen);

/*
 * Marks collector_id retired (kanalctl wal adopt, holding its lease), in
 * the caller's transaction or on its own. by: who did it. 0, or -1.
 */
int ledger_retire(PGconn *conn, const char *collector_id, const char *by,
    char *err, size_t errlen);

#endif
