/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal: the write-ahead log. Every accepted batch is appended here and made
 * durable (fdatasync) before it is acknowledged or counted; the rollups in
 * memory and in PostgreSQL are derived from it. The on-disk format and the
 * recovery rules are at the top of wal.c.
 *
 * Positions are logical byte offsets that only ever grow, for the life of
 * a WAL directory and beyond (a new directory starts at a position made
 * from the clock, see wal.c), so a checkpoint position stored in
 * PostgreSQL is never mistaken for one of a newer log.
 *
 * Threads. wal_append is called on the event-loop thread. A writer thread
 * of the WAL's own writes what was appended and issues one fdatasync for
 * all of it (group commit); then it queues the done callbacks, which run
 * on the event-loop thread (event_active), and hands each record to the
 * apply function (once live, see wal_go_live), in position order and
 * outside the WAL's lock: an acknowledged record may reach the rollups a
 * moment after its answer, never before it is durable.
 */
#ifndef KANAL_WAL_H
#define KANAL_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

struct event_base;
struct wal;

#define WAL_SEGMENT_HEADER 128
#define WAL_RECORD_HEADER 9
#define WAL_RECORD_MAX (256u << 20)

struct wal_config {
	const char *dir;
	const char *collector_id;
	uint64_t segment_size;	/* start a new segment past this many bytes */
	uint64_t max_size;	/* refuse appends once segments hold this much */
};

struct wal_record {
	uint64_t start;		/* position of the record's first byte */
	uint64_t end;		/* position after it: the checkpoint that covers it */
	uint8_t type;
	const uint8_t *payload;
	size_t len;
	/*
	 * 1: handed to apply by the writer from its own buffer, just
	 * written (its codes were checked by ingest moments before); 0: read
	 * back from disk, to be checked in full.
	 */
	int in_memory;
};

/* Applies one durable record; records come in position order. */
typedef void wal_apply_fn(void *arg, const struct wal_record *rec);
/* ok: 1 the record is durable; 0 it could not be written (answer 503). */
typedef void wal_done_fn(void *arg, int ok);

/*
 * Opens (creating if needed) the WAL in cfg->dir: checks every segment,
 * cuts a torn tail off the newest one (with a warning), and refuses, with
 * a message naming the segment, the offset and the command to inspect it,
 * any other damage. Takes an exclusive lock on the directory. NULL with a
 * message in err on failure; nothing on disk was changed then, except a
 * torn tail cut.
 */
struct wal *wal_open(const struct wal_config *cfg, char *err, size_t errlen);

/*
 * Calls fn for every record on disk at or after position from, oldest
 * first, on the calling thread. Before wal_start only. 0, or -1 with err.
 */
int wal_scan(struct wal *w, uint64_t from, wal_apply_fn *fn, void *arg,
    char *err, size_t errlen);

/*
 * Starts the writer thread. Done callbacks run on base's loop. apply gets
 * durable records once the WAL is live. 0, or -1 with errno.
 */
int wal_start(struct wal *w, struct event_base *base, wal_apply_fn *apply,
    void *apply_arg);

/*
 * Appends one record (the payload is copied). done(arg, ok) is called on
 * the loop thread once it is durable or has failed; never before
 * wal_append returns. Positions are given when the record is written.
 * Returns 0, or -1 with errno ENOSPC (the WAL holds max_size: answer 503),
 * EMSGSIZE (over WAL_RECORD_MAX) or EIO (the WAL cannot be written), and
 * done is never called.
 */
int wal_append(struct wal *w, uint8_t type, const void *payload, size_t len,
    wal_done_fn *done, void *arg);

/*
 * Goes live from checkpoint position from: applies every durable record
 * after it (reading the segments; the writer keeps writing meanwhile),
 * then hands each newly durable record to apply as it is synced. Call
 * once, from any thread, after wal_start. 0, or -1 with err (from is not
 * in this WAL: its records are gone, or the checkpoint belongs to another
 * log).
 */
int wal_go_live(struct wal *w, uint64_t from, char *err, size_t errlen);

/*
 * Removes the segments wholly before position pos (never the one being
 * written), after calling before(arg, rec) for each of their records and
 * then before(arg, NULL) for the segment as a whole, on the calling
 * thread; before returns 0 to let the removal go on, -1 to stop it.
 * Returns the number of segments removed.
 */
int wal_remove_before(struct wal *w, uint64_t pos,
    int (*before)(void *arg, const struct wal_record *rec), void *arg);

/* Writes what is appended, stops the thread. Done callbacks still run. */
void wal_stop(struct wal *w);
/* wal_close(NULL) is a no-op. Stops first if needed. */
void wal_close(struct wal *w);

struct wal_stats {
	uint64_t bytes;		/* on disk, all segments */
	uint64_t segments;
	uint64_t appended;	/* end position of the last append */
	uint64_t durable;	/* end position of the last fdatasync */
	uint64_t first;		/* position of the oldest byte on disk */
	uint64_t syncs;
	uint64_t sync_us_total;
	uint64_t sync_us_max;
	struct histogram sync_us;	/* each fdatasync of a group commit */
	int live;
	int full;		/* appends refused for size */
	int failed;		/* a write or sync failed for good */
	int no_space;		/* the last write met a full disk (and the WAL
				 * has not failed for good) */
};

/* A consistent copy. Any thread. */
void wal_get_stats(struct wal *w, struct wal_stats *st);

/* ------------------------------------------------------------ reading */

/*
 * A read-only walk over the segments of a directory, for start-up, replay
 * and `kanalctl wal check|dump`. Does not lock or change anything.
 */
struct wal_reader;

struct wal_damage {
	char segment[512];	/* path of the segment */
	uint64_t offset;	/* file offset of the first bad byte */
	uint64_t position;	/* its logical position */
	char what[256];
	int tail;		/* in the newest segment with nothing valid after */
};

struct wal_reader *wal_reader_open(const char *dir, char *err,
    size_t errlen);
void wal_reader_free(struct wal_reader *r);
/*
 * The next record: 1 and *rec (valid until the next call), 0 at the end,
 * -1 at damage (described in *d; the walk stops there).
 */
int wal_reader_next(struct wal_reader *r, struct wal_record *rec,
    struct wal_damage *d);
/*
 * Moves to position pos, which must be a record boundary (a checkpoint or
 * a record's end): the next record read starts there, without reading
 * what is before it. A pos before the first segment starts at the first.
 * 0, or -1 with *d.
 */
int wal_reader_seek(struct wal_reader *r, uint64_t pos, struct wal_damage *d);
/* Segments found, and the collector id of the first one ("" if none). */
size_t wal_reader_segments(const struct wal_reader *r);
const char *wal_reader_collector(const struct wal_reader *r);

#endif
