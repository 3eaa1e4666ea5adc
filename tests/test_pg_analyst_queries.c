/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sixteen example queries of docs/analysts.md, taken from the file
 * itself (every ```sql block, so the guide cannot drift from the schema):
 * there must be exactly sixteen; each runs as kanal_analyst (a real login
 * with only that role's rights, in a session whose TimeZone is not WIB)
 * and returns rows on a month of `kanalctl demo` traffic, sent to a
 * kanald with a reach key so that the six of distinct residents have
 * sketches to read; and on known counts written as the owner, nine of the
 * first ten return exactly the figures worked out by hand below.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define NQUERIES 16
#define README_QUERY NQUERIES	/* README's "An analyst's first query" */

static char *queries[NQUERIES + 1];

static void
free_queries(void)
{
	for (int i = 0; i <= NQUERIES; i++) {
		free(queries[i]);
		queries[i] = NULL;
	}
}

/*
 * Copies every block of the file rel (in the source tree) fenced by a line
 * "```sql" and a line "```" into queries[first], queries[first + 1], ...;
 * fails the test if there are more than max. Returns how many.
 */
static size_t
load_blocks(const char *rel, size_t first, size_t max)
{
	char path[600], line[1024];
	size_t nq = 0, len = 0, cap = 0;
	char *cur = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", th_env("KANAL_SOURCE_DIR"), rel);
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t ll = strlen(line);

		if (cur == NULL) {
			if (strcmp(line, "```sql\n") != 0)
				continue;
			if (nq == max)
				fail_msg("%s: more than %zu ```sql blocks", path,
				    max);
			cap = 4096;
			len = 0;
			cur = calloc(1, cap);
			if (cur == NULL)
				fail_msg("out of memory");
			continue;
		}
		if (strcmp(line, "```\n") == 0) {
			queries[first + nq++] = cur;
			cur = NULL;
			continue;
		}
		if (len + ll + 1 > cap) {
			char *n = realloc(cur, cap * 2 + ll);

			if (n == NULL)
				fail_msg("out of memory");
			cur = n;
			cap = cap * 2 + ll;
		}
		memcpy(cur + len, line, ll + 1);
		len += ll;
	}
	fclose(fp);
	if (cur != NULL)
		fail_msg("%s: a ```sql block is not closed", path);
	return nq;
}

/* The ten of docs/analysts.md (exactly ten) and the README's one. */
static void
load_queries(void)
{
	size_t n;

	free_queries();
	if ((n = load_blocks("docs/analysts.md", 0, NQUERIES)) != NQUERIES)
		fail_msg("docs/analysts.md: %zu ```sql blocks, want exactly "
		    "%d", n, NQUERIES);
	if (load_blocks("README.md", README_QUERY, 1) != 1)
		fail_msg("README.md: no ```sql block");
}

static int
setup_demo(void **state)
{
	*state = th_fixture_new("aqdemo", "*");
	return 0;
}

static int
setup_known(void **state)
{
	*state = th_fixture_new("aqknown", "*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* A login as kanal_analyst, in a session that is not on WIB. */
static PGconn *
analyst_connect(const char *db)
{
	char conninfo[256];
	PGconn *c;

	snprintf(conninfo, sizeof(conninfo), "dbname=%s user=kanal_analyst",
	    db);
	c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect as kanal_analyst: %s", PQerrorMessage(c));
	th_exec(c, "SET TimeZone = 'America/Sao_Paulo'");
	return c;
}

/*
 * Runs query i; fails the test on an error. The rows come back as text:
 * fields joined by '|', NULL as "NULL", each row ended by '\n'.
 */
static int
run_query(PGconn *c, int i, char *out, size_t len)
{
	PGresult *r = PQexec(c, queries[i]);
	size_t n = 0;
	int rows;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s query %d failed as kanal_analyst: %s",
		    i == README_QUERY ? "README.md" : "docs/analysts.md",
		    i + 1, PQresultErrorMessage(r));
	rows = PQntuples(r);
	out[0] = '\0';
	for (int row = 0; row < rows; row++)
		for (int col = 0; col < PQnfields(r); col++) {
			const char *v = PQgetisnull(r, row, col) ? "NULL" :
			    PQgetvalue(r, row, col);
			int w = snprintf(out + n, len - n, "%s%s", v,
			    col + 1 < PQnfields(r) ? "|" : "\n");

			if (w < 0 || (size_t)w >= len - n)
				fail_msg("query %d: answer over %zu bytes",
				    i + 1, len);
			n += (size_t)w;
		}
	PQclear(r);
	return rows;
}

/* Every query answers, with rows, on demo traffic over two months. */
static void
test_every_query_runs_on_demo_data(void **state)
{
	struct th_fixture *f = *state;
	static char out[1 << 16];
	char pg[128], log[4096], key[700];
	PGconn *a;

	load_queries();
	snprintf(key, sizeof(key), "%s/reach.key", f->dir);
	{
		const char *argv[] = { th_env("KANALCTL"), "reach", "keygen", key,
		    NULL };

		assert_int_equal(th_run(log, sizeof(log), argv), 0);
	}
	/* 35 days: last month has data whatever today's date. */
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", "--event-max-age", "40d",
	    "--reach-key-file", key, NULL });
	snprintf(pg, sizeof(pg), "dbname=%s", f->db);
	{
		const char *argv[] = { th_env("KANALCTL"), "demo", "--days",
		    "35", "--per-day", "1000", "--url", f->k.url, "--token",
		    f->token, "--pg", pg, NULL };

		assert_int_equal(th_run(log, sizeof(log), argv), 0);
	}
	/* SIGTERM writes what kanald holds before it exits 0. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_true(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly") > 20000);

	a = analyst_connect(f->db);
	for (int i = 0; i <= NQUERIES; i++) {
		int rows = run_query(a, i, out, sizeof(out));

		if (rows == 0)
			fail_msg("%s query %d returned no rows on demo data",
			    i == README_QUERY ? "README.md" : "docs/analysts.md",
			    i + 1);
	}
	PQfinish(a);
}

/*
 * Known counts, written as the owner: T is the 2nd of this local month at
 * 10:00 WIB, L the 2nd of last month. Durations in ms.
 */
static const char known_sql[] =
    "WITH b AS (SELECT date_trunc('month', now() AT TIME ZONE "
    "  'Asia/Jakarta') AS m), "
    "t AS (SELECT (m + interval '1 day 10 hours') AT TIME ZONE "
    "  'Asia/Jakarta' AS t, (m - interval '1 month' + interval "
    "  '1 day 10 hours') AT TIME ZONE 'Asia/Jakarta' AS l FROM b) "
    "INSERT INTO kanal.usage_hourly (bucket, service_code, channel, "
    "  region_code, outcome, assisted, events, duration_ms_sum, "
    "  duration_events) "
    "SELECT CASE v.w WHEN 'T' THEN t.t ELSE t.l END, v.s, v.c, v.r, v.o, "
    "  v.a, v.e, v.d, v.de FROM t, (VALUES "
    "  ('T', 'dukcapil.akta-lahir', 'web', '32.73.01', 'completed', false, 30, 7200000, 30),"
    "  ('T', 'dukcapil.akta-lahir', 'web', '32.73.01.1001', 'completed', true, 10, 3000000, 10),"
    "  ('T', 'dukcapil.akta-lahir', 'counter', '32.73.01', 'completed', false, 60, 90000000, 60),"
    "  ('T', 'dukcapil.akta-lahir', 'counter', '32.73.01', 'abandoned', false, 20, 0, 0),"
    "  ('T', 'dpmptsp.izin-usaha', 'counter', '32.73.02', 'completed', false, 5, 0, 0),"
    "  ('T', 'bapenda.pbb', 'partner', '32.73.02', 'completed', false, 50, 0, 0),"
    "  ('T', 'bapenda.pbb', 'counter', '32.73.02', 'completed', true, 50, 0, 0),"
    "  ('L', 'dukcapil.akta-lahir', 'web', '32.73.01', 'completed', false, 20, 0, 0),"
    "  ('L', 'dukcapil.akta-lahir', 'counter', '32.73.01', 'completed', false, 80, 0, 0),"
    "  ('L', 'dpmptsp.izin-usaha', 'counter', '32.73.02', 'completed', false, 4, 0, 0)"
    ") AS v(w, s, c, r, o, a, e, d, de)";

#define DUKCAPIL "Dinas Kependudukan dan Pencatatan Sipil"
#define DPMPTSP "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu"
#define BAPENDA "Badan Pendapatan Daerah"

/*
 * The answers, worked out by hand from known_sql. This month: Sukasari
 * (32.73.01) completed 30 + 10 + 60 = 100, digital 40 of which 10
 * assisted; Coblong (32.73.02) completed 5 + 50 + 50 = 105, digital 50 (all
 * self-service). Akta lahir digital mean (30 x 4 min + 10 x 5 min) / 40 =
 * 4.25 min, counter 25 min: 40 x 20.75 min = 13.8 hours saved.
 */
static const struct {
	int query;		/* 1-based, as numbered in the guide */
	const char *want;	/* {L}: the first day of last month */
} known_answers[] = {
	{ 1, "32.73.01|Sukasari|100|40.0|30.0\n"
	     "32.73.02|Coblong|105|47.6|47.6\n" },
	{ 2, "dukcapil.akta-lahir|Penerbitan Akta Kelahiran|" DUKCAPIL
	     "|80|40|40.0\n"
	     "bapenda.pbb|Pajak Bumi dan Bangunan Perdesaan dan Perkotaan "
	     "(PBB-P2)|" BAPENDA "|50|50|50.0\n"
	     "dpmptsp.izin-usaha|Perizinan Berusaha / Nomor Induk Berusaha "
	     "(NIB)|" DPMPTSP "|5|0|0.0\n" },
	{ 3, "dpmptsp.izin-usaha|0.0|0.0|0.0\n"
	     "dukcapil.akta-lahir|20.0|40.0|20.0\n"
	     "bapenda.pbb|NULL|50.0|NULL\n" },
	{ 4, "dukcapil.akta-lahir|40|10|25.0|30.0\n"
	     "bapenda.pbb|50|0|0.0|50.0\n" },
	{ 5, "dukcapil.akta-lahir|4.3|25.0|14\n" },
	{ 6, "dukcapil.akta-lahir|32.73.01|Sukasari|90|81.8\n"
	     "bapenda.pbb|32.73.02|Coblong|100|100.0\n" },
	{ 8, "counter|manual|135|115|85.2\n"
	     "partner|digital|50|50|100.0\n"
	     "web|digital|40|40|100.0\n" },
	{ 9, BAPENDA "|1|100|50.0|50.0\n"
	     DUKCAPIL "|1|120|40.0|30.0\n"
	     DPMPTSP "|1|5|0.0|0.0\n" },
	{ 10, "{L}|32.73.01|Sukasari|dukcapil.akta-lahir|f|100|20|80|20.0|"
	      "20.0|100.0\n"
	      "{L}|32.73.02|Coblong|dpmptsp.izin-usaha|t|NULL|NULL|NULL|NULL|"
	      "NULL|NULL\n" },
};

/* want with {L} replaced by last month's first day, YYYY-MM-DD. */
static void
expand(const char *want, const char *last, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = want; *p != '\0' && n + 11 < len; p++) {
		if (strncmp(p, "{L}", 3) == 0) {
			memcpy(out + n, last, 10);
			n += 10;
			p += 2;
		} else
			out[n++] = *p;
	}
	out[n] = '\0';
}

/* Nine of the queries give exactly the figures worked out by hand. */
static void
test_queries_give_known_figures(void **state)
{
	struct th_fixture *f = *state;
	static char out[1 << 16], want[4096];
	char last[16];
	PGconn *a;

	load_queries();
	th_exec(f->conn, known_sql);
	th_tiers_fill(f->conn);
	th_query_text(f->conn, "SELECT to_char(date_trunc('month', now() AT "
	    "TIME ZONE 'Asia/Jakarta') - interval '1 month', 'YYYY-MM-DD')",
	    last, sizeof(last));
	a = analyst_connect(f->db);
	for (size_t i = 0; i < sizeof(known_answers) /
	    sizeof(known_answers[0]); i++) {
		int q = known_answers[i].query;

		run_query(a, q - 1, out, sizeof(out));
		expand(known_answers[i].want, last, want, sizeof(want));
		if (strcmp(out, want) != 0)
			fail_msg("docs/analysts.md query %d on known counts:\n"
			    "got:\n%swant:\n%s", q, out, want);
	}
	/* The other one runs too (its figures depend on today's date). */
	run_query(a, 6, out, sizeof(out));
	/*
	 * The README's first query, by kecamatan: the kelurahan row
	 * (32.73.01.1001, 10 web) counts in Sukasari, lowest take-up first.
	 */
	run_query(a, README_QUERY, out, sizeof(out));
	if (strcmp(out, "Sukasari|40|80|40.0\nCoblong|50|55|47.6\n") != 0)
		fail_msg("README.md's query on known counts:\ngot:\n%s", out);
	PQfinish(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queries_give_known_figures,
		    setup_known, teardown),
		cmocka_unit_test_setup_teardown(
		    test_every_query_runs_on_demo_data, setup_demo, teardown),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	free_queries();
	return rc;
}
