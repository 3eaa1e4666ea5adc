/* SPDX-License-Identifier: Apache-2.0 */
/*
 * histogram: a fixed-bucket latency histogram, for the Prometheus
 * `_seconds` histograms of /metrics (WAL fdatasync, flush transaction).
 *
 * Durations are observed in microseconds, as integers: no floating point
 * on the paths that observe. The upper bounds are fixed for every
 * histogram of kanal (HISTOGRAM_BOUNDS_US), from 100 us to 10 s in steps
 * of about x2.5, so dashboards can compare them; what is slower than 10 s
 * lands in the +Inf bucket only.
 *
 * A struct histogram is plain data, meant to be embedded in a module's
 * stats and guarded by that module's lock: histogram_observe runs under
 * the lock the module already holds to update its counters, and the
 * module's get_stats copy is the snapshot (consistent: the buckets always
 * add up to count). Nothing here allocates or fails.
 */
#ifndef KANAL_HISTOGRAM_H
#define KANAL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_BUCKETS 16	/* finite upper bounds; +Inf is extra */

/* The finite upper bounds ("le"), in microseconds, ascending. */
extern const uint64_t histogram_bounds_us[HISTOGRAM_BUCKETS];

struct histogram {
	/*
	 * Observations per bucket, not cumulative: counts[i] holds those in
	 * (bound[i-1], bound[i]]; counts[HISTOGRAM_BUCKETS] those above the
	 * last bound.
	 */
	uint64_t counts[HISTOGRAM_BUCKETS + 1];
	uint64_t count;
	uint64_t sum_us;
};

/* Counts one observation of us microseconds. Can't fail. */
void histogram_observe(struct histogram *h, uint64_t us);

/*
 * Observations <= histogram_bounds_us[i] (i < HISTOGRAM_BUCKETS), or all
 * of them (i == HISTOGRAM_BUCKETS, the +Inf bucket): what Prometheus's
 * cumulative `_bucket{le=...}` series shows.
 */
uint64_t histogram_cumulative(const struct histogram *h, size_t i);

#endif
