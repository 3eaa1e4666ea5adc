/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adopt: `kanalctl wal adopt`, for an instance that will never come back.
 *
 * Counts the uncounted tail of a dead kanald's write-ahead log (everything
 * after its checkpoint in PostgreSQL) exactly once, with kanald's own
 * modules: the WAL is opened and locked as kanald opens it (a torn tail is
 * cut), its records go through the rollup table and the flush, under the
 * dead collector's collector_id and lease, so every batch is claimed in
 * the fleet's ledger (a batch some other instance counted after a retry
 * is taken out) and the checkpoint moves in the same transactions as the
 * counts. It commits every ADOPT_CHUNK_BATCHES batches: if it is stopped
 * half way, running it again goes on from the last checkpoint. At the end
 * the collector is marked retired (kanal.collector_checkpoint.retired_at),
 * and kanald refuses to run under that collector_id again (exit 4).
 *
 * Refuses to start while the collector is alive: its kanald holds the
 * collector's lease (an advisory lock, see daemon/ledger.h) for as long as
 * its database session lives, and the WAL directory's lock for as long as
 * the process lives.
 */
#ifndef KANAL_ADOPT_H
#define KANAL_ADOPT_H

#include <stdio.h>

#define ADOPT_CHUNK_BATCHES 20000
/* Exit status when the collector is alive (or its lease is otherwise held). */
#define ADOPT_EXIT_ALIVE 4

struct adopt_config {
	const char *wal_dir;
	const char *collector_id;
	const char *pg;			/* conninfo; "" = the PG* environment */
	unsigned deadline_s;		/* give up a failing flush after this */
};

/*
 * Runs the adoption; progress and the summary on out, problems on err.
 * Returns the exit status: 0 adopted (or nothing was left to count); 1
 * failure (nothing counted twice: what was committed stays, and a rerun
 * goes on from there); ADOPT_EXIT_ALIVE refused.
 */
int adopt_run(const struct adopt_config *c, FILE *out, FILE *err);

#endif
