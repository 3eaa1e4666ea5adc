/* SPDX-License-Identifier: Apache-2.0 */
/*
 * demo: see demo.h for the shape of the traffic.
 */
#include "demo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "client.h"
#include "httpc.h"
#include "rng.h"
#include "validate.h"

#define BATCH 500
#define WIB_OFFSET_S (7 * 3600)

struct service_model {
	double weight;		/* cumulative, for sampling */
	double digital;		/* propensity */
	int tax;		/* partner channel (bank, QRIS) is common */
};

struct demo_gen {
	const struct demo_catalog *cat;
	uint64_t s;		/* splitmix64 state */
	int64_t start_ms, end_ms;
	struct service_model *svc;
	double *region_cum;
	double *region_shift;
};

/* ----------------------------------------------------------------- model */

struct agency {
	const char *prefix;
	double volume;
	double digital;
};

/* Unknown agencies get the last row. */
static const struct agency agencies[] = {
	{ "dukcapil.", 3.0, 0.36 },	/* population registry */
	{ "dinkes.", 2.5, 0.22 },	/* health */
	{ "bapenda.", 2.0, 0.62 },	/* property tax: e-wallet, QRIS */
	{ "dpmptsp.", 1.0, 0.58 },	/* licensing: OSS, online permits */
	{ "diskominfo.", 0.8, 0.70 },	/* complaints: app, chat */
	{ "", 1.0, 0.38 },
};

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

static double
clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

struct demo_gen *
demo_gen_new(const struct demo_catalog *cat, uint64_t seed, int64_t now_ms,
    int days)
{
	struct demo_gen *g;
	double cum = 0;

	if (cat->nservices == 0 || cat->nregions == 0)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->cat = cat;
	g->s = seed;
	/* A minute of margin inside kanald's window on both ends. */
	g->end_ms = now_ms - 60 * 1000;
	g->start_ms = now_ms - (int64_t)days * 86400 * 1000 + 60 * 1000;
	g->svc = calloc(cat->nservices, sizeof(*g->svc));
	g->region_cum = calloc(cat->nregions, sizeof(double));
	g->region_shift = calloc(cat->nregions, sizeof(double));
	if (g->svc == NULL || g->region_cum == NULL || g->region_shift == NULL) {
		demo_gen_free(g);
		return NULL;
	}
	for (size_t i = 0; i < cat->nservices; i++) {
		const struct agency *a = agency_of(cat->services[i]);
		cum += a->volume * (0.5 + rng_uniform(&g->s));
		g->svc[i].weight = cum;
		g->svc[i].digital = clamp(a->digital + (rng_uniform(&g->s) - 0.5) * 0.2,
		    0.05, 0.95);
		g->svc[i].tax = strncmp(cat->services[i], "bapenda.", 8) == 0;
	}
	cum = 0;
	for (size_t i = 0; i < cat->nregions; i++) {
		cum += cat->population[i] > 0 ? cat->population[i] : 1;
		g->region_cum[i] = cum;
		g->region_shift[i] = (rng_uniform(&g->s) - 0.5) * 0.16;
	}
	return g;
}

void
demo_gen_free(struct demo_gen *g)
{
	if (g == NULL)
		return;
	free(g->svc);
	free(g->region_cum);
	free(g->region_shift);
	free(g);
}

uint64_t
demo_total(uint64_t per_day, int days)
{
	/* Weekends carry only digital traffic: about 0.85 of a weekday. */
	return (uint64_t)((double)per_day * days * (5.0 + 2 * 0.4) / 7.0 + 0.5);
}

/* Local (WIB) hour and weekday (0 = Sunday) of a Unix ms time. */
static void
wib(int64_t ms, int *hour, int *wday)
{
	int64_t s = ms / 1000 + WIB_OFFSET_S;

	*hour = (int)((s / 3600) % 24);
	*wday = (int)(((s / 86400) + 4) % 7);	/* 1970-01-01 was a Thursday */
}

static int64_t
pick_time(struct demo_gen *g, int digital)
{
	/* Relative weight of each WIB hour for digital channels. */
	static const double dig[24] = {
		0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0,
		0.9, 1.0, 1.0, 0.9, 0.9, 1.0, 1.1, 1.3, 1.3, 1.1, 0.7, 0.35,
	};
	int64_t span = g->end_ms - g->start_ms;

	for (;;) {
		int64_t t = g->start_ms + (int64_t)(rng_uniform(&g->s) * (double)span);
		int hour, wday;

		wib(t, &hour, &wday);
		if (!digital) {
			if (wday >= 1 && wday <= 5 && hour >= 8 && hour < 16)
				return t;
			continue;
		}
		if (rng_uniform(&g->s) * 1.3 < dig[hour] * (wday == 0 || wday == 6 ?
		    0.8 : 1.0))
			return t;
	}
}

void
demo_gen_event(struct demo_gen *g, Kanal__V1__ServiceEvent *ev,
    uint8_t id[DEMO_EVENT_BYTES])
{
	const struct demo_catalog *cat = g->cat;
	size_t si = 0, ri;
	const struct service_model *m;
	double p, u;
	int digital, ch;
	uint64_t r1, r2;

	/* A linear scan of the cumulative weights: a few dozen services. */
	{
		double x = rng_uniform(&g->s) * g->svc[cat->nservices - 1].weight;
		while (si + 1 < cat->nservices && g->svc[si].weight <= x)
			si++;
	}
	m = &g->svc[si];
	ri = rng_pick(&g->s, g->region_cum, cat->nregions);
	p = clamp(m->digital + g->region_shift[ri], 0.02, 0.98);
	digital = rng_uniform(&g->s) < p;

	u = rng_uniform(&g->s);
	if (digital) {
		if (m->tax)
			ch = u < 0.3 ? 1 : u < 0.55 ? 2 : u < 0.6 ? 3 :
			    u < 0.65 ? 4 : 5;
		else
			ch = u < 0.4 ? 1 : u < 0.75 ? 2 : u < 0.85 ? 3 :
			    u < 0.95 ? 4 : 5;
	} else {
		ch = u < 0.75 ? 6 : u < 0.85 ? 7 : u < 0.95 ? 8 : 9;
	}

	kanal__v1__service_event__init(ev);
	ev->service_code = cat->services[si];
	ev->region_code = cat->regions[ri];
	ev->channel = (Kanal__V1__Channel)ch;
	ev->occurred_at_ms = pick_time(g, digital);
	u = rng_uniform(&g->s);
	if (digital)
		ev->outcome = u < 0.84 ? 1 : u < 0.95 ? 2 : u < 0.99 ? 3 : 0;
	else
		ev->outcome = u < 0.93 ? 1 : u < 0.98 ? 2 : u < 0.99 ? 3 : 0;
	if (rng_uniform(&g->s) >= 0.1) {
		double median = digital ? 240000.0 : 1200000.0;
		double sigma = digital ? 0.6 : 0.5;
		ev->duration_ms = (uint32_t)clamp(median * exp(sigma * rng_normal(&g->s)),
		    1000.0, 8.0 * 3600 * 1000);
	}
	u = rng_uniform(&g->s);
	ev->assisted = ch == 3 ? u < 0.5 : (digital && ch != 5) ? u < 0.12 : 0;
	r1 = rng_next(&g->s);
	r2 = rng_next(&g->s);
	memcpy(id, &r1, 8);
	memcpy(id + 8, &r2, 8);
	ev->event_id.data = id;
	ev->event_id.len = 16;
	{
		/* Residents 0..13,999 digital, 8,000..19,999 manual. */
		uint64_t who = digital ? rng_next(&g->s) % 14000 :
		    8000 + rng_next(&g->s) % 12000;
		uint64_t ref = (uint64_t)ri << 32 | who;

		for (int i = 0; i < 8; i++)
			id[16 + i] = (uint8_t)(ref >> (8 * i));
		ev->citizen_ref.data = id + 16;
		ev->citizen_ref.len = 8;
	}
}

/* -------------------------------------------------------------- catalogue */

void
demo_catalog_clear(struct demo_catalog *cat)
{
	for (size_t i = 0; i < cat->nservices; i++)
		free(cat->services[i]);
	for (size_t i = 0; i < cat->nregions; i++)
		free(cat->regions[i]);
	free(cat->services);
	free(cat->regions);
	free(cat->population);
	memset(cat, 0, sizeof(*cat));
}

int
demo_catalog_load(const char *conninfo, struct demo_catalog *cat,
    char *err, size_t errlen)
{
	PGconn *conn = PQconnectdb(conninfo);
	PGresult *r = NULL;
	int rc = -1, n;

	memset(cat, 0, sizeof(*cat));
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    PQerrorMessage(conn));
		goto out;
	}
	r = PQexec(conn, "SELECT code FROM kanal.service ORDER BY code");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading kanal.service: %s (run kanalctl "
		    "migrate first)", PQerrorMessage(conn));
		goto out;
	}
	n = PQntuples(r);
	cat->services = calloc((size_t)n + 1, sizeof(char *));
	if (cat->services == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		const char *code = PQgetvalue(r, i, 0);
		if (!validate_service_code(code, strlen(code)))
			continue;
		cat->services[cat->nservices] = strdup(code);
		if (cat->services[cat->nservices++] == NULL)
			goto nomem;
	}
	PQclear(r);
	r = PQexec(conn, "SELECT code, coalesce(population, 1) FROM "
	    "kanal.region WHERE level = 'kecamatan' ORDER BY code");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading kanal.region: %s",
		    PQerrorMessage(conn));
		goto out;
	}
	n = PQntuples(r);
	cat->regions = calloc((size_t)n + 1, sizeof(char *));
	cat->population = calloc((size_t)n + 1, sizeof(double));
	if (cat->regions == NULL || cat->population == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		cat->regions[i] = strdup(PQgetvalue(r, i, 0));
		if (cat->regions[i] == NULL)
			goto nomem;
		cat->population[i] = atof(PQgetvalue(r, i, 1));
		cat->nregions++;
	}
	if (cat->nservices == 0 || cat->nregions == 0) {
		snprintf(err, errlen, "the catalogue is empty (services=%zu, "
		    "kecamatan=%zu); run kanalctl migrate first",
		    cat->nservices, cat->nregions);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	PQclear(r);
	PQfinish(conn);
	if (rc == -1)
		demo_catalog_clear(cat);
	return rc;
}

/* ------------------------------------------------------------------ run */

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
demo_run(const struct demo_config *cfg, FILE *progress)
{
	struct demo_catalog cat;
	struct demo_gen *g = NULL;
	struct httpc *c = NULL;
	Kanal__V1__ServiceEvent evs[BATCH], *evp[BATCH];
	uint8_t ids[BATCH][DEMO_EVENT_BYTES];
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	uint64_t total = demo_total(cfg->per_day, cfg->days), sent = 0;
	uint64_t accepted = 0, rejected = 0, failed = 0, nbatch = 0;
	int64_t now = client_now_ms();
	char err[512], bid[80], first_reason[600] = "";
	double t0 = mono_s(), last_print = 0;
	int tty = isatty(fileno(progress));
	int rc = -1;

	if (demo_catalog_load(cfg->pg, &cat, err, sizeof(err)) == -1) {
		fprintf(progress, "kanalctl demo: %s\n", err);
		return -1;
	}
	g = demo_gen_new(&cat, cfg->seed, now, cfg->days);
	c = httpc_new_ca(cfg->url, cfg->cacert, 30000, err, sizeof(err));
	if (g == NULL || c == NULL) {
		fprintf(progress, "kanalctl demo: %s\n", c == NULL ? err :
		    "out of memory");
		goto out;
	}
	fprintf(progress, "demo: %llu events over %d days, %zu services, "
	    "%zu kecamatan, to %s\n", (unsigned long long)total, cfg->days,
	    cat.nservices, cat.nregions, cfg->url);
	batch.events = evp;
	while (sent < total) {
		size_t n = total - sent < BATCH ? (size_t)(total - sent) : BATCH;
		struct client_result res;
		double ahead;

		for (size_t i = 0; i < n; i++) {
			demo_gen_event(g, &evs[i], ids[i]);
			evp[i] = &evs[i];
		}
		snprintf(bid, sizeof(bid), "demo-%llu-%lld-%llu",
		    (unsigned long long)cfg->seed, (long long)now,
		    (unsigned long long)nbatch++);
		batch.batch_id = bid;
		batch.n_events = n;
		if (client_send(c, cfg->token, &batch, 5, &res) == -1 ||
		    res.status != 200 || res.ack == NULL) {
			failed += n;
			if (first_reason[0] == '\0')
				snprintf(first_reason, sizeof(first_reason),
				    "HTTP %d: %.500s", res.status, res.error);
		} else {
			accepted += res.ack->accepted;
			rejected += res.ack->rejected;
			if (res.ack->n_rejections > 0 && first_reason[0] == '\0')
				snprintf(first_reason, sizeof(first_reason),
				    "%s: %s", validate_reason_name(
				    res.ack->rejections[0]->code),
				    res.ack->rejections[0]->message);
		}
		client_result_clear(&res);
		sent += n;
		/* Stay at or under the rate. */
		ahead = (double)sent / (double)cfg->rate - (mono_s() - t0);
		if (ahead > 0) {
			struct timespec ts = { (time_t)ahead,
			    (long)((ahead - (double)(time_t)ahead) * 1e9) };
			nanosleep(&ts, NULL);
		}
		if ((tty && mono_s() - last_print > 0.2) || sent == total ||
		    (!tty && sent * 10 / total != (sent - n) * 10 / total)) {
			double el = mono_s() - t0;
			fprintf(progress, "%sdemo: %llu/%llu events (%3.0f%%), "
			    "%.0f events/s%s", tty ? "\r" : "",
			    (unsigned long long)sent, (unsigned long long)total,
			    100.0 * (double)sent / (double)total,
			    el > 0 ? (double)sent / el : 0.0, tty ? "" : "\n");
			fflush(progress);
			last_print = mono_s();
		}
	}
	if (tty)
		fputc('\n', progress);
	fprintf(progress, "demo: done in %.1f s: accepted=%llu rejected=%llu "
	    "not_sent=%llu\n", mono_s() - t0, (unsigned long long)accepted,
	    (unsigned long long)rejected, (unsigned long long)failed);
	if (first_reason[0] != '\0')
		fprintf(progress, "demo: first problem: %s\n", first_reason);
	rc = failed == 0 ? 0 : -1;
out:
	httpc_free(c);
	demo_gen_free(g);
	demo_catalog_clear(&cat);
	return rc;
}
