/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sendfile: `kanalctl send --csv FILE` and `--jsonl FILE`, bulk sending.
 *
 * Reads the input once, as a stream (a file or standard input), and sends
 * it in batches of batch_size events: CSV rows become protobuf events
 * (csv.h); JSONL lines, one ServiceEvent each in the proto3 JSON mapping,
 * are sent as JSON. A row or line that cannot be read is rejected here
 * with its line number and not sent; the others still go. kanald's
 * rejections are mapped back from event indexes to line numbers.
 *
 * batch_id: prefix + "-" + the batch's number (from 1). Without a prefix
 * it is a hash of the input the batch was made from (the CSV header and
 * its lines) and the number, so sending the same file again with the same
 * batch size, within kanald's dedup window, is answered "duplicate" and
 * counts nothing twice; a file that grew at its end sends its new batches
 * only (its last old batch again, if that one grew).
 */
#ifndef KANAL_SENDFILE_H
#define KANAL_SENDFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sendfile_format { SENDFILE_CSV, SENDFILE_JSONL };

struct sendfile_config {
	enum sendfile_format format;
	const char *path;	/* "-": standard input */
	const char *url;
	const char *cacert;	/* CA file for https://; NULL: system's */
	const char *token;
	size_t batch_size;	/* 1 .. SENDFILE_BATCH_MAX */
	const char *prefix;	/* NULL: hashes (above) */
	int retries;		/* tries after the first, per batch */
	unsigned retry_for_s;	/* per batch: no try starts after this */
	int progress;		/* draw a progress bar on err */
	FILE *out;		/* the summary */
	FILE *err;		/* messages and the progress bar */
};

/* kanald's default max-batch-events. */
#define SENDFILE_BATCH_MAX 10000
/* The longest prefix that leaves room for "-" and a batch number. */
#define SENDFILE_PREFIX_MAX 48

/*
 * Sends the input. Returns the exit status: 0 every row accepted, 3 some
 * rejected (here or by kanald), 1 a failure (the summary says what was
 * sent before it), 2 the input's header or the arguments are wrong.
 */
int sendfile_run(const struct sendfile_config *cfg);

/* Characters in the progress bar. */
#define SENDFILE_BAR 24

/*
 * The progress bar for bytes read of a file of size bytes (size 0:
 * unknown, an empty bar): '#' done, '.' to go, and the percentage. A file
 * that grew while it was read shows as full, never more.
 */
void sendfile_bar(char bar[SENDFILE_BAR + 1], uint64_t bytes, uint64_t size,
    unsigned *pct);

#endif
