/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_report: the parts of tools/report.c that need no database: number
 * and duration formatting, HTML escaping, and the checks of --month and
 * --region. tests/test_pg_report.c runs the whole report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"

static void
counts_get_thousands_separators(void **state)
{
	static const struct {
		int64_t v;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ 7, "7" },
		{ 999, "999" },
		{ 1000, "1,000" },
		{ 12345, "12,345" },
		{ 1234567, "1,234,567" },
		{ -1069, "-1,069" },
		{ -100, "-100" },
		{ INT64_MAX, "9,223,372,036,854,775,807" },
		{ INT64_MIN, "-9,223,372,036,854,775,808" },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_fmt_count(buf, sizeof(buf), cases[i].v);
		assert_string_equal(buf, cases[i].want);
	}
}

static void
durations_read_as_seconds_minutes_or_hours(void **state)
{
	static const struct {
		double ms;
		int sign;
		const char *want;
	} cases[] = {
		{ 0, 0, "0 s" },
		{ 499, 0, "0 s" },
		{ 42000, 0, "42 s" },
		{ 59499, 0, "59 s" },
		{ 59500, 0, "1 min 00 s" },
		{ 252000, 0, "4 min 12 s" },
		{ 712500.625, 0, "11 min 53 s" },
		{ 3600000, 0, "1 h 00 min" },
		{ 7199000, 0, "2 h 00 min" },
		{ 5430000, 0, "1 h 31 min" },
		{ 30000, 1, "+30 s" },
		{ -30000, 1, "-30 s" },
		{ -187000, 1, "-3 min 07 s" },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_fmt_duration(buf, sizeof(buf), cases[i].ms,
		    cases[i].sign);
		assert_string_equal(buf, cases[i].want);
	}
}

static void
html_escape_covers_markup_and_both_quotes(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	report_html_escape(f, "Izin <b>&\"x\"</b> 'y' Çé");
	fclose(f);
	assert_string_equal(buf, "Izin &lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt; "
	    "&#39;y&#39; Çé");
	free(buf);
}

static void
month_and_region_syntax_is_checked(void **state)
{
	static const struct {
		const char *month, *region;
		int ok;
	} cases[] = {
		{ "2026-10", NULL, 1 },
		{ "2026-01", "32.73", 1 },
		{ "2026-12", "32.73.01", 1 },
		{ "1999-12", "32.73.01.1001", 1 },
		{ "2026-13", NULL, 0 },
		{ "2026-00", NULL, 0 },
		{ "0999-10", NULL, 0 },
		{ "2026-1", NULL, 0 },
		{ "2026-1x", NULL, 0 },
		{ "2026_10", NULL, 0 },
		{ "2026-10 ", NULL, 0 },
		{ NULL, NULL, 0 },
		{ "2026-10", "32.7", 0 },
		{ "2026-10", "32.73.1", 0 },
		{ "2026-10", "32.73.01.100", 0 },
		{ "2026-10", "32.73%", 0 },
		{ "2026-10", "", 0 },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct report_opts o = { cases[i].month, cases[i].region,
		    NULL };
		int r = report_check(&o, err, sizeof(err));

		if ((r == 0) != cases[i].ok)
			fail_msg("month %s region %s: %s", cases[i].month ?
			    cases[i].month : "(none)", cases[i].region ?
			    cases[i].region : "(none)", r == 0 ? "accepted" :
			    err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_get_thousands_separators),
		cmocka_unit_test(durations_read_as_seconds_minutes_or_hours),
		cmocka_unit_test(html_escape_covers_markup_and_both_quotes),
		cmocka_unit_test(month_and_region_syntax_is_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
