/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record: see record.h for the layout.
 */
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "le.h"
#include "log.h"
#include "validate.h"
#include "wal.h"

#define EVENT_FIXED (8 + 4 + 3 + 1 + 1)
#define SOURCE_REACH 0x80	/* in the source length byte */
#define ASSISTED_REF 0x02	/* in the assisted byte */

size_t
record_batch_size(const struct record_batch *b, const struct agg_event *ev,
    size_t n)
{
	size_t size = 8 + 1 + b->source_len + 1 + b->batch_id_len + 4 + 4;

	if (b->has_reach)
		size += 8;
	for (size_t i = 0; i < n; i++)
		size += EVENT_FIXED + ev[i].service_len + ev[i].region_len +
		    (b->has_reach && ev[i].has_ref ? 8 : 0);
	return size;
}

size_t
record_batch_encode(const struct record_batch *b, const struct agg_event *ev,
    size_t n, uint8_t *out)
{
	uint8_t *p = out;

	le_put_u64(p, (uint64_t)b->received_at_ms);
	p += 8;
	*p++ = (uint8_t)(b->source_len | (b->has_reach ? SOURCE_REACH : 0));
	memcpy(p, b->source, b->source_len);
	p += b->source_len;
	*p++ = (uint8_t)b->batch_id_len;
	memcpy(p, b->batch_id, b->batch_id_len);
	p += b->batch_id_len;
	le_put_u32(p, b->accepted);
	le_put_u32(p + 4, b->rejected);
	p += 8;
	if (b->has_reach) {
		le_put_u64(p, (uint64_t)b->reach_key_id);
		p += 8;
	}
	for (size_t i = 0; i < n; i++) {
		int ref = b->has_reach && ev[i].has_ref;

		le_put_u64(p, (uint64_t)ev[i].occurred_at_ms);
		le_put_u32(p + 8, ev[i].duration_ms);
		p[12] = ev[i].channel;
		p[13] = ev[i].outcome;
		p[14] = (uint8_t)(ev[i].assisted | (ref ? ASSISTED_REF : 0));
		p += 15;
		*p++ = (uint8_t)ev[i].service_len;
		memcpy(p, ev[i].service, ev[i].service_len);
		p += ev[i].service_len;
		*p++ = (uint8_t)ev[i].region_len;
		memcpy(p, ev[i].region, ev[i].region_len);
		p += ev[i].region_len;
		if (ref) {
			le_put_u64(p, ev[i].ref_hash);
			p += 8;
		}
	}
	return (size_t)(p - out);
}

int
record_batch_decode(const uint8_t *p, size_t len, struct record_batch *b,
    size_t *events_at)
{
	size_t off = 0;

	if (len < 8 + 1)
		return -1;
	b->received_at_ms = (int64_t)le_get_u64(p);
	off = 8;
	b->has_reach = (p[off] & SOURCE_REACH) != 0;
	b->source_len = p[off++] & ~SOURCE_REACH;
	if (b->source_len == 0 || b->source_len > 63 || off + b->source_len +
	    1 > len)
		return -1;
	b->source = (const char *)p + off;
	off += b->source_len;
	b->batch_id_len = p[off++];
	if (b->batch_id_len == 0 || b->batch_id_len > 64 ||
	    off + b->batch_id_len + 8 > len)
		return -1;
	b->batch_id = (const char *)p + off;
	off += b->batch_id_len;
	b->accepted = le_get_u32(p + off);
	b->rejected = le_get_u32(p + off + 4);
	off += 8;
	b->reach_key_id = 0;
	if (b->has_reach) {
		if (off + 8 > len)
			return -1;
		b->reach_key_id = (int64_t)le_get_u64(p + off);
		off += 8;
	}
	/* Each event takes at least EVENT_FIXED + 3 bytes. */
	if (b->accepted > (len - off) / (EVENT_FIXED + 3))
		return -1;
	*events_at = off;
	return 0;
}

/*
 * The next event; check_codes 0 skips the syntax of the service and
 * region codes (a record ingest encoded moments ago from checked events):
 * the bounds, the channel, outcome and assisted are checked always.
 */
static int
event_decode(const uint8_t *p, size_t len, size_t *off, struct agg_event *ev,
    int check_codes)
{
	size_t o = *off;

	if (o + EVENT_FIXED > len)
		return -1;
	ev->occurred_at_ms = (int64_t)le_get_u64(p + o);
	ev->duration_ms = le_get_u32(p + o + 8);
	ev->channel = p[o + 12];
	ev->outcome = p[o + 13];
	ev->assisted = (uint8_t)(p[o + 14] & ~ASSISTED_REF);
	ev->has_ref = (p[o + 14] & ASSISTED_REF) != 0;
	ev->ref_hash = 0;
	o += 15;
	ev->service_len = p[o++];
	if (o + ev->service_len + 1 > len)
		return -1;
	ev->service = (const char *)p + o;
	o += ev->service_len;
	ev->region_len = p[o++];
	if (o + ev->region_len > len)
		return -1;
	ev->region = (const char *)p + o;
	o += ev->region_len;
	if (ev->has_ref) {
		if (o + 8 > len)
			return -1;
		ev->ref_hash = le_get_u64(p + o);
		o += 8;
	}
	if (ev->occurred_at_ms < 0 || ev->assisted > 1 ||
	    validate_channel_name(ev->channel) == NULL ||
	    validate_outcome_name(ev->outcome) == NULL ||
	    ev->service_len == 0 || ev->region_len == 0 || (check_codes &&
	    (!validate_service_code(ev->service, ev->service_len) ||
	    !validate_region_code(ev->region, ev->region_len))))
		return -1;
	*off = o;
	return 0;
}

int
record_event_next(const uint8_t *p, size_t len, size_t *off,
    struct agg_event *ev)
{
	return event_decode(p, len, off, ev, 1);
}

int
record_read_batches(const char *dir, const uint64_t *starts, size_t n,
    void (*fn)(void *arg, const struct record_batch *b,
    const struct agg_event *ev), void *arg, char *err, size_t errlen)
{
	struct wal_reader *r;
	struct wal_damage d;
	struct wal_record rec;
	int rc = -1;

	if (n == 0)
		return 0;
	r = wal_reader_open(dir, err, errlen);
	if (r == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct record_batch b;
		struct agg_event ev;
		size_t off;

		d.what[0] = '\0';
		if (wal_reader_seek(r, starts[i], &d) == -1 ||
		    wal_reader_next(r, &rec, &d) != 1) {
			snprintf(err, errlen, "cannot read the WAL record at "
			    "position %" PRIu64 ": %s", starts[i],
			    d.what[0] != '\0' ? d.what : "not found");
			goto out;
		}
		if (rec.start != starts[i] || rec.type != RECORD_TYPE_BATCH ||
		    record_batch_decode(rec.payload, rec.len, &b, &off) == -1) {
			snprintf(err, errlen, "the WAL record at position %"
			    PRIu64 " is not a batch", starts[i]);
			goto out;
		}
		for (uint32_t k = 0; k < b.accepted; k++) {
			if (record_event_next(rec.payload, rec.len, &off,
			    &ev) == -1) {
				snprintf(err, errlen, "the WAL record at "
				    "position %" PRIu64 " does not decode",
				    starts[i]);
				goto out;
			}
			fn(arg, &b, &ev);
		}
	}
	rc = 0;
out:
	wal_reader_free(r);
	return rc;
}

int
record_apply(struct agg *a, const struct wal_record *rec,
    struct agg_event **scratch, size_t *cap)
{
	struct record_batch b;
	struct agg_batch batch;
	size_t off, n;

	if (rec->type != RECORD_TYPE_BATCH)
		return 0;
	if (record_batch_decode(rec->payload, rec->len, &b, &off) == -1)
		goto bad;
	if (b.accepted > *cap) {
		struct agg_event *nv = realloc(*scratch, b.accepted *
		    sizeof(*nv));
		if (nv == NULL) {
			errno = ENOMEM;
			return -2;
		}
		*scratch = nv;
		*cap = b.accepted;
	}
	for (n = 0; n < b.accepted; n++)
		if (event_decode(rec->payload, rec->len, &off, &(*scratch)[n],
		    !rec->in_memory) == -1 || ((*scratch)[n].has_ref &&
		    !b.has_reach))
			goto bad;
	if (off != rec->len)
		goto bad;
	batch.source = b.source;
	batch.source_len = b.source_len;
	batch.start = rec->start;
	batch.has_reach = b.has_reach;
	batch.reach_key_id = b.reach_key_id;
	dedup_digest(b.source, b.source_len, b.batch_id, b.batch_id_len,
	    batch.digest);
	return agg_add(a, *scratch, n, rec->end, &batch) == -1 ? -2 : 0;
bad:
	log_errx("skipping a WAL record that does not decode: start=%" PRIu64
	    " len=%zu", rec->start, rec->len);
	return -1;
}
