/* SPDX-License-Identifier: Apache-2.0 */
/*
 * siphash: SipHash-2-4 with a 64-bit output (Aumasson and Bernstein,
 * "SipHash: a fast short-input PRF", 2012), the keyed hash that turns a
 * resident's reference into the 64-bit value a HyperLogLog sketch counts
 * (hll.h). Keyed, so that nobody without the key can pick references
 * that land in chosen registers, or tell from a sketch which references
 * it holds. No state, no allocation: safe from any thread.
 */
#ifndef KANAL_SIPHASH_H
#define KANAL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * SipHash-2-4 of len bytes at msg under the 128-bit key (the paper's k0
 * is key[0..7], k1 key[8..15], both little-endian). msg may be NULL when
 * len is 0. Can't fail.
 */
uint64_t siphash24(const uint8_t key[16], const void *msg, size_t len);

#endif
