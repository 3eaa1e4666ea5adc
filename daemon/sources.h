/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sources: who may send events, and which services each may report.
 *
 * The sources file is the only place tokens live, and only as SHA-256
 * digests. One source per line:
 *
 *     NAME  sha256:HEX64  PATTERN[,PATTERN...]
 *
 * NAME is 1..63 of [A-Za-z0-9._-]. A PATTERN is a service code or a prefix
 * ending in '*' ("dukcapil.*"; "*" alone allows every service). '#' starts
 * a comment. The same NAME may appear on several lines with different
 * tokens: that is how a token is rotated (both work until the old line is
 * removed). Two lines with the same digest are an error.
 *
 * A loaded struct sources is immutable, so the event loop can use it while
 * a reload builds the next one.
 */
#ifndef KANAL_SOURCES_H
#define KANAL_SOURCES_H

#include <stddef.h>
#include <stdio.h>

struct sources;
struct source;

/*
 * Parse a sources file. On error NULL is returned and every problem was
 * printed to errs as "PATH:LINE: what is wrong, what to do".
 */
struct sources *sources_load(const char *path, FILE *errs);
/* The same from memory; name is used in messages. text need not end in NUL. */
struct sources *sources_parse(const char *text, size_t len, const char *name,
    FILE *errs);
void sources_free(struct sources *s);
size_t sources_count(const struct sources *s);

/*
 * The source whose token this is, or NULL. The token is hashed and compared
 * with every digest in constant time, so the time taken says nothing about
 * which digest is near. The result lives as long as *s.
 */
const struct source *sources_auth(const struct sources *s, const char *token,
    size_t len);

/* 1 if the source may report this service code, else 0. */
int source_allows(const struct source *src, const char *service, size_t len);
const char *source_name(const struct source *src);

/* SHA-256 of data as 64 lowercase hex digits and a NUL (65 bytes). */
void sources_digest_hex(const void *data, size_t len, char out[65]);

#endif
