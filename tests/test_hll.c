/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hll: the sketch without a database. The register rule and the
 * storage format are checked through the bytes hll_encode writes, read
 * back here by a bit-at-a-time parser of the format written from
 * STORAGE.markdown (not by hll_decode); test_pg_hll checks the same bytes
 * against postgresql-hll itself.
 *
 *  - the empty sketch, and a sketch given only zero-valued hashes;
 *  - hash -> (register, value) for a table of hashes;
 *  - the SPARSE/FULL cutoff, on both sides;
 *  - adding a hash again, merging (commutative, idempotent, equal to
 *    adding the union), merging across the sparse/dense switch;
 *  - encode -> decode -> encode for every form, and inputs decode refuses;
 *  - the registers across the sparse -> dense switch, add by add;
 *  - the estimate for 100, 10^4 and 10^6 distinct hashes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hll.h"
#include "rng.h"

#define NREGS		(1u << HLL_LOG2M)
#define REGMAX		((1u << HLL_REGWIDTH) - 1)
#define WORDBITS	(HLL_LOG2M + HLL_REGWIDTH)
/* The fewest non-zero registers that postgresql-hll writes as FULL. */
#define FULL_FROM	((NREGS * HLL_REGWIDTH + WORDBITS - 1) / WORDBITS)
#define MIN(a, b)	((a) < (b) ? (a) : (b))
/*
 * The value of a hash with only its top bit set. Past regwidth 5 (at
 * log2m 11) it is below 2^regwidth - 1: the cap is never reached.
 */
#define TOPVALUE	(64 - HLL_LOG2M)

/* ------------------------------------------------------------- helpers */

/* A hash that puts value v (1..) in register i. */
static uint64_t
hash_for(uint32_t i, unsigned v)
{
	return (uint64_t)1 << (HLL_LOG2M + v - 1) | i;
}

/* Bit off in buf, most significant first. */
static unsigned
bit(const uint8_t *buf, size_t off)
{
	return buf[off / 8] >> (7 - off % 8) & 1;
}

static uint32_t
bits(const uint8_t *buf, size_t off, unsigned n)
{
	uint32_t v = 0;

	for (unsigned k = 0; k < n; k++)
		v = v << 1 | bit(buf, off + k);
	return v;
}

/*
 * Encodes h and parses the bytes: the type nibble (1, 3 or 4), and the
 * registers into regs. Fails the test on anything STORAGE.markdown does
 * not allow for our parameters, or on a non-canonical SPARSE (indices
 * not ascending, zero values, non-zero padding).
 */
static int
regs_of(const struct hll *h, uint8_t regs[NREGS])
{
	uint8_t *buf = malloc(hll_encoded_max());
	size_t len, nbits;
	int type;

	assert_non_null(buf);
	len = hll_encode(h, buf);
	assert_true(len >= 3 && len <= hll_encoded_max());
	assert_int_equal(buf[0] >> 4, 1);
	assert_int_equal(buf[1], (HLL_REGWIDTH - 1) << 5 | HLL_LOG2M);
	assert_int_equal(buf[2], 0x40);
	type = buf[0] & 0xf;
	memset(regs, 0, NREGS);
	nbits = (len - 3) * 8;
	switch (type) {
	case 1:
		assert_int_equal(len, 3);
		break;
	case 3: {
		size_t n = nbits / WORDBITS;
		int64_t last = -1;
		assert_true(nbits - n * WORDBITS < 8);
		for (size_t k = 0; k < n; k++) {
			uint32_t w = bits(buf + 3, k * WORDBITS, WORDBITS);
			uint32_t i = w >> HLL_REGWIDTH;
			assert_true((int64_t)i > last);
			assert_true((w & REGMAX) != 0);
			regs[i] = (uint8_t)(w & REGMAX);
			last = i;
		}
		assert_int_equal(bits(buf + 3, n * WORDBITS,
		    (unsigned)(nbits - n * WORDBITS)), 0);
		/* postgresql-hll's rule: SPARSE only while it is smaller. */
		assert_true(n * WORDBITS < (size_t)NREGS * HLL_REGWIDTH);
		break;
	}
	case 4:
		assert_int_equal(len, 3 + (NREGS * HLL_REGWIDTH + 7) / 8);
		for (uint32_t i = 0; i < NREGS; i++)
			regs[i] = (uint8_t)bits(buf + 3,
			    (size_t)i * HLL_REGWIDTH, HLL_REGWIDTH);
		assert_int_equal(bits(buf + 3, (size_t)NREGS * HLL_REGWIDTH,
		    (unsigned)(nbits - (size_t)NREGS * HLL_REGWIDTH)), 0);
		break;
	default:
		fail_msg("type %d", type);
	}
	free(buf);
	return type;
}

/* The register rule as postgresql-hll's compressed_add states it. */
static void
ref_add(uint8_t regs[NREGS], uint64_t hash)
{
	uint64_t w = hash >> HLL_LOG2M;
	unsigned v = 0;

	if (w != 0) {
		v = 1;
		while ((w & 1) == 0) {
			w >>= 1;
			v++;
		}
	}
	if (v > REGMAX)
		v = REGMAX;
	if (regs[hash & (NREGS - 1)] < v)
		regs[hash & (NREGS - 1)] = (uint8_t)v;
}

static void
add_n(struct hll *h, uint64_t seed, size_t n)
{
	for (size_t k = 0; k < n; k++)
		assert_int_equal(hll_add(h, rng_next(&seed)), 0);
}

/* Equal doubles, NaN included (a saturated sketch's estimate is NaN). */
static int
same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static int
same_bytes(const struct hll *a, const struct hll *b)
{
	uint8_t *x = malloc(hll_encoded_max()), *y = malloc(hll_encoded_max());
	size_t lx, ly;
	int same;

	assert_non_null(x);
	assert_non_null(y);
	lx = hll_encode(a, x);
	ly = hll_encode(b, y);
	same = lx == ly && memcmp(x, y, lx) == 0;
	free(x);
	free(y);
	return same;
}

/* --------------------------------------------------------------- tests */

static void
test_struct_fits_in_16_bytes(void **state)
{
	(void)state;
	assert_true(sizeof(struct hll) <= 16);
}

static void
test_empty_sketch_encodes_to_the_empty_form(void **state)
{
	static const uint8_t want[3] = { 0x11, 0x8b, 0x40 };
	struct hll zeroed = { 0 }, h;
	uint8_t buf[8];

	(void)state;
	memset(&h, 0xa5, sizeof(h));
	hll_init(&h);
	for (int k = 0; k < 2; k++) {
		struct hll *p = k == 0 ? &zeroed : &h;
		assert_true(hll_is_empty(p));
		assert_int_equal(hll_mem_bytes(p), 0);
		assert_int_equal(hll_encode(p, buf), 3);
		if (HLL_LOG2M == 11 && HLL_REGWIDTH == 5)
			assert_memory_equal(buf, want, 3);
		assert_true(hll_estimate(p) == 0.0);
	}
	hll_free(&h);
	hll_free(NULL);
	assert_true(hll_is_empty(&h));
}

static void
test_zero_valued_hashes_make_a_sparse_set_of_no_registers(void **state)
{
	struct hll h = { 0 };
	uint8_t buf[8];

	(void)state;
	/* hash >> log2m == 0: register value 0, as in compressed_add. */
	assert_int_equal(hll_add(&h, 0), 0);
	assert_int_equal(hll_add(&h, NREGS - 1), 0);
	assert_false(hll_is_empty(&h));
	assert_int_equal(hll_mem_bytes(&h), 0);
	assert_int_equal(hll_encode(&h, buf), 3);
	assert_int_equal(buf[0], 0x13);
	assert_true(hll_estimate(&h) == 0.0);
	hll_free(&h);
}

static void
test_hash_to_register_and_value(void **state)
{
	static const struct {
		const char *name;
		uint64_t hash;
		uint32_t reg;
		unsigned value;
	} cases[] = {
		{ "lowest value bit set", (uint64_t)1 << HLL_LOG2M | 7, 7, 1 },
		{ "low value bits 10", (uint64_t)2 << HLL_LOG2M | 7, 7, 2 },
		{ "low value bits 11", (uint64_t)3 << HLL_LOG2M | 7, 7, 1 },
		{ "all ones", UINT64_MAX, NREGS - 1, 1 },
		{ "three trailing zeros", (uint64_t)0x18 << HLL_LOG2M | 1, 1,
		  4 },
		{ "value just below the cap",
		  (uint64_t)1 << MIN(HLL_LOG2M + REGMAX - 2, 63), 0,
		  MIN(REGMAX - 1, TOPVALUE) },
		{ "value at the cap",
		  (uint64_t)1 << MIN(HLL_LOG2M + REGMAX - 1, 63), 0,
		  MIN(REGMAX, TOPVALUE) },
		{ "top bit only: capped", (uint64_t)1 << 63 | 5, 5,
		  MIN(REGMAX, TOPVALUE) },
	};
	uint8_t regs[NREGS];

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct hll h = { 0 };
		assert_int_equal(hll_add(&h, cases[c].hash), 0);
		assert_int_equal(regs_of(&h, regs), 3);
		for (uint32_t i = 0; i < NREGS; i++) {
			unsigned want = i == cases[c].reg ? cases[c].value : 0;
			if (regs[i] != want)
				fail_msg("%s: register %u is %u, want %u",
				    cases[c].name, i, regs[i], want);
		}
		hll_free(&h);
	}
}

static void
test_sparse_until_it_would_not_be_smaller_than_full(void **state)
{
	static const struct {
		const char *name;
		uint32_t filled;
		int type;
	} cases[] = {
		{ "one register", 1, 3 },
		{ "one below the cutoff", FULL_FROM - 1, 3 },
		{ "at the cutoff", FULL_FROM, 4 },
		{ "one above the cutoff", FULL_FROM + 1, 4 },
		{ "every register", NREGS, 4 },
	};
	uint8_t regs[NREGS];

	(void)state;
	if (HLL_LOG2M == 11 && HLL_REGWIDTH == 5)
		assert_int_equal(FULL_FROM, 640);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct hll h = { 0 };
		/* Spread over the registers, so the order is not trivial. */
		for (uint32_t k = 0; k < cases[c].filled; k++)
			assert_int_equal(hll_add(&h, hash_for(
			    (k * 37u) % NREGS, 1 + k % 3)), 0);
		if (regs_of(&h, regs) != cases[c].type)
			fail_msg("%s (%u registers): type %d, want %d",
			    cases[c].name, cases[c].filled, regs_of(&h, regs),
			    cases[c].type);
		hll_free(&h);
	}
}

static void
test_adding_the_same_hash_twice_changes_nothing(void **state)
{
	struct hll a = { 0 }, b = { 0 };
	uint64_t s = 1;

	(void)state;
	/* In the sparse form, and again in the dense form. */
	for (size_t n = 0; n < 3000; n++) {
		uint64_t x = rng_next(&s);
		assert_int_equal(hll_add(&a, x), 0);
		assert_int_equal(hll_add(&b, x), 0);
		assert_int_equal(hll_add(&b, x), 0);
		if (n == 10 || n == 2999) {
			assert_true(same_bytes(&a, &b));
			assert_int_equal(hll_mem_bytes(&a), hll_mem_bytes(&b));
		}
	}
	hll_free(&a);
	hll_free(&b);
}

static void
test_merge_is_commutative_idempotent_and_the_union(void **state)
{
	static const struct {
		const char *name;
		size_t na, nb;
		uint64_t seed_b;	/* 1: b's hashes start as a's */
	} cases[] = {
		{ "empty into empty", 0, 0, 2 },
		{ "sparse into empty", 0, 20, 2 },
		{ "empty into sparse", 20, 0, 2 },
		{ "sparse into sparse, disjoint", 30, 40, 2 },
		{ "sparse into sparse, overlapping", 30, 60, 1 },
		{ "two sparse whose union is dense", 200, 200, 2 },
		{ "sparse into dense", 3000, 50, 2 },
		{ "dense into sparse", 50, 3000, 2 },
		{ "dense into dense", 3000, 5000, 1 },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct hll a = { 0 }, b = { 0 }, ab = { 0 }, ba = { 0 },
		    all = { 0 };
		add_n(&a, 1, cases[c].na);
		add_n(&b, cases[c].seed_b, cases[c].nb);
		add_n(&all, 1, cases[c].na);
		add_n(&all, cases[c].seed_b, cases[c].nb);

		assert_int_equal(hll_merge(&ab, &a), 0);
		assert_int_equal(hll_merge(&ab, &b), 0);
		assert_int_equal(hll_merge(&ba, &b), 0);
		assert_int_equal(hll_merge(&ba, &a), 0);
		if (!same_bytes(&ab, &ba))
			fail_msg("%s: a+b != b+a", cases[c].name);
		if (!same_bytes(&ab, &all))
			fail_msg("%s: a+b != adding both", cases[c].name);
		assert_int_equal(hll_is_empty(&ab), cases[c].na + cases[c].nb
		    == 0);

		/* Idempotent: again, and with itself. */
		assert_int_equal(hll_merge(&ab, &b), 0);
		assert_int_equal(hll_merge(&ab, &ab), 0);
		if (!same_bytes(&ab, &all))
			fail_msg("%s: merging again changed it", cases[c].name);
		/* src is left alone. */
		assert_int_equal(hll_merge(&a, &b), 0);
		assert_int_equal(hll_merge(&b, &a), 0);
		if (!same_bytes(&a, &all) || !same_bytes(&b, &all))
			fail_msg("%s: in-place merge differs", cases[c].name);
		hll_free(&a);
		hll_free(&b);
		hll_free(&ab);
		hll_free(&ba);
		hll_free(&all);
	}
}

static void
test_merge_keeps_the_larger_value_of_a_shared_register(void **state)
{
	struct hll a = { 0 }, b = { 0 };
	uint8_t regs[NREGS];

	(void)state;
	assert_int_equal(hll_add(&a, hash_for(5, 3)), 0);
	assert_int_equal(hll_add(&a, hash_for(9, 1)), 0);
	assert_int_equal(hll_add(&b, hash_for(5, 1)), 0);
	assert_int_equal(hll_add(&b, hash_for(9, 4)), 0);
	assert_int_equal(hll_merge(&a, &b), 0);
	regs_of(&a, regs);
	assert_int_equal(regs[5], 3);
	assert_int_equal(regs[9], 4);
	/* A zero-valued sketch merged into an empty one is not empty. */
	hll_free(&b);
	{
		struct hll z = { 0 };
		assert_int_equal(hll_add(&z, 0), 0);
		assert_int_equal(hll_merge(&b, &z), 0);
		assert_false(hll_is_empty(&b));
		assert_int_equal(regs_of(&b, regs), 3);
	}
	hll_free(&a);
	hll_free(&b);
}

static void
test_encode_decode_round_trip(void **state)
{
	static const struct {
		const char *name;
		size_t n;
		int zero_only;
		int type;
	} cases[] = {
		{ "empty", 0, 0, 1 },
		{ "no non-zero register", 3, 1, 3 },
		{ "one hash", 1, 0, 3 },
		{ "sparse in memory and stored", 100, 0, 3 },
		{ "dense in memory, stored sparse", 500, 0, 3 },
		{ "full", 5000, 0, 4 },
		{ "full, many", 200000, 0, 4 },
	};
	uint8_t *x = malloc(hll_encoded_max()), *y = malloc(hll_encoded_max());
	uint8_t regs[NREGS];

	(void)state;
	assert_non_null(x);
	assert_non_null(y);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct hll h = { 0 }, d = { 0 };
		size_t lx, ly;

		if (cases[c].zero_only)
			for (size_t k = 0; k < cases[c].n; k++)
				assert_int_equal(hll_add(&h, k), 0);
		else
			add_n(&h, 7, cases[c].n);
		if (HLL_LOG2M == 11 && HLL_REGWIDTH == 5 &&
		    regs_of(&h, regs) != cases[c].type)
			fail_msg("%s: type %d", cases[c].name,
			    regs_of(&h, regs));
		lx = hll_encode(&h, x);
		/* Decoding over a sketch that holds something frees it. */
		add_n(&d, 99, 50);
		assert_int_equal(hll_decode(&d, x, lx), 0);
		ly = hll_encode(&d, y);
		if (lx != ly || memcmp(x, y, lx) != 0)
			fail_msg("%s: bytes differ after decode",
			    cases[c].name);
		assert_int_equal(hll_is_empty(&d), hll_is_empty(&h));
		assert_true(same_double(hll_estimate(&d), hll_estimate(&h)));
		/* The decoded sketch goes on like the original. */
		add_n(&h, 1234, 300);
		add_n(&d, 1234, 300);
		assert_true(same_bytes(&h, &d));
		hll_free(&h);
		hll_free(&d);
	}
	free(x);
	free(y);
}

static void
test_decode_refuses_what_is_not_ours(void **state)
{
	static const struct {
		const char *name;
		uint8_t b[8];
		size_t len;
	} cases[] = {
		{ "nothing", { 0 }, 0 },
		{ "two bytes", { 0x11, 0x8b }, 2 },
		{ "schema version 2", { 0x21, 0x8b, 0x40 }, 3 },
		{ "undefined", { 0x10, 0x8b, 0x40 }, 3 },
		{ "explicit", { 0x12, 0x8b, 0x40 }, 3 },
		{ "type 5", { 0x15, 0x8b, 0x40 }, 3 },
		{ "default expthresh (-1)", { 0x11, 0x8b, 0x7f }, 3 },
		{ "sparse off", { 0x11, 0x8b, 0x00 }, 3 },
		{ "other log2m", { 0x11, 0x8c, 0x40 }, 3 },
		{ "other regwidth", { 0x11, 0xab, 0x40 }, 3 },
		{ "empty with data", { 0x11, 0x8b, 0x40, 0 }, 4 },
		{ "full, short", { 0x14, 0x8b, 0x40, 0, 0 }, 5 },
		{ "sparse, 8 bits of padding", { 0x13, 0x8b, 0x40, 0, 0x21, 0 },
		  6 },
	};
	struct hll h = { 0 };
	uint8_t before[8], after[8];
	size_t lb;

	(void)state;
	if (HLL_LOG2M != 11 || HLL_REGWIDTH != 5)
		skip();
	assert_int_equal(hll_add(&h, hash_for(3, 2)), 0);
	lb = hll_encode(&h, before);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		errno = 0;
		if (hll_decode(&h, cases[c].b, cases[c].len) != -1 ||
		    errno != EINVAL)
			fail_msg("%s: accepted", cases[c].name);
		if (hll_encode(&h, after) != lb || memcmp(before, after, lb))
			fail_msg("%s: the sketch changed", cases[c].name);
	}
	/* And what postgresql-hll writes for register 1 value 1 and 2047/31. */
	{
		static const uint8_t two[] = { 0x13, 0x8b, 0x40, 0x00, 0x21,
		    0xff, 0xff };
		uint8_t regs[NREGS];
		assert_int_equal(hll_decode(&h, two, sizeof(two)), 0);
		regs_of(&h, regs);
		assert_int_equal(regs[1], 1);
		assert_int_equal(regs[2047], 31);
		assert_int_equal(regs[3], 0);
	}
	hll_free(&h);
}

static void
test_registers_survive_the_switch_to_dense(void **state)
{
	uint8_t ref[NREGS], regs[NREGS];
	struct hll h = { 0 };
	uint64_t s = 42;
	size_t mem, maxsparse = 0;
	int dense = 0;

	(void)state;
	memset(ref, 0, sizeof(ref));
	/* Add by add, past the in-memory switch and the SPARSE/FULL cutoff. */
	for (size_t n = 0; n < 1500; n++) {
		uint64_t x = rng_next(&s);
		ref_add(ref, x);
		assert_int_equal(hll_add(&h, x), 0);
		regs_of(&h, regs);
		if (memcmp(ref, regs, NREGS) != 0)
			fail_msg("registers differ after %zu adds", n + 1);
		mem = hll_mem_bytes(&h);
		if (mem == NREGS && !dense) {
			dense = 1;
			/* Sparse used less memory than dense, always. */
			assert_true(maxsparse < NREGS);
		} else if (!dense)
			maxsparse = mem > maxsparse ? mem : maxsparse;
		else
			assert_int_equal(mem, NREGS);
	}
	assert_true(dense);
	hll_free(&h);
	assert_int_equal(hll_mem_bytes(&h), 0);
}

static void
test_estimate_is_within_five_standard_errors(void **state)
{
	/*
	 * HyperLogLog's relative standard error is 1.04 / sqrt(m) (Flajolet
	 * et al. 2007), 2.3% at m = 2048. Within 5 standard errors (11.5%),
	 * a correct sketch fails about once in 1.7 million runs; the hashes
	 * are fixed, so it either passes or fails every time. Each
	 * count is estimated through the sparse and the dense paths (the
	 * two must agree exactly) and the small counts through linear
	 * counting, which is far tighter than the bound. Only counts the
	 * registers can hold are checked, up to a tenth of m * 2^(2^regwidth
	 * - 1): past that, narrow registers (regwidth 3: values up to 7)
	 * saturate, and postgresql-hll's estimate goes to NaN as ours does.
	 */
	static const size_t sizes[] = { 100, 10000, 1000000 };
	double se = 1.04 / sqrt((double)NREGS);

	(void)state;
	for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
		struct hll h = { 0 }, d = { 0 };
		double est, err;

		if ((double)sizes[c] > NREGS * ldexp(1.0, REGMAX) / 10)
			continue;
		add_n(&h, 2024 + c, sizes[c]);
		est = hll_estimate(&h);
		err = fabs(est - (double)sizes[c]) / (double)sizes[c];
		if (err > 5 * se)
			fail_msg("%zu distinct: estimate %.1f, off by %.2f%% "
			    "(bound %.2f%%)", sizes[c], est, 100 * err,
			    500 * se);
		/* The same registers, decoded, estimate alike. */
		{
			uint8_t *buf = malloc(hll_encoded_max());
			assert_non_null(buf);
			assert_int_equal(hll_decode(&d, buf,
			    hll_encode(&h, buf)), 0);
			free(buf);
		}
		assert_true(same_double(hll_estimate(&d), est));
		hll_free(&h);
		hll_free(&d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_struct_fits_in_16_bytes),
		cmocka_unit_test(test_empty_sketch_encodes_to_the_empty_form),
		cmocka_unit_test(
		    test_zero_valued_hashes_make_a_sparse_set_of_no_registers),
		cmocka_unit_test(test_hash_to_register_and_value),
		cmocka_unit_test(
		    test_sparse_until_it_would_not_be_smaller_than_full),
		cmocka_unit_test(
		    test_adding_the_same_hash_twice_changes_nothing),
		cmocka_unit_test(
		    test_merge_is_commutative_idempotent_and_the_union),
		cmocka_unit_test(
		    test_merge_keeps_the_larger_value_of_a_shared_register),
		cmocka_unit_test(test_encode_decode_round_trip),
		cmocka_unit_test(test_decode_refuses_what_is_not_ours),
		cmocka_unit_test(test_registers_survive_the_switch_to_dense),
		cmocka_unit_test(test_estimate_is_within_five_standard_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
