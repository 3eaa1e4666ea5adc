/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: see ingest.h.
 *
 * Per request, everything decoded or built (the batch, the agg events, the
 * rejections) comes from one arena that is reset when the reply is done;
 * the only other memory is the packed acknowledgement, kept in a buffer
 * reused across requests.
 *
 * A body is protobuf or, with Content-Type application/json, the proto3
 * JSON mapping (json.h); either becomes the same Kanal__V1__EventBatch in
 * the arena, so everything after decoding (dedup, validation, the WAL
 * record) is the same for both. The BatchAck is answered in the body's
 * format; whole-batch errors are "reason: message" text for both.
 */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agg.h"
#include "arena.h"
#include "clock.h"
#include "dedup.h"
#include "json.h"
#include "log.h"
#include "ratelimit.h"
#include "reach.h"
#include "record.h"
#include "sources.h"
#include "wal.h"

#define MSG_MAX 200

#define TYPE_PROTOBUF "application/x-protobuf"
#define TYPE_JSON "application/json"

struct ingest {
	struct agg *agg;
	struct sources *sources;
	struct ingest_config cfg;
	struct arena *arena;
	struct ratelimit *limit;
	uint8_t *ack;			/* packed BatchAck */
	size_t ack_cap;
	uint8_t *rec;			/* encoded WAL record */
	size_t rec_cap;
	size_t inflight;
	struct ingest_stats stats;
	/* ingest_apply's, on the WAL writer or replay thread only. */
	struct agg_event *apply_ev;
	size_t apply_cap;
};

/*
 * A request waiting for its WAL record to be durable: what to answer and
 * whom, and the key to settle in the batch-id memory.
 */
struct pending {
	struct ingest *in;
	ingest_reply_fn *reply;
	void *arg;
	uint32_t accepted;
	uint32_t rejected_by[INGEST_REASONS];	/* counted once acknowledged */
	uint8_t source_len, batch_id_len;
	char source[64];
	char batch_id[65];
	const char *ack_type;		/* TYPE_PROTOBUF or TYPE_JSON */
	size_t ack_len;
	uint8_t ack[];			/* packed BatchAck */
};

struct ingest *
ingest_new(struct agg *a, const struct ingest_config *cfg)
{
	struct ingest *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return NULL;
	in->agg = a;
	in->cfg = *cfg;
	/*
	 * protobuf-c needs up to ~7x the packed size (PITFALLS.md); the
	 * rejections and agg events of the biggest batch fit in the rest.
	 */
	in->arena = arena_new(cfg->max_body_size * 8 +
	    cfg->max_batch_events * (sizeof(struct agg_event) + 320) +
	    (1 << 20));
	in->limit = ratelimit_new(cfg->rate_limit, cfg->rate_limit_burst);
	if (in->arena == NULL || in->limit == NULL) {
		arena_free(in->arena);
		ratelimit_free(in->limit);
		free(in);
		return NULL;
	}
	return in;
}

void
ingest_free(struct ingest *in)
{
	if (in == NULL)
		return;
	sources_free(in->sources);
	arena_free(in->arena);
	ratelimit_free(in->limit);
	free(in->ack);
	free(in->rec);
	free(in->apply_ev);
	free(in);
}

void
ingest_set_sources(struct ingest *in, struct sources *s)
{
	sources_free(in->sources);
	in->sources = s;
}

void
ingest_get_stats(const struct ingest *in, struct ingest_stats *st)
{
	*st = in->stats;
}

/* A "reason: message" answer; retry_after_s 0 = no Retry-After. */
static void
reply_error_after(struct ingest *in, int status, const char *reason,
    const char *message, unsigned retry_after_s, ingest_reply_fn *reply,
    void *arg)
{
	char text[512];
	struct ingest_reply r = {
		.status = status,
		.content_type = "text/plain; charset=utf-8",
		.reason = reason,
		.body = text,
		.retry_after_s = retry_after_s,
	};
	int n = snprintf(text, sizeof(text), "%s: %s\n", reason, message);

	r.len = n > 0 && (size_t)n < sizeof(text) ? (size_t)n : strlen(text);
	if (status == 503)
		in->stats.batches_unavailable++;
	else if (status == 429)
		in->stats.batches_rate_limited++;
	else
		in->stats.batches_client_error++;
	reply(arg, &r);
}

static void
reply_error(struct ingest *in, int status, const char *reason,
    const char *message, ingest_reply_fn *reply, void *arg)
{
	reply_error_after(in, status, reason, message, status == 503 ? 1 : 0,
	    reply, arg);
}

/*
 * The source's token bucket takes the batch's events (all of them,
 * rejected ones too: checking them costs the daemon as much). Returns 0
 * when the batch may go on; otherwise it was answered, 429 rate_limited
 * with Retry-After or 413 when no wait would let it through, and -1 is
 * returned.
 */
static int
rate_check(struct ingest *in, const struct source *src, size_t nev,
    ingest_reply_fn *reply, void *arg)
{
	const char *name = source_name(src);
	char msg[MSG_MAX];
	unsigned retry;
	int first;

	if (in->cfg.rate_limit == 0)
		return 0;
	switch (ratelimit_take(in->limit, name, strlen(name), nev,
	    clock_mono_ms(), &retry, &first)) {
	case RATELIMIT_OK:
		return 0;
	case RATELIMIT_TOO_LARGE:
		snprintf(msg, sizeof(msg), "batch has %zu events, more than "
		    "rate-limit-burst (%llu) lets through at once; split it",
		    nev, (unsigned long long)ratelimit_burst(in->limit));
		reply_error(in, 413, "batch_over_burst", msg, reply, arg);
		return -1;
	case RATELIMIT_LIMITED:
		break;
	}
	if (first)
		log_notice("source over its rate limit, answering 429: "
		    "source=%s rate_limit=%llu burst=%llu", name,
		    (unsigned long long)in->cfg.rate_limit,
		    (unsigned long long)ratelimit_burst(in->limit));
	snprintf(msg, sizeof(msg), "source %s is over its rate limit of "
	    "%llu events/s; retry this batch after %u s", name,
	    (unsigned long long)in->cfg.rate_limit, retry);
	reply_error_after(in, 429, "rate_limited", msg, retry, reply, arg);
	return -1;
}

/* A batch that rate_check let through was refused with a 503 after all. */
static void
rate_give_back(struct ingest *in, const struct source *src, size_t nev)
{
	const char *name = source_name(src);

	if (in->cfg.rate_limit != 0)
		ratelimit_give_back(in->limit, name, strlen(name), nev);
}

/* The rejections an answer reports, by reason, go into the stats. */
static void
count_rejected(struct ingest *in, const uint32_t by[INGEST_REASONS])
{
	for (size_t i = 0; i < INGEST_REASONS; i++)
		in->stats.events_rejected[i] += by[i];
}

/* The media type of a Content-Type value, matched without parameters. */
static int
media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The token from "Bearer TOKEN", or NULL. */
static const char *
bearer_token(const char *auth, size_t *len)
{
	const char *t;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return NULL;
	t = auth + 7;
	while (*t == ' ')
		t++;
	*len = strcspn(t, " \t\r\n");
	if (*len == 0 || t[*len] != '\0')
		return NULL;
	return t;
}

/* The acknowledgement into in->ack: protobuf, or JSON when json is set. */
static int
pack_ack(struct ingest *in, const Kanal__V1__BatchAck *ack, int json,
    size_t *len)
{
	size_t need = json ? json_encode_ack(ack, NULL, 0) :
	    kanal__v1__batch_ack__get_packed_size(ack);

	if (need > in->ack_cap) {
		uint8_t *nb = realloc(in->ack, need);
		if (nb == NULL)
			return -1;
		in->ack = nb;
		in->ack_cap = need;
	}
	*len = json ? json_encode_ack(ack, (char *)in->ack, need) :
	    kanal__v1__batch_ack__pack(ack, in->ack);
	return 0;
}

static void
durable(void *arg, int ok)
{
	struct pending *p = arg;
	struct ingest *in = p->in;

	in->inflight--;
	dedup_settle(in->cfg.dedup, p->source, p->source_len, p->batch_id,
	    p->batch_id_len, ok);
	if (ok) {
		struct ingest_reply r = {
			.status = 200,
			.content_type = p->ack_type,
			.body = p->ack,
			.len = p->ack_len,
		};
		in->stats.batches_ok++;
		in->stats.events_accepted += p->accepted;
		count_rejected(in, p->rejected_by);
		p->reply(p->arg, &r);
	} else {
		struct wal_stats ws;

		wal_get_stats(in->cfg.wal, &ws);
		if (ws.no_space)
			reply_error(in, 503, "disk_full", "the disk of the "
			    "write-ahead log is full; retry later", p->reply,
			    p->arg);
		else
			reply_error(in, 503, "wal_unavailable", "the write-ahead "
			    "log could not be written; retry later", p->reply,
			    p->arg);
	}
	free(p);
}

/*
 * Appends the accepted events to the WAL; the reply goes out from
 * durable() once they are synced; 0. On failure the request is answered
 * 503 at once (nothing of it was kept) and -1 is returned.
 */
static int
commit(struct ingest *in, const struct source *src, const char *batch_id,
    const struct agg_event *acc, size_t nacc, int refs, uint32_t nrej,
    const uint32_t rejected_by[INGEST_REASONS], int64_t now_ms,
    const char *ack_type, size_t ack_len, ingest_reply_fn *reply, void *arg)
{
	struct record_batch rb = {
		.received_at_ms = now_ms,
		.source = source_name(src),
		.source_len = strlen(source_name(src)),
		.batch_id = batch_id,
		.batch_id_len = strlen(batch_id),
		.accepted = (uint32_t)nacc,
		.rejected = nrej,
		.has_reach = refs,
		.reach_key_id = refs ? in->cfg.reach->id : 0,
	};
	size_t need = record_batch_size(&rb, acc, nacc), len;
	struct pending *p;

	if (need > in->rec_cap) {
		uint8_t *nb = realloc(in->rec, need);
		if (nb == NULL)
			goto nomem;
		in->rec = nb;
		in->rec_cap = need;
	}
	len = record_batch_encode(&rb, acc, nacc, in->rec);
	p = malloc(sizeof(*p) + ack_len);
	if (p == NULL)
		goto nomem;
	p->in = in;
	p->reply = reply;
	p->arg = arg;
	p->accepted = (uint32_t)nacc;
	memcpy(p->rejected_by, rejected_by, sizeof(p->rejected_by));
	p->source_len = (uint8_t)rb.source_len;
	memcpy(p->source, rb.source, rb.source_len);
	p->batch_id_len = (uint8_t)rb.batch_id_len;
	memcpy(p->batch_id, batch_id, rb.batch_id_len);
	p->ack_type = ack_type;
	p->ack_len = ack_len;
	memcpy(p->ack, in->ack, ack_len);
	if (dedup_add(in->cfg.dedup, rb.source, rb.source_len, batch_id,
	    rb.batch_id_len, (uint32_t)nacc, nrej, now_ms, 1) == -1) {
		free(p);
		goto nomem;
	}
	if (wal_append(in->cfg.wal, RECORD_TYPE_BATCH, in->rec, len, durable, p)
	    == -1) {
		int full = errno == ENOSPC;
		dedup_settle(in->cfg.dedup, rb.source, rb.source_len, batch_id,
		    rb.batch_id_len, 0);
		free(p);
		if (full)
			reply_error(in, 503, "wal_full", "the write-ahead log is "
			    "full until PostgreSQL catches up; retry later",
			    reply, arg);
		else
			reply_error(in, 503, "wal_unavailable", "the write-ahead "
			    "log cannot be written; retry later", reply, arg);
		return -1;
	}
	in->inflight++;
	return 0;
nomem:
	reply_error(in, 503, "overloaded", "out of memory; retry later", reply,
	    arg);
	return -1;
}

void
ingest_apply(void *arg, const struct wal_record *rec)
{
	struct ingest *in = arg;

	/*
	 * The rollup table can't be allowed to drop a durable record: a
	 * failure here is memory exhaustion, and the WAL still has it.
	 */
	if (record_apply(in->agg, rec, &in->apply_ev, &in->apply_cap) == -2)
		fatal("cannot add a durable record to the rollups; the WAL "
		    "keeps it for the restart");
}

size_t
ingest_inflight(const struct ingest *in)
{
	return in->inflight;
}

void
ingest_event_fill(const Kanal__V1__ServiceEvent *ev,
    const struct reach_key *reach, struct agg_event *out)
{
	out->occurred_at_ms = ev->occurred_at_ms;
	out->service = ev->service_code;
	out->service_len = strlen(ev->service_code);
	out->region = ev->region_code;
	out->region_len = strlen(ev->region_code);
	out->duration_ms = ev->duration_ms;
	out->channel = (uint8_t)ev->channel;
	out->outcome = (uint8_t)ev->outcome;
	out->assisted = ev->assisted ? 1 : 0;
	out->has_ref = reach != NULL && ev->citizen_ref.len > 0;
	out->ref_hash = out->has_ref ? reach_hash(reach, ev->citizen_ref.data,
	    ev->citizen_ref.len) : 0;
}

void
ingest_batch(struct ingest *in, const char *auth, const char *content_type,
    const void *body, size_t len, int64_t now_ms, ingest_reply_fn *reply,
    void *arg)
{
	const struct source *src;
	const char *token;
	size_t toklen = 0, nev, nacc = 0, nrej = 0, not_allowed = 0, refs = 0;
	uint32_t rejected_by[INGEST_REASONS] = { 0 };
	Kanal__V1__EventBatch *batch;
	struct json_batch jb = { 0 };
	int json;
	Kanal__V1__BatchAck ack = KANAL__V1__BATCH_ACK__INIT;
	Kanal__V1__Rejection *rej = NULL, **rejp = NULL;
	struct agg_event *acc = NULL;
	char msg[MSG_MAX];
	struct ingest_reply r = { .status = 200 };

	token = bearer_token(auth, &toklen);
	if (token == NULL) {
		reply_error(in, 401, "token_missing", "send Authorization: "
		    "Bearer TOKEN", reply, arg);
		goto out;
	}
	src = in->sources != NULL ? sources_auth(in->sources, token, toklen)
	    : NULL;
	if (src == NULL) {
		reply_error(in, 401, "token_unknown", "the token is not in the "
		    "sources file; ask the operator for one", reply, arg);
		goto out;
	}
	json = content_type != NULL && media_type_is(content_type, TYPE_JSON);
	if (!json && (content_type == NULL || !(media_type_is(content_type,
	    TYPE_PROTOBUF) || media_type_is(content_type,
	    "application/protobuf")))) {
		reply_error(in, 415, "content_type_unsupported", "send "
		    "Content-Type: application/x-protobuf or application/json",
		    reply, arg);
		goto out;
	}
	r.content_type = json ? TYPE_JSON : TYPE_PROTOBUF;
	if (json) {
		char err[256];

		if (json_decode_batch(in->arena, body, len,
		    in->cfg.max_body_size * JSON_MEMORY_FACTOR, &jb, err,
		    sizeof(err)) == -1) {
			if (errno == EINVAL)
				reply_error(in, 400, "body_undecodable", err,
				    reply, arg);
			else
				reply_error(in, 503, "overloaded", "out of "
				    "memory; retry later", reply, arg);
			goto out;
		}
		batch = jb.batch;
	} else {
		batch = kanal__v1__event_batch__unpack(
		    arena_allocator(in->arena), len, body);
	}
	if (batch == NULL) {
		reply_error(in, 400, "body_undecodable", "the body is not a "
		    "kanal.v1.EventBatch in protobuf encoding", reply, arg);
		goto out;
	}
	if (batch->batch_id == NULL || !validate_batch_id(batch->batch_id,
	    strlen(batch->batch_id))) {
		reply_error(in, 400, "batch_id_invalid", "batch_id must be 1 "
		    "to 64 printable ASCII characters, unique per source",
		    reply, arg);
		goto out;
	}
	{
		uint32_t acc0, rej0;
		enum dedup_state st = dedup_find(in->cfg.dedup, source_name(src),
		    strlen(source_name(src)), batch->batch_id,
		    strlen(batch->batch_id), &acc0, &rej0);

		if (st == DEDUP_PENDING) {
			reply_error(in, 503, "batch_in_progress", "this batch_id "
			    "is being written; retry shortly", reply, arg);
			goto out;
		}
		if (st == DEDUP_DONE) {
			ack.accepted = acc0;
			ack.rejected = rej0;
			ack.duplicate = 1;
			ack.batch_id = batch->batch_id;
			if (pack_ack(in, &ack, json, &r.len) == -1) {
				reply_error(in, 503, "overloaded", "out of memory; "
				    "retry later", reply, arg);
				goto out;
			}
			r.body = in->ack;
			in->stats.batches_duplicate++;
			in->stats.events_duplicate += acc0;
			reply(arg, &r);
			goto out;
		}
	}
	nev = batch->n_events;
	if (nev > in->cfg.max_batch_events) {
		snprintf(msg, sizeof(msg), "batch has %zu events, the limit is "
		    "%llu; split it", nev,
		    (unsigned long long)in->cfg.max_batch_events);
		reply_error(in, 400, "batch_too_large", msg, reply, arg);
		goto out;
	}
	if (rate_check(in, src, nev, reply, arg) == -1)
		goto out;
	if (nev > 0) {
		acc = arena_alloc(in->arena, nev * sizeof(*acc));
		rej = arena_alloc(in->arena, nev * sizeof(*rej));
		rejp = arena_alloc(in->arena, nev * sizeof(*rejp));
		if (acc == NULL || rej == NULL || rejp == NULL) {
			rate_give_back(in, src, nev);
			reply_error(in, 503, "overloaded", "out of memory; retry "
			    "later", reply, arg);
			goto out;
		}
	}
	for (size_t i = 0; i < nev; i++) {
		const Kanal__V1__ServiceEvent *ev = batch->events[i];
		Kanal__V1__RejectReason why;

		why = validate_event(ev, src, now_ms, &in->cfg.limits, msg,
		    sizeof(msg));
		if (why != KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED) {
			Kanal__V1__Rejection *rj = &rej[nrej];
			size_t mlen;

			if (json)
				json_event_message(&jb, i, why, msg,
				    sizeof(msg));
			mlen = strlen(msg);

			kanal__v1__rejection__init(rj);
			rj->index = (uint32_t)i;
			rj->code = why;
			rj->message = arena_alloc(in->arena, mlen + 1);
			if (rj->message != NULL)
				memcpy(rj->message, msg, mlen + 1);
			else
				rj->message = (char *)"";
			rejp[nrej++] = rj;
			if (why == KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_NOT_ALLOWED)
				not_allowed++;
			if ((size_t)why < INGEST_REASONS)
				rejected_by[why]++;
			continue;
		}
		ingest_event_fill(ev, in->cfg.reach, &acc[nacc]);
		refs += acc[nacc++].has_ref;
	}
	if (nev > 0 && not_allowed == nev) {
		snprintf(msg, sizeof(msg), "source %s may report none of this "
		    "batch's services", source_name(src));
		count_rejected(in, rejected_by);
		reply_error(in, 403, "service_not_allowed", msg, reply, arg);
		goto out;
	}
	ack.accepted = (uint32_t)nacc;
	ack.rejected = (uint32_t)nrej;
	ack.n_rejections = nrej;
	ack.rejections = rejp;
	ack.batch_id = batch->batch_id;
	if (pack_ack(in, &ack, json, &r.len) == -1) {
		rate_give_back(in, src, nev);
		reply_error(in, 503, "overloaded", "out of memory; retry later",
		    reply, arg);
		goto out;
	}
	r.body = in->ack;
	if (nacc == 0) {
		/* Nothing to make durable: the answer is final as it is. */
		in->stats.batches_ok++;
		count_rejected(in, rejected_by);
		reply(arg, &r);
		goto out;
	}
	if (commit(in, src, batch->batch_id, acc, nacc, refs > 0,
	    (uint32_t)nrej, rejected_by, now_ms, r.content_type, r.len, reply,
	    arg) == -1)
		rate_give_back(in, src, nev);
out:
	arena_reset(in->arena);
}
