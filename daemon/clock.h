/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock: the two clocks kanal reads, in one place.
 *
 *   clock_wall_ms   wall-clock Unix milliseconds (CLOCK_REALTIME): when
 *                   events happened, WAL positions of a new log, headers
 *   clock_mono_ms   monotonic milliseconds (CLOCK_MONOTONIC): durations,
 *   clock_mono_us   deadlines and rates, which must not jump with the
 *                   wall clock
 *
 * clock_gettime on Linux is a vDSO call, not a system call.
 */
#ifndef KANAL_CLOCK_H
#define KANAL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline int64_t
clock_mono_ms(void)
{
	return (int64_t)(clock_mono_us() / 1000);
}

#endif
