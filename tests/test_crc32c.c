/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_crc32c: the check value, the iSCSI test vectors (RFC 3720, B.4),
 * every length and alignment against a bitwise reference written here,
 * and that a CRC continued piece by piece equals the one-shot CRC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "crc32c.h"

/* ------------------------------------------------------------- helpers */

/* One bit at a time, straight from the definition (reflected 0x1EDC6F41). */
static uint32_t
crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* Bytes that differ in every position and are not a simple ramp. */
static void
fill(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(x >> 7);
	}
}

/* --------------------------------------------------------------- tests */

static void
test_check_value_is_e3069283(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_bitwise(0, (const uint8_t *)"123456789", 9),
	    0xE3069283u);
}

static void
test_iscsi_vectors(void **state)
{
	static const struct {
		const char *name;
		int kind;	/* 0 zeros, 1 ones, 2 ascending, 3 descending */
		uint32_t want;
	} cases[] = {
		{ "32 zero bytes", 0, 0x8A9136AAu },
		{ "32 bytes of 0xff", 1, 0x62A8AB43u },
		{ "32 ascending bytes 0..31", 2, 0x46DD794Eu },
		{ "32 descending bytes 31..0", 3, 0x113FDB5Cu },
	};
	uint8_t buf[32];

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int i = 0; i < 32; i++) {
			switch (cases[c].kind) {
			case 0: buf[i] = 0; break;
			case 1: buf[i] = 0xff; break;
			case 2: buf[i] = (uint8_t)i; break;
			default: buf[i] = (uint8_t)(31 - i); break;
			}
		}
		if (crc32c(0, buf, sizeof(buf)) != cases[c].want)
			fail_msg("%s: got %08x, want %08x", cases[c].name,
			    crc32c(0, buf, sizeof(buf)), cases[c].want);
	}
}

static void
test_empty_input_leaves_the_crc_unchanged(void **state)
{
	static const uint8_t one = 0;

	(void)state;
	assert_int_equal(crc32c(0, &one, 0), 0);
	assert_int_equal(crc32c(0xE3069283u, &one, 0), 0xE3069283u);
}

static void
test_every_length_and_alignment_matches_the_bitwise_reference(void **state)
{
	uint8_t buf[64 + 8];

	(void)state;
	fill(buf, sizeof(buf), 7);
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= 64; len++) {
			uint32_t got = crc32c(0, buf + align, len);
			uint32_t sw = crc32c_software(0, buf + align, len);
			uint32_t want = crc32c_bitwise(0, buf + align, len);
			if (got != want || sw != want)
				fail_msg("length %zu at alignment %zu: got %08x "
				    "(software %08x), want %08x", len, align, got,
				    sw, want);
		}
}

static void
test_continuing_a_crc_equals_the_one_shot_crc(void **state)
{
	uint8_t buf[1000];

	(void)state;
	fill(buf, sizeof(buf), 11);
	/* Every split point of a short buffer, then uneven pieces of a long one. */
	for (size_t cut = 0; cut <= 64; cut++) {
		uint32_t whole = crc32c(0, buf, 64);
		uint32_t part = crc32c(crc32c(0, buf, cut), buf + cut, 64 - cut);
		if (part != whole)
			fail_msg("split at %zu: %08x != %08x", cut, part, whole);
	}
	for (size_t step = 1; step <= 17; step++) {
		uint32_t c = 0;
		for (size_t off = 0; off < sizeof(buf); off += step) {
			size_t n = sizeof(buf) - off < step ? sizeof(buf) - off :
			    step;
			c = crc32c(c, buf + off, n);
		}
		if (c != crc32c(0, buf, sizeof(buf)))
			fail_msg("pieces of %zu bytes: %08x != %08x", step, c,
			    crc32c(0, buf, sizeof(buf)));
		assert_int_equal(c, crc32c_bitwise(0, buf, sizeof(buf)));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value_is_e3069283),
		cmocka_unit_test(test_iscsi_vectors),
		cmocka_unit_test(test_empty_input_leaves_the_crc_unchanged),
		cmocka_unit_test(
		    test_every_length_and_alignment_matches_the_bitwise_reference),
		cmocka_unit_test(test_continuing_a_crc_equals_the_one_shot_crc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
