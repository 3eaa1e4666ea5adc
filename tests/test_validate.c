/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_validate: must-accept and must-reject tables for one event (each
 * reject reason with a minimal event that triggers exactly it), the syntax
 * checks on their own, and the storage names.
 *
 * Every event case runs twice: as written, and again carrying a harmless
 * citizen_ref pseudonym, which must change nothing and never show up in
 * the message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"
#include "validate.h"

#define NOW 1780000000000LL		/* 2026-05-28, Unix ms */
#define MAX_AGE (7LL * 24 * 3600 * 1000)
#define MAX_AHEAD (5LL * 60 * 1000)

#define ACCEPT KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED
#define R(x) KANAL__V1__REJECT_REASON__REJECT_REASON_##x

#define SVC "dukcapil.akta-lahir"
#define S64 "a23456789012345678901234567890123456789012345678901234567890123x"
#define S65 S64 "y"
/* 64 characters under the grant's prefix, so only the length matters. */
#define D64 "dukcapil.a234567890123456789012345678901234567890123456789012345"
#define D65 D64 "6"
#define PSEUDONYM "pz-7f3a9c-pseudonym"

static const struct validate_limits limits = { MAX_AGE, MAX_AHEAD };

/* ------------------------------------------------------------- helpers */

/* The source the event cases are sent by: it may report dukcapil.*. */
static struct sources *grants;
static const struct source *dukcapil;

static int
load_grants(void **state)
{
	char hex[65], text[256];

	(void)state;
	sources_digest_hex("t", 1, hex);
	snprintf(text, sizeof(text), "dukcapil-salaman sha256:%s dukcapil.*\n",
	    hex);
	grants = sources_parse(text, strlen(text), "grants", stderr);
	if (grants == NULL)
		return -1;
	dukcapil = sources_auth(grants, "t", 1);
	return dukcapil == NULL ? -1 : 0;
}

static int
free_grants(void **state)
{
	(void)state;
	sources_free(grants);
	return 0;
}

static int
contains_bytes(const char *hay, const char *needle, size_t len)
{
	size_t n = strlen(hay);

	if (len == 0)
		return 0;
	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(hay + i, needle, len) == 0)
			return 1;
	return 0;
}

/* --------------------------------------------------------------- events */

struct event_case {
	const char *name;
	const char *service;	/* may be NULL, as from a sparse JSON event */
	int channel;
	const char *region;
	int64_t offset_ms;	/* occurred_at_ms = NOW + offset_ms */
	int outcome;
	size_t event_id_len;
	const char *citizen_ref;	/* NULL: none */
	Kanal__V1__RejectReason want;
};

static const struct event_case event_cases[] = {
	/* name, service, channel, region, offset, outcome, id, ref, want */
	{ "a minimal event is accepted",
	  SVC, 1, "32.73", 0, 1, 0, NULL, ACCEPT },

	{ "a 64-character service code is accepted",
	  D64, 1, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "a 65-character service code is refused",
	  D65, 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "an upper-case service code is refused",
	  "Dukcapil.akta", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "a service code starting with '.' is refused",
	  ".dukcapil", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "a service code starting with '-' is refused",
	  "-dukcapil", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "a service code with a space is refused",
	  "dukcapil.akta lahir", 1, "32.73", 0, 1, 0, NULL,
	  R(SERVICE_CODE_INVALID) },
	{ "a service code with '/' is refused",
	  "dukcapil/akta", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "an empty service code is refused",
	  "", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "a missing service code is refused",
	  NULL, 1, "32.73", 0, 1, 0, NULL, R(SERVICE_CODE_INVALID) },
	{ "a service the source may not report is refused",
	  "dpmptsp.pbg", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_NOT_ALLOWED) },
	{ "the grant's prefix alone without its dot is refused",
	  "dukcapil", 1, "32.73", 0, 1, 0, NULL, R(SERVICE_NOT_ALLOWED) },

	{ "channel 0 (unspecified) is refused",
	  SVC, 0, "32.73", 0, 1, 0, NULL, R(CHANNEL_INVALID) },
	{ "channel 1 (web) is accepted",
	  SVC, 1, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "channel 5 (partner) is accepted",
	  SVC, 5, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "channel 6 (counter) is accepted",
	  SVC, 6, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "channel 9 (paper) is accepted",
	  SVC, 9, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "channel 10 (unknown) is refused",
	  SVC, 10, "32.73", 0, 1, 0, NULL, R(CHANNEL_INVALID) },
	{ "a negative channel is refused",
	  SVC, -1, "32.73", 0, 1, 0, NULL, R(CHANNEL_INVALID) },

	{ "a province code is accepted", SVC, 1, "32", 0, 1, 0, NULL, ACCEPT },
	{ "a city code is accepted", SVC, 1, "32.73", 0, 1, 0, NULL, ACCEPT },
	{ "a district code is accepted",
	  SVC, 1, "32.73.01", 0, 1, 0, NULL, ACCEPT },
	{ "a village code is accepted",
	  SVC, 1, "32.73.01.1001", 0, 1, 0, NULL, ACCEPT },
	{ "a one-digit province is refused",
	  SVC, 1, "3", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a one-digit city is refused",
	  SVC, 1, "32.7", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a one-digit district is refused",
	  SVC, 1, "32.73.1", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a three-digit village is refused",
	  SVC, 1, "32.73.01.101", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a dash instead of a dot is refused",
	  SVC, 1, "32-73", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a fifth level is refused",
	  SVC, 1, "32.73.01.1001.1", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a trailing dot is refused",
	  SVC, 1, "32.73.", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "letters are refused",
	  SVC, 1, "3a.73", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "an empty region is refused",
	  SVC, 1, "", 0, 1, 0, NULL, R(REGION_CODE_INVALID) },
	{ "a missing region is refused",
	  SVC, 1, NULL, 0, 1, 0, NULL, R(REGION_CODE_INVALID) },

	{ "an event exactly max-age old is accepted",
	  SVC, 1, "32.73", -MAX_AGE, 1, 0, NULL, ACCEPT },
	{ "an event one ms older than max-age is refused",
	  SVC, 1, "32.73", -MAX_AGE - 1, 1, 0, NULL, R(TOO_OLD) },
	{ "an event at the Unix epoch is refused as too old",
	  SVC, 1, "32.73", -NOW, 1, 0, NULL, R(TOO_OLD) },
	{ "an event exactly max-ahead in the future is accepted",
	  SVC, 1, "32.73", MAX_AHEAD, 1, 0, NULL, ACCEPT },
	{ "an event one ms past max-ahead is refused",
	  SVC, 1, "32.73", MAX_AHEAD + 1, 1, 0, NULL, R(IN_FUTURE) },

	{ "outcome 0 (unspecified) is accepted",
	  SVC, 1, "32.73", 0, 0, 0, NULL, ACCEPT },
	{ "outcome 3 (failed) is accepted",
	  SVC, 1, "32.73", 0, 3, 0, NULL, ACCEPT },
	{ "outcome 4 (unknown) is refused",
	  SVC, 1, "32.73", 0, 4, 0, NULL, R(OUTCOME_INVALID) },
	{ "a negative outcome is refused",
	  SVC, 1, "32.73", 0, -1, 0, NULL, R(OUTCOME_INVALID) },

	{ "an event_id of 16 bytes is accepted",
	  SVC, 1, "32.73", 0, 1, 16, NULL, ACCEPT },
	{ "an event_id of 15 bytes is refused",
	  SVC, 1, "32.73", 0, 1, 15, NULL, R(EVENT_ID_INVALID) },
	{ "an event_id of 17 bytes is refused",
	  SVC, 1, "32.73", 0, 1, 17, NULL, R(EVENT_ID_INVALID) },

	{ "a citizen_ref of 32 bytes is accepted",
	  SVC, 1, "32.73", 0, 1, 0, "ref-567890123456789012345678901x",
	  ACCEPT },
	{ "a citizen_ref of 33 bytes is refused",
	  SVC, 1, "32.73", 0, 1, 0, "ref-567890123456789012345678901xy",
	  R(CITIZEN_REF_INVALID) },
	{ "a citizen_ref of 16 digits is refused as a NIK",
	  SVC, 1, "32.73", 0, 1, 0, "3273010101900001", R(CITIZEN_REF_NIK) },
	{ "a citizen_ref of 15 digits is accepted",
	  SVC, 1, "32.73", 0, 1, 0, "327301010190000", ACCEPT },
	{ "a citizen_ref of 17 digits is accepted",
	  SVC, 1, "32.73", 0, 1, 0, "32730101019000012", ACCEPT },
	{ "a citizen_ref of 16 with a letter is accepted",
	  SVC, 1, "32.73", 0, 1, 0, "327301010190000a", ACCEPT },
};

/* Builds the case's event; id must hold 17 bytes. */
static void
event_from_case(const struct event_case *c, Kanal__V1__ServiceEvent *ev,
    uint8_t *id)
{
	kanal__v1__service_event__init(ev);
	ev->service_code = (char *)c->service;
	ev->channel = (Kanal__V1__Channel)c->channel;
	ev->region_code = (char *)c->region;
	ev->occurred_at_ms = NOW + c->offset_ms;
	ev->outcome = (Kanal__V1__Outcome)c->outcome;
	ev->duration_ms = 1500;
	memset(id, 0xab, 17);
	ev->event_id.data = id;
	ev->event_id.len = c->event_id_len;
	if (c->citizen_ref != NULL) {
		ev->citizen_ref.data = (uint8_t *)c->citizen_ref;
		ev->citizen_ref.len = strlen(c->citizen_ref);
	}
}

static void
check_event(const struct event_case *c, const Kanal__V1__ServiceEvent *ev,
    const char *how)
{
	char msg[512];
	Kanal__V1__RejectReason got;

	memset(msg, 0, sizeof(msg));
	got = validate_event(ev, dukcapil, NOW, &limits, msg, sizeof(msg));
	if (got != c->want)
		fail_msg("%s%s: got %s (%s), want %s", c->name, how,
		    validate_reason_name(got), msg,
		    validate_reason_name(c->want));
	if (got != ACCEPT && msg[0] == '\0')
		fail_msg("%s%s: rejected without a message", c->name, how);
	if (contains_bytes(msg, (const char *)ev->citizen_ref.data,
	    ev->citizen_ref.len))
		fail_msg("%s%s: the message holds the citizen_ref: %s",
		    c->name, how, msg);
}

static void
test_event_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(event_cases) / sizeof(event_cases[0]);
	    i++) {
		const struct event_case *c = &event_cases[i];
		Kanal__V1__ServiceEvent ev;
		uint8_t id[17];

		event_from_case(c, &ev, id);
		check_event(c, &ev, "");
		if (c->citizen_ref == NULL) {
			ev.citizen_ref.data = (uint8_t *)PSEUDONYM;
			ev.citizen_ref.len = strlen(PSEUDONYM);
			check_event(c, &ev, " (with a pseudonym)");
		}
	}
}

/* The NIK rejection says what to send instead, and not what was sent. */
static void
test_nik_message_holds_neither_the_ref_nor_its_digits(void **state)
{
	static const char nik[] = "3273010101900001";
	Kanal__V1__ServiceEvent ev = KANAL__V1__SERVICE_EVENT__INIT;
	char msg[512];

	(void)state;
	ev.service_code = (char *)SVC;
	ev.channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
	ev.region_code = (char *)"32.73";
	ev.occurred_at_ms = NOW;
	ev.citizen_ref.data = (uint8_t *)nik;
	ev.citizen_ref.len = 16;
	assert_int_equal(validate_event(&ev, dukcapil, NOW, &limits, msg,
	    sizeof(msg)), R(CITIZEN_REF_NIK));
	assert_null(strstr(msg, nik));
	assert_null(strstr(msg, "32730101"));
	assert_non_null(strstr(msg, "pseudonym"));
}

static void
test_without_a_source_every_valid_service_is_allowed(void **state)
{
	Kanal__V1__ServiceEvent ev = KANAL__V1__SERVICE_EVENT__INIT;
	char msg[256];

	(void)state;
	ev.service_code = (char *)"dpmptsp.pbg";
	ev.channel = KANAL__V1__CHANNEL__CHANNEL_COUNTER;
	ev.region_code = (char *)"32.73.01";
	ev.occurred_at_ms = NOW;
	assert_int_equal(validate_event(&ev, NULL, NOW, &limits, msg,
	    sizeof(msg)), ACCEPT);
	assert_int_equal(validate_event(&ev, dukcapil, NOW, &limits, msg,
	    sizeof(msg)), R(SERVICE_NOT_ALLOWED));
	assert_non_null(strstr(msg, "dukcapil-salaman"));
	assert_non_null(strstr(msg, "dpmptsp.pbg"));
}

static void
test_extreme_times_are_refused_without_overflow(void **state)
{
	Kanal__V1__ServiceEvent ev = KANAL__V1__SERVICE_EVENT__INIT;
	char msg[256];

	(void)state;
	ev.service_code = (char *)SVC;
	ev.channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
	ev.region_code = (char *)"32.73";
	ev.occurred_at_ms = INT64_MIN;
	assert_int_equal(validate_event(&ev, dukcapil, NOW, &limits, msg,
	    sizeof(msg)), R(TOO_OLD));
	ev.occurred_at_ms = -1;
	assert_int_equal(validate_event(&ev, dukcapil, NOW, &limits, msg,
	    sizeof(msg)), R(TOO_OLD));
	ev.occurred_at_ms = INT64_MAX;
	assert_int_equal(validate_event(&ev, dukcapil, NOW, &limits, msg,
	    sizeof(msg)), R(IN_FUTURE));
}

static void
test_message_fits_a_small_buffer(void **state)
{
	Kanal__V1__ServiceEvent ev = KANAL__V1__SERVICE_EVENT__INIT;
	char msg[16];

	(void)state;
	ev.service_code = (char *)S65;
	memset(msg, 'Z', sizeof(msg));
	assert_int_equal(validate_event(&ev, NULL, NOW, &limits, msg,
	    sizeof(msg)), R(SERVICE_CODE_INVALID));
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

/* --------------------------------------------------------- syntax checks */

struct syntax_case {
	const char *name;
	const char *text;
	int valid;
};

static const struct syntax_case service_cases[] = {
	{ "a dotted code is valid", "dukcapil.akta-lahir", 1 },
	{ "one letter is valid", "a", 1 },
	{ "one digit is valid", "7", 1 },
	{ "underscores are valid after the first", "a_b", 1 },
	{ "64 characters are valid", S64, 1 },
	{ "65 characters are not", S65, 0 },
	{ "empty is not", "", 0 },
	{ "a leading '.' is not", ".a", 0 },
	{ "a leading '_' is not", "_a", 0 },
	{ "a leading '-' is not", "-a", 0 },
	{ "upper case is not", "A", 0 },
	{ "a space is not", "a b", 0 },
	{ "a '*' is not", "a*", 0 },
	{ "a non-ASCII byte is not", "caf\xc3\xa9", 0 },
};

static const struct syntax_case region_cases[] = {
	{ "a province is valid", "32", 1 },
	{ "a city is valid", "32.73", 1 },
	{ "a district is valid", "32.73.01", 1 },
	{ "a village is valid", "32.73.01.1001", 1 },
	{ "one digit is not", "3", 0 },
	{ "three digits are not", "327", 0 },
	{ "a one-digit city is not", "32.7", 0 },
	{ "a one-digit district is not", "32.73.1", 0 },
	{ "a three-digit village is not", "32.73.01.101", 0 },
	{ "a five-digit village is not", "32.73.01.10011", 0 },
	{ "a dash is not", "32-73", 0 },
	{ "a fifth level is not", "32.73.01.1001.1", 0 },
	{ "a leading dot is not", ".32.73", 0 },
	{ "letters are not", "ab.cd", 0 },
	{ "empty is not", "", 0 },
};

static const struct syntax_case batch_id_cases[] = {
	{ "a short id is valid", "b-1", 1 },
	{ "a UUID is valid", "0e4f7d2c-9a51-4bcb-8f7e-3c2a1d0b9e88", 1 },
	{ "punctuation is valid", "!~#$%&'()*+,-./:;<=>?@[]^_`{|}", 1 },
	{ "64 characters are valid", S64, 1 },
	{ "65 characters are not", S65, 0 },
	{ "empty is not", "", 0 },
	{ "a space is not", "a b", 0 },
	{ "a tab is not", "a\tb", 0 },
	{ "a newline is not", "a\nb", 0 },
	{ "DEL is not", "a\x7f", 0 },
	{ "a non-ASCII byte is not", "caf\xc3\xa9", 0 },
};

static void
run_syntax_table(const char *what, const struct syntax_case *cases,
    size_t n, int (*check)(const char *, size_t))
{
	for (size_t i = 0; i < n; i++) {
		const struct syntax_case *c = &cases[i];
		int got = check(c->text, strlen(c->text));

		if (got != c->valid)
			fail_msg("%s: %s: \"%s\" gave %d, want %d", what,
			    c->name, c->text, got, c->valid);
	}
}

static void
test_service_code_table(void **state)
{
	(void)state;
	run_syntax_table("service code", service_cases,
	    sizeof(service_cases) / sizeof(service_cases[0]),
	    validate_service_code);
}

static void
test_region_code_table(void **state)
{
	(void)state;
	run_syntax_table("region code", region_cases,
	    sizeof(region_cases) / sizeof(region_cases[0]),
	    validate_region_code);
}

static void
test_batch_id_table(void **state)
{
	(void)state;
	run_syntax_table("batch id", batch_id_cases,
	    sizeof(batch_id_cases) / sizeof(batch_id_cases[0]),
	    validate_batch_id);
}

static void
test_checks_read_only_len_bytes(void **state)
{
	(void)state;
	/* The byte past len would make each of these invalid. */
	assert_true(validate_service_code("dukcapil.A", 9));
	assert_true(validate_region_code("32.73X", 5));
	assert_true(validate_batch_id("b-1 ", 3));
	assert_true(validate_looks_like_nik((const uint8_t *)
	    "3273010101900001x", 16));
}

static void
test_nik_shape(void **state)
{
	static const struct {
		const char *name;
		const char *text;
		int nik;
	} cases[] = {
		{ "16 digits look like a NIK", "3273010101900001", 1 },
		{ "15 digits do not", "327301010190000", 0 },
		{ "17 digits do not", "32730101019000012", 0 },
		{ "16 with a letter do not", "32730101019000a1", 0 },
		{ "16 with a space do not", "3273010101 00001", 0 },
		{ "nothing does not", "", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = validate_looks_like_nik((const uint8_t *)
		    cases[i].text, strlen(cases[i].text));

		if (got != cases[i].nik)
			fail_msg("%s: gave %d", cases[i].name, got);
	}
}

/* ----------------------------------------------------------------- names */

static void
test_channel_names(void **state)
{
	static const char *const want[] = {
		NULL, "web", "mobile_app", "kiosk", "chat", "partner",
		"counter", "phone", "outreach", "paper", NULL,
	};

	(void)state;
	assert_null(validate_channel_name(-1));
	for (int i = 0; i <= VALIDATE_CHANNEL_MAX + 1; i++) {
		const char *got = validate_channel_name(i);

		if (want[i] == NULL && got != NULL)
			fail_msg("channel %d should have no name, has \"%s\"",
			    i, got);
		if (want[i] != NULL && (got == NULL || strcmp(got, want[i])
		    != 0))
			fail_msg("channel %d is \"%s\", want \"%s\"", i,
			    got != NULL ? got : "(null)", want[i]);
	}
	/* The generated enum and the name table agree. */
	assert_string_equal(validate_channel_name(
	    KANAL__V1__CHANNEL__CHANNEL_PARTNER), "partner");
	assert_string_equal(validate_channel_name(
	    KANAL__V1__CHANNEL__CHANNEL_PAPER), "paper");
}

static void
test_outcome_names(void **state)
{
	(void)state;
	assert_null(validate_outcome_name(-1));
	assert_string_equal(validate_outcome_name(
	    KANAL__V1__OUTCOME__OUTCOME_UNSPECIFIED), "unknown");
	assert_string_equal(validate_outcome_name(
	    KANAL__V1__OUTCOME__OUTCOME_COMPLETED), "completed");
	assert_string_equal(validate_outcome_name(
	    KANAL__V1__OUTCOME__OUTCOME_ABANDONED), "abandoned");
	assert_string_equal(validate_outcome_name(
	    KANAL__V1__OUTCOME__OUTCOME_FAILED), "failed");
	assert_null(validate_outcome_name(VALIDATE_OUTCOME_MAX + 1));
}

static void
test_reason_names_are_distinct_snake_case(void **state)
{
	const ProtobufCEnumDescriptor *d =
	    &kanal__v1__reject_reason__descriptor;

	(void)state;
	/* Every reason the wire contract knows has its own name. */
	for (unsigned i = 0; i < d->n_values; i++) {
		const char *name = validate_reason_name(
		    (Kanal__V1__RejectReason)d->values[i].value);

		if (name == NULL || strcmp(name, "unknown") == 0)
			fail_msg("%s has no name", d->values[i].name);
		if (strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name))
			fail_msg("%s is named \"%s\", not snake_case",
			    d->values[i].name, name);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(name, validate_reason_name(
			    (Kanal__V1__RejectReason)d->values[j].value)) == 0)
				fail_msg("%s and %s share the name \"%s\"",
				    d->values[i].name, d->values[j].name, name);
	}
	assert_string_equal(validate_reason_name(R(CITIZEN_REF_NIK)),
	    "citizen_ref_nik");
	assert_string_equal(validate_reason_name(
	    (Kanal__V1__RejectReason)999), "unknown");
	assert_string_equal(validate_reason_name(
	    (Kanal__V1__RejectReason)-1), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_table),
		cmocka_unit_test(test_nik_message_holds_neither_the_ref_nor_its_digits),
		cmocka_unit_test(test_without_a_source_every_valid_service_is_allowed),
		cmocka_unit_test(test_extreme_times_are_refused_without_overflow),
		cmocka_unit_test(test_message_fits_a_small_buffer),
		cmocka_unit_test(test_service_code_table),
		cmocka_unit_test(test_region_code_table),
		cmocka_unit_test(test_batch_id_table),
		cmocka_unit_test(test_checks_read_only_len_bytes),
		cmocka_unit_test(test_nik_shape),
		cmocka_unit_test(test_channel_names),
		cmocka_unit_test(test_outcome_names),
		cmocka_unit_test(test_reason_names_are_distinct_snake_case),
	};

	return cmocka_run_group_tests(tests, load_grants, free_grants);
}
