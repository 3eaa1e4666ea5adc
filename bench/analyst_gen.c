/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanal-analyst-gen: a province's hourly rollups as COPY text for
 * kanal.usage_hourly, for bench/analyst. The rows are made here, never
 * sent through kanald: what is measured is the analysts' side, on years of
 * data that kanald would have taken years to write.
 *
 * The province is Jawa Barat: its 27 kabupaten and kota (32.01..32.18,
 * 32.71..32.79, weighted by their approximate 2020 population), each with
 * as many kecamatan as the catalogue lists for Kota Bandung (30: CITY.01 ..
 * CITY.30, weighted like Bandung's). The services come from the catalogue
 * too (kanal.service), so the data never name a service the schema does
 * not know. The catalogue is a file of tab-separated lines, written by
 * bench/analyst from the database:
 *
 *     service    CODE
 *     kecamatan  POPULATION           (in the order of their codes)
 *     channel    CODE  MODE           (optional: checked against ours)
 *
 * The shape is tools/demo.h's: manual channels only on weekdays
 * 08:00-16:00 WIB (UTC+7), digital at any hour and busiest in the evening;
 * outcomes digital 84/11/4/1 (completed/abandoned/failed/unknown), manual
 * 93/5/1/1; assisted on half the kiosk use and 1 in 8 web, app and chat;
 * durations log-normal, median 4 min digital and 20 min manual, 10%
 * without a duration. Over the years the volume grows 10% a year and the
 * digital share 5 points a year; school admission (disdik.ppdb) peaks in
 * June and July, property tax (bapenda.pbb) in July to September; each
 * day's volume varies by about 8%.
 *
 * Determinism: each hour draws from its own generator, seeded from --seed
 * and the hour's number, so the same seed, catalogue and options always
 * give the same bytes, and any subset of hours can be drawn alone (that is
 * how --rows is calibrated: on every 23rd hour, which meets every hour of
 * the week).
 *
 * Rows come out in the primary key's order (bucket, service_code, channel,
 * region_code, outcome, assisted; bytewise, as the C collation of
 * scripts/pg's cluster sorts them), so that COPY appends to the right edge
 * of the index instead of splitting pages all over it.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opts.h"
#include "rng.h"

#define PROG "kanal-analyst-gen"
#define WIB_OFFSET_S (7 * 3600)
#define MAX_SERVICES 256
#define MAX_KECAMATAN 99
#define NCITY 27
#define NCHANNEL 9
#define NOUTCOME 4
#define CALIBRATION_STEP 23
#define OUTBUF (1 << 20)
/* Spread of volume between the services of one agency (log-normal). */
#define SERVICE_SIGMA 1.0

/* ------------------------------------------------------------- the model */

/* Approximate 2020 census population of each kabupaten/kota, in code order. */
static const struct city {
	const char *code;
	double population;
} cities[NCITY] = {
	{ "32.01", 5427000 }, { "32.02", 2725000 }, { "32.03", 2478000 },
	{ "32.04", 3624000 }, { "32.05", 2586000 }, { "32.06", 1865000 },
	{ "32.07", 1229000 }, { "32.08", 1168000 }, { "32.09", 2271000 },
	{ "32.10", 1305000 }, { "32.11", 1153000 }, { "32.12", 1834000 },
	{ "32.13", 1595000 }, { "32.14", 997000 },  { "32.15", 2439000 },
	{ "32.16", 3113000 }, { "32.17", 1788000 }, { "32.18", 424000 },
	{ "32.71", 1043000 }, { "32.72", 346000 },  { "32.73", 2444000 },
	{ "32.74", 333000 },  { "32.75", 2544000 }, { "32.76", 2056000 },
	{ "32.77", 568000 },  { "32.78", 716000 },  { "32.79", 201000 },
};

/* Channels and outcomes in bytewise order of their codes (the key order). */
enum { CH_CHAT, CH_COUNTER, CH_KIOSK, CH_MOBILE_APP, CH_OUTREACH, CH_PAPER,
	CH_PARTNER, CH_PHONE, CH_WEB };
static const char *const channel_code[NCHANNEL] = { "chat", "counter",
	"kiosk", "mobile_app", "outreach", "paper", "partner", "phone", "web" };
static const int channel_digital[NCHANNEL] = { 1, 0, 1, 1, 0, 0, 1, 0, 1 };
enum { OUT_ABANDONED, OUT_COMPLETED, OUT_FAILED, OUT_UNKNOWN };
static const char *const outcome_code[NOUTCOME] = { "abandoned",
	"completed", "failed", "unknown" };

/*
 * Volume and digital propensity by agency (the code's prefix); a service
 * gets its agency's volume times 0.5..1.5 and its propensity +-0.1. The
 * last row is for every other agency.
 */
static const struct agency {
	const char *prefix;
	double volume, digital;
} agencies[] = {
	{ "dukcapil.", 3.0, 0.34 },	/* population registry: the bulk */
	{ "dinkes.", 2.5, 0.20 },	/* health: mostly at the puskesmas */
	{ "bapenda.", 2.0, 0.60 },	/* tax: banks, e-wallets, QRIS */
	{ "dpmptsp.", 1.0, 0.56 },	/* licensing: OSS */
	{ "diskominfo.", 0.8, 0.68 },	/* complaints: app and chat */
	{ "disdik.", 0.6, 0.72 },	/* school admission is online first */
	{ "", 0.8, 0.34 },
};

/* Relative weight of each WIB hour for digital use; evenings busiest. */
static const double digital_hour[24] = {
	0.12, 0.08, 0.06, 0.06, 0.10, 0.25, 0.45, 0.65, 0.85, 0.95, 1.00, 1.00,
	0.90, 0.95, 1.00, 0.95, 0.95, 1.05, 1.20, 1.40, 1.45, 1.25, 0.80, 0.35,
};

struct cell {
	uint32_t events, duration_events;
	uint64_t duration_ms_sum;
};

struct gen {
	uint64_t seed;
	int64_t t0;			/* first bucket, Unix seconds */
	int nhours, first_month;	/* first_month = year * 12 + month - 1 */
	size_t nsvc, nkec, nreg, npair;
	char *svc[MAX_SERVICES];	/* sorted bytewise */
	double svc_volume[MAX_SERVICES], svc_digital[MAX_SERVICES];
	int svc_tax[MAX_SERVICES];
	double kec_pop[MAX_KECAMATAN];
	char (*reg_code)[16];
	double *reg_weight, *reg_shift;
	/* The month the tables below are for, and (service, region) pairs'
	 * cumulative weights for a digital and for a manual event. */
	int table_month;
	double *cum_digital, *cum_manual, share_digital;
	struct cell *cells;
	uint32_t *touched;
	size_t ntouched;
	uint64_t rows, events;
	/* Output, or NULL to count only. */
	FILE *out;
	char *buf;
	size_t buflen;
};

/* ------------------------------------------------------------ calendar */

/* Unix seconds of 00:00 UTC on the first of month m (0 = January) of y. */
static int64_t
month_start_utc(int y, int m)
{
	struct tm tm = { .tm_year = y + m / 12 - 1900, .tm_mon = m % 12,
	    .tm_mday = 1 };

	return (int64_t)timegm(&tm);
}

/* The UTC calendar fields of Unix time t (seconds). */
static struct tm
utc_fields(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	return tm;
}

/* ------------------------------------------------------------- helpers */

static double
clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* A generator of its own for each (kind, number): hours, days. */
static uint64_t
substream(uint64_t seed, uint64_t kind, uint64_t n)
{
	uint64_t s = seed ^ (kind * 0xd1b54a32d192ed03ULL) ^
	    (n * 0x9e3779b97f4a7c15ULL);

	(void)rng_next(&s);
	return rng_next(&s);
}

static const struct agency *
agency_of(const char *code)
{
	size_t i;

	for (i = 0; agencies[i].prefix[0] != '\0'; i++)
		if (strncmp(code, agencies[i].prefix,
		    strlen(agencies[i].prefix)) == 0)
			break;
	return &agencies[i];
}

/* Volume of service s in calendar month m (1..12). */
static double
season(const struct gen *g, size_t s, int m)
{
	if (strcmp(g->svc[s], "disdik.ppdb") == 0)
		return m == 6 || m == 7 ? 4.0 : 0.4;
	if (strcmp(g->svc[s], "bapenda.pbb") == 0)
		return m >= 7 && m <= 9 ? 1.8 : 0.8;
	return 1.0;
}

/* ----------------------------------------------------------- catalogue */

static int
svc_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the catalogue; 0, or -1 with a message on stderr. */
static int
catalog_read(struct gen *g, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *save, *kind, *a, *b;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, rc = -1;

	if (f == NULL) {
		fprintf(stderr, "%s: %s: %s\n", PROG, path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		kind = strtok_r(line, "\t", &save);
		if (kind == NULL)
			continue;
		a = strtok_r(NULL, "\t", &save);
		b = strtok_r(NULL, "\t", &save);
		if (strcmp(kind, "service") == 0 && a != NULL) {
			if (g->nsvc == MAX_SERVICES) {
				fprintf(stderr, "%s: %s:%d: more than %d "
				    "services\n", PROG, path, lineno,
				    MAX_SERVICES);
				goto out;
			}
			g->svc[g->nsvc] = strdup(a);
			if (g->svc[g->nsvc++] == NULL)
				goto nomem;
		} else if (strcmp(kind, "kecamatan") == 0 && a != NULL) {
			if (g->nkec == MAX_KECAMATAN) {
				fprintf(stderr, "%s: %s:%d: more than %d "
				    "kecamatan\n", PROG, path, lineno,
				    MAX_KECAMATAN);
				goto out;
			}
			g->kec_pop[g->nkec++] = atof(a) > 0 ? atof(a) : 1;
		} else if (strcmp(kind, "channel") == 0 && a != NULL &&
		    b != NULL) {
			int k;
			for (k = 0; k < NCHANNEL; k++)
				if (strcmp(a, channel_code[k]) == 0)
					break;
			if (k < NCHANNEL && (strcmp(b, "digital") == 0) !=
			    channel_digital[k]) {
				fprintf(stderr, "%s: %s:%d: channel %s is %s "
				    "in the catalogue but not here; update "
				    "channel_digital in bench/analyst_gen.c\n",
				    PROG, path, lineno, a, b);
				goto out;
			}
		} else {
			fprintf(stderr, "%s: %s:%d: expected 'service CODE', "
			    "'kecamatan POPULATION' or 'channel CODE MODE'\n",
			    PROG, path, lineno);
			goto out;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s: %s\n", PROG, path, strerror(errno));
		goto out;
	}
	if (g->nsvc == 0 || g->nkec == 0) {
		fprintf(stderr, "%s: %s: no services or no kecamatan\n", PROG,
		    path);
		goto out;
	}
	qsort(g->svc, g->nsvc, sizeof(g->svc[0]), svc_cmp);
	rc = 0;
	goto out;
nomem:
	fprintf(stderr, "%s: out of memory\n", PROG);
out:
	free(line);
	fclose(f);
	return rc;
}

/* --------------------------------------------------------------- set-up */

static void
gen_free(struct gen *g)
{
	for (size_t i = 0; i < g->nsvc; i++)
		free(g->svc[i]);
	free(g->reg_code);
	free(g->reg_weight);
	free(g->reg_shift);
	free(g->cum_digital);
	free(g->cum_manual);
	free(g->cells);
	free(g->touched);
	free(g->buf);
}

/* The fixed parts of the model, drawn from the seed. 0, or -1 (no memory). */
static int
gen_init(struct gen *g)
{
	uint64_t s = substream(g->seed, 1, 0);
	double kec_total = 0;
	size_t ncells;

	g->nreg = NCITY * g->nkec;
	g->npair = g->nsvc * g->nreg;
	ncells = g->npair * NCHANNEL * NOUTCOME * 2;
	g->reg_code = calloc(g->nreg, sizeof(*g->reg_code));
	g->reg_weight = calloc(g->nreg, sizeof(double));
	g->reg_shift = calloc(g->nreg, sizeof(double));
	g->cum_digital = calloc(g->npair, sizeof(double));
	g->cum_manual = calloc(g->npair, sizeof(double));
	g->cells = calloc(ncells, sizeof(struct cell));
	g->touched = calloc(ncells, sizeof(uint32_t));
	g->buf = malloc(OUTBUF);
	if (g->reg_code == NULL || g->reg_weight == NULL ||
	    g->reg_shift == NULL || g->cum_digital == NULL ||
	    g->cum_manual == NULL || g->cells == NULL || g->touched == NULL ||
	    g->buf == NULL)
		return -1;
	g->table_month = -1;
	for (size_t i = 0; i < g->nsvc; i++) {
		const struct agency *a = agency_of(g->svc[i]);
		g->svc_volume[i] = a->volume * exp(SERVICE_SIGMA * rng_normal(&s));
		g->svc_digital[i] = a->digital + (rng_uniform(&s) - 0.5) * 0.2;
		g->svc_tax[i] = strncmp(g->svc[i], "bapenda.", 8) == 0;
	}
	for (size_t k = 0; k < g->nkec; k++)
		kec_total += g->kec_pop[k];
	for (size_t c = 0; c < NCITY; c++) {
		/* Cities (kota, 32.7x) use digital channels more. */
		double city_shift = cities[c].code[3] == '7' ? 0.06 : -0.03;
		for (size_t k = 0; k < g->nkec; k++) {
			size_t r = c * g->nkec + k;
			/* k < MAX_KECAMATAN (99): two digits. */
			snprintf(g->reg_code[r], sizeof(g->reg_code[r]),
			    "%s.%02u", cities[c].code, (unsigned)(k + 1) % 100u);
			g->reg_weight[r] = cities[c].population *
			    g->kec_pop[k] / kec_total;
			g->reg_shift[r] = city_shift +
			    (rng_uniform(&s) - 0.5) * 0.16;
		}
	}
	return 0;
}

/* The pair tables for month index mi (0 = the first month). */
static void
gen_month(struct gen *g, int mi)
{
	int m = (g->first_month + mi) % 12 + 1;
	double years = (mi + 0.5) / 12.0, cd = 0, cm = 0;

	for (size_t s = 0; s < g->nsvc; s++) {
		double vol = g->svc_volume[s] * season(g, s, m);
		for (size_t r = 0; r < g->nreg; r++) {
			size_t i = s * g->nreg + r;
			double w = vol * g->reg_weight[r];
			double p = clamp(g->svc_digital[s] + g->reg_shift[r] +
			    0.05 * (years - 1.5), 0.02, 0.98);
			cd += w * p;
			cm += w * (1 - p);
			g->cum_digital[i] = cd;
			g->cum_manual[i] = cm;
		}
	}
	g->share_digital = cd / (cd + cm);
	g->table_month = mi;
}

/* -------------------------------------------------------------- output */

static int
out_flush(struct gen *g)
{
	if (g->buflen > 0 && fwrite(g->buf, 1, g->buflen, g->out) !=
	    g->buflen) {
		fprintf(stderr, "%s: writing the rows: %s\n", PROG,
		    strerror(errno));
		return -1;
	}
	g->buflen = 0;
	return 0;
}

static void
out_str(struct gen *g, const char *s, char sep)
{
	size_t n = strlen(s);

	memcpy(g->buf + g->buflen, s, n);
	g->buflen += n;
	g->buf[g->buflen++] = sep;
}

static void
out_u64(struct gen *g, uint64_t v, char sep)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		g->buf[g->buflen++] = tmp[--n];
	g->buf[g->buflen++] = sep;
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes (or only counts) the hour's cells and empties them. */
static int
hour_emit(struct gen *g, int64_t t)
{
	char bucket[40];
	struct tm tm = utc_fields(t);

	snprintf(bucket, sizeof(bucket), "%04d-%02d-%02d %02d:00:00+00",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
	if (g->out != NULL)
		qsort(g->touched, g->ntouched, sizeof(uint32_t), u32_cmp);
	for (size_t i = 0; i < g->ntouched; i++) {
		uint32_t idx = g->touched[i], k = idx;
		struct cell *c = &g->cells[idx];
		int assisted = (int)(k % 2), out, ch;
		size_t reg, svc;

		if (g->out != NULL) {
			if (g->buflen > OUTBUF - 512 && out_flush(g) == -1)
				return -1;
			k /= 2;
			out = (int)(k % NOUTCOME);
			k /= NOUTCOME;
			reg = k % g->nreg;
			k /= (uint32_t)g->nreg;
			ch = (int)(k % NCHANNEL);
			svc = k / NCHANNEL;
			out_str(g, bucket, '\t');
			out_str(g, g->svc[svc], '\t');
			out_str(g, channel_code[ch], '\t');
			out_str(g, g->reg_code[reg], '\t');
			out_str(g, outcome_code[out], '\t');
			out_str(g, assisted ? "t" : "f", '\t');
			out_u64(g, c->events, '\t');
			out_u64(g, c->duration_ms_sum, '\t');
			out_u64(g, c->duration_events, '\n');
		}
		g->events += c->events;
		memset(c, 0, sizeof(*c));
	}
	g->rows += g->ntouched;
	g->ntouched = 0;
	return 0;
}

/* ---------------------------------------------------------- generation */

static int
pick_channel(uint64_t *s, int digital, int tax)
{
	double u = rng_uniform(s);

	if (!digital)
		return u < 0.75 ? CH_COUNTER : u < 0.85 ? CH_PHONE :
		    u < 0.95 ? CH_OUTREACH : CH_PAPER;
	if (tax)
		return u < 0.30 ? CH_WEB : u < 0.55 ? CH_MOBILE_APP :
		    u < 0.60 ? CH_KIOSK : u < 0.65 ? CH_CHAT : CH_PARTNER;
	return u < 0.40 ? CH_WEB : u < 0.75 ? CH_MOBILE_APP :
	    u < 0.85 ? CH_KIOSK : u < 0.95 ? CH_CHAT : CH_PARTNER;
}

/* n events of one mode into the hour's cells; s is the hour's generator. */
static void
hour_events(struct gen *g, uint64_t *s, uint64_t n, int digital)
{
	const double *cum = digital ? g->cum_digital : g->cum_manual;

	for (uint64_t i = 0; i < n; i++) {
		size_t pair = rng_pick(s, cum, g->npair);
		size_t svc = pair / g->nreg, reg = pair % g->nreg;
		int ch = pick_channel(s, digital, g->svc_tax[svc]);
		double u = rng_uniform(s);
		int out, assisted;
		uint32_t idx;
		struct cell *c;

		if (digital)
			out = u < 0.84 ? OUT_COMPLETED : u < 0.95 ?
			    OUT_ABANDONED : u < 0.99 ? OUT_FAILED : OUT_UNKNOWN;
		else
			out = u < 0.93 ? OUT_COMPLETED : u < 0.98 ?
			    OUT_ABANDONED : u < 0.99 ? OUT_FAILED : OUT_UNKNOWN;
		u = rng_uniform(s);
		assisted = ch == CH_KIOSK ? u < 0.5 :
		    (digital && ch != CH_PARTNER) ? u < 0.125 : 0;
		idx = (uint32_t)((((svc * NCHANNEL + (size_t)ch) * g->nreg +
		    reg) * NOUTCOME + (size_t)out) * 2 + (size_t)assisted);
		c = &g->cells[idx];
		if (c->events == 0)
			g->touched[g->ntouched++] = idx;
		c->events++;
		if (rng_uniform(s) >= 0.1) {
			double median = digital ? 240000.0 : 1200000.0;
			double sigma = digital ? 0.6 : 0.5;
			c->duration_ms_sum += (uint64_t)clamp(median *
			    exp(sigma * rng_normal(s)), 1000.0,
			    8.0 * 3600 * 1000);
			c->duration_events++;
		}
	}
}

/* Round x up or down at random, in proportion: the mean stays x. */
static uint64_t
draw_count(uint64_t *s, double x)
{
	return (uint64_t)floor(x + rng_uniform(s));
}

/* Hour h (0 = the first) with per_day events on an average weekday. */
static int
gen_hour(struct gen *g, int h, double per_day)
{
	int64_t t = g->t0 + (int64_t)h * 3600, local = t + WIB_OFFSET_S;
	struct tm lt = utc_fields(local);	/* WIB wall-clock fields */
	int hour = lt.tm_hour, wday = lt.tm_wday, mi;
	uint64_t s, ds;
	double years = h / (365.25 * 24), volume, dsum = 0;

	mi = (lt.tm_year + 1900) * 12 + lt.tm_mon - g->first_month;
	if (mi != g->table_month)
		gen_month(g, mi);
	for (int i = 0; i < 24; i++)
		dsum += digital_hour[i];
	ds = substream(g->seed, 2, (uint64_t)(local / 86400));
	volume = per_day * pow(1.10, years) * exp(0.08 * rng_normal(&ds));
	s = substream(g->seed, 3, (uint64_t)h);
	hour_events(g, &s, draw_count(&s, volume * g->share_digital *
	    digital_hour[hour] / dsum * (wday == 0 || wday == 6 ? 0.8 : 1.0)),
	    1);
	if (wday >= 1 && wday <= 5 && hour >= 8 && hour < 16)
		hour_events(g, &s, draw_count(&s, volume *
		    (1 - g->share_digital) / 8.0), 0);
	return hour_emit(g, t);
}

/* Every step-th hour; returns the rows (an estimate for all hours). */
static double
gen_sample(struct gen *g, double per_day, int step)
{
	int n = 0;

	g->rows = g->events = 0;
	for (int h = 0; h < g->nhours; h += step, n++)
		(void)gen_hour(g, h, per_day);
	return (double)g->rows * g->nhours / n;
}

/*
 * The events per weekday that give about `rows` rows: rows grow with the
 * volume but ever more slowly (busy keys take more events, not more
 * rows), so bracket it, then bisect on the sample.
 */
static double
calibrate(struct gen *g, double rows)
{
	double lo = rows / (g->nhours / 24.0) * 0.5, hi = lo * 2;

	while (gen_sample(g, hi, CALIBRATION_STEP) < rows && hi < 1e12) {
		lo = hi;
		hi *= 2;
	}
	for (int i = 0; i < 24; i++) {
		double mid = sqrt(lo * hi);
		if (gen_sample(g, mid, CALIBRATION_STEP) < rows)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* ---------------------------------------------------------------- main */

static int
parse_num(const char *s, double lo, double hi, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi
	    ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *catalog = NULL, *rows_s = NULL, *per_day_s = NULL;
	const char *seed_s = "1", *from_s = "2023-12", *months_s = "36";
	int count_only = 0;
	const struct opt o[] = {
		{ "catalog", "FILE", "services and kecamatan weights "
		  "(bench/analyst writes it)", &catalog, NULL },
		{ "rows", "N", "about N rows: the volume is calibrated on "
		  "every 23rd hour", &rows_s, NULL },
		{ "per-day", "EVENTS", "events on an average weekday in the "
		  "first year (instead of --rows)", &per_day_s, NULL },
		{ "seed", "N", "seed (default 1)", &seed_s, NULL },
		{ "from", "YYYY-MM", "first local (WIB) month (default "
		  "2023-12)", &from_s, NULL },
		{ "months", "N", "local months (default 36)", &months_s, NULL },
		{ "count", NULL, "write nothing; only print the counts",
		  NULL, &count_only },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = PROG " --catalog FILE (--rows N | --per-day EVENTS) "
	    "[--seed N] [--from YYYY-MM] [--months N] [--count]";
	struct gen g;
	double months, rows = 0, per_day = 0;
	unsigned long long seed;
	char *end;
	int y, m, r, rc = 1;

	memset(&g, 0, sizeof(g));
	r = opts_parse(PROG, argc, argv, o, syn, "Writes hourly rollups of "
	    "Jawa Barat's 27 kabupaten/kota as COPY text for\n"
	    "kanal.usage_hourly on standard output, in primary-key order, the "
	    "same bytes\nfor the same seed. Prints rows=, events= and per_day= "
	    "on standard error.");
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (catalog == NULL || (rows_s == NULL) == (per_day_s == NULL) ||
	    (errno = 0, seed = strtoull(seed_s, &end, 10), errno != 0 ||
	    end == seed_s || *end != '\0' || seed_s[0] == '-') ||
	    parse_num(months_s, 1, 1200, &months) == -1 ||
	    sscanf(from_s, "%4d-%2d", &y, &m) != 2 || m < 1 || m > 12 ||
	    y < 1971 || (rows_s != NULL &&
	    parse_num(rows_s, 1, 4e9, &rows) == -1) || (per_day_s != NULL &&
	    parse_num(per_day_s, 0.001, 1e12, &per_day) == -1)) {
		fprintf(stderr, "usage: %s (see --help)\n", syn);
		return 2;
	}
	g.seed = (uint64_t)seed;
	g.first_month = y * 12 + m - 1;
	g.t0 = month_start_utc(y, m - 1) - WIB_OFFSET_S;
	g.nhours = (int)((month_start_utc(y, m - 1 + (int)months) -
	    WIB_OFFSET_S - g.t0) / 3600);
	if (catalog_read(&g, catalog) == -1)
		goto out;
	if ((double)g.nsvc * NCITY * g.nkec * NCHANNEL * NOUTCOME * 2 >=
	    4294967295.0) {
		fprintf(stderr, "%s: too many services and kecamatan for "
		    "32-bit cell numbers\n", PROG);
		goto out;
	}
	if (gen_init(&g) == -1) {
		fprintf(stderr, "%s: out of memory\n", PROG);
		goto out;
	}
	if (rows_s != NULL)
		per_day = calibrate(&g, rows);
	g.rows = g.events = 0;
	g.out = count_only ? NULL : stdout;
	for (int h = 0; h < g.nhours; h++)
		if (gen_hour(&g, h, per_day) == -1)
			goto out;
	if (g.out != NULL && (out_flush(&g) == -1 || fflush(stdout) != 0)) {
		fprintf(stderr, "%s: writing the rows: %s\n", PROG,
		    strerror(errno));
		goto out;
	}
	fprintf(stderr, "%s: rows=%llu events=%llu per_day=%.1f hours=%d "
	    "services=%zu regions=%zu\n", PROG, (unsigned long long)g.rows,
	    (unsigned long long)g.events, per_day, g.nhours, g.nsvc, g.nreg);
	rc = 0;
out:
	gen_free(&g);
	return rc;
}
