/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit: see ratelimit.h.
 *
 * Units: a rate of r events per second is r thousandths of an event per
 * millisecond, so refilling adds elapsed_ms * rate "milli-events" and a
 * shortfall of d milli-events takes ceil(d / rate) milliseconds. The
 * largest numbers (burst 1e9 events = 1e12 milli-events) are far from
 * 2^64; a long idle time is capped before it is multiplied.
 *
 * The buckets are an open-addressing hash table (linear probing, FNV-1a,
 * doubled at 3/4 full), never shrunk: one entry per source name ever
 * seen, a few hundred bytes each.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64
#define MILLI 1000

struct bucket {
	uint64_t tokens;	/* milli-events */
	int64_t last_ms;	/* when tokens was last brought up to date */
	uint8_t used, limited, len;
	char key[KEY_MAX];
};

struct ratelimit {
	uint64_t rate;		/* events per second; 0 = off */
	uint64_t burst;		/* events */
	struct bucket *b;
	size_t cap, n;		/* slots (a power of 2), used slots */
};

struct ratelimit *
ratelimit_new(uint64_t rate, uint64_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->rate = rate;
	rl->burst = rate == 0 ? 0 : burst != 0 ? burst : rate;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->b);
	free(rl);
}

uint64_t
ratelimit_burst(const struct ratelimit *rl)
{
	return rl->burst;
}

static uint64_t
hash(const char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct bucket *
slot(struct bucket *b, size_t cap, const char *key, size_t len)
{
	size_t i = (size_t)hash(key, len) & (cap - 1);

	while (b[i].used && (b[i].len != len || memcmp(b[i].key, key, len)
	    != 0))
		i = (i + 1) & (cap - 1);
	return &b[i];
}

static int
grow(struct ratelimit *rl)
{
	size_t cap = rl->cap == 0 ? 16 : rl->cap * 2;
	struct bucket *nb = calloc(cap, sizeof(*nb));

	if (nb == NULL)
		return -1;
	for (size_t i = 0; i < rl->cap; i++)
		if (rl->b[i].used)
			*slot(nb, cap, rl->b[i].key, rl->b[i].len) = rl->b[i];
	free(rl->b);
	rl->b = nb;
	rl->cap = cap;
	return 0;
}

/* key's bucket, made full if new; NULL when out of memory. */
static struct bucket *
find(struct ratelimit *rl, const char *key, size_t len, int64_t now_ms)
{
	struct bucket *b;

	if ((rl->n + 1) * 4 > rl->cap * 3 && grow(rl) == -1)
		return NULL;
	b = slot(rl->b, rl->cap, key, len);
	if (!b->used) {
		b->used = 1;
		b->len = (uint8_t)len;
		memcpy(b->key, key, len);
		b->tokens = rl->burst * MILLI;
		b->last_ms = now_ms;
		rl->n++;
	}
	return b;
}

static void
refill(const struct ratelimit *rl, struct bucket *b, int64_t now_ms)
{
	uint64_t full = rl->burst * MILLI, elapsed, deficit;

	if (now_ms <= b->last_ms)
		return;
	elapsed = (uint64_t)(now_ms - b->last_ms);
	b->last_ms = now_ms;
	deficit = full - b->tokens;
	/* elapsed * rate >= deficit, without multiplying a long idle. */
	if (elapsed >= (deficit + rl->rate - 1) / rl->rate)
		b->tokens = full;
	else
		b->tokens += elapsed * rl->rate;
}

enum ratelimit_verdict
ratelimit_take(struct ratelimit *rl, const char *key, size_t keylen,
    uint64_t n, int64_t now_ms, unsigned *retry_after_s, int *first)
{
	struct bucket *b;
	uint64_t need, wait_ms;

	*retry_after_s = 0;
	*first = 0;
	if (rl->rate == 0)
		return RATELIMIT_OK;
	if (n > rl->burst)
		return RATELIMIT_TOO_LARGE;
	if (keylen >= KEY_MAX)
		keylen = KEY_MAX - 1;
	b = find(rl, key, keylen, now_ms);
	if (b == NULL)
		return RATELIMIT_OK;
	refill(rl, b, now_ms);
	need = n * MILLI;
	if (b->tokens >= need) {
		b->tokens -= need;
		b->limited = 0;
		return RATELIMIT_OK;
	}
	wait_ms = (need - b->tokens + rl->rate - 1) / rl->rate;
	*retry_after_s = (unsigned)((wait_ms + 999) / 1000);
	if (*retry_after_s == 0)
		*retry_after_s = 1;
	*first = !b->limited;
	b->limited = 1;
	return RATELIMIT_LIMITED;
}

void
ratelimit_give_back(struct ratelimit *rl, const char *key, size_t keylen,
    uint64_t n)
{
	struct bucket *b;
	uint64_t full = rl->burst * MILLI;

	if (rl->rate == 0 || rl->cap == 0 || n > rl->burst)
		return;
	if (keylen >= KEY_MAX)
		keylen = KEY_MAX - 1;
	b = slot(rl->b, rl->cap, key, keylen);
	if (!b->used)
		return;
	b->tokens = full - b->tokens <= n * MILLI ? full : b->tokens + n * MILLI;
}
