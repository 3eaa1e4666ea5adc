/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena: see arena.h. Blocks double in size from 64 KiB; on reset every
 * block but the largest is freed, so a steady stream of similar requests
 * settles on one block and no malloc at all.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define FIRST_BLOCK (64 * 1024)
#define ALIGN 16

struct block {
	struct block *next;
	size_t size;		/* usable bytes after the header */
	size_t used;
	_Alignas(ALIGN) unsigned char data[];
};

struct arena {
	struct block *head;	/* newest block first */
	size_t limit;
	size_t used;
	ProtobufCAllocator pa;
};

static void *
pa_alloc(void *ctx, size_t size)
{
	return arena_alloc(ctx, size);
}

static void
pa_free(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

struct arena *
arena_new(size_t limit)
{
	struct arena *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->limit = limit;
	a->pa.alloc = pa_alloc;
	a->pa.free = pa_free;
	a->pa.allocator_data = a;
	return a;
}

void
arena_free(struct arena *a)
{
	struct block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void
arena_reset(struct arena *a)
{
	struct block *b, *next, *keep = a->head;

	if (keep == NULL)
		return;
	for (b = keep->next; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	keep->next = NULL;
	keep->used = 0;
	a->used = 0;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	struct block *b = a->head;
	size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	void *p;

	if (need < size || need > a->limit - a->used || a->used > a->limit)
		return NULL;
	if (b == NULL || b->size - b->used < need) {
		size_t bsize = b != NULL ? b->size * 2 : FIRST_BLOCK;
		while (bsize < need)
			bsize *= 2;
		b = malloc(sizeof(*b) + bsize);
		if (b == NULL)
			return NULL;
		b->size = bsize;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	p = b->data + b->used;
	b->used += need;
	a->used += need;
	return p;
}

ProtobufCAllocator *
arena_allocator(struct arena *a)
{
	return &a->pa;
}

size_t
arena_used(const struct arena *a)
{
	return a->used;
}
