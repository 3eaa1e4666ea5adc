/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pg_report_html: the page of `kanalctl report --html` drawn by a real
 * browser. Debian's chromium, headless, takes a screenshot of the page at
 * a fixed window size; tests/report_png.py (python3 and zlib only) finds
 * the pixels of each chart's bar colour. The three charts must be there,
 * in order (take-up by kecamatan, the trend, the services with most manual
 * transactions), one below the other, each with its bars: 30 kecamatan
 * rows, 3 months, 10 services. No sleeps: chromium exits once the
 * screenshot is written.
 *
 * Exit 77 (skipped, SKIP_RETURN_CODE in tests/CMakeLists.txt) only when
 * chromium is not installed ($KANAL_CHROMIUM, else /usr/bin/chromium);
 * scripts/lib.sh installs it, so CI runs this.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define OUTLEN 8192

/* tools/report.c's chart colours. */
#define KECAMATAN "2563eb"
#define TREND "0d9488"
#define MANUAL "ea580c"

static const char *chromium;

/*
 * Three months (January to March 2026) of completed web and counter
 * transactions for every kecamatan and the first twelve services, counts
 * varying with each, so every bar has its own length.
 */
static const char rows_sql[] =
    "INSERT INTO kanal.usage_hourly "
    "SELECT m.b, s.code, ch.c, r.code, 'completed', false, "
    "       10 + (r.rn * 7 + s.sn * 13 + m.mn * 5) % 90 "
    "          + CASE WHEN ch.c = 'web' THEN r.rn * 3 + m.mn * 10 "
    "                 ELSE s.sn * 4 END, 0, 0"
    "  FROM (VALUES ('2026-01-15 03:00+00'::timestamptz, 1), "
    "               ('2026-02-15 03:00+00', 2), "
    "               ('2026-03-15 03:00+00', 3)) AS m(b, mn)"
    " CROSS JOIN (SELECT code, row_number() OVER (ORDER BY code) AS rn "
    "               FROM kanal.region WHERE level = 'kecamatan') AS r"
    " CROSS JOIN (SELECT code, row_number() OVER (ORDER BY code) AS sn "
    "               FROM kanal.service ORDER BY code LIMIT 12) AS s"
    " CROSS JOIN (VALUES ('web'), ('counter')) AS ch(c)";

struct box {
	long count, top, bottom, left, right;
};

/* Parses report_png.py's line for colour out of out. */
static void
box_of(const char *out, const char *colour, struct box *b)
{
	const char *p = strstr(out, colour);

	if (p == NULL || sscanf(p + strlen(colour), "%ld %ld %ld %ld %ld",
	    &b->count, &b->top, &b->bottom, &b->left, &b->right) != 5)
		fail_msg("no line for %s in:\n%s", colour, out);
}

static void
browser_shows_the_three_charts(void **state)
{
	char db[64], dir[512], html[600], shot[600], url[700], profile[600];
	char shot_arg[700], profile_arg[700], script[600], out[OUTLEN];
	PGconn *conn;
	struct stat st;
	struct box k, t, m;

	(void)state;
	th_db_create("report_html", db, sizeof(db));
	th_tmpdir("report-html", dir, sizeof(dir));
	conn = th_pg_connect(db);
	th_exec(conn, rows_sql);
	th_tiers_fill(conn);
	PQfinish(conn);
	snprintf(html, sizeof(html), "%s/report.html", dir);
	snprintf(shot, sizeof(shot), "%s/shot.png", dir);
	snprintf(profile, sizeof(profile), "%s/profile", dir);
	{
		char pg[128];
		const char *argv[] = { th_env("KANALCTL"), "report", "--pg", pg,
		    "--month", "2026-03", "--html", html, NULL };

		snprintf(pg, sizeof(pg), "dbname=%s user=kanal_analyst", db);
		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	snprintf(url, sizeof(url), "file://%s", html);
	snprintf(shot_arg, sizeof(shot_arg), "--screenshot=%s", shot);
	snprintf(profile_arg, sizeof(profile_arg), "--user-data-dir=%s",
	    profile);
	{
		/* --no-sandbox: the tests may run as root, where chromium
		   refuses its sandbox. */
		const char *argv[] = { chromium, "--headless", "--no-sandbox",
		    "--disable-gpu", "--disable-dev-shm-usage",
		    "--no-first-run", "--hide-scrollbars",
		    "--force-device-scale-factor=1",
		    "--force-color-profile=srgb", "--window-size=1000,2400",
		    profile_arg, shot_arg, url, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	assert_int_equal(stat(shot, &st), 0);
	snprintf(script, sizeof(script), "%s/tests/report_png.py",
	    th_env("KANAL_SOURCE_DIR"));
	{
		const char *argv[] = { "/usr/bin/python3", script, shot,
		    KECAMATAN, TREND, MANUAL, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	box_of(out, KECAMATAN, &k);
	box_of(out, TREND, &t);
	box_of(out, MANUAL, &m);
	print_message("pixels (count top bottom left right):\n%s", out);
	/* Each chart drew its bars... */
	assert_true(k.count > 5000 && t.count > 3000 && m.count > 3000);
	/* ...one chart below the other, in the page's order... */
	assert_true(k.bottom < t.top && t.bottom < m.top);
	/* ...with a row of 22 px per kecamatan (30) and per service (10). */
	assert_true(k.bottom - k.top >= 29 * 22);
	assert_true(m.bottom - m.top >= 9 * 22);
	/* The three months' bars stand side by side. */
	assert_true(t.right - t.left > 400);
	th_db_drop(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(browser_shows_the_three_charts),
	};

	chromium = getenv("KANAL_CHROMIUM");
	if (chromium == NULL || chromium[0] == '\0')
		chromium = "/usr/bin/chromium";
	if (access(chromium, X_OK) != 0) {
		fprintf(stderr, "SKIP: %s is not installed (Debian package "
		    "chromium; scripts/dev installs it)\n", chromium);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
