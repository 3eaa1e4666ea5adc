/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_arena: alignment, the per-request limit, blocks larger than the
 * first, reset, the used counter, and protobuf-c unpacking through the
 * arena allocator (a limit too small must fail cleanly, never crash).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "kanal/v1/events.pb-c.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* ------------------------------------------------------------- helpers */

static int
aligned16(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

/* Fills and checks a block so overlapping allocations show up. */
static void
fill(void *p, size_t n, unsigned char v)
{
	memset(p, v, n);
}

static int
holds(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

/* ------------------------------------------------------------ alignment */

static void
test_every_allocation_is_16_byte_aligned_and_disjoint(void **state)
{
	enum { N = 300 };
	struct arena *a = arena_new(4 * MiB);
	void *p[N];

	(void)state;
	assert_non_null(a);
	/* Odd sizes, enough of them to need a second and third block. */
	for (size_t i = 0; i < N; i++) {
		size_t size = 1 + i * 37 % 1000;

		p[i] = arena_alloc(a, size);
		if (p[i] == NULL)
			fail_msg("allocation %zu of %zu bytes failed", i, size);
		if (!aligned16(p[i]))
			fail_msg("allocation %zu of %zu bytes is at %p, not "
			    "16-byte aligned", i, size, p[i]);
		fill(p[i], size, (unsigned char)i);
	}
	for (size_t i = 0; i < N; i++)
		if (!holds(p[i], 1 + i * 37 % 1000, (unsigned char)i))
			fail_msg("allocation %zu was overwritten by a later "
			    "one", i);
	arena_free(a);
}

/* ---------------------------------------------------------- used, limit */

struct used_case {
	const char *name;
	size_t sizes[4];	/* allocated in turn; 0 ends the list */
	size_t used;		/* arena_used afterwards */
};

static const struct used_case used_cases[] = {
	{ "one byte uses one 16-byte unit", { 1 }, 16 },
	{ "16 bytes use exactly 16", { 16 }, 16 },
	{ "17 bytes round up to 32", { 17 }, 32 },
	{ "uses add up", { 1, 17, 100 }, 16 + 32 + 112 },
	{ "nothing allocated uses nothing", { 0 }, 0 },
};

static void
test_used_counts_rounded_sizes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(used_cases) / sizeof(used_cases[0]);
	    i++) {
		const struct used_case *c = &used_cases[i];
		struct arena *a = arena_new(MiB);

		assert_non_null(a);
		for (size_t j = 0; j < 4 && c->sizes[j] != 0; j++)
			assert_non_null(arena_alloc(a, c->sizes[j]));
		if (arena_used(a) != c->used)
			fail_msg("%s: used %zu, want %zu", c->name,
			    arena_used(a), c->used);
		arena_free(a);
	}
}

struct limit_case {
	const char *name;
	size_t limit;
	size_t sizes[4];	/* allocated in turn; 0 ends the list */
	int last_ok;		/* whether the last one succeeds */
};

static const struct limit_case limit_cases[] = {
	{ "an allocation of exactly the limit succeeds", 1024, { 1024 }, 1 },
	{ "an allocation one unit over the limit fails", 1024, { 1025 }, 0 },
	{ "the allocation that crosses the limit fails", 1024,
	  { 512, 512, 16 }, 0 },
	{ "allocations up to the limit succeed", 1024, { 512, 496, 16 }, 1 },
	{ "a limit below the first block is still enforced", 100, { 96, 16 },
	  0 },
	{ "rounding counts against the limit", 100, { 97 }, 0 },
	{ "a limit above the first block lets a large allocation through",
	  4 * MiB, { 3 * MiB }, 1 },
	{ "a size so large that rounding overflows fails", 4 * MiB,
	  { SIZE_MAX }, 0 },
	{ "a size near SIZE_MAX fails", 4 * MiB, { SIZE_MAX - 15 }, 0 },
};

static void
test_limit_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]);
	    i++) {
		const struct limit_case *c = &limit_cases[i];
		struct arena *a = arena_new(c->limit);
		size_t n = 0, before;
		void *p = NULL;

		assert_non_null(a);
		while (n < 4 && c->sizes[n] != 0)
			n++;
		for (size_t j = 0; j + 1 < n; j++)
			if (arena_alloc(a, c->sizes[j]) == NULL)
				fail_msg("%s: allocation %zu of %zu bytes "
				    "failed before the last", c->name, j,
				    c->sizes[j]);
		before = arena_used(a);
		p = arena_alloc(a, c->sizes[n - 1]);
		if (c->last_ok && p == NULL)
			fail_msg("%s: the last allocation failed", c->name);
		if (!c->last_ok && p != NULL)
			fail_msg("%s: the last allocation succeeded", c->name);
		if (!c->last_ok && arena_used(a) != before)
			fail_msg("%s: a failed allocation changed used from "
			    "%zu to %zu", c->name, before, arena_used(a));
		if (arena_used(a) > c->limit)
			fail_msg("%s: used %zu is over the limit %zu", c->name,
			    arena_used(a), c->limit);
		arena_free(a);
	}
}

static void
test_reset_lifts_the_limit_again(void **state)
{
	struct arena *a = arena_new(1024);
	void *p;

	(void)state;
	assert_non_null(arena_alloc(a, 1024));
	assert_null(arena_alloc(a, 1));
	arena_reset(a);
	assert_int_equal(arena_used(a), 0);
	p = arena_alloc(a, 1024);
	assert_non_null(p);
	fill(p, 1024, 0x5a);
	assert_null(arena_alloc(a, 1));
	arena_free(a);
}

/* ------------------------------------------------------- blocks, reset */

static void
test_allocation_larger_than_the_first_block_works(void **state)
{
	struct arena *a = arena_new(64 * MiB);
	unsigned char *small, *big, *after;

	(void)state;
	small = arena_alloc(a, 100);
	assert_non_null(small);
	fill(small, 100, 1);
	big = arena_alloc(a, 5 * MiB);	/* far over the 64 KiB first block */
	assert_non_null(big);
	assert_true(aligned16(big));
	fill(big, 5 * MiB, 2);
	after = arena_alloc(a, 100);
	assert_non_null(after);
	fill(after, 100, 3);
	assert_true(holds(small, 100, 1));
	assert_true(holds(big, 5 * MiB, 2));
	assert_int_equal(arena_used(a), 112 + 5 * MiB + 112);
	arena_free(a);
}

static void
test_reset_keeps_the_arena_usable_round_after_round(void **state)
{
	struct arena *a = arena_new(16 * MiB);

	(void)state;
	/* Each round spreads over several blocks, then starts again. */
	for (int round = 0; round < 5; round++) {
		unsigned char *p[40];

		for (int i = 0; i < 40; i++) {
			p[i] = arena_alloc(a, 10 * KiB + (size_t)round);
			assert_non_null(p[i]);
			fill(p[i], 10 * KiB, (unsigned char)(round * 40 + i));
		}
		for (int i = 0; i < 40; i++)
			if (!holds(p[i], 10 * KiB,
			    (unsigned char)(round * 40 + i)))
				fail_msg("round %d: allocation %d overwritten",
				    round, i);
		arena_reset(a);
		assert_int_equal(arena_used(a), 0);
	}
	arena_free(a);
}

static void
test_reset_and_free_of_an_unused_arena(void **state)
{
	struct arena *a = arena_new(KiB);

	(void)state;
	arena_reset(a);
	assert_int_equal(arena_used(a), 0);
	assert_non_null(arena_alloc(a, 16));
	arena_free(a);
	arena_free(NULL);
}

/* ------------------------------------------------------------ protobuf-c */

static const uint8_t event_id[16] = {
	0x0e, 0x4f, 0x7d, 0x2c, 0x9a, 0x51, 0x4b, 0xcb,
	0x8f, 0x7e, 0x3c, 0x2a, 0x1d, 0x0b, 0x9e, 0x88,
};

/* A packed batch of three events; free the result. */
static uint8_t *
packed_batch(size_t *len)
{
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[3];
	Kanal__V1__ServiceEvent *evp[3];
	uint8_t *buf;

	for (int i = 0; i < 3; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)"dukcapil.akta-lahir";
		ev[i].channel = (Kanal__V1__Channel)(i + 1);
		ev[i].occurred_at_ms = 1780000000000LL + i;
		ev[i].region_code = (char *)"32.73.01.1001";
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].duration_ms = 1000u * (unsigned)(i + 1);
		ev[i].assisted = i == 2;
		evp[i] = &ev[i];
	}
	ev[0].event_id.data = (uint8_t *)event_id;
	ev[0].event_id.len = sizeof(event_id);
	ev[1].citizen_ref.data = (uint8_t *)"pz-7f3a9c";
	ev[1].citizen_ref.len = 9;
	ev[2].service_code = (char *)"dpmptsp.izin-usaha";
	batch.batch_id = (char *)"batch-0001";
	batch.n_events = 3;
	batch.events = evp;

	*len = kanal__v1__event_batch__get_packed_size(&batch);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(kanal__v1__event_batch__pack(&batch, buf), *len);
	return buf;
}

static void
check_batch(const Kanal__V1__EventBatch *b)
{
	assert_string_equal(b->batch_id, "batch-0001");
	assert_int_equal(b->n_events, 3);
	for (size_t i = 0; i < 3; i++) {
		const Kanal__V1__ServiceEvent *ev = b->events[i];

		assert_true(aligned16(ev));
		assert_string_equal(ev->service_code, i == 2 ?
		    "dpmptsp.izin-usaha" : "dukcapil.akta-lahir");
		assert_int_equal(ev->channel, i + 1);
		assert_int_equal(ev->occurred_at_ms,
		    1780000000000LL + (int64_t)i);
		assert_string_equal(ev->region_code, "32.73.01.1001");
		assert_int_equal(ev->outcome,
		    KANAL__V1__OUTCOME__OUTCOME_COMPLETED);
		assert_int_equal(ev->duration_ms, 1000 * (i + 1));
		assert_int_equal(ev->assisted, i == 2);
	}
	assert_int_equal(b->events[0]->event_id.len, 16);
	assert_memory_equal(b->events[0]->event_id.data, event_id, 16);
	assert_int_equal(b->events[1]->citizen_ref.len, 9);
	assert_memory_equal(b->events[1]->citizen_ref.data, "pz-7f3a9c", 9);
	assert_int_equal(b->events[2]->event_id.len, 0);
}

static void
test_unpack_through_the_arena(void **state)
{
	struct arena *a = arena_new(MiB);
	ProtobufCAllocator *pa = arena_allocator(a);
	Kanal__V1__EventBatch *b;
	size_t len;
	uint8_t *buf = packed_batch(&len);

	(void)state;
	for (int round = 0; round < 3; round++) {
		b = kanal__v1__event_batch__unpack(pa, len, buf);
		assert_non_null(b);
		check_batch(b);
		assert_true(arena_used(a) > 0);
		/* Its free does nothing; the reset frees the request. */
		kanal__v1__event_batch__free_unpacked(b, pa);
		arena_reset(a);
		assert_int_equal(arena_used(a), 0);
	}
	free(buf);
	arena_free(a);
}

static void
test_unpack_over_the_limit_fails_cleanly(void **state)
{
	size_t len, need;
	uint8_t *buf = packed_batch(&len);
	struct arena *probe = arena_new(MiB);
	Kanal__V1__EventBatch *b;

	(void)state;
	/* What a whole unpack takes, measured. */
	b = kanal__v1__event_batch__unpack(arena_allocator(probe), len, buf);
	assert_non_null(b);
	kanal__v1__event_batch__free_unpacked(b, arena_allocator(probe));
	need = arena_used(probe);
	arena_free(probe);

	/* Every smaller limit fails at a different allocation: no crash. */
	for (size_t limit = 0; limit < need; limit += 16) {
		struct arena *a = arena_new(limit);

		b = kanal__v1__event_batch__unpack(arena_allocator(a), len,
		    buf);
		if (b != NULL)
			fail_msg("limit %zu (need %zu): unpack succeeded",
			    limit, need);
		assert_true(arena_used(a) <= limit);
		arena_free(a);
	}
	/* And the exact need is enough. */
	{
		struct arena *a = arena_new(need);

		b = kanal__v1__event_batch__unpack(arena_allocator(a), len,
		    buf);
		assert_non_null(b);
		check_batch(b);
		kanal__v1__event_batch__free_unpacked(b, arena_allocator(a));
		arena_free(a);
	}
	free(buf);
}

static void
test_a_tiny_limit_refuses_a_huge_repeated_field(void **state)
{
	/* 100,000 empty events: a few bytes on the wire, much more unpacked. */
	enum { N = 100000 };
	uint8_t *buf = malloc(2 * N);
	struct arena *a = arena_new(64 * KiB);
	Kanal__V1__EventBatch *b;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < N; i++) {
		buf[2 * i] = 0x12;	/* field 2 (events), length-delimited */
		buf[2 * i + 1] = 0;	/* an empty ServiceEvent */
	}
	b = kanal__v1__event_batch__unpack(arena_allocator(a), 2 * N, buf);
	assert_null(b);
	assert_true(arena_used(a) <= 64 * KiB);
	arena_free(a);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_is_16_byte_aligned_and_disjoint),
		cmocka_unit_test(test_used_counts_rounded_sizes),
		cmocka_unit_test(test_limit_table),
		cmocka_unit_test(test_reset_lifts_the_limit_again),
		cmocka_unit_test(test_allocation_larger_than_the_first_block_works),
		cmocka_unit_test(test_reset_keeps_the_arena_usable_round_after_round),
		cmocka_unit_test(test_reset_and_free_of_an_unused_arena),
		cmocka_unit_test(test_unpack_through_the_arena),
		cmocka_unit_test(test_unpack_over_the_limit_fails_cleanly),
		cmocka_unit_test(test_a_tiny_limit_refuses_a_huge_repeated_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
