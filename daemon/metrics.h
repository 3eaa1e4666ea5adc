/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: GET /metrics, the counters of every module in the Prometheus
 * text exposition format (version 0.0.4), with HELP and TYPE lines.
 * docs/metrics.md lists each metric, its type, labels and meaning.
 *
 * The caller (main.c, on the loop thread) fills a snapshot from the
 * modules' get_stats calls, each a consistent copy under that module's
 * lock; metrics_render only formats it. Rendering is a pure function of
 * the snapshot, so the whole output can be checked against a golden text.
 * Nothing here is on the path of an event.
 */
#ifndef KANAL_METRICS_H
#define KANAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "dedup.h"
#include "flush.h"
#include "httpd.h"
#include "ingest.h"
#include "wal.h"

struct evbuffer;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_snapshot {
	const char *version;		/* kanal_build_info's label */
	int64_t start_time_ms;		/* process start, Unix ms */
	size_t inflight;		/* ingest_inflight */
	struct ingest_stats ingest;
	struct wal_stats wal;
	struct flush_stats flush;
	struct agg_stats agg;
	struct dedup_stats dedup;
	struct httpd_stats http;
	int reach_on;			/* reach-key-file loaded */
};

/*
 * Appends the exposition text of s to out. Returns 0, or -1 when out of
 * memory (out then holds part of the text: drain it).
 */
int metrics_render(const struct metrics_snapshot *s, struct evbuffer *out);

/*
 * Bytes of WAL not yet confirmed by a PostgreSQL checkpoint: the durable
 * end minus the committed checkpoint, or, before the database was first
 * reached (checkpoint unknown), everything the WAL holds.
 */
uint64_t metrics_checkpoint_lag(const struct metrics_snapshot *s);

#endif
