/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit: a token bucket per source, so that one source cannot take
 * the daemon's whole intake.
 *
 * Each source's bucket holds up to burst events and fills at rate events
 * per second; a batch of n events takes n tokens or is refused whole
 * (with the seconds until n tokens are there). A new source starts with
 * a full bucket. Buckets are keyed by source name, not by the loaded
 * sources, so a SIGHUP reload keeps them. The clock is the caller's
 * (milliseconds of a monotonic clock), which keeps the arithmetic a pure
 * function of its inputs. Tokens are counted in thousandths of an event:
 * whole numbers only, nothing lost to rounding at low rates.
 *
 * The loop thread alone uses a struct ratelimit.
 */
#ifndef KANAL_RATELIMIT_H
#define KANAL_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

enum ratelimit_verdict {
	RATELIMIT_OK,		/* taken (or no limit) */
	RATELIMIT_LIMITED,	/* not enough tokens now: retry later */
	RATELIMIT_TOO_LARGE,	/* more events than the bucket holds: never */
};

/*
 * rate: events per second, 0 = no limit (every take is OK). burst: the
 * bucket's size in events, 0 = one second's worth (rate). NULL when out
 * of memory.
 */
struct ratelimit *ratelimit_new(uint64_t rate, uint64_t burst);
/* ratelimit_free(NULL) is a no-op. */
void ratelimit_free(struct ratelimit *rl);

/* The bucket size in force (0 when there is no limit). */
uint64_t ratelimit_burst(const struct ratelimit *rl);

/*
 * Takes n tokens from key's bucket at now_ms. On RATELIMIT_LIMITED,
 * *retry_after_s is the whole seconds (at least 1) until n tokens are
 * there, and *first is 1 when the bucket was not limited at its previous
 * take (for a log line per episode, not per request), else 0. Out of
 * memory for a new source's bucket, the batch is let through: the limit
 * protects the daemon, and refusing would not.
 */
enum ratelimit_verdict ratelimit_take(struct ratelimit *rl, const char *key,
    size_t keylen, uint64_t n, int64_t now_ms, unsigned *retry_after_s,
    int *first);
/*
 * Gives back n tokens that ratelimit_take took for a batch that was then
 * refused for the daemon's own reasons (WAL full, out of memory): the
 * client sends it again, and must not pay twice. The bucket never holds
 * more than burst.
 */
void ratelimit_give_back(struct ratelimit *rl, const char *key,
    size_t keylen, uint64_t n);

#endif
