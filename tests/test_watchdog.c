/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watchdog: reading systemd's WATCHDOG_USEC / WATCHDOG_PID, and the stall
 * detector that decides whether a tick may send WATCHDOG=1. The pings
 * themselves, against a real kanald, are in tests/test_systemd.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "watchdog.h"

static const struct {
	const char *name;
	const char *usec, *pid;
	uint64_t want;
} intervals[] = {
	{ "no WATCHDOG_USEC means off", NULL, NULL, 0 },
	{ "30 s for any process", "30000000", NULL, 30000000 },
	{ "30 s for this process", "30000000", "4242", 30000000 },
	{ "meant for another process means off", "30000000", "4243", 0 },
	{ "a pid that is not a number means off", "30000000", "x", 0 },
	{ "an empty pid means off", "30000000", "", 0 },
	{ "zero means off", "0", NULL, 0 },
	{ "infinity means off", "18446744073709551615", NULL, 0 },
	{ "a negative number means off", "-5", NULL, 0 },
	{ "trailing junk means off", "30s", NULL, 0 },
	{ "empty means off", "", NULL, 0 },
	{ "over 64 bits means off", "99999999999999999999", NULL, 0 },
};

static void
test_interval_is_read_like_sd_watchdog_enabled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		uint64_t got = watchdog_interval_usec(intervals[i].usec,
		    intervals[i].pid, 4242);
		if (got != intervals[i].want)
			fail_msg("%s: got %llu", intervals[i].name,
			    (unsigned long long)got);
	}
}

/* A sequence of ticks: (appended, durable) and whether each may ping. */
struct tick {
	uint64_t appended, durable;
	int ok;
};

static const struct {
	const char *name;
	unsigned limit;
	struct tick ticks[8];
	size_t n;
} runs[] = {
	{ "an idle writer is always healthy", 3,
	  { { 100, 100, 1 }, { 100, 100, 1 }, { 100, 100, 1 },
	    { 100, 100, 1 } }, 4 },
	{ "a busy writer that advances each tick is healthy", 2,
	  { { 200, 150, 1 }, { 300, 250, 1 }, { 400, 350, 1 },
	    { 500, 450, 1 } }, 4 },
	{ "one tick in the middle of a sync still pings", 2,
	  { { 200, 100, 1 }, { 200, 200, 1 } }, 2 },
	{ "bytes waiting without progress for limit ticks is stuck", 2,
	  { { 200, 100, 1 }, { 300, 100, 0 }, { 400, 100, 0 } }, 3 },
	{ "with limit 3 the third tick without progress is stuck", 3,
	  { { 200, 100, 1 }, { 200, 100, 1 }, { 200, 100, 0 } }, 3 },
	{ "progress after a stall makes it healthy again", 2,
	  { { 200, 100, 1 }, { 200, 100, 0 }, { 200, 100, 0 },
	    { 300, 200, 1 }, { 300, 200, 1 }, { 300, 200, 0 } }, 6 },
	{ "a failed write (nothing waiting any more) is no stall", 2,
	  { { 200, 100, 1 }, { 200, 100, 0 }, { 100, 100, 1 } }, 3 },
};

static void
test_writer_is_stuck_only_after_limit_ticks_without_progress(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct watchdog_writer w = { .durable = 100,
		    .limit = runs[i].limit };

		for (size_t t = 0; t < runs[i].n; t++) {
			const struct tick *k = &runs[i].ticks[t];
			int got = watchdog_writer_check(&w, k->appended,
			    k->durable);
			if (got != k->ok)
				fail_msg("%s: tick %zu: got %d, want %d",
				    runs[i].name, t, got, k->ok);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval_is_read_like_sd_watchdog_enabled),
		cmocka_unit_test(
		    test_writer_is_stuck_only_after_limit_ticks_without_progress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
