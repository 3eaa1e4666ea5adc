/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adopt: see adopt.h.
 */
#include "adopt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agg.h"
#include "clock.h"
#include "flush.h"
#include "ledger.h"
#include "record.h"
#include "wal.h"

struct adopt {
	const struct adopt_config *c;
	FILE *out, *err;
	struct agg *agg;
	struct flush *flush;
	uint64_t checkpoint;	/* found in PostgreSQL at the first contact */
	int have_checkpoint;
	struct agg_event *scratch;
	size_t scratch_cap;
	uint64_t batches, events, skipped, pending;
	uint64_t end;		/* of the last record added */
	int failed;		/* a flush gave up: stop adding */
	int alive;		/* the lease is held by another process */
};

/* The flush's first contact: remember where the collector had got to. */
static int
on_checkpoint(void *arg, uint64_t checkpoint, char *err, size_t errlen)
{
	struct adopt *ad = arg;

	(void)err;
	(void)errlen;
	ad->checkpoint = checkpoint;
	ad->have_checkpoint = 1;
	return 0;
}

/*
 * Flushes until what agg holds is committed, retrying with back-off up to
 * the deadline. 0, or -1 (ad->alive set when the lease is refused).
 */
static int
flush_all(struct adopt *ad)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ad->c->deadline_s * 1000;
	uint64_t wait = 250;

	for (;;) {
		int rc = flush_once(ad->flush);

		if (rc == -2) {
			ad->alive = 1;
			return -1;
		}
		if (rc == 0 && agg_keys(ad->agg) == 0)
			return 0;
		if (rc == 0)
			continue;
		if (clock_mono_ms() + wait > end) {
			fprintf(ad->err, "kanalctl wal adopt: PostgreSQL did not "
			    "take the counts within %u s (see the log lines "
			    "above); what was committed stays counted, run "
			    "again to go on\n", ad->c->deadline_s);
			return -1;
		}
		struct timespec ts = { (time_t)(wait / 1000),
		    (long)(wait % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		if (wait < 4000)
			wait *= 2;
	}
}

static void
add_record(void *arg, const struct wal_record *rec)
{
	struct adopt *ad = arg;
	int rc;

	if (ad->failed || rec->start < ad->checkpoint)
		return;
	rc = record_apply(ad->agg, rec, &ad->scratch, &ad->scratch_cap);
	if (rc == -2) {
		fprintf(ad->err, "kanalctl wal adopt: out of memory at WAL "
		    "position %" PRIu64 "\n", rec->start);
		ad->failed = 1;
		return;
	}
	if (rc == -1) {
		ad->skipped++;
		return;
	}
	if (rec->type != RECORD_TYPE_BATCH)
		return;
	{
		struct record_batch b;
		size_t off;

		if (record_batch_decode(rec->payload, rec->len, &b, &off) == 0)
			ad->events += b.accepted;
	}
	ad->batches++;
	ad->end = rec->end;
	if (++ad->pending >= ADOPT_CHUNK_BATCHES) {
		ad->pending = 0;
		if (flush_all(ad) == -1)
			ad->failed = 1;
	}
}

/* The collector id written in the WAL's segments; -1 when none. */
static int
wal_owner(const char *dir, char *owner, size_t len, FILE *err)
{
	char e[512];
	struct wal_reader *r = wal_reader_open(dir, e, sizeof(e));

	if (r == NULL) {
		fprintf(err, "kanalctl wal adopt: cannot read %s\n", e);
		return -1;
	}
	if (wal_reader_segments(r) == 0) {
		fprintf(err, "kanalctl wal adopt: %s holds no WAL segment: "
		    "nothing to adopt (is it the dead instance's --wal-dir?)\n",
		    dir);
		wal_reader_free(r);
		return -1;
	}
	{
		struct wal_record rec;
		struct wal_damage d;

		/* Reading the first record maps the first segment's header. */
		(void)wal_reader_next(r, &rec, &d);
	}
	snprintf(owner, len, "%s", wal_reader_collector(r));
	wal_reader_free(r);
	return 0;
}

int
adopt_run(const struct adopt_config *c, FILE *out, FILE *err)
{
	struct adopt ad;
	struct wal *w = NULL;
	char e[1024], owner[128], by[256], host[128];
	int status = 1;

	memset(&ad, 0, sizeof(ad));
	ad.c = c;
	ad.out = out;
	ad.err = err;
	if (wal_owner(c->wal_dir, owner, sizeof(owner), err) == -1)
		return 1;
	if (owner[0] != '\0' && strcmp(owner, c->collector_id) != 0) {
		fprintf(err, "kanalctl wal adopt: the WAL in %s belongs to "
		    "collector \"%s\", not \"%s\": name the collector whose "
		    "WAL it is\n", c->wal_dir, owner, c->collector_id);
		return 1;
	}
	{
		struct wal_config wc = {
			.dir = c->wal_dir,
			.collector_id = c->collector_id,
			.segment_size = 64ULL << 20,
			.max_size = UINT64_MAX,
		};

		w = wal_open(&wc, e, sizeof(e));
		if (w == NULL) {
			fprintf(err, "kanalctl wal adopt: %s\n", e);
			/* The directory lock: a kanald runs on it. */
			return strstr(e, "in use by another process") != NULL ?
			    ADOPT_EXIT_ALIVE : 1;
		}
	}
	ad.agg = agg_new();
	{
		struct flush_config fc = {
			.conninfo = c->pg,
			.collector_id = c->collector_id,
			.interval_ms = 1000,
			.max_backoff_ms = 4000,
			.wal_dir = c->wal_dir,
			.lease_grace_ms = 5000,
			.on_checkpoint = on_checkpoint,
			.arg = &ad,
		};

		if (ad.agg != NULL)
			ad.flush = flush_new(ad.agg, &fc);
	}
	if (ad.agg == NULL || ad.flush == NULL) {
		fprintf(err, "kanalctl wal adopt: out of memory\n");
		goto out;
	}
	/* The first contact: the lease, the collector's checkpoint. */
	if (flush_all(&ad) == -1)
		goto out;
	fprintf(out, "adopting: collector_id=%s wal_dir=%s checkpoint=%" PRIu64
	    "\n", c->collector_id, c->wal_dir, ad.checkpoint);
	if (wal_scan(w, ad.checkpoint, add_record, &ad, e, sizeof(e)) == -1) {
		fprintf(err, "kanalctl wal adopt: the WAL is damaged: %s\n", e);
		goto out;
	}
	if (ad.failed || flush_all(&ad) == -1)
		goto out;
	{
		struct flush_stats st;
		PGconn *conn;
		const char *keys[] = { "dbname", "application_name", NULL };
		const char *vals[] = { c->pg, "kanalctl wal adopt", NULL };

		flush_get_stats(ad.flush, &st);
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "?");
		host[sizeof(host) - 1] = '\0';
		snprintf(by, sizeof(by), "kanalctl wal adopt on %s", host);
		/*
		 * On a connection of its own while the flush's session still
		 * holds the lease: no kanald can start under this id between
		 * the last count and the mark.
		 */
		conn = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(conn) != CONNECTION_OK ||
		    ledger_retire(conn, c->collector_id, by, e, sizeof(e)) == -1) {
			fprintf(err, "kanalctl wal adopt: everything is counted, "
			    "but marking the collector retired failed: %s; run "
			    "again to mark it\n", PQstatus(conn) ==
			    CONNECTION_OK ? e : PQerrorMessage(conn));
			PQfinish(conn);
			goto out;
		}
		PQfinish(conn);
		fprintf(out, "adopted: collector_id=%s batches=%" PRIu64
		    " events=%" PRIu64 " counted_elsewhere=%" PRIu64
		    " skipped_records=%" PRIu64 " checkpoint=%" PRIu64 "\n"
		    "collector %s is retired: kanald refuses to run under it "
		    "again. Everything in %s\nis counted; the directory may be "
		    "deleted.\n", c->collector_id, ad.batches, ad.events,
		    st.ledger_duplicates, ad.skipped,
		    ad.end > ad.checkpoint ? ad.end : ad.checkpoint,
		    c->collector_id, c->wal_dir);
	}
	status = 0;
out:
	if (ad.alive) {
		fprintf(err, "kanalctl wal adopt: collector %s is alive or "
		    "retired (see the log line above): a kanald holds its "
		    "lease in PostgreSQL. Stop it (or let it die) first, "
		    "then run this again\n", c->collector_id);
		status = ADOPT_EXIT_ALIVE;
	}
	flush_free(ad.flush);
	wal_close(w);
	agg_free(ad.agg);
	free(ad.scratch);
	return status;
}
