/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reachdb: see reachdb.h.
 */
#include "reachdb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg.h"
#include "hll.h"
#include "log.h"
#include "pgcopy.h"
#include "validate.h"

#define MS_PER_DAY 86400000LL

/*
 * The hll type and functions live in the schema the extension was made
 * in (public, normally); %s is that schema, quoted, with a trailing dot.
 */
static const char staging_fmt[] =
    "CREATE TEMP TABLE IF NOT EXISTS kanal_reach_staging ("
    " key_id bigint, day date, service_code text, channel text,"
    " region_code text, sketch %shll) ON COMMIT DELETE ROWS";

#define REACH_KEYS "service_code, channel, region_code, key_id"
static const char upsert_fmt[] =
    "INSERT INTO kanal.reach_daily AS t (day, " REACH_KEYS ", sketch)"
    " SELECT day, " REACH_KEYS ", sketch FROM pg_temp.kanal_reach_staging"
    " ORDER BY 1, 2, 3, 4, 5"
    " ON CONFLICT (day, " REACH_KEYS ") DO UPDATE"
    " SET sketch = %1$shll_union(t.sketch, EXCLUDED.sketch);"
    "INSERT INTO kanal.reach_monthly_sketch AS t (month, " REACH_KEYS
    ", sketch)"
    " SELECT date_trunc('month', day)::date, " REACH_KEYS ","
    " %1$shll_union_agg(sketch) FROM pg_temp.kanal_reach_staging"
    " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    " ON CONFLICT (month, " REACH_KEYS ") DO UPDATE"
    " SET sketch = %1$shll_union(t.sketch, EXCLUDED.sketch)";

static void
pg_msg(PGconn *conn, char *err, size_t errlen, const char *what)
{
	const char *m = PQerrorMessage(conn);

	snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(m, "\n"), m);
}

/* One-row, one-column query; NULL on error (err set) or no row (""). */
static PGresult *
query1(PGconn *conn, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL,
	    NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_msg(conn, err, errlen, what);
		PQclear(res);
		return NULL;
	}
	return res;
}

const char *
reachdb_state_name(enum reachdb_state s)
{
	switch (s) {
	case REACHDB_NO_TABLES:
		return "no_tables";
	case REACHDB_OFF:
		return "off";
	case REACHDB_ACTIVE:
		return "active";
	case REACHDB_OTHER_KEY:
		return "other_key";
	case REACHDB_RETIRED:
		return "retired";
	case REACHDB_ERROR:
		return "error";
	}
	return "unknown";
}

static void
log_state(struct reachdb *r, int64_t active, const char *why)
{
	if (r->state == r->logged)
		return;
	r->logged = r->state;
	switch (r->state) {
	case REACHDB_ERROR:
		log_warnx("reach: cannot use the reach tables; residents are "
		    "not counted, the counts go on (asked again every minute): "
		    "err=\"%s\"", why);
		break;
	case REACHDB_NO_TABLES:
		if (r->reach_on)
			log_warnx("reach: the database has no reach tables "
			    "(migration 010 needs the hll extension: install "
			    "the Debian package postgresql-15-hll on the "
			    "database server and run kanalctl migrate; kanald "
			    "looks again every minute); residents are not "
			    "counted until then, the counts go on");
		break;
	case REACHDB_OFF:
		break;
	case REACHDB_ACTIVE:
		log_info("reach: the database counts residents with this "
		    "kanald's key: key_id=%" PRId64, r->key_id);
		break;
	case REACHDB_OTHER_KEY:
		log_errx("reach: the database counts residents with another "
		    "key (key_id=%" PRId64 "), not this kanald's "
		    "(key_id=%" PRId64 "): its sketches are not written, so "
		    "that no resident is counted once per key. Give every "
		    "instance the same reach key file, or rotate the key as "
		    "docs/operations.md says", active, r->key_id);
		break;
	case REACHDB_RETIRED:
		log_errx("reach: this kanald's key was retired in the database "
		    "(key_id=%" PRId64 "): its new sketches are not written; "
		    "install the new key file (docs/operations.md, rotating the "
		    "reach key)", r->key_id);
		break;
	}
}

static int prepare(PGconn *, struct reachdb *, int64_t *, char *, size_t);

int
reachdb_prepare(PGconn *conn, struct reachdb *r, char *err, size_t errlen)
{
	int64_t active = 0;

	if (prepare(conn, r, &active, err, errlen) == -1) {
		if (PQstatus(conn) != CONNECTION_OK)
			return -1;
		r->state = REACHDB_ERROR;
		r->nknown = 0;
		log_state(r, 0, err);
		return 0;
	}
	log_state(r, active, "");
	return 0;
}

/* The work of reachdb_prepare; -1 with err when a query failed. */
static int
prepare(PGconn *conn, struct reachdb *r, int64_t *active, char *err,
    size_t errlen)
{
	PGresult *res;
	char schema[256] = "", sql[sizeof(upsert_fmt) + 8 * 256];
	char id[32];
	const char *params[1] = { id };

	r->nknown = 0;
	res = query1(conn, "SELECT n.nspname FROM pg_catalog.pg_extension e"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
	    " WHERE e.extname = 'hll'"
	    " AND to_regprocedure('kanal.reach_key_use(bigint)') IS NOT NULL",
	    0, NULL, err, errlen, "cannot look for the reach tables");
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		r->state = REACHDB_NO_TABLES;
		return 0;
	}
	{
		char *q = PQescapeIdentifier(conn, PQgetvalue(res, 0, 0),
		    strlen(PQgetvalue(res, 0, 0)));

		if (q == NULL || strlen(q) + 2 > sizeof(schema)) {
			PQfreemem(q);
			PQclear(res);
			snprintf(err, errlen, "the hll extension's schema name "
			    "is unusable");
			return -1;
		}
		snprintf(schema, sizeof(schema), "%s.", q);
		PQfreemem(q);
	}
	PQclear(res);
	snprintf(sql, sizeof(sql), staging_fmt, schema);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_msg(conn, err, errlen, "cannot create the reach staging "
		    "table");
		PQclear(res);
		return -1;
	}
	PQclear(res);
	snprintf(sql, sizeof(sql), upsert_fmt, schema);
	free(r->upsert_sql);
	r->upsert_sql = strdup(sql);
	if (r->enc == NULL)
		r->enc = malloc(hll_encoded_max());
	if (r->upsert_sql == NULL || r->enc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->state = REACHDB_OFF;
	if (r->reach_on) {
		snprintf(id, sizeof(id), "%" PRId64, r->key_id);
		res = query1(conn, "SELECT kanal.reach_key_use($1::bigint),"
		    " (SELECT key_id FROM kanal.reach_key"
		    " WHERE retired_at IS NULL)", 1, params, err, errlen,
		    "cannot register the reach key");
		if (res == NULL)
			return -1;
		if (strcmp(PQgetvalue(res, 0, 0), "active") == 0)
			r->state = REACHDB_ACTIVE;
		else if (strcmp(PQgetvalue(res, 0, 0), "retired") == 0)
			r->state = REACHDB_RETIRED;
		else
			r->state = REACHDB_OTHER_KEY;
		if (!PQgetisnull(res, 0, 1))
			*active = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		PQclear(res);
	}
	/* Every key the database knows, the active one first. */
	res = query1(conn, "SELECT key_id FROM kanal.reach_key"
	    " ORDER BY retired_at IS NOT NULL, first_used DESC", 0, NULL, err,
	    errlen, "cannot read the reach keys");
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && r->nknown < REACHDB_MAX_KEYS;
	    i++)
		r->known[r->nknown++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	/* Ours is written only while it is the active key. */
	if (r->reach_on && r->state != REACHDB_ACTIVE)
		for (size_t i = 0; i < r->nknown; i++)
			if (r->known[i] == r->key_id)
				r->known[i] = r->known[--r->nknown];
	return 0;
}

static int
key_known(const struct reachdb *r, int64_t id)
{
	for (size_t i = 0; i < r->nknown; i++)
		if (r->known[i] == id)
			return 1;
	return 0;
}

static void
put_sketch(void *arg, const struct agg_sketch *s)
{
	static const char hex[] = "0123456789abcdef";
	struct reachdb *r = arg;
	uint8_t *enc = r->enc;
	size_t n, need;
	time_t day = (time_t)s->day * 86400;
	struct tm tm;
	char *p;

	if (r->buf_failed)
		return;
	if (!key_known(r, s->reach_key_id)) {
		r->dropped++;
		return;
	}
	n = hll_encode(s->hll, enc);
	need = 24 + 12 + strlen(s->service) + 12 + strlen(s->region) + 4 +
	    2 * n + 4;
	if (r->cap - r->len < need) {
		size_t ncap = r->cap ? r->cap : 1 << 16;
		char *nb;

		while (ncap - r->len < need)
			ncap *= 2;
		nb = realloc(r->buf, ncap);
		if (nb == NULL) {
			r->buf_failed = 1;
			return;
		}
		r->buf = nb;
		r->cap = ncap;
	}
	gmtime_r(&day, &tm);
	p = r->buf + r->len;
	p += sprintf(p, "%" PRId64 "\t%04d-%02d-%02d\t%s\t%s\t%s\t\\\\x",
	    s->reach_key_id, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    s->service, validate_channel_name(s->channel), s->region);
	for (size_t i = 0; i < n; i++) {
		*p++ = hex[enc[i] >> 4];
		*p++ = hex[enc[i] & 15];
	}
	*p++ = '\n';
	r->len = (size_t)(p - r->buf);
	r->rows++;
}

/* One statement; 0, or -1 with err. */
static int
exec_cmd(PGconn *conn, const char *sql, char *err, size_t errlen,
    const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	if (!ok)
		pg_msg(conn, err, errlen, what);
	return ok ? 0 : -1;
}

int
reachdb_write(PGconn *conn, struct reachdb *r, const struct agg *a,
    const struct agg_table *t, char *err, size_t errlen)
{
	r->rows = r->dropped = 0;
	if (agg_table_sketches(t) == 0)
		return 0;
	if (r->state == REACHDB_NO_TABLES || r->state == REACHDB_ERROR) {
		r->dropped = agg_table_sketches(t);
		return 0;
	}
	r->len = 0;
	r->buf_failed = 0;
	agg_table_foreach_sketch(a, t, put_sketch, r);
	if (r->buf_failed) {
		log_warnx("reach: out of memory for the COPY of %zu sketches; "
		    "they are dropped, the counts go on",
		    agg_table_sketches(t));
		r->dropped = agg_table_sketches(t);
		r->rows = 0;
		return 0;
	}
	if (r->rows == 0)
		return 0;
	if (exec_cmd(conn, "SAVEPOINT kanal_reach", err, errlen,
	    "SAVEPOINT") == -1)
		return -1;
	if (pg_copy_in(conn, "COPY pg_temp.kanal_reach_staging FROM STDIN",
	    r->buf, r->len, "COPY of the sketches", err, errlen) == -1 ||
	    exec_cmd(conn, r->upsert_sql, err, errlen, "sketch upsert") == -1) {
		char why[512];

		if (PQstatus(conn) != CONNECTION_OK)
			return -1;
		snprintf(why, sizeof(why), "%s", err);
		if (exec_cmd(conn, "ROLLBACK TO SAVEPOINT kanal_reach", err,
		    errlen, "ROLLBACK TO SAVEPOINT") == -1)
			return -1;
		/* Every failure in a row: the 1st, 2nd, 4th, ... */
		r->failures++;
		if ((r->failures & (r->failures - 1)) == 0)
			log_warnx("reach: the sketches of this flush are "
			    "dropped, the counts go on: err=\"%s\" "
			    "failures=%" PRIu64, why, r->failures);
		r->dropped += r->rows;
		r->rows = 0;
		return 0;
	}
	if (r->failures > 0)
		log_notice("reach: sketches are written again: failures=%"
		    PRIu64, r->failures);
	r->failures = 0;
	return exec_cmd(conn, "RELEASE SAVEPOINT kanal_reach", err, errlen,
	    "RELEASE SAVEPOINT");
}

void
reachdb_free(struct reachdb *r)
{
	free(r->buf);
	free(r->upsert_sql);
	free(r->enc);
	r->buf = NULL;
	r->upsert_sql = NULL;
	r->enc = NULL;
	r->len = r->cap = 0;
}
