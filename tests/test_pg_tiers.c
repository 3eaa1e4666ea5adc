/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tiers and retention (schema/007_tiers.sql), against real kanald
 * processes and a real PostgreSQL:
 *
 *  - migration 007 on a database of 35 demo days (in 006's layout) keeps
 *    every view's rows, and its tiers equal a GROUP BY of the hourly rows;
 *    so do the tiers kanald itself wrote for the same traffic;
 *  - events at 23:59:59 WIB and 23:59:59 UTC on a month's last day, and
 *    the seconds after, land in their WIB day and month and in their UTC
 *    month's partition; the months ahead have their partitions;
 *  - kanalctl retention (--dry-run, then for real, while kanald flushes)
 *    drops whole hourly months only; a late event for a dropped month is
 *    counted in the daily and monthly tiers and by the late metric;
 *  - a flush that meets a missing partition goes on: the default
 *    partition catches the rows and kanald makes the month again;
 *  - bad arguments to the functions and to kanalctl retention are
 *    refused with their own errors.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "migrate.h"

#define HOURLY "SELECT coalesce(sum(events), 0) FROM kanal.usage_hourly"
#define DAILY "SELECT coalesce(sum(events), 0) FROM kanal.usage_daily"

static int
setup(void **state)
{
	*state = th_fixture_new("tiers", "*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

static int64_t
q64(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int64_t
q64(PGconn *c, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_query_i64(c, sql);
}

/* kanalctl send: n events of service at (Unix ms; 0: now). Its status. */
static int
send_at(struct th_fixture *f, const char *service, int n, int64_t at_ms)
{
	char count[16], at[32], out[4096];
	const char *argv[] = { th_env("KANALCTL"), "send", "--url", f->k.url,
	    "--token", f->token, "--service", service, "--channel", "web",
	    "--region", "32.73.01", "--count", count, "--at", at, NULL };

	snprintf(count, sizeof(count), "%d", n);
	snprintf(at, sizeof(at), "%lld", (long long)(at_ms ? at_ms :
	    (int64_t)time(NULL) * 1000));
	return th_run(out, sizeof(out), argv);
}

static int
retention(struct th_fixture *f, const char *days, int dry, char *out,
    size_t len)
{
	char pg[128];
	const char *argv[] = { th_env("KANALCTL"), "retention", "--pg", pg,
	    "--hourly-days", days, dry ? "--dry-run" : NULL, NULL };

	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest", f->db);
	return th_run(out, len, argv);
}

/* ----------------------------------------------------------- migration */

/* Every view's rows, as one md5 and a count: "n:md5". */
static void
views_digest(PGconn *c, char out[][80], size_t n)
{
	static const char *const views[] = { "digital_adoption_daily",
	    "digital_adoption_monthly", "published_adoption_monthly",
	    "adoption_counts_monthly", "usage_local_hourly" };
	char sql[512];

	assert_int_equal(n, sizeof(views) / sizeof(views[0]));
	for (size_t i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) || ':' || "
		    "md5(coalesce(string_agg(v::text, E'\\n' ORDER BY "
		    "v::text), '')) FROM kanal.%s v", views[i]);
		th_query_text(c, sql, out[i], sizeof(out[i]));
	}
}

/* COPY kanal.usage_hourly from one database into another. */
static void
copy_hourly(PGconn *from, PGconn *to)
{
	/* A partitioned table is copied out through a query. */
	PGresult *r = PQexec(from, "COPY (SELECT * FROM kanal.usage_hourly) "
	    "TO STDOUT");
	PGresult *w;
	char *line;
	int n;

	if (PQresultStatus(r) != PGRES_COPY_OUT)
		fail_msg("COPY out: %s", PQerrorMessage(from));
	PQclear(r);
	w = PQexec(to, "COPY kanal.usage_hourly FROM STDIN");
	assert_int_equal(PQresultStatus(w), PGRES_COPY_IN);
	PQclear(w);
	while ((n = PQgetCopyData(from, &line, 0)) > 0) {
		assert_int_equal(PQputCopyData(to, line, n), 1);
		PQfreemem(line);
	}
	assert_int_equal(n, -1);
	while ((r = PQgetResult(from)) != NULL) {
		assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
	}
	assert_int_equal(PQputCopyEnd(to, NULL), 1);
	while ((w = PQgetResult(to)) != NULL) {
		if (PQresultStatus(w) != PGRES_COMMAND_OK)
			fail_msg("COPY in: %s", PQerrorMessage(to));
		PQclear(w);
	}
}

/* Makes dir, a schema directory of migrations 001..006 only. */
static void
schema_before_007(const char *out)
{
	static const char *const files[] = { "001_core.sql",
	    "002_reference.sql", "003_views.sql", "004_adoption_counts.sql",
	    "005_usage_local_hourly.sql", "006_batch_ledger.sql" };
	char src[1024], dst[1024];

	assert_int_equal(mkdir(out, 0700), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(src, sizeof(src), "%s/%s", th_env("KANAL_SCHEMA_DIR"),
		    files[i]);
		snprintf(dst, sizeof(dst), "%s/%s", out, files[i]);
		th_copy_file(src, dst);
	}
}

/* A new database, name f->db + suffix, in 006's layout; connected. */
static PGconn *
db_before_007(struct th_fixture *f, const char *suffix, char *name,
    size_t len)
{
	PGconn *admin = th_pg_connect("postgres"), *c;
	char sql[256], dir[600], err[1024];

	snprintf(name, len, "%s_%s", f->db, suffix);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
	th_exec(admin, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	th_exec(admin, sql);
	PQfinish(admin);
	c = th_pg_connect(name);
	snprintf(dir, sizeof(dir), "%s/schema-%s", f->dir, suffix);
	schema_before_007(dir);
	if (migrate_apply(c, dir, NULL, err, sizeof(err)) == -1)
		fail_msg("migrate to 006: %s", err);
	return c;
}

static void
test_migration_keeps_every_view_on_35_demo_days(void **state)
{
	struct th_fixture *f = *state;
	char pg[128], log[4096], old_db[96], err[1024];
	char before[5][80], after[5][80], kanald_views[5][80];
	PGconn *old;

	/* 35 days of demo traffic through kanald, which writes every tier. */
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", "--event-max-age", "40d", NULL });
	snprintf(pg, sizeof(pg), "dbname=%s", f->db);
	{
		const char *argv[] = { th_env("KANALCTL"), "demo", "--days",
		    "35", "--per-day", "1000", "--url", f->k.url, "--token",
		    f->token, "--pg", pg, NULL };

		assert_int_equal(th_run(log, sizeof(log), argv), 0);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_true(th_query_i64(f->conn, HOURLY) > 20000);
	assert_int_equal(th_query_i64(f->conn, DAILY),
	    th_query_i64(f->conn, HOURLY));
	assert_true(th_tiers_match(f->conn));
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly_default"), 0);
	views_digest(f->conn, kanald_views, 5);

	/* The same hourly rows in a database of 006's layout. */
	old = db_before_007(f, "old", old_db, sizeof(old_db));
	assert_int_equal(th_query_i64(old, "SELECT count(*) FROM "
	    "pg_class WHERE relname = 'usage_daily'"), 0);
	copy_hourly(f->conn, old);
	views_digest(old, before, 5);

	if (migrate_apply(old, th_env("KANAL_SCHEMA_DIR"), NULL, err,
	    sizeof(err)) == -1)
		fail_msg("migrate 007 on a populated database: %s", err);
	views_digest(old, after, 5);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(before[i], after[i]);
		/* kanald's own tiers give the views the same rows too. */
		assert_string_equal(after[i], kanald_views[i]);
	}
	assert_true(th_tiers_match(old));
	/* Every hour landed in its month's partition, none in the default. */
	assert_int_equal(th_query_i64(old, "SELECT count(*) FROM "
	    "kanal.usage_hourly_default"), 0);
	assert_true(th_query_i64(old, "SELECT count(*) FROM pg_inherits "
	    "WHERE inhparent = 'kanal.usage_hourly'::regclass") >= 4);
	PQfinish(old);
	th_db_drop(old_db);
}

/* ------------------------------------------------------ month boundary */

static void
test_month_boundaries_land_in_their_day_and_partition(void **state)
{
	struct th_fixture *f = *state;
	/* The month before this UTC month; s is the start of this one. */
	int64_t s = q64(f->conn, "SELECT extract(epoch FROM date_trunc("
	    "'month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')::bigint");
	char prev[8], cur[8], ahead[2][8];
	const int64_t wib_last = (s - 7 * 3600 - 1) * 1000;	/* 23:59:59 WIB */
	const int64_t wib_first = (s - 7 * 3600) * 1000;	/* 00:00:00 WIB */
	const int64_t utc_last = (s - 1) * 1000;		/* 23:59:59 UTC */
	const int64_t utc_first = s * 1000;			/* 00:00:00 UTC */

	th_query_text(f->conn, "SELECT to_char(now() AT TIME ZONE 'UTC' - "
	    "interval '1 month', 'YYYYMM')", prev, sizeof(prev));
	th_query_text(f->conn, "SELECT to_char(now() AT TIME ZONE 'UTC', "
	    "'YYYYMM')", cur, sizeof(cur));
	th_query_text(f->conn, "SELECT to_char(now() AT TIME ZONE 'UTC' + "
	    "interval '1 month', 'YYYYMM')", ahead[0], sizeof(ahead[0]));
	th_query_text(f->conn, "SELECT to_char(now() AT TIME ZONE 'UTC' + "
	    "interval '2 months', 'YYYYMM')", ahead[1], sizeof(ahead[1]));

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", "--event-max-age", "40d", NULL });
	assert_int_equal(send_at(f, "dukcapil.ktp", 1, wib_last), 0);
	assert_int_equal(send_at(f, "dukcapil.ktp", 2, wib_first), 0);
	assert_int_equal(send_at(f, "dukcapil.ktp", 4, utc_last), 0);
	assert_int_equal(send_at(f, "dukcapil.ktp", 8, utc_first), 0);
	th_wait_count(f->conn, HOURLY, 15);

	/* Hourly: by UTC month's partition. */
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly_%s", prev), 7);
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly_%s", cur), 8);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly_default"), 0);
	/* Daily and the monthly cells: by WIB day and month. */
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_daily WHERE day = (to_timestamp(%lld) AT TIME ZONE "
	    "'Asia/Jakarta')::date", (long long)(wib_last / 1000)), 1);
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_daily WHERE day = (to_timestamp(%lld) AT TIME ZONE "
	    "'Asia/Jakarta')::date", (long long)(wib_first / 1000)), 14);
	assert_int_equal(q64(f->conn, "SELECT count(DISTINCT day) FROM "
	    "kanal.usage_daily"), 2);
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_monthly_cell WHERE month = date_trunc('month', "
	    "to_timestamp(%lld) AT TIME ZONE 'Asia/Jakarta')::date",
	    (long long)(wib_last / 1000)), 1);
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_monthly_cell WHERE month = date_trunc('month', "
	    "to_timestamp(%lld) AT TIME ZONE 'Asia/Jakarta')::date",
	    (long long)(wib_first / 1000)), 14);
	assert_true(th_tiers_match(f->conn));
	/* The next two months are ready before their first hour. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(q64(f->conn, "SELECT count(*) FROM pg_inherits "
		    "WHERE inhrelid = to_regclass('kanal.usage_hourly_%s')",
		    ahead[i]), 1);
}

/* ----------------------------------------------------------- retention */

/*
 * A poster in a child process: n batches of 10 events now, each retried
 * until answered 200 (20 s at most). Writes how many events were
 * acknowledged to fd.
 */
static void
post_loop(struct th_fixture *f, int n, int fd)
{
	long long acked = 0;
	time_t end = time(NULL) + 20;

	for (int i = 0; i < n && time(NULL) < end; i++) {
		uint8_t body[8192];
		char id[32], hdr[256];
		size_t len;

		snprintf(id, sizeof(id), "load-%d", i);
		len = th_pack_batch(id, "dukcapil.kia", 10, body, sizeof(body));
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
		    "Content-Type: application/x-protobuf\r\n", f->token);
		while (time(NULL) < end) {
			if (th_http(&f->k, "POST", "/v1/events", hdr, body, len,
			    NULL, 0) == 200) {
				acked += 10;
				break;
			}
		}
	}
	if (write(fd, &acked, sizeof(acked)) != (ssize_t)sizeof(acked))
		_exit(1);
	_exit(0);
}

static void
test_retention_drops_old_months_and_late_events_count_daily(void **state)
{
	struct th_fixture *f = *state;
	/* The 15th of the month two before this UTC month, 05:00 UTC. */
	int64_t old = q64(f->conn, "SELECT extract(epoch FROM (date_trunc("
	    "'month', now() AT TIME ZONE 'UTC') - interval '2 months' + "
	    "interval '14 days 5 hours') AT TIME ZONE 'UTC')::bigint");
	int64_t kept;
	char part[64], out[8192];
	long long acked = 0;
	int fds[2];
	pid_t pid;
	int st;

	th_query_text(f->conn, "SELECT 'usage_hourly_' || to_char(now() AT "
	    "TIME ZONE 'UTC' - interval '2 months', 'YYYYMM')", part,
	    sizeof(part));
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", "--event-max-age", "80d",
	    "--retention-hourly-days", "0", NULL });
	assert_int_equal(send_at(f, "dukcapil.ktp", 3, old * 1000), 0);
	assert_int_equal(send_at(f, "dukcapil.ktp", 5, 0), 0);
	th_wait_count(f->conn, HOURLY, 8);
	assert_int_equal(q64(f->conn, "SELECT sum(events) FROM kanal.%s",
	    part), 3);

	/* Dry run: listed, nothing changed. */
	assert_int_equal(retention(f, "20", 1, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would drop "));
	assert_non_null(strstr(out, part));
	assert_int_equal(q64(f->conn, "SELECT count(*) FROM pg_class WHERE "
	    "relname = '%s'", part), 1);
	assert_int_equal(th_query_i64(f->conn, HOURLY), 8);

	/* For real, while a client posts and kanald flushes every 100 ms. */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		post_loop(f, 300, fds[1]);
	}
	close(fds[1]);
	assert_int_equal(retention(f, "20", 0, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "dropped "));
	assert_int_equal(read(fds[0], &acked, sizeof(acked)),
	    (ssize_t)sizeof(acked));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(acked > 0);
	assert_int_equal(q64(f->conn, "SELECT count(*) FROM pg_class WHERE "
	    "relname = '%s'", part), 0);
	kept = th_query_i64(f->conn, "SELECT extract(epoch FROM kept_from)::"
	    "bigint FROM kanal.hourly_retention");
	assert_true(kept > old);
	assert_int_equal(th_query_i64(f->conn, "SELECT hourly_days FROM "
	    "kanal.hourly_retention"), 20);
	/* Nothing acknowledged was lost, in any tier. */
	th_wait_count(f->conn, HOURLY, 5 + acked);
	th_wait_count(f->conn, DAILY, 8 + acked);

	/* A late event for the dropped month: daily and cells only. */
	assert_int_equal(send_at(f, "dukcapil.akta-lahir", 2,
	    (old + 3600) * 1000), 0);
	th_wait_count(f->conn, DAILY, 10 + acked);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_monthly_cell WHERE service_code = "
	    "'dukcapil.akta-lahir'"),
	    2);
	assert_int_equal(th_query_i64(f->conn, HOURLY), 5 + acked);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly_default"), 0);
	assert_int_equal(q64(f->conn, "SELECT count(*) FROM pg_class WHERE "
	    "relname = '%s'", part), 0);
	th_wait_metric(&f->k, "kanal_late_events_past_retention_total", 2);
	assert_int_equal(th_metric(&f->k, "kanal_hourly_kept_from_seconds"),
	    kept);
	assert_true(th_tiers_match(f->conn));

	/* Again: nothing more to drop, and nothing changes. */
	assert_int_equal(retention(f, "20", 0, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "nothing to drop"));
	assert_int_equal(th_query_i64(f->conn, DAILY), 10 + acked);
}

/* ------------------------------------------------- a missing partition */

static void
test_flush_meeting_a_missing_partition_goes_on(void **state)
{
	struct th_fixture *f = *state;
	char cur[64], sql[256];
	long long made;

	th_query_text(f->conn, "SELECT 'usage_hourly_' || to_char(now() AT "
	    "TIME ZONE 'UTC', 'YYYYMM')", cur, sizeof(cur));
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	assert_int_equal(send_at(f, "dukcapil.ktp", 1, 0), 0);
	th_wait_count(f->conn, HOURLY, 1);
	made = th_metric(&f->k, "kanal_hourly_partitions_created_total");

	/* An operator drops this month's partition behind kanald's back. */
	snprintf(sql, sizeof(sql), "ALTER TABLE kanal.usage_hourly DETACH "
	    "PARTITION kanal.%s", cur);
	th_exec(f->conn, sql);
	snprintf(sql, sizeof(sql), "DROP TABLE kanal.%s", cur);
	th_exec(f->conn, sql);
	assert_int_equal(th_query_i64(f->conn, HOURLY), 0);

	/* The default catches the rows; kanald makes the month again. */
	assert_int_equal(send_at(f, "dukcapil.ktp", 2, 0), 0);
	th_wait_metric(&f->k, "kanal_hourly_partitions_created_total",
	    made + 1);
	assert_int_equal(th_query_i64(f->conn, HOURLY), 2);
	snprintf(sql, sizeof(sql), "SELECT sum(events) FROM kanal.%s", cur);
	assert_int_equal(th_query_i64(f->conn, sql), 2);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly_default"), 0);
	assert_int_equal(th_metric(&f->k, "kanal_hourly_default_partition_rows"),
	    0);
	assert_int_equal(th_query_i64(f->conn, DAILY), 3);
	assert_int_equal(th_metric(&f->k, "kanal_database_errors_total"), 0);
	assert_true(th_log_count(&f->k, "rows in kanal.usage_hourly_default")
	    >= 1);
	/* And goes on. */
	assert_int_equal(send_at(f, "dukcapil.ktp", 4, 0), 0);
	th_wait_count(f->conn, DAILY, 7);
}

/* ----------------------------------------------------------- bad input */

static void
test_bad_arguments_are_refused_by_name(void **state)
{
	struct th_fixture *f = *state;
	static const struct {
		const char *sql;
		const char *state;
	} sql_cases[] = {
		{ "SELECT kanal.hourly_partitions_ensure(NULL, now())", "22023" },
		{ "SELECT kanal.hourly_partitions_ensure(now(), now() - "
		  "interval '1 day')", "22023" },
		{ "SELECT kanal.hourly_partitions_ensure('-infinity', now())",
		  "22023" },
		{ "SELECT kanal.hourly_partitions_ensure('1990-01-01', now())",
		  "22023" },
		{ "SELECT * FROM kanal.hourly_retention_apply(0)", "22023" },
		{ "SELECT * FROM kanal.hourly_retention_apply(36501)", "22023" },
		{ "SELECT * FROM kanal.hourly_retention_apply(-5, true)",
		  "22023" },
	};
	static const struct {
		const char *days;
		const char *extra;
		int status;
		const char *says;
	} cli_cases[] = {
		{ "0", NULL, 2, "--hourly-days is a whole number" },
		{ "36501", NULL, 2, "--hourly-days is a whole number" },
		{ "ten", NULL, 2, "--hourly-days is a whole number" },
		{ "10", "--bogus", 2, "bogus" },
	};
	char pg[128], out[4096], db6[96];
	PGconn *ingest;

	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest", f->db);
	ingest = PQconnectdb(pg);
	assert_int_equal(PQstatus(ingest), CONNECTION_OK);
	for (size_t i = 0; i < sizeof(sql_cases) / sizeof(sql_cases[0]); i++) {
		PGresult *r = PQexec(ingest, sql_cases[i].sql);
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		if (s == NULL || strcmp(s, sql_cases[i].state) != 0)
			fail_msg("%s: SQLSTATE %s, want %s", sql_cases[i].sql,
			    s != NULL ? s : "none", sql_cases[i].state);
		PQclear(r);
	}
	PQfinish(ingest);
	/* Nothing was changed by the refusals. */
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.hourly_retention WHERE kept_from = '-infinity' AND "
	    "hourly_days IS NULL"), 1);

	for (size_t i = 0; i < sizeof(cli_cases) / sizeof(cli_cases[0]); i++) {
		const char *argv[] = { th_env("KANALCTL"), "retention", "--pg",
		    pg, "--hourly-days", cli_cases[i].days, cli_cases[i].extra,
		    NULL };
		char log[4096];
		int fd[2], saved, status;
		ssize_t n;

		/* The message goes to stderr: catch it. */
		assert_int_equal(pipe(fd), 0);
		saved = dup(2);
		dup2(fd[1], 2);
		close(fd[1]);
		status = th_run(out, sizeof(out), argv);
		dup2(saved, 2);
		close(saved);
		n = read(fd[0], log, sizeof(log) - 1);
		close(fd[0]);
		log[n > 0 ? n : 0] = '\0';
		assert_int_equal(status, cli_cases[i].status);
		if (strstr(log, cli_cases[i].says) == NULL)
			fail_msg("kanalctl retention --hourly-days %s: says "
			    "\"%s\", want \"%s\"", cli_cases[i].days, log,
			    cli_cases[i].says);
	}

	/* A database without 007: exit 1, and the hint to migrate. */
	{
		const char *argv[] = { th_env("KANALCTL"), "retention", "--pg",
		    pg, NULL };

		PQfinish(db_before_007(f, "006", db6, sizeof(db6)));
		snprintf(pg, sizeof(pg), "dbname=%s", db6);
		assert_int_equal(th_run(out, sizeof(out), argv), 1);
		th_db_drop(db6);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_migration_keeps_every_view_on_35_demo_days, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_month_boundaries_land_in_their_day_and_partition,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retention_drops_old_months_and_late_events_count_daily,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_flush_meeting_a_missing_partition_goes_on, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_arguments_are_refused_by_name, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
