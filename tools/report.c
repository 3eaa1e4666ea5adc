/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report: see report.h.
 *
 * Every figure starts as counts summed in PostgreSQL from
 * kanal.adoption_counts_monthly over the month and its predecessor (one
 * query per grouping: the whole scope, each service, each kecamatan) and
 * over the twelve months up to the chosen one (the trend). The user's month
 * and region reach the queries only as bound parameters ($1, $2). Rates are
 * divided here, the same divisions as schema/003_views.sql:
 *
 *   take-up       completed digital (assisted included) / completed
 *   self-service  completed digital, not assisted / completed
 *   completion    completed / (completed + abandoned + failed)
 *   mean time     duration sum / events that carried a duration
 *
 * A rate whose denominator is 0 is shown as an em dash, as is a change
 * whose previous month has no denominator. Text from the database (service
 * and region names) is HTML-escaped in the page, and its control
 * characters are replaced on the terminal.
 *
 * Residents reached come as published: the view's rounded, suppressed
 * figures of each month's main key, the one that reached the most
 * residents (see "reach" below); a change is the difference of the
 * figures as shown, and a figure the view hides (under 10) is shown as
 * "< 10" with no change.
 *
 * The text output keeps to 100 columns: the first column of a table is
 * cut (with an ellipsis) to what the numbers leave, and notes are wrapped.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opts.h"
#include "validate.h"

#define WIDTH 100
#define EXIT_USAGE 2
#define DASH "\xe2\x80\x94"		/* U+2014, no data */
#define ELLIPSIS "\xe2\x80\xa6"		/* U+2026 */
#define TOP_SERVICES 10

/* Chart colours; tests/report_png.py looks for exactly these. */
#define COLOUR_KECAMATAN "#2563eb"
#define COLOUR_TREND "#0d9488"
#define COLOUR_MANUAL "#ea580c"

struct counts {
	int64_t digital, manual, assisted, completed;
	int64_t completed_digital, self_service, concluded;
	int64_t dur_digital_ms, dur_digital_n, dur_manual_ms, dur_manual_n;
};

#define NCOUNTS 11

/* One service, kecamatan or month: its counts this month and the one before. */
struct row {
	char *key;		/* service, kecamatan ("": none) or month */
	char *name;
	struct counts cur, prev;
	int has_cur, has_prev;
};

struct rows {
	struct row *v;
	size_t n;
};

enum grouping { BY_TOTAL, BY_SERVICE, BY_KECAMATAN };

/* ------------------------------------------------------------ formatting */

void
report_fmt_count(char *buf, size_t len, int64_t v)
{
	char digits[32], *p = buf, *end = buf + len - 1;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	int n;

	n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)u);
	if (v < 0 && p < end)
		*p++ = '-';
	for (int i = 0; i < n && p < end; i++) {
		if (i > 0 && (n - i) % 3 == 0 && p < end)
			*p++ = ',';
		if (p < end)
			*p++ = digits[i];
	}
	*p = '\0';
}

void
report_fmt_duration(char *buf, size_t len, double ms, int sign)
{
	const char *s = !sign ? "" : ms < 0 ? "-" : "+";
	long long t = llround(fabs(ms) / 1000.0);

	if (t < 60)
		snprintf(buf, len, "%s%lld s", s, t);
	else if (t < 3600)
		snprintf(buf, len, "%s%lld min %02lld s", s, t / 60, t % 60);
	else
		snprintf(buf, len, "%s%lld h %02lld min", s, (t + 30) / 3600,
		    (t + 30) / 60 % 60);
}

/*
 * num / den in percent, rounded to one decimal (half away from zero) here
 * rather than by printf, so that a change is the difference of the rates
 * as shown.
 */
static double
pct1(int64_t num, int64_t den)
{
	return round(1000.0 * (double)num / (double)den) / 10.0;
}

/* num / den as a percentage with one decimal, or the dash. */
static void
fmt_pct(char *buf, size_t len, int64_t num, int64_t den)
{
	if (den <= 0)
		snprintf(buf, len, DASH);
	else
		snprintf(buf, len, "%.1f%%", pct1(num, den));
}

/* Change of a rate in percentage points, from the rates as shown. */
static void
fmt_pp(char *buf, size_t len, int64_t num, int64_t den, int64_t pnum,
    int64_t pden, int unit)
{
	double a, b, d;

	if (den <= 0 || pden <= 0) {
		snprintf(buf, len, DASH);
		return;
	}
	a = pct1(num, den);
	b = pct1(pnum, pden);
	d = round((a - b) * 10.0) / 10.0;
	snprintf(buf, len, "%s%.1f%s", d > 0 ? "+" : d < 0 ? "-" : "",
	    fabs(d), unit ? " pp" : "");
}

static void
fmt_mean(char *buf, size_t len, int64_t sum, int64_t n)
{
	if (n <= 0)
		snprintf(buf, len, DASH);
	else
		report_fmt_duration(buf, len, (double)sum / (double)n, 0);
}

static void
fmt_mean_change(char *buf, size_t len, int64_t sum, int64_t n, int64_t psum,
    int64_t pn)
{
	double a, b;

	if (n <= 0 || pn <= 0) {
		snprintf(buf, len, DASH);
		return;
	}
	/* Whole seconds each side, as shown. */
	a = 1000.0 * llround((double)sum / (double)n / 1000.0);
	b = 1000.0 * llround((double)psum / (double)pn / 1000.0);
	if (a == b)
		snprintf(buf, len, "0 s");
	else
		report_fmt_duration(buf, len, a - b, 1);
}

static void
fmt_count_change(char *buf, size_t len, int64_t v, int64_t pv, int has_prev)
{
	if (!has_prev) {
		snprintf(buf, len, DASH);
		return;
	}
	if (v > pv) {
		buf[0] = '+';
		report_fmt_count(buf + 1, len - 1, v - pv);
	} else
		report_fmt_count(buf, len, v - pv);
}

static void
report_html_escape_char(FILE *out, char c)
{
	char s[2] = { c, '\0' };

	report_html_escape(out, s);
}

void
report_html_escape(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		default:
			putc(*s, out);
		}
	}
}

/* Characters (UTF-8 code points) in s. */
static size_t
u8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * The length of buf[0..o) without a UTF-8 sequence that a cut left
 * unfinished at its end.
 */
static size_t
u8_whole(const char *buf, size_t o)
{
	while (o > 0 && ((unsigned char)buf[o - 1] & 0x80) != 0) {
		size_t start = o - 1, need;
		unsigned char lead;

		while (start > 0 && ((unsigned char)buf[start] & 0xc0) == 0x80)
			start--;
		lead = (unsigned char)buf[start];
		need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2
		    : 1;
		if (o - start >= need)
			break;
		o = start;
	}
	return o;
}

/*
 * After an snprintf into buf that may have cut a database string short:
 * drops a UTF-8 sequence left unfinished at the end (the page must stay
 * valid UTF-8).
 */
static void
u8_clip(char *buf)
{
	buf[u8_whole(buf, strlen(buf))] = '\0';
}

/*
 * Copies s into buf cut to at most max characters, the last an ellipsis
 * when cut, never splitting a UTF-8 sequence; control characters, C0 and
 * C1 (U+0080..U+009F, which a terminal also obeys), become '?' (a name is
 * shown on a terminal).
 */
static void
u8_fit(char *buf, size_t len, const char *s, size_t max)
{
	size_t n = u8_len(s), chars = 0, o = 0;
	size_t keep = n <= max || max == 0 ? max : max - 1;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c & 0xc0) != 0x80 && chars++ == keep)
			break;
		if (o + 1 >= len)
			break;
		if (c == 0xc2 && ((unsigned char)s[1] & 0xe0) == 0x80) {
			buf[o++] = '?';
			s++;
			continue;
		}
		buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	o = u8_whole(buf, o);
	buf[o] = '\0';
	if (n > max && max > 0 && o + sizeof(ELLIPSIS) <= len)
		strcat(buf, ELLIPSIS);
}

/* -------------------------------------------------------------- queries */

#define SUMS \
	"sum(a.digital_events), sum(a.manual_events), " \
	"sum(a.assisted_events), sum(a.completed_events), " \
	"sum(a.completed_digital), sum(a.completed_self_service), " \
	"sum(a.concluded_events), sum(a.duration_digital_ms), " \
	"sum(a.duration_digital_events), sum(a.duration_manual_ms), " \
	"sum(a.duration_manual_events)"

/*
 * $2: a region code and everything under it, or NULL for every region. A
 * prefix LIKE, so the tier's region index serves it (schema/007); the
 * code was checked to be digits and dots, so it holds no LIKE wildcard.
 */
#define SCOPE \
	"($2::text IS NULL OR a.region_code = $2::text OR " \
	"a.region_code LIKE $2::text || '.%')"

#define KECAMATAN_OF \
	"substring(a.region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)')"

/*
 * Each query returns key, name, current (true: $1's month, false: the
 * month before) and the NCOUNTS sums, ordered by key so that a key's two
 * months are adjacent. The fragments are constants; user input is only
 * ever in $1 and $2.
 */
static const char *const q_months[] = {
	[BY_TOTAL] =
	"SELECT '', '', a.month = $1::date, " SUMS
	"  FROM kanal.adoption_counts_monthly a"
	" WHERE a.month IN ($1::date, ($1::date - interval '1 month')::date)"
	"   AND " SCOPE
	" GROUP BY 3 ORDER BY 3",
	[BY_SERVICE] =
	"SELECT a.service_code, coalesce(min(s.name), a.service_code),"
	"       a.month = $1::date, " SUMS
	"  FROM kanal.adoption_counts_monthly a"
	"  LEFT JOIN kanal.service s ON s.code = a.service_code"
	" WHERE a.month IN ($1::date, ($1::date - interval '1 month')::date)"
	"   AND " SCOPE
	" GROUP BY a.service_code, 3 ORDER BY 1, 3",
	[BY_KECAMATAN] =
	"SELECT coalesce(" KECAMATAN_OF ", ''),"
	"       coalesce(min(r.name), " KECAMATAN_OF ", ''),"
	"       a.month = $1::date, " SUMS
	"  FROM kanal.adoption_counts_monthly a"
	"  LEFT JOIN kanal.region r ON r.code = " KECAMATAN_OF
	"       AND r.level = 'kecamatan'"
	" WHERE a.month IN ($1::date, ($1::date - interval '1 month')::date)"
	"   AND " SCOPE
	" GROUP BY " KECAMATAN_OF ", 3 ORDER BY 1, 3",
};

/* The twelve months up to $1, each present (zero counts when empty). */
static const char q_trend[] =
	"SELECT to_char(m.m, 'YYYY-MM'), '', true, " SUMS
	"  FROM generate_series($1::date - interval '11 months', $1::date,"
	"                       interval '1 month') AS m(m)"
	"  LEFT JOIN kanal.adoption_counts_monthly a"
	"         ON a.month = m.m::date AND " SCOPE
	" GROUP BY m.m ORDER BY m.m";

static void
rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key);
		free(r->v[i].name);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static void
counts_parse(PGresult *res, int i, int col, struct counts *c)
{
	int64_t *f[NCOUNTS] = {
		&c->digital, &c->manual, &c->assisted, &c->completed,
		&c->completed_digital, &c->self_service, &c->concluded,
		&c->dur_digital_ms, &c->dur_digital_n, &c->dur_manual_ms,
		&c->dur_manual_n,
	};

	for (int k = 0; k < NCOUNTS; k++)
		*f[k] = PQgetisnull(res, i, col + k) ? 0 :
		    strtoll(PQgetvalue(res, i, col + k), NULL, 10);
}

/*
 * Runs sql with the month (first day) and region and merges each key's
 * rows into out. Returns 0 or -1 (err).
 */
static int
rows_query(PGconn *conn, const char *sql, const char *month_day,
    const char *region, struct rows *out, char *err, size_t errlen)
{
	const char *params[2] = { month_day, region };
	PGresult *res;
	int n;

	out->v = NULL;
	out->n = 0;
	res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "query failed: %s",
		    PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	out->v = calloc(n > 0 ? (size_t)n : 1, sizeof(*out->v));
	if (out->v == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		const char *key = PQgetvalue(res, i, 0);
		int cur = PQgetvalue(res, i, 2)[0] == 't';
		struct row *r;

		if (out->n == 0 || strcmp(out->v[out->n - 1].key, key) != 0) {
			r = &out->v[out->n++];
			r->key = strdup(key);
			r->name = strdup(PQgetvalue(res, i, 1));
			if (r->key == NULL || r->name == NULL)
				goto nomem;
		} else
			r = &out->v[out->n - 1];
		if (cur) {
			counts_parse(res, i, 3, &r->cur);
			r->has_cur = 1;
		} else {
			counts_parse(res, i, 3, &r->prev);
			r->has_prev = 1;
		}
	}
	PQclear(res);
	return 0;
nomem:
	PQclear(res);
	rows_free(out);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Drops the rows with nothing this month (they were only in the one before). */
static void
rows_keep_current(struct rows *r)
{
	size_t o = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].has_cur) {
			r->v[o++] = r->v[i];
		} else {
			free(r->v[i].key);
			free(r->v[i].name);
		}
	}
	r->n = o;
}

static double
take_up(const struct counts *c)
{
	return c->completed > 0 ? (double)c->completed_digital /
	    (double)c->completed : -1.0;
}

/* Most manual transactions first; then by name. */
static int
by_manual(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->cur.manual != y->cur.manual)
		return x->cur.manual > y->cur.manual ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Lowest take-up first (no completed transactions last); then by manual. */
static int
by_take_up(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double tx = take_up(&x->cur), ty = take_up(&y->cur);

	if ((tx < 0) != (ty < 0))
		return tx < 0 ? 1 : -1;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return by_manual(a, b);
}

/* ---------------------------------------------------------------- reach */

/*
 * Distinct residents reached (schema/010_reach.sql), from
 * kanal.published_reach_monthly: the scope's city row (service_code NULL,
 * kecamatan_code NULL) or kecamatan row, and for a city its kecamatan
 * rows. Sketches are kept per city key and per kecamatan, so a scope of
 * several cities or a desa is not measured. A month written by two keys
 * has a row per key, neither the whole month: the row of the key that
 * reached the most residents in it is shown and the split is said.
 */
#define NOT_SHOWN (-1)		/* NULL in the view: suppressed, under 10 */

struct reach_month {
	int has, suppressed, nkeys;
	int64_t any, digital;		/* NOT_SHOWN when NULL */
	double share, se_share, rse;	/* < 0 when NULL */
	char since[16];			/* the key's first use, WIB date */
};

struct reach_row {
	char *kec;			/* "": the scope's own row */
	char *name;
	struct reach_month cur, prev;
};

struct reach {
	int measured;
	char reason[512];		/* why not */
	struct reach_row total;
	struct reach_row *kec;		/* for a city: its kecamatan */
	size_t nkec;
};

static const char q_reach_exists[] =
	"SELECT to_regclass('kanal.published_reach_monthly') IS NOT NULL";

/* The cities with sketches in $1's month or the one before, under $2. */
static const char q_reach_cities[] =
	"SELECT DISTINCT substring(s.region_code FROM "
	"'^([0-9]+[.][0-9]+)([.]|$)')"
	"  FROM kanal.reach_monthly_sketch s"
	" WHERE s.month IN ($1::date, ($1::date - interval '1 month')::date)"
	"   AND ($2::text IS NULL OR s.region_code LIKE $2::text || '.%')"
	"   AND s.region_code ~ '^[0-9]+[.][0-9]+([.]|$)'"
	" ORDER BY 1";

/*
 * $1 the month, $2 the city, $3 NULL (the city and its kecamatan) or one
 * kecamatan. Each month's rows of one key: the key whose city row reached
 * the most residents (after a rotation at a month's start, late events
 * give the month before a small row of the new key, which must not stand
 * for that month), and how many keys the month has.
 */
static const char q_reach[] =
	"WITH r AS ("
	"  SELECT * FROM kanal.published_reach_monthly"
	"   WHERE month IN ($1::date, ($1::date - interval '1 month')::date)"
	"     AND city_code = $2::text AND service_code IS NULL),"
	" pick AS ("
	"  SELECT DISTINCT ON (month) month, key_id,"
	"         count(*) OVER (PARTITION BY month) AS nkeys"
	"    FROM r WHERE kecamatan_code IS NULL"
	"   ORDER BY month, coalesce(residents_any, 0) DESC,"
	"            key_first_used DESC, key_id DESC)"
	"SELECT r.month = $1::date, coalesce(r.kecamatan_code, ''),"
	"       coalesce(r.kecamatan_name, r.kecamatan_code, ''),"
	"       r.suppressed, r.residents_any, r.residents_digital,"
	"       r.digital_only_share, r.se_digital_only_share,"
	"       r.relative_standard_error, pick.nkeys,"
	"       to_char(r.key_first_used AT TIME ZONE 'Asia/Jakarta',"
	"               'YYYY-MM-DD')"
	"  FROM r JOIN pick USING (month, key_id)"
	" WHERE $3::text IS NULL OR r.kecamatan_code = $3::text"
	" ORDER BY 2, 1";

static void
reach_free(struct reach *rc)
{
	free(rc->total.kec);
	free(rc->total.name);
	for (size_t i = 0; i < rc->nkec; i++) {
		free(rc->kec[i].kec);
		free(rc->kec[i].name);
	}
	free(rc->kec);
	memset(rc, 0, sizeof(*rc));
}

static int64_t
i64_or(PGresult *res, int i, int col)
{
	return PQgetisnull(res, i, col) ? NOT_SHOWN :
	    strtoll(PQgetvalue(res, i, col), NULL, 10);
}

static double
dbl_or(PGresult *res, int i, int col)
{
	return PQgetisnull(res, i, col) ? -1.0 :
	    strtod(PQgetvalue(res, i, col), NULL);
}

/* One query, with up to three parameters; NULL on failure (err). */
static PGresult *
reach_exec(PGconn *conn, const char *sql, int n, const char *p1,
    const char *p2, const char *p3, char *err, size_t errlen)
{
	const char *params[3] = { p1, p2, p3 };
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL,
	    0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "query failed: %s",
		    PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Fills rc for the month (its first day) and region (NULL: all). Not
 * being measured is no error: rc->measured is 0 with the reason. Returns
 * 0, or -1 on a failed query (err).
 */
static int
reach_load(PGconn *conn, const char *month, const char *month_day,
    const char *region, const char *scope, struct reach *rc, char *err,
    size_t errlen)
{
	char city[64] = "", kec[64] = "";
	const char *kec_p = NULL;
	int dots = 0, n;
	PGresult *res;

	memset(rc, 0, sizeof(*rc));
	res = reach_exec(conn, q_reach_exists, 0, NULL, NULL, NULL, err,
	    errlen);
	if (res == NULL)
		return -1;
	n = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!n) {
		snprintf(rc->reason, sizeof(rc->reason), "this database has no "
		    "reach tables: migration 010_reach.sql needs the PostgreSQL "
		    "extension hll; see kanalctl migrate --status");
		return 0;
	}
	for (const char *c = region; c != NULL && *c != '\0'; c++)
		dots += *c == '.';
	if (region != NULL && dots == 3) {
		snprintf(rc->reason, sizeof(rc->reason), "residents are counted "
		    "per kecamatan, and %s is a desa; use --region %.*s",
		    region, (int)(strrchr(region, '.') - region), region);
		return 0;
	}
	if (region != NULL && dots >= 1) {
		const char *second = strchr(region, '.');
		const char *third = strchr(second + 1, '.');

		snprintf(city, sizeof(city), "%.*s", third != NULL ?
		    (int)(third - region) : (int)strlen(region), region);
		if (dots == 2) {
			snprintf(kec, sizeof(kec), "%s", region);
			kec_p = kec;
		}
	} else {
		/* All regions or a province: measured when one city has data. */
		res = reach_exec(conn, q_reach_cities, 2, month_day, region,
		    NULL, err, errlen);
		if (res == NULL)
			return -1;
		n = PQntuples(res);
		if (n == 1)
			snprintf(city, sizeof(city), "%s", PQgetvalue(res, 0, 0));
		else if (n > 1)
			snprintf(rc->reason, sizeof(rc->reason), "residents are "
			    "counted per city, each with its own key, and %d "
			    "cities have data; use --region %s", n,
			    PQgetvalue(res, 0, 0));
		PQclear(res);
		if (n != 1) {
			if (n == 0)
				snprintf(rc->reason, sizeof(rc->reason), "no reach "
				    "sketches for %s in %s: no service sent "
				    "citizen_ref, or kanald runs with reach off",
				    month, scope);
			return 0;
		}
	}
	res = reach_exec(conn, q_reach, 3, month_day, city, kec_p, err,
	    errlen);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	rc->kec = calloc(n > 0 ? (size_t)n : 1, sizeof(*rc->kec));
	if (rc->kec == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		const char *k = PQgetvalue(res, i, 1);
		int own = kec_p != NULL ? strcmp(k, kec_p) == 0 : k[0] == '\0';
		struct reach_row *r;
		struct reach_month *m;

		if (own)
			r = &rc->total;
		else if (rc->nkec > 0 && strcmp(rc->kec[rc->nkec - 1].kec, k)
		    == 0)
			r = &rc->kec[rc->nkec - 1];
		else
			r = &rc->kec[rc->nkec++];
		if (r->kec == NULL) {
			r->kec = strdup(k);
			r->name = strdup(PQgetvalue(res, i, 2));
			if (r->kec == NULL || r->name == NULL)
				goto nomem;
		}
		m = PQgetvalue(res, i, 0)[0] == 't' ? &r->cur : &r->prev;
		m->has = 1;
		m->suppressed = PQgetvalue(res, i, 3)[0] == 't';
		m->any = i64_or(res, i, 4);
		m->digital = i64_or(res, i, 5);
		m->share = dbl_or(res, i, 6);
		m->se_share = dbl_or(res, i, 7);
		m->rse = dbl_or(res, i, 8);
		m->nkeys = atoi(PQgetvalue(res, i, 9));
		snprintf(m->since, sizeof(m->since), "%s",
		    PQgetvalue(res, i, 10));
	}
	PQclear(res);
	if (!rc->total.cur.has) {
		snprintf(rc->reason, sizeof(rc->reason), "no reach sketches for "
		    "%s in %s: no service sent citizen_ref, or kanald runs "
		    "with reach off", month, scope);
		return 0;
	}
	rc->measured = 1;
	return 0;
nomem:
	PQclear(res);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* A count of residents: "1,234", "< 10" (NULL in the view) or the dash. */
static void
fmt_residents(char *buf, size_t len, const struct reach_month *m,
    int64_t v)
{
	if (!m->has)
		snprintf(buf, len, DASH);
	else if (v == NOT_SHOWN)
		snprintf(buf, len, "< 10");
	else
		report_fmt_count(buf, len, v);
}

static void
fmt_residents_change(char *buf, size_t len, const struct reach_month *c,
    int64_t v, const struct reach_month *p, int64_t pv)
{
	if (!c->has || !p->has || v == NOT_SHOWN || pv == NOT_SHOWN)
		snprintf(buf, len, DASH);
	else
		fmt_count_change(buf, len, v, pv, 1);
}

/* A share (0..1) in percent, one decimal, as pct1 rounds. */
static double
share_pct1(double v)
{
	return round(1000.0 * v) / 10.0;
}

static void
fmt_share(char *buf, size_t len, const struct reach_month *m)
{
	if (!m->has || m->share < 0)
		snprintf(buf, len, m->has && !m->suppressed ? "< 10 residents" :
		    DASH);
	else
		snprintf(buf, len, "%.1f%%", share_pct1(m->share));
}

static void
fmt_share_change(char *buf, size_t len, const struct reach_month *c,
    const struct reach_month *p, int unit)
{
	double d;

	if (!c->has || !p->has || c->share < 0 || p->share < 0) {
		snprintf(buf, len, DASH);
		return;
	}
	d = round((share_pct1(c->share) - share_pct1(p->share)) * 10.0) / 10.0;
	snprintf(buf, len, "%s%.1f%s", d > 0 ? "+" : d < 0 ? "-" : "",
	    fabs(d), unit ? " pp" : "");
}

/*
 * The lines under the totals, into buf: the error bound and what the
 * figures are, or why they are not there; and each month split by a key
 * rotation.
 */
static void
reach_note(char *buf, size_t len, const struct reach *rc, const char *month,
    const char *prev)
{
	const struct reach_month *c = &rc->total.cur, *p = &rc->total.prev;
	size_t o;

	if (!rc->measured) {
		snprintf(buf, len, "Residents reached: not measured (%s).\n",
		    rc->reason);
		return;
	}
	if (c->suppressed || c->rse < 0)
		o = (size_t)snprintf(buf, len, "Residents: distinct residents "
		    "(citizen_ref); fewer than 10 were reached, so no figure "
		    "is shown");
	else
		o = (size_t)snprintf(buf, len, "Residents: distinct residents "
		    "(citizen_ref), estimated from HyperLogLog sketches: "
		    "\xc2\xb1 %.1f%% (one "
		    "standard error)", 100.0 * c->rse);
	if (o < len && c->se_share >= 0)
		o += (size_t)snprintf(buf + o, len - o, ", the digital-only "
		    "share \xc2\xb1 %.1f pp", 100.0 * c->se_share);
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, ". Digital-only: "
		    "reached on a digital channel and on no manual one.\n");
	if (o < len && c->nkeys > 1)
		o += (size_t)snprintf(buf + o, len - o, "%s was split by a key "
		    "rotation: its residents are those of the key that reached "
		    "the most (in use since %s), not the whole month.\n", month,
		    c->since);
	if (o < len && p->has && p->nkeys > 1)
		snprintf(buf + o, len - o, "%s was split by a key rotation: its "
		    "residents are those of the key that reached the most (in "
		    "use since %s), not the whole month.\n", prev, p->since);
}

/*
 * Writes text to out, each line of it (ended by '\n') word-wrapped to
 * WIDTH columns. Words are never cut; one longer than WIDTH stays whole.
 */
static void
text_wrap(FILE *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		const char *end = eol != NULL ? eol : p + strlen(p);

		while (p < end) {
			const char *cut = NULL, *q = p;
			size_t cols = 0;

			for (; q < end; q++) {
				if (((unsigned char)*q & 0xc0) == 0x80)
					continue;
				if (*q == ' ')
					cut = q;
				if (++cols > WIDTH)
					break;
			}
			if (q >= end || cut == NULL)
				cut = q >= end ? end : strchr(q, ' ') != NULL &&
				    strchr(q, ' ') < end ? strchr(q, ' ') : end;
			fprintf(out, "%.*s\n", (int)(cut - p), p);
			p = cut;
			while (p < end && *p == ' ')
				p++;
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
}

/* ---------------------------------------------------------------- tables */

/*
 * A table of strings, shown as aligned text or as an HTML table. Column 0
 * is the label, left-aligned; the others are numbers, right-aligned.
 */
#define MAXCOLS 8
#define CELL 256

struct table {
	const char *caption;
	int ncols;
	const char *head[MAXCOLS];
	char (*cell)[MAXCOLS][CELL];	/* a row each; UTF-8 */
	size_t nrows;
	int sr_only;		/* HTML: for screen readers only */
};

static int
table_init(struct table *t, const char *caption, size_t rows, int ncols,
    const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->caption = caption;
	t->ncols = ncols;
	for (int i = 0; i < ncols; i++)
		t->head[i] = head[i];
	t->cell = calloc(rows > 0 ? rows : 1, sizeof(*t->cell));
	return t->cell == NULL ? -1 : 0;
}

/* The next row's cells, to fill in with snprintf. */
static char (*table_row(struct table *t))[CELL]
{
	return t->cell[t->nrows++];
}

static void
table_free(struct table *t)
{
	free(t->cell);
	t->cell = NULL;
}

static void
pad(FILE *out, size_t n)
{
	while (n-- > 0)
		putc(' ', out);
}

static void
table_text(const struct table *t, FILE *out)
{
	size_t w[MAXCOLS] = { 0 }, rest = 0;
	char fit[CELL];

	for (int c = 0; c < t->ncols; c++) {
		w[c] = u8_len(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++)
			if (u8_len(t->cell[r][c]) > w[c])
				w[c] = u8_len(t->cell[r][c]);
		if (c > 0)
			rest += w[c] + 2;
	}
	if (w[0] + rest > WIDTH)
		w[0] = rest + 12 < WIDTH ? WIDTH - rest : 12;
	u8_fit(fit, sizeof(fit), t->caption, WIDTH);
	fprintf(out, "%s\n", fit);
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->head[c] : t->cell[r - 1][c];

			u8_fit(fit, sizeof(fit), s, w[c]);
			if (c == 0) {
				fputs(fit, out);
				pad(out, w[0] - u8_len(fit));
			} else {
				pad(out, 2 + w[c] - u8_len(fit));
				fputs(fit, out);
			}
		}
		putc('\n', out);
	}
	putc('\n', out);
}

static void
table_html(const struct table *t, FILE *out)
{
	fprintf(out, "<table%s>\n<caption>", t->sr_only ?
	    " class=\"sr-only\"" : "");
	report_html_escape(out, t->caption);
	fputs("</caption>\n<thead><tr>", out);
	for (int c = 0; c < t->ncols; c++) {
		fputs("<th scope=\"col\">", out);
		report_html_escape(out, t->head[c]);
		fputs("</th>", out);
	}
	fputs("</tr></thead>\n<tbody>\n", out);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs("<tr>", out);
		for (int c = 0; c < t->ncols; c++) {
			fputs(c == 0 ? "<th scope=\"row\">" : "<td>", out);
			report_html_escape(out, t->cell[r][c]);
			fputs(c == 0 ? "</th>" : "</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</tbody>\n</table>\n", out);
}

/* Beside digital take-up: the residents who used a digital service and
   the digital-only share (the lines are there only when measured). */
static void
reach_totals(struct table *t, const struct reach_row *r)
{
	char (*v)[CELL];

	v = table_row(t);
	snprintf(v[0], CELL, "Residents who used digital");
	fmt_residents(v[1], CELL, &r->cur, r->cur.digital);
	fmt_residents(v[2], CELL, &r->prev, r->prev.digital);
	fmt_residents_change(v[3], CELL, &r->cur, r->cur.digital, &r->prev,
	    r->prev.digital);
	v = table_row(t);
	snprintf(v[0], CELL, "Digital-only share");
	fmt_share(v[1], CELL, &r->cur);
	fmt_share(v[2], CELL, &r->prev);
	fmt_share_change(v[3], CELL, &r->cur, &r->prev, 1);
}

/* Residents reached in each kecamatan of a city. */
static int
table_reach(struct table *t, const char *caption, const struct reach *rc)
{
	const char *head[] = { "Kecamatan", "Residents", "Digital",
	    "Digital chg", "Digital-only", "Share chg" };

	if (table_init(t, caption, rc->nkec, 6, head) == -1)
		return -1;
	for (size_t i = 0; i < rc->nkec; i++) {
		const struct reach_row *r = &rc->kec[i];
		char (*v)[CELL];
		char name[CELL / 2];

		if (!r->cur.has)
			continue;
		v = table_row(t);
		u8_fit(name, sizeof(name), r->name, 100);
		if (strcmp(r->kec, r->name) != 0)
			snprintf(v[0], CELL, "%s (%s)", name, r->kec);
		else
			snprintf(v[0], CELL, "%s", name);
		fmt_residents(v[1], CELL, &r->cur, r->cur.any);
		fmt_residents(v[2], CELL, &r->cur, r->cur.digital);
		fmt_residents_change(v[3], CELL, &r->cur, r->cur.digital,
		    &r->prev, r->prev.digital);
		fmt_share(v[4], CELL, &r->cur);
		fmt_share_change(v[5], CELL, &r->cur, &r->prev, 0);
	}
	return 0;
}

/* The totals: one line per indicator, this month, the one before, change. */
static int
table_totals(struct table *t, const char *caption, const struct row *r,
    const char *month, const char *prev_month, const struct reach *rc)
{
	const char *head[] = { "Indicator", month, prev_month, "Change" };
	const struct counts *c = &r->cur, *p = &r->prev;
	int hp = r->has_prev;
	char (*v)[CELL];
	static const struct {
		const char *label;
		size_t num, den;	/* offsets into struct counts */
	} rates[] = {
		{ "Digital take-up", offsetof(struct counts, completed_digital),
		  offsetof(struct counts, completed) },
		{ "Self-service rate", offsetof(struct counts, self_service),
		  offsetof(struct counts, completed) },
		{ "Completion rate", offsetof(struct counts, completed),
		  offsetof(struct counts, concluded) },
	};
	static const struct {
		const char *label;
		size_t off;
	} counts[] = {
		{ "Digital transactions", offsetof(struct counts, digital) },
		{ "Manual transactions", offsetof(struct counts, manual) },
		{ "Assisted transactions", offsetof(struct counts, assisted) },
		{ "Completed transactions",
		  offsetof(struct counts, completed) },
	};
#define FIELD(s, off) \
	(*(const int64_t *)(const void *)((const char *)(s) + (off)))

	if (table_init(t, caption, 11, 4, head) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		int64_t pn = hp ? FIELD(p, rates[i].num) : 0;
		int64_t pd = hp ? FIELD(p, rates[i].den) : 0;

		v = table_row(t);
		snprintf(v[0], CELL, "%s", rates[i].label);
		fmt_pct(v[1], CELL, FIELD(c, rates[i].num),
		    FIELD(c, rates[i].den));
		fmt_pct(v[2], CELL, pn, pd);
		fmt_pp(v[3], CELL, FIELD(c, rates[i].num),
		    FIELD(c, rates[i].den), pn, pd, 1);
		if (i == 0 && rc->measured)
			reach_totals(t, &rc->total);
	}
	v = table_row(t);
	snprintf(v[0], CELL, "Mean time, digital");
	fmt_mean(v[1], CELL, c->dur_digital_ms, c->dur_digital_n);
	fmt_mean(v[2], CELL, hp ? p->dur_digital_ms : 0,
	    hp ? p->dur_digital_n : 0);
	fmt_mean_change(v[3], CELL, c->dur_digital_ms, c->dur_digital_n,
	    hp ? p->dur_digital_ms : 0, hp ? p->dur_digital_n : 0);
	v = table_row(t);
	snprintf(v[0], CELL, "Mean time, manual");
	fmt_mean(v[1], CELL, c->dur_manual_ms, c->dur_manual_n);
	fmt_mean(v[2], CELL, hp ? p->dur_manual_ms : 0,
	    hp ? p->dur_manual_n : 0);
	fmt_mean_change(v[3], CELL, c->dur_manual_ms, c->dur_manual_n,
	    hp ? p->dur_manual_ms : 0, hp ? p->dur_manual_n : 0);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		int64_t cv = FIELD(c, counts[i].off);
		int64_t pv = FIELD(p, counts[i].off);

		v = table_row(t);
		snprintf(v[0], CELL, "%s", counts[i].label);
		report_fmt_count(v[1], CELL, cv);
		if (hp)
			report_fmt_count(v[2], CELL, pv);
		else
			snprintf(v[2], CELL, DASH);
		fmt_count_change(v[3], CELL, cv, pv, hp);
	}
#undef FIELD
	return 0;
}

/* One line per service or kecamatan. */
static int
table_groups(struct table *t, const char *caption, const char *label,
    const struct rows *rs, int with_code)
{
	const char *head[] = { label, "Manual", "Digital", "Take-up",
	    "Self-svc", "Complete", "Take-up chg" };

	if (table_init(t, caption, rs->n, 7, head) == -1)
		return -1;
	for (size_t i = 0; i < rs->n; i++) {
		const struct row *r = &rs->v[i];
		const struct counts *c = &r->cur;
		char (*v)[CELL] = table_row(t);
		char name[CELL / 2];

		u8_fit(name, sizeof(name), r->name, 100);
		if (r->key[0] == '\0')
			snprintf(v[0], CELL, "(above kecamatan level)");
		else if (with_code && strcmp(r->key, r->name) != 0)
			snprintf(v[0], CELL, "%s (%s)", name, r->key);
		else
			snprintf(v[0], CELL, "%s", name);
		report_fmt_count(v[1], CELL, c->manual);
		report_fmt_count(v[2], CELL, c->digital);
		fmt_pct(v[3], CELL, c->completed_digital, c->completed);
		fmt_pct(v[4], CELL, c->self_service, c->completed);
		fmt_pct(v[5], CELL, c->completed, c->concluded);
		fmt_pp(v[6], CELL, c->completed_digital, c->completed,
		    r->has_prev ? r->prev.completed_digital : 0,
		    r->has_prev ? r->prev.completed : 0, 0);
	}
	return 0;
}

/* ---------------------------------------------------------------- charts */

/* The smallest 1, 2, 2.5 or 5 times a power of ten at or above v (> 0). */
static double
nice_ceil(double v)
{
	double p = pow(10.0, floor(log10(v)));
	static const double steps[] = { 1, 2, 2.5, 5, 10 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i] * p >= v)
			return steps[i] * p;
	return 10 * p;
}

/*
 * An axis of counts from 0 past max (> 0) in at most 5 round steps (whole
 * numbers): returns the steps, *top the axis' end.
 */
static int
nice_axis(double max, double *top)
{
	double step = max < 5 ? 1 : nice_ceil(max / 5);
	int ticks = (int)ceil(max / step - 1e-9);

	*top = step * ticks;
	return ticks;
}

/* <svg> with its accessible name and description. */
static void
svg_open(FILE *out, const char *id, int w, int h, const char *title,
    const char *desc)
{
	fprintf(out, "<svg id=\"%s\" role=\"img\" width=\"%d\" height=\"%d\" "
	    "viewBox=\"0 0 %d %d\" aria-labelledby=\"%s-title %s-desc\">\n"
	    "<title id=\"%s-title\">", id, w, h, w, h, id, id, id);
	report_html_escape(out, title);
	fprintf(out, "</title>\n<desc id=\"%s-desc\">", id);
	report_html_escape(out, desc);
	fputs("</desc>\n", out);
}

static void
svg_text(FILE *out, int x, int y, const char *anchor, const char *cls,
    const char *s)
{
	fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\"%s%s%s>", x,
	    y, anchor, cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	report_html_escape(out, s);
	fputs("</text>\n", out);
}

/*
 * Horizontal bars: one row per label, value/max of the plot's width,
 * vertical grid lines at the ticks, and optionally a dashed reference
 * line (ref >= 0) behind the bars, labelled above them. value < 0: no bar.
 */
struct hbar {
	const char *label;
	double value;
	const char *shown;	/* the value as text, after the bar */
};

struct hchart {
	const char *id, *title, *desc, *axis, *colour;
	double max;		/* the axis' end */
	int ticks;		/* grid lines after 0 */
	int pct;		/* tick labels as percentages, else counts */
	int label_w;		/* pixels for the labels on the left */
	double ref;		/* < 0: none */
	const char *ref_label;
};

static void
svg_hbars(FILE *out, const struct hchart *ch, const struct hbar *b, size_t n)
{
	const int rowh = 22, top = ch->ref >= 0 ? 24 : 8;
	const int x0 = ch->label_w + 10, plot = 860 - x0 - 150;
	const int bottom = top + (int)n * rowh, h = bottom + 48;
	char lab[CELL], tick[32];

	svg_open(out, ch->id, 860, h, ch->title, ch->desc);
	for (int k = 0; k <= ch->ticks; k++) {
		int x = x0 + (int)lround((double)plot * k / ch->ticks);
		double tv = ch->max * k / ch->ticks;

		fprintf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" "
		    "x2=\"%d\" y2=\"%d\"/>\n", x, top, x, bottom);
		if (ch->pct)
			snprintf(tick, sizeof(tick), "%.0f%%", tv * 100);
		else
			report_fmt_count(tick, sizeof(tick), llround(tv));
		svg_text(out, x, bottom + 16, "middle", "tick", tick);
	}
	/* Under the bars and their labels. */
	if (ch->ref >= 0) {
		int x = x0 + (int)lround((double)plot * ch->ref / ch->max);

		fprintf(out, "<line class=\"ref\" x1=\"%d\" y1=\"%d\" "
		    "x2=\"%d\" y2=\"%d\"/>\n", x, top - 6, x, bottom);
		svg_text(out, x, top - 10, "middle", "value", ch->ref_label);
	}
	for (size_t i = 0; i < n; i++) {
		int y = top + (int)i * rowh;

		u8_fit(lab, sizeof(lab), b[i].label, (size_t)ch->label_w / 7);
		svg_text(out, x0 - 8, y + 15, "end", NULL, lab);
		if (b[i].value < 0) {
			svg_text(out, x0 + 4, y + 15, "start", "none",
			    "no completed transactions");
			continue;
		}
		{
			int w = (int)lround((double)plot * b[i].value /
			    ch->max);

			fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
			    "height=\"16\" fill=\"%s\"><title>", x0, y + 3, w,
			    ch->colour);
			report_html_escape(out, b[i].label);
			fputs(": ", out);
			report_html_escape(out, b[i].shown);
			fputs("</title></rect>\n", out);
			/*
			 * A white plate under the value, so that the dashed
			 * reference line never runs through its digits (11 px
			 * text: at most ~7 px a character).
			 */
			if (ch->ref >= 0)
				fprintf(out, "<rect x=\"%d\" y=\"%d\" "
				    "width=\"%zu\" height=\"14\" "
				    "fill=\"#fff\"/>\n", x0 + w + 4, y + 4,
				    strlen(b[i].shown) * 7 + 4);
			svg_text(out, x0 + w + 6, y + 15, "start", "value",
			    b[i].shown);
		}
	}
	svg_text(out, x0 + plot / 2, h - 8, "middle", "axis", ch->axis);
	fputs("</svg>\n", out);
}

/* Kecamatan by take-up, highest first; those without completed ones last. */
static int
chart_kecamatan(FILE *out, const struct rows *kec, const struct row *all,
    const char *scope, const char *month)
{
	size_t cap = kec->n > 0 ? kec->n : 1, n = 0;
	const struct row **r = calloc(cap, sizeof(*r));
	struct hbar *b = calloc(cap, sizeof(*b));
	char (*shown)[16] = calloc(cap, sizeof(*shown));
	const char *head[] = { "Kecamatan", "Digital take-up",
	    "Completed transactions" };
	char title[128], desc[768], ref[16], ref_label[600];
	struct hchart ch;
	struct table t;
	int rc = -1;

	if (r == NULL || b == NULL || shown == NULL)
		goto out;
	/* kec is sorted lowest take-up first, the dashes last. */
	for (size_t i = kec->n; i-- > 0;)
		if (kec->v[i].key[0] != '\0' && take_up(&kec->v[i].cur) >= 0)
			r[n++] = &kec->v[i];
	for (size_t i = 0; i < kec->n; i++)
		if (kec->v[i].key[0] != '\0' && take_up(&kec->v[i].cur) < 0)
			r[n++] = &kec->v[i];
	for (size_t i = 0; i < n; i++) {
		b[i].label = r[i]->name;
		b[i].value = take_up(&r[i]->cur);
		fmt_pct(shown[i], sizeof(shown[i]), r[i]->cur.completed_digital,
		    r[i]->cur.completed);
		b[i].shown = shown[i];
	}
	fmt_pct(ref, sizeof(ref), all->cur.completed_digital,
	    all->cur.completed);
	snprintf(title, sizeof(title), "Digital take-up by kecamatan, %s",
	    month);
	if (n > 0 && b[0].value >= 0) {
		size_t last = n - 1;

		while (b[last].value < 0)
			last--;
		snprintf(desc, sizeof(desc), "Horizontal bars, one per "
		    "kecamatan (%zu), from the highest digital take-up to the "
		    "lowest: highest %s, %s; lowest %s, %s. Take-up is the "
		    "share of completed transactions that were digital; %s "
		    "as a whole: %s%s.", n, b[0].label, b[0].shown,
		    b[last].label, b[last].shown, scope, ref, n > 1 ?
		    " (the dashed line)" : "");
		u8_clip(desc);
	} else
		snprintf(desc, sizeof(desc), "No kecamatan has completed "
		    "transactions in %s.", month);
	fputs("<section>\n<h2>Digital take-up by kecamatan</h2>\n", out);
	ch.id = "chart-kecamatan";
	ch.title = title;
	ch.desc = desc;
	ch.axis = "Digital take-up (% of completed transactions)";
	ch.colour = COLOUR_KECAMATAN;
	ch.max = 1.0;
	ch.ticks = 5;
	ch.pct = 1;
	ch.label_w = 180;
	/* The whole scope's line says nothing beside a single bar. */
	ch.ref = n > 1 ? take_up(&all->cur) : -1;
	snprintf(ref_label, sizeof(ref_label), "%s %s", scope, ref);
	u8_clip(ref_label);
	ch.ref_label = ref_label;
	svg_hbars(out, &ch, b, n);
	if (table_init(&t, title, n, 3, head) == -1)
		goto out;
	t.sr_only = 1;
	for (size_t i = 0; i < n; i++) {
		char (*v)[CELL] = table_row(&t);

		snprintf(v[0], CELL, "%s", b[i].label);
		u8_clip(v[0]);
		snprintf(v[1], CELL, "%s", b[i].shown);
		report_fmt_count(v[2], CELL, r[i]->cur.completed);
	}
	table_html(&t, out);
	table_free(&t);
	fputs("</section>\n", out);
	rc = 0;
out:
	free(r);
	free(b);
	free(shown);
	return rc;
}

/* The services with the most manual transactions, bars of that count. */
static int
chart_services(FILE *out, const struct rows *svc, const char *month)
{
	size_t n = 0;
	struct hbar b[TOP_SERVICES];
	char shown[TOP_SERVICES][64];
	const char *head[] = { "Service", "Manual transactions",
	    "Digital transactions", "Digital take-up" };
	char title[128], desc[512], tu[16];
	double max = 0;
	int ticks;
	struct table t;

	/* svc is sorted by manual transactions, most first. */
	for (size_t i = 0; i < svc->n && n < TOP_SERVICES; i++) {
		const struct row *r = &svc->v[i];
		char cnt[32];

		if (r->cur.manual <= 0)
			break;
		report_fmt_count(cnt, sizeof(cnt), r->cur.manual);
		fmt_pct(tu, sizeof(tu), r->cur.completed_digital,
		    r->cur.completed);
		snprintf(shown[n], sizeof(shown[n]), "%s (take-up %s)", cnt,
		    tu);
		b[n].label = r->name;
		b[n].value = (double)r->cur.manual;
		b[n].shown = shown[n];
		if (b[n].value > max)
			max = b[n].value;
		n++;
	}
	snprintf(title, sizeof(title), "Services with the most manual "
	    "transactions, %s", month);
	if (n > 0)
		snprintf(desc, sizeof(desc), "Horizontal bars of manual "
		    "transactions for the %zu services with the most, most "
		    "first: %s has %s. These are where help to go digital "
		    "would move the take-up most.", n, b[0].label, b[0].shown);
	else
		snprintf(desc, sizeof(desc), "No manual transactions in %s.",
		    month);
	u8_clip(desc);
	fputs("<section>\n<h2>Services with the most manual transactions"
	    "</h2>\n<p class=\"note\">Where community help to go digital "
	    "would move the indicator most.</p>\n", out);
	ticks = nice_axis(max > 0 ? max : 1.0, &max);
	{
		const struct hchart ch = { "chart-services", title, desc,
		    "Manual transactions", COLOUR_MANUAL, max, ticks, 0, 300,
		    -1, NULL };

		svg_hbars(out, &ch, b, n);
	}
	if (table_init(&t, title, n, 4, head) == -1)
		return -1;
	t.sr_only = 1;
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &svc->v[i];
		char (*v)[CELL] = table_row(&t);

		snprintf(v[0], CELL, "%s", r->name);
		u8_clip(v[0]);
		report_fmt_count(v[1], CELL, r->cur.manual);
		report_fmt_count(v[2], CELL, r->cur.digital);
		fmt_pct(v[3], CELL, r->cur.completed_digital, r->cur.completed);
	}
	table_html(&t, out);
	table_free(&t);
	fputs("</section>\n", out);
	return 0;
}

/* Take-up month by month up to the chosen one: vertical bars. */
static int
chart_trend(FILE *out, const struct rows *tr)
{
	const int w = 860, x0 = 56, plot = 784, top = 24, ph = 200;
	const int base = top + ph, h = base + 58;
	size_t first = 0, n;
	double max = 0, ymax;
	int slot, bw;
	char title[128], desc[768], pct[16], *d;
	const char *head[] = { "Month", "Digital take-up",
	    "Completed transactions" };
	struct table t;

	/* Leading months without data say nothing: start at the first. */
	while (first + 1 < tr->n && tr->v[first].cur.completed == 0)
		first++;
	n = tr->n - first;
	for (size_t i = first; i < tr->n; i++)
		if (take_up(&tr->v[i].cur) > max)
			max = take_up(&tr->v[i].cur);
	/* Round up to the next 10%, with room for the labels over the bars. */
	ymax = ceil((max + 0.04) * 10) / 10;
	if (ymax > 1.0)
		ymax = 1.0;
	if (ymax < 0.1)
		ymax = 0.1;
	slot = plot / (int)(n > 0 ? n : 1);
	bw = slot * 6 / 10 > 80 ? 80 : slot * 6 / 10;
	snprintf(title, sizeof(title), "Digital take-up by month, %s to %s",
	    tr->v[first].key, tr->v[tr->n - 1].key);
	d = desc;
	d += snprintf(desc, sizeof(desc), "Vertical bars, one per month, "
	    "digital take-up:");
	for (size_t i = first; i < tr->n && d < desc + sizeof(desc) - 40;
	    i++) {
		fmt_pct(pct, sizeof(pct), tr->v[i].cur.completed_digital,
		    tr->v[i].cur.completed);
		d += snprintf(d, (size_t)(desc + sizeof(desc) - d), " %s %s%s",
		    tr->v[i].key, tr->v[i].cur.completed > 0 ? pct : "no data",
		    i + 1 < tr->n ? ";" : ".");
	}
	fputs("<section>\n<h2>Digital take-up month by month</h2>\n", out);
	svg_open(out, "chart-trend", w, h, title, desc);
	for (int k = 0; k <= (int)lround(ymax * 10); k++) {
		int y = base - (int)lround(ph * (k / 10.0) / ymax);

		fprintf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" "
		    "x2=\"%d\" y2=\"%d\"/>\n", x0, y, x0 + plot, y);
		snprintf(pct, sizeof(pct), "%d%%", k * 10);
		svg_text(out, x0 - 6, y + 4, "end", "tick", pct);
	}
	for (size_t i = first; i < tr->n; i++) {
		const struct counts *c = &tr->v[i].cur;
		int cx = x0 + slot * (int)(i - first) + slot / 2;

		svg_text(out, cx, base + 18, "middle", i + 1 == tr->n ?
		    "tick current" : "tick", tr->v[i].key);
		if (c->completed <= 0) {
			svg_text(out, cx, base - 6, "middle", "none",
			    "no data");
			continue;
		}
		{
			int bh = (int)lround(ph * take_up(c) / ymax);

			fmt_pct(pct, sizeof(pct), c->completed_digital,
			    c->completed);
			fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
			    "height=\"%d\" fill=\"%s\"><title>%s: %s</title>"
			    "</rect>\n", cx - bw / 2, base - bh, bw, bh,
			    COLOUR_TREND, tr->v[i].key, pct);
			svg_text(out, cx, base - bh - 6, "middle", "value",
			    pct);
		}
	}
	fprintf(out, "<line class=\"baseline\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
	    "y2=\"%d\"/>\n", x0, base, x0 + plot, base);
	svg_text(out, x0 + plot / 2, h - 10, "middle", "axis",
	    "Month (local time, WIB)");
	fprintf(out, "<text class=\"axis\" transform=\"rotate(-90)\" "
	    "x=\"%d\" y=\"14\" text-anchor=\"middle\">Digital take-up (%%)"
	    "</text>\n</svg>\n", -(top + ph / 2));
	if (table_init(&t, title, n, 3, head) == -1)
		return -1;
	t.sr_only = 1;
	for (size_t i = first; i < tr->n; i++) {
		char (*v)[CELL] = table_row(&t);

		snprintf(v[0], CELL, "%s", tr->v[i].key);
		fmt_pct(v[1], CELL, tr->v[i].cur.completed_digital,
		    tr->v[i].cur.completed);
		report_fmt_count(v[2], CELL, tr->v[i].cur.completed);
	}
	table_html(&t, out);
	table_free(&t);
	fputs("</section>\n", out);
	return 0;
}

/* ------------------------------------------------------------------ page */

static const char css[] =
	"body{font-family:\"DejaVu Sans\",Verdana,Arial,sans-serif;margin:0;"
	"color:#1f2933;background:#fff}\n"
	"main{max-width:900px;margin:0 auto;padding:12px 20px 40px}\n"
	"h1{font-size:1.45em;margin:.3em 0}\n"
	"h2{font-size:1.1em;margin:1.6em 0 .4em}\n"
	"p{margin:.3em 0}\n"
	".note,footer{color:#52606d;font-size:.85em}\n"
	"table{border-collapse:collapse;margin:.4em 0;font-size:.85em}\n"
	"th,td{padding:3px 8px;border-bottom:1px solid #e4e7eb}\n"
	"td{text-align:right;font-variant-numeric:tabular-nums;"
	"white-space:nowrap}\n"
	"thead th{text-align:right;background:#f5f7fa;white-space:nowrap}\n"
	"thead th:first-child,tbody th{text-align:left}\n"
	"tbody th{font-weight:normal}\n"
	"caption{text-align:left;font-weight:bold;padding:4px 0}\n"
	"svg{display:block;max-width:100%;height:auto;font-size:12px}\n"
	"svg text{fill:#1f2933}\n"
	"svg .grid{stroke:#d9dde3;stroke-width:1}\n"
	"svg .baseline{stroke:#52606d;stroke-width:1}\n"
	"svg .ref{stroke:#1f2933;stroke-width:1.5;stroke-dasharray:4 3}\n"
	"svg .tick{fill:#52606d;font-size:11px}\n"
	"svg .current{font-weight:bold;fill:#1f2933}\n"
	"svg .value{font-size:11px;paint-order:stroke;stroke:#fff;"
	"stroke-width:3px;stroke-linejoin:round}\n"
	"svg .none{fill:#7b8794;font-size:11px;font-style:italic}\n"
	".sr-only{position:absolute;width:1px;height:1px;padding:0;"
	"margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;"
	"border:0}\n";

/* What the page shows, all made by report_run. */
struct page {
	const char *month, *scope;
	const struct row *all;		/* the scope's totals */
	const struct table *tot, *ts, *tk;
	const struct rows *svc, *kec, *trend;
	const char *reach_note;		/* lines under the totals */
	const struct table *tr;		/* residents by kecamatan; may be NULL */
};

static int
write_page(FILE *f, const struct page *pg)
{
	const char *month = pg->month, *scope = pg->scope;

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>", f);
	fprintf(f, "kanal report %s: ", month);
	report_html_escape(f, scope);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n"
	    "<h1>Digital public services, %s</h1>\n<p>", css, month);
	report_html_escape(f, scope);
	fputs(". Months are local time (WIB). Rates are over completed "
	    "transactions; changes are from the month before, in "
	    "percentage points.</p>\n", f);
	table_html(pg->tot, f);
	fputs("<p class=\"note\">", f);
	for (const char *c = pg->reach_note; *c != '\0'; c++) {
		if (*c == '\n') {
			if (c[1] != '\0')
				putc(' ', f);
			continue;
		}
		report_html_escape_char(f, *c);
	}
	fputs("</p>\n", f);
	if (chart_kecamatan(f, pg->kec, pg->all, scope, month) == -1 ||
	    chart_trend(f, pg->trend) == -1 ||
	    chart_services(f, pg->svc, month) == -1)
		return -1;
	fputs("<h2>Every service</h2>\n", f);
	table_html(pg->ts, f);
	fputs("<h2>Every kecamatan</h2>\n", f);
	table_html(pg->tk, f);
	if (pg->tr != NULL) {
		fputs("<h2>Residents reached, by kecamatan</h2>\n", f);
		table_html(pg->tr, f);
	}
	fputs("<footer>\n<p>Digital take-up: completed digital transactions "
	    "(assisted ones included) / all completed transactions. "
	    "Self-service rate: completed digital transactions done without "
	    "help / all completed. Completion rate: completed / (completed + "
	    "abandoned + failed). Mean time: mean duration of the "
	    "transactions that reported one. Digital channels: web, mobile "
	    "app, kiosk, chat, partner; manual: counter, phone, outreach, "
	    "paper (kanal.channel).</p>\n<p>Made by kanalctl report from "
	    "kanal.adoption_counts_monthly.</p>\n</footer>\n</main>\n"
	    "</body>\n</html>\n", f);
	return 0;
}

/* The page into the file name (opened for writing). 0, or -1 with err. */
static int
write_page_to(const char *name, const struct page *pg, char *err,
    size_t errlen)
{
	FILE *f = fopen(name, "w");
	int r;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return -1;
	}
	r = write_page(f, pg);
	if (r == -1)
		snprintf(err, errlen, "out of memory");
	if (ferror(f) && r == 0) {
		snprintf(err, errlen, "%s: write error", name);
		r = -1;
	}
	if (fclose(f) != 0 && r == 0) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		r = -1;
	}
	return r;
}

/*
 * The page into path: a regular file is written beside it and renamed over
 * it (a reader never sees half a page); anything else that exists (a
 * terminal, a pipe, /dev/null, /dev/stdout) is written to as it is, never
 * replaced: renaming over /dev/null as root would make it a regular file
 * for the whole machine.
 */
static int
write_html(const char *path, const struct page *pg, char *err, size_t errlen)
{
	char tmp[4096];
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return write_page_to(path, pg, err, errlen);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: name too long", path);
		return -1;
	}
	r = write_page_to(tmp, pg, err, errlen);
	if (r == 0 && rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		r = -1;
	}
	if (r == -1)
		unlink(tmp);
	return r;
}

/* ------------------------------------------------------------------ run */

int
report_check(const struct report_opts *o, char *err, size_t errlen)
{
	const char *m = o->month;
	int ok;

	ok = m != NULL && strlen(m) == 7 && m[4] == '-';
	for (int i = 0; ok && i < 7; i++)
		if (i != 4 && (m[i] < '0' || m[i] > '9'))
			ok = 0;
	if (ok)
		ok = m[0] != '0' && (m[5] == '0' ? m[6] >= '1' :
		    m[5] == '1' && m[6] <= '2');
	if (!ok) {
		snprintf(err, errlen, "--month is YYYY-MM, e.g. 2026-10 (got "
		    "\"%s\")", m != NULL ? m : "");
		return -1;
	}
	if (o->region != NULL && !validate_region_code(o->region,
	    strlen(o->region))) {
		snprintf(err, errlen, "--region is a Kemendagri code: 32.73 "
		    "(the city), 32.73.01 (a kecamatan) or 32.73.01.1001 (got "
		    "\"%s\")", o->region);
		return -1;
	}
	return 0;
}

/* "Name (code)" of the region, or "All regions". */
static int
scope_name(PGconn *conn, const char *region, char *buf, size_t len,
    char *err, size_t errlen)
{
	const char *params[1] = { region };
	PGresult *res;

	if (region == NULL) {
		snprintf(buf, len, "All regions");
		return 0;
	}
	res = PQexecParams(conn, "SELECT name FROM kanal.region WHERE code = "
	    "$1::text", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "query failed: %s",
		    PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 1)
		snprintf(buf, len, "%s (%s)", PQgetvalue(res, 0, 0), region);
	else
		snprintf(buf, len, "Region %s", region);
	u8_clip(buf);
	PQclear(res);
	return 0;
}

int
report_run(PGconn *conn, const struct report_opts *o, FILE *out, char *err,
    size_t errlen)
{
	struct rows tot = { 0 }, svc = { 0 }, kec = { 0 }, trend = { 0 };
	struct table t_tot = { 0 }, t_svc = { 0 }, t_kec = { 0 }, t_reach = { 0 };
	struct reach reach = { 0 };
	char day[16], prev[16], scope[512], cap[700], line[CELL], note[1024];
	int y, m, rc = -1, reach_table;

	if (report_check(o, err, errlen) == -1)
		return -1;
	snprintf(day, sizeof(day), "%s-01", o->month);
	y = atoi(o->month);
	m = atoi(o->month + 5);
	if (--m == 0) {
		m = 12;
		y--;
	}
	snprintf(prev, sizeof(prev), "%04d-%02d", y % 10000, m % 100);
	if (scope_name(conn, o->region, scope, sizeof(scope), err, errlen)
	    == -1)
		return -1;
	if (rows_query(conn, q_months[BY_TOTAL], day, o->region, &tot, err,
	    errlen) == -1)
		goto out;
	if (tot.n == 0 || !tot.v[0].has_cur) {
		snprintf(err, errlen, "no events in %s for %s", o->month,
		    o->region != NULL ? scope : "any region");
		rc = 1;
		goto out;
	}
	if (rows_query(conn, q_months[BY_SERVICE], day, o->region, &svc, err,
	    errlen) == -1 ||
	    rows_query(conn, q_months[BY_KECAMATAN], day, o->region, &kec,
	    err, errlen) == -1 ||
	    rows_query(conn, q_trend, day, o->region, &trend, err, errlen)
	    == -1)
		goto out;
	if (reach_load(conn, o->month, day, o->region, scope, &reach, err,
	    errlen) == -1)
		goto out;
	reach_note(note, sizeof(note), &reach, o->month, prev);
	rows_keep_current(&svc);
	rows_keep_current(&kec);
	qsort(svc.v, svc.n, sizeof(*svc.v), by_manual);
	qsort(kec.v, kec.n, sizeof(*kec.v), by_take_up);

	snprintf(cap, sizeof(cap), "Totals: %s", scope);
	u8_clip(cap);
	reach_table = reach.measured && reach.nkec > 0;
	if (table_totals(&t_tot, cap, &tot.v[0], o->month, prev, &reach) == -1 ||
	    (reach_table && table_reach(&t_reach, "Residents reached by "
	    "kecamatan (distinct, estimated)", &reach) == -1) ||
	    table_groups(&t_svc, "By service, most manual transactions first",
	    "Service", &svc, 0) == -1 ||
	    table_groups(&t_kec, "By kecamatan, lowest digital take-up first",
	    "Kecamatan", &kec, 1) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	u8_fit(line, sizeof(line), scope, WIDTH - 30);
	fprintf(out, "kanal report for %s (WIB): %s\n\n", o->month, line);
	table_text(&t_tot, out);
	text_wrap(out, note);
	putc('\n', out);
	table_text(&t_svc, out);
	table_text(&t_kec, out);
	if (reach_table)
		table_text(&t_reach, out);
	fprintf(out, "Rates are over completed transactions. Take-up chg: "
	    "percentage points since %s, " DASH " when\n%s has no completed "
	    "transactions there.\n", prev, prev);
	if (o->html != NULL) {
		const struct page pg = { o->month, scope, &tot.v[0], &t_tot,
		    &t_svc, &t_kec, &svc, &kec, &trend, note,
		    reach_table ? &t_reach : NULL };

		if (write_html(o->html, &pg, err, errlen) == -1)
			goto out;
	}
	rc = 0;
out:
	table_free(&t_tot);
	table_free(&t_svc);
	table_free(&t_kec);
	table_free(&t_reach);
	reach_free(&reach);
	rows_free(&tot);
	rows_free(&svc);
	rows_free(&kec);
	rows_free(&trend);
	return rc;
}

/* ------------------------------------------------------------ command */

int
report_main(int argc, char **argv)
{
	struct report_opts ro = { NULL, NULL, NULL };
	const char *pg = "";
	const struct opt o[] = {
		{ "pg", "CONNINFO", "database to read (kanal_analyst is "
		  "enough; default: PG* environment)", &pg, NULL },
		{ "month", "YYYY-MM", "the local (WIB) month to report",
		  &ro.month, NULL },
		{ "region", "CODE", "only this region and what is under it: "
		  "32.73 a city, 32.73.01 a kecamatan (default: all)",
		  &ro.region, NULL },
		{ "html", "FILE", "also write a self-contained HTML page with "
		  "charts", &ro.html, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl report --pg CONNINFO --month YYYY-MM "
	    "[--region CODE] [--html FILE]";
	PGconn *conn;
	char err[1024];
	int r;

	r = opts_parse("kanalctl", argc, argv, o, syn, "Prints the month's "
	    "digital take-up, self-service and completion rates, mean\n"
	    "times and counts, with the change from the month before: in "
	    "total, by service\n(most manual transactions first) and by "
	    "kecamatan (lowest take-up first).\n--html writes the same as one "
	    "page with charts and no external files.\nExit 0; 1: no events "
	    "that month in the region, or an error; 2: usage.");
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	if (ro.month == NULL) {
		fprintf(stderr, "kanalctl report: --month is required (see "
		    "--help)\n");
		return EXIT_USAGE;
	}
	if (report_check(&ro, err, sizeof(err)) == -1) {
		fprintf(stderr, "kanalctl report: %s\n", err);
		return EXIT_USAGE;
	}
	conn = PQconnectdb(pg);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "kanalctl report: cannot connect: %s",
		    PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	r = report_run(conn, &ro, stdout, err, sizeof(err));
	PQfinish(conn);
	if (r != 0)
		fprintf(stderr, "kanalctl report: %s\n", err);
	return r == 0 ? 0 : 1;
}
