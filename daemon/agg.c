/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agg: see agg.h.
 *
 * The rollup table is open addressing with linear probing over a power-of-
 * two array of 32-byte slots (16-byte key, three counters); a slot with
 * events == 0 is empty, since a key exists only once an event was added.
 * It grows at 3/4 full, before an add starts, so an add can't fail half
 * way.
 *
 * The interner maps a code to a 32-bit id. Strings live in 64 KiB blocks
 * that never move; id -> string goes through a fixed array of pages, so the
 * flush thread can resolve the ids of a frozen table while the loop thread
 * interns new codes (it only ever writes slots the reader does not look
 * at, and the freeze's mutex orders the writes before the reads).
 */
#include "agg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hll.h"
#include "reach.h"

#define MS_PER_HOUR 3600000LL
#define TABLE_MIN 1024

struct key {
	uint32_t hour;		/* hours since the epoch */
	uint32_t service;	/* interned id */
	uint32_t region;	/* interned id */
	uint8_t channel, outcome, assisted, pad;
};

/*
 * 32 bytes. A key is one UTC hour of one (service, channel, region,
 * outcome, assisted): even at a million events a second, all on one key,
 * an hour holds 3.6e9 events, under the 32-bit limit; the duration sum
 * needs 64 bits (an hour of 10-minute transactions passes 2^32 ms at 7,200
 * events).
 */
struct slot {
	struct key k;
	uint32_t events;	/* 0 = empty slot */
	uint32_t duration_events;
	uint64_t duration_ms_sum;
};

/* A batch of the table (agg_batch), its source interned. 32 bytes. */
struct batch_ent {
	uint8_t digest[16];
	uint64_t start;
	uint32_t source;
	uint32_t pad;
};

/*
 * A sketch's key: one WIB day of one (service, kecamatan, channel, reach
 * key). 24 bytes; used = 0 marks an empty slot.
 */
struct sketch_key {
	int64_t reach_key_id;
	int32_t day;
	uint32_t service;	/* interned id */
	uint32_t region;	/* interned id of the cut region */
	uint8_t channel;
	uint8_t used;
	uint8_t pad[2];
};

/* 40 bytes: the key and the sketch, whose registers are on the heap. */
struct sketch_slot {
	struct sketch_key k;
	struct hll h;
};

struct agg_table {
	struct slot *slots;
	size_t cap;		/* power of two */
	size_t n;
	struct batch_ent *batches;
	size_t nbatches, batches_cap;
	struct sketch_slot *sketches;
	size_t scap;		/* power of two, or 0 */
	size_t sn;
	size_t sketch_heap;	/* hll_mem_bytes of all its sketches */
};

/* ------------------------------------------------------------- interner */

#define PAGE_IDS 1024
#define MAX_PAGES 4096		/* 4M distinct codes */
#define BLOCK_SIZE 65536

struct intern_slot {
	uint32_t hash;
	uint32_t id;		/* id + 1; 0 = empty */
};

struct interner {
	const char **pages[MAX_PAGES];
	uint32_t n;		/* ids handed out */
	struct intern_slot *slots;
	size_t cap;
	char *block;		/* current string block */
	size_t block_used;
	char **blocks;		/* every block, for free */
	size_t nblocks;
};

struct agg {
	pthread_mutex_t mu;
	struct agg_table tables[2];
	struct agg_table *active;
	struct agg_table *frozen;	/* NULL when none is out */
	uint64_t position;		/* highest added */
	uint64_t frozen_position;
	struct interner codes;		/* services and regions share it */
	uint32_t *ids;			/* agg_add's: 3 per event */
	size_t ids_cap;
	/*
	 * Late events (agg.h). Each ring is indexed by hour % AGG_LATE_HOURS
	 * and holds hour + 1 (0: none): hours[i] the hours of the keys in
	 * tables[i], flushed the hours a committed flush wrote.
	 */
	uint32_t hours[2][AGG_LATE_HOURS];
	uint32_t flushed[AGG_LATE_HOURS];
	uint64_t late;
	/*
	 * Reach: the cut region (reach_region_len) of each region code,
	 * cut_of[region id] = its id + 1 (0: not known yet), so that only a
	 * region's first event interns its kecamatan.
	 */
	uint32_t *cut_of;
	size_t cut_cap;
	uint64_t reach_adds;
	uint64_t reach_dropped;
};

static uint32_t
hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a: codes are short */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static const char *
intern_str(const struct interner *in, uint32_t id)
{
	return in->pages[id / PAGE_IDS][id % PAGE_IDS];
}

static int
intern_grow(struct interner *in)
{
	size_t ncap = in->cap ? in->cap * 2 : 1024;
	struct intern_slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < in->cap; i++) {
		size_t j;
		if (in->slots[i].id == 0)
			continue;
		j = in->slots[i].hash & (ncap - 1);
		while (ns[j].id != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = in->slots[i];
	}
	free(in->slots);
	in->slots = ns;
	in->cap = ncap;
	return 0;
}

static char *
intern_copy(struct interner *in, const char *s, size_t len)
{
	char *p;

	if (in->block == NULL || in->block_used + len + 1 > BLOCK_SIZE) {
		char **nb = realloc(in->blocks, (in->nblocks + 1) *
		    sizeof(*nb));
		if (nb == NULL)
			return NULL;
		in->blocks = nb;
		in->block = malloc(BLOCK_SIZE);
		if (in->block == NULL)
			return NULL;
		in->blocks[in->nblocks++] = in->block;
		in->block_used = 0;
	}
	p = in->block + in->block_used;
	memcpy(p, s, len);
	p[len] = '\0';
	in->block_used += len + 1;
	return p;
}

/* The id of s, made if new. -1 on ENOMEM or ENOSPC. len must be < 1 KiB. */
static int64_t
intern(struct interner *in, const char *s, size_t len)
{
	uint32_t h = hash_bytes(s, len);
	size_t i;
	uint32_t id;
	char *copy;

	if (in->cap == 0 && intern_grow(in) == -1)
		return -1;
	/* The table is never over 3/4 full, so the probe ends. */
	for (i = h & (in->cap - 1); in->slots[i].id != 0;
	    i = (i + 1) & (in->cap - 1)) {
		const char *t;
		if (in->slots[i].hash != h)
			continue;
		t = intern_str(in, in->slots[i].id - 1);
		if (strncmp(t, s, len) == 0 && t[len] == '\0')
			return in->slots[i].id - 1;
	}
	if (in->n >= (uint32_t)PAGE_IDS * MAX_PAGES) {
		errno = ENOSPC;
		return -1;
	}
	/*
	 * Grow only for a new code: looking up a known one must not fail,
	 * since agg_add's second pass relies on it.
	 */
	if (((size_t)in->n + 1) * 4 > in->cap * 3) {
		if (intern_grow(in) == -1)
			return -1;
		for (i = h & (in->cap - 1); in->slots[i].id != 0;
		    i = (i + 1) & (in->cap - 1))
			;
	}
	id = in->n;
	if (in->pages[id / PAGE_IDS] == NULL) {
		in->pages[id / PAGE_IDS] = calloc(PAGE_IDS, sizeof(char *));
		if (in->pages[id / PAGE_IDS] == NULL)
			return -1;
	}
	copy = intern_copy(in, s, len);
	if (copy == NULL)
		return -1;
	in->pages[id / PAGE_IDS][id % PAGE_IDS] = copy;
	in->n++;
	in->slots[i].hash = h;
	in->slots[i].id = id + 1;
	return id;
}

static void
intern_free(struct interner *in)
{
	for (size_t i = 0; i < MAX_PAGES && in->pages[i] != NULL; i++)
		free(in->pages[i]);
	for (size_t i = 0; i < in->nblocks; i++)
		free(in->blocks[i]);
	free(in->blocks);
	free(in->slots);
}

/* ---------------------------------------------------------- rollup table */

static uint64_t
key_hash(const struct key *k)
{
	uint64_t a, b;

	memcpy(&a, k, 8);
	memcpy(&b, (const char *)k + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ULL;
	a ^= a >> 32;
	a *= 0xd6e8feb86659fd93ULL;
	a ^= a >> 29;
	return a;
}

static int
key_eq(const struct key *x, const struct key *y)
{
	return memcmp(x, y, sizeof(*x)) == 0;
}

static struct slot *
table_find(struct agg_table *t, const struct key *k)
{
	size_t mask = t->cap - 1;
	size_t i = key_hash(k) & mask;

	while (t->slots[i].events != 0 && !key_eq(&t->slots[i].k, k))
		i = (i + 1) & mask;
	return &t->slots[i];
}

static int
table_resize(struct agg_table *t, size_t ncap)
{
	struct agg_table nt;

	memset(&nt, 0, sizeof(nt));
	nt.slots = calloc(ncap, sizeof(struct slot));
	nt.cap = ncap;
	if (nt.slots == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].events != 0) {
			*table_find(&nt, &t->slots[i].k) = t->slots[i];
			nt.n++;
		}
	free(t->slots);
	/* The batches stay as they are. */
	t->slots = nt.slots;
	t->cap = nt.cap;
	t->n = nt.n;
	return 0;
}

/* Makes room for n more keys without crossing 3/4 full. */
static int
table_reserve(struct agg_table *t, size_t n)
{
	size_t ncap = t->cap ? t->cap : TABLE_MIN;

	while ((t->n + n) * 4 > ncap * 3)
		ncap *= 2;
	if (ncap == t->cap)
		return 0;
	return table_resize(t, ncap);
}

static void
table_clear(struct agg_table *t)
{
	/* Shrink a table that a burst made large, so memory comes back. */
	if (t->cap > TABLE_MIN && t->n * 8 < t->cap) {
		free(t->slots);
		t->slots = NULL;
		t->cap = 0;
	} else if (t->slots != NULL) {
		memset(t->slots, 0, t->cap * sizeof(*t->slots));
	}
	t->n = 0;
	if (t->batches_cap > TABLE_MIN && t->nbatches * 8 < t->batches_cap) {
		free(t->batches);
		t->batches = NULL;
		t->batches_cap = 0;
	}
	t->nbatches = 0;
}

/* ------------------------------------------------------- sketch table */

static uint64_t
sketch_hash(const struct sketch_key *k)
{
	uint64_t a, b, c;

	memcpy(&a, k, 8);
	memcpy(&b, (const char *)k + 8, 8);
	memcpy(&c, (const char *)k + 16, 8);
	a ^= b * 0x9e3779b97f4a7c15ULL ^ c * 0xc2b2ae3d27d4eb4fULL;
	a ^= a >> 32;
	a *= 0xd6e8feb86659fd93ULL;
	a ^= a >> 29;
	return a;
}

static struct sketch_slot *
sketch_find(struct agg_table *t, const struct sketch_key *k)
{
	size_t mask = t->scap - 1;
	size_t i = sketch_hash(k) & mask;

	while (t->sketches[i].k.used &&
	    memcmp(&t->sketches[i].k, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	return &t->sketches[i];
}

/* Makes room for n more sketches without crossing 3/4 full. */
static int
sketch_reserve(struct agg_table *t, size_t n)
{
	size_t ncap = t->scap ? t->scap : TABLE_MIN;
	struct agg_table nt;

	while ((t->sn + n) * 4 > ncap * 3)
		ncap *= 2;
	if (ncap == t->scap)
		return 0;
	memset(&nt, 0, sizeof(nt));
	nt.sketches = calloc(ncap, sizeof(struct sketch_slot));
	if (nt.sketches == NULL)
		return -1;
	nt.scap = ncap;
	for (size_t i = 0; i < t->scap; i++)
		if (t->sketches[i].k.used)
			*sketch_find(&nt, &t->sketches[i].k) = t->sketches[i];
	free(t->sketches);
	t->sketches = nt.sketches;
	t->scap = ncap;
	return 0;
}

static void
sketch_clear(struct agg_table *t)
{
	size_t n = t->sn;

	for (size_t i = 0; i < t->scap && t->sn > 0; i++)
		if (t->sketches[i].k.used) {
			hll_free(&t->sketches[i].h);
			t->sn--;
		}
	/* As table_clear: only a table that a burst made large shrinks. */
	if (t->scap > TABLE_MIN && n * 8 < t->scap) {
		free(t->sketches);
		t->sketches = NULL;
		t->scap = 0;
	} else if (t->sketches != NULL) {
		memset(t->sketches, 0, t->scap * sizeof(*t->sketches));
	}
	t->sn = 0;
	t->sketch_heap = 0;
}

/* The id of the cut region of region id reg (ev's); -1 on ENOMEM. */
static int64_t
cut_region(struct agg *a, int64_t reg, const struct agg_event *ev)
{
	size_t len;
	int64_t cut;

	if ((size_t)reg >= a->cut_cap) {
		size_t ncap = a->cut_cap ? a->cut_cap : 1024;
		uint32_t *nv;

		while (ncap <= (size_t)reg)
			ncap *= 2;
		nv = realloc(a->cut_of, ncap * sizeof(*nv));
		if (nv == NULL) {
			errno = ENOMEM;
			return -1;
		}
		memset(nv + a->cut_cap, 0, (ncap - a->cut_cap) * sizeof(*nv));
		a->cut_of = nv;
		a->cut_cap = ncap;
	}
	if (a->cut_of[reg] != 0)
		return a->cut_of[reg] - 1;
	len = reach_region_len(ev->region, ev->region_len);
	cut = len == ev->region_len ? reg : intern(&a->codes, ev->region, len);
	if (cut >= 0)
		a->cut_of[reg] = (uint32_t)cut + 1;
	return cut;
}

/* Adds one event's citizen hash; room for its key was reserved. */
static void
sketch_add(struct agg *a, struct agg_table *t, const struct agg_event *ev,
    uint32_t service, uint32_t region, int64_t reach_key_id)
{
	struct sketch_key k;
	struct sketch_slot *s;
	size_t before;

	memset(&k, 0, sizeof(k));
	k.day = reach_wib_day(ev->occurred_at_ms);
	k.service = service;
	k.region = region;
	k.channel = ev->channel;
	k.reach_key_id = reach_key_id;
	k.used = 1;
	s = sketch_find(t, &k);
	if (!s->k.used) {
		s->k = k;
		hll_init(&s->h);
		t->sn++;
	}
	before = hll_mem_bytes(&s->h);
	if (hll_add(&s->h, ev->ref_hash) == -1) {
		a->reach_dropped++;
		return;
	}
	t->sketch_heap += hll_mem_bytes(&s->h) - before;
	a->reach_adds++;
}

/* ------------------------------------------------------------------ API */

int64_t
agg_hour_bucket(int64_t ms)
{
	return ms / MS_PER_HOUR * 3600;
}

struct agg *
agg_new(void)
{
	struct agg *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		free(a);
		return NULL;
	}
	a->active = &a->tables[0];
	return a;
}

void
agg_free(struct agg *a)
{
	if (a == NULL)
		return;
	free(a->tables[0].slots);
	free(a->tables[1].slots);
	free(a->tables[0].batches);
	free(a->tables[1].batches);
	sketch_clear(&a->tables[0]);
	sketch_clear(&a->tables[1]);
	free(a->tables[0].sketches);
	free(a->tables[1].sketches);
	intern_free(&a->codes);
	free(a->ids);
	free(a->cut_of);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int
agg_add(struct agg *a, const struct agg_event *ev, size_t n,
    uint64_t position, const struct agg_batch *b)
{
	struct agg_table *t;
	uint32_t *hours, now_hour = (uint32_t)(clock_wall_ms() / MS_PER_HOUR);
	size_t refs = 0;
	int rc = -1;

	pthread_mutex_lock(&a->mu);
	t = a->active;
	hours = a->hours[t - a->tables];
	if (b != NULL && b->has_reach)
		for (size_t i = 0; i < n; i++)
			refs += ev[i].has_ref;
	if (table_reserve(t, n) == -1) {
		errno = ENOMEM;
		goto out;
	}
	/* No room for the sketches: they are dropped, the counts go in. */
	if (refs > 0 && sketch_reserve(t, refs) == -1) {
		a->reach_dropped += refs;
		refs = 0;
	}
	if (n * 3 > a->ids_cap) {
		uint32_t *nv = realloc(a->ids, n * 3 * sizeof(*nv));
		if (nv == NULL) {
			errno = ENOMEM;
			goto out;
		}
		a->ids = nv;
		a->ids_cap = n * 3;
	}
	if (b != NULL && t->nbatches == t->batches_cap) {
		size_t ncap = t->batches_cap ? t->batches_cap * 2 : 256;
		struct batch_ent *nv = realloc(t->batches, ncap * sizeof(*nv));
		if (nv == NULL) {
			errno = ENOMEM;
			goto out;
		}
		t->batches = nv;
		t->batches_cap = ncap;
	}
	/*
	 * All or nothing: intern every code first, the only step that can
	 * fail (an unused code is harmless); then count, which can't fail.
	 * Events of one batch mostly repeat the codes of the one before.
	 */
	for (size_t i = 0; i < n; i++) {
		int64_t svc, reg, cut;

		if (i > 0 && ev[i].service_len == ev[i - 1].service_len &&
		    memcmp(ev[i].service, ev[i - 1].service,
		    ev[i].service_len) == 0)
			svc = a->ids[3 * i - 3];
		else
			svc = intern(&a->codes, ev[i].service,
			    ev[i].service_len);
		if (i > 0 && ev[i].region_len == ev[i - 1].region_len &&
		    memcmp(ev[i].region, ev[i - 1].region,
		    ev[i].region_len) == 0) {
			reg = a->ids[3 * i - 2];
			cut = a->ids[3 * i - 1];
		} else {
			reg = intern(&a->codes, ev[i].region, ev[i].region_len);
			cut = refs == 0 || reg < 0 ? reg : cut_region(a, reg,
			    &ev[i]);
		}
		if (svc < 0 || reg < 0 || cut < 0)
			goto out;
		a->ids[3 * i] = (uint32_t)svc;
		a->ids[3 * i + 1] = (uint32_t)reg;
		a->ids[3 * i + 2] = (uint32_t)cut;
	}

	if (b != NULL) {
		int64_t src = intern(&a->codes, b->source, b->source_len);
		struct batch_ent *e;

		if (src < 0)
			goto out;
		e = &t->batches[t->nbatches++];
		memcpy(e->digest, b->digest, 16);
		e->start = b->start;
		e->source = (uint32_t)src;
		e->pad = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct key k;
		struct slot *s;

		memset(&k, 0, sizeof(k));
		k.hour = (uint32_t)(ev[i].occurred_at_ms / MS_PER_HOUR);
		k.service = a->ids[3 * i];
		k.region = a->ids[3 * i + 1];
		k.channel = ev[i].channel;
		k.outcome = ev[i].outcome;
		k.assisted = ev[i].assisted != 0;
		s = table_find(t, &k);
		if (s->events == 0) {
			s->k = k;
			t->n++;
			hours[k.hour % AGG_LATE_HOURS] = k.hour + 1;
		}
		if (k.hour < now_hour &&
		    a->flushed[k.hour % AGG_LATE_HOURS] == k.hour + 1)
			a->late++;
		s->events++;
		if (ev[i].duration_ms != 0) {
			s->duration_ms_sum += ev[i].duration_ms;
			s->duration_events++;
		}
		if (refs > 0 && ev[i].has_ref)
			sketch_add(a, t, &ev[i], a->ids[3 * i], a->ids[3 * i + 2],
			    b->reach_key_id);
	}
	if (position > a->position)
		a->position = position;
	rc = 0;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

struct agg_table *
agg_freeze(struct agg *a, uint64_t *position)
{
	struct agg_table *t;

	pthread_mutex_lock(&a->mu);
	if (a->frozen == NULL) {
		a->frozen = a->active;
		a->frozen_position = a->position;
		a->active = a->frozen == &a->tables[0] ? &a->tables[1]
		    : &a->tables[0];
	}
	t = a->frozen;
	*position = a->frozen_position;
	pthread_mutex_unlock(&a->mu);
	return t;
}

void
agg_release(struct agg *a, struct agg_table *t)
{
	pthread_mutex_lock(&a->mu);
	if (t == a->frozen) {
		uint32_t *hours = a->hours[t - a->tables];

		/* Its hours are in PostgreSQL now; a newer hour wins a slot. */
		for (size_t i = 0; i < AGG_LATE_HOURS; i++)
			if (hours[i] > a->flushed[i])
				a->flushed[i] = hours[i];
		memset(hours, 0, sizeof(a->hours[0]));
		table_clear(t);
		sketch_clear(t);
		a->frozen = NULL;
	}
	pthread_mutex_unlock(&a->mu);
}

size_t
agg_table_keys(const struct agg_table *t)
{
	return t->n;
}

void
agg_table_foreach(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const struct agg_row *row), void *arg)
{
	for (size_t i = 0; i < t->cap; i++) {
		const struct slot *s = &t->slots[i];
		struct agg_row row;

		if (s->events == 0)
			continue;
		row.bucket = (int64_t)s->k.hour * 3600;
		row.service = intern_str(&a->codes, s->k.service);
		row.region = intern_str(&a->codes, s->k.region);
		row.channel = s->k.channel;
		row.outcome = s->k.outcome;
		row.assisted = s->k.assisted;
		row.events = s->events;
		row.duration_ms_sum = s->duration_ms_sum;
		row.duration_events = s->duration_events;
		fn(arg, &row);
	}
}

size_t
agg_table_batches(const struct agg_table *t)
{
	return t->nbatches;
}

void
agg_table_foreach_batch(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const uint8_t digest[16], const char *source,
    uint64_t start), void *arg)
{
	for (size_t i = 0; i < t->nbatches; i++)
		fn(arg, t->batches[i].digest,
		    intern_str(&a->codes, t->batches[i].source),
		    t->batches[i].start);
}

size_t
agg_keys(struct agg *a)
{
	size_t n;

	pthread_mutex_lock(&a->mu);
	n = a->active->n + (a->frozen != NULL ? a->frozen->n : 0);
	pthread_mutex_unlock(&a->mu);
	return n;
}

uint64_t
agg_position(struct agg *a)
{
	uint64_t p;

	pthread_mutex_lock(&a->mu);
	p = a->position;
	pthread_mutex_unlock(&a->mu);
	return p;
}

void
agg_get_stats(struct agg *a, struct agg_stats *st)
{
	const struct agg_table *f;

	pthread_mutex_lock(&a->mu);
	f = a->frozen;
	st->keys = a->active->n + (f != NULL ? f->n : 0);
	st->late_events = a->late;
	st->sketches = a->active->sn + (f != NULL ? f->sn : 0);
	st->sketch_bytes = a->active->sketch_heap + a->active->scap *
	    sizeof(struct sketch_slot);
	if (f != NULL)
		st->sketch_bytes += f->sketch_heap + f->scap *
		    sizeof(struct sketch_slot);
	st->reach_adds = a->reach_adds;
	st->reach_dropped = a->reach_dropped;
	pthread_mutex_unlock(&a->mu);
}

size_t
agg_table_sketches(const struct agg_table *t)
{
	return t->sn;
}

void
agg_table_foreach_sketch(const struct agg *a, const struct agg_table *t,
    void (*fn)(void *arg, const struct agg_sketch *s), void *arg)
{
	for (size_t i = 0; i < t->scap; i++) {
		const struct sketch_slot *s = &t->sketches[i];
		struct agg_sketch row;

		if (!s->k.used)
			continue;
		row.day = s->k.day;
		row.service = intern_str(&a->codes, s->k.service);
		row.region = intern_str(&a->codes, s->k.region);
		row.channel = s->k.channel;
		row.reach_key_id = s->k.reach_key_id;
		row.hll = &s->h;
		fn(arg, &row);
	}
}
