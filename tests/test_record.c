/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_record: the WAL record payload codec. A batch round-trips with
 * every channel, outcome and assisted value and the longest codes; every
 * truncation of a valid payload fails to decode (each prefix sits in a
 * buffer of exactly its length, so AddressSanitizer proves the decoder
 * never reads past it); and each corrupted field is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "record.h"
#include "wal.h"

/* 64 characters: the longest service code. */
#define SERVICE64 \
	"dukcapil.akta-kelahiran.penerbitan-ulang_karena-rusak.kota-bdg01"
/* 63 characters: the longest source name. */
#define SOURCE63 \
	"dukcapil-salaman-kantor-pusat-bandung-jl-ambon-no-7-lantai-dua1"
/* 64 characters: the longest batch_id. */
#define BATCH64 \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ------------------------------------------------------------- helpers */

static struct record_batch
batch(const char *source, const char *batch_id, uint32_t accepted,
    uint32_t rejected)
{
	struct record_batch b;

	memset(&b, 0, sizeof(b));
	b.received_at_ms = 1780000000123LL;
	b.source = source;
	b.source_len = strlen(source);
	b.batch_id = batch_id;
	b.batch_id_len = strlen(batch_id);
	b.accepted = accepted;
	b.rejected = rejected;
	return b;
}

static struct agg_event
event(const char *service, const char *region, uint8_t channel,
    uint8_t outcome, uint8_t assisted)
{
	struct agg_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.occurred_at_ms = 1779999000000LL;
	ev.service = service;
	ev.service_len = strlen(service);
	ev.region = region;
	ev.region_len = strlen(region);
	ev.duration_ms = 90000;
	ev.channel = channel;
	ev.outcome = outcome;
	ev.assisted = assisted;
	return ev;
}

/* Encodes into a buffer of exactly the size; the caller frees it. */
static uint8_t *
encode(const struct record_batch *b, const struct agg_event *ev, size_t n,
    size_t *len)
{
	uint8_t *p;

	*len = record_batch_size(b, ev, n);
	p = malloc(*len);
	assert_non_null(p);
	assert_int_equal(record_batch_encode(b, ev, n, p), *len);
	return p;
}

/* Header and every accepted event: 0, or -1 as soon as one fails. */
static int
decode_all(const uint8_t *p, size_t len)
{
	struct record_batch b;
	struct agg_event ev;
	size_t off;

	if (record_batch_decode(p, len, &b, &off) == -1)
		return -1;
	for (uint32_t i = 0; i < b.accepted; i++)
		if (record_event_next(p, len, &off, &ev) == -1)
			return -1;
	return 0;
}

/* Every proper prefix, each in a buffer of exactly its length, fails. */
static void
assert_every_truncation_fails(const uint8_t *p, size_t len)
{
	for (size_t cut = 0; cut < len; cut++) {
		/* malloc(0) may return NULL; keep one byte but pass cut. */
		uint8_t *q = malloc(cut > 0 ? cut : 1);
		assert_non_null(q);
		memcpy(q, p, cut);
		if (decode_all(q, cut) != -1)
			fail_msg("a payload cut to %zu of %zu bytes decoded",
			    cut, len);
		free(q);
	}
}

/* ------------------------------------------------------------ round trip */

static void
test_round_trip_with_every_channel_outcome_and_assisted(void **state)
{
	static const char *const regions[] = {
		"32", "32.73", "32.73.01", "32.73.01.1001",
	};
	struct agg_event ev[9 * 4 * 2];
	struct record_batch b = batch(SOURCE63, BATCH64, 0, 7), got;
	struct agg_event e;
	size_t n = 0, len, off;
	uint8_t *p;

	(void)state;
	for (uint8_t ch = 1; ch <= 9; ch++)
		for (uint8_t oc = 0; oc <= 3; oc++)
			for (uint8_t as = 0; as <= 1; as++) {
				ev[n] = event(n % 2 ? SERVICE64 : "a",
				    regions[n % 4], ch, oc, as);
				ev[n].occurred_at_ms = n == 0 ? 0 :
				    n == 1 ? INT64_MAX : 1779999000000LL + n;
				ev[n].duration_ms = n == 2 ? UINT32_MAX :
				    (uint32_t)n * 1000;
				n++;
			}
	b.accepted = (uint32_t)n;
	assert_int_equal(strlen(SOURCE63), 63);
	assert_int_equal(strlen(BATCH64), 64);
	assert_int_equal(strlen(SERVICE64), 64);
	p = encode(&b, ev, n, &len);

	assert_int_equal(record_batch_decode(p, len, &got, &off), 0);
	assert_int_equal(got.received_at_ms, b.received_at_ms);
	assert_int_equal(got.source_len, 63);
	assert_memory_equal(got.source, SOURCE63, 63);
	assert_int_equal(got.batch_id_len, 64);
	assert_memory_equal(got.batch_id, BATCH64, 64);
	assert_int_equal(got.accepted, n);
	assert_int_equal(got.rejected, 7);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(record_event_next(p, len, &off, &e), 0);
		assert_int_equal(e.occurred_at_ms, ev[i].occurred_at_ms);
		assert_int_equal(e.duration_ms, ev[i].duration_ms);
		assert_int_equal(e.channel, ev[i].channel);
		assert_int_equal(e.outcome, ev[i].outcome);
		assert_int_equal(e.assisted, ev[i].assisted);
		assert_int_equal(e.service_len, ev[i].service_len);
		assert_memory_equal(e.service, ev[i].service, e.service_len);
		assert_int_equal(e.region_len, ev[i].region_len);
		assert_memory_equal(e.region, ev[i].region, e.region_len);
	}
	assert_int_equal(off, len);
	free(p);
}

static void
test_round_trip_of_a_batch_with_no_accepted_events(void **state)
{
	struct record_batch b = batch("s", "b", 0, 10000), got;
	size_t len, off;
	uint8_t *p;

	(void)state;
	p = encode(&b, NULL, 0, &len);
	assert_int_equal(len, 8 + 1 + 1 + 1 + 1 + 4 + 4);
	assert_int_equal(record_batch_decode(p, len, &got, &off), 0);
	assert_int_equal(got.accepted, 0);
	assert_int_equal(got.rejected, 10000);
	assert_int_equal(off, len);
	free(p);
}

static void
test_size_counts_header_and_events(void **state)
{
	struct agg_event ev[2] = {
		event("a", "32", 1, 1, 0),
		event(SERVICE64, "32.73.01.1001", 9, 3, 1),
	};
	struct record_batch b = batch("src", "bid-1", 2, 0);

	(void)state;
	/* 8 + 1+3 + 1+5 + 4 + 4, then 17 + codes per event. */
	assert_int_equal(record_batch_size(&b, ev, 0), 26);
	assert_int_equal(record_batch_size(&b, ev, 2),
	    26 + (17 + 1 + 2) + (17 + 64 + 13));
}

/* ------------------------------------------------------------ truncation */

static void
test_every_truncation_of_a_valid_payload_fails_cleanly(void **state)
{
	struct agg_event ev[3] = {
		event("dukcapil.akta-lahir", "32.73.01.1001", 1, 1, 0),
		event(SERVICE64, "32", 6, 2, 1),
		event("a", "32.73", 9, 0, 0),
	};
	struct record_batch b = batch("dukcapil-salaman", "batch-0001", 3, 1);
	size_t len;
	uint8_t *p = encode(&b, ev, 3, &len);

	(void)state;
	assert_int_equal(decode_all(p, len), 0);
	assert_every_truncation_fails(p, len);
	free(p);
}

static void
test_every_truncation_of_an_empty_batch_fails_cleanly(void **state)
{
	struct record_batch b = batch(SOURCE63, BATCH64, 0, 3);
	size_t len;
	uint8_t *p = encode(&b, NULL, 0, &len);

	(void)state;
	assert_int_equal(decode_all(p, len), 0);
	assert_every_truncation_fails(p, len);
	free(p);
}

/* ------------------------------------------------------------ corruption */

/*
 * Byte offsets in the payload of the reference batch below: source "src"
 * (3), batch_id "b-1" (3), one event with service "svc" and region
 * "32.73".
 */
#define OFF_SOURCE_LEN 8
#define OFF_BATCH_ID_LEN 12
#define OFF_ACCEPTED 16
#define OFF_EVENT 24
#define OFF_OCCURRED_HI (OFF_EVENT + 7)
#define OFF_CHANNEL (OFF_EVENT + 12)
#define OFF_OUTCOME (OFF_EVENT + 13)
#define OFF_ASSISTED (OFF_EVENT + 14)
#define OFF_SERVICE_LEN (OFF_EVENT + 15)
#define OFF_SERVICE (OFF_EVENT + 16)
#define OFF_REGION_LEN (OFF_EVENT + 19)
#define OFF_REGION (OFF_EVENT + 20)

static const struct corrupt_case {
	const char *name;
	size_t off;
	uint8_t value;
} corrupt_cases[] = {
	{ "source_len 0 is refused", OFF_SOURCE_LEN, 0 },
	{ "source_len 64 is refused", OFF_SOURCE_LEN, 64 },
	{ "source_len past the end is refused", OFF_SOURCE_LEN, 255 },
	{ "batch_id_len 0 is refused", OFF_BATCH_ID_LEN, 0 },
	{ "batch_id_len 65 is refused", OFF_BATCH_ID_LEN, 65 },
	{ "accepted 2 with bytes for one event is refused", OFF_ACCEPTED, 2 },
	{ "accepted 2^31 is refused", OFF_ACCEPTED + 3, 0x80 },
	{ "a negative occurred_at_ms is refused", OFF_OCCURRED_HI, 0x80 },
	{ "channel 0 (unspecified) is refused", OFF_CHANNEL, 0 },
	{ "channel 10 (unknown) is refused", OFF_CHANNEL, 10 },
	{ "channel 255 is refused", OFF_CHANNEL, 255 },
	{ "outcome 4 is refused", OFF_OUTCOME, 4 },
	{ "assisted 2 is refused", OFF_ASSISTED, 2 },
	{ "service_len 0 is refused", OFF_SERVICE_LEN, 0 },
	{ "service_len past the end is refused", OFF_SERVICE_LEN, 200 },
	{ "a service code starting with '.' is refused", OFF_SERVICE, '.' },
	{ "an upper-case service code is refused", OFF_SERVICE + 1, 'V' },
	{ "a service code with a space is refused", OFF_SERVICE + 2, ' ' },
	{ "region_len 3 is refused", OFF_REGION_LEN, 3 },
	{ "region_len 0 is refused", OFF_REGION_LEN, 0 },
	{ "region_len past the end is refused", OFF_REGION_LEN, 13 },
	{ "a region code with a letter is refused", OFF_REGION + 1, 'x' },
	{ "a region code with ',' for '.' is refused", OFF_REGION + 2, ',' },
};

static void
test_corrupted_fields_are_refused(void **state)
{
	struct agg_event ev = event("svc", "32.73", 2, 1, 1);
	struct record_batch b = batch("src", "b-1", 1, 0), got;
	size_t len, off;
	uint8_t *p = encode(&b, &ev, 1, &len);

	(void)state;
	/* The offsets above describe this payload. */
	assert_int_equal(len, OFF_REGION + 5);
	assert_int_equal(p[OFF_SOURCE_LEN], 3);
	assert_int_equal(p[OFF_BATCH_ID_LEN], 3);
	assert_int_equal(p[OFF_ACCEPTED], 1);
	assert_int_equal(p[OFF_CHANNEL], 2);
	assert_int_equal(p[OFF_SERVICE_LEN], 3);
	assert_int_equal(p[OFF_REGION_LEN], 5);
	assert_int_equal(decode_all(p, len), 0);
	assert_int_equal(record_batch_decode(p, len, &got, &off), 0);
	assert_int_equal(off, OFF_EVENT);

	for (size_t c = 0; c < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]);
	    c++) {
		const struct corrupt_case *k = &corrupt_cases[c];
		uint8_t *q = malloc(len);
		assert_non_null(q);
		memcpy(q, p, len);
		q[k->off] = k->value;
		if (decode_all(q, len) != -1)
			fail_msg("%s: decoded", k->name);
		free(q);
	}
	free(p);
}

static void
test_an_accepted_count_beyond_the_bytes_is_refused_by_the_header(void **state)
{
	static const uint32_t counts[] = { 2, 1000, 0x7fffffffu, UINT32_MAX };
	/* One event of the smallest size: service "a", region "32". */
	struct agg_event ev = event("a", "32", 1, 1, 0);
	struct record_batch b = batch("s", "b", 1, 0), got;
	size_t len, off;
	uint8_t *p = encode(&b, &ev, 1, &len);

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		uint8_t *q = malloc(len);
		assert_non_null(q);
		memcpy(q, p, len);
		q[12] = (uint8_t)counts[c];
		q[13] = (uint8_t)(counts[c] >> 8);
		q[14] = (uint8_t)(counts[c] >> 16);
		q[15] = (uint8_t)(counts[c] >> 24);
		if (record_batch_decode(q, len, &got, &off) != -1)
			fail_msg("accepted %u with bytes for one event decoded",
			    counts[c]);
		free(q);
	}
	free(p);
}

/* ---------------------------------------------------------------- reach */

/*
 * A batch with a reach key: the header carries the key id, and each event
 * with a citizen hash carries the hash (and only it: no citizen_ref field
 * exists in the record). Events without one stay as before.
 */
static void
test_round_trip_of_citizen_hashes(void **state)
{
	struct record_batch b = batch("dukcapil", "b-1", 3, 0), got;
	struct agg_event ev[3], e;
	size_t len, off;
	uint8_t *p;

	(void)state;
	b.has_reach = 1;
	b.reach_key_id = INT64_MIN + 5;
	ev[0] = event("a", "32.73.01", 1, 1, 1);
	ev[0].has_ref = 1;
	ev[0].ref_hash = UINT64_MAX;
	ev[1] = event("a", "32.73.01", 6, 1, 0);
	ev[2] = event("b", "32.73", 2, 0, 0);
	ev[2].has_ref = 1;
	ev[2].ref_hash = 0x0123456789abcdefULL;
	p = encode(&b, ev, 3, &len);
	/* Header +8 for the key id; +8 per hash. */
	assert_int_equal(len, record_batch_size(&(struct record_batch){
	    .source_len = b.source_len, .batch_id_len = b.batch_id_len }, ev, 3)
	    + 8 + 16);
	assert_int_equal(record_batch_decode(p, len, &got, &off), 0);
	assert_true(got.has_reach);
	assert_true(got.reach_key_id == INT64_MIN + 5);
	assert_int_equal(got.source_len, strlen("dukcapil"));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(record_event_next(p, len, &off, &e), 0);
		assert_int_equal(e.has_ref, ev[i].has_ref);
		assert_true(e.ref_hash == ev[i].ref_hash);
		assert_int_equal(e.assisted, ev[i].assisted);
		assert_int_equal(e.channel, ev[i].channel);
	}
	assert_int_equal(off, len);
	assert_every_truncation_fails(p, len);
	free(p);
}

/*
 * Without a reach key in the header, events never carry hashes: has_ref
 * set by a caller is not written, and the bytes are those of a record
 * made before reach existed (older WAL files replay unchanged).
 */
static void
test_no_reach_key_writes_the_old_layout(void **state)
{
	struct record_batch b = batch("dukcapil", "b-1", 1, 0), got;
	struct agg_event ev = event("a", "32.73.01", 1, 1, 1), plain = ev, e;
	size_t len, len2, off;
	uint8_t *p, *q;

	(void)state;
	ev.has_ref = 1;
	ev.ref_hash = 42;
	p = encode(&b, &ev, 1, &len);
	q = encode(&b, &plain, 1, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(p, q, len);
	assert_int_equal(record_batch_decode(p, len, &got, &off), 0);
	assert_false(got.has_reach);
	assert_int_equal(record_event_next(p, len, &off, &e), 0);
	assert_false(e.has_ref);
	free(p);
	free(q);
}

/* A hash flag on an event of a record without a reach key is refused by
 * record_apply (the WAL's CRC passed: such a record was written wrong). */
static void
test_a_hash_without_a_reach_key_is_refused(void **state)
{
	struct record_batch b = batch("dukcapil", "b-1", 1, 0);
	struct agg_event ev = event("a", "32.73.01", 1, 1, 0);
	struct wal_record rec;
	struct agg_event *scratch = NULL;
	size_t len, cap = 0;
	struct agg *a = agg_new();
	uint8_t *p, *q;

	(void)state;
	assert_non_null(a);
	p = encode(&b, &ev, 1, &len);
	/* Set the flag by hand and add the 8 bytes it promises. */
	q = malloc(len + 8);
	assert_non_null(q);
	memcpy(q, p, len);
	memset(q + len, 0xab, 8);
	q[8 + 1 + b.source_len + 1 + b.batch_id_len + 8 + 14] |= 0x02;
	memset(&rec, 0, sizeof(rec));
	rec.type = RECORD_TYPE_BATCH;
	rec.payload = q;
	rec.len = len + 8;
	assert_int_equal(record_apply(a, &rec, &scratch, &cap), -1);
	assert_int_equal(agg_keys(a), 0);
	free(scratch);
	free(p);
	free(q);
	agg_free(a);
}

/*
 * A record as kanald wrote it before reach existed, byte for byte (the
 * layout of record.h without the REACH bits): it decodes to what was
 * written, with no reach key and no citizen hash.
 */
static void
test_a_record_from_before_reach_decodes_unchanged(void **state)
{
	static const uint8_t old[] = {
		0x7b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* 123 ms */
		0x03, 'p', 'o', 'r',				/* source */
		0x02, 'b', '1',					/* batch_id */
		0x01, 0x00, 0x00, 0x00,				/* accepted */
		0x02, 0x00, 0x00, 0x00,				/* rejected */
		0x10, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* 10000 */
		0xe8, 0x03, 0x00, 0x00,				/* 1000 ms */
		0x06, 0x01, 0x01,		/* counter, completed, assisted */
		0x01, 'a',					/* service */
		0x05, '3', '2', '.', '7', '3',			/* region */
	};
	struct record_batch b;
	struct agg_event e;
	size_t off;

	(void)state;
	assert_int_equal(record_batch_decode(old, sizeof(old), &b, &off), 0);
	assert_false(b.has_reach);
	assert_int_equal(b.received_at_ms, 123);
	assert_int_equal(b.source_len, 3);
	assert_memory_equal(b.source, "por", 3);
	assert_int_equal(b.accepted, 1);
	assert_int_equal(b.rejected, 2);
	assert_int_equal(record_event_next(old, sizeof(old), &off, &e), 0);
	assert_int_equal(off, sizeof(old));
	assert_int_equal(e.occurred_at_ms, 10000);
	assert_int_equal(e.duration_ms, 1000);
	assert_int_equal(e.channel, 6);
	assert_int_equal(e.outcome, 1);
	assert_int_equal(e.assisted, 1);
	assert_false(e.has_ref);
	assert_int_equal(e.region_len, 5);
	/* And the encoder still writes exactly these bytes. */
	{
		uint8_t again[sizeof(old)];

		assert_int_equal(record_batch_size(&b, &e, 1), sizeof(old));
		assert_int_equal(record_batch_encode(&b, &e, 1, again),
		    sizeof(old));
		assert_memory_equal(again, old, sizeof(old));
	}
}

/*
 * record_apply checks everything of a record read back from disk; of one
 * the writer hands over from memory (in_memory) it skips only the syntax
 * of the codes ingest had checked: the bounds, the channel, the outcome
 * and assisted are still checked.
 */
static void
test_apply_checks_a_record_from_disk_in_full(void **state)
{
	struct record_batch b = batch("dukcapil", "b-1", 1, 0);
	struct agg_event ev = event("BAD CODE", "32.73.01", 1, 1, 0);
	struct wal_record rec;
	struct agg_event *scratch = NULL;
	size_t len, cap = 0;
	struct agg *a = agg_new();
	uint8_t *p;

	(void)state;
	assert_non_null(a);
	p = encode(&b, &ev, 1, &len);
	memset(&rec, 0, sizeof(rec));
	rec.type = RECORD_TYPE_BATCH;
	rec.payload = p;
	rec.len = len;
	assert_int_equal(record_apply(a, &rec, &scratch, &cap), -1);
	assert_int_equal(agg_keys(a), 0);
	free(p);
	/* In memory: a channel out of range is refused all the same. */
	ev = event("dukcapil.kk", "32.73.01", 42, 1, 0);
	p = encode(&b, &ev, 1, &len);
	rec.payload = p;
	rec.len = len;
	rec.in_memory = 1;
	assert_int_equal(record_apply(a, &rec, &scratch, &cap), -1);
	free(p);
	ev = event("dukcapil.kk", "32.73.01", 1, 1, 0);
	p = encode(&b, &ev, 1, &len);
	rec.payload = p;
	rec.len = len;
	assert_int_equal(record_apply(a, &rec, &scratch, &cap), 0);
	assert_int_equal(agg_keys(a), 1);
	free(p);
	free(scratch);
	agg_free(a);
}

/* ------------------------------------------------------------------ main */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_round_trip_with_every_channel_outcome_and_assisted),
		cmocka_unit_test(test_round_trip_of_a_batch_with_no_accepted_events),
		cmocka_unit_test(test_size_counts_header_and_events),
		cmocka_unit_test(
		    test_every_truncation_of_a_valid_payload_fails_cleanly),
		cmocka_unit_test(
		    test_every_truncation_of_an_empty_batch_fails_cleanly),
		cmocka_unit_test(test_corrupted_fields_are_refused),
		cmocka_unit_test(
		    test_an_accepted_count_beyond_the_bytes_is_refused_by_the_header),
		cmocka_unit_test(test_round_trip_of_citizen_hashes),
		cmocka_unit_test(test_no_reach_key_writes_the_old_layout),
		cmocka_unit_test(test_a_hash_without_a_reach_key_is_refused),
		cmocka_unit_test(test_a_record_from_before_reach_decodes_unchanged),
		cmocka_unit_test(test_apply_checks_a_record_from_disk_in_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
