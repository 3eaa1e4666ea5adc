/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena: a bump allocator reset once per request.
 *
 * protobuf-c allocates for every message, string, bytes and repeated field
 * it unpacks; an arena makes each of those a pointer bump, makes freeing
 * the whole request one reset, and caps how much memory one request can
 * take (an allocation over the limit fails, and unpack fails cleanly).
 * Not thread-safe: one arena per thread.
 */
#ifndef KANAL_ARENA_H
#define KANAL_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct arena;

/* limit: most bytes handed out between resets. NULL on out-of-memory. */
struct arena *arena_new(size_t limit);
/* arena_free(NULL) is a no-op. */
void arena_free(struct arena *a);
/* Forget every allocation; keeps the first block for the next request. */
void arena_reset(struct arena *a);
/* 16-byte aligned memory, or NULL when over the limit or out of memory. */
void *arena_alloc(struct arena *a, size_t size);
/* An allocator for protobuf_c unpack whose free does nothing. */
ProtobufCAllocator *arena_allocator(struct arena *a);
/* Bytes handed out since the last reset. */
size_t arena_used(const struct arena *a);

#endif
