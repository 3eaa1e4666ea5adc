/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_decode: a POST /v1/events body as ingest_batch handles it.
 *
 * The input is the request body. It is unpacked as a kanal.v1.EventBatch
 * into an arena sized as ingest sizes it (arena_allocator), its batch_id
 * checked, and every event validated (validate_event) for a source of a
 * real sources file, at a fixed "now" (FUZZ_NOW_MS). Then what ingest
 * does with the outcome, with its invariants checked:
 *
 *   - every accepted event goes through the WAL record codec (record.h)
 *     and must come back identical: the replay decoder checks the codes
 *     again, so an event validate accepts and the record decoder refuses
 *     would be acknowledged and then lost on replay;
 *   - the BatchAck with one Rejection per refused event packs, and
 *     unpacks to the same counts;
 *   - a rejection message is a NUL-terminated string within its buffer;
 *   - an accepted event's service is one its source may report.
 *
 * The source is picked by the batch_id's length: even, one allowed "*";
 * odd, one allowed only "dukcapil.*" and "samsat.pkb" (source_allows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "fuzzlib.h"
#include "ingest.h"
#include "reach.h"
#include "record.h"
#include "sources.h"
#include "validate.h"

/* The digests are of "fuzz-token-all" and "fuzz-token-some". */
static struct sources *sources;
static const struct source *src_all, *src_some;
static struct arena *arena;
static struct validate_limits limits;
static uint64_t max_batch_events;

static const struct source *
auth(const char *token)
{
	const struct source *s = sources_auth(sources, token, strlen(token));

	FUZZ_CHECK(s != NULL);
	return s;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config cfg;
	char all[65], some[65], text[512];
	int n;

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	config_defaults(&cfg);
	limits.max_age_ms = (int64_t)cfg.event_max_age_ms;
	limits.max_ahead_ms = (int64_t)cfg.event_max_ahead_ms;
	max_batch_events = cfg.max_batch_events;
	sources_digest_hex("fuzz-token-all", strlen("fuzz-token-all"), all);
	sources_digest_hex("fuzz-token-some", strlen("fuzz-token-some"), some);
	n = snprintf(text, sizeof(text), "everything sha256:%s *\n"
	    "some sha256:%s dukcapil.*,samsat.pkb\n", all, some);
	sources = sources_parse(text, (size_t)n, "fuzz", stderr);
	FUZZ_CHECK(sources != NULL);
	src_all = auth("fuzz-token-all");
	src_some = auth("fuzz-token-some");
	/* As ingest_new sizes it (daemon/ingest.c). */
	arena = arena_new(cfg.max_body_size * 8 + cfg.max_batch_events *
	    (sizeof(struct agg_event) + 320) + (1 << 20));
	FUZZ_CHECK(arena != NULL);
	return 0;
}

static int
event_equal(const struct agg_event *a, const struct agg_event *b)
{
	return a->occurred_at_ms == b->occurred_at_ms &&
	    a->duration_ms == b->duration_ms && a->channel == b->channel &&
	    a->outcome == b->outcome && a->assisted == b->assisted &&
	    a->service_len == b->service_len &&
	    memcmp(a->service, b->service, a->service_len) == 0 &&
	    a->region_len == b->region_len &&
	    memcmp(a->region, b->region, a->region_len) == 0 &&
	    a->has_ref == b->has_ref && a->ref_hash == b->ref_hash;
}

/* A fixed reach key (reach.h): any will do for the codec. */
static const struct reach_key fuzz_key = {
	.hash_key = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
	.id = -4242,
};

/* The accepted events through the WAL record codec and back. */
static void
check_record(const struct source *src, const char *batch_id,
    const struct agg_event *acc, size_t nacc, uint32_t nrej)
{
	struct record_batch b = {
		.received_at_ms = FUZZ_NOW_MS,
		.source = source_name(src),
		.source_len = strlen(source_name(src)),
		.batch_id = batch_id,
		.batch_id_len = strlen(batch_id),
		.accepted = (uint32_t)nacc,
		.rejected = nrej,
		.has_reach = 1,
		.reach_key_id = fuzz_key.id,
	}, back;
	struct agg_event ev;
	size_t size = record_batch_size(&b, acc, nacc), off;
	uint8_t *p = arena_alloc(arena, size);

	FUZZ_CHECK(p != NULL);
	FUZZ_CHECK(record_batch_encode(&b, acc, nacc, p) == size);
	FUZZ_CHECK(record_batch_decode(p, size, &back, &off) == 0);
	FUZZ_CHECK(back.received_at_ms == b.received_at_ms);
	FUZZ_CHECK(back.accepted == nacc && back.rejected == nrej);
	FUZZ_CHECK(back.has_reach && back.reach_key_id == fuzz_key.id);
	FUZZ_CHECK(back.batch_id_len == b.batch_id_len &&
	    memcmp(back.batch_id, batch_id, b.batch_id_len) == 0);
	for (size_t i = 0; i < nacc; i++) {
		FUZZ_CHECK(record_event_next(p, size, &off, &ev) == 0);
		FUZZ_CHECK(event_equal(&ev, &acc[i]));
	}
	FUZZ_CHECK(off == size);
}

/* The BatchAck ingest would send, packed and read back. */
static void
check_ack(const char *batch_id, size_t nacc, Kanal__V1__Rejection **rejp,
    size_t nrej)
{
	Kanal__V1__BatchAck ack = KANAL__V1__BATCH_ACK__INIT, *back;
	size_t size;
	uint8_t *p;

	ack.accepted = (uint32_t)nacc;
	ack.rejected = (uint32_t)nrej;
	ack.n_rejections = nrej;
	ack.rejections = rejp;
	ack.batch_id = (char *)batch_id;
	size = kanal__v1__batch_ack__get_packed_size(&ack);
	p = arena_alloc(arena, size + 1);
	FUZZ_CHECK(p != NULL);
	FUZZ_CHECK(kanal__v1__batch_ack__pack(&ack, p) == size);
	back = kanal__v1__batch_ack__unpack(arena_allocator(arena), size, p);
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(back->accepted == nacc && back->rejected == nrej &&
	    back->n_rejections == nrej);
	FUZZ_CHECK(strcmp(back->batch_id, batch_id) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Kanal__V1__EventBatch *batch;
	Kanal__V1__Rejection *rej, **rejp;
	const struct source *src;
	struct agg_event *acc;
	size_t nev, nacc = 0, nrej = 0;
	char msg[256];

	batch = kanal__v1__event_batch__unpack(arena_allocator(arena), size,
	    data);
	if (batch == NULL)
		goto out;
	if (batch->batch_id == NULL ||
	    !validate_batch_id(batch->batch_id, strlen(batch->batch_id)))
		goto out;
	src = strlen(batch->batch_id) % 2 == 0 ? src_all : src_some;
	nev = batch->n_events;
	if (nev > max_batch_events)
		goto out;
	/* One more than needed: an empty batch is answered too. */
	acc = arena_alloc(arena, (nev + 1) * sizeof(*acc));
	rej = arena_alloc(arena, (nev + 1) * sizeof(*rej));
	rejp = arena_alloc(arena, (nev + 1) * sizeof(*rejp));
	FUZZ_CHECK(acc != NULL && rej != NULL && rejp != NULL);
	for (size_t i = 0; i < nev; i++) {
		const Kanal__V1__ServiceEvent *ev = batch->events[i];
		Kanal__V1__RejectReason why;
		size_t mlen;

		memset(msg, 0xa5, sizeof(msg));
		why = validate_event(ev, src, FUZZ_NOW_MS, &limits, msg,
		    sizeof(msg));
		if (why != KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED) {
			FUZZ_CHECK(validate_reason_name(why) != NULL);
			mlen = strnlen(msg, sizeof(msg));
			FUZZ_CHECK(mlen > 0 && mlen < sizeof(msg));
			kanal__v1__rejection__init(&rej[nrej]);
			rej[nrej].index = (uint32_t)i;
			rej[nrej].code = why;
			rej[nrej].message = arena_alloc(arena, mlen + 1);
			FUZZ_CHECK(rej[nrej].message != NULL);
			memcpy(rej[nrej].message, msg, mlen + 1);
			rejp[nrej] = &rej[nrej];
			nrej++;
			continue;
		}
		/* With a reach key: the citizen_ref's hash goes through too. */
		ingest_event_fill(ev, &fuzz_key, &acc[nacc]);
		FUZZ_CHECK(acc[nacc].has_ref == (ev->citizen_ref.len > 0));
		FUZZ_CHECK(source_allows(src, ev->service_code,
		    acc[nacc].service_len));
		nacc++;
	}
	check_record(src, batch->batch_id, acc, nacc, (uint32_t)nrej);
	check_ack(batch->batch_id, nacc, rejp, nrej);
out:
	arena_reset(arena);
	return 0;
}
