/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_loadgen: the pure parts of kanal-loadgen (tools/loadgen.h): the
 * histogram's buckets, error bound, quantiles and merge; the fixed-width
 * batch ids; the event model (every service and region code valid, every
 * event accepted by kanald's own checks, all channels and outcomes
 * present); the in-place batch_id patch; the loopback check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "validate.h"

#define NOW 1780000000000LL		/* 2026-05-28, Unix ms */

/* ------------------------------------------------------------ histogram */

struct bucket_case {
	uint64_t v;
	size_t bucket;
	uint64_t high;
};

static const struct bucket_case bucket_cases[] = {
	{ 0, 0, 0 },
	{ 1, 1, 1 },
	{ 127, 127, 127 },		/* last exact value */
	{ 128, 128, 128 },		/* first block of width 1 */
	{ 255, 255, 255 },
	{ 256, 256, 257 },		/* width 2 from here */
	{ 257, 256, 257 },
	{ 258, 257, 259 },
	{ 511, 383, 511 },
	{ 512, 384, 515 },		/* width 4 */
	{ 1000000, 1780, 1003519 },	/* 1 ms in ns: width 2^12 */
};

static void
test_bucket_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bucket_cases) / sizeof(bucket_cases[0]);
	    i++) {
		const struct bucket_case *c = &bucket_cases[i];
		size_t b = lg_hist_bucket(c->v);

		if (b != c->bucket || lg_hist_bucket_high(b) != c->high)
			fail_msg("value %llu: bucket %zu high %llu, want %zu "
			    "high %llu", (unsigned long long)c->v, b,
			    (unsigned long long)lg_hist_bucket_high(b),
			    c->bucket, (unsigned long long)c->high);
	}
}

static void
test_every_value_lands_in_a_bucket_within_1_in_128(void **state)
{
	uint64_t v = 1;

	(void)state;
	/* A geometric sweep over the whole range, and its neighbours. */
	while (v < UINT64_MAX / 3) {
		for (int d = -1; d <= 1; d++) {
			uint64_t x = v + (uint64_t)(int64_t)d;
			size_t b = lg_hist_bucket(x);
			uint64_t high = lg_hist_bucket_high(b);

			assert_true(high >= x);
			assert_true(high - x <= x / 128);
			assert_true(b == 0 || lg_hist_bucket_high(b - 1) < x);
		}
		v = v * 3 / 2 + 1;
	}
	assert_int_equal(lg_hist_bucket_high(lg_hist_bucket(UINT64_MAX)),
	    UINT64_MAX);
}

static void
test_empty_histogram_reports_zeros(void **state)
{
	struct lg_hist *h = lg_hist_new();

	(void)state;
	assert_non_null(h);
	assert_int_equal(lg_hist_count(h), 0);
	assert_int_equal(lg_hist_quantile(h, 0.5), 0);
	assert_int_equal(lg_hist_max(h), 0);
	assert_true(lg_hist_mean(h) == 0.0);
	lg_hist_free(h);
	lg_hist_free(NULL);
}

static void
test_quantiles_of_1_to_100000(void **state)
{
	struct lg_hist *h = lg_hist_new();
	static const struct { double q; uint64_t want; } qs[] = {
		{ 0.5, 50000 }, { 0.9, 90000 }, { 0.99, 99000 },
		{ 0.999, 99900 }, { 0.00001, 1 },
	};

	(void)state;
	for (uint64_t v = 1; v <= 100000; v++)
		lg_hist_record(h, v);
	assert_int_equal(lg_hist_count(h), 100000);
	assert_int_equal(lg_hist_min(h), 1);
	assert_int_equal(lg_hist_max(h), 100000);
	assert_true(lg_hist_mean(h) == 50000.5);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t got = lg_hist_quantile(h, qs[i].q);
		if (got < qs[i].want || got - qs[i].want > qs[i].want / 128)
			fail_msg("q %g: %llu, want %llu (+1/128)", qs[i].q,
			    (unsigned long long)got,
			    (unsigned long long)qs[i].want);
	}
	/* Never above the largest value recorded. */
	assert_int_equal(lg_hist_quantile(h, 0.99999), 100000);
	assert_int_equal(lg_hist_quantile(h, 1.0), 100000);
	lg_hist_free(h);
}

static void
test_merged_histograms_equal_one_that_saw_everything(void **state)
{
	struct lg_hist *a = lg_hist_new(), *b = lg_hist_new();
	struct lg_hist *all = lg_hist_new();
	uint64_t x = 12345;

	(void)state;
	for (int i = 0; i < 50000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t v = (x >> 40) * ((i % 7) + 1);
		lg_hist_record(i % 3 ? a : b, v);
		lg_hist_record(all, v);
	}
	lg_hist_merge(a, b);
	assert_int_equal(lg_hist_count(a), lg_hist_count(all));
	assert_int_equal(lg_hist_min(a), lg_hist_min(all));
	assert_int_equal(lg_hist_max(a), lg_hist_max(all));
	for (double q = 0.05; q < 1.0; q += 0.05)
		assert_int_equal(lg_hist_quantile(a, q),
		    lg_hist_quantile(all, q));
	assert_int_equal(lg_hist_quantile(a, 0.999),
	    lg_hist_quantile(all, 0.999));
	lg_hist_free(a);
	lg_hist_free(b);
	lg_hist_free(all);
}

/* ------------------------------------------------------------ batch ids */

struct id_case {
	uint64_t run, seq;
	const char *want;
};

static const struct id_case id_cases[] = {
	{ 0, 0, "lg-000000000000-0000000000000000" },
	{ 0xabcdef123456ULL, 42, "lg-abcdef123456-000000000000002a" },
	{ 0xffffffffffffULL, UINT64_MAX, "lg-ffffffffffff-ffffffffffffffff" },
	/* Only the run's low 48 bits are used. */
	{ 0x1000000000001ULL, 1, "lg-000000000001-0000000000000001" },
};

static void
test_batch_id_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(id_cases) / sizeof(id_cases[0]); i++) {
		char out[LG_BATCH_ID_LEN + 1];

		lg_batch_id(out, id_cases[i].run, id_cases[i].seq);
		out[LG_BATCH_ID_LEN] = '\0';
		assert_string_equal(out, id_cases[i].want);
		assert_true(validate_batch_id(out, LG_BATCH_ID_LEN));
	}
}

/* ------------------------------------------------------------ the model */

static void
test_model_has_200_valid_distinct_services_under_20_agencies(void **state)
{
	char prefixes[LG_NSERVICES][32];
	size_t nprefixes = 0;

	(void)state;
	for (size_t i = 0; i < LG_NSERVICES; i++) {
		const char *c = lg_service_code(i);
		size_t plen, j;

		assert_non_null(c);
		if (!validate_service_code(c, strlen(c)))
			fail_msg("service code \"%s\" is not valid", c);
		for (j = 0; j < i; j++)
			assert_string_not_equal(c, lg_service_code(j));
		plen = (size_t)(strchr(c, '.') - c);
		for (j = 0; j < nprefixes; j++)
			if (strlen(prefixes[j]) == plen &&
			    strncmp(prefixes[j], c, plen) == 0)
				break;
		if (j == nprefixes)
			snprintf(prefixes[nprefixes++], sizeof(prefixes[0]),
			    "%.*s", (int)plen, c);
	}
	assert_null(lg_service_code(LG_NSERVICES));
	assert_int_equal(nprefixes, 20);
}

static void
test_model_regions_are_kota_bandung_kelurahan(void **state)
{
	int seen[LG_NKECAMATAN + 1] = { 0 };

	(void)state;
	assert_int_equal(lg_region_count(), 151);
	for (size_t i = 0; i < lg_region_count(); i++) {
		const char *c = lg_region_code(i);
		int kec;

		assert_int_equal(strlen(c), 13);
		assert_true(validate_region_code(c, 13));
		assert_memory_equal(c, "32.73.", 6);
		kec = atoi(c + 6);
		assert_true(kec >= 1 && kec <= LG_NKECAMATAN);
		seen[kec]++;
		assert_true(atoi(c + 9) > 1000);
	}
	for (int k = 1; k <= LG_NKECAMATAN; k++)
		assert_true(seen[k] > 0);
	assert_null(lg_region_code(lg_region_count()));
}

static void
test_batch_decodes_and_every_event_is_accepted(void **state)
{
	const struct validate_limits lim = { 7LL * 86400 * 1000, 5 * 60000 };
	int channels[10] = { 0 }, outcomes[4] = { 0 }, assisted = 0;
	int unmeasured = 0;
	struct lg_batch b;
	Kanal__V1__EventBatch *eb;

	(void)state;
	assert_int_equal(lg_batch_build(&b, 7, 3, 5000, NOW, 0), 0);
	assert_int_equal(b.nevents, 5000);
	assert_int_equal(b.id_off, 2);	/* field 1 first, one length byte */
	eb = kanal__v1__event_batch__unpack(NULL, b.len, b.buf);
	assert_non_null(eb);
	assert_int_equal(eb->n_events, 5000);
	assert_string_equal(eb->batch_id, "lg-000000000000-0000000000000000");
	for (size_t i = 0; i < eb->n_events; i++) {
		const Kanal__V1__ServiceEvent *ev = eb->events[i];
		char msg[256];

		if (validate_event(ev, NULL, NOW, &lim, msg, sizeof(msg)) != 0)
			fail_msg("event %zu rejected: %s", i, msg);
		assert_true(ev->occurred_at_ms <= NOW - 60000);
		assert_true(ev->occurred_at_ms >= NOW - 55 * 60000);
		channels[ev->channel]++;
		outcomes[ev->outcome]++;
		assisted += ev->assisted;
		unmeasured += ev->duration_ms == 0;
	}
	for (int c = 1; c <= 9; c++)
		if (channels[c] == 0)
			fail_msg("no event on channel %d in 5000", c);
	for (int o = 0; o <= 3; o++)
		assert_true(outcomes[o] > 0);
	assert_true(outcomes[1] > 4000);	/* mostly completed */
	assert_true(assisted > 0 && assisted < 2500);
	assert_true(unmeasured > 250 && unmeasured < 750);
	kanal__v1__event_batch__free_unpacked(eb, NULL);
	lg_batch_clear(&b);
	lg_batch_clear(&b);
}

static void
test_set_id_patches_only_the_batch_id(void **state)
{
	struct lg_batch b, again;
	Kanal__V1__EventBatch *before, *after;
	uint8_t *copy;

	(void)state;
	assert_int_equal(lg_batch_build(&b, 1, 0, 100, NOW, 0), 0);
	copy = malloc(b.len);
	assert_non_null(copy);
	memcpy(copy, b.buf, b.len);
	lg_batch_set_id(&b, 0xabcdef123456ULL, 42);
	/* Only the 32 bytes of the id changed. */
	for (size_t i = 0; i < b.len; i++)
		if (i < b.id_off || i >= b.id_off + LG_BATCH_ID_LEN)
			assert_int_equal(b.buf[i], copy[i]);
	before = kanal__v1__event_batch__unpack(NULL, b.len, copy);
	after = kanal__v1__event_batch__unpack(NULL, b.len, b.buf);
	assert_non_null(before);
	assert_non_null(after);
	assert_string_equal(after->batch_id,
	    "lg-abcdef123456-000000000000002a");
	assert_int_equal(after->n_events, before->n_events);
	assert_string_equal(after->events[99]->service_code,
	    before->events[99]->service_code);
	kanal__v1__event_batch__free_unpacked(before, NULL);
	kanal__v1__event_batch__free_unpacked(after, NULL);

	/* The same seed and index make the same bytes; another index not. */
	assert_int_equal(lg_batch_build(&again, 1, 0, 100, NOW, 0), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.buf, copy, b.len);
	lg_batch_clear(&again);
	assert_int_equal(lg_batch_build(&again, 1, 1, 100, NOW, 0), 0);
	assert_true(again.len != b.len ||
	    memcmp(again.buf, copy, b.len) != 0);
	lg_batch_clear(&again);
	free(copy);
	lg_batch_clear(&b);
}

/* ------------------------------------------------------------------ URLs */

struct url_case {
	const char *url;
	int want;
};

static const struct url_case url_cases[] = {
	{ "http://127.0.0.1:8080", 1 },
	{ "http://127.1.2.3", 1 },
	{ "http://127.0.0.1:8080/v1/events", 1 },
	{ "http://[::1]:8080", 1 },
	{ "http://[::ffff:127.0.0.1]:8080", 1 },
	{ "http://localhost:8080", 1 },
	{ "http://10.0.0.1:8080", 0 },
	{ "http://192.168.1.10", 0 },
	{ "http://0.0.0.0:8080", 0 },
	{ "http://[2001:db8::1]:8080", 0 },
	{ "http://[::ffff:10.0.0.1]", 0 },
	{ "https://127.0.0.1:8080", -1 },
	{ "http://", -1 },
	{ "http://:8080", -1 },
	{ "http://[::1", -1 },
	{ "127.0.0.1:8080", -1 },
};

static void
test_loopback_url_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		int got = lg_url_is_loopback(url_cases[i].url);
		if (got != url_cases[i].want)
			fail_msg("%s: %d, want %d", url_cases[i].url, got,
			    url_cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_table),
		cmocka_unit_test(test_every_value_lands_in_a_bucket_within_1_in_128),
		cmocka_unit_test(test_empty_histogram_reports_zeros),
		cmocka_unit_test(test_quantiles_of_1_to_100000),
		cmocka_unit_test(test_merged_histograms_equal_one_that_saw_everything),
		cmocka_unit_test(test_batch_id_table),
		cmocka_unit_test(test_model_has_200_valid_distinct_services_under_20_agencies),
		cmocka_unit_test(test_model_regions_are_kota_bandung_kelurahan),
		cmocka_unit_test(test_batch_decodes_and_every_event_is_accepted),
		cmocka_unit_test(test_set_id_patches_only_the_batch_id),
		cmocka_unit_test(test_loopback_url_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
