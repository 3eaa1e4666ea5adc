/* SPDX-License-Identifier: Apache-2.0 */
/*
 * demo: realistic Kota Bandung service traffic, for `kanalctl demo`, the
 * README's first look at the indicators and the end-to-end tests.
 *
 * The catalogue (services) and the kecamatan with their populations come
 * from the database's reference tables, so the demo never drifts from the
 * schema. The generator is deterministic for a seed and a "now".
 *
 * The shape, by design (docs/ and the tests rely on it):
 * - volume by agency: population registry and health busiest, then tax,
 *   licensing, complaints; each service its own random weight;
 * - digital propensity by agency (tax and licensing most digital, health
 *   least), +-0.1 per service and +-0.08 per kecamatan: about 40% of
 *   completed transactions are digital overall;
 * - manual channels only on weekdays, 08:00-16:00 WIB; digital channels at
 *   any hour, busiest in the evening;
 * - kecamatan weighted by population;
 * - outcomes: digital 84% completed, 11% abandoned, 4% failed, 1% unknown;
 *   manual 93/5/1/1; durations log-normal, median 4 min digital and
 *   20 min manual (queueing included), 10% not measured;
 * - assisted: half of kiosk use, about 1 in 8 web/app/chat.
 */
#ifndef KANAL_DEMO_H
#define KANAL_DEMO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kanal/v1/events.pb-c.h"

struct demo_catalog {
	char **services;
	size_t nservices;
	char **regions;		/* kecamatan codes */
	double *population;	/* per region */
	size_t nregions;
};

struct demo_gen;

/* NULL on out-of-memory or an empty catalogue. catalog is borrowed. */
struct demo_gen *demo_gen_new(const struct demo_catalog *catalog,
    uint64_t seed, int64_t now_ms, int days);
void demo_gen_free(struct demo_gen *g);
/*
 * Fills ev with the next event; its strings point into the catalogue, its
 * event_id (16 bytes) and citizen_ref (8) into id, the caller's. The
 * citizen_ref is one of 20,000 pseudonymous residents per region: those
 * of the first 70% of a region's numbers use digital channels, those from
 * 40% on manual ones, so 40% are digital only, 30% manual only and 30%
 * use both. Can't fail.
 */
#define DEMO_EVENT_BYTES 24
void demo_gen_event(struct demo_gen *g, Kanal__V1__ServiceEvent *ev,
    uint8_t id[DEMO_EVENT_BYTES]);
/* About how many events demo_run sends for these settings. */
uint64_t demo_total(uint64_t per_day, int days);

/* Reads the catalogue from PostgreSQL. 0, or -1 with a message in err. */
int demo_catalog_load(const char *conninfo, struct demo_catalog *cat,
    char *err, size_t errlen);
void demo_catalog_clear(struct demo_catalog *cat);

struct demo_config {
	const char *url;
	const char *cacert;	/* CA file for https://; NULL: system's */
	const char *token;
	const char *pg;
	int days;
	uint64_t per_day;
	uint64_t rate;		/* events per second, at most */
	uint64_t seed;
};

/*
 * Loads the catalogue, sends the traffic in 500-event batches, prints
 * progress and a summary to progress. 0 when every batch was answered with
 * 200, -1 otherwise.
 */
int demo_run(const struct demo_config *cfg, FILE *progress);

#endif
