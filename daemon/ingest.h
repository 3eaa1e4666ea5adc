/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: one POST /v1/events, from request body to acknowledgement.
 *
 *   auth      bearer token -> source (sources.h)
 *   decode    EventBatch, protobuf-c into a per-request arena
 *   limit     the source's token bucket (ratelimit.h), when rate-limit is
 *             set: 429 rate_limited with Retry-After when it lacks the
 *             batch's events, 413 when the batch is larger than the bucket
 *   validate  each event accepted, or rejected with a reason (validate.h)
 *   dedup     a batch_id this source already sent is answered with the
 *             first answer's counts and duplicate = true, and not counted
 *   wal       the accepted events, as one record, are appended to the
 *             write-ahead log; the request waits (a deferred reply)
 *   ack       once the record is durable, the BatchAck is handed to the
 *             reply callback; the events reach agg through ingest_apply,
 *             which the WAL calls with every durable record
 *
 * ingest knows nothing of HTTP beyond status codes: the caller passes the
 * Authorization and Content-Type header values and the body, and gets a
 * status, a content type and a body back. Runs on the event-loop thread.
 */
#ifndef KANAL_INGEST_H
#define KANAL_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "validate.h"

struct agg;
struct agg_event;
struct reach_key;
struct dedup;
struct sources;
struct ingest;
struct wal;
struct wal_record;

struct ingest_config {
	struct validate_limits limits;
	uint64_t max_batch_events;
	uint64_t max_body_size;	/* sizes the decode arena */
	struct wal *wal;	/* borrowed */
	struct dedup *dedup;	/* borrowed */
	uint64_t rate_limit;	/* events per second per source; 0 = off */
	uint64_t rate_limit_burst;	/* events; 0 = one second's worth */
	/*
	 * The reach key (reach.h), borrowed; NULL: reach off, citizen_refs
	 * are checked and dropped. Else each one is replaced by its keyed
	 * hash before the record is written.
	 */
	const struct reach_key *reach;
};

/*
 * The answer to one request. body is owned by ingest and valid only during
 * the reply callback. For errors, reason is a snake_case code and body a
 * one-line "reason: message" text.
 */
struct ingest_reply {
	int status;
	const char *content_type;
	const char *reason;		/* NULL on 200 */
	const void *body;
	size_t len;
	unsigned retry_after_s;		/* for 503 and 429; 0 = none */
};

typedef void ingest_reply_fn(void *arg, const struct ingest_reply *reply);

/* NULL on out-of-memory. agg is borrowed. */
struct ingest *ingest_new(struct agg *a, const struct ingest_config *cfg);

/*
 * Adds the events of one durable WAL record to agg, at the record's end
 * position (a wal_apply_fn; arg is the ingest). Called by the WAL writer
 * thread and by replay, never by two threads at once. A record that does
 * not decode is logged and skipped (the WAL's CRC passed, so it was
 * written so: counting part of it would be worse).
 */
void ingest_apply(void *arg, const struct wal_record *rec);

/* Requests waiting for the WAL. */
size_t ingest_inflight(const struct ingest *in);
/* ingest_free(NULL) is a no-op. */
void ingest_free(struct ingest *in);

/*
 * Takes ownership of s and frees the previous sources (a reload). Requests
 * never hold a source across calls, so the swap is safe at any time on the
 * loop thread.
 */
void ingest_set_sources(struct ingest *in, struct sources *s);

/*
 * Handles one request. auth and content_type may be NULL (header absent).
 * reply is called exactly once, before or after ingest_batch returns.
 */
void ingest_batch(struct ingest *in, const char *auth,
    const char *content_type, const void *body, size_t len, int64_t now_ms,
    ingest_reply_fn *reply, void *arg);

/*
 * Fills *out with what is counted of an event validate_event accepted, as
 * ingest_batch puts it into the WAL record and agg; the strings point into
 * ev. With a reach key (else NULL), a citizen_ref becomes its keyed hash.
 * Can't fail.
 */
void ingest_event_fill(const Kanal__V1__ServiceEvent *ev,
    const struct reach_key *reach, struct agg_event *out);

#define INGEST_REASONS 16	/* room for RejectReason numbers 0..15 */

/*
 * Counters of the requests ingest answered (not those evhttp answers
 * itself: 413 over the body limit). Events are counted with the answer
 * that reports them: accepted ones once durable and acknowledged,
 * rejected ones in a 200 BatchAck or a 403 (none of the batch's services
 * allowed); events of a batch answered otherwise (400, 503) are not
 * counted, the client sends them again.
 */
struct ingest_stats {
	uint64_t batches_ok;		/* 200, not duplicate */
	uint64_t batches_duplicate;	/* 200, duplicate = true */
	uint64_t batches_client_error;	/* 4xx but 429: the request must change */
	uint64_t batches_rate_limited;	/* 429: the source is over its rate */
	uint64_t batches_unavailable;	/* 503: retry later */
	uint64_t events_accepted;
	uint64_t events_duplicate;	/* accepted count of duplicate batches */
	uint64_t events_rejected[INGEST_REASONS];	/* by RejectReason */
};

void ingest_get_stats(const struct ingest *in, struct ingest_stats *st);

#endif
