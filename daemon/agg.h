/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agg: the in-memory hourly rollup table.
 *
 * Events are added by the event-loop thread, keyed by (UTC hour, service
 * code, channel, region code, outcome, assisted); each key holds the event
 * count, the sum of durations and the number of events that carried one.
 * Service and region codes are interned, so a key is 16 bytes of integers.
 *
 * Double buffer: the flush thread calls agg_freeze() to take the active
 * table (a new empty one takes its place at once), writes it to PostgreSQL
 * without holding any lock, and calls agg_release() once it is committed.
 * Until then a failed flush simply tries the same frozen table again;
 * newer events wait in the active table. The "position" passed with each
 * add is the write-ahead-log position the counts are durable up to; the
 * frozen table carries the highest one, to be committed as the checkpoint
 * in the same transaction as the counts.
 *
 * Thread safety: agg_add, agg_freeze, agg_release and agg_keys may be
 * called from any thread (one mutex, held for the length of an add or a
 * pointer swap). A frozen table is read by one thread only, between freeze
 * and release.
 */
#ifndef KANAL_AGG_H
#define KANAL_AGG_H

#include <stddef.h>
#include <stdint.h>

struct agg;
struct agg_table;

struct agg_event {
	int64_t occurred_at_ms;	/* Unix ms, UTC; >= 0 */
	const char *service;	/* not NUL-terminated; valid service code */
	size_t service_len;
	const char *region;	/* not NUL-terminated; valid region code */
	size_t region_len;
	uint32_t duration_ms;	/* 0 = not measured */
	uint8_t channel;	/* Channel enum number, 1..9 */
	uint8_t outcome;	/* Outcome enum number, 0..3 */
	uint8_t assisted;	/* 0 or 1 */
	uint8_t has_ref;	/* 1: the event carried a citizen_ref */
	uint64_t ref_hash;	/* its keyed hash (reach.h), if has_ref */
};

/*
 * The batch an add comes from (one WAL record): remembered with the frozen
 * table so that the flush can claim it in the fleet's ledger (ledger.h)
 * and, should another instance have counted it, take its events out.
 */
struct agg_batch {
	uint8_t digest[16];	/* dedup_digest(source, batch_id) */
	const char *source;	/* not NUL-terminated */
	size_t source_len;
	uint64_t start;		/* WAL position of the record */
	/*
	 * The reach key the batch's citizen hashes were made with
	 * (reach.h); has_reach 0: none were (reach off, or no citizen_ref).
	 */
	int has_reach;
	int64_t reach_key_id;
};

/* One key and its values, with codes resolved to strings. */
struct agg_row {
	int64_t bucket;		/* Unix seconds of the UTC hour's start */
	const char *service;	/* NUL-terminated; lives as long as the agg */
	const char *region;
	uint8_t channel;
	uint8_t outcome;
	uint8_t assisted;
	uint64_t events;
	uint64_t duration_ms_sum;
	uint64_t duration_events;
};

/* NULL on out-of-memory. */
struct agg *agg_new(void);
/* agg_free(NULL) is a no-op. */
void agg_free(struct agg *a);

/*
 * Adds n events, durable up to WAL position `position`, from batch b (NULL:
 * none to remember). All or nothing: returns 0, or -1 with errno ENOMEM
 * (or ENOSPC when the code interner is full) and nothing added.
 */
int agg_add(struct agg *a, const struct agg_event *ev, size_t n,
    uint64_t position, const struct agg_batch *b);

/*
 * Takes the table to flush: the one frozen earlier and not yet released,
 * or else the active table (replaced by an empty one). Never NULL; the
 * table may be empty. *position is the WAL position its counts are
 * durable up to.
 */
struct agg_table *agg_freeze(struct agg *a, uint64_t *position);
/* The frozen table was committed: empty it for reuse. */
void agg_release(struct agg *a, struct agg_table *t);

/* Number of keys in t. */
size_t agg_table_keys(const struct agg_table *t);
/* Calls fn for every key of a frozen table, in no particular order. */
void agg_table_foreach(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const struct agg_row *row), void *arg);

/* Batches added to t, in the order they were added. */
size_t agg_table_batches(const struct agg_table *t);
/*
 * Calls fn for every batch of a frozen table, in the order added; source
 * is NUL-terminated and lives as long as the agg.
 */
void agg_table_foreach_batch(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const uint8_t digest[16], const char *source,
    uint64_t start), void *arg);

/*
 * Distinct residents (reach.h, schema/010_reach.sql): every event with a
 * citizen hash, of a batch with a reach key, is also added to the
 * HyperLogLog sketch of its (WIB day, service, kecamatan, channel, key),
 * held in the same table as the counts: frozen, written and released with
 * them. The region is cut to its kecamatan (reach_region_len). Merging a
 * sketch into PostgreSQL's is idempotent (a union), so a flush retried or
 * a batch also counted by another instance never counts a resident twice.
 * A sketch that finds no memory is dropped and counted, never failing
 * the add: the counts matter more than one resident's register.
 */
struct hll;

struct agg_sketch {
	int32_t day;		/* WIB days since 1970-01-01 */
	const char *service;	/* NUL-terminated; lives as long as the agg */
	const char *region;	/* kecamatan or shorter code */
	uint8_t channel;
	int64_t reach_key_id;
	const struct hll *hll;
};

/* Sketches in t. */
size_t agg_table_sketches(const struct agg_table *t);
/* Calls fn for every sketch of a frozen table, in no particular order. */
void agg_table_foreach_sketch(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const struct agg_sketch *s), void *arg);

/* Keys held in memory: active plus frozen. */
size_t agg_keys(struct agg *a);

/*
 * Late events: events added for an hour that had already ended (by the
 * clock at the add) and that a committed flush (agg_release) had already
 * written; they change a row of PostgreSQL that a report may have read as
 * final. Hours are remembered for AGG_LATE_HOURS hours back (about 42
 * days, well over the accepted event age); a late event for an hour older
 * than that is not seen as late. The current hour is flushed all the time
 * and is never late.
 */
#define AGG_LATE_HOURS 1024

struct agg_stats {
	size_t keys;		/* agg_keys */
	uint64_t late_events;
	size_t sketches;	/* held, active plus frozen */
	size_t sketch_bytes;	/* their memory: slots and registers */
	uint64_t reach_adds;	/* citizen hashes added to a sketch */
	uint64_t reach_dropped;	/* not added: out of memory */
};

/* A consistent copy. Any thread. */
void agg_get_stats(struct agg *a, struct agg_stats *st);
/* Highest position ever added (what a flush would commit). */
uint64_t agg_position(struct agg *a);

/* Start of the UTC hour holding ms, in Unix seconds. ms must be >= 0. */
int64_t agg_hour_bucket(int64_t ms);

#endif
