/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ratelimit: the token bucket's arithmetic, on a clock the test
 * holds (milliseconds passed to every take). Each case is a script of
 * takes at given times with the verdict and Retry-After each must get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define T0 5000000LL

struct step {
	const char *key;
	int64_t at_ms;		/* after T0 */
	uint64_t n;
	enum ratelimit_verdict want;
	unsigned retry_s;	/* when LIMITED */
	int first;		/* when LIMITED */
};

struct script {
	const char *name;
	uint64_t rate, burst;
	struct step steps[10];
	size_t nsteps;
};

#define OK RATELIMIT_OK
#define LIM RATELIMIT_LIMITED
#define BIG RATELIMIT_TOO_LARGE

static const struct script scripts[] = {
	{ "no limit lets any batch through at any pace", 0, 0, {
	    { "a", 0, 1000000, OK, 0, 0 },
	    { "a", 0, 1000000, OK, 0, 0 } }, 2 },
	{ "a new source starts with a full bucket", 10, 50, {
	    { "a", 0, 50, OK, 0, 0 },
	    { "a", 0, 1, LIM, 1, 1 } }, 2 },
	{ "burst 0 means one second's worth", 100, 0, {
	    { "a", 0, 100, OK, 0, 0 },
	    { "a", 0, 101, BIG, 0, 0 },
	    { "a", 0, 1, LIM, 1, 1 } }, 3 },
	{ "a batch over the burst can never pass, even on a full bucket",
	  10, 20, {
	    { "a", 0, 21, BIG, 0, 0 },
	    { "a", 3600000, 21, BIG, 0, 0 },
	    { "a", 3600000, 20, OK, 0, 0 } }, 3 },
	{ "tokens come back at the rate, to the millisecond", 10, 10, {
	    { "a", 0, 10, OK, 0, 0 },
	    { "a", 99, 1, LIM, 1, 1 },	/* 0.99 of a token */
	    { "a", 100, 1, OK, 0, 0 },	/* 1 token after 100 ms */
	    { "a", 100, 1, LIM, 1, 1 } }, 4 },
	{ "Retry-After is the whole seconds until the batch fits", 10, 100, {
	    { "a", 0, 100, OK, 0, 0 },
	    { "a", 0, 100, LIM, 10, 1 },	/* 10 s for 100 tokens */
	    { "a", 2500, 100, LIM, 8, 0 },	/* 25 there: 7.5 s, so 8 */
	    { "a", 10000, 100, OK, 0, 0 } }, 4 },
	{ "a refused batch takes nothing", 1, 5, {
	    { "a", 0, 4, OK, 0, 0 },
	    { "a", 0, 5, LIM, 4, 1 },
	    { "a", 0, 5, LIM, 4, 0 },
	    { "a", 0, 1, OK, 0, 0 } }, 4 },
	{ "a long idle fills the bucket to the burst, no more", 1000, 2000, {
	    { "a", 0, 2000, OK, 0, 0 },
	    { "a", 86400000, 2000, OK, 0, 0 },
	    { "a", 86400000, 1, LIM, 1, 1 } }, 3 },
	{ "each source has its own bucket", 10, 10, {
	    { "tax", 0, 10, OK, 0, 0 },
	    { "tax", 0, 1, LIM, 1, 1 },
	    { "registry", 0, 10, OK, 0, 0 },
	    { "registry", 0, 1, LIM, 1, 1 } }, 4 },
	{ "a clock that goes back adds nothing and breaks nothing", 10, 10, {
	    { "a", 1000, 10, OK, 0, 0 },
	    { "a", 0, 1, LIM, 1, 1 },
	    { "a", 1100, 1, OK, 0, 0 } }, 3 },
	{ "first is set again once a batch passed", 10, 10, {
	    { "a", 0, 10, OK, 0, 0 },
	    { "a", 0, 1, LIM, 1, 1 },
	    { "a", 500, 5, OK, 0, 0 },
	    { "a", 500, 1, LIM, 1, 1 } }, 4 },
	{ "the highest rate and burst do not overflow", 100000000,
	  1000000000, {
	    { "a", 0, 1000000, OK, 0, 0 },
	    { "a", 31536000000LL, 1000000, OK, 0, 0 } }, 2 },
};

static void
test_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		const struct script *sc = &scripts[i];
		struct ratelimit *rl = ratelimit_new(sc->rate, sc->burst);

		assert_non_null(rl);
		for (size_t j = 0; j < sc->nsteps; j++) {
			const struct step *st = &sc->steps[j];
			unsigned retry = 99;
			int first = 99;
			enum ratelimit_verdict v;

			v = ratelimit_take(rl, st->key, strlen(st->key), st->n,
			    T0 + st->at_ms, &retry, &first);
			if (v != st->want)
				fail_msg("%s: step %zu (%s takes %llu at +%lld ms): "
				    "verdict %d, want %d", sc->name, j + 1,
				    st->key, (unsigned long long)st->n,
				    (long long)st->at_ms, (int)v, (int)st->want);
			if (v == LIM && (retry != st->retry_s ||
			    first != st->first))
				fail_msg("%s: step %zu: retry %u s first %d, want "
				    "%u s first %d", sc->name, j + 1, retry, first,
				    st->retry_s, st->first);
			if (v != LIM && retry != 0)
				fail_msg("%s: step %zu: retry %u s on a batch "
				    "not limited", sc->name, j + 1, retry);
		}
		ratelimit_free(rl);
	}
}

/* Many sources: the table grows and keeps every bucket's state. */
static void
test_many_sources_keep_their_buckets(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 3);
	char key[32];
	unsigned retry;
	int first;

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "source-%d", i);
		assert_int_equal(ratelimit_take(rl, key, strlen(key), 3, T0,
		    &retry, &first), RATELIMIT_OK);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "source-%d", i);
		assert_int_equal(ratelimit_take(rl, key, strlen(key), 1, T0,
		    &retry, &first), RATELIMIT_LIMITED);
	}
	assert_int_equal(ratelimit_burst(rl), 3);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

/*
 * Tokens given back (a batch refused 503 after it was let through) are
 * there for the retry, never beyond the burst; giving back to a source
 * never seen, or with no limit, changes nothing.
 */
static void
test_given_back_tokens_pay_for_the_retry(void **state)
{
	struct ratelimit *rl = ratelimit_new(10, 20);
	struct ratelimit *off = ratelimit_new(0, 0);
	unsigned retry;
	int first;

	(void)state;
	assert_non_null(rl);
	assert_non_null(off);
	ratelimit_give_back(rl, "a", 1, 5);	/* no bucket yet: no-op */
	ratelimit_give_back(off, "a", 1, 5);
	assert_int_equal(ratelimit_take(rl, "a", 1, 15, T0, &retry, &first),
	    RATELIMIT_OK);
	/* 5 left: 15 more only after the 15 come back. */
	assert_int_equal(ratelimit_take(rl, "a", 1, 15, T0, &retry, &first),
	    RATELIMIT_LIMITED);
	ratelimit_give_back(rl, "a", 1, 15);
	assert_int_equal(ratelimit_take(rl, "a", 1, 15, T0, &retry, &first),
	    RATELIMIT_OK);
	/* Giving back more than was taken stops at the burst (20). */
	ratelimit_give_back(rl, "a", 1, 20);
	ratelimit_give_back(rl, "a", 1, 20);
	assert_int_equal(ratelimit_take(rl, "a", 1, 20, T0, &retry, &first),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, "a", 1, 1, T0, &retry, &first),
	    RATELIMIT_LIMITED);
	/* Another source's bucket is untouched by a's. */
	ratelimit_give_back(rl, "b", 1, 20);
	assert_int_equal(ratelimit_take(rl, "b", 1, 20, T0, &retry, &first),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, "b", 1, 1, T0, &retry, &first),
	    RATELIMIT_LIMITED);
	ratelimit_free(rl);
	ratelimit_free(off);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_many_sources_keep_their_buckets),
		cmocka_unit_test(test_given_back_tokens_pay_for_the_retry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
