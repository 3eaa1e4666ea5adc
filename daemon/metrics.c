/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: see metrics.h.
 *
 * Naming follows Prometheus's conventions: a kanal_ prefix, base units in
 * the name (_seconds, _bytes), counters end in _total, one metric per
 * meaning with labels for its parts (kanal_events_total{result=...}).
 * Every labelled series is written even at 0, so that a rate() or an
 * alert sees it from the first scrape. Numbers are formatted from
 * integers (seconds from microseconds as "S.UUUUUU"): no floating point,
 * and the same snapshot always gives the same text.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "histogram.h"
#include "reachdb.h"
#include "validate.h"

struct out {
	struct evbuffer *buf;
	int failed;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->failed)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->buf, fmt, ap) < 0)
		o->failed = 1;
	va_end(ap);
}

static void
head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One unlabelled sample, with its HELP and TYPE. */
static void
scalar(struct out *o, const char *name, const char *type, const char *help,
    uint64_t v)
{
	head(o, name, type, help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

/*
 * Microseconds as decimal seconds, trailing zeros of the fraction cut:
 * 2500000 -> "2.5", 100 -> "0.0001", 10000000 -> "10".
 */
static void
seconds(char *buf, size_t len, uint64_t us)
{
	char frac[8];
	size_t n;

	snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000);
	for (n = 6; n > 0 && frac[n - 1] == '0'; n--)
		;
	frac[n] = '\0';
	snprintf(buf, len, "%" PRIu64 "%s%s", us / 1000000, n > 0 ? "." : "",
	    frac);
}

static void
histogram(struct out *o, const char *name, const char *help,
    const struct histogram *h)
{
	char le[32], sum[32];

	head(o, name, "histogram", help);
	for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
		seconds(le, sizeof(le), histogram_bounds_us[i]);
		put(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le,
		    histogram_cumulative(h, i));
	}
	put(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name,
	    histogram_cumulative(h, HISTOGRAM_BUCKETS));
	/* Always "S.UUUUUU" for the sum, so a scrape is easy to diff. */
	snprintf(sum, sizeof(sum), "%" PRIu64 ".%06" PRIu64,
	    h->sum_us / 1000000, h->sum_us % 1000000);
	put(o, "%s_sum %s\n", name, sum);
	put(o, "%s_count %" PRIu64 "\n", name, h->count);
}

/* A label value as the text format wants it: \, " and newline escaped. */
static void
label_value(char *buf, size_t len, const char *v)
{
	size_t n = 0;

	for (; *v != '\0' && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			buf[n++] = '\\';
			buf[n++] = *v;
		} else if (*v == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *v;
		}
	}
	buf[n] = '\0';
}

uint64_t
metrics_checkpoint_lag(const struct metrics_snapshot *s)
{
	uint64_t from = s->flush.db_reached ? s->flush.checkpoint :
	    s->wal.first;

	return s->wal.durable > from ? s->wal.durable - from : 0;
}

static void
render_ingest(struct out *o, const struct metrics_snapshot *s)
{
	const struct ingest_stats *in = &s->ingest;
	uint64_t rejected = 0;

	for (size_t i = 0; i < INGEST_REASONS; i++)
		rejected += in->events_rejected[i];
	head(o, "kanal_events_total", "counter", "Events answered, by result: "
	    "accepted (durable and acknowledged), rejected (with a reason "
	    "code), duplicate (in a retried batch, not counted again).");
	put(o, "kanal_events_total{result=\"accepted\"} %" PRIu64 "\n",
	    in->events_accepted);
	put(o, "kanal_events_total{result=\"rejected\"} %" PRIu64 "\n",
	    rejected);
	put(o, "kanal_events_total{result=\"duplicate\"} %" PRIu64 "\n",
	    in->events_duplicate);

	head(o, "kanal_rejections_total", "counter", "Events rejected, by "
	    "reason code (the code in BatchAck.rejections).");
	/* Reason 0 means "not rejected"; the names end at "unknown". */
	for (size_t i = 1; i < INGEST_REASONS; i++) {
		const char *name = validate_reason_name(
		    (Kanal__V1__RejectReason)i);
		if (strcmp(name, "unknown") == 0)
			break;
		put(o, "kanal_rejections_total{code=\"%s\"} %" PRIu64 "\n",
		    name, in->events_rejected[i]);
	}

	head(o, "kanal_batches_total", "counter", "POST /v1/events requests "
	    "answered, by result: ok and duplicate (200), client_error "
	    "(4xx but 429), rate_limited (429, the source is over its rate "
	    "limit), unavailable (503, retry later).");
	put(o, "kanal_batches_total{result=\"ok\"} %" PRIu64 "\n",
	    in->batches_ok);
	put(o, "kanal_batches_total{result=\"duplicate\"} %" PRIu64 "\n",
	    in->batches_duplicate);
	put(o, "kanal_batches_total{result=\"client_error\"} %" PRIu64 "\n",
	    in->batches_client_error);
	put(o, "kanal_batches_total{result=\"rate_limited\"} %" PRIu64 "\n",
	    in->batches_rate_limited);
	put(o, "kanal_batches_total{result=\"unavailable\"} %" PRIu64 "\n",
	    in->batches_unavailable);
	scalar(o, "kanal_inflight_requests", "gauge", "Requests waiting for "
	    "their events to be durable in the write-ahead log.",
	    s->inflight);
}

static void
render_wal(struct out *o, const struct metrics_snapshot *s)
{
	scalar(o, "kanal_wal_bytes", "gauge", "Bytes of write-ahead log "
	    "segments on disk.", s->wal.bytes);
	scalar(o, "kanal_wal_segments", "gauge", "Write-ahead log segments "
	    "on disk.", s->wal.segments);
	scalar(o, "kanal_wal_full", "gauge", "1 while the write-ahead log is "
	    "full and batches are answered 503, else 0.",
	    s->wal.full ? 1 : 0);
	scalar(o, "kanal_wal_failed", "gauge", "1 once a write or fdatasync "
	    "of the write-ahead log failed (batches are answered 503 until a "
	    "restart), else 0.", s->wal.failed ? 1 : 0);
	scalar(o, "kanal_disk_full", "gauge", "1 after a write of the "
	    "write-ahead log or batches.idx met a full disk (ENOSPC, EDQUOT), "
	    "until one succeeds; /readyz is 503 meanwhile unless the disk has "
	    "4 MiB free again. Else 0.",
	    s->wal.no_space || s->dedup.no_space ? 1 : 0);
	histogram(o, "kanal_wal_sync_seconds", "Time to write and fdatasync "
	    "one group commit of the write-ahead log.", &s->wal.sync_us);
	scalar(o, "kanal_checkpoint_lag_bytes", "gauge", "Bytes of durable "
	    "write-ahead log after the checkpoint committed in PostgreSQL "
	    "(all of it until the database was first reached).",
	    metrics_checkpoint_lag(s));
}

static void
render_flush(struct out *o, const struct metrics_snapshot *s)
{
	histogram(o, "kanal_flush_seconds", "Time to write one committed "
	    "flush to PostgreSQL, COPY data built to COMMIT.",
	    &s->flush.duration_us);
	scalar(o, "kanal_flushes_total", "counter", "Flush transactions "
	    "committed.", s->flush.flushes);
	scalar(o, "kanal_flush_rows_total", "counter", "Rollup rows upserted "
	    "by committed flushes.", s->flush.rows);
	scalar(o, "kanal_database_errors_total", "counter", "Flush attempts "
	    "that failed: PostgreSQL unreachable, or an error in the "
	    "transaction (the counts are kept and retried).",
	    s->flush.errors);
	scalar(o, "kanal_database_up", "gauge", "1 while kanald holds a "
	    "working connection to PostgreSQL, else 0.",
	    s->flush.connected ? 1 : 0);
	scalar(o, "kanal_rollup_keys", "gauge", "Rollup keys held in memory, "
	    "not yet committed to PostgreSQL.", s->agg.keys);
	scalar(o, "kanal_late_events_total", "counter", "Events added for a "
	    "past hour that a flush had already written to PostgreSQL.",
	    s->agg.late_events);
	scalar(o, "kanal_reach_enabled", "gauge", "1 when kanald has a reach "
	    "key (reach-key-file) and counts distinct residents from "
	    "citizen_ref; 0: reach off, citizen_refs are checked and dropped.",
	    s->reach_on ? 1 : 0);
	head(o, "kanal_reach_database", "gauge", "1 for what the database "
	    "said of reach when last asked (on connecting, then every minute "
	    "while not active): active (this key is the "
	    "active one), other_key or retired (sketches not written), "
	    "no_tables (migration 010 not applied: no hll extension), error "
	    "(a reach query failed: see the log), off (no key here), unknown "
	    "(not connected yet).");
	for (int st = -1; st <= REACHDB_ERROR; st++)
		put(o, "kanal_reach_database{state=\"%s\"} %d\n", st < 0 ?
		    "unknown" : reachdb_state_name((enum reachdb_state)st),
		    s->flush.reach_state == st ? 1 : 0);
	scalar(o, "kanal_reach_sketches", "gauge", "Distinct-resident "
	    "sketches held in memory, not yet committed to PostgreSQL.",
	    s->agg.sketches);
	scalar(o, "kanal_reach_sketch_bytes", "gauge", "Memory of those "
	    "sketches: their table slots and registers.", s->agg.sketch_bytes);
	head(o, "kanal_reach_citizen_hashes_total", "counter", "Keyed "
	    "citizen_ref hashes of durable batches, by result: added to a "
	    "sketch, or dropped (out of memory).");
	put(o, "kanal_reach_citizen_hashes_total{result=\"added\"} %" PRIu64
	    "\n", s->agg.reach_adds);
	put(o, "kanal_reach_citizen_hashes_total{result=\"dropped\"} %"
	    PRIu64 "\n", s->agg.reach_dropped);
	scalar(o, "kanal_reach_sketch_rows_total", "counter", "Sketches "
	    "merged into PostgreSQL by committed flushes (daily rows; the "
	    "monthly rows are their union).", s->flush.reach_rows);
	scalar(o, "kanal_reach_sketches_dropped_total", "counter", "Sketches "
	    "a committed flush did not write: the database has no reach tables, "
	    "does not accept their key, or their upsert failed "
	    "(kanal_reach_database, the log).",
	    s->flush.reach_dropped);
	head(o, "kanal_duplicate_batches_total", "counter", "Retried batches "
	    "not counted again, by where they were recognised: local (this "
	    "instance's batch memory, answered duplicate=true) or ledger (at "
	    "flush: another instance had counted it; taken out of the flush).");
	put(o, "kanal_duplicate_batches_total{where=\"local\"} %" PRIu64 "\n",
	    s->ingest.batches_duplicate);
	put(o, "kanal_duplicate_batches_total{where=\"ledger\"} %" PRIu64
	    "\n", s->flush.ledger_duplicates);
	scalar(o, "kanal_ledger_batches_total", "counter", "Batches entered "
	    "in the fleet's ledger (kanal.batch_ledger) by committed flushes.",
	    s->flush.ledger_batches);
	scalar(o, "kanal_ledger_epoch_advances_total", "counter", "Times this "
	    "instance moved the ledger's epoch on and emptied the oldest slot.",
	    s->flush.ledger_epoch_advances);
	scalar(o, "kanal_collector_lease", "gauge", "1 while this instance "
	    "holds its collector_id's lease in PostgreSQL, else 0.",
	    s->flush.lease_held ? 1 : 0);
	scalar(o, "kanal_late_events_past_retention_total", "counter",
	    "Late events whose hour is older than the hourly tier keeps "
	    "(its month was dropped by retention): counted in the daily tier "
	    "and the monthly cells only.", s->flush.late_past_retention);
	scalar(o, "kanal_hourly_kept_from_seconds", "gauge", "Unix time of "
	    "the first hour kanal.usage_hourly keeps (earlier months were "
	    "dropped by retention); 0 while nothing was dropped.",
	    s->flush.hourly_kept_from == INT64_MIN ? 0 :
	    (uint64_t)s->flush.hourly_kept_from);
	scalar(o, "kanal_hourly_partitions_created_total", "counter",
	    "Monthly partitions of kanal.usage_hourly this instance made.",
	    s->flush.partitions_created);
	scalar(o, "kanal_hourly_partitions_dropped_total", "counter",
	    "Monthly partitions of kanal.usage_hourly this instance dropped "
	    "by retention (retention-hourly-days).",
	    s->flush.partitions_dropped);
	scalar(o, "kanal_hourly_default_partition_rows", "gauge", "Rows in "
	    "kanal.usage_hourly_default, last seen: hours whose month had no "
	    "partition when written (normally 0; moved out when it is made).",
	    s->flush.default_rows);
	scalar(o, "kanal_tier_maintenance_errors_total", "counter", "Failed "
	    "attempts to make hourly partitions or apply retention (flushes "
	    "go on; tried again later).", s->flush.maintenance_errors);
}

int
metrics_render(const struct metrics_snapshot *s, struct evbuffer *out)
{
	struct out o = { out, 0 };
	char version[128];

	label_value(version, sizeof(version), s->version != NULL ?
	    s->version : "");
	head(&o, "kanal_build_info", "gauge", "Always 1; the version of "
	    "kanald as a label.");
	put(&o, "kanal_build_info{version=\"%s\"} 1\n", version);
	head(&o, "process_start_time_seconds", "gauge", "Start time of the "
	    "process since the Unix epoch, in seconds.");
	put(&o, "process_start_time_seconds %" PRId64 ".%03d\n",
	    s->start_time_ms / 1000, (int)(s->start_time_ms % 1000));
	render_ingest(&o, s);
	render_wal(&o, s);
	render_flush(&o, s);
	scalar(&o, "kanal_dedup_entries", "gauge", "Batches remembered to "
	    "answer retries as duplicates.", s->dedup.entries);
	scalar(&o, "kanal_dedup_evicted_total", "counter", "Batches forgotten "
	    "before the end of the retry window for lack of room.",
	    s->dedup.evicted);
	scalar(&o, "kanal_http_connections", "gauge", "Client connections "
	    "open now.", s->http.connections);
	scalar(&o, "kanal_http_connections_max", "gauge", "The cap on open "
	    "client connections in force (max-connections, lowered to fit "
	    "the open-file limit).", s->http.max_connections);
	scalar(&o, "kanal_http_connections_refused_total", "counter",
	    "Connections accepted and closed at once because "
	    "kanal_http_connections was at the cap.", s->http.refused);
	scalar(&o, "kanal_http_requests_overdue_total", "counter",
	    "Connections closed because a request did not arrive whole "
	    "within the timeout.", s->http.overdue);
	return o.failed ? -1 : 0;
}
