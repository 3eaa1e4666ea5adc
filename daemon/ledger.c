/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger: see ledger.h, and schema/006_batch_ledger.sql for the table, the
 * ring of slots and why expiry never deletes row by row.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEDGER_SLOTS 4
/* "kanalLDG": the epoch lock (pg_advisory_xact_lock[_shared]). */
#define EPOCH_LOCK "7737586999507043399"
/* "kana": class of the collector leases (two-key advisory locks). */
#define LEASE_CLASS "1801547361"

static const char staging_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS kanal_ledger_staging ("
    " digest uuid, source text) ON COMMIT DELETE ROWS";

/*
 * Rows in digest order (no two flushes wait on each other in a cycle).
 * A digest this insert did not write was there already, in this slot (a
 * concurrent insert is waited for: the primary key); one found in another
 * slot was committed before this epoch began. Both were counted.
 */
static const char claim_sql[] =
    "WITH ins AS ("
    " INSERT INTO kanal.batch_ledger (slot, digest, source, collector_id)"
    " SELECT $1, digest, source, $2 FROM pg_temp.kanal_ledger_staging"
    " ORDER BY digest ON CONFLICT DO NOTHING RETURNING digest)"
    " SELECT s.digest FROM pg_temp.kanal_ledger_staging s"
    " WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.digest = s.digest)"
    " OR EXISTS (SELECT 1 FROM kanal.batch_ledger l"
    " WHERE l.digest = s.digest AND l.slot <> $1)";

/*
 * Due: a whole epoch has passed by the server's clock, or the epoch began
 * more than an hour in the server's future (its clock was wrong and was
 * put right): waiting for that clock would hold expiry up.
 */
#define DUE "(now() >= started_at + make_interval(secs => $1::float8 / 1000)" \
    " OR started_at > now() + interval '1 hour')"

static const char epoch_sql[] =
    "SELECT epoch, " DUE " FROM kanal.batch_ledger_epoch";

static const char advance_sql[] =
    "UPDATE kanal.batch_ledger_epoch SET epoch = epoch + 1,"
    " started_at = now() WHERE " DUE " RETURNING epoch";

/* First line of the connection's error, after what. */
static void
pg_fail(PGconn *conn, const char *what, char *err, size_t errlen)
{
	const char *m = PQerrorMessage(conn);
	int n = snprintf(err, errlen, "%s: %s", what, m);

	if (n > 0)
		err[strcspn(err, "\n")] = '\0';
}

static int
exec_cmd(PGconn *conn, const char *sql, const char *what, char *err,
    size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		pg_fail(conn, what, err, errlen);
	PQclear(r);
	return ok ? 0 : -1;
}

int
ledger_prepare(PGconn *conn, char *err, size_t errlen)
{
	return exec_cmd(conn, staging_sql, "creating the ledger staging table",
	    err, errlen);
}

static int
digest_cmp(const void *x, const void *y)
{
	const struct ledger_batch *a = x, *b = y;

	return memcmp(a->digest, b->digest, 16);
}

static void
hex16(const uint8_t d[16], char out[33])
{
	static const char hx[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[32] = '\0';
}

/* Appends s to buf for COPY's text format. */
static size_t
copy_escape(char *buf, const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\': buf[n++] = '\\'; buf[n++] = '\\'; break;
		case '\t': buf[n++] = '\\'; buf[n++] = 't'; break;
		case '\n': buf[n++] = '\\'; buf[n++] = 'n'; break;
		case '\r': buf[n++] = '\\'; buf[n++] = 'r'; break;
		default: buf[n++] = *s; break;
		}
	}
	return n;
}

/* COPY of the batches not marked counted. 0, or -1 with err. */
static int
copy_batches(PGconn *conn, const struct ledger_batch *b, size_t n, char *err,
    size_t errlen)
{
	PGresult *r = PQexec(conn, "COPY pg_temp.kanal_ledger_staging FROM STDIN");
	/* Sources are at most 63 bytes (sources.c); escaped, 126. */
	char line[32 + 1 + 2 * 64 + 2];
	int ok = PQresultStatus(r) == PGRES_COPY_IN;

	PQclear(r);
	if (!ok) {
		pg_fail(conn, "ledger COPY", err, errlen);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char hex[33];
		size_t len;

		if (b[i].counted)
			continue;
		if (strlen(b[i].source) > 64) {
			PQputCopyEnd(conn, "source name too long");
			snprintf(err, errlen, "ledger COPY: a source name is "
			    "longer than 64 bytes");
			goto drain;
		}
		hex16(b[i].digest, hex);
		memcpy(line, hex, 32);
		len = 32;
		line[len++] = '\t';
		len += copy_escape(line + len, b[i].source);
		line[len++] = '\n';
		if (PQputCopyData(conn, line, (int)len) != 1) {
			pg_fail(conn, "ledger COPY", err, errlen);
			return -1;
		}
	}
	if (PQputCopyEnd(conn, NULL) != 1) {
		pg_fail(conn, "ledger COPY", err, errlen);
		return -1;
	}
	r = PQgetResult(conn);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pg_fail(conn, "ledger COPY", err, errlen);
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	return ok ? 0 : -1;
drain:
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	return -1;
}

/* A uuid's text form (hex, with or without dashes): 0, or -1. */
static int
uuid_parse(const char *s, uint8_t out[16])
{
	int n = 0;

	for (; *s != '\0' && n < 32; s++) {
		int v;

		if (*s == '-')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			return -1;
		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(v << 4);
		else
			out[n / 2] |= (uint8_t)v;
		n++;
	}
	return n == 32 && *s == '\0' ? 0 : -1;
}

/* The first of b (sorted by digest) with this digest, or NULL. */
static struct ledger_batch *
find_digest(struct ledger_batch *b, size_t n, const uint8_t d[16])
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(b[mid].digest, d, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && memcmp(b[lo].digest, d, 16) == 0 ? &b[lo] : NULL;
}

long
ledger_claim(PGconn *conn, const char *collector_id, struct ledger_batch *b,
    size_t n, uint64_t epoch_ms, int *advance, char *err, size_t errlen)
{
	char ms[24], slot[8];
	const char *p1[1] = { ms };
	const char *p2[2] = { slot, collector_id };
	PGresult *r;
	long counted = 0;
	int64_t epoch;

	*advance = 0;
	for (size_t i = 0; i < n; i++)
		b[i].counted = 0;
	if (n > 1)
		qsort(b, n, sizeof(*b), digest_cmp);
	/* The same batch twice in one flush: the later ones are repeats. */
	for (size_t i = 1; i < n; i++)
		if (memcmp(b[i].digest, b[i - 1].digest, 16) == 0) {
			b[i].counted = 1;
			counted++;
		}
	/*
	 * The lock first, alone: a statement's snapshot is taken when it
	 * starts, so the epoch must be read by a statement that starts after
	 * the lock is held (after an advance that held it has committed).
	 */
	if (exec_cmd(conn, "SELECT pg_advisory_xact_lock_shared(" EPOCH_LOCK
	    ")", "ledger lock", err, errlen) == -1)
		return -1;
	snprintf(ms, sizeof(ms), "%" PRIu64, epoch_ms);
	r = PQexecParams(conn, epoch_sql, 1, NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "reading the ledger epoch", err, errlen);
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "kanal.batch_ledger_epoch has %d rows, "
		    "not 1: run kanalctl migrate, or restore the row",
		    PQntuples(r));
		PQclear(r);
		return -1;
	}
	epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*advance = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	snprintf(slot, sizeof(slot), "%d", (int)(epoch % LEDGER_SLOTS));
	if (copy_batches(conn, b, n, err, errlen) == -1)
		return -1;
	r = PQexecParams(conn, claim_sql, 2, NULL, p2, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "ledger insert", err, errlen);
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		uint8_t d[16];
		struct ledger_batch *x = uuid_parse(PQgetvalue(r, i, 0), d) == 0 ?
		    find_digest(b, n, d) : NULL;

		if (x != NULL && !x->counted) {
			x->counted = 1;
			counted++;
		}
	}
	PQclear(r);
	return counted;
}

int
ledger_advance(PGconn *conn, uint64_t epoch_ms, char *err, size_t errlen)
{
	char ms[24], sql[64];
	const char *p1[1] = { ms };
	PGresult *r;
	int64_t epoch;

	if (exec_cmd(conn, "BEGIN", "BEGIN", err, errlen) == -1)
		return -1;
	if (exec_cmd(conn, "SELECT pg_advisory_xact_lock(" EPOCH_LOCK ")",
	    "ledger lock", err, errlen) == -1)
		goto rollback;
	snprintf(ms, sizeof(ms), "%" PRIu64, epoch_ms);
	r = PQexecParams(conn, advance_sql, 1, NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "advancing the ledger epoch", err, errlen);
		PQclear(r);
		goto rollback;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return exec_cmd(conn, "COMMIT", "COMMIT", err, errlen) == -1 ?
		    -1 : 0;
	}
	epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	snprintf(sql, sizeof(sql), "TRUNCATE kanal.batch_ledger_%d",
	    (int)(epoch % LEDGER_SLOTS));
	if (exec_cmd(conn, sql, "emptying the ledger slot", err, errlen) == -1)
		goto rollback;
	if (exec_cmd(conn, "COMMIT", "COMMIT", err, errlen) == -1)
		return -1;
	return 1;
rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

void
ledger_session_name(char *buf, size_t len, const char *collector_id,
    uint64_t nonce)
{
	snprintf(buf, len, "kanald/%s/%016" PRIx64, collector_id, nonce);
}

enum lease_result
ledger_lease_take(PGconn *conn, const char *collector_id,
    const char *session_name, char *holder, size_t holderlen, char *err,
    size_t errlen)
{
	const char *p1[1] = { collector_id };
	PGresult *r;
	enum lease_result res;

	holder[0] = '\0';
	r = PQexecParams(conn, "SELECT retired_at, coalesce(retired_by, '')"
	    " FROM kanal.collector_checkpoint WHERE collector_id = $1"
	    " AND retired_at IS NOT NULL", 1, NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "reading the collector", err, errlen);
		PQclear(r);
		return LEASE_ERROR;
	}
	if (PQntuples(r) == 1) {
		snprintf(holder, holderlen, "retired at %s by %s",
		    PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		PQclear(r);
		return LEASE_RETIRED;
	}
	PQclear(r);
	r = PQexecParams(conn, "SELECT pg_try_advisory_lock(" LEASE_CLASS
	    ", hashtext($1))", 1, NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "taking the collector lease", err, errlen);
		PQclear(r);
		return LEASE_ERROR;
	}
	res = PQgetvalue(r, 0, 0)[0] == 't' ? LEASE_TAKEN : LEASE_HELD;
	PQclear(r);
	if (res == LEASE_TAKEN)
		return res;
	/* Who holds it? pg_locks shows every session's locks to everyone. */
	r = PQexecParams(conn, "SELECT l.pid, coalesce(a.application_name, ''),"
	    " coalesce(host(a.client_addr), 'local'),"
	    " coalesce(a.backend_start::text, '?')"
	    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
	    " WHERE l.locktype = 'advisory' AND l.granted"
	    " AND l.database = (SELECT oid FROM pg_database"
	    " WHERE datname = current_database())"
	    " AND l.classid = " LEASE_CLASS "::bigint::oid"
	    " AND l.objid = (hashtext($1)::bigint & 4294967295)::oid"
	    " AND l.objsubid = 2", 1, NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_fail(conn, "finding the lease holder", err, errlen);
		PQclear(r);
		return LEASE_ERROR;
	}
	if (PQntuples(r) == 0) {
		/* Released between the two statements: try again. */
		snprintf(holder, holderlen, "a session that has just ended");
		PQclear(r);
		return LEASE_HELD;
	}
	snprintf(holder, holderlen, "pid=%s application_name=\"%s\" "
	    "client=%s since=\"%s\"", PQgetvalue(r, 0, 0),
	    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	if (strcmp(PQgetvalue(r, 0, 1), session_name) == 0) {
		const char *p[1] = { PQgetvalue(r, 0, 0) };
		PGresult *t = PQexecParams(conn, "SELECT "
		    "pg_terminate_backend($1::int)", 1, NULL, p, NULL, NULL, 0);

		PQclear(t);
		res = LEASE_OURS_STALE;
	}
	PQclear(r);
	return res;
}

int
ledger_retire(PGconn *conn, const char *collector_id, const char *by,
    char *err, size_t errlen)
{
	const char *p[2] = { collector_id, by };
	PGresult *r = PQexecParams(conn,
	    "INSERT INTO kanal.collector_checkpoint AS c (collector_id,"
	    " wal_position, updated_at, retired_at, retired_by)"
	    " VALUES ($1, 0, now(), now(), $2) ON CONFLICT (collector_id)"
	    " DO UPDATE SET retired_at = now(), retired_by = $2",
	    2, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		pg_fail(conn, "retiring the collector", err, errlen);
	PQclear(r);
	return ok ? 0 : -1;
}
