/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flush: writes the rollups to PostgreSQL, from a thread of its own.
 *
 * Every flush interval the thread freezes agg's active table and writes it
 * in one transaction: COPY into a session-local staging table, an
 * INSERT .. ON CONFLICT DO UPDATE per tier (hourly, daily, monthly cells)
 * that adds the counts (rows in key order, so that several collectors
 * upserting at once can't deadlock), and the collector's checkpoint row. A flush that fails keeps its frozen table and
 * is retried with capped exponential back-off; the failure is logged once
 * per back-off step. A commit whose outcome is unknown (the connection
 * dropped during COMMIT) is resolved by reading the checkpoint back after
 * reconnecting: if it holds the value that commit would have written, the
 * counts are in and are not written again. Should that COMMIT still be
 * finishing on the server, the retry's first statement, a compare-and-set
 * of the checkpoint row, waits for it and then finds the checkpoint
 * already there: the retry writes nothing.
 *
 * After a flush, on each new connection and then once a day, the thread
 * applies the hourly retention and makes the hourly partitions of every
 * month an event may fall in (schema/007_tiers.sql); a failure there is
 * logged and never fails a flush.
 *
 * Checkpoint positions are WAL positions: agg carries the end position of
 * the last record added, the frozen table the highest one in it, and that
 * is what the transaction stores. On the first connection the stored
 * checkpoint is handed to on_checkpoint (which replays the WAL after it
 * into agg) before anything is written; after each commit, on_committed
 * hears the new checkpoint (the WAL removes what it no longer needs).
 */
#ifndef KANAL_FLUSH_H
#define KANAL_FLUSH_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

struct agg;
struct flush;

/*
 * kanald's exit status when it must not write under its collector_id:
 * another live process holds the collector's lease, or the collector was
 * retired (its WAL adopted). systemd does not restart on it.
 */
#define FLUSH_EXIT_LEASE 4

struct flush_config {
	const char *conninfo;		/* "" = libpq's PG* environment */
	const char *collector_id;
	uint64_t interval_ms;
	uint64_t max_backoff_ms;	/* cap of the retry back-off */
	/*
	 * The WAL directory, from which a batch that the ledger says was
	 * counted elsewhere is read back to be taken out of the flush.
	 */
	const char *wal_dir;
	uint64_t ledger_epoch_ms;	/* a third of the dedup window */
	/*
	 * How long the collector's lease may be found held by another
	 * session before kanald gives up (a killed predecessor's session
	 * can outlive it by a moment). 0: give up at once.
	 */
	uint64_t lease_grace_ms;
	/*
	 * Tiers (schema/007_tiers.sql): how far back events are accepted, so
	 * the hourly partitions of those months are made ahead; and how many
	 * days of hourly rows to keep (0: kanald never drops any; kanalctl
	 * retention still can). Partitions and retention are seen to on
	 * connecting and once a day after.
	 */
	uint64_t event_max_age_ms;
	uint32_t hourly_days;
	/* This kanald's reach key (reach.h, reachdb.h), if reach_on. */
	int reach_on;
	int64_t reach_key_id;
	/*
	 * Called once, on the flush thread, with the checkpoint found at the
	 * first connection, before any flush. Returns 0, or -1 with a
	 * message in err: kanald cannot go on (logged; exit status 3). NULL:
	 * nothing to do.
	 */
	int (*on_checkpoint)(void *arg, uint64_t checkpoint, char *err,
	    size_t errlen);
	/* Called on the flush thread after each commit. May be NULL. */
	void (*on_committed)(void *arg, uint64_t checkpoint);
	void *arg;
};

struct flush_stats {
	int db_reached;			/* connected and replayed */
	int connected;
	uint64_t flushes;		/* committed transactions */
	uint64_t rows;			/* rows upserted, in all */
	uint64_t errors;		/* failed attempts */
	struct histogram duration_us;	/* each committed flush, BEGIN..COMMIT */
	uint64_t checkpoint;		/* last committed checkpoint */
	uint64_t ledger_batches;	/* ledger rows committed */
	uint64_t ledger_duplicates;	/* batches counted elsewhere, taken out */
	uint64_t ledger_epoch_advances;
	int lease_held;			/* this process holds the lease now */
	int lease_refused;		/* for good: see FLUSH_EXIT_LEASE */
	/* Tiers (schema/007_tiers.sql). */
	uint64_t late_past_retention;	/* events in daily/cells only */
	uint64_t default_rows;		/* rows in usage_hourly_default (gauge) */
	uint64_t partitions_created;
	uint64_t partitions_dropped;
	uint64_t maintenance_errors;	/* ensure or retention failed */
	int64_t hourly_kept_from;	/* Unix s; INT64_MIN: everything */
	/* Reach (reachdb.h). */
	int reach_state;		/* enum reachdb_state, last connection */
	uint64_t reach_rows;		/* sketch rows written */
	uint64_t reach_dropped;		/* sketches not written: see reachdb.h */
};

/* Strings in cfg are copied. NULL on out-of-memory. */
struct flush *flush_new(struct agg *a, const struct flush_config *cfg);
/* Starts the thread. 0, or -1 with errno. */
int flush_start(struct flush *f);
/*
 * Stops the thread: the held counts are flushed, retrying for at most
 * deadline_ms. Returns 0 when nothing is left unwritten, -1 otherwise.
 */
int flush_stop(struct flush *f, uint64_t deadline_ms);
/* flush_free(NULL) is a no-op. Stops the thread first if it runs. */
void flush_free(struct flush *f);

/*
 * One flush, on the calling thread (tests and kanalctl wal adopt; the
 * thread uses it too): connect if needed, freeze, write, release. Returns
 * 0 when the frozen table was committed (or was empty), -1 when it is
 * still held, -2 when the collector's lease is refused for good (held by
 * another process past the grace, or the collector is retired: the thread
 * then exits the process with FLUSH_EXIT_LEASE). Must not run at the same
 * time as the thread.
 */
int flush_once(struct flush *f);

/* A consistent copy of the counters. Any thread. */
void flush_get_stats(struct flush *f, struct flush_stats *st);

#endif
