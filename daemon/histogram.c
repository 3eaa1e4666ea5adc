/* SPDX-License-Identifier: Apache-2.0 */
/*
 * histogram: see histogram.h.
 */
#include "histogram.h"

/*
 * 0.0001 s to 10 s. A WAL fdatasync is ~2 ms on the disks kanal was
 * measured on and a flush of 10k rows ~0.2 s (PITFALLS.md): both fall
 * mid-range, with room for a slow disk or a database under load.
 */
const uint64_t histogram_bounds_us[HISTOGRAM_BUCKETS] = {
	100, 250, 500,
	1000, 2500, 5000,
	10000, 25000, 50000,
	100000, 250000, 500000,
	1000000, 2500000, 5000000,
	10000000,
};

void
histogram_observe(struct histogram *h, uint64_t us)
{
	size_t i = 0;

	/* Prometheus buckets are "less than or equal": le is inclusive. */
	while (i < HISTOGRAM_BUCKETS && us > histogram_bounds_us[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum_us += us;
}

uint64_t
histogram_cumulative(const struct histogram *h, size_t i)
{
	uint64_t n = 0;

	if (i > HISTOGRAM_BUCKETS)
		i = HISTOGRAM_BUCKETS;
	for (size_t j = 0; j <= i; j++)
		n += h->counts[j];
	return n;
}
