/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rng: the seeded random numbers of the traffic generators (kanalctl demo,
 * kanal-loadgen). splitmix64: small, fast, good enough for synthetic
 * traffic, and the same seed always gives the same sequence. Not for
 * secrets (tokens come from getrandom).
 */
#ifndef KANAL_RNG_H
#define KANAL_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

static inline uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double
rng_uniform(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller). */
static inline double
rng_normal(uint64_t *s)
{
	double u = rng_uniform(s), v = rng_uniform(s);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Index i with probability (cum[i] - cum[i-1]) / cum[n-1]; n >= 1. */
static inline size_t
rng_pick(uint64_t *s, const double *cum, size_t n)
{
	double x = rng_uniform(s) * cum[n - 1];
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

#endif
