/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reach: the city key that turns a citizen_ref into the 64-bit value the
 * distinct-resident sketches count (schema/010_reach.sql, docs/security.md).
 *
 * The key file holds 32 random bytes (kanalctl reach keygen). Two values
 * are derived from it once, at load, with SHA-256 and a label each:
 *
 *   hash key  SHA-256("kanal reach hash key v1" || file)[0..16): the
 *             SipHash-2-4 key. Every citizen_ref is hashed with it on the
 *             event loop, so it must cost nanoseconds, not the microsecond
 *             of an HMAC-SHA-256 (measured: bench/results); SipHash is a
 *             pseudo-random function for short inputs under a 128-bit
 *             key, and its 64 bits are exactly what the HyperLogLog
 *             consumes. Without the key nobody can compute the value of a
 *             given citizen_ref, so a sketch cannot be tested against a
 *             list of pseudonyms or NIKs.
 *   key id    SHA-256("kanal reach key id v1" || file)[0..8) as a signed
 *             64-bit integer: the key's fingerprint, stored with every
 *             sketch and in kanal.reach_key, so sketches made with two
 *             keys are never merged. It reveals nothing of the hash key.
 *
 * Only the hashed value ever leaves this module: into the WAL record, the
 * rollups and (as HyperLogLog registers) PostgreSQL. The citizen_ref and
 * the key are never logged.
 */
#ifndef KANAL_REACH_H
#define KANAL_REACH_H

#include <stddef.h>
#include <stdint.h>

#define REACH_KEY_FILE_BYTES 32

struct reach_key {
	uint8_t hash_key[16];
	int64_t id;
};

/*
 * Loads and checks the key file: a regular file of exactly 32 bytes,
 * owned by this process's user, with no group or other permission bits.
 * 0, or -1 with "what is wrong, what to do" in err (the caller prefixes
 * the path).
 */
int reach_key_load(const char *path, struct reach_key *key, char *err,
    size_t errlen);

/*
 * Writes a new key file: 32 bytes from getrandom, mode 0600, created (it
 * must not exist yet: a key is never overwritten by accident), synced
 * with its directory. 0, or -1 with err.
 */
int reach_key_generate(const char *path, char *err, size_t errlen);

/* The keyed 64-bit value of a citizen_ref. Can't fail. */
uint64_t reach_hash(const struct reach_key *key, const void *ref,
    size_t len);

/*
 * The region a sketch is kept for: a desa code ("32.73.01.1001") is cut
 * to its kecamatan ("32.73.01"); shorter codes stay. Returns the length
 * of the prefix of region to use.
 */
size_t reach_region_len(const char *region, size_t len);

/* The local (WIB, UTC+7) day of a Unix time in ms >= 0, in days. */
int32_t reach_wib_day(int64_t ms);

#endif
