/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agg: hour buckets, what makes a key, the double buffer (freeze,
 * retry of a failed flush, release), positions, growth to many keys and
 * many interned codes, adds racing freezes from another thread, and late
 * events (for a past hour a committed flush already wrote).
 *
 * Rows are read back only through agg_table_foreach, as the flush does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg.h"
#include "hll.h"

#define HOUR_MS 3600000LL
/* 2026-05-28 20:00 UTC, the start of an hour. */
#define T0 (1780000000000LL / HOUR_MS * HOUR_MS)

/* ------------------------------------------------------ fault injection */

/*
 * calloc can be told to fail, to test that agg_add is all or nothing. This
 * replaces glibc's calloc in the test binary only, so it is left out under
 * AddressSanitizer, which must see every allocation itself.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FAULT_INJECTION 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULT_INJECTION 0
#endif
#endif
#ifndef FAULT_INJECTION
#define FAULT_INJECTION 1

extern void *__libc_calloc(size_t n, size_t size);
static int calloc_failures;	/* how many calls from now on fail */

void *
calloc(size_t n, size_t size)
{
	if (calloc_failures > 0) {
		calloc_failures--;
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}
#endif

/* ------------------------------------------------------------- helpers */

static struct agg_event
event(const char *service, const char *region, int64_t ms)
{
	struct agg_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.occurred_at_ms = ms;
	ev.service = service;
	ev.service_len = strlen(service);
	ev.region = region;
	ev.region_len = strlen(region);
	ev.channel = 1;
	ev.outcome = 1;
	return ev;
}

static void
add(struct agg *a, const struct agg_event *ev, uint64_t position)
{
	assert_int_equal(agg_add(a, ev, 1, position, NULL), 0);
}

/* A frozen table's rows, copied out (the strings live as long as the agg). */
struct rows {
	struct agg_row *v;
	size_t n, cap;
};

static void
collect(void *arg, const struct agg_row *row)
{
	struct rows *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	r->v[r->n++] = *row;
}

static struct rows
rows_of(const struct agg *a, const struct agg_table *t)
{
	struct rows r = { NULL, 0, 0 };

	agg_table_foreach(a, t, collect, &r);
	assert_int_equal(r.n, agg_table_keys(t));
	return r;
}

static uint64_t
events_in(const struct rows *r)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < r->n; i++)
		sum += r->v[i].events;
	return sum;
}

/* The row with this service and region, or NULL. */
static const struct agg_row *
row_find(const struct rows *r, const char *service, const char *region)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].service, service) == 0 &&
		    strcmp(r->v[i].region, region) == 0)
			return &r->v[i];
	return NULL;
}

/* --------------------------------------------------------- hour buckets */

static void
test_hour_bucket_table(void **state)
{
	static const struct {
		const char *name;
		int64_t ms;
		int64_t bucket;
	} cases[] = {
		{ "the epoch is in the first hour", 0, 0 },
		{ "the last ms of the first hour is in it", 3599999, 0 },
		{ "the first ms of the second hour starts it", 3600000, 3600 },
		{ "a 2026 timestamp falls in its UTC hour", 1780000000000LL,
		  1779998400 },
		{ "the start of a 2026 hour is its own bucket", 1779998400000LL,
		  1779998400 },
		{ "the last ms before a 2026 hour is in the hour before",
		  1779998399999LL, 1779994800 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = agg_hour_bucket(cases[i].ms);

		if (got != cases[i].bucket)
			fail_msg("%s: %lld ms gave %lld, want %lld",
			    cases[i].name, (long long)cases[i].ms,
			    (long long)got, (long long)cases[i].bucket);
	}
}

/* ----------------------------------------------------------------- keys */

static void
test_same_key_adds_up(void **state)
{
	struct agg *a = agg_new();
	struct agg_event ev = event("dukcapil.akta-lahir", "32.73", T0 + 5);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	assert_non_null(a);
	ev.duration_ms = 100;
	add(a, &ev, 1);
	ev.duration_ms = 0;		/* not measured: not in the mean */
	add(a, &ev, 2);
	ev.duration_ms = 250;
	ev.occurred_at_ms = T0 + HOUR_MS - 1;	/* same hour */
	add(a, &ev, 3);
	assert_int_equal(agg_keys(a), 1);

	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0].bucket, T0 / 1000);
	assert_string_equal(r.v[0].service, "dukcapil.akta-lahir");
	assert_string_equal(r.v[0].region, "32.73");
	assert_int_equal(r.v[0].channel, 1);
	assert_int_equal(r.v[0].outcome, 1);
	assert_int_equal(r.v[0].assisted, 0);
	assert_int_equal(r.v[0].events, 3);
	assert_int_equal(r.v[0].duration_ms_sum, 350);
	assert_int_equal(r.v[0].duration_events, 2);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

static void
test_duration_sum_does_not_wrap_at_32_bits(void **state)
{
	struct agg *a = agg_new();
	struct agg_event ev = event("x", "32", T0);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	ev.duration_ms = UINT32_MAX;
	for (int i = 0; i < 3; i++)
		add(a, &ev, 1);
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	assert_int_equal(r.v[0].duration_ms_sum, 3ULL * UINT32_MAX);
	assert_int_equal(r.v[0].duration_events, 3);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

struct key_case {
	const char *name;
	struct agg_event other;	/* added after the base event */
	size_t keys;		/* keys held then: 1 (same key) or 2 */
};

#define BASE_SVC "dukcapil.akta-lahir"
#define BASE_REGION "32.73.01"
#define E(svc, region, ms, ch, out, asst) \
	{ (ms), (svc), sizeof(svc) - 1, (region), sizeof(region) - 1, 0, \
	  (ch), (out), (asst), 0, 0 }

/* 1 if row holds the key of ev. */
static int
row_is(const struct agg_row *row, const struct agg_event *ev)
{
	return row->bucket == agg_hour_bucket(ev->occurred_at_ms) &&
	    strlen(row->service) == ev->service_len &&
	    memcmp(row->service, ev->service, ev->service_len) == 0 &&
	    strlen(row->region) == ev->region_len &&
	    memcmp(row->region, ev->region, ev->region_len) == 0 &&
	    row->channel == ev->channel && row->outcome == ev->outcome &&
	    row->assisted == (ev->assisted != 0);
}

static const struct key_case key_cases[] = {
	{ "the same fields are the same key",
	  E(BASE_SVC, BASE_REGION, T0, 1, 1, 0), 1 },
	{ "a later ms in the same hour is the same key",
	  E(BASE_SVC, BASE_REGION, T0 + HOUR_MS - 1, 1, 1, 0), 1 },
	{ "a duration does not make a new key",
	  { T0, BASE_SVC, sizeof(BASE_SVC) - 1, BASE_REGION,
	    sizeof(BASE_REGION) - 1, 900, 1, 1, 0, 0, 0 }, 1 },
	{ "the next hour is another key",
	  E(BASE_SVC, BASE_REGION, T0 + HOUR_MS, 1, 1, 0), 2 },
	{ "another service is another key",
	  E("dukcapil.akta-mati", BASE_REGION, T0, 1, 1, 0), 2 },
	{ "a service that extends the base code is another key",
	  E(BASE_SVC "-2", BASE_REGION, T0, 1, 1, 0), 2 },
	{ "a service that is a prefix of the base code is another key",
	  E("dukcapil.akta", BASE_REGION, T0, 1, 1, 0), 2 },
	{ "another region is another key",
	  E(BASE_SVC, "32.73.02", T0, 1, 1, 0), 2 },
	{ "the enclosing region is another key",
	  E(BASE_SVC, "32.73", T0, 1, 1, 0), 2 },
	{ "a service spelled like the region is another key",
	  E(BASE_REGION, BASE_SVC, T0, 1, 1, 0), 2 },
	{ "another channel is another key",
	  E(BASE_SVC, BASE_REGION, T0, 6, 1, 0), 2 },
	{ "another outcome is another key",
	  E(BASE_SVC, BASE_REGION, T0, 1, 2, 0), 2 },
	{ "the unspecified outcome is another key",
	  E(BASE_SVC, BASE_REGION, T0, 1, 0, 0), 2 },
	{ "assisted is another key",
	  E(BASE_SVC, BASE_REGION, T0, 1, 1, 1), 2 },
};

static void
test_key_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		const struct key_case *c = &key_cases[i];
		struct agg *a = agg_new();
		struct agg_event base = E(BASE_SVC, BASE_REGION, T0, 1, 1, 0);
		struct agg_table *t;
		struct rows r;
		uint64_t pos;

		assert_non_null(a);
		add(a, &base, 1);
		add(a, &c->other, 2);
		if (agg_keys(a) != c->keys)
			fail_msg("%s: %zu keys, want %zu", c->name, agg_keys(a),
			    c->keys);
		t = agg_freeze(a, &pos);
		r = rows_of(a, t);
		if (events_in(&r) != 2)
			fail_msg("%s: %llu events, want 2", c->name,
			    (unsigned long long)events_in(&r));
		/* Each row gives back exactly the fields it was added with. */
		for (size_t j = 0; j < r.n; j++)
			if (!row_is(&r.v[j], &base) &&
			    !row_is(&r.v[j], &c->other))
				fail_msg("%s: row %s %s ch=%u out=%u asst=%u "
				    "was not added", c->name, r.v[j].service,
				    r.v[j].region, r.v[j].channel,
				    r.v[j].outcome, r.v[j].assisted);
		free(r.v);
		agg_release(a, t);
		agg_free(a);
	}
}

static void
test_any_nonzero_assisted_is_the_assisted_key(void **state)
{
	struct agg *a = agg_new();
	struct agg_event one = E(BASE_SVC, BASE_REGION, T0, 1, 1, 1);
	struct agg_event two = E(BASE_SVC, BASE_REGION, T0, 1, 1, 2);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	add(a, &one, 1);
	add(a, &two, 2);
	assert_int_equal(agg_keys(a), 1);
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	assert_int_equal(r.v[0].assisted, 1);
	assert_int_equal(r.v[0].events, 2);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

static void
test_one_call_adds_a_whole_batch(void **state)
{
	struct agg *a = agg_new();
	struct agg_event batch[5];
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	batch[0] = event("a", "32", T0);
	batch[1] = event("b", "32", T0);
	batch[2] = event("a", "32", T0 + 1);
	batch[3] = event("a", "33", T0);
	batch[4] = event("b", "32", T0 + 2);
	assert_int_equal(agg_add(a, batch, 5, 42, NULL), 0);
	assert_int_equal(agg_keys(a), 3);
	assert_int_equal(agg_position(a), 42);
	t = agg_freeze(a, &pos);
	assert_int_equal(pos, 42);
	r = rows_of(a, t);
	assert_int_equal(row_find(&r, "a", "32")->events, 2);
	assert_int_equal(row_find(&r, "b", "32")->events, 2);
	assert_int_equal(row_find(&r, "a", "33")->events, 1);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

/* -------------------------------------------------------- double buffer */

static void
test_empty_agg_freezes_an_empty_table_at_position_zero(void **state)
{
	struct agg *a = agg_new();
	struct agg_table *t;
	struct rows r;
	uint64_t pos = 99;

	(void)state;
	t = agg_freeze(a, &pos);
	assert_non_null(t);
	assert_int_equal(pos, 0);
	assert_int_equal(agg_table_keys(t), 0);
	r = rows_of(a, t);
	assert_int_equal(r.n, 0);
	agg_release(a, t);
	assert_int_equal(agg_keys(a), 0);
	agg_free(a);
}

static void
test_freeze_takes_everything_and_keys_count_it_until_release(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0), y = event("y", "32", T0);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	add(a, &y, 2);
	add(a, &y, 3);
	t = agg_freeze(a, &pos);
	assert_int_equal(pos, 3);
	assert_int_equal(agg_table_keys(t), 2);
	assert_int_equal(agg_keys(a), 2);	/* frozen keys still held */
	r = rows_of(a, t);
	assert_int_equal(row_find(&r, "x", "32")->events, 1);
	assert_int_equal(row_find(&r, "y", "32")->events, 2);
	free(r.v);
	agg_release(a, t);
	assert_int_equal(agg_keys(a), 0);
	agg_free(a);
}

static void
test_adds_after_freeze_go_to_the_new_table(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0), z = event("z", "32", T0);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	t = agg_freeze(a, &pos);
	add(a, &x, 2);		/* same key as a frozen one */
	add(a, &z, 3);
	assert_int_equal(agg_keys(a), 3);	/* 1 frozen + 2 active */
	r = rows_of(a, t);
	assert_int_equal(r.n, 1);
	assert_int_equal(row_find(&r, "x", "32")->events, 1);
	assert_null(row_find(&r, "z", "32"));
	assert_int_equal(pos, 1);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

static void
test_freeze_without_release_retries_the_same_table(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0), z = event("z", "32", T0);
	struct agg_table *t1, *t2;
	struct rows r;
	uint64_t pos1, pos2;

	(void)state;
	add(a, &x, 10);
	t1 = agg_freeze(a, &pos1);
	/* The flush failed; newer events arrive before the retry. */
	add(a, &z, 11);
	add(a, &x, 12);
	t2 = agg_freeze(a, &pos2);
	assert_ptr_equal(t1, t2);
	assert_int_equal(pos1, 10);
	assert_int_equal(pos2, 10);
	r = rows_of(a, t2);
	assert_int_equal(r.n, 1);
	assert_int_equal(row_find(&r, "x", "32")->events, 1);
	free(r.v);
	assert_int_equal(agg_position(a), 12);
	agg_release(a, t2);
	agg_free(a);
}

static void
test_position_is_the_highest_added(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0);
	struct agg_table *t;
	uint64_t pos;

	(void)state;
	add(a, &x, 5);
	add(a, &x, 9);
	add(a, &x, 7);		/* an older position never lowers it */
	assert_int_equal(agg_position(a), 9);
	t = agg_freeze(a, &pos);
	assert_int_equal(pos, 9);
	agg_release(a, t);
	assert_int_equal(agg_position(a), 9);	/* release keeps it */
	t = agg_freeze(a, &pos);
	assert_int_equal(pos, 9);	/* nothing new: still the same point */
	assert_int_equal(agg_table_keys(t), 0);
	agg_release(a, t);
	agg_free(a);
}

static void
test_after_release_the_next_freeze_holds_only_newer_adds(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0), y = event("y", "32", T0);
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	t = agg_freeze(a, &pos);
	add(a, &y, 2);
	agg_release(a, t);
	add(a, &y, 3);
	add(a, &x, 4);
	t = agg_freeze(a, &pos);
	assert_int_equal(pos, 4);
	r = rows_of(a, t);
	assert_int_equal(r.n, 2);
	assert_int_equal(row_find(&r, "x", "32")->events, 1);
	assert_int_equal(row_find(&r, "y", "32")->events, 2);
	free(r.v);
	agg_release(a, t);
	/* Three rounds: both buffers have been frozen and reused. */
	add(a, &x, 5);
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	assert_int_equal(r.n, 1);
	assert_int_equal(events_in(&r), 1);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

static void
test_releasing_a_table_that_is_not_frozen_changes_nothing(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0);
	struct agg_table *t, *stale;
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	stale = agg_freeze(a, &pos);
	agg_release(a, stale);
	add(a, &x, 2);
	t = agg_freeze(a, &pos);
	add(a, &x, 3);
	agg_release(a, stale);	/* a second release of the old table */
	assert_int_equal(agg_keys(a), 2);
	assert_ptr_equal(agg_freeze(a, &pos), t);
	assert_int_equal(agg_table_keys(t), 1);
	agg_release(a, t);
	agg_free(a);
}

static void
test_table_grown_for_one_big_batch_works_after_release(void **state)
{
	enum { N = 10000 };
	struct agg *a = agg_new();
	struct agg_event *batch = calloc(N, sizeof(*batch));
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	assert_non_null(batch);
	/* Room is made for N keys, but they are all one key. */
	for (size_t i = 0; i < N; i++)
		batch[i] = event("x", "32", T0);
	for (int round = 0; round < 4; round++) {
		assert_int_equal(agg_add(a, batch, N, (uint64_t)round + 1, NULL), 0);
		t = agg_freeze(a, &pos);
		r = rows_of(a, t);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.v[0].events, N);
		free(r.v);
		agg_release(a, t);
	}
	free(batch);
	agg_free(a);
}

/* ---------------------------------------------------------------- scale */

static void
test_many_keys_survive_resizes(void **state)
{
	/*
	 * 100,000 keys: 500 hours x 200 regions. Key i gets i % 3 + 1 events,
	 * added in batches of 1,000 and then one at a time.
	 */
	enum { HOURS = 500, REGIONS = 200, KEYS = HOURS * REGIONS };
	enum { BATCH = 1000 };
	static char regions[REGIONS][32];
	struct agg *a = agg_new();
	struct agg_event *batch = calloc(BATCH, sizeof(*batch));
	struct agg_table *t;
	struct rows r;
	uint64_t pos, added = 0, position = 0;
	size_t nb = 0;

	(void)state;
	assert_non_null(batch);
	for (int i = 0; i < REGIONS; i++)
		snprintf(regions[i], sizeof(regions[i]), "32.73.%02d.%04d",
		    i / 100, i % 100);
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < KEYS; i++) {
			if (i % 3 + 1 <= pass)
				continue;
			batch[nb++] = event("dukcapil.akta-lahir",
			    regions[i % REGIONS], T0 + (int64_t)(i / REGIONS) *
			    HOUR_MS);
			added++;
			if (nb == BATCH || pass == 2) {
				assert_int_equal(agg_add(a, batch, nb,
				    ++position, NULL), 0);
				nb = 0;
			}
		}
		if (nb > 0) {
			assert_int_equal(agg_add(a, batch, nb, ++position, NULL), 0);
			nb = 0;
		}
	}
	assert_int_equal(agg_keys(a), KEYS);

	t = agg_freeze(a, &pos);
	assert_int_equal(pos, position);
	r = rows_of(a, t);
	assert_int_equal(r.n, KEYS);
	assert_int_equal(events_in(&r), added);
	for (size_t j = 0; j < r.n; j++) {
		int region = atoi(r.v[j].region + 6) * 100 +
		    atoi(r.v[j].region + 9);
		int hour = (int)((r.v[j].bucket - T0 / 1000) / 3600);
		int i = hour * REGIONS + region;

		if (r.v[j].events != (uint64_t)(i % 3 + 1))
			fail_msg("key %d (%s, hour %d) has %llu events, "
			    "want %d", i, r.v[j].region, hour,
			    (unsigned long long)r.v[j].events, i % 3 + 1);
	}
	free(r.v);
	agg_release(a, t);
	free(batch);
	agg_free(a);
}

/* Service code i: 64 characters, unique, sharing a long prefix. */
static void
long_service(int i, char out[65])
{
	snprintf(out, 65, "svc.%054d.%05d", 0, i);
}

static void
test_many_distinct_codes_intern_exactly(void **state)
{
	/*
	 * 20,000 region codes and 20,000 64-character service codes: the
	 * strings span many 64 KiB blocks and many id pages, and the
	 * interner's own table grows several times on the way.
	 */
	enum { N = 20000 };
	struct agg *a = agg_new();
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	for (int i = 0; i < N; i++) {
		char svc[65], region[32];
		struct agg_event ev;

		long_service(i, svc);
		assert_int_equal(strlen(svc), 64);
		snprintf(region, sizeof(region), "32.%02d.%02d.%04d",
		    i / 10000, (i / 100) % 100, i % 100);
		ev = event(svc, region, T0);
		add(a, &ev, (uint64_t)i + 1);
	}
	assert_int_equal(agg_keys(a), N);
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	assert_int_equal(r.n, N);
	for (size_t j = 0; j < r.n; j++) {
		const char *reg = r.v[j].region;
		int i = atoi(reg + 3) * 10000 + atoi(reg + 6) * 100 +
		    atoi(reg + 9);
		char svc[65], want_region[32];

		long_service(i, svc);
		snprintf(want_region, sizeof(want_region), "32.%02d.%02d.%04d",
		    i / 10000, (i / 100) % 100, i % 100);
		if (strcmp(reg, want_region) != 0 ||
		    strcmp(r.v[j].service, svc) != 0 || r.v[j].events != 1)
			fail_msg("row %zu resolved to service %s region %s "
			    "(%llu events), want %s %s", j, r.v[j].service, reg,
			    (unsigned long long)r.v[j].events, svc,
			    want_region);
	}
	free(r.v);
	agg_release(a, t);

	/* Adding the same codes again interns nothing new: same strings. */
	for (int i = 0; i < N; i += 997) {
		char svc[65];
		struct agg_event ev;

		long_service(i, svc);
		ev = event(svc, "32", T0);
		add(a, &ev, (uint64_t)N + 1);
	}
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	for (size_t j = 0; j < r.n; j++)
		assert_int_equal(strlen(r.v[j].service), 64);
	free(r.v);
	agg_release(a, t);
	agg_free(a);
}

/* ---------------------------------------------------- concurrent freezes */

enum { RACE_BATCHES = 2000, RACE_BATCH = 50 };

struct race {
	struct agg *a;
	atomic_int done;
};

static void *
race_adder(void *arg)
{
	struct race *race = arg;
	struct agg_event batch[RACE_BATCH];
	char regions[RACE_BATCH][32];

	for (int b = 0; b < RACE_BATCHES; b++) {
		/* New region codes keep coming while the flusher reads. */
		for (int i = 0; i < RACE_BATCH; i++) {
			int k = b * RACE_BATCH + i;

			snprintf(regions[i], sizeof(regions[i]),
			    "32.%02d.%02d.%04d", k / 10000 % 100,
			    k / 100 % 100, k % 100);
			batch[i] = event(i % 2 ? "a" : "b", regions[i],
			    T0 + (k % 7) * HOUR_MS);
		}
		if (agg_add(race->a, batch, RACE_BATCH, (uint64_t)b + 1, NULL) != 0)
			break;
	}
	atomic_store(&race->done, 1);
	return NULL;
}

static void
sum_events(void *arg, const struct agg_row *row)
{
	uint64_t *sum = arg;

	/* Reading the strings is what must be safe while codes are added. */
	assert_true(strlen(row->service) == 1);
	assert_true(strncmp(row->region, "32.", 3) == 0);
	*sum += row->events;
}

static void
test_adds_racing_freezes_lose_and_double_nothing(void **state)
{
	struct race race;
	pthread_t th;
	uint64_t flushed = 0, pos, last_pos = 0;
	int finished = 0;

	(void)state;
	race.a = agg_new();
	atomic_init(&race.done, 0);
	assert_int_equal(pthread_create(&th, NULL, race_adder, &race), 0);
	while (!finished) {
		struct agg_table *t;

		/* Read done first: the freeze after it sees every add. */
		finished = atomic_load(&race.done);
		t = agg_freeze(race.a, &pos);
		agg_table_foreach(race.a, t, sum_events, &flushed);
		assert_true(pos >= last_pos);
		last_pos = pos;
		agg_release(race.a, t);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(flushed, (uint64_t)RACE_BATCHES * RACE_BATCH);
	assert_int_equal(last_pos, RACE_BATCHES);
	assert_int_equal(agg_keys(race.a), 0);
	agg_free(race.a);
}

/* -------------------------------------------------------- all or nothing */

/*
 * Regression: the second loop of agg_add, "which can't fail", calls
 * intern() again, and intern() used to grow its hash table before looking
 * a code up. When the first loop's last new code took the interner to its
 * growth point, the second loop grew it, and if that calloc failed intern()
 * returned -1, stored as the id 0xffffffff; agg_add returned 0 and the
 * flush later read pages[4194303] far outside the array.
 *
 * Every add below may meet a failing calloc; each must then either fail
 * whole (-1, ENOMEM, nothing added) or succeed without having used it.
 */
static void
test_add_is_all_or_nothing_when_an_allocation_fails(void **state)
{
#if FAULT_INJECTION
	enum { N = 2000 };
	struct agg *a = agg_new();
	struct agg_table *t;
	struct rows r;
	uint64_t pos;

	(void)state;
	assert_non_null(a);
	for (int k = 0; k < N; k++) {
		char region[32];
		struct agg_event ev;
		size_t keys = agg_keys(a);
		int rc;

		snprintf(region, sizeof(region), "r%d", k);
		ev = event("s0", region, T0);
		calloc_failures = 1;
		rc = agg_add(a, &ev, 1, (uint64_t)k + 1, NULL);
		if (rc == 0 && calloc_failures == 0)
			fail_msg("add %d: agg_add returned 0 although an "
			    "allocation inside it failed (%d codes interned)",
			    k, k + 2);
		calloc_failures = 0;
		if (rc == -1) {
			assert_int_equal(errno, ENOMEM);
			assert_int_equal(agg_keys(a), keys);
			assert_int_equal(agg_position(a), (uint64_t)k);
			assert_int_equal(agg_add(a, &ev, 1, (uint64_t)k + 1, NULL),
			    0);
		}
	}
	assert_int_equal(agg_keys(a), N);
	t = agg_freeze(a, &pos);
	r = rows_of(a, t);
	for (size_t j = 0; j < r.n; j++) {
		assert_string_equal(r.v[j].service, "s0");
		assert_int_equal(r.v[j].region[0], 'r');
		assert_int_equal(r.v[j].events, 1);
	}
	free(r.v);
	agg_release(a, t);
	agg_free(a);
#else
	(void)state;
	print_message("calloc can't be made to fail under AddressSanitizer; "
	    "the plain build runs this test\n");
	skip();
#endif
}

/* ---------------------------------------------------------- late events */

static uint64_t
late_of(struct agg *a)
{
	struct agg_stats st;

	agg_get_stats(a, &st);
	assert_int_equal(st.keys, agg_keys(a));
	return st.late_events;
}

/* Adds ev, then freezes and releases: a committed flush of it. */
static void
add_and_flush(struct agg *a, const struct agg_event *ev, uint64_t position)
{
	uint64_t pos;

	add(a, ev, position);
	agg_release(a, agg_freeze(a, &pos));
}

static void
test_events_for_a_past_hour_already_flushed_are_late(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0 + 5);
	struct agg_event other_key = event("y", "32.73", T0 + HOUR_MS - 1);
	struct agg_event next_hour = event("x", "32", T0 + HOUR_MS);

	(void)state;
	add(a, &x, 1);
	add(a, &x, 2);
	assert_int_equal(late_of(a), 0);	/* not flushed yet */
	add_and_flush(a, &x, 3);
	assert_int_equal(late_of(a), 0);
	add(a, &x, 4);				/* same key, same hour */
	add(a, &other_key, 5);			/* another key, same hour */
	assert_int_equal(late_of(a), 2);
	add(a, &next_hour, 6);			/* never flushed */
	assert_int_equal(late_of(a), 2);
	agg_free(a);
}

static void
test_a_flush_that_is_not_committed_makes_nothing_late(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0);
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	(void)agg_freeze(a, &pos);		/* the flush fails: no release */
	add(a, &x, 2);
	assert_int_equal(late_of(a), 0);
	agg_free(a);
}

static void
test_the_current_hour_is_never_late(void **state)
{
	struct agg *a = agg_new();
	/* Two hours ahead: an hour that has not ended yet, whenever this runs. */
	struct agg_event ahead = event("x", "32", (int64_t)time(NULL) * 1000 +
	    2 * HOUR_MS);

	(void)state;
	add_and_flush(a, &ahead, 1);
	add_and_flush(a, &ahead, 2);
	add(a, &ahead, 3);
	assert_int_equal(late_of(a), 0);
	agg_free(a);
}

static void
test_late_hours_are_remembered_across_both_buffers(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0);
	struct agg_event old = event("x", "32", T0 - 24 * HOUR_MS);

	(void)state;
	add_and_flush(a, &old, 1);
	/* Several rounds: each table of the double buffer is reused. */
	for (uint64_t i = 0; i < 4; i++)
		add_and_flush(a, &x, 2 + i);
	assert_int_equal(late_of(a), 3);
	add(a, &old, 10);
	assert_int_equal(late_of(a), 4);
	agg_free(a);
}

/* --------------------------------------------------------------- freeing */

static void
test_free_with_a_table_still_frozen_leaks_nothing(void **state)
{
	struct agg *a = agg_new();
	struct agg_event x = event("x", "32", T0);
	uint64_t pos;

	(void)state;
	add(a, &x, 1);
	(void)agg_freeze(a, &pos);
	add(a, &x, 2);
	agg_free(a);		/* ASan's leak check is the assertion */
	agg_free(NULL);
}

/* ---------------------------------------------------------------- reach */

struct sketches {
	size_t n;
	struct agg_sketch s[16];
	char service[16][80];
	char region[16][32];
};

static void
collect_sketch(void *arg, const struct agg_sketch *s)
{
	struct sketches *c = arg;

	assert_true(c->n < 16);
	c->s[c->n] = *s;
	snprintf(c->service[c->n], sizeof(c->service[0]), "%s", s->service);
	snprintf(c->region[c->n], sizeof(c->region[0]), "%s", s->region);
	c->n++;
}

static const struct agg_sketch *
find_sketch(const struct sketches *c, int32_t day, const char *region,
    uint8_t channel, int64_t key)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->s[i].day == day && strcmp(c->region[i], region) == 0 &&
		    c->s[i].channel == channel && c->s[i].reach_key_id == key)
			return &c->s[i];
	return NULL;
}

/* A batch with a reach key: the events' citizen hashes count. */
static struct agg_batch
reach_batch(int64_t key)
{
	struct agg_batch b;

	memset(&b, 0, sizeof(b));
	b.source = "src";
	b.source_len = 3;
	b.has_reach = 1;
	b.reach_key_id = key;
	return b;
}

/*
 * Sketches are kept per WIB day, service, kecamatan (a desa code cut),
 * channel and key; a hash added twice is one resident; events without a
 * hash, or of a batch without a key, add none; release empties them.
 */
static void
test_citizen_hashes_go_to_their_day_kecamatan_channel_and_key(void **state)
{
	/* 2026-11-30T16:59:59Z: the last second of 30 November in WIB. */
	const int64_t t = 1796057999000LL;
	struct agg *a = agg_new();
	struct agg_event ev[6];
	struct agg_batch b1 = reach_batch(11), b2 = reach_batch(-22);
	struct agg_table *tb;
	struct sketches c;
	struct agg_stats st;
	struct rows r;
	const struct agg_sketch *s;
	uint64_t pos;

	(void)state;
	assert_non_null(a);
	for (int i = 0; i < 6; i++) {
		struct agg_event e = E(BASE_SVC, "32.73.01.1001", t, 1, 1, 0);

		ev[i] = e;
		ev[i].has_ref = 1;
		ev[i].ref_hash = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
	}
	ev[1].ref_hash = ev[0].ref_hash;	/* the same resident again */
	ev[2].region = "32.73.01";		/* same kecamatan, no desa */
	ev[2].region_len = 8;
	ev[3].occurred_at_ms = t + 1000;	/* 1 December in WIB */
	ev[4].channel = 6;			/* counter */
	ev[5].has_ref = 0;			/* no citizen_ref */
	assert_int_equal(agg_add(a, ev, 6, 10, &b1), 0);
	/* The first event under another key: a sketch of its own. */
	assert_int_equal(agg_add(a, ev, 1, 20, &b2), 0);
	/* No key on the batch: no sketch, whatever the events say. */
	assert_int_equal(agg_add(a, ev, 6, 30, NULL), 0);
	agg_get_stats(a, &st);
	assert_int_equal(st.sketches, 4);
	assert_int_equal(st.reach_adds, 5 + 1);
	assert_int_equal(st.reach_dropped, 0);
	assert_true(st.sketch_bytes > 0);

	tb = agg_freeze(a, &pos);
	assert_int_equal(agg_table_sketches(tb), 4);
	memset(&c, 0, sizeof(c));
	agg_table_foreach_sketch(a, tb, collect_sketch, &c);
	assert_int_equal(c.n, 4);
	s = find_sketch(&c, 20787, "32.73.01", 1, 11);
	assert_non_null(s);
	assert_string_equal(c.service[s - c.s], BASE_SVC);
	/* Events 0, 1 (the same hash) and 2: two residents. */
	assert_true(hll_estimate(s->hll) > 1.9 && hll_estimate(s->hll) < 2.1);
	s = find_sketch(&c, 20788, "32.73.01", 1, 11);
	assert_non_null(s);
	assert_true(hll_estimate(s->hll) > 0.9 && hll_estimate(s->hll) < 1.1);
	assert_non_null(find_sketch(&c, 20787, "32.73.01", 6, 11));
	assert_non_null(find_sketch(&c, 20787, "32.73.01", 1, -22));
	/* The counts keep the full region code. */
	memset(&r, 0, sizeof(r));
	agg_table_foreach(a, tb, collect, &r);
	for (size_t i = 0; i < r.n; i++)
		assert_true(strcmp(r.v[i].region, "32.73.01.1001") == 0 ||
		    strcmp(r.v[i].region, "32.73.01") == 0);
	free(r.v);
	agg_release(a, tb);
	agg_get_stats(a, &st);
	assert_int_equal(st.sketches, 0);
	agg_free(a);
}

/*
 * Each reach key has sketches of its own, however many keys one process
 * meets in its life (a rotation, a WAL replayed after it): the same
 * resident under six keys is six sketches, none merged, none dropped.
 */
static void
test_every_key_has_sketches_of_its_own(void **state)
{
	struct agg *a = agg_new();
	struct agg_event e = E(BASE_SVC, BASE_REGION, T0, 1, 1, 0);
	struct agg_stats st;

	(void)state;
	assert_non_null(a);
	e.has_ref = 1;
	e.ref_hash = 99;
	for (int round = 0; round < 2; round++) {
		struct agg_table *tb;
		uint64_t pos;

		for (int k = 0; k < 6; k++) {
			struct agg_batch b = reach_batch(100 + 10 * round + k);

			assert_int_equal(agg_add(a, &e, 1, (uint64_t)k + 1, &b),
			    0);
		}
		agg_get_stats(a, &st);
		assert_int_equal(st.sketches, 6);
		assert_int_equal(st.reach_dropped, 0);
		tb = agg_freeze(a, &pos);
		agg_release(a, tb);
	}
	agg_get_stats(a, &st);
	assert_int_equal(st.reach_adds, 12);
	assert_int_equal(st.sketches, 0);
	agg_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hour_bucket_table),
		cmocka_unit_test(test_same_key_adds_up),
		cmocka_unit_test(test_duration_sum_does_not_wrap_at_32_bits),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_any_nonzero_assisted_is_the_assisted_key),
		cmocka_unit_test(test_one_call_adds_a_whole_batch),
		cmocka_unit_test(test_empty_agg_freezes_an_empty_table_at_position_zero),
		cmocka_unit_test(test_freeze_takes_everything_and_keys_count_it_until_release),
		cmocka_unit_test(test_adds_after_freeze_go_to_the_new_table),
		cmocka_unit_test(test_freeze_without_release_retries_the_same_table),
		cmocka_unit_test(test_position_is_the_highest_added),
		cmocka_unit_test(test_after_release_the_next_freeze_holds_only_newer_adds),
		cmocka_unit_test(test_releasing_a_table_that_is_not_frozen_changes_nothing),
		cmocka_unit_test(test_table_grown_for_one_big_batch_works_after_release),
		cmocka_unit_test(test_many_keys_survive_resizes),
		cmocka_unit_test(test_many_distinct_codes_intern_exactly),
		cmocka_unit_test(test_adds_racing_freezes_lose_and_double_nothing),
		cmocka_unit_test(test_events_for_a_past_hour_already_flushed_are_late),
		cmocka_unit_test(test_a_flush_that_is_not_committed_makes_nothing_late),
		cmocka_unit_test(test_the_current_hour_is_never_late),
		cmocka_unit_test(test_late_hours_are_remembered_across_both_buffers),
		cmocka_unit_test(test_free_with_a_table_still_frozen_leaks_nothing),
		cmocka_unit_test(test_add_is_all_or_nothing_when_an_allocation_fails),
		cmocka_unit_test(
		    test_citizen_hashes_go_to_their_day_kecamatan_channel_and_key),
		cmocka_unit_test(test_every_key_has_sketches_of_its_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
