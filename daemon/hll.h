/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hll: a HyperLogLog sketch of a set of 64-bit hashes (for "distinct
 * residents reached": siphash24 of each resident's reference, issue 14),
 * kept in memory by the hourly rollup for about one flush interval and
 * written to PostgreSQL in the storage format of the postgresql-hll
 * extension, so that the bytes are an `hll` value that hll_union_agg and
 * hll_cardinality take as they are.
 *
 * The parameters are fixed at compile time and are those of
 * hll_add_agg(v::hll_hashval, HLL_LOG2M, HLL_REGWIDTH, 0, 1): 2^HLL_LOG2M
 * registers of HLL_REGWIDTH bits, no EXPLICIT form (expthresh 0: raw
 * hashes are never stored), SPARSE enabled with postgresql-hll's automatic
 * cutoff. For the same hashes, hll_encode gives byte for byte what that
 * aggregate gives (see hll.c for the format and the one exception, the
 * empty set).
 *
 * A zeroed struct hll is an empty sketch. It is small (16 bytes) so that
 * it can live inside a hash-table entry; its fields are private to hll.c.
 * A sketch holding few registers keeps them in a small sorted array on
 * the heap; past a threshold it switches to one byte per register.
 * Thread-compatible: no global state; one sketch is used by one thread
 * at a time.
 */
#ifndef KANAL_HLL_H
#define KANAL_HLL_H

#include <stddef.h>
#include <stdint.h>

/* log2 of the number of registers (4..17) and the bits per register (1..7). */
#define HLL_LOG2M	11
#define HLL_REGWIDTH	5

struct hll {
	void *mem;		/* sparse entries or dense registers, or NULL */
	uint32_t n;		/* sparse: entries in use */
	uint16_t cap;		/* sparse: entries allocated */
	uint8_t form;		/* empty, sparse or dense (hll.c) */
};

/* Makes h empty without looking at what it held (a zeroed struct is too). */
void hll_init(struct hll *h);
/*
 * Adds a 64-bit hash: register hash mod 2^HLL_LOG2M, value from the bits
 * above, as postgresql-hll's hll_add does for an hll_hashval. O(1) on a
 * dense sketch; a binary search and at most a small memmove on a sparse
 * one. Returns 0, or -1 with errno ENOMEM and h unchanged.
 */
int hll_add(struct hll *h, uint64_t hash);
/*
 * dst becomes the union of dst and src (the register-wise maximum); src
 * is not changed and may be dst. Returns 0, or -1 with errno ENOMEM and
 * dst unchanged.
 */
int hll_merge(struct hll *dst, const struct hll *src);
/*
 * 1 when nothing was ever added (or merged in). A sketch that was given
 * only hashes whose register value is 0 (hash >> HLL_LOG2M == 0) is not
 * empty: postgresql-hll stores it as a SPARSE set of no registers, and so
 * do we.
 */
int hll_is_empty(const struct hll *h);
/* Heap bytes the sketch holds (for metrics and benchmarks). */
size_t hll_mem_bytes(const struct hll *h);
/* The most bytes hll_encode writes (1283 at log2m 11, regwidth 5). */
size_t hll_encoded_max(void);
/*
 * Writes the sketch to out (hll_encoded_max() bytes) in postgresql-hll's
 * storage format, schema version 1, and returns the length. Can't fail.
 */
size_t hll_encode(const struct hll *h, uint8_t *out);
/*
 * Replaces h with the sketch stored in p: an EMPTY, SPARSE or FULL value
 * of schema version 1 with exactly our parameters (log2m, regwidth,
 * expthresh 0, sparse on). For tests and tools. h must be a valid sketch
 * (possibly zeroed); what it held is freed on success. Returns 0, or -1
 * with errno EINVAL (anything else, h unchanged) or ENOMEM (h unchanged).
 */
int hll_decode(struct hll *h, const uint8_t *p, size_t len);
/*
 * The estimated number of distinct hashes, computed exactly as
 * postgresql-hll's hll_cardinality computes it (same formula and
 * corrections, same order of summation): for tests and benchmarks. Can't
 * fail.
 */
double hll_estimate(const struct hll *h);
/* Releases the heap memory; h becomes empty. NULL is a no-op. */
void hll_free(struct hll *h);

#endif
