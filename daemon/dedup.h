/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dedup: the memory of batches already taken, so that a retried batch
 * (same source, same batch_id) is answered again but not counted again.
 *
 * An entry is a 128-bit digest of (source, batch_id), the batch's
 * accepted and rejected counts, and when it was received. Entries are
 * forgotten after the window (24 h by default) or, when more than
 * max_entries batches arrive within it, oldest first (the effective window
 * is then shorter, and dedup_stats says so).
 *
 * Memory across restarts: the WAL holds every batch not yet removed, and
 * is scanned at start-up (dedup_add_record); before a WAL segment is
 * removed, its batches are appended to the index file batches.idx beside
 * it (dedup_persist_record), read back at start-up (dedup_load).
 *
 * Not thread-safe: the event-loop thread owns it, except for
 * dedup_persist_record, which touches only the index file and may run on
 * another thread.
 */
#ifndef KANAL_DEDUP_H
#define KANAL_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct dedup;
struct wal_record;

enum dedup_state {
	DEDUP_NEW,		/* not seen */
	DEDUP_PENDING,		/* seen, not yet durable: ask to retry soon */
	DEDUP_DONE,		/* seen and durable: answer with its counts */
};

/*
 * The batch's 128-bit digest: the first 16 bytes of SHA-256(source, NUL,
 * batch_id). The same digest keys the fleet's ledger (ledger.h). Can't
 * fail.
 */
void dedup_digest(const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, uint8_t out[16]);

/* NULL on out-of-memory. dir: where batches.idx lives (the WAL dir). */
struct dedup *dedup_new(const char *dir, uint64_t window_ms,
    size_t max_entries);
/* dedup_free(NULL) is a no-op. */
void dedup_free(struct dedup *d);

enum dedup_state dedup_find(struct dedup *d, const char *source,
    size_t source_len, const char *batch_id, size_t batch_id_len,
    uint32_t *accepted, uint32_t *rejected);
/*
 * Remembers a batch (pending until dedup_settle). now_ms also expires old
 * entries. Returns 0, or -1 with errno ENOMEM, or ENOSPC when every slot
 * holds a batch still pending (nothing remembered).
 */
int dedup_add(struct dedup *d, const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, uint32_t accepted,
    uint32_t rejected, int64_t received_ms, int pending);
/* A pending batch became durable (ok) or failed (forgotten). */
void dedup_settle(struct dedup *d, const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, int ok);

/* Start-up: remembers the batch of a WAL record (ignores other types). */
void dedup_add_record(struct dedup *d, const struct wal_record *rec);
/*
 * Start-up: reads batches.idx (a torn last entry is ignored, and cut off
 * before the next append; a damaged entry is skipped with a warning).
 * 0, or -1.
 */
int dedup_load(struct dedup *d, int64_t now_ms);
/*
 * For a WAL segment about to be removed: called with each of its records
 * (kept if still inside the window), then with rec NULL, which appends the
 * kept batches to batches.idx and syncs it. 0, or -1 with errno: then the
 * segment must not be removed. Any one thread at a time (the flush
 * thread); it shares nothing with the loop thread's calls.
 */
/*
 * Drops what dedup_persist_record holds for a segment whose walk stopped
 * before its rec NULL (it stays, and hands its records over again next
 * time). Same thread as dedup_persist_record.
 */
void dedup_persist_reset(struct dedup *d);
int dedup_persist_record(struct dedup *d, const struct wal_record *rec,
    int64_t now_ms);

struct dedup_stats {
	size_t entries;
	uint64_t evicted;	/* forgotten early for lack of room */
	int64_t oldest_ms;	/* received time of the oldest entry */
	int no_space;		/* the last write of batches.idx met a full disk */
};
void dedup_get_stats(const struct dedup *d, struct dedup_stats *st);

#endif
