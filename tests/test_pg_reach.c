/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pg_reach: distinct residents reached (schema/010_reach.sql) against
 * a real PostgreSQL with the postgresql-hll extension.
 *
 * A synthetic population with a known overlap is written as the owner into
 * public.reach_truth (one row per use: key, month, service, channel,
 * region, resident), and its sketches are made from it in SQL with
 * hll_add_agg(hll_hash_bigint(resident, seed), 11, 5, 0, 1), the format
 * kanald writes (log2m 11, regwidth 5, no explicit representation, sparse
 * on); key 2 hashes with another seed, as another city key would. Every
 * figure of kanal.reach_monthly is then compared with the exact
 * count(DISTINCT) of the same cell.
 *
 * The bound. One HLL estimate of n has the relative standard error
 * r = 1.04 / sqrt(2^11) = 0.02298 (an upper bound below some 5,000, where
 * linear counting is used). A derived figure (both = D + M - U, digital
 * only = U - M, manual only = U - D) is a signed sum of estimates; its
 * standard deviation is at most the sum of theirs, r (D + M + U) and
 * r (U + M), r (U + D). We allow z = 6 such standard deviations, plus 1
 * for the rounding of each count: a normal error passes a 6-sigma check
 * with probability 1 - 2e-9, so over the 312 figures checked here (52
 * cells) a correct implementation fails with probability under 1e-6 before
 * counting how loose the bounds of the derived figures are (errors that
 * share registers largely cancel). The data and the hash are fixed, so
 * the outcome is deterministic: the test prints the largest error seen in
 * standard deviations.
 *
 * The population, month 2026-03 (key 1):
 *   residents 1..20,000 in kecamatan 32.73.01..03 (id % 3), by id % 10:
 *   0-3 digital only (8,000), 4-6 manual only (6,000), 7-9 both (6,000),
 *   on three services (the manual use of a "both" resident often on
 *   another service than the digital one); digital is web or mobile_app,
 *   manual counter or phone; each use is recorded twice (a duplicate
 *   must not count). Also 500 residents sent at the city level 32.73
 *   (digital only: they are in the city's rows, in no kecamatan's), 5 in
 *   32.73.04 (a cell under 10: suppressed), 50 in 32.73.05 (45 digital,
 *   5 manual: shown, its manual figures under 10 not), and 100 with the
 *   province code 32 (in no city: in no row).
 *   City row: any 20,555, digital 14,545, manual 12,010, both 6,000,
 *   digital only 8,545, manual only 6,010.
 * Month 2026-04: residents 5,001..25,000 under key 1 and, after a key
 * rotation (first used 2026-04-16), 20,001..26,000 under key 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define OUTLEN 65536
#define Z "6"
/* 1.04 / sqrt(2048) */
#define RSE "0.022981"

static char db[64], pg_analyst[256], pg_owner[256];
static PGconn *conn;

/* --------------------------------------------------------------- helpers */

static void
exec_f(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
exec_f(PGconn *c, const char *fmt, ...)
{
	char sql[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	th_exec(c, sql);
}

static void
text_f(PGconn *c, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
text_f(PGconn *c, char *out, size_t len, const char *fmt, ...)
{
	char sql[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	th_query_text(c, sql, out, len);
}

/* As role, sql must fail with insufficient_privilege (42501). */
static void
refused(PGconn *c, const char *role, const char *sql)
{
	PGresult *res;
	const char *code;

	exec_f(c, "BEGIN; SET LOCAL ROLE %s", role);
	res = PQexec(c, sql);
	code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK)
		fail_msg("%s must be refused: %s", role, sql);
	if (code == NULL || strcmp(code, "42501") != 0)
		fail_msg("%s: %s failed with %s, want 42501: %s", role, sql,
		    code != NULL ? code : "?", PQresultErrorMessage(res));
	PQclear(res);
	th_exec(c, "ROLLBACK");
}

/* As role, sql must succeed. */
static void
allowed(PGconn *c, const char *role, const char *sql)
{
	PGresult *res;

	exec_f(c, "BEGIN; SET LOCAL ROLE %s", role);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s must be allowed: %s\n  got: %s", role, sql,
		    PQresultErrorMessage(res));
	PQclear(res);
	th_exec(c, "ROLLBACK");
}

/* sh -c cmd, stdout and stderr into out; the exit status. */
static int
sh(char *out, const char *cmd)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	return th_run(out, OUTLEN, argv);
}

/*
 * needle is in hay, a line break in hay counting as a space (the report
 * wraps its notes to 100 columns).
 */
static void
contains(const char *hay, const char *needle)
{
	char *flat = strdup(hay);

	assert_non_null(flat);
	for (char *p = flat; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	if (strstr(hay, needle) == NULL && strstr(flat, needle) == NULL)
		fail_msg("\"%s\" not in:\n%s", needle, hay);
	free(flat);
}

/* The line of out starting with label; fails when there is none. */
static void
line_of(const char *out, const char *label, char *line, size_t len)
{
	const char *p = out;

	for (;;) {
		const char *end = strchr(p, '\n');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (strncmp(p, label, strlen(label)) == 0) {
			snprintf(line, len, "%.*s", (int)n, p);
			return;
		}
		if (end == NULL)
			fail_msg("no line starting \"%s\" in:\n%s", label, out);
		p = end + 1;
	}
}

/* -------------------------------------------------------------- the data */

#define SERVICES "ARRAY['dukcapil.kia','dukcapil.akta-lahir','dinsos.dtks']"

/*
 * Residents lo..hi of key k in month m by the rule of the header: their
 * digital uses and their manual uses, each twice.
 */
static void
population(PGconn *c, int key, const char *month, int lo, int hi)
{
	exec_f(c,
	    "WITH r AS (SELECT id, '32.73.0' || (1 + id %% 3) AS region,"
	    "                  id %% 10 AS cls,"
	    "                  (" SERVICES ")[1 + (id / 10) %% 3] AS svc_d,"
	    "                  (" SERVICES ")[1 + (id / 7) %% 3] AS svc_m"
	    "             FROM generate_series(%d, %d) id)"
	    "INSERT INTO public.reach_truth"
	    " SELECT %d, '%s'::date, svc_d, CASE WHEN id %% 2 = 0 THEN 'web'"
	    "        ELSE 'mobile_app' END, region, id"
	    "   FROM r, generate_series(1, 2) twice WHERE cls < 4 OR cls >= 7"
	    " UNION ALL"
	    " SELECT %d, '%s'::date, svc_m, CASE WHEN id %% 4 < 2 THEN 'counter'"
	    "        ELSE 'phone' END, region, id"
	    "   FROM r, generate_series(1, 2) twice WHERE cls >= 4",
	    lo, hi, key, month, key, month);
}

/* The sketches of key k's truth, monthly and daily, as kanald would. */
static void
sketches(PGconn *c, int key)
{
	exec_f(c, "INSERT INTO kanal.reach_monthly_sketch"
	    " SELECT month, service_code, channel, region_code, key_id,"
	    "        hll_add_agg(hll_hash_bigint(resident, %d), 11, 5, 0, 1)"
	    "   FROM public.reach_truth WHERE key_id = %d"
	    "  GROUP BY 1, 2, 3, 4, 5", key == 1 ? 0 : key, key);
	exec_f(c, "INSERT INTO kanal.reach_daily"
	    " SELECT month + (resident %% 28)::int, service_code, channel,"
	    "        region_code, key_id,"
	    "        hll_add_agg(hll_hash_bigint(resident, %d), 11, 5, 0, 1)"
	    "   FROM public.reach_truth WHERE key_id = %d"
	    "  GROUP BY 1, 2, 3, 4, 5", key == 1 ? 0 : key, key);
}

/* Events for the report (it needs a month with events to say anything). */
static const char *const usage_sql =
    "INSERT INTO kanal.usage_hourly VALUES "
    "('2026-02-10 03:00+00', 'dukcapil.kia', 'web', '32.73.01', "
    "  'completed', false, 100, 0, 0),"
    "('2026-03-10 03:00+00', 'dukcapil.kia', 'web', '32.73.01', "
    "  'completed', false, 300, 0, 0),"
    "('2026-03-10 03:00+00', 'dukcapil.kia', 'counter', '32.73.02', "
    "  'completed', false, 200, 0, 0),"
    "('2026-04-10 03:00+00', 'dukcapil.kia', 'web', '32.73.01', "
    "  'completed', false, 400, 0, 0)";

static int
group_setup(void **state)
{
	char v[64];

	(void)state;
	th_db_create("reach", db, sizeof(db));
	conn = th_pg_connect(db);
	snprintf(pg_analyst, sizeof(pg_analyst), "dbname=%s user=kanal_analyst",
	    db);
	snprintf(pg_owner, sizeof(pg_owner), "dbname=%s", db);
	th_exec(conn, "CREATE TABLE public.reach_truth (key_id bigint, month "
	    "date, service_code text, channel text, region_code text, "
	    "resident bigint)");

	text_f(conn, v, sizeof(v), "SELECT kanal.reach_key_use(1)");
	assert_string_equal(v, "active");
	th_exec(conn, "UPDATE kanal.reach_key SET first_used = "
	    "'2026-03-01 00:00+07' WHERE key_id = 1");
	population(conn, 1, "2026-03-01", 1, 20000);
	population(conn, 1, "2026-04-01", 5001, 25000);
	th_exec(conn, "INSERT INTO public.reach_truth"
	    " SELECT 1, '2026-03-01'::date, 'dukcapil.kia', 'web', '32.73', g"
	    "   FROM generate_series(30001, 30500) g"
	    " UNION ALL SELECT 1, '2026-03-01', 'dukcapil.kia', 'counter',"
	    "        '32.73.04', g FROM generate_series(40001, 40005) g"
	    " UNION ALL SELECT 1, '2026-03-01', 'dukcapil.kia',"
	    "        CASE WHEN g <= 50045 THEN 'web' ELSE 'counter' END,"
	    "        '32.73.05', g FROM generate_series(50001, 50050) g"
	    " UNION ALL SELECT 1, '2026-03-01', 'dukcapil.kia', 'web', '32', g"
	    "   FROM generate_series(60001, 60100) g");
	sketches(conn, 1);

	/* The rotation, as the header of 010 says, then key 2's half. */
	text_f(conn, v, sizeof(v), "SELECT kanal.reach_key_retire()");
	assert_string_equal(v, "1");
	text_f(conn, v, sizeof(v), "SELECT kanal.reach_key_use(2)");
	assert_string_equal(v, "active");
	th_exec(conn, "UPDATE kanal.reach_key SET first_used = "
	    "'2026-04-16 00:00+07' WHERE key_id = 2");
	population(conn, 2, "2026-04-01", 20001, 26000);
	sketches(conn, 2);

	th_exec(conn, usage_sql);
	th_tiers_fill(conn);
	th_exec(conn, "ANALYZE");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	PQfinish(conn);
	th_db_drop(db);
	return 0;
}

/* ------------------------------------------------------------ the views */

/*
 * The exact figures of every cell of reach_monthly, from the truth: the
 * same four groupings, per key.
 */
#define TRUTH_CELLS \
	"WITH t AS (" \
	"  SELECT x.key_id, x.month, x.service_code, c.mode, x.resident," \
	"         substring(x.region_code FROM '^([0-9]+[.][0-9]+)([.]|$)')" \
	"           AS city," \
	"         substring(x.region_code FROM" \
	"           '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)') AS kec" \
	"    FROM public.reach_truth x" \
	"    LEFT JOIN kanal.channel c ON c.code = x.channel)," \
	" cells AS (" \
	"  SELECT month, key_id, city, kec, service_code," \
	"         GROUPING(kec) AS gk," \
	"         count(DISTINCT resident)::float8 AS a," \
	"         count(DISTINCT resident) FILTER (WHERE mode = 'digital')" \
	"           ::float8 AS d," \
	"         count(DISTINCT resident) FILTER (WHERE mode = 'manual')" \
	"           ::float8 AS m," \
	"         count(DISTINCT resident) FILTER (WHERE mode IN" \
	"           ('digital', 'manual'))::float8 AS u" \
	"    FROM t WHERE city IS NOT NULL" \
	"   GROUP BY GROUPING SETS ((month, key_id, city)," \
	"         (month, key_id, city, service_code)," \
	"         (month, key_id, city, kec)," \
	"         (month, key_id, city, kec, service_code))" \
	"  HAVING GROUPING(kec) = 1 OR kec IS NOT NULL)," \
	" j AS (" \
	"  SELECT c.*, v.*, " RSE " AS r" \
	"    FROM cells c" \
	"    FULL JOIN kanal.reach_monthly v" \
	"      ON v.month = c.month AND v.key_id = c.key_id" \
	"     AND v.city_code = c.city" \
	"     AND v.kecamatan_code IS NOT DISTINCT FROM c.kec" \
	"     AND v.service_code IS NOT DISTINCT FROM c.service_code)"

/* |estimate - truth| / (bound's sigma), for each figure of a row of j. */
#define ZSCORES \
	"abs(residents_any - a) / greatest(r * a, 1e-9)," \
	"abs(residents_digital - d) / greatest(r * d, 1e-9)," \
	"abs(residents_manual - m) / greatest(r * m, 1e-9)," \
	"abs(residents_both - (d + m - u)) / greatest(r * (d + m + u), 1e-9)," \
	"abs(residents_digital_only - (u - m)) / greatest(r * (u + m), 1e-9)," \
	"abs(residents_manual_only - (u - d)) / greatest(r * (u + d), 1e-9)"

static void
every_figure_is_within_its_error_bound_of_the_truth(void **state)
{
	char v[256];
	int64_t rows, bad, unmatched;

	(void)state;
	rows = th_query_i64(conn, TRUTH_CELLS " SELECT count(*) FROM j");
	unmatched = th_query_i64(conn, TRUTH_CELLS " SELECT count(*) FROM j "
	    "WHERE j.a IS NULL OR j.residents_any IS NULL");
	assert_int_equal(unmatched, 0);
	/* March: the city and 32.73.01..03 with their 3 services (4 x 4),
	   32.73.04 and 05 with one (2 x 2); April, per key, the city and
	   32.73.01..03 (4 x 4): 20 + 2 x 16. */
	assert_int_equal(rows, 52);
	bad = th_query_i64(conn, TRUTH_CELLS " SELECT count(*) FROM j WHERE "
	    "abs(residents_any - a) > " Z " * r * a + 1 OR "
	    "abs(residents_digital - d) > " Z " * r * d + 1 OR "
	    "abs(residents_manual - m) > " Z " * r * m + 1 OR "
	    "abs(residents_both - (d + m - u)) > " Z " * r * (d + m + u) + 1 OR "
	    "abs(residents_digital_only - (u - m)) > " Z " * r * (u + m) + 1 OR "
	    "abs(residents_manual_only - (u - d)) > " Z " * r * (u + d) + 1");
	if (bad != 0) {
		char worst[4096];

		th_query_text(conn, TRUTH_CELLS " SELECT string_agg(format("
		    "'%s %s %s %s: any %s/%s digital %s/%s manual %s/%s both "
		    "%s/%s', month, key_id, kecamatan_code, service_code, "
		    "residents_any, a, residents_digital, d, residents_manual, "
		    "m, residents_both, d + m - u), E'\\n') FROM j", worst,
		    sizeof(worst));
		fail_msg("%lld of %lld cells off by more than " Z " sigma:\n%s",
		    (long long)bad, (long long)rows, worst);
	}
	th_query_text(conn, TRUTH_CELLS " SELECT round(max(greatest(" ZSCORES
	    "))::numeric, 2) FROM j", v, sizeof(v));
	printf("# %lld cells, largest error %s standard deviations "
	    "(bound " Z ")\n", (long long)rows, v);

	/* The city row of March, the figures of the header. */
	text_f(conn, v, sizeof(v), "SELECT concat_ws(' ', "
	    "abs(residents_any - 20555) <= " Z " * " RSE " * 20555 + 1, "
	    "abs(residents_digital - 14545) <= " Z " * " RSE " * 14545 + 1, "
	    "abs(residents_manual - 12010) <= " Z " * " RSE " * 12010 + 1, "
	    "abs(residents_both - 6000) <= " Z " * " RSE " * (14545 + 12010 + "
	    "20555) + 1, "
	    "abs(residents_digital_only - 8545) <= " Z " * " RSE " * (20555 + "
	    "12010) + 1, "
	    "relative_standard_error, se_any = round(" RSE " * residents_any) "
	    "OR abs(se_any - " RSE " * residents_any) <= 2) "
	    "FROM kanal.reach_monthly WHERE month = '2026-03-01' AND "
	    "key_id = 1 AND city_code = '32.73' AND kecamatan_code IS NULL AND "
	    "service_code IS NULL");
	assert_string_equal(v, "t t t t t 0.02298 t");
	/* The 100 residents sent with the province code are in no row. */
	assert_int_equal(th_query_i64(conn, "SELECT count(*) FROM "
	    "kanal.reach_monthly WHERE city_code IS NULL OR city_code = '32'"),
	    0);
}

static void
daily_sketches_union_to_the_monthly_ones(void **state)
{
	(void)state;
	/* The same hash and a register-wise max: exactly the same registers. */
	assert_int_equal(th_query_i64(conn, "SELECT count(*) FROM ("
	    "SELECT date_trunc('month', day)::date AS month, service_code, "
	    "channel, region_code, key_id, hll_union_agg(sketch) AS s "
	    "FROM kanal.reach_daily GROUP BY 1, 2, 3, 4, 5) d "
	    "FULL JOIN kanal.reach_monthly_sketch m USING (month, "
	    "service_code, channel, region_code, key_id) "
	    "WHERE d.s IS NULL OR m.sketch IS NULL OR "
	    "hll_cardinality(d.s) <> hll_cardinality(m.sketch) OR "
	    "hll_cardinality(hll_union(d.s, m.sketch)) <> "
	    "hll_cardinality(m.sketch)"), 0);
}

static void
published_view_suppresses_cells_and_figures_under_ten(void **state)
{
	char v[512];

	(void)state;
	/* 32.73.04: 5 residents. */
	text_f(conn, v, sizeof(v), "SELECT concat_ws(' ', suppressed, "
	    "kecamatan_name, city_name, coalesce(residents_any, residents_digital, "
	    "residents_manual, residents_both, residents_digital_only, "
	    "residents_manual_only, relative_standard_error, se_any, "
	    "digital_only_share)::text IS NULL) FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-03-01' AND "
	    "kecamatan_code = '32.73.04' AND service_code IS NULL");
	assert_string_equal(v, "t Bojongloa Kaler Kota Bandung t");
	/* The same row in the analysts' view has the figures. */
	assert_int_equal(th_query_i64(conn, "SELECT residents_any FROM "
	    "kanal.reach_monthly WHERE month = '2026-03-01' AND "
	    "kecamatan_code = '32.73.04' AND service_code IS NULL"), 5);
	/* 32.73.05: 50 shown, 45 digital shown, its 5 manual ones not, nor
	   the overlap (0) or the manual-only (5). */
	text_f(conn, v, sizeof(v), "SELECT concat_ws(' ', suppressed, "
	    "residents_any BETWEEN 48 AND 52, residents_digital BETWEEN 43 AND "
	    "47, residents_manual IS NULL, se_manual IS NULL, residents_both "
	    "IS NULL, residents_manual_only IS NULL, residents_digital_only "
	    "BETWEEN 43 AND 47, digital_only_share IS NOT NULL) FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-03-01' AND "
	    "kecamatan_code = '32.73.05' AND service_code IS NULL");
	assert_string_equal(v, "f t t t t t t t t");
	/* Everywhere: a suppressed row has no figure, a shown one only
	   figures of 10 or more, and the same numbers as reach_monthly. */
	assert_int_equal(th_query_i64(conn, "SELECT count(*) FROM "
	    "kanal.published_reach_monthly p JOIN kanal.reach_monthly r "
	    "USING (month, key_id, city_code) WHERE r.kecamatan_code IS NOT "
	    "DISTINCT FROM p.kecamatan_code AND r.service_code IS NOT DISTINCT "
	    "FROM p.service_code AND NOT ("
	    "p.suppressed = (r.residents_any < 10) AND "
	    "(p.suppressed OR p.residents_any = r.residents_any) AND "
	    "(p.suppressed OR r.residents_digital < 10 OR "
	    " p.residents_digital = r.residents_digital) AND "
	    "coalesce(p.residents_digital, 10) >= 10 AND "
	    "coalesce(p.residents_manual, 10) >= 10 AND "
	    "coalesce(p.residents_both, 10) >= 10 AND "
	    "coalesce(p.residents_digital_only, 10) >= 10 AND "
	    "coalesce(p.residents_manual_only, 10) >= 10 AND "
	    "(NOT p.suppressed OR coalesce(p.residents_any, p.residents_digital,"
	    " p.residents_manual, p.residents_both, p.residents_digital_only,"
	    " p.residents_manual_only) IS NULL))"), 0);
	assert_int_equal(th_query_i64(conn, "SELECT count(*) FROM "
	    "kanal.published_reach_monthly"), th_query_i64(conn,
	    "SELECT count(*) FROM kanal.reach_monthly"));
}

/*
 * April has two keys: every cell has a row per key, each the count of its
 * own key's residents. Had the two been unioned, key 1's city row would
 * hold 21,000 + 6,000 residents (the hashes differ) instead of 20,000.
 */
static void
two_keys_in_a_month_are_never_unioned(void **state)
{
	char v[256];

	(void)state;
	text_f(conn, v, sizeof(v), "SELECT string_agg(key_id || ':' || "
	    "(abs(residents_any - CASE key_id WHEN 1 THEN 20000 ELSE 6000 END)"
	    " <= " Z " * " RSE " * CASE key_id WHEN 1 THEN 20000 ELSE 6000 END"
	    " + 1), ' ' ORDER BY key_id) FROM kanal.reach_monthly WHERE "
	    "month = '2026-04-01' AND city_code = '32.73' AND kecamatan_code "
	    "IS NULL AND service_code IS NULL");
	assert_string_equal(v, "1:true 2:true");
	/* Every April cell of one key has its twin of the other where both
	   keys have residents; no row mixes them (key_id is in the key). */
	assert_int_equal(th_query_i64(conn, "SELECT count(*) FROM "
	    "kanal.reach_monthly WHERE month = '2026-04-01' GROUP BY "
	    "city_code, kecamatan_code, service_code HAVING count(*) <> 2 "
	    "LIMIT 1"), 0);
	text_f(conn, v, sizeof(v), "SELECT string_agg(key_id || '@' || "
	    "to_char(key_first_used AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM-DD'),"
	    " ' ' ORDER BY key_id) FROM kanal.published_reach_monthly WHERE "
	    "month = '2026-04-01' AND kecamatan_code IS NULL AND service_code "
	    "IS NULL");
	assert_string_equal(v, "1@2026-03-01 2@2026-04-16");
}

/* ------------------------------------------------------------- the keys */

static void
reach_key_use_answers_active_other_retired(void **state)
{
	char kdb[64], v[64];
	PGconn *c;
	PGresult *res;
	static const struct {
		const char *sql, *want;
	} steps[] = {
		/* No key yet: the first to ask registers its own. */
		{ "SELECT kanal.reach_key_use(7)", "active" },
		{ "SELECT kanal.reach_key_use(7)", "active" },
		{ "SELECT kanal.reach_key_use(8)", "other" },
		{ "SELECT count(*) FROM kanal.reach_key", "1" },
		{ "SELECT kanal.reach_key_retire()", "7" },
		/* Retired: never back, even with no key in use. */
		{ "SELECT kanal.reach_key_use(7)", "retired" },
		{ "SELECT count(*) FROM kanal.reach_key WHERE retired_at IS NULL",
		  "0" },
		{ "SELECT kanal.reach_key_use(8)", "active" },
		/* A retired key hears that, not that another is in use. */
		{ "SELECT kanal.reach_key_use(7)", "retired" },
		{ "SELECT kanal.reach_key_use(9)", "other" },
		{ "SELECT string_agg(key_id || ':' || (retired_at IS NULL), ' ' "
		  "ORDER BY key_id) FROM kanal.reach_key", "7:false 8:true" },
		{ "SELECT kanal.reach_key_retire()", "8" },
		/* Nothing in use: NULL. */
		{ "SELECT coalesce(kanal.reach_key_retire()::text, 'null')",
		  "null" },
	};

	(void)state;
	th_db_create("reachkey", kdb, sizeof(kdb));
	c = th_pg_connect(kdb);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		th_query_text(c, steps[i].sql, v, sizeof(v));
		if (strcmp(v, steps[i].want) != 0)
			fail_msg("step %zu: %s gave %s, want %s", i, steps[i].sql,
			    v, steps[i].want);
	}
	/* At most one key unretired, even for the owner writing by hand. */
	th_exec(c, "SELECT kanal.reach_key_use(10)");
	res = PQexec(c, "INSERT INTO kanal.reach_key (key_id) VALUES (11)");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505");
	PQclear(res);
	/* kanal_ingest calls it (its only way to register a key). */
	allowed(c, "kanal_ingest", "SELECT kanal.reach_key_use(10)");
	refused(c, "kanal_ingest", "SELECT kanal.reach_key_retire()");
	refused(c, "kanal_ingest", "INSERT INTO kanal.reach_key (key_id) "
	    "VALUES (12)");
	refused(c, "kanal_ingest", "UPDATE kanal.reach_key SET retired_at = "
	    "now()");
	refused(c, "kanal_analyst", "SELECT kanal.reach_key_use(10)");
	refused(c, "kanal_analyst", "SELECT kanal.reach_key_retire()");
	PQfinish(c);
	th_db_drop(kdb);
}

/* --------------------------------------------------------------- roles */

#define STAGING \
	"CREATE TEMP TABLE staging (key_id bigint, day date, service_code " \
	"text, channel text, region_code text, sketch hll) ON COMMIT DROP;" \
	"INSERT INTO staging SELECT 1, '2026-03-05', 'dukcapil.kia', 'web', " \
	"'32.73.01', hll_add_agg(hll_hash_bigint(g, 0), 11, 5, 0, 1) " \
	"FROM generate_series(15001, 40000) g"

/* The flush's two statements (docs of 010 and daemon/reachdb.c). */
#define UPSERT \
	"INSERT INTO kanal.reach_daily AS t SELECT day, service_code, " \
	"channel, region_code, key_id, sketch FROM staging ON CONFLICT " \
	"(day, service_code, channel, region_code, key_id) DO UPDATE SET " \
	"sketch = hll_union(t.sketch, excluded.sketch);" \
	"INSERT INTO kanal.reach_monthly_sketch AS t SELECT " \
	"date_trunc('month', day)::date, service_code, channel, region_code, " \
	"key_id, hll_union_agg(sketch) FROM staging GROUP BY 1, 2, 3, 4, 5 " \
	"ON CONFLICT (month, service_code, channel, region_code, key_id) DO " \
	"UPDATE SET sketch = hll_union(t.sketch, excluded.sketch)"

#define STATE \
	"SELECT (SELECT md5(string_agg(sketch::text, ',' ORDER BY day, " \
	"service_code, channel, region_code, key_id)) FROM kanal.reach_daily)" \
	" || ' ' || (SELECT md5(string_agg(sketch::text, ',' ORDER BY month, " \
	"service_code, channel, region_code, key_id)) FROM " \
	"kanal.reach_monthly_sketch) || ' ' || (SELECT round(hll_cardinality(" \
	"sketch)) FROM kanal.reach_monthly_sketch WHERE month = '2026-03-01' " \
	"AND service_code = 'dukcapil.kia' AND channel = 'web' AND " \
	"region_code = '32.73.01' AND key_id = 1)"

/*
 * kanal_ingest runs the flush's upsert, twice: the first merges residents
 * 15,001..40,000 into the March cell of dukcapil.kia/web/32.73.01 (which
 * held some of them already), the second, the same sketches again (a
 * replay), changes not one byte.
 */
static void
ingest_upserts_sketches_and_a_replay_changes_nothing(void **state)
{
	char before[256], once[256], twice[256];

	(void)state;
	th_query_text(conn, STATE, before, sizeof(before));
	th_exec(conn, "BEGIN; SET LOCAL ROLE kanal_ingest");
	th_exec(conn, STAGING);
	th_exec(conn, UPSERT);
	th_query_text(conn, STATE, once, sizeof(once));
	th_exec(conn, UPSERT);
	th_query_text(conn, STATE, twice, sizeof(twice));
	th_exec(conn, "ROLLBACK");
	assert_string_not_equal(before, once);
	assert_string_equal(once, twice);
	/* The cardinality grew (the cell's last field), then stayed. */
	assert_true(atoll(strrchr(once, ' ') + 1) >
	    atoll(strrchr(before, ' ') + 1));

	refused(conn, "kanal_ingest", "DELETE FROM kanal.reach_daily");
	refused(conn, "kanal_ingest", "TRUNCATE kanal.reach_monthly_sketch");
	refused(conn, "kanal_ingest", "SELECT * FROM kanal.reach_monthly");
	refused(conn, "kanal_ingest", "SELECT * FROM "
	    "kanal.published_reach_monthly");
	allowed(conn, "kanal_ingest", "SELECT key_id FROM kanal.reach_key "
	    "WHERE retired_at IS NULL");
}

static void
analysts_read_the_views_and_sketches_and_write_nothing(void **state)
{
	static const char *const reads[] = {
		"SELECT * FROM kanal.reach_monthly",
		"SELECT * FROM kanal.published_reach_monthly",
		"SELECT hll_cardinality(hll_union_agg(sketch)) FROM "
		"kanal.reach_monthly_sketch WHERE key_id = 1",
		"SELECT count(*) FROM kanal.reach_daily",
	};
	static const char *const writes[] = {
		"INSERT INTO kanal.reach_monthly_sketch SELECT * FROM "
		"kanal.reach_monthly_sketch LIMIT 1",
		"UPDATE kanal.reach_daily SET sketch = sketch",
		"DELETE FROM kanal.reach_monthly_sketch",
		"SELECT kanal.reach_key_use(3)",
		"SELECT * FROM kanal.reach_monthly_input",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		allowed(conn, "kanal_analyst", reads[i]);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		refused(conn, "kanal_analyst", writes[i]);
}

/* ------------------------------------------------------------ migrate */

/* Version numbers recorded, as "1,2,...". */
static void
applied(PGconn *c, char *out, size_t len)
{
	th_query_text(c, "SELECT string_agg(version::text, ',' ORDER BY "
	    "version) FROM kanal.schema_migrations", out, len);
}

static void
migrate_without_the_extension_applies_all_before_it_and_exits_0(void **state)
{
	char mdb[64], pkg[64], cmd[2048], v[256], *out = malloc(OUTLEN);
	PGconn *admin = th_pg_connect("postgres"), *c;
	int rc;

	(void)state;
	assert_non_null(out);
	snprintf(mdb, sizeof(mdb), "kanal_t_reachmig_%ld", (long)getpid());
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	exec_f(admin, "CREATE DATABASE %s", mdb);
	snprintf(pkg, sizeof(pkg), "postgresql-%lld-hll", (long long)
	    th_query_i64(admin, "SELECT current_setting('server_version_num')"
	    "::int / 10000"));

	snprintf(cmd, sizeof(cmd), "KANAL_MIGRATE_EXTENSION_RENAME="
	    "hll=hll_not_installed '%s' migrate --pg 'dbname=%s' 2>&1",
	    th_env("KANALCTL"), mdb);
	rc = sh(out, cmd);
	assert_int_equal(rc, 0);
	contains(out, "9 migrations applied, 0 already current, 1 held back "
	    "(010_reach.sql needs the extension \"hll\")");
	contains(out, "kanalctl migrate: 010_reach.sql needs the PostgreSQL "
	    "extension \"hll\"");
	contains(out, pkg);
	contains(out, "reach off");
	assert_null(strstr(out, "applied 010"));
	c = th_pg_connect(mdb);
	applied(c, v, sizeof(v));
	assert_string_equal(v, "1,2,3,4,5,6,7,8,9");
	assert_int_equal(th_query_i64(c, "SELECT count(*) FROM pg_extension "
	    "WHERE extname = 'hll'"), 0);
	assert_int_equal(th_query_i64(c, "SELECT count(*) WHERE "
	    "to_regclass('kanal.reach_key') IS NULL"), 1);

	/* --status tells the truth and changes nothing; exit 3: pending. */
	snprintf(cmd, sizeof(cmd), "KANAL_MIGRATE_EXTENSION_RENAME="
	    "hll=hll_not_installed '%s' migrate --status --pg 'dbname=%s' "
	    "2>&1", th_env("KANALCTL"), mdb);
	assert_int_equal(sh(out, cmd), 3);
	contains(out, "009_drop_usage_monthly.sql");
	contains(out, "010_reach.sql                    pending, held back: "
	    "needs the extension \"hll\"");
	contains(out, pkg);
	contains(out, "9 applied, 1 pending");

	/* Again, and again exit 0, nothing applied, the same message. */
	snprintf(cmd, sizeof(cmd), "KANAL_MIGRATE_EXTENSION_RENAME="
	    "hll=hll_not_installed '%s' migrate --pg 'dbname=%s' 2>&1",
	    th_env("KANALCTL"), mdb);
	assert_int_equal(sh(out, cmd), 0);
	contains(out, "0 migrations applied, 9 already current, 1 held back");

	/* The extension "installed": 010 is applied. */
	snprintf(cmd, sizeof(cmd), "'%s' migrate --pg 'dbname=%s' 2>&1",
	    th_env("KANALCTL"), mdb);
	assert_int_equal(sh(out, cmd), 0);
	contains(out, "applied 010_reach.sql");
	contains(out, "1 migration applied, 9 already current");
	assert_null(strstr(out, "held back"));
	applied(c, v, sizeof(v));
	assert_string_equal(v, "1,2,3,4,5,6,7,8,9,10");
	snprintf(cmd, sizeof(cmd), "'%s' migrate --status --pg 'dbname=%s' "
	    "2>&1", th_env("KANALCTL"), mdb);
	assert_int_equal(sh(out, cmd), 0);
	contains(out, "10 applied, 0 pending");
	PQfinish(c);
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	PQfinish(admin);
	free(out);
}

/*
 * The database's owner is no superuser: CREATE EXTENSION hll is refused
 * (42501), migrate fails naming the fix; once a superuser made the
 * extension, the owner's migrate applies 010.
 */
static void
migrate_by_a_non_superuser_says_a_superuser_must_create_it(void **state)
{
	char mdb[64], role[64], cmd[2048], v[256], *out = malloc(OUTLEN);
	PGconn *admin = th_pg_connect("postgres"), *c;

	(void)state;
	assert_non_null(out);
	snprintf(mdb, sizeof(mdb), "kanal_t_reachown_%ld", (long)getpid());
	snprintf(role, sizeof(role), "kanal_t_owner_%ld", (long)getpid());
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	exec_f(admin, "DROP ROLE IF EXISTS %s", role);
	exec_f(admin, "CREATE ROLE %s LOGIN", role);
	exec_f(admin, "CREATE DATABASE %s OWNER %s", mdb, role);

	snprintf(cmd, sizeof(cmd), "'%s' migrate --pg 'dbname=%s user=%s' 2>&1",
	    th_env("KANALCTL"), mdb, role);
	assert_int_equal(sh(out, cmd), 1);
	contains(out, "a superuser must run CREATE EXTENSION hll; in database "
	    "\"");
	contains(out, "42501");
	c = th_pg_connect(mdb);
	applied(c, v, sizeof(v));
	assert_string_equal(v, "1,2,3,4,5,6,7,8,9");
	th_exec(c, "CREATE EXTENSION hll");
	assert_int_equal(sh(out, cmd), 0);
	contains(out, "applied 010_reach.sql");
	applied(c, v, sizeof(v));
	assert_string_equal(v, "1,2,3,4,5,6,7,8,9,10");
	PQfinish(c);
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	exec_f(admin, "DROP ROLE IF EXISTS %s", role);
	PQfinish(admin);
	free(out);
}

/* ------------------------------------------------------------- report */

static int
report(char *out, const char *pg, const char *month, const char *region)
{
	const char *argv[] = { th_env("KANALCTL"), "report", "--pg", pg,
	    "--month", month, region != NULL ? "--region" : NULL, region,
	    NULL };

	return th_run(out, OUTLEN, argv);
}

/* "1,234" -> 1234: the n-th number (from 1) after the label. */
static long long
number_in(const char *line, size_t skip, int nth)
{
	const char *p = line + skip;

	for (int i = 0; i < nth; i++) {
		while (*p != '\0' && !(*p >= '0' && *p <= '9'))
			p++;
		if (i + 1 < nth)
			while ((*p >= '0' && *p <= '9') || *p == ',' ||
			    *p == '.')
				p++;
	}
	{
		long long v = 0;

		for (; (*p >= '0' && *p <= '9') || *p == ','; p++)
			if (*p != ',')
				v = v * 10 + (*p - '0');
		return v;
	}
}

static void
report_shows_residents_beside_take_up_with_the_error_bound(void **state)
{
	char *out = malloc(OUTLEN), line[512], want[64];
	static const char label[] = "Residents who used digital";
	int64_t dig, share_bp;

	(void)state;
	assert_non_null(out);
	assert_int_equal(report(out, pg_analyst, "2026-03", "32.73"), 0);
	dig = th_query_i64(conn, "SELECT residents_digital FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-03-01' AND "
	    "city_code = '32.73' AND kecamatan_code IS NULL AND service_code "
	    "IS NULL");
	line_of(out, label, line, sizeof(line));
	/* The view's figure, and no February to compare with. */
	assert_int_equal(number_in(line, sizeof(label) - 1, 1), dig);
	assert_non_null(strstr(line, "\xe2\x80\x94"));
	share_bp = th_query_i64(conn, "SELECT round(1000 * digital_only_share)"
	    " FROM kanal.published_reach_monthly WHERE month = '2026-03-01' "
	    "AND city_code = '32.73' AND kecamatan_code IS NULL AND "
	    "service_code IS NULL");
	snprintf(want, sizeof(want), "%lld.%lld%%", (long long)share_bp / 10,
	    (long long)share_bp % 10);
	line_of(out, "Digital-only share", line, sizeof(line));
	contains(line, want);
	/* Beside take-up: the line after it. */
	contains(strstr(out, "Digital take-up"), label);
	assert_true(strstr(strstr(out, "Digital take-up"), label) <
	    strstr(out, "Self-service rate"));
	contains(out, "\xc2\xb1 2.3% (one standard error)");
	contains(out, "Residents reached by kecamatan");
	line_of(out, "Bojongloa Kaler (32.73.04)", line, sizeof(line));
	contains(line, "< 10");
	assert_null(strstr(out, "split by a key rotation"));
	assert_null(strstr(out, "not measured"));

	/* The page: the same lines in its totals table, the note, the table. */
	{
		char dir[512], html[600], *page;
		const char *argv[] = { th_env("KANALCTL"), "report", "--pg",
		    pg_analyst, "--month", "2026-03", "--region", "32.73",
		    "--html", html, NULL };

		th_tmpdir("reach", dir, sizeof(dir));
		snprintf(html, sizeof(html), "%s/report.html", dir);
		assert_int_equal(th_run(out, OUTLEN, argv), 0);
		page = th_read_file(html, NULL);
		contains(page, "<th scope=\"row\">Residents who used digital"
		    "</th>");
		contains(page, "<th scope=\"row\">Digital-only share</th>");
		contains(page, "<p class=\"note\">Residents: distinct residents");
		contains(page, "\xc2\xb1 2.3% (one standard error)");
		contains(page, "<h2>Residents reached, by kecamatan</h2>");
		free(page);
	}

	/* All regions: one city has sketches, so it is that city's row. */
	assert_int_equal(report(out, pg_analyst, "2026-03", NULL), 0);
	line_of(out, label, line, sizeof(line));
	assert_int_equal(number_in(line, sizeof(label) - 1, 1), dig);

	/* One kecamatan: its own row, no kecamatan table. */
	assert_int_equal(report(out, pg_analyst, "2026-03", "32.73.01"), 0);
	line_of(out, label, line, sizeof(line));
	assert_int_equal(number_in(line, sizeof(label) - 1, 1),
	    th_query_i64(conn, "SELECT residents_digital FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-03-01' AND "
	    "kecamatan_code = '32.73.01' AND service_code IS NULL"));
	assert_null(strstr(out, "Residents reached by kecamatan"));
	free(out);
}

/*
 * April was split by the rotation: the row of the key that reached the
 * most residents in it (worked out here from the view, whichever it is),
 * said so with that key's first day, and its change from March's row.
 */
static void
report_of_a_month_split_by_a_rotation_uses_the_main_key(void **state)
{
	char *out = malloc(OUTLEN), line[512], want[64], since[32], sql[600];
	static const char label[] = "Residents who used digital";
	static const char main_key[] = "(SELECT key_id FROM"
	    " kanal.published_reach_monthly WHERE month = '2026-04-01' AND"
	    " city_code = '32.73' AND kecamatan_code IS NULL AND service_code"
	    " IS NULL ORDER BY coalesce(residents_any, 0) DESC,"
	    " key_first_used DESC LIMIT 1)";
	int64_t apr, mar;

	(void)state;
	assert_non_null(out);
	assert_int_equal(report(out, pg_analyst, "2026-04", "32.73"), 0);
	/* The test's data has two keys in April, of different sizes. */
	assert_int_equal(th_query_i64(conn, "SELECT count(DISTINCT"
	    " residents_any) FROM kanal.published_reach_monthly WHERE month ="
	    " '2026-04-01' AND city_code = '32.73' AND kecamatan_code IS NULL"
	    " AND service_code IS NULL"), 2);
	snprintf(sql, sizeof(sql), "SELECT residents_digital FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-04-01' AND "
	    "key_id = %s AND city_code = '32.73' AND kecamatan_code IS NULL "
	    "AND service_code IS NULL", main_key);
	apr = th_query_i64(conn, sql);
	snprintf(sql, sizeof(sql), "SELECT to_char(first_used AT TIME ZONE"
	    " 'Asia/Jakarta', 'YYYY-MM-DD') FROM kanal.reach_key WHERE key_id"
	    " = %s", main_key);
	th_query_text(conn, sql, since, sizeof(since));
	mar = th_query_i64(conn, "SELECT residents_digital FROM "
	    "kanal.published_reach_monthly WHERE month = '2026-03-01' AND "
	    "city_code = '32.73' AND kecamatan_code IS NULL AND service_code "
	    "IS NULL");
	line_of(out, label, line, sizeof(line));
	assert_int_equal(number_in(line, sizeof(label) - 1, 1), apr);
	assert_int_equal(number_in(line, sizeof(label) - 1, 2), mar);
	snprintf(want, sizeof(want), "%c%lld", apr >= mar ? '+' : '-',
	    (long long)(apr >= mar ? apr - mar : mar - apr));
	/* The change as printed: digits grouped; compare without commas. */
	{
		char *last = strrchr(line, ' '), digits[64];
		size_t o = 0;

		for (char *p = last + 1; *p != '\0' && o + 1 < sizeof(digits);
		    p++)
			if (*p != ',')
				digits[o++] = *p;
		digits[o] = '\0';
		assert_string_equal(digits, want);
	}
	snprintf(sql, sizeof(sql), "2026-04 was split by a key rotation: its "
	    "residents are those of the key that reached the most (in use "
	    "since %s)", since);
	contains(out, sql);
	free(out);
}

static void
report_without_sketches_for_the_month_says_not_measured(void **state)
{
	char *out = malloc(OUTLEN);

	(void)state;
	assert_non_null(out);
	/* February has events but no sketches. */
	assert_int_equal(report(out, pg_analyst, "2026-02", "32.73"), 0);
	contains(out, "Residents reached: not measured (no reach sketches for "
	    "2026-02 in Kota Bandung (32.73)");
	assert_null(strstr(out, "Residents who used digital"));
	assert_null(strstr(out, "Digital-only share"));
	free(out);
}

/*
 * A database migrated without the extension (001..009): the report says
 * residents are not measured, why, and is otherwise the usual one.
 */
static void
report_without_reach_tables_says_not_measured(void **state)
{
	char mdb[64], cmd[2048], pg[256], *out = malloc(OUTLEN);
	PGconn *admin = th_pg_connect("postgres"), *c;

	(void)state;
	assert_non_null(out);
	snprintf(mdb, sizeof(mdb), "kanal_t_reachnone_%ld", (long)getpid());
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	exec_f(admin, "CREATE DATABASE %s", mdb);
	snprintf(cmd, sizeof(cmd), "KANAL_MIGRATE_EXTENSION_RENAME="
	    "hll=hll_not_installed '%s' migrate --pg 'dbname=%s' 2>&1",
	    th_env("KANALCTL"), mdb);
	assert_int_equal(sh(out, cmd), 0);
	c = th_pg_connect(mdb);
	th_exec(c, usage_sql);
	th_tiers_fill(c);
	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_analyst", mdb);
	assert_int_equal(report(out, pg, "2026-03", NULL), 0);
	contains(out, "Residents reached: not measured (this database has no "
	    "reach tables: migration 010_reach.sql needs the PostgreSQL "
	    "extension hll");
	assert_null(strstr(out, "Residents who used digital"));
	contains(out, "Digital take-up");
	contains(out, "By kecamatan, lowest digital take-up first");
	PQfinish(c);
	exec_f(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", mdb);
	PQfinish(admin);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_figure_is_within_its_error_bound_of_the_truth),
		cmocka_unit_test(daily_sketches_union_to_the_monthly_ones),
		cmocka_unit_test(published_view_suppresses_cells_and_figures_under_ten),
		cmocka_unit_test(two_keys_in_a_month_are_never_unioned),
		cmocka_unit_test(reach_key_use_answers_active_other_retired),
		cmocka_unit_test(ingest_upserts_sketches_and_a_replay_changes_nothing),
		cmocka_unit_test(analysts_read_the_views_and_sketches_and_write_nothing),
		cmocka_unit_test(migrate_without_the_extension_applies_all_before_it_and_exits_0),
		cmocka_unit_test(migrate_by_a_non_superuser_says_a_superuser_must_create_it),
		cmocka_unit_test(report_shows_residents_beside_take_up_with_the_error_bound),
		cmocka_unit_test(report_of_a_month_split_by_a_rotation_uses_the_main_key),
		cmocka_unit_test(report_without_sketches_for_the_month_says_not_measured),
		cmocka_unit_test(report_without_reach_tables_says_not_measured),
	};
	PGconn *c = th_pg_connect("postgres");
	int64_t have = th_query_i64(c, "SELECT count(*) FROM "
	    "pg_available_extensions WHERE name = 'hll'");

	PQfinish(c);
	if (have == 0) {
		fprintf(stderr, "test_pg_reach: skipped: this PostgreSQL has no "
		    "extension hll (Debian: postgresql-NN-hll)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
