/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Distinct residents reached (issue 14), against the real kanald, its
 * WAL on disk and a real PostgreSQL with postgresql-hll:
 *
 *  1. Accuracy and exactly-once on a known population. 600,000
 *     pseudonymous residents in 30 kecamatan, each digital-only, manual-
 *     only or both (known overlap), send ~940,000 events through kanald,
 *     which is SIGKILLed half way with its flush interval at an hour (so
 *     the WAL replay brings what came after its first flush) and gets
 *     one batch twice (answered
 *     duplicate). Then, per kecamatan and for the city:
 *       a. the union of the database's sketches, monthly and daily, is
 *          register for register the sketch the test builds itself from
 *          the same keyed hashes, and the view kanal.reach_monthly says
 *          that sketch's estimate: nothing lost, nothing added, whatever
 *          the kill, the replay and the duplicate did;
 *       b. be near the truth, by the math of HyperLogLog at log2m 11: one
 *          estimate has a relative standard error r = 1.04 / sqrt(2048) =
 *          2.30%; each cell must be within 5.5 r (12.6%: a correct
 *          estimator misses that with probability 4e-8, so 1e-5 for the
 *          ~150 cells); a bound of 2% per cell is not what log2m 11 can
 *          promise (it is 0.87 r, missed by 38% of cells). What 2% does
 *          bound is an average of independent estimates: the 30
 *          kecamatan hold disjoint residents and so are independent, and
 *          their mean relative error has a standard deviation of r /
 *          sqrt(30) = 0.42%, so the mean error of each figure (any,
 *          digital, manual) across the kecamatan, and the error of their
 *          sum against the city's truth, must be within 2% (4.8 standard
 *          deviations). A kecamatan holds 20,000 residents (about 10 per
 *          register): where the estimator has no bias. Near 3 per
 *          register (6,700), where postgresql-hll switches from linear
 *          counting, it overestimates by about 0.5% (measured: 300 keys
 *          per size, hll_estimate, which is hll_cardinality), which
 *          would eat a quarter of the margin. The key is new each run
 *          (kanalctl reach keygen), so the draw is new too; the observed
 *          errors are printed.
 *  2. Privacy: a known citizen_ref never reaches the WAL, kanald's log or
 *     a pg_dump of the database, neither as bytes, hex or base64 nor as
 *     an unkeyed hash (SHA-256, MD5, SipHash under a zero key,
 *     postgresql-hll's own hll_hash_bytea); its keyed hash is in the WAL
 *     (which shows the search looks in the right places) but not in the
 *     database, which holds registers only.
 *  3. Keys: a second kanald with another key is refused by the database
 *     (kanal_reach_database{state="other_key"}), its sketches are not
 *     written and its counts are; after kanal.reach_key_retire() its key
 *     becomes the active one and the old key's rows stay apart.
 *  4. Reach off (no key file) runs and says so; a bad key file stops
 *     kanald at start with "FILE: what, what to do".
 *  5. Faults never hold the counts up: a sketch upsert that fails (a
 *     right revoked) drops that flush's sketches and commits the counts;
 *     hll in a schema of its own works; a server without hll gets the
 *     counts, and reach once 010 is applied, without a restart.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "client.h"
#include "harness.h"
#include "hll.h"
#include "httpc.h"
#include "reach.h"
#include "siphash.h"

#define RESIDENTS 600000
#define KECAMATAN 30
#define SERVICES 4
#define BATCH_EVENTS 5000
#define RSE 0.022981		/* 1.04 / sqrt(2048) */

static const char *const services[SERVICES] = {
	"dukcapil.akta-lahir", "dukcapil.kk", "dukcapil.ktp-el",
	"dukcapil.pindah",
};

static int
setup(void **state)
{
	*state = th_fixture_new("reach", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* ----------------------------------------------------------- population */

enum kind { DIGITAL_ONLY, MANUAL_ONLY, BOTH };

/* 40% digital only, 35% manual only, 25% both: the known overlap. */
static enum kind
kind_of(unsigned i)
{
	unsigned m = (i * 7919u) % 20;

	return m < 8 ? DIGITAL_ONLY : m < 15 ? MANUAL_ONLY : BOTH;
}

static unsigned
kecamatan_of(unsigned i)
{
	return (i / 7) % KECAMATAN + 1;
}

static void
ref_of(unsigned i, char out[16])
{
	snprintf(out, 16, "r-%06u", i);
}

/*
 * The events of resident i: digital-only residents use web or the app
 * once or twice, manual-only the counter or the phone, both one of each.
 * Returns the number (1 or 2) written to ch[].
 */
static int
channels_of(unsigned i, Kanal__V1__Channel ch[2])
{
	switch (kind_of(i)) {
	case DIGITAL_ONLY:
		ch[0] = KANAL__V1__CHANNEL__CHANNEL_WEB;
		ch[1] = KANAL__V1__CHANNEL__CHANNEL_MOBILE_APP;
		return 1 + (int)(i % 2);
	case MANUAL_ONLY:
		ch[0] = KANAL__V1__CHANNEL__CHANNEL_COUNTER;
		ch[1] = KANAL__V1__CHANNEL__CHANNEL_PHONE;
		return 1 + (int)(i % 3 == 0);
	case BOTH:
		break;
	}
	ch[0] = KANAL__V1__CHANNEL__CHANNEL_KIOSK;
	ch[1] = KANAL__V1__CHANNEL__CHANNEL_OUTREACH;
	return 2;
}

/*
 * One batch of events from resident *next on; advances *next. Every
 * event happens in the current WIB month, in its last hour at most.
 */
struct batch_buf {
	Kanal__V1__ServiceEvent ev[BATCH_EVENTS + 2];
	Kanal__V1__ServiceEvent *evp[BATCH_EVENTS + 2];
	char refs[BATCH_EVENTS + 2][16];
	char regions[BATCH_EVENTS + 2][16];
	Kanal__V1__EventBatch b;
	char id[32];
};

static int64_t
month_window_ms(int64_t now)
{
	/* Milliseconds since the WIB month began, at most an hour. */
	time_t wib = (time_t)(now / 1000 + 7 * 3600);
	struct tm tm;
	int64_t since;

	gmtime_r(&wib, &tm);
	since = ((int64_t)(tm.tm_mday - 1) * 86400 + tm.tm_hour * 3600 +
	    tm.tm_min * 60 + tm.tm_sec) * 1000;
	return since < 3600000 ? since : 3600000;
}

static size_t
fill_batch(struct batch_buf *bb, unsigned *next, int seq, int64_t now,
    int64_t window)
{
	size_t n = 0;

	while (*next < RESIDENTS && n + 2 <= BATCH_EVENTS) {
		unsigned i = (*next)++;
		Kanal__V1__Channel ch[2];
		int k = channels_of(i, ch);

		for (int j = 0; j < k; j++, n++) {
			Kanal__V1__ServiceEvent *e = &bb->ev[n];

			kanal__v1__service_event__init(e);
			ref_of(i, bb->refs[n]);
			/* Half the events name the desa: cut to the kecamatan. */
			snprintf(bb->regions[n], sizeof(bb->regions[n]),
			    i % 2 ? "32.73.%02u" : "32.73.%02u.1%03u",
			    kecamatan_of(i), i % 1000);
			e->service_code = (char *)services[(i + (unsigned)j) %
			    SERVICES];
			e->channel = ch[j];
			e->region_code = bb->regions[n];
			e->outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
			e->occurred_at_ms = now - (window > 0 ? (int64_t)(i *
			    2654435761u % (uint64_t)window) : 0);
			e->citizen_ref.data = (uint8_t *)bb->refs[n];
			e->citizen_ref.len = strlen(bb->refs[n]);
			bb->evp[n] = e;
		}
	}
	kanal__v1__event_batch__init(&bb->b);
	snprintf(bb->id, sizeof(bb->id), "pop-%04d", seq);
	bb->b.batch_id = bb->id;
	bb->b.n_events = n;
	bb->b.events = bb->evp;
	return n;
}

/* 200, with the counts; fails the test otherwise. */
static void
post(struct th_kanald *k, const char *token, Kanal__V1__EventBatch *b,
    uint32_t want_accepted, int want_duplicate)
{
	struct client_result res;
	struct httpc *c;
	char err[256];

	c = httpc_new(k->url, 30000, err, sizeof(err));
	assert_non_null(c);
	if (client_send(c, token, b, 1, &res) == -1 || res.status != 200 ||
	    res.ack == NULL)
		fail_msg("batch %s: status %d %s", b->batch_id, res.status,
		    res.error);
	assert_int_equal(res.ack->accepted, want_accepted);
	assert_int_equal(res.ack->duplicate, want_duplicate);
	client_result_clear(&res);
	httpc_free(c);
}

static void
make_key(const char *dir, const char *name, char *path, size_t len)
{
	char out[256];
	const char *argv[] = { th_env("KANALCTL"), "reach", "keygen", path,
	    NULL };

	snprintf(path, len, "%s/%s", dir, name);
	unlink(path);
	argv[3] = path;
	assert_int_equal(th_run(out, sizeof(out), argv), 0);
	assert_non_null(strstr(out, "key_id="));
}

/* --------------------------------------------------------------- test 1 */

/*
 * The union of the database's sketches of a region, monthly and daily,
 * is register for register the test's own sketch of the same residents
 * (hll_union_agg gives the bytes hll_encode gives, tests/test_pg_hll.c):
 * nothing lost, nothing added, not even a resident whose register was
 * not the highest.
 */
static void
check_registers(PGconn *conn, const char *region, const struct hll *ours)
{
	static const char hexd[] = "0123456789abcdef";
	uint8_t enc[2048];
	char want[4200], got[4200], sql[400];
	size_t n = hll_encode(ours, enc), o = 2;

	assert_true(n <= sizeof(enc));
	want[0] = '\\';
	want[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		want[o++] = hexd[enc[i] >> 4];
		want[o++] = hexd[enc[i] & 15];
	}
	want[o] = '\0';
	for (int daily = 0; daily < 2; daily++) {
		snprintf(sql, sizeof(sql), "SELECT hll_union_agg(sketch)::text"
		    " FROM kanal.%s WHERE region_code LIKE '%s%%'", daily ?
		    "reach_daily" : "reach_monthly_sketch", region);
		th_query_text(conn, sql, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fail_msg("%s: the %s sketches differ from the test's own "
			    "(%zu against %zu hex digits)", region, daily ?
			    "daily" : "monthly", strlen(got), strlen(want));
	}
}

struct cell {
	struct hll digital, manual, any;	/* the test's own sketches */
	long long t_digital, t_manual, t_any;	/* the truth */
};

static double
rel(double est, long long truth)
{
	return (est - (double)truth) / (double)truth;
}

/* One figure of the view; the test fails if the row is missing. */
static long long
view_value(PGconn *conn, const char *column, const char *kecamatan)
{
	char sql[1024], v[64];

	snprintf(sql, sizeof(sql), "SELECT %s FROM kanal.reach_monthly"
	    " WHERE city_code = '32.73' AND service_code IS NULL AND %s"
	    " AND month = (SELECT max(month) FROM kanal.reach_monthly_sketch)",
	    column, kecamatan);
	th_query_text(conn, sql, v, sizeof(v));
	if (v[0] == '\0')
		fail_msg("no %s in kanal.reach_monthly for %s", column,
		    kecamatan);
	return atoll(v);
}

static void
check_figure(PGconn *conn, const char *column, const char *where,
    const struct hll *ours, long long truth, double *sum_rel)
{
	long long got = view_value(conn, column, where);
	double est = hll_estimate(ours), e = rel((double)got, truth);

	/* a. the same registers: the same estimate, to rounding. */
	if (llabs(got - llround(est)) > 1)
		fail_msg("%s %s: the view says %lld, the test's own sketch of "
		    "the same hashes %.1f: residents were lost or added", where,
		    column, got, est);
	/* b. near the truth (see the header for the bound). */
	if (fabs(e) > 5.5 * RSE)
		fail_msg("%s %s: %lld against %lld residents (%.2f%%), over "
		    "5.5 standard errors", where, column, got, truth, 100 * e);
	*sum_rel += e;
}

static void
test_known_population_counted_exactly_once_and_within_the_error(void **state)
{
	struct th_fixture *f = *state;
	static struct batch_buf bb;
	static struct cell cells[KECAMATAN + 1];	/* [0]: the city */
	char keyfile[700], err[256];
	const char *extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "200ms", NULL };
	/* Nothing flushed before the kill: the replay must bring it all. */
	const char *first_extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "1h", NULL };
	struct reach_key key;
	unsigned next = 0;
	long long events = 0;
	int seq = 0;
	int64_t now = client_now_ms(), window = month_window_ms(now);
	Kanal__V1__EventBatch first;
	static Kanal__V1__ServiceEvent first_ev[BATCH_EVENTS + 2];
	static Kanal__V1__ServiceEvent *first_evp[BATCH_EVENTS + 2];
	static char first_refs[BATCH_EVENTS + 2][16];
	static char first_regions[BATCH_EVENTS + 2][16];
	size_t first_n = 0;

	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	assert_int_equal(reach_key_load(keyfile, &key, err, sizeof(err)), 0);
	th_kanald_start(&f->k, f->db, f->sources, first_extra);
	th_wait_metric(&f->k, "kanal_reach_enabled", 1);

	while (next < RESIDENTS) {
		unsigned before = next;
		size_t n = fill_batch(&bb, &next, seq, now, window);

		post(&f->k, f->token, &bb.b, (uint32_t)n, 0);
		events += (long long)n;
		if (seq == 0) {
			/* Kept to be sent again after the restart. */
			memcpy(first_ev, bb.ev, sizeof(first_ev));
			memcpy(first_refs, bb.refs, sizeof(first_refs));
			memcpy(first_regions, bb.regions, sizeof(first_regions));
			for (size_t i = 0; i < n; i++) {
				first_evp[i] = &first_ev[i];
				first_ev[i].citizen_ref.data =
				    (uint8_t *)first_refs[i];
				first_ev[i].region_code = first_regions[i];
			}
			first = bb.b;
			first.batch_id = (char *)"pop-0000";
			first.events = first_evp;
			first_n = n;
		}
		seq++;
		if (before < RESIDENTS / 2 && next >= RESIDENTS / 2) {
			/*
			 * Killed with acknowledged batches unflushed: at most
			 * the first flush (on connecting, whatever had come in
			 * by then) ran, so the replay must bring the rest.
			 */
			assert_true(th_metric(&f->k,
			    "kanal_reach_citizen_hashes_total{result=\"added\"}")
			    > 0);
			assert_true(th_query_i64(f->conn, "SELECT coalesce(sum("
			    "events), 0) FROM kanal.usage_daily") < events);
			assert_int_equal(th_kanald_stop(&f->k, SIGKILL), 128 +
			    SIGKILL);
			th_kanald_start(&f->k, f->db, f->sources, extra);
			post(&f->k, f->token, &first, (uint32_t)first_n, 1);
		}
	}
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT coalesce(sum(events), 0)"
		    " FROM kanal.usage_daily");
		th_wait_count(f->conn, sql, events);
	}
	/* The flush that wrote the last counts wrote their sketches too. */
	assert_true(th_metric(&f->k, "kanal_reach_sketch_rows_total") > 0);
	assert_int_equal(th_metric(&f->k,
	    "kanal_reach_database{state=\"active\"}"), 1);

	/* The truth and the test's own sketches. */
	for (unsigned i = 0; i < RESIDENTS; i++) {
		char ref[16];
		uint64_t h;
		enum kind kd = kind_of(i);
		struct cell *c[2] = { &cells[0], &cells[kecamatan_of(i)] };

		ref_of(i, ref);
		h = reach_hash(&key, ref, strlen(ref));
		for (int j = 0; j < 2; j++) {
			c[j]->t_any++;
			assert_int_equal(hll_add(&c[j]->any, h), 0);
			if (kd != MANUAL_ONLY) {
				c[j]->t_digital++;
				assert_int_equal(hll_add(&c[j]->digital, h), 0);
			}
			if (kd != DIGITAL_ONLY) {
				c[j]->t_manual++;
				assert_int_equal(hll_add(&c[j]->manual, h), 0);
			}
		}
	}
	{
		double sum_any = 0, sum_dig = 0, sum_man = 0, city = 0;
		long long kec_any_sum = 0;

		for (int k = 0; k <= KECAMATAN; k++) {
			char where[64];
			double d = 0;

			if (k == 0)
				snprintf(where, sizeof(where),
				    "kecamatan_code IS NULL");
			else
				snprintf(where, sizeof(where),
				    "kecamatan_code = '32.73.%02d'", k);
			check_figure(f->conn, "residents_any", where,
			    &cells[k].any, cells[k].t_any, k ? &sum_any : &city);
			check_figure(f->conn, "residents_digital", where,
			    &cells[k].digital, cells[k].t_digital, k ? &sum_dig :
			    &d);
			check_figure(f->conn, "residents_manual", where,
			    &cells[k].manual, cells[k].t_manual, k ? &sum_man :
			    &d);
			if (k > 0)
				kec_any_sum += view_value(f->conn,
				    "residents_any", where);
		}
		fprintf(stderr, "reach: %lld events; city: any %+.2f%%; mean "
		    "over %d kecamatan: any %+.2f%% digital %+.2f%% manual "
		    "%+.2f%%; sum of kecamatan %+.2f%%\n", events, 100 * city,
		    KECAMATAN, 100 * sum_any / KECAMATAN, 100 * sum_dig /
		    KECAMATAN, 100 * sum_man / KECAMATAN,
		    100 * rel((double)kec_any_sum, RESIDENTS));
		assert_true(fabs(sum_any / KECAMATAN) <= 0.02);
		assert_true(fabs(sum_dig / KECAMATAN) <= 0.02);
		assert_true(fabs(sum_man / KECAMATAN) <= 0.02);
		assert_true(fabs(rel((double)kec_any_sum, RESIDENTS)) <= 0.02);
	}
	check_registers(f->conn, "32.73", &cells[0].any);
	for (int k = 1; k <= KECAMATAN; k++) {
		char region[16];

		snprintf(region, sizeof(region), "32.73.%02d", k);
		check_registers(f->conn, region, &cells[k].any);
	}
	/* The derived figures follow from the three by inclusion-exclusion. */
	{
		long long any = view_value(f->conn, "residents_any",
		    "kecamatan_code IS NULL");
		long long dig = view_value(f->conn, "residents_digital",
		    "kecamatan_code IS NULL");
		long long man = view_value(f->conn, "residents_manual",
		    "kecamatan_code IS NULL");
		long long both = view_value(f->conn, "residents_both",
		    "kecamatan_code IS NULL");
		long long donly = view_value(f->conn, "residents_digital_only",
		    "kecamatan_code IS NULL");

		assert_true(llabs(both - (dig + man - any)) <= 1);
		assert_true(llabs(donly - (any - man)) <= 1);
		/* 25% both, 40% digital only: within the summed errors. */
		assert_true(fabs(rel((double)both, RESIDENTS / 4)) <
		    5.5 * RSE * (double)(dig + man + any) / (RESIDENTS / 4.0));
		assert_true(fabs(rel((double)donly, RESIDENTS * 2 / 5)) <
		    5.5 * RSE * (double)(any + man) / (RESIDENTS * 2 / 5.0));
	}
	for (int k = 0; k <= KECAMATAN; k++) {
		hll_free(&cells[k].any);
		hll_free(&cells[k].digital);
		hll_free(&cells[k].manual);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* --------------------------------------------------------------- test 2 */

#define KNOWN_REF "kanal-test-pseudonym-7f3a9c"

/* 1 when the n bytes of needle are anywhere in the len bytes of hay. */
static int
contains(const char *hay, size_t len, const void *needle, size_t n)
{
	return memmem(hay, len, needle, n) != NULL;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* Every file of the WAL directory, concatenated. */
static char *
wal_bytes(const char *dir, size_t *len)
{
	char cmd[1600], out[64];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	char path[700];

	snprintf(path, sizeof(path), "%s.all", dir);
	snprintf(cmd, sizeof(cmd), "cat '%s'/* > '%s'", dir, path);
	assert_int_equal(th_run(out, sizeof(out), argv), 0);
	return th_read_file(path, len);
}

static void
test_a_citizen_ref_reaches_no_wal_log_or_database(void **state)
{
	struct th_fixture *f = *state;
	char keyfile[700], err[256], dump[700], cmd[2600], out[64];
	const char *extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "100ms", NULL };
	struct reach_key key;
	Kanal__V1__ServiceEvent ev[2], *evp[2] = { &ev[0], &ev[1] };
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	const size_t rl = strlen(KNOWN_REF);
	uint8_t zero[16] = { 0 }, d[SHA256_DIGEST_LENGTH], m[16];
	uint64_t keyed, unkeyed;
	char text[200], body[400], hllhash[64];
	char *wal, *log, *db, *met, *wd;
	size_t wlen, llen, dlen, mlen2, wdlen;
	char metrics_path[700], dump_wal[700];
	unsigned mlen = 0;

	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	assert_int_equal(reach_key_load(keyfile, &key, err, sizeof(err)), 0);
	th_kanald_start(&f->k, f->db, f->sources, extra);
	for (int i = 0; i < 2; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)services[0];
		ev[i].channel = i ? KANAL__V1__CHANNEL__CHANNEL_COUNTER :
		    KANAL__V1__CHANNEL__CHANNEL_WEB;
		ev[i].region_code = (char *)"32.73.01.1001";
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].occurred_at_ms = client_now_ms();
		ev[i].citizen_ref.data = (uint8_t *)KNOWN_REF;
		ev[i].citizen_ref.len = rl;
	}
	b.batch_id = (char *)"privacy-1";
	b.n_events = 2;
	b.events = evp;
	post(&f->k, f->token, &b, 2, 0);
	/* The JSON path too: citizenRef in base64. */
	{
		char b64[64];

		EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)
		    KNOWN_REF, (int)rl);
		snprintf(body, sizeof(body), "{\"batchId\":\"privacy-2\","
		    "\"events\":[{\"serviceCode\":\"%s\",\"channel\":"
		    "\"CHANNEL_MOBILE_APP\",\"regionCode\":\"32.73.01\","
		    "\"occurredAtMs\":\"%lld\",\"outcome\":\"OUTCOME_COMPLETED\","
		    "\"citizenRef\":\"%s\"}]}", services[0],
		    (long long)client_now_ms(), b64);
		snprintf(text, sizeof(text), "Authorization: Bearer %s\r\n"
		    "Content-Type: application/json\r\n", f->token);
		assert_int_equal(th_http(&f->k, "POST", "/v1/events", text, body,
		    strlen(body), NULL, 0), 200);
	}
	/* web, counter and mobile_app: a sketch each. */
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_daily", 3);
	{
		char *mbuf = malloc(1 << 20);
		FILE *fp;

		assert_non_null(mbuf);
		assert_int_equal(th_http(&f->k, "GET", "/metrics", NULL, NULL, 0,
		    mbuf, 1 << 20), 200);
		snprintf(metrics_path, sizeof(metrics_path), "%s/metrics.txt",
		    f->dir);
		fp = fopen(metrics_path, "w");
		assert_non_null(fp);
		fputs(mbuf, fp);
		fclose(fp);
		free(mbuf);
	}
	/* kanald stops cleanly: its log is whole. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	snprintf(dump_wal, sizeof(dump_wal), "%s/wal-dump.txt", f->dir);
	snprintf(cmd, sizeof(cmd), "'%s' wal dump --events '%s' > '%s'",
	    th_env("KANALCTL"), f->k.wal_dir, dump_wal);
	{
		const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}

	snprintf(dump, sizeof(dump), "%s/dump.sql", f->dir);
	snprintf(cmd, sizeof(cmd), "pg_dump --no-owner '%s' > '%s'", f->db,
	    dump);
	{
		const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	wal = wal_bytes(f->k.wal_dir, &wlen);
	log = th_read_file(f->k.log, &llen);
	db = th_read_file(dump, &dlen);
	met = th_read_file(metrics_path, &mlen2);
	wd = th_read_file(dump_wal, &wdlen);
	/* The dump shows which events had a citizen, and nothing more. */
	assert_non_null(strstr(wd, "citizen=hashed"));
	/* The dump holds the sketches (a sanity check of the dump). */
	assert_non_null(strstr(db, "reach_daily"));

	keyed = reach_hash(&key, KNOWN_REF, rl);
	unkeyed = siphash24(zero, KNOWN_REF, rl);
	SHA256((const uint8_t *)KNOWN_REF, rl, d);
	EVP_Digest(KNOWN_REF, rl, m, &mlen, EVP_md5(), NULL);
	{
		char sql[200];

		snprintf(sql, sizeof(sql), "SELECT hll_hash_bytea('%s'::bytea)",
		    KNOWN_REF);
		th_query_text(f->conn, sql, hllhash, sizeof(hllhash));
		assert_true(hllhash[0] != '\0');
	}
	{
		struct {
			const char *what;
			char v[160];
			size_t n;
		} forms[16];
		size_t nf = 0;
		uint8_t le[8];

#define FORM(w, p, len) do { forms[nf].what = (w); \
	memcpy(forms[nf].v, (p), (len)); forms[nf].n = (len); nf++; } while (0)
		FORM("the citizen_ref", KNOWN_REF, rl);
		hex((const uint8_t *)KNOWN_REF, rl, text);
		FORM("its hex", text, 2 * rl);
		EVP_EncodeBlock((unsigned char *)text,
		    (const unsigned char *)KNOWN_REF, (int)rl);
		FORM("its base64", text, strlen(text));
		hex(d, sizeof(d), text);
		FORM("its SHA-256", text, 64);
		FORM("its SHA-256 bytes", d, sizeof(d));
		hex(m, 16, text);
		FORM("its MD5", text, 32);
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(unkeyed >> (8 * i));
		FORM("its unkeyed SipHash bytes", le, 8);
		snprintf(text, sizeof(text), "%lld", (long long)unkeyed);
		FORM("its unkeyed SipHash", text, strlen(text));
		FORM("postgresql-hll's hash of it", hllhash, strlen(hllhash));
		for (size_t i = 0; i < nf; i++) {
			if (contains(wal, wlen, forms[i].v, forms[i].n))
				fail_msg("%s is in the WAL", forms[i].what);
			if (contains(log, llen, forms[i].v, forms[i].n))
				fail_msg("%s is in kanald's log", forms[i].what);
			if (contains(db, dlen, forms[i].v, forms[i].n))
				fail_msg("%s is in the pg_dump", forms[i].what);
			if (contains(met, mlen2, forms[i].v, forms[i].n))
				fail_msg("%s is in /metrics", forms[i].what);
			if (contains(wd, wdlen, forms[i].v, forms[i].n))
				fail_msg("%s is in kanalctl wal dump",
				    forms[i].what);
		}
		/* The keyed hash: in the WAL (so the search works there)... */
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(keyed >> (8 * i));
		assert_true(contains(wal, wlen, le, 8));
		/* ...but not in the database, in any spelling. */
		hex(le, 8, text);
		assert_false(contains(db, dlen, text, 16));
		snprintf(text, sizeof(text), "%lld", (long long)keyed);
		assert_false(contains(db, dlen, text, strlen(text)));
		snprintf(text, sizeof(text), "%016llx", (unsigned long long)keyed);
		assert_false(contains(db, dlen, text, 16));
		/* Nor in the log, /metrics or the WAL dump. */
		snprintf(text, sizeof(text), "%lld", (long long)keyed);
		assert_false(contains(log, llen, text, strlen(text)));
		assert_false(contains(met, mlen2, text, strlen(text)));
		assert_false(contains(wd, wdlen, text, strlen(text)));
		assert_false(contains(wd, wdlen, le, 8));
#undef FORM
	}
	free(wal);
	free(log);
	free(db);
	free(met);
	free(wd);
}

/* --------------------------------------------------------------- test 3 */

static long long
sketches_of(PGconn *conn, int64_t key_id)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM kanal.reach_daily"
	    " WHERE key_id = %lld", (long long)key_id);
	return th_query_i64(conn, sql);
}

static void
send_one(struct th_fixture *f, const char *id, const char *ref)
{
	Kanal__V1__ServiceEvent ev, *evp = &ev;
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;

	kanal__v1__service_event__init(&ev);
	ev.service_code = (char *)services[1];
	ev.channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
	ev.region_code = (char *)"32.73.02";
	ev.outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
	ev.occurred_at_ms = client_now_ms();
	ev.citizen_ref.data = (uint8_t *)ref;
	ev.citizen_ref.len = strlen(ref);
	b.batch_id = (char *)id;
	b.n_events = 1;
	b.events = &evp;
	post(&f->k, f->token, &b, 1, 0);
}

static void
test_a_second_key_is_refused_until_the_first_is_retired(void **state)
{
	struct th_fixture *f = *state;
	char key1[700], key2[700], err[256];
	const char *extra1[] = { "--reach-key-file", key1,
	    "--flush-interval", "100ms", NULL };
	const char *extra2[] = { "--reach-key-file", key2,
	    "--flush-interval", "100ms", NULL };
	struct reach_key k1, k2;

	make_key(f->dir, "one.key", key1, sizeof(key1));
	make_key(f->dir, "two.key", key2, sizeof(key2));
	assert_int_equal(reach_key_load(key1, &k1, err, sizeof(err)), 0);
	assert_int_equal(reach_key_load(key2, &k2, err, sizeof(err)), 0);

	th_kanald_start(&f->k, f->db, f->sources, extra1);
	send_one(f, "k1-a", "resident-a");
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_daily", 1);
	assert_int_equal(sketches_of(f->conn, k1.id), 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);

	/* Another key: counts go in, sketches do not. */
	th_kanald_start(&f->k, f->db, f->sources, extra2);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"other_key\"}", 1);
	th_wait_log(&f->k, "counts residents with another key", 1);
	send_one(f, "k2-a", "resident-b");
	th_wait_count(f->conn, "SELECT coalesce(sum(events), 0) FROM"
	    " kanal.usage_daily", 2);
	th_wait_metric(&f->k, "kanal_reach_sketches_dropped_total", 1);
	assert_int_equal(sketches_of(f->conn, k2.id), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM"
	    " kanal.reach_key"), 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);

	/* The rotation: retire, restart with the new key. */
	th_exec(f->conn, "SELECT kanal.reach_key_retire()");
	th_kanald_start(&f->k, f->db, f->sources, extra2);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"active\"}", 1);
	send_one(f, "k2-b", "resident-b");
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_daily"
	    " WHERE key_id = (SELECT key_id FROM kanal.reach_key WHERE"
	    " retired_at IS NULL)", 1);
	assert_int_equal(sketches_of(f->conn, k1.id), 1);
	assert_int_equal(sketches_of(f->conn, k2.id), 1);
	/* The two keys' months are never unioned: a row each. */
	assert_int_equal(th_query_i64(f->conn, "SELECT count(DISTINCT key_id)"
	    " FROM kanal.reach_monthly WHERE kecamatan_code IS NULL"
	    " AND service_code IS NULL"), 2);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);

	/* The old key is retired for good. */
	th_kanald_start(&f->k, f->db, f->sources, extra1);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"retired\"}", 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* --------------------------------------------------------------- test 4 */

static void
test_reach_off_runs_and_says_so(void **state)
{
	struct th_fixture *f = *state;

	th_kanald_start(&f->k, f->db, f->sources, NULL);
	assert_int_equal(th_metric(&f->k, "kanal_reach_enabled"), 0);
	th_wait_log(&f->k, "reach off", 1);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"off\"}", 1);
	send_one(f, "off-1", "resident-c");
	th_wait_count(f->conn, "SELECT coalesce(sum(events), 0) FROM"
	    " kanal.usage_daily", 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM"
	    " kanal.reach_daily"), 0);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

static void
test_a_bad_key_file_stops_kanald_at_start(void **state)
{
	struct th_fixture *f = *state;
	char keyfile[700], cmd[2400], out[2048];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct stat st;

	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	assert_int_equal(chmod(keyfile, 0644), 0);
	/* A real start (not -n), on a port nothing else uses. */
	snprintf(cmd, sizeof(cmd), "'%s' --listen 127.0.0.1:1 --sources '%s'"
	    " --wal-dir '%s/wal-bad' --reach-key-file '%s' 2>&1",
	    th_env("KANALD"), f->sources, f->dir, keyfile);
	assert_int_equal(th_run(out, sizeof(out), argv), 1);
	if (strstr(out, keyfile) == NULL || strstr(out, "mode 0644") == NULL ||
	    strstr(out, "chmod 600") == NULL)
		fail_msg("kanald said: %s", out);
	/* -n says the same. */
	snprintf(cmd, sizeof(cmd), "'%s' -n --sources '%s'"
	    " --reach-key-file '%s' 2>&1", th_env("KANALD"), f->sources,
	    keyfile);
	assert_int_equal(th_run(out, sizeof(out), argv), 1);
	assert_non_null(strstr(out, "mode 0644"));
	/* A truncated key. */
	assert_int_equal(truncate(keyfile, 16), 0);
	assert_int_equal(chmod(keyfile, 0600), 0);
	assert_int_equal(th_run(out, sizeof(out), argv), 1);
	assert_non_null(strstr(out, "has 16 bytes, not 32"));
	assert_int_equal(stat(keyfile, &st), 0);
}

/* ------------------------------------------------------------- faults */

/* f->db made anew, empty; pre (may be NULL) runs in it as the superuser. */
static void
db_anew(struct th_fixture *f, const char *pre)
{
	PGconn *admin = th_pg_connect("postgres");
	char sql[256];

	PQfinish(f->conn);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    f->db);
	th_exec(admin, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
	th_exec(admin, sql);
	PQfinish(admin);
	f->conn = th_pg_connect(f->db);
	if (pre != NULL)
		th_exec(f->conn, pre);
}

/* kanalctl migrate of f->db, with env in front (may be ""); its exit. */
static int
migrate_db(struct th_fixture *f, const char *env)
{
	char cmd[1400], out[4096];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd), "%s '%s' migrate --pg 'dbname=%s' 2>&1",
	    env, th_env("KANALCTL"), f->db);
	return th_run(out, sizeof(out), argv);
}

/*
 * A reach statement that fails (here: kanal_ingest lost its rights on a
 * sketch table) drops that flush's sketches and never the counts; once
 * the right is back, sketches are written again.
 */
static void
test_a_failing_sketch_upsert_never_holds_the_counts_up(void **state)
{
	struct th_fixture *f = *state;
	char keyfile[700];
	const char *extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "100ms", NULL };

	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	th_exec(f->conn, "REVOKE INSERT, UPDATE ON kanal.reach_monthly_sketch"
	    " FROM kanal_ingest");
	th_kanald_start(&f->k, f->db, f->sources, extra);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"active\"}", 1);
	send_one(f, "fail-1", "resident-f");
	th_wait_count(f->conn, "SELECT coalesce(sum(events), 0) FROM"
	    " kanal.usage_daily", 1);
	th_wait_metric(&f->k, "kanal_reach_sketches_dropped_total", 1);
	th_wait_log(&f->k, "the sketches of this flush are dropped, the counts "
	    "go on", 1);
	/* The daily upsert went in the same savepoint: rolled back too. */
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM"
	    " kanal.reach_daily"), 0);
	th_exec(f->conn, "GRANT INSERT, UPDATE ON kanal.reach_monthly_sketch"
	    " TO kanal_ingest");
	send_one(f, "fail-2", "resident-g");
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_monthly_sketch",
	    1);
	th_wait_log(&f->k, "sketches are written again", 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT coalesce(sum(events), 0)"
	    " FROM kanal.usage_daily"), 2);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* hll made by a superuser in a schema of its own: still usable by both. */
static void
test_hll_in_another_schema_works(void **state)
{
	struct th_fixture *f = *state;
	char keyfile[700];
	const char *extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "100ms", NULL };

	db_anew(f, "CREATE SCHEMA ext; CREATE EXTENSION hll SCHEMA ext");
	assert_int_equal(migrate_db(f, ""), 0);
	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	th_kanald_start(&f->k, f->db, f->sources, extra);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"active\"}", 1);
	send_one(f, "ext-1", "resident-e");
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_daily", 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT residents_any FROM"
	    " kanal.reach_monthly WHERE kecamatan_code IS NULL AND"
	    " service_code IS NULL"), 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/*
 * A database server without postgresql-hll: migrate holds 010 back and
 * kanald runs, counts go in and it says no_tables; once 010 is applied,
 * kanald sees it within a minute (60 flushes here) without a restart.
 */
static void
test_without_hll_kanald_counts_and_takes_reach_up_later(void **state)
{
	struct th_fixture *f = *state;
	char keyfile[700];
	const char *extra[] = { "--reach-key-file", keyfile,
	    "--flush-interval", "100ms", NULL };

	db_anew(f, NULL);
	assert_int_equal(migrate_db(f, "KANAL_MIGRATE_EXTENSION_RENAME="
	    "hll=hll_not_installed"), 0);
	make_key(f->dir, "city.key", keyfile, sizeof(keyfile));
	th_kanald_start(&f->k, f->db, f->sources, extra);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"no_tables\"}", 1);
	th_wait_log(&f->k, "install the Debian package postgresql-15-hll", 1);
	send_one(f, "nohll-1", "resident-h");
	th_wait_count(f->conn, "SELECT coalesce(sum(events), 0) FROM"
	    " kanal.usage_daily", 1);
	th_wait_metric(&f->k, "kanal_reach_sketches_dropped_total", 1);
	assert_int_equal(migrate_db(f, ""), 0);
	th_wait_metric(&f->k, "kanal_reach_database{state=\"active\"}", 1);
	send_one(f, "nohll-2", "resident-h");
	th_wait_count(f->conn, "SELECT count(*) FROM kanal.reach_daily", 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_known_population_counted_exactly_once_and_within_the_error,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_citizen_ref_reaches_no_wal_log_or_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_second_key_is_refused_until_the_first_is_retired,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reach_off_runs_and_says_so,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_bad_key_file_stops_kanald_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_failing_sketch_upsert_never_holds_the_counts_up,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_hll_in_another_schema_works,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_without_hll_kanald_counts_and_takes_reach_up_later,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
