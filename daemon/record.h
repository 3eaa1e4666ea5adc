/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record: the payload of a write-ahead-log BATCH record: the accepted
 * events of one batch, with who sent it, its batch_id and its counts.
 *
 * The same bytes are written by ingest, applied to agg when durable, read
 * back by replay and by the batch-id memory at start-up, and printed by
 * `kanalctl wal dump`: one codec for all of them.
 *
 * Layout (little-endian, no padding):
 *
 *     u64 received_at_ms   when kanald accepted the batch (Unix ms)
 *     u8  source_len, source bytes (1..63); bit 7 of the length byte
 *         (0x80) set: the batch carries citizen hashes (REACH below)
 *     u8  batch_id_len, batch_id bytes (1..64)
 *     u32 accepted         events accepted (= events that follow)
 *     u32 rejected         events rejected (kept for duplicate answers)
 *     REACH only: i64 reach_key_id, the key the hashes were made with
 *     accepted times:
 *       i64 occurred_at_ms
 *       u32 duration_ms
 *       u8  channel, u8 outcome,
 *       u8  assisted (0 or 1), | 0x02 when a citizen hash follows
 *           (REACH records only)
 *       u8  service_len, service bytes (1..64)
 *       u8  region_len, region bytes (2..13)
 *       0x02 only: u64 the citizen_ref's keyed hash (reach.h); the
 *           citizen_ref itself is never written
 *
 * Records without citizen hashes are byte for byte those of kanald 0.x
 * before reach, so older WAL files replay unchanged. (An older kanald
 * does not read a REACH record: downgrade with an empty WAL.)
 */
#ifndef KANAL_RECORD_H
#define KANAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

struct wal_record;

#define RECORD_TYPE_BATCH 1

struct record_batch {
	int64_t received_at_ms;
	const char *source;	/* not NUL-terminated */
	size_t source_len;
	const char *batch_id;	/* not NUL-terminated */
	size_t batch_id_len;
	uint32_t accepted;
	uint32_t rejected;
	int has_reach;		/* events may carry citizen hashes */
	int64_t reach_key_id;	/* if has_reach */
};

/* Bytes needed to encode the header and these events. Can't fail. */
size_t record_batch_size(const struct record_batch *b,
    const struct agg_event *ev, size_t n);
/*
 * Encodes into out, which has record_batch_size() bytes; b->accepted must
 * be n. Returns the bytes written. Can't fail.
 */
size_t record_batch_encode(const struct record_batch *b,
    const struct agg_event *ev, size_t n, uint8_t *out);

/*
 * Decodes the header; *events_at is the offset of the first event. Returns
 * 0, or -1 when the payload is malformed (nothing is trusted: lengths are
 * checked against len). Strings point into p.
 */
int record_batch_decode(const uint8_t *p, size_t len, struct record_batch *b,
    size_t *events_at);
/*
 * Decodes the next event at *off, advancing it. 0, or -1 when malformed.
 * Strings point into p. Syntax of codes is checked too, so a bad record
 * can't put invalid codes into agg. An event with a citizen hash in a
 * record whose header has no reach key is malformed for record_apply,
 * which checks it.
 */
int record_event_next(const uint8_t *p, size_t len, size_t *off,
    struct agg_event *ev);

/*
 * Adds the events of a durable WAL record to agg, with the batch they came
 * from (agg_batch: its digest and position). Every field is checked as
 * record_event_next does, but for the syntax of the codes of a record
 * the writer hands over from memory (rec->in_memory: ingest checked them). *scratch (*cap events) is the
 * caller's buffer, grown as needed. Returns 0 added (or not a BATCH
 * record: nothing to add), -1 the record does not decode (logged,
 * skipped), -2 agg or the buffer ran out of memory (errno; nothing added).
 */
int record_apply(struct agg *a, const struct wal_record *rec,
    struct agg_event **scratch, size_t *cap);

/*
 * Reads back, from the WAL in dir, the BATCH records that start at the
 * positions starts[0..n) (ascending; each a record boundary of a durable
 * record) and calls fn for each of their events, with the record's header
 * in *b. For the flush, which must take a batch another instance counted
 * out of its rollups; reading does not lock or change the WAL and may run
 * beside its writer. 0, or -1 with err (a record is gone or damaged).
 */
int record_read_batches(const char *dir, const uint64_t *starts, size_t n,
    void (*fn)(void *arg, const struct record_batch *b,
    const struct agg_event *ev), void *arg, char *err, size_t errlen);

#endif
