/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flush: see flush.h.
 */
#include "flush.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agg.h"
#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "notify.h"
#include "pgcopy.h"
#include "reachdb.h"
#include "record.h"
#include "validate.h"

#define BACKOFF_FIRST_MS 500
/* Reach asked again every minute, or every 60 flushes when sooner. */
#define REACH_RECHECK_MS 60000
#define REACH_RECHECK_FLUSHES 60

struct flush {
	struct agg *agg;
	char *conninfo;
	char *collector_id;
	uint64_t interval_ms;
	uint64_t max_backoff_ms;

	int (*on_checkpoint)(void *, uint64_t, char *, size_t);
	void (*on_committed)(void *, uint64_t);
	void *cb_arg;

	char *wal_dir;
	uint64_t ledger_epoch_ms;
	uint64_t lease_grace_ms;
	char session_name[128];		/* application_name: ledger.h */
	uint64_t lease_refused_since;	/* monotonic ms; 0 = not refused */

	PGconn *conn;
	int replayed;			/* on_checkpoint done */
	int commit_unknown;		/* last COMMIT's outcome not known */
	uint64_t unknown_checkpoint;	/* what that COMMIT would have set */
	uint64_t backoff_ms;

	pthread_t thread;
	int running;
	pthread_mutex_t mu;		/* guards stop and stats */
	pthread_cond_t cond;
	int stop;
	struct flush_stats stats;

	char *buf;			/* COPY text of one flush */
	size_t len, cap;
	int buf_failed;

	struct ledger_batch *lb;	/* the batches of one flush */
	size_t nlb, lbcap;
	uint64_t *starts;		/* of those counted elsewhere */

	/* Tiers: see flush_config and schema/007_tiers.sql. */
	uint64_t event_max_age_ms;
	uint32_t hourly_days;
	int64_t maintain_next;		/* monotonic ms of the next run */
	int maintained;			/* on this connection */
	int64_t part_lo, part_hi;	/* hours with a partition for sure */
	int64_t ensure_retry_at;	/* monotonic ms, after a failure */
	int64_t kept_from;		/* of this flush: the hourly tier's start */
	int64_t min_bucket, max_bucket;	/* of this flush's rows */
	uint64_t sub_below;		/* events taken out below kept_from */
	char *tier_sql;			/* the tier upserts of one flush */
	size_t tier_sql_cap;
	struct reachdb reach;		/* the sketches' side */
	int64_t reach_recheck;		/* monotonic ms: see maintain() */
};

static const char staging_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS kanal_staging ("
    " bucket timestamptz, service_code text, channel text,"
    " region_code text, outcome text, assisted boolean, events bigint,"
    " duration_ms_sum bigint, duration_events bigint)"
    " ON COMMIT DELETE ROWS";

/*
 * The upserts of the tiers (hourly, daily and the monthly cells), sent as
 * one string (one round trip).
 * %s: the hourly tier's WHERE (rows before kept_from, whose month was
 * dropped, go to the other tiers only). The staging rows are the agg
 * table's keys, one row each, so the hourly upsert takes them as they are;
 * only when the ledger found batches counted elsewhere (their events added
 * to the staging rows as negative counts) does it sum per key first
 * (upsert_hourly_sum_fmt), like the other tiers always do, and a key that
 * only those batches had sums to zero and is left out. Rows in key order,
 * so that collectors upserting at once never wait on each other in a
 * cycle.
 */
#define TIER_SET \
    " DO UPDATE SET events = u.events + EXCLUDED.events," \
    " duration_ms_sum = u.duration_ms_sum + EXCLUDED.duration_ms_sum," \
    " duration_events = u.duration_events + EXCLUDED.duration_events"
#define TIER_SUMS \
    " sum(events), sum(duration_ms_sum), sum(duration_events)" \
    " FROM pg_temp.kanal_staging"
#define TIER_KEYS "service_code, channel, region_code, outcome, assisted"
#define TIER_COLS TIER_KEYS ", events, duration_ms_sum, duration_events"
#define TIER_ORDER " ORDER BY 1, 2, 3, 4, 5, 6"
#define TIER_GROUP " GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(events) > 0" TIER_ORDER

static const char upsert_hourly_fmt[] =
    "INSERT INTO kanal.usage_hourly AS u (bucket, " TIER_COLS ")"
    " SELECT bucket, " TIER_COLS " FROM pg_temp.kanal_staging%s" TIER_ORDER
    " ON CONFLICT (bucket, " TIER_KEYS ")" TIER_SET ";";

static const char upsert_hourly_sum_fmt[] =
    "INSERT INTO kanal.usage_hourly AS u (bucket, " TIER_COLS ")"
    " SELECT bucket, " TIER_KEYS "," TIER_SUMS "%s" TIER_GROUP
    " ON CONFLICT (bucket, " TIER_KEYS ")" TIER_SET ";";

static const char upsert_lower_sql[] =
    "INSERT INTO kanal.usage_daily AS u (day, " TIER_COLS ")"
    " SELECT (bucket AT TIME ZONE 'Asia/Jakarta')::date, " TIER_KEYS ","
    TIER_SUMS TIER_GROUP
    " ON CONFLICT (day, " TIER_KEYS ")" TIER_SET ";"
    /* The monthly cells (008): the indicators' counts per month, service
     * and region, each mode read from kanal.channel. */
    "INSERT INTO kanal.usage_monthly_cell AS u (month, service_code,"
    " region_code,"
    " events, digital_events, manual_events, assisted_events, completed_events,"
    " completed_digital, completed_self_service, concluded_events,"
    " duration_digital_ms,"
    " duration_digital_events, duration_manual_ms, duration_manual_events)"
    " SELECT date_trunc('month', s.bucket AT TIME ZONE 'Asia/Jakarta')::date,"
    " s.service_code, s.region_code,"
    " sum(s.events),"
    " coalesce(sum(s.events) FILTER (WHERE c.mode = 'digital'), 0),"
    " coalesce(sum(s.events) FILTER (WHERE c.mode = 'manual'), 0),"
    " coalesce(sum(s.events) FILTER (WHERE s.assisted), 0),"
    " coalesce(sum(s.events) FILTER (WHERE s.outcome = 'completed'), 0),"
    " coalesce(sum(s.events) FILTER (WHERE s.outcome = 'completed' AND c.mode ="
    " 'digital'), 0),"
    " coalesce(sum(s.events) FILTER (WHERE s.outcome = 'completed' AND c.mode ="
    " 'digital' AND NOT s.assisted), 0),"
    " coalesce(sum(s.events) FILTER (WHERE s.outcome IN ('completed',"
    " 'abandoned', 'failed')), 0),"
    " coalesce(sum(s.duration_ms_sum) FILTER (WHERE c.mode = 'digital'), 0),"
    " coalesce(sum(s.duration_events) FILTER (WHERE c.mode = 'digital'), 0),"
    " coalesce(sum(s.duration_ms_sum) FILTER (WHERE c.mode = 'manual'), 0),"
    " coalesce(sum(s.duration_events) FILTER (WHERE c.mode = 'manual'), 0)"
    " FROM pg_temp.kanal_staging s LEFT JOIN kanal.channel c ON c.code ="
    " s.channel"
    " GROUP BY 1, 2, 3 HAVING sum(s.events) > 0 ORDER BY 1, 2, 3"
    " ON CONFLICT (month, service_code, region_code) DO UPDATE SET"
    " events = u.events + EXCLUDED.events,"
    " digital_events = u.digital_events + EXCLUDED.digital_events,"
    " manual_events = u.manual_events + EXCLUDED.manual_events,"
    " assisted_events = u.assisted_events + EXCLUDED.assisted_events,"
    " completed_events = u.completed_events + EXCLUDED.completed_events,"
    " completed_digital = u.completed_digital + EXCLUDED.completed_digital,"
    " completed_self_service = u.completed_self_service +"
    " EXCLUDED.completed_self_service,"
    " concluded_events = u.concluded_events + EXCLUDED.concluded_events,"
    " duration_digital_ms = u.duration_digital_ms +"
    " EXCLUDED.duration_digital_ms,"
    " duration_digital_events = u.duration_digital_events +"
    " EXCLUDED.duration_digital_events,"
    " duration_manual_ms = u.duration_manual_ms + EXCLUDED.duration_manual_ms,"
    " duration_manual_events = u.duration_manual_events +"
    " EXCLUDED.duration_manual_events;"
    /* Cheap: the default partition's primary key, normally empty. */
    "SELECT floor(extract(epoch FROM min(bucket)))::bigint,"
    " floor(extract(epoch FROM max(bucket)))::bigint"
    " FROM kanal.usage_hourly_default";

/*
 * After ROW EXCLUSIVE on the parent alone, so retention (ACCESS EXCLUSIVE,
 * kept_from raised in the same transaction) either waits for this flush or
 * has committed before the second statement's snapshot.
 */
static const char kept_from_sql[] =
    "LOCK TABLE ONLY kanal.usage_hourly IN ROW EXCLUSIVE MODE;"
    " SELECT CASE WHEN kept_from = '-infinity' THEN NULL"
    " ELSE floor(extract(epoch FROM kept_from))::bigint END"
    " FROM kanal.hourly_retention";

/*
 * Compare and set, and first in the transaction: it takes the checkpoint
 * row's lock, so a retry waits behind a COMMIT of unknown outcome that is
 * still finishing, and then finds the checkpoint already at or past its
 * own and updates nothing (0 rows): the counts are in.
 */
static const char checkpoint_sql[] =
    "INSERT INTO kanal.collector_checkpoint AS c (collector_id,"
    " wal_position, updated_at) VALUES ($1, $2, now())"
    " ON CONFLICT (collector_id) DO UPDATE SET"
    " wal_position = EXCLUDED.wal_position, updated_at = now()"
    " WHERE c.wal_position < EXCLUDED.wal_position";

static const char checkpoint_read_sql[] =
    "SELECT wal_position FROM kanal.collector_checkpoint"
    " WHERE collector_id = $1";

/* First line of a libpq message, without the newline, for a log field. */
static const char *
pg_err(const PGconn *conn, char *buf, size_t len)
{
	const char *m = conn != NULL ? PQerrorMessage(conn) : "out of memory";

	snprintf(buf, len, "%s", m);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

struct flush *
flush_new(struct agg *a, const struct flush_config *cfg)
{
	struct flush *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->agg = a;
	f->interval_ms = cfg->interval_ms;
	f->max_backoff_ms = cfg->max_backoff_ms ? cfg->max_backoff_ms : 30000;
	f->on_checkpoint = cfg->on_checkpoint;
	f->on_committed = cfg->on_committed;
	f->cb_arg = cfg->arg;
	f->conninfo = strdup(cfg->conninfo != NULL ? cfg->conninfo : "");
	f->collector_id = strdup(cfg->collector_id);
	f->wal_dir = strdup(cfg->wal_dir != NULL ? cfg->wal_dir : "");
	f->ledger_epoch_ms = cfg->ledger_epoch_ms ? cfg->ledger_epoch_ms :
	    8 * 3600 * 1000;
	f->lease_grace_ms = cfg->lease_grace_ms;
	f->event_max_age_ms = cfg->event_max_age_ms ? cfg->event_max_age_ms :
	    7 * 24 * 3600 * 1000ULL;
	f->hourly_days = cfg->hourly_days;
	f->reach.reach_on = cfg->reach_on;
	f->reach.key_id = cfg->reach_key_id;
	f->reach.logged = (enum reachdb_state)-1;
	f->kept_from = INT64_MIN;
	f->stats.hourly_kept_from = INT64_MIN;
	f->stats.reach_state = -1;	/* not connected yet */
	{
		/* Tells this process's sessions from any other's. */
		uint64_t nonce = (uint64_t)clock_wall_ms() << 20 ^
		    (uint64_t)getpid() ^ (uint64_t)(uintptr_t)f;

		ledger_session_name(f->session_name, sizeof(f->session_name),
		    f->collector_id, nonce);
	}
	if (f->conninfo == NULL || f->collector_id == NULL ||
	    f->wal_dir == NULL)
		goto fail;
	if (pthread_mutex_init(&f->mu, NULL) != 0)
		goto fail;
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (pthread_cond_init(&f->cond, &ca) != 0) {
			pthread_condattr_destroy(&ca);
			pthread_mutex_destroy(&f->mu);
			goto fail;
		}
		pthread_condattr_destroy(&ca);
	}
	return f;
fail:
	free(f->conninfo);
	free(f->collector_id);
	free(f->wal_dir);
	free(f);
	return NULL;
}

static void
disconnect(struct flush *f)
{
	PQfinish(f->conn);
	f->conn = NULL;
	f->maintained = 0;
	f->part_lo = f->part_hi = 0;
	pthread_mutex_lock(&f->mu);
	f->stats.connected = 0;
	f->stats.lease_held = 0;
	pthread_mutex_unlock(&f->mu);
}

/*
 * The collector's lease (ledger.h), on a new connection. 0 taken; -1 not
 * now (try again); -2 refused for good.
 */
static int
take_lease(struct flush *f)
{
	char holder[512], e[512];
	uint64_t now = clock_mono_ms();

	switch (ledger_lease_take(f->conn, f->collector_id, f->session_name,
	    holder, sizeof(holder), e, sizeof(e))) {
	case LEASE_TAKEN:
		if (f->lease_refused_since != 0)
			log_notice("collector lease taken: collector_id=%s",
			    f->collector_id);
		f->lease_refused_since = 0;
		pthread_mutex_lock(&f->mu);
		f->stats.lease_held = 1;
		pthread_mutex_unlock(&f->mu);
		return 0;
	case LEASE_OURS_STALE:
		log_notice("an earlier session of this process still held the "
		    "collector lease; ended it: %s", holder);
		return -1;
	case LEASE_RETIRED:
		log_errx("collector_id=%s was retired (its write-ahead log was "
		    "adopted by kanalctl wal adopt): %s; start this kanald "
		    "with a new collector-id and an empty wal-dir",
		    f->collector_id, holder);
		goto refused;
	case LEASE_HELD:
		if (f->lease_refused_since == 0)
			f->lease_refused_since = now;
		if (now - f->lease_refused_since >= f->lease_grace_ms) {
			log_errx("another process writes as collector_id=%s: "
			    "%s; two kanald must not share a collector-id "
			    "(give each its own), and kanalctl wal adopt must "
			    "not run while the collector is alive",
			    f->collector_id, holder);
			goto refused;
		}
		log_warnx("the collector lease is held by another session; "
		    "waiting for it to end: collector_id=%s %s "
		    "gives_up_in_ms=%" PRIu64, f->collector_id, holder,
		    f->lease_grace_ms - (now - f->lease_refused_since));
		return -1;
	case LEASE_ERROR:
		break;
	}
	log_warnx("cannot take the collector lease (is the database migrated? "
	    "kanalctl migrate): err=\"%s\"", e);
	return -1;
refused:
	pthread_mutex_lock(&f->mu);
	f->stats.lease_refused = 1;
	pthread_mutex_unlock(&f->mu);
	return -2;
}

/* The collector's stored checkpoint: 0 and *pos, or -1 on error. */
static int
checkpoint_read(struct flush *f, uint64_t *pos)
{
	const char *params[1] = { f->collector_id };
	PGresult *r;
	int rc = -1;
	char e[256];

	r = PQexecParams(f->conn, checkpoint_read_sql, 1, NULL, params, NULL,
	    NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warnx("reading the checkpoint failed: err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		goto out;
	}
	*pos = PQntuples(r) == 0 ? 0 :
	    strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	rc = 0;
out:
	PQclear(r);
	return rc;
}

static int64_t
reach_recheck_ms(const struct flush *f)
{
	uint64_t ms = f->interval_ms * REACH_RECHECK_FLUSHES;

	return (int64_t)(ms < REACH_RECHECK_MS ? ms : REACH_RECHECK_MS);
}

/* 0 connected; -1 failed (try again); -2 the lease is refused for good. */
static int
connect_db(struct flush *f)
{
	/*
	 * application_name after dbname, which may be a whole conninfo:
	 * the lease holder's session must carry this process's name.
	 */
	const char *keys[] = { "connect_timeout", "dbname", "application_name",
	    NULL };
	const char *vals[] = { "10", f->conninfo, f->session_name, NULL };
	PGresult *r;
	char e[256];
	uint64_t pos;
	int rc = -1;

	f->conn = PQconnectdbParams(keys, vals, 1);
	if (f->conn == NULL || PQstatus(f->conn) != CONNECTION_OK) {
		log_warnx("cannot connect to PostgreSQL: err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		goto fail;
	}
	/*
	 * The server notices a dead connection (and ends its session, with
	 * the lease) within about 25 s over TCP, not the two hours of the
	 * kernel's default keepalive. Ignored on a Unix socket.
	 */
	r = PQexec(f->conn, "SET tcp_keepalives_idle = 10;"
	    " SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3");
	PQclear(r);
	r = PQexec(f->conn, staging_sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_warnx("cannot create the staging table: err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (ledger_prepare(f->conn, e, sizeof(e)) == -1) {
		log_warnx("cannot prepare the ledger: err=\"%s\"", e);
		goto fail;
	}
	if (reachdb_prepare(f->conn, &f->reach, e, sizeof(e)) == -1) {
		log_warnx("cannot prepare the reach sketches: err=\"%s\"", e);
		goto fail;
	}
	f->reach_recheck = clock_mono_ms() + reach_recheck_ms(f);
	pthread_mutex_lock(&f->mu);
	f->stats.reach_state = (int)f->reach.state;
	pthread_mutex_unlock(&f->mu);
	rc = take_lease(f);
	if (rc != 0)
		goto fail;
	rc = -1;
	if (checkpoint_read(f, &pos) == -1)
		goto fail;
	if (!f->replayed) {
		char why[512];

		log_info("connected to PostgreSQL: collector_id=%s "
		    "checkpoint=%" PRIu64, f->collector_id, pos);
		if (f->on_checkpoint != NULL &&
		    f->on_checkpoint(f->cb_arg, pos, why, sizeof(why)) == -1) {
			log_errx("cannot go on: %s", why);
			exit(3);
		}
		f->replayed = 1;
	}
	if (f->commit_unknown) {
		/*
		 * The last COMMIT may or may not have happened. Each flush
		 * writes a checkpoint higher than any before, so finding
		 * ours means the counts are in.
		 */
		f->commit_unknown = 0;
		if (pos == f->unknown_checkpoint) {
			uint64_t p;
			struct agg_table *t = agg_freeze(f->agg, &p);
			size_t nrows = agg_table_keys(t);
			log_notice("last commit had succeeded; not writing its "
			    "counts again: checkpoint=%" PRIu64, pos);
			agg_release(f->agg, t);
			pthread_mutex_lock(&f->mu);
			f->stats.flushes++;
			f->stats.rows += nrows;
			f->stats.checkpoint = pos;
			pthread_mutex_unlock(&f->mu);
			if (f->on_committed != NULL)
				f->on_committed(f->cb_arg, pos);
		} else {
			log_notice("last commit had not happened; writing its "
			    "counts again: checkpoint=%" PRIu64, pos);
		}
	}
	pthread_mutex_lock(&f->mu);
	f->stats.db_reached = 1;
	f->stats.connected = 1;
	if (f->stats.checkpoint < pos)
		f->stats.checkpoint = pos;
	pthread_mutex_unlock(&f->mu);
	return 0;
fail:
	PQfinish(f->conn);
	f->conn = NULL;
	pthread_mutex_lock(&f->mu);
	f->stats.lease_held = 0;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* One COPY line; sign -1 writes the counts negated (ledger duplicates). */
static void
buf_put_row(struct flush *f, const struct agg_row *row, int sign)
{
	struct tm tm;
	time_t t = (time_t)row->bucket;
	char ts[32];
	const char *minus = sign < 0 ? "-" : "";
	int n;

	if (f->buf_failed)
		return;
	/* Longest row: 64 + 13 + ~100 bytes of numbers and names. */
	if (f->cap - f->len < 512) {
		size_t ncap = f->cap ? f->cap * 2 : 1 << 16;
		char *nb = realloc(f->buf, ncap);
		if (nb == NULL) {
			f->buf_failed = 1;
			return;
		}
		f->buf = nb;
		f->cap = ncap;
	}
	if (sign > 0) {
		if (row->bucket < f->min_bucket)
			f->min_bucket = row->bucket;
		if (row->bucket > f->max_bucket)
			f->max_bucket = row->bucket;
	} else if (row->bucket < f->kept_from)
		f->sub_below += row->events;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:00:00+00", &tm);
	n = snprintf(f->buf + f->len, f->cap - f->len,
	    "%s\t%s\t%s\t%s\t%s\t%s\t%s%" PRIu64 "\t%s%" PRIu64 "\t%s%"
	    PRIu64 "\n", ts, row->service, validate_channel_name(row->channel),
	    row->region, validate_outcome_name(row->outcome),
	    row->assisted ? "t" : "f", minus, row->events, minus,
	    row->duration_ms_sum, minus, row->duration_events);
	f->len += (size_t)n;
}

static void
buf_add_row(void *arg, const struct agg_row *row)
{
	buf_put_row(arg, row, 1);
}

/* An event of a batch counted elsewhere: taken out of the staging rows. */
static void
buf_sub_event(void *arg, const struct record_batch *b,
    const struct agg_event *ev)
{
	struct flush *f = arg;
	char service[65], region[16];
	struct agg_row row;

	(void)b;
	/* Codes were checked by record_event_next: 64 and 13 bytes at most. */
	snprintf(service, sizeof(service), "%.*s", (int)ev->service_len,
	    ev->service);
	snprintf(region, sizeof(region), "%.*s", (int)ev->region_len,
	    ev->region);
	row.bucket = agg_hour_bucket(ev->occurred_at_ms);
	row.service = service;
	row.region = region;
	row.channel = ev->channel;
	row.outcome = ev->outcome;
	row.assisted = ev->assisted != 0;
	row.events = 1;
	row.duration_ms_sum = ev->duration_ms;
	row.duration_events = ev->duration_ms != 0;
	buf_put_row(f, &row, -1);
}

static void
lb_add(void *arg, const uint8_t digest[16], const char *source,
    uint64_t start)
{
	struct flush *f = arg;
	struct ledger_batch *b = &f->lb[f->nlb++];

	memcpy(b->digest, digest, 16);
	b->source = source;
	b->start = start;
	b->counted = 0;
}

static int
start_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/*
 * In the open transaction: claims t's batches in the ledger and appends
 * the events of those counted elsewhere, negated, to the COPY text.
 * Returns how many were counted elsewhere, or -1 (roll back). *advance:
 * the ledger's epoch is due to move on.
 */
static long
claim_batches(struct flush *f, struct agg_table *t, int *advance)
{
	size_t n = agg_table_batches(t), k = 0;
	long counted;
	char e[512];

	*advance = 0;
	if (n == 0)
		return 0;
	if (n > f->lbcap) {
		struct ledger_batch *nb = realloc(f->lb, n * sizeof(*nb));
		uint64_t *ns = realloc(f->starts, n * sizeof(*ns));

		if (nb != NULL)
			f->lb = nb;
		if (ns != NULL)
			f->starts = ns;
		if (nb == NULL || ns == NULL) {
			log_warnx("flush failed: err=\"out of memory\" "
			    "batches=%zu", n);
			return -1;
		}
		f->lbcap = n;
	}
	f->nlb = 0;
	agg_table_foreach_batch(f->agg, t, lb_add, f);
	counted = ledger_claim(f->conn, f->collector_id, f->lb, f->nlb,
	    f->ledger_epoch_ms, advance, e, sizeof(e));
	if (counted == -1) {
		log_warnx("flush failed at the ledger: err=\"%s\"", e);
		return -1;
	}
	if (counted == 0)
		return 0;
	for (size_t i = 0; i < f->nlb; i++)
		if (f->lb[i].counted)
			f->starts[k++] = f->lb[i].start;
	qsort(f->starts, k, sizeof(*f->starts), start_cmp);
	if (record_read_batches(f->wal_dir, f->starts, k, buf_sub_event, f,
	    e, sizeof(e)) == -1) {
		log_warnx("flush failed: a batch counted by another collector "
		    "must be taken out, but %s: wal_dir=%s", e, f->wal_dir);
		return -1;
	}
	if (f->buf_failed) {
		log_warnx("flush failed: err=\"out of memory\" keys=%zu",
		    agg_table_keys(t));
		return -1;
	}
	log_info("batches already counted by another collector taken out "
	    "of this flush: batches=%ld", counted);
	return counted;
}

/* ------------------------------------------------------------------ tiers */

#define DAY_MS (24LL * 3600 * 1000)
#define HOUR_MS (3600LL * 1000)

/* Unix seconds of the start of t's UTC month, moved on by add months. */
static int64_t
month_start(int64_t t, int add)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mon += add;
	return (int64_t)timegm(&tm);
}

static const char *
utc_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/*
 * Makes sure usage_hourly has the partitions of every UTC month from lo's
 * to hi's (Unix seconds). 0, or -1 (logged: those months' rows go to the
 * default partition, which loses nothing).
 */
static int
partitions_ensure(struct flush *f, int64_t lo, int64_t hi)
{
	char a[24], b[24], ta[32], tb[32], e[256];
	const char *params[2] = { a, b };
	PGresult *r;
	long made;

	if (f->part_lo < f->part_hi) {
		/* One contiguous span, so "covered" stays one interval. */
		if (f->part_lo < lo)
			lo = f->part_lo;
		if (f->part_hi - 1 > hi)
			hi = f->part_hi - 1;
	}
	snprintf(a, sizeof(a), "%" PRId64, lo);
	snprintf(b, sizeof(b), "%" PRId64, hi);
	r = PQexecParams(f->conn, "SELECT kanal.hourly_partitions_ensure("
	    "to_timestamp($1::bigint), to_timestamp($2::bigint))", 2, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warnx("cannot make the hourly partitions from %s to %s "
		    "(rows of those months go to kanal.usage_hourly_default "
		    "until they exist; is the database migrated? kanalctl "
		    "migrate): err=\"%s\"", utc_text(lo, ta, sizeof(ta)),
		    utc_text(hi, tb, sizeof(tb)), pg_err(f->conn, e, sizeof(e)));
		PQclear(r);
		f->ensure_retry_at = clock_mono_ms() + 60 * 1000;
		pthread_mutex_lock(&f->mu);
		f->stats.maintenance_errors++;
		pthread_mutex_unlock(&f->mu);
		return -1;
	}
	made = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (made > 0)
		log_info("hourly partitions made: count=%ld from=%s to=%s", made,
		    utc_text(month_start(lo, 0), ta, sizeof(ta)),
		    utc_text(month_start(hi, 1), tb, sizeof(tb)));
	f->part_lo = month_start(lo, 0);
	f->part_hi = month_start(hi, 1);
	pthread_mutex_lock(&f->mu);
	f->stats.partitions_created += (uint64_t)made;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/*
 * The rows in usage_hourly_default now (the gauge): they met no partition.
 * Normally 0, so the count reads one empty page.
 */
static void
default_count(struct flush *f)
{
	PGresult *r = PQexec(f->conn,
	    "SELECT count(*) FROM kanal.usage_hourly_default");
	uint64_t n;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return;
	}
	n = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (n > 0)
		log_warnx("rows in kanal.usage_hourly_default: their month had "
		    "no partition when they were written; they are moved when "
		    "it is made (kanalctl retention, or kanald's next daily "
		    "run): rows=%" PRIu64, n);
	pthread_mutex_lock(&f->mu);
	f->stats.default_rows = n;
	pthread_mutex_unlock(&f->mu);
}

/* Drops the hourly months past hourly_days. 0, or -1 (logged). */
static int
retention_apply(struct flush *f)
{
	char days[16], e[256];
	const char *params[1] = { days };
	PGresult *r;
	int n;

	snprintf(days, sizeof(days), "%" PRIu32, f->hourly_days);
	r = PQexecParams(f->conn, "SELECT partition_name, range_from,"
	    " range_to, rows_dropped FROM kanal.hourly_retention_apply("
	    "$1::integer, false)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warnx("hourly retention failed, tried again in an hour: "
		    "err=\"%s\"", pg_err(f->conn, e, sizeof(e)));
		PQclear(r);
		pthread_mutex_lock(&f->mu);
		f->stats.maintenance_errors++;
		pthread_mutex_unlock(&f->mu);
		return -1;
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		log_notice("hourly rows dropped by retention (the daily tier "
		    "and the monthly cells keep their counts): partition=%s from=\"%s\" "
		    "to=\"%s\" rows=%s hourly_days=%s", PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		    PQgetvalue(r, i, 3), days);
	PQclear(r);
	pthread_mutex_lock(&f->mu);
	f->stats.partitions_dropped += (uint64_t)n;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/*
 * On each new connection and once a day: retention (when kanald is to do
 * it), then the partitions of every month an accepted event can fall in,
 * and two months ahead. Never fails the flush: a failure is logged,
 * counted, and tried again in an hour.
 */
static void
maintain(struct flush *f)
{
	int64_t now_mono = clock_mono_ms();
	int64_t now = (int64_t)(clock_wall_ms() / 1000);
	int failed = 0;

	/*
	 * While the database does not take this kanald's sketches (no reach
	 * tables yet, another key active, ours retired, an error), ask again
	 * every minute (every 60 flush intervals when that is sooner): a
	 * migration or a rotation is then seen without a restart.
	 */
	if (f->reach.reach_on && f->reach.state != REACHDB_ACTIVE &&
	    now_mono >= f->reach_recheck) {
		char e[512];

		f->reach_recheck = now_mono + reach_recheck_ms(f);
		if (reachdb_prepare(f->conn, &f->reach, e, sizeof(e)) == -1)
			log_warnx("cannot look at the reach key again: err=\"%s\"",
			    e);
		pthread_mutex_lock(&f->mu);
		f->stats.reach_state = (int)f->reach.state;
		pthread_mutex_unlock(&f->mu);
	}
	if (f->maintained && now_mono < f->maintain_next)
		return;
	if (f->hourly_days > 0 && retention_apply(f) == -1)
		failed = 1;
	f->part_lo = f->part_hi = 0;
	if (partitions_ensure(f, now - (int64_t)(f->event_max_age_ms / 1000) -
	    3600, now + 62 * 24 * 3600) == -1)
		failed = 1;
	default_count(f);
	f->maintained = 1;
	f->maintain_next = now_mono + (failed ? HOUR_MS : DAY_MS);
}

struct tier_tally {
	int64_t kept_from;
	uint64_t below;			/* events before kept_from */
};

static void
tier_count(void *arg, const struct agg_row *row)
{
	struct tier_tally *t = arg;

	if (row->bucket < t->kept_from)
		t->below += row->events;
}

static int
exec_ok(struct flush *f, const char *sql, const char *what)
{
	PGresult *r = PQexec(f->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	char e[256];

	if (!ok)
		log_warnx("flush failed at %s: err=\"%s\"", what,
		    pg_err(f->conn, e, sizeof(e)));
	PQclear(r);
	return ok ? 0 : -1;
}

/*
 * In the open transaction: where the hourly tier begins (f->kept_from).
 * 0, or -1 (logged; roll back).
 */
static int
kept_from_read(struct flush *f)
{
	PGresult *r = PQexec(f->conn, kept_from_sql);
	char e[256];

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		log_warnx("flush failed reading kanal.hourly_retention (is the "
		    "database migrated? kanalctl migrate): err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		PQclear(r);
		return -1;
	}
	f->kept_from = PQgetisnull(r, 0, 0) ? INT64_MIN :
	    strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

/*
 * The tier upserts for f->kept_from, in f->tier_sql; negated: the staging
 * rows include negated ones (ledger duplicates). 0, or -1 (memory).
 */
static int
tier_sql_build(struct flush *f, int negated)
{
	char where[64] = "";
	size_t need = sizeof(upsert_hourly_fmt) + sizeof(upsert_hourly_sum_fmt) +
	    sizeof(where) +
	    sizeof(upsert_lower_sql);

	if (f->tier_sql_cap < need) {
		char *p = realloc(f->tier_sql, need);

		if (p == NULL)
			return -1;
		f->tier_sql = p;
		f->tier_sql_cap = need;
	}
	if (f->kept_from != INT64_MIN)
		snprintf(where, sizeof(where),
		    " WHERE bucket >= to_timestamp(%" PRId64 ")", f->kept_from);
	snprintf(f->tier_sql, f->tier_sql_cap, negated ? upsert_hourly_sum_fmt :
	    upsert_hourly_fmt, where);
	strcat(f->tier_sql, upsert_lower_sql);
	return 0;
}

/*
 * Writes t in one transaction. 0 when committed, 1 when the checkpoint
 * shows it was committed already, -1 on failure (t is still held).
 */
static int
write_table(struct flush *f, struct agg_table *t, uint64_t checkpoint)
{
	char cp[32], e[512];
	const char *params[2] = { f->collector_id, cp };
	PGresult *r;
	int ok, already, advance = 0, stray = 0;
	int64_t stray_lo = 0, stray_hi = 0;
	long dups;

	f->len = 0;
	f->buf_failed = 0;
	f->min_bucket = INT64_MAX;
	f->max_bucket = INT64_MIN;
	f->sub_below = 0;
	agg_table_foreach(f->agg, t, buf_add_row, f);
	if (f->buf_failed) {
		log_warnx("flush failed: err=\"out of memory\" keys=%zu",
		    agg_table_keys(t));
		return -1;
	}
	/* A month without its partition yet (a late event, a new month). */
	if (((f->min_bucket < f->part_lo && f->min_bucket >= f->kept_from) ||
	    f->max_bucket >= f->part_hi) && clock_mono_ms() >= f->ensure_retry_at)
		(void)partitions_ensure(f, f->min_bucket, f->max_bucket);
	if (exec_ok(f, "BEGIN", "BEGIN") == -1)
		return -1;
	snprintf(cp, sizeof(cp), "%" PRIu64, checkpoint);
	r = PQexecParams(f->conn, checkpoint_sql, 2, NULL, params, NULL, NULL,
	    0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	already = ok && strcmp(PQcmdTuples(r), "0") == 0;
	PQclear(r);
	if (!ok) {
		log_warnx("flush failed at checkpoint: err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		goto rollback;
	}
	if (already) {
		log_warnx("the checkpoint in PostgreSQL is already at or past "
		    "this flush's: its counts were committed before (a COMMIT "
		    "whose answer was lost), or another instance uses "
		    "collector_id=%s; not writing them again: checkpoint=%"
		    PRIu64, f->collector_id, checkpoint);
		r = PQexec(f->conn, "ROLLBACK");
		PQclear(r);
		return 1;
	}
	if (kept_from_read(f) == -1)
		goto rollback;
	dups = claim_batches(f, t, &advance);
	if (dups == -1)
		goto rollback;
	if (exec_ok(f, "TRUNCATE pg_temp.kanal_staging", "TRUNCATE") == -1)
		goto rollback;
	if (pg_copy_in(f->conn, "COPY pg_temp.kanal_staging FROM STDIN",
	    f->buf, f->len, NULL, e, sizeof(e)) == -1) {
		log_warnx("flush failed at COPY: err=\"%s\"", e);
		goto rollback;
	}
	if (tier_sql_build(f, dups > 0) == -1) {
		log_warnx("flush failed: err=\"out of memory\"");
		goto rollback;
	}
	r = PQexec(f->conn, f->tier_sql);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (!ok) {
		log_warnx("flush failed at upsert: err=\"%s\"",
		    pg_err(f->conn, e, sizeof(e)));
		PQclear(r);
		goto rollback;
	}
	/* Rows that met no partition: their months are made after commit. */
	stray = !PQgetisnull(r, 0, 0);
	if (stray) {
		stray_lo = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		stray_hi = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	}
	PQclear(r);
	if (reachdb_write(f->conn, &f->reach, f->agg, t, e, sizeof(e)) == -1) {
		log_warnx("flush failed at the reach sketches: err=\"%s\"", e);
		goto rollback;
	}
	r = PQexec(f->conn, "COMMIT");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		if (PQstatus(f->conn) != CONNECTION_OK) {
			f->commit_unknown = 1;
			f->unknown_checkpoint = checkpoint;
		}
		log_warnx("flush failed at COMMIT: err=\"%s\" outcome=%s",
		    pg_err(f->conn, e, sizeof(e)),
		    f->commit_unknown ? "unknown" : "rolled-back");
		return -1;
	}
	{
		struct tier_tally tt = { f->kept_from, 0 };

		if (f->min_bucket < f->kept_from)
			agg_table_foreach(f->agg, t, tier_count, &tt);
		tt.below -= tt.below >= f->sub_below ? f->sub_below : tt.below;
		pthread_mutex_lock(&f->mu);
		f->stats.ledger_batches += f->nlb - (size_t)dups;
		f->stats.ledger_duplicates += (uint64_t)dups;
		f->stats.late_past_retention += tt.below;
		f->stats.reach_rows += f->reach.rows;
		f->stats.reach_dropped += f->reach.dropped;
		f->stats.hourly_kept_from = f->kept_from;
		pthread_mutex_unlock(&f->mu);
		if (stray) {
			default_count(f);
			if (partitions_ensure(f, stray_lo, stray_hi) == 0)
				default_count(f);
		}
	}
	if (advance) {
		/* Not part of the flush: its failure costs only a later try. */
		int moved = ledger_advance(f->conn, f->ledger_epoch_ms, e,
		    sizeof(e));

		if (moved == -1)
			log_warnx("could not advance the ledger epoch: "
			    "err=\"%s\"", e);
		else if (moved == 1) {
			log_info("ledger epoch advanced: collector_id=%s",
			    f->collector_id);
			pthread_mutex_lock(&f->mu);
			f->stats.ledger_epoch_advances++;
			pthread_mutex_unlock(&f->mu);
		}
	}
	return 0;
rollback:
	r = PQexec(f->conn, "ROLLBACK");
	PQclear(r);
	return -1;
}

int
flush_once(struct flush *f)
{
	struct agg_table *t;
	uint64_t pos, t0, us;
	size_t keys;

	if (f->conn != NULL && PQstatus(f->conn) != CONNECTION_OK)
		disconnect(f);
	if (f->conn == NULL) {
		int rc = connect_db(f);

		if (rc == -2)
			return -2;
		if (rc == -1)
			goto fail;
	}
	t = agg_freeze(f->agg, &pos);
	keys = agg_table_keys(t);
	if (keys == 0) {
		agg_release(f->agg, t);
		maintain(f);
		return 0;
	}
	t0 = clock_mono_us();
	switch (write_table(f, t, pos)) {
	case -1:
		if (PQstatus(f->conn) != CONNECTION_OK)
			disconnect(f);
		goto fail;
	case 1:
		agg_release(f->agg, t);
		if (f->on_committed != NULL)
			f->on_committed(f->cb_arg, pos);
		maintain(f);
		return 0;
	default:
		break;
	}
	us = clock_mono_us() - t0;
	agg_release(f->agg, t);
	pthread_mutex_lock(&f->mu);
	f->stats.flushes++;
	f->stats.rows += keys;
	histogram_observe(&f->stats.duration_us, us);
	f->stats.checkpoint = pos;
	pthread_mutex_unlock(&f->mu);
	log_debug("flushed: rows=%zu checkpoint=%" PRIu64 " duration_ms=%.1f",
	    keys, pos, (double)us / 1000.0);
	if (f->on_committed != NULL)
		f->on_committed(f->cb_arg, pos);
	/* After the flush, so that it never waits for the daily run. */
	maintain(f);
	return 0;
fail:
	pthread_mutex_lock(&f->mu);
	f->stats.errors++;
	pthread_mutex_unlock(&f->mu);
	return -1;
}

/* Waits up to ms or until stop; returns the stop flag. */
static int
wait_ms(struct flush *f, uint64_t ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		if (pthread_cond_timedwait(&f->cond, &f->mu, &ts) == ETIMEDOUT)
			break;
	}
	stop = f->stop;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

static void *
flush_main(void *arg)
{
	struct flush *f = arg;
	/*
	 * The first attempt at once: replay of the WAL waits for the
	 * database, and the backlog to replay grows meanwhile.
	 */
	uint64_t delay = 0;

	while (!wait_ms(f, delay)) {
		int rc = flush_once(f);

		if (rc == -2) {
			notify_send("STATUS=stopped: the collector lease is "
			    "refused (see the log)");
			log_errx("stopping: collector_id=%s must not be written "
			    "by this process; what it acknowledged stays in its "
			    "write-ahead log", f->collector_id);
			exit(FLUSH_EXIT_LEASE);
		}
		if (rc == 0) {
			if (f->backoff_ms != 0)
				log_notice("flush recovered: keys_held=%zu",
				    agg_keys(f->agg));
			f->backoff_ms = 0;
			delay = f->interval_ms;
			continue;
		}
		f->backoff_ms = f->backoff_ms == 0 ? BACKOFF_FIRST_MS :
		    f->backoff_ms * 2;
		if (f->backoff_ms > f->max_backoff_ms)
			f->backoff_ms = f->max_backoff_ms;
		delay = f->backoff_ms;
		log_warnx("flush will be retried: retry_in_ms=%" PRIu64
		    " keys_held=%zu", delay, agg_keys(f->agg));
	}
	return NULL;
}

int
flush_start(struct flush *f)
{
	int r = pthread_create(&f->thread, NULL, flush_main, f);

	if (r != 0) {
		errno = r;
		return -1;
	}
	f->running = 1;
	return 0;
}

int
flush_stop(struct flush *f, uint64_t deadline_ms)
{
	uint64_t end = clock_mono_us() + deadline_ms * 1000, wait = 200;

	if (f->running) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
		f->running = 0;
	}
	/* Both tables may hold counts: the frozen one, then the active one. */
	for (;;) {
		int rc = flush_once(f);

		if (rc == 0) {
			if (agg_keys(f->agg) == 0)
				return 0;
			continue;
		}
		if (rc == -2)
			break;
		if (clock_mono_us() + wait * 1000 > end)
			break;
		struct timespec ts = { (time_t)(wait / 1000),
		    (long)(wait % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		if (wait < 2000)
			wait *= 2;
	}
	log_errx("could not flush before stopping: keys_unwritten=%zu",
	    agg_keys(f->agg));
	return -1;
}

void
flush_free(struct flush *f)
{
	if (f == NULL)
		return;
	if (f->running) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
	}
	PQfinish(f->conn);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mu);
	free(f->buf);
	free(f->lb);
	free(f->starts);
	free(f->tier_sql);
	reachdb_free(&f->reach);
	free(f->conninfo);
	free(f->collector_id);
	free(f->wal_dir);
	free(f);
}

void
flush_get_stats(struct flush *f, struct flush_stats *st)
{
	pthread_mutex_lock(&f->mu);
	*st = f->stats;
	pthread_mutex_unlock(&f->mu);
}
