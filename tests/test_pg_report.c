/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pg_report: `kanalctl report` against a real PostgreSQL. One
 * migrated database gets known hourly counts (inserted as the owner, so
 * every figure below is worked out by hand in the comments) for a month
 * and the month before, and the real kanalctl, connected as kanal_analyst,
 * must print exactly those figures: totals with the change in percentage
 * points, services by manual transactions, kecamatan by take-up, the
 * region filter, WIB month boundaries, the empty-month answer, usage
 * errors, and an HTML page that escapes a hostile service name and loads
 * nothing from elsewhere. tests/test_pg_report_html.c checks that a
 * browser really draws the charts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "harness.h"

#define OUTLEN 65536
#define EVIL_NAME "Izin <b>&\"x\"</b>"

static char db[64], dir[512], pg[256];
static PGconn *conn;

/*
 * March 2026 (WIB), with F = 2026-02 the month before:
 *
 *   akta-lahir  web      32.73.01       completed          300  2 min each
 *   akta-lahir  web      32.73.01       completed assisted 100
 *   akta-lahir  counter  32.73.01       completed          600  15 min each
 *   akta-lahir  counter  32.73.01.1001  abandoned           50
 *   akta-lahir  counter  32.73          completed            5
 *   evil        mobile   32.73.02       completed         1000
 *   evil        paper    32.73.02       completed         1000  10 min each
 *                                                             (+1 s in all)
 *   evil        phone    32.73.02       failed             234
 *
 * The evil rows are at 2026-02-28 17:00 UTC, which is 1 March 00:00 WIB.
 * Totals: digital 1,400, manual 1,889, assisted 100, completed 3,005,
 * completed digital 1,400 (take-up 46.589% -> 46.6%), self-service 1,300
 * (43.26% -> 43.3%), concluded 3,289 (completion 91.37% -> 91.4%); mean
 * digital 120 s, mean manual 1,140,001 s / 1,600 = 712.5006 s -> 713 s.
 *
 * February: akta-lahir web 32.73.01 completed 200 (2 min 30 s each),
 * counter completed 800 (15 min each), and counter abandoned 20 at
 * 2026-02-28 16:00 UTC (23:00 WIB, still February): take-up 20.0%,
 * self-service 20.0%, completion 1,000 / 1,020 = 98.0%.
 */
static const char *const rows_sql =
    "INSERT INTO kanal.usage_hourly VALUES "
    "('2026-03-10 03:00+00', 'dukcapil.akta-lahir', 'web', '32.73.01', "
    "  'completed', false, 300, 36000000, 300),"
    "('2026-03-10 03:00+00', 'dukcapil.akta-lahir', 'web', '32.73.01', "
    "  'completed', true, 100, 0, 0),"
    "('2026-03-10 03:00+00', 'dukcapil.akta-lahir', 'counter', '32.73.01', "
    "  'completed', false, 600, 540000000, 600),"
    "('2026-03-10 03:00+00', 'dukcapil.akta-lahir', 'counter', "
    "  '32.73.01.1001', 'abandoned', false, 50, 0, 0),"
    "('2026-03-10 03:00+00', 'dukcapil.akta-lahir', 'counter', '32.73', "
    "  'completed', false, 5, 0, 0),"
    "('2026-02-28 17:00+00', 'test.evil', 'mobile_app', '32.73.02', "
    "  'completed', false, 1000, 0, 0),"
    "('2026-02-28 17:00+00', 'test.evil', 'paper', '32.73.02', "
    "  'completed', false, 1000, 600001000, 1000),"
    "('2026-02-28 17:00+00', 'test.evil', 'phone', '32.73.02', "
    "  'failed', false, 234, 0, 0),"
    "('2026-02-10 03:00+00', 'dukcapil.akta-lahir', 'web', '32.73.01', "
    "  'completed', false, 200, 30000000, 200),"
    "('2026-02-10 03:00+00', 'dukcapil.akta-lahir', 'counter', '32.73.01', "
    "  'completed', false, 800, 720000000, 800),"
    "('2026-02-28 16:00+00', 'dukcapil.akta-lahir', 'counter', '32.73.01', "
    "  'abandoned', false, 20, 0, 0)";

static int
group_setup(void **state)
{
	(void)state;
	th_db_create("report", db, sizeof(db));
	th_tmpdir("report", dir, sizeof(dir));
	conn = th_pg_connect(db);
	th_exec(conn, rows_sql);
	th_tiers_fill(conn);
	th_exec(conn, "INSERT INTO kanal.service VALUES ('test.evil', "
	    "'Izin <b>&\"x\"</b>', 'Test')");
	/* As the analyst: the report must need no more than that role. */
	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_analyst", db);
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

/* kanalctl report --pg ... ARGS; stdout into out; the exit status. */
static int
report(char *out, const char *a1, const char *a2, const char *a3,
    const char *a4, const char *a5, const char *a6)
{
	const char *argv[] = { th_env("KANALCTL"), "report", "--pg", pg, a1,
	    a2, a3, a4, a5, a6, NULL };

	return th_run(out, OUTLEN, argv);
}

/*
 * The line of out whose text starts with label (after the section's other
 * lines); fails the test when there is none. Copied into line.
 */
static const char *
line_of(const char *out, const char *label, char *line, size_t len)
{
	const char *p = out;

	for (;;) {
		const char *end = strchr(p, '\n');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (strncmp(p, label, strlen(label)) == 0) {
			snprintf(line, len, "%.*s", (int)n, p);
			return line;
		}
		if (end == NULL)
			fail_msg("no line starting \"%s\" in:\n%s", label, out);
		p = end + 1;
	}
}

/* Each of the NULL-terminated words is in the line starting with label. */
static void
line_has(const char *out, const char *label, ...)
{
	char line[512];
	const char *w;
	va_list ap;

	line_of(out, label, line, sizeof(line));
	va_start(ap, label);
	while ((w = va_arg(ap, const char *)) != NULL)
		if (strstr(line, w) == NULL)
			fail_msg("\"%s\" not in the line \"%s\"", w, line);
	va_end(ap);
}

/* Characters (UTF-8 code points) of the longest line. */
static size_t
widest(const char *s)
{
	size_t w = 0, n = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\n') {
			n = 0;
			continue;
		}
		if (((unsigned char)*s & 0xc0) != 0x80 && ++n > w)
			w = n;
	}
	return w;
}

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		fail_msg("%s: cannot open", path);
	buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* ------------------------------------------------------------- the text */

static void
totals_match_hand_worked_figures_and_change(void **state)
{
	char *out = malloc(OUTLEN);

	(void)state;
	assert_int_equal(report(out, "--month", "2026-03", NULL, NULL, NULL,
	    NULL), 0);
	line_has(out, "kanal report for 2026-03", "All regions", NULL);
	line_has(out, "Indicator", "2026-03", "2026-02", "Change", NULL);
	line_has(out, "Digital take-up", "46.6%", "20.0%", "+26.6 pp", NULL);
	line_has(out, "Self-service rate", "43.3%", "20.0%", "+23.3 pp",
	    NULL);
	line_has(out, "Completion rate", "91.4%", "98.0%", "-6.6 pp", NULL);
	line_has(out, "Mean time, digital", "2 min 00 s", "2 min 30 s",
	    "-30 s", NULL);
	line_has(out, "Mean time, manual", "11 min 53 s", "15 min 00 s",
	    "-3 min 07 s", NULL);
	line_has(out, "Digital transactions", "1,400", "200", "+1,200", NULL);
	line_has(out, "Manual transactions", "1,889", "820", "+1,069", NULL);
	line_has(out, "Assisted transactions", "100", "0", "+100", NULL);
	line_has(out, "Completed transactions", "3,005", "1,000", "+2,005",
	    NULL);
	assert_true(widest(out) <= 100);
	free(out);
}

static void
services_come_most_manual_first_with_their_change(void **state)
{
	char *out = malloc(OUTLEN);
	const char *evil, *akta;

	(void)state;
	assert_int_equal(report(out, "--month", "2026-03", NULL, NULL, NULL,
	    NULL), 0);
	/* evil: manual 1,234, digital 1,000, take-up and self-service
	   1,000 / 2,000, completion 2,000 / 2,234; no February. */
	line_has(out, EVIL_NAME, "1,234", "1,000", "50.0%", "89.5%",
	    "\xe2\x80\x94", NULL);
	/* akta-lahir: manual 655, digital 400, take-up 400 / 1,005 = 39.8%,
	   self-service 300 / 1,005 = 29.9%, completion 1,005 / 1,055 =
	   95.3%; February 20.0%, so +19.8. */
	line_has(out, "Penerbitan Akta Kelahiran", "655", "400", "39.8%",
	    "29.9%", "95.3%", "+19.8", NULL);
	evil = strstr(out, EVIL_NAME);
	akta = strstr(out, "Penerbitan Akta Kelahiran");
	assert_non_null(evil);
	assert_non_null(akta);
	assert_true(evil < akta);
	free(out);
}

static void
kecamatan_come_lowest_take_up_first(void **state)
{
	char *out = malloc(OUTLEN);
	const char *above, *sukasari, *coblong;

	(void)state;
	assert_int_equal(report(out, "--month", "2026-03", NULL, NULL, NULL,
	    NULL), 0);
	/* Sukasari takes its kelurahan 32.73.01.1001 too: manual 650,
	   digital 400, take-up 400 / 1,000, completion 1,000 / 1,050. */
	line_has(out, "Sukasari (32.73.01)", "650", "400", "40.0%", "30.0%",
	    "95.2%", "+20.0", NULL);
	line_has(out, "Coblong (32.73.02)", "1,234", "1,000", "50.0%",
	    "\xe2\x80\x94", NULL);
	/* The 5 events sent for the city as a whole. */
	line_has(out, "(above kecamatan level)", "5", "0.0%", "100.0%", NULL);
	above = strstr(out, "(above kecamatan level)");
	sukasari = strstr(out, "Sukasari (32.73.01)");
	coblong = strstr(out, "Coblong (32.73.02)");
	assert_true(above < sukasari && sukasari < coblong);
	free(out);
}

static void
region_filter_takes_the_region_and_what_is_under_it(void **state)
{
	char *out = malloc(OUTLEN);

	(void)state;
	assert_int_equal(report(out, "--month", "2026-03", "--region",
	    "32.73.01", NULL, NULL), 0);
	line_has(out, "kanal report for 2026-03", "Sukasari (32.73.01)", NULL);
	line_has(out, "Digital take-up", "40.0%", "20.0%", "+20.0 pp", NULL);
	line_has(out, "Manual transactions", "650", "820", "-170", NULL);
	assert_null(strstr(out, EVIL_NAME));
	assert_null(strstr(out, "Coblong"));

	/* The city code is the whole city: the same totals as no filter. */
	assert_int_equal(report(out, "--month", "2026-03", "--region",
	    "32.73", NULL, NULL), 0);
	line_has(out, "kanal report for 2026-03", "Kota Bandung (32.73)",
	    NULL);
	line_has(out, "Digital take-up", "46.6%", "+26.6 pp", NULL);
	free(out);
}

static void
month_without_a_previous_one_shows_dashes(void **state)
{
	char *out = malloc(OUTLEN);

	(void)state;
	assert_int_equal(report(out, "--month", "2026-02", NULL, NULL, NULL,
	    NULL), 0);
	line_has(out, "Digital take-up", "20.0%", "\xe2\x80\x94", NULL);
	line_has(out, "Completion rate", "98.0%", NULL);
	line_has(out, "Manual transactions", "820", NULL);
	free(out);
}

static void
empty_month_says_so_and_exits_1_without_a_page(void **state)
{
	char *out = malloc(OUTLEN), html[600], cmd[1200];
	struct stat st;

	(void)state;
	snprintf(html, sizeof(html), "%s/empty.html", dir);
	assert_int_equal(report(out, "--month", "2025-01", "--html", html,
	    NULL, NULL), 1);
	assert_string_equal(out, "");
	assert_int_equal(stat(html, &st), -1);
	/* Coblong has nothing in February. */
	snprintf(cmd, sizeof(cmd), "'%s' report --pg '%s' --month 2026-02 "
	    "--region 32.73.02 2>&1", th_env("KANALCTL"), pg);
	{
		const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		assert_int_equal(th_run(out, OUTLEN, argv), 1);
	}
	assert_non_null(strstr(out, "no events in 2026-02 for Coblong "
	    "(32.73.02)"));
	free(out);
}

static void
bad_arguments_are_usage_errors(void **state)
{
	static const struct {
		const char *flag, *value;
	} cases[] = {
		{ "--month", "2026-13" },
		{ "--month", "2026-00" },
		{ "--month", "2026-3" },
		{ "--month", "26-03" },
		{ "--month", "2026/03" },
		{ "--month", "2026-03-01" },
		{ "--region", "32.7" },
		{ "--region", "32.73.01'" },
		{ "--region", "" },
	};
	char *out = malloc(OUTLEN);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = strcmp(cases[i].flag, "--month") == 0 ?
		    report(out, cases[i].flag, cases[i].value, NULL, NULL,
		    NULL, NULL) :
		    report(out, "--month", "2026-03", cases[i].flag,
		    cases[i].value, NULL, NULL);

		if (rc != 2)
			fail_msg("%s %s: exit %d, want 2", cases[i].flag,
			    cases[i].value, rc);
	}
	/* --month is required. */
	assert_int_equal(report(out, NULL, NULL, NULL, NULL, NULL, NULL), 2);
	free(out);
}

/* ------------------------------------------------------------- the page */

static void
html_page_is_self_contained_and_escapes_database_text(void **state)
{
	char *out = malloc(OUTLEN), html[600], *page;
	static const char *const forbidden[] = {
		"http:", "https:", "<script", "src=", "url(", "@import",
		"<link", "<img", "<iframe", EVIL_NAME,
	};
	int svgs = 0, titles = 0;

	(void)state;
	snprintf(html, sizeof(html), "%s/report.html", dir);
	assert_int_equal(report(out, "--month", "2026-03", "--html", html,
	    NULL, NULL), 0);
	page = read_all(html);
	assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (strstr(page, forbidden[i]) != NULL)
			fail_msg("the page holds \"%s\"", forbidden[i]);
	/* The name as text in the tables, the <title> of its bar, the desc. */
	assert_non_null(strstr(page, "Izin &lt;b&gt;&amp;&quot;x&quot;&lt;/b"
	    "&gt;"));
	for (const char *p = page; (p = strstr(p, "<svg ")) != NULL; p++) {
		svgs++;
		assert_non_null(strstr(p, "role=\"img\""));
	}
	for (const char *p = page; (p = strstr(p, "-title\">")) != NULL; p++)
		titles++;
	assert_int_equal(svgs, 3);
	assert_int_equal(titles, 3);
	assert_non_null(strstr(page, "<desc id=\"chart-kecamatan-desc\">"));
	assert_non_null(strstr(page, "<desc id=\"chart-trend-desc\">"));
	assert_non_null(strstr(page, "<desc id=\"chart-services-desc\">"));
	/* The numbers for screen readers, and the figures themselves. */
	assert_non_null(strstr(page, "<table class=\"sr-only\">"));
	assert_non_null(strstr(page, "<td>46.6%</td>"));
	assert_non_null(strstr(page, "<td>+26.6 pp</td>"));
	/* The trend: February and March, and nothing before (no data). */
	assert_non_null(strstr(page, "Digital take-up by month, 2026-02 to "
	    "2026-03"));
	/* No temporary file left beside it. */
	{
		DIR *d = opendir(dir);
		struct dirent *e;

		assert_non_null(d);
		while ((e = readdir(d)) != NULL)
			if (strstr(e->d_name, ".tmp") != NULL)
				fail_msg("left behind: %s/%s", dir, e->d_name);
		closedir(d);
	}
	free(page);
	free(out);
}

/* 1 when s is well-formed UTF-8 (no cut sequence, no stray byte). */
static int
utf8_ok(const unsigned char *s)
{
	while (*s != '\0') {
		int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 :
		    (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0)
			return 0;
		s++;
		while (n-- > 0)
			if ((*s++ & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

/*
 * A long name of two-byte characters is cut in the page's fixed-size
 * texts (the charts' descriptions, the table cells) and on the terminal:
 * never inside a character. A C1 control character (U+009B, a terminal's
 * CSI) never reaches the terminal. The name is put back afterwards.
 */
static void
long_multibyte_names_stay_whole_utf8(void **state)
{
	char *out = malloc(OUTLEN), html[600], name[1024], sql[1200];
	char *page;
	size_t n = 0;

	(void)state;
	assert_non_null(out);
	n += (size_t)snprintf(name + n, sizeof(name) - n, "ab\xc2\x9b");
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(name + n, sizeof(name) - n, "\xc3\xa9");
	snprintf(sql, sizeof(sql), "UPDATE kanal.service SET name = '%s' "
	    "WHERE code = 'test.evil'", name);
	th_exec(conn, sql);
	snprintf(html, sizeof(html), "%s/long.html", dir);
	assert_int_equal(report(out, "--month", "2026-03", "--html", html,
	    NULL, NULL), 0);
	page = read_all(html);
	assert_true(utf8_ok((const unsigned char *)page));
	assert_true(utf8_ok((const unsigned char *)out));
	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fail_msg("a C1 control character on the terminal");
	/* The name is there, cut or whole. */
	assert_non_null(strstr(page, "ab"));
	free(page);
	free(out);
	th_exec(conn, "UPDATE kanal.service SET name = 'Izin <b>&\"x\"</b>' "
	    "WHERE code = 'test.evil'");
}

static void
html_into_a_missing_directory_fails(void **state)
{
	char *out = malloc(OUTLEN), html[600];

	(void)state;
	snprintf(html, sizeof(html), "%s/no-such-dir/report.html", dir);
	assert_int_equal(report(out, "--month", "2026-03", "--html", html,
	    NULL, NULL), 1);
	free(out);
}

/*
 * --html naming something that is not a regular file (a pipe here; in
 * real use /dev/null or /dev/stdout) writes the page into it and leaves it
 * what it was: renaming a temporary file over /dev/null as root once made
 * it a regular file for the whole machine.
 */
static void
html_into_a_pipe_writes_through_it(void **state)
{
	char *out = malloc(OUTLEN), fifo[600], got[600];
	struct stat st;
	pid_t pid;
	int status = -1;

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/page.fifo", dir);
	snprintf(got, sizeof(got), "%s/page.from-fifo", dir);
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		/* The reader: everything that comes through, into a file. */
		int in = open(fifo, O_RDONLY), o;
		char buf[8192];
		ssize_t n;

		o = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in == -1 || o == -1)
			_exit(2);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(o, buf, (size_t)n) != n)
				_exit(3);
		_exit(n == 0 ? 0 : 4);
	}
	if (report(out, "--month", "2026-03", "--html", fifo, NULL, NULL) != 0 ||
	    lstat(fifo, &st) != 0 || !S_ISFIFO(st.st_mode)) {
		kill(pid, SIGKILL);	/* blocked in open: nothing came */
		waitpid(pid, NULL, 0);
		fail_msg("kanalctl report failed, or replaced the pipe %s", fifo);
	}
	for (int i = 0; i < 1000; i++) {	/* 10 s at most */
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		nanosleep(&ts, NULL);
	}
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("the reader of the pipe got no end of the page");
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	{
		char *page = read_all(got);

		assert_non_null(strstr(page, "</html>"));
		free(page);
	}
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(totals_match_hand_worked_figures_and_change),
		cmocka_unit_test(services_come_most_manual_first_with_their_change),
		cmocka_unit_test(kecamatan_come_lowest_take_up_first),
		cmocka_unit_test(region_filter_takes_the_region_and_what_is_under_it),
		cmocka_unit_test(month_without_a_previous_one_shows_dashes),
		cmocka_unit_test(empty_month_says_so_and_exits_1_without_a_page),
		cmocka_unit_test(bad_arguments_are_usage_errors),
		cmocka_unit_test(html_page_is_self_contained_and_escapes_database_text),
		cmocka_unit_test(long_multibyte_names_stay_whole_utf8),
		cmocka_unit_test(html_into_a_missing_directory_fails),
		cmocka_unit_test(html_into_a_pipe_writes_through_it),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
