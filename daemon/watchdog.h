/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watchdog: tells systemd that kanald is alive and what it is doing.
 *
 * A timer on the event loop fires every half watchdog interval (at most
 * every 10 s). Each time it sends WATCHDOG=1 when systemd asked for it
 * (WATCHDOG_USEC, for this process if WATCHDOG_PID is set, as
 * sd_watchdog_enabled reads them) and both threads that acknowledgements
 * depend on are making progress: the event loop (the timer fired) and the
 * WAL writer (nothing waits to be written, or the durable position moved
 * since the last tick). A writer that sits on waiting bytes for a whole
 * watchdog interval gets no ping, so systemd kills and restarts kanald;
 * that is logged once, as is the recovery. It also sends a one-line
 * STATUS= summary whenever it changes, and every 10 s.
 *
 * Everything runs on the loop thread; the WAL, ingest and flush are only
 * read through their get_stats calls.
 */
#ifndef KANAL_WATCHDOG_H
#define KANAL_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct flush;
struct ingest;
struct wal;
struct watchdog;

struct watchdog_config {
	const char *listen;	/* shown in STATUS=; copied */
	struct wal *wal;	/* borrowed: the writer's progress, WAL size */
	struct ingest *ingest;	/* borrowed: batches answered */
	struct flush *flush;	/* borrowed: database up or down */
};

/*
 * Reads the environment and starts the timer on base (the loop thread).
 * NULL on out-of-memory. Without NOTIFY_SOCKET the pings and the status
 * go nowhere, but a stuck WAL writer is still logged.
 */
struct watchdog *watchdog_new(struct event_base *base,
    const struct watchdog_config *cfg);
/* Stops the timer. watchdog_free(NULL) is a no-op. */
void watchdog_free(struct watchdog *wd);

/* ---------------------------------------------- the parts, for the tests */

/*
 * The watchdog interval in microseconds from the values of WATCHDOG_USEC
 * and WATCHDOG_PID (either may be NULL), for process self; 0 when the
 * watchdog is off for it: unset, not a positive number, or meant for
 * another process. This function can't fail.
 */
uint64_t watchdog_interval_usec(const char *usec, const char *pid,
    long self);

/* The stall detector: one per WAL writer, zeroed, then limit set. */
struct watchdog_writer {
	uint64_t durable;	/* durable position at the last check */
	unsigned stalled;	/* checks in a row: bytes waiting, no progress */
	unsigned limit;		/* that many make the writer stuck (>= 2) */
};

/*
 * One tick's check against the WAL's appended and durable positions.
 * Returns 1 when the writer is healthy, 0 when it has been stuck for
 * limit checks in a row. This function can't fail.
 */
int watchdog_writer_check(struct watchdog_writer *s, uint64_t appended,
    uint64_t durable);

#endif
