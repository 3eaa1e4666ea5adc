/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: `kanalctl send --csv` and `--jsonl` against a real kanald and
 * PostgreSQL. Good rows are counted exactly, bad ones reported by line
 * (rejected here or by kanald) with exit 3; the same file sent again counts
 * nothing twice; standard input works, also as a pipe that is still being
 * written while kanald is stopped and started again (the batch waits and
 * is sent again); and docs/examples/csv-forward.sh maps its sample export.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static int
setup(void **state)
{
	*state = th_fixture_new("sendf", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/*
 * Starts argv with standard input from in_fd (-1: /dev/null) and standard
 * output and error into files out and err (NULL: the test's).
 */
static pid_t
spawn(const char *const argv[], int in_fd, const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = in_fd != -1 ? in_fd : open("/dev/null", O_RDONLY);

		dup2(fd, STDIN_FILENO);
		if (out != NULL) {
			fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(fd, STDOUT_FILENO);
		}
		if (err != NULL) {
			fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

struct child {
	pid_t pid;
	int status;
	int done;
};

static int
child_exited(void *arg)
{
	struct child *c = arg;

	if (waitpid(c->pid, &c->status, WNOHANG) == c->pid)
		c->done = 1;
	return c->done;
}

/* Waits (deadline) for the child; its exit status. */
static int
finish(pid_t pid, unsigned deadline_ms)
{
	struct child c = { pid, 0, 0 };

	if (!th_wait(child_exited, &c, deadline_ms)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("kanalctl send did not finish within %u ms",
		    deadline_ms);
	}
	return WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
}

/* The file's text into buf, cut to len - 1 bytes. */
static void
slurp(const char *path, char *buf, size_t len)
{
	char *text = th_read_file(path, NULL);

	snprintf(buf, len, "%s", text);
	free(text);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		fail_msg("%s: %s", path, strerror(errno));
}

/*
 * kanalctl send --url --token ARGS..., standard input from the file
 * stdin_path (NULL: none); its standard output into out. Exit status.
 */
static int
send_cmd(struct th_fixture *f, const char *stdin_path, char *out,
    size_t len, const char *const args[])
{
	const char *argv[32];
	char path[700];
	int n = 0, in = -1, rc;

	argv[n++] = th_env("KANALCTL");
	argv[n++] = "send";
	argv[n++] = "--url";
	argv[n++] = f->k.url;
	argv[n++] = "--token";
	argv[n++] = f->token;
	for (int i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (stdin_path != NULL && (in = open(stdin_path, O_RDONLY)) == -1)
		fail_msg("%s: %s", stdin_path, strerror(errno));
	snprintf(path, sizeof(path), "%s/send.out", f->dir);
	rc = finish(spawn(argv, in, path, NULL), 60000);
	if (in != -1)
		close(in);
	slurp(path, out, len);
	return rc;
}

#define assert_has(hay, needle) do {					\
	if (strstr((hay), (needle)) == NULL)				\
		fail_msg("\"%s\" not in:\n%s", (needle), (hay));	\
} while (0)

/* An RFC 3339 time ago_s seconds back, in UTC ("Z") or WIB ("+07:00"). */
static void
rfc3339(long ago_s, int wib, char *out, size_t len)
{
	time_t t = time(NULL) - ago_s + (wib ? 7 * 3600 : 0);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	strncat(out, wib ? "+07:00" : "Z", len - strlen(out) - 1);
}

static const char *const FAST_FLUSH[] = { "--flush-interval", "100ms", NULL };

#define SUM_EVENTS "SELECT coalesce(sum(events), 0) FROM kanal.usage_hourly"

/*
 * Sends one more event with the flag form and waits for the total to be
 * want: everything acknowledged before it is then in PostgreSQL too (the
 * WAL is flushed in order), so the total is final, not "not yet".
 */
static void
marker_then_total(struct th_fixture *f, int64_t want)
{
	char out[1024];
	const char *args[] = { "--service", "dukcapil.ikd", "--channel", "web",
	    "--region", "32.73.09", NULL };

	assert_int_equal(send_cmd(f, NULL, out, sizeof(out), args), 0);
	th_wait_count(f->conn, SUM_EVENTS, want);
	assert_int_equal(th_query_i64(f->conn, SUM_EVENTS), want);
}

/*
 * Good and bad rows: the good ones are counted exactly, each bad one is
 * reported by line, exit 3; sent again, nothing is counted twice.
 */
static void
test_csv_counts_good_rows_and_reports_bad_ones_by_line(void **state)
{
	struct th_fixture *f = *state;
	char csv[4096], path[700], out[8192], t[40], w[40];
	const char *args[] = { "--csv", path, "--batch-size", "3", NULL };

	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	rfc3339(3600, 0, t, sizeof(t));
	rfc3339(1800, 1, w, sizeof(w));
	snprintf(csv, sizeof(csv),
	    "occurred_at,Service_Code,CHANNEL,region_code,outcome,duration_ms,"
	    "assisted\r\n"
	    "%s,dukcapil.ktp-el,counter,32.73.01,completed,600000,no\r\n"
	    "%s,dukcapil.ktp-el,web,32.73.01,completed,120000,\r\n"
	    "%s,dukcapil.ktp-el,webb,32.73.01,,,\r\n"
	    "\"%s\",\"dukcapil.kartu-keluarga\",\"kiosk\",\"32.73.02\","
	    "\"abandoned\",\"\",\"yes\"\r\n"
	    "yesterday,dukcapil.ktp-el,web,32.73.01,,,\r\n"
	    "2020-01-01T00:00:00Z,dukcapil.ktp-el,web,32.73.01,,,\r\n"
	    "%s,bapenda.pbb,web,32.73.01,,,\r\n"
	    "%s,dukcapil.akta-lahir,phone,32.73.03,failed,30000,1\r\n"
	    "%s,dukcapil.akta-lahir,CHANNEL_PAPER,32.73.03,OUTCOME_COMPLETED,"
	    ",0\r\n", t, w, t, t, t, t, w);
	snprintf(path, sizeof(path), "%s/rows.csv", f->dir);
	write_file(path, csv);

	assert_int_equal(send_cmd(f, NULL, out, sizeof(out), args), 3);
	assert_has(out, "rows: 9  accepted: 5  rejected: 4 (2 here, 2 by "
	    "kanald)  batches: 3\n");
	assert_has(out, "line 4: channel: unknown channel \"webb\"");
	assert_has(out, "line 6: occurred_at: \"yesterday\" is neither");
	assert_has(out, "line 7: too_old: ");
	assert_has(out, "line 8: service_not_allowed: ");
	th_wait_count(f->conn, SUM_EVENTS, 5);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE assisted"), 2);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(duration_ms_sum) "
	    "FROM kanal.usage_hourly"), 750000);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE channel = 'paper' AND outcome = "
	    "'completed'"), 1);

	/* Again: every batch is a duplicate; the rows are not counted again. */
	assert_int_equal(send_cmd(f, NULL, out, sizeof(out), args), 3);
	assert_has(out, "accepted: 5  rejected: 4 (2 here, 2 by kanald)  "
	    "batches: 3 (3 sent before: counted then, not again)");
	marker_then_total(f, 6);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* Standard input, times in unix milliseconds; a bad header is exit 2. */
static void
test_csv_from_standard_input(void **state)
{
	struct th_fixture *f = *state;
	char csv[1024], path[700], out[4096];
	const char *args[] = { "--csv", "-", NULL };
	long long now = (long long)time(NULL) * 1000;

	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	snprintf(csv, sizeof(csv), "\xef\xbb\xbfservice_code,channel,"
	    "occurred_at,region_code\n"
	    "dukcapil.ktp-el,outreach,%lld,32.73.04\n"
	    "dukcapil.ktp-el,outreach,%lld,32.73.04\n"
	    "dukcapil.kia,chat,%lld,32.73.04\n", now - 1000, now - 2000,
	    now - 3000);
	snprintf(path, sizeof(path), "%s/stdin.csv", f->dir);
	write_file(path, csv);
	assert_int_equal(send_cmd(f, path, out, sizeof(out), args), 0);
	assert_has(out, "rows: 3  accepted: 3  rejected: 0");
	th_wait_count(f->conn, SUM_EVENTS, 3);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE channel = 'outreach'"), 2);

	/* A legacy export's own column: refused as a whole, nothing sent. */
	write_file(path, "tanggal,layanan\n01/11/2026,KTP\n");
	assert_int_equal(send_cmd(f, path, out, sizeof(out), args), 2);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, SUM_EVENTS), 3);
}

/*
 * The progress bar: drawn on standard error when it is a terminal (a
 * pseudo-terminal here), and nothing of it when it is a file.
 */
static void
test_progress_bar_only_on_a_terminal(void **state)
{
	struct th_fixture *f = *state;
	char csv[4096], path[700], errp[700], tty[8192], *text;
	const char *argv[] = { th_env("KANALCTL"), "send", "--url", NULL,
	    "--token", f->token, "--csv", path, "--batch-size", "2", NULL };
	long long now = (long long)time(NULL) * 1000;
	size_t n = 0;
	int m, pts;
	pid_t pid;

	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	argv[3] = f->k.url;
	n = (size_t)snprintf(csv, sizeof(csv), "service_code,channel,"
	    "occurred_at,region_code\n");
	for (int i = 0; i < 10; i++)
		n += (size_t)snprintf(csv + n, sizeof(csv) - n,
		    "dukcapil.kia,web,%lld,32.73.06\n", now - i);
	snprintf(path, sizeof(path), "%s/bar.csv", f->dir);
	write_file(path, csv);

	/* A file: no bar, no terminal control codes. */
	snprintf(errp, sizeof(errp), "%s/bar.err", f->dir);
	assert_int_equal(finish(spawn(argv, -1, "/dev/null", errp), 60000), 0);
	text = th_read_file(errp, NULL);
	assert_null(strstr(text, "\033["));
	assert_null(strstr(text, "%"));
	free(text);

	/* A terminal: the bar, at 100% and the row count at the end. */
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m == -1 || grantpt(m) == -1 || unlockpt(m) == -1)
		fail_msg("pseudo-terminal: %s", strerror(errno));
	pts = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (pts == -1)
		fail_msg("%s: %s", ptsname(m), strerror(errno));
	pid = fork();
	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(pts, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pts);
	assert_int_equal(finish(pid, 60000), 0);
	/* What it wrote waits in the terminal; then EIO: no writer left. */
	n = 0;
	for (;;) {
		ssize_t r = read(m, tty + n, sizeof(tty) - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || (n += (size_t)r) >= sizeof(tty) - 1)
			break;
	}
	close(m);
	tty[n] = '\0';
	assert_has(tty, "[########################] 100%  10 rows, 10 "
	    "accepted, 0 rejected");
	assert_has(tty, "\r\033[K");
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

static int
err_says_retrying(void *arg)
{
	char buf[8192];
	FILE *f = fopen(arg, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "trying again in") != NULL;
}

static void
write_all(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_msg("write to kanalctl: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

/*
 * A pipe into kanalctl: the first rows are sent and counted; kanald stops;
 * the next batch meets a refused connection and waits; kanald starts again
 * on the same port and WAL; the batch goes through; every row is counted
 * once and kanalctl exits 0.
 */
static void
test_csv_batch_waits_while_kanald_restarts(void **state)
{
	struct th_fixture *f = *state;
	char out[4096], outp[700], errp[700], row[256];
	const char *argv[] = { th_env("KANALCTL"), "send", "--url", NULL,
	    "--token", f->token, "--csv", "-", "--batch-size", "2",
	    "--retries", "100", "--retry-for", "60", NULL };
	long long now = (long long)time(NULL) * 1000;
	int pfd[2];
	pid_t pid;

	f->k.keep_port = 1;
	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	argv[3] = f->k.url;
	snprintf(outp, sizeof(outp), "%s/pipe.out", f->dir);
	snprintf(errp, sizeof(errp), "%s/pipe.err", f->dir);
	/* Close-on-exec: kanalctl must not hold the write end itself. */
	if (pipe2(pfd, O_CLOEXEC) == -1)
		fail_msg("pipe: %s", strerror(errno));
	pid = spawn(argv, pfd[0], outp, errp);
	close(pfd[0]);
	write_all(pfd[1], "service_code,channel,occurred_at,region_code\n");
	for (int i = 0; i < 4; i++) {
		snprintf(row, sizeof(row), "dukcapil.ktp-el,counter,%lld,"
		    "32.73.05\n", now - i);
		write_all(pfd[1], row);
	}
	/* Two batches of two: both in PostgreSQL before kanald stops. */
	th_wait_count(f->conn, SUM_EVENTS, 4);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(row, sizeof(row), "dukcapil.ktp-el,web,%lld,"
		    "32.73.05\n", now - i);
		write_all(pfd[1], row);
	}
	close(pfd[1]);
	if (!th_wait(err_says_retrying, errp, 20000))
		fail_msg("kanalctl did not retry while kanald was down");
	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	assert_int_equal(finish(pid, 60000), 0);
	slurp(outp, out, sizeof(out));
	assert_has(out, "rows: 7  accepted: 7  rejected: 0");
	th_wait_count(f->conn, SUM_EVENTS, 7);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE channel = 'web'"), 3);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/*
 * JSONL: good lines counted; a line that is not an object, one that is no
 * JSON, one kanald refuses for its type and one it rejects are reported by
 * line; sent again, nothing is counted twice.
 */
static void
test_jsonl_counts_good_lines_and_reports_bad_ones_by_line(void **state)
{
	struct th_fixture *f = *state;
	char jl[4096], path[700], out[8192];
	const char *args[] = { "--jsonl", path, "--batch-size", "4", NULL };
	long long now = (long long)time(NULL) * 1000;

	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	snprintf(jl, sizeof(jl),
	    "{\"serviceCode\":\"dukcapil.akta-lahir\",\"channel\":"
	    "\"CHANNEL_WEB\",\"occurredAtMs\":\"%lld\",\"regionCode\":"
	    "\"32.73.01\",\"outcome\":\"OUTCOME_COMPLETED\",\"durationMs\":"
	    "120000,\"assisted\":false}\n"
	    "\n"
	    "[1]\n"
	    "{\"serviceCode\":\"dukcapil.ktp-el\",\"channel\":"
	    "\"CHANNEL_COUNTER\",\"occurredAtMs\":%lld,\"regionCode\":"
	    "\"32.73.01\",\"assisted\":true,\"durationMs\":60000}\r\n"
	    "{\"serviceCode\":\"dukcapil.ktp-el\",\"channel\":\"CHANNEL_NOPE\","
	    "\"occurredAtMs\":%lld,\"regionCode\":\"32.73.01\"}\n"
	    "{\"serviceCode\":\"dukcapil.ktp-el\",\"channel\":\"CHANNEL_WEB\","
	    "\"occurredAtMs\":%lld,\"regionCode\":\"32.73.01\",\"assisted\":"
	    "{}}\n"
	    "{not json\n"
	    "{\"serviceCode\":\"dukcapil.kia\",\"channel\":\"CHANNEL_KIOSK\","
	    "\"occurredAtMs\":%lld,\"regionCode\":\"32.73.02\"}\n",
	    now - 1000, now - 2000, now - 3000, now - 4000, now - 5000);
	snprintf(path, sizeof(path), "%s/events.jsonl", f->dir);
	write_file(path, jl);

	assert_int_equal(send_cmd(f, NULL, out, sizeof(out), args), 3);
	assert_has(out, "rows: 7  accepted: 3  rejected: 4 (2 here, 2 by "
	    "kanald)  batches: 2\n");
	assert_has(out, "line 3: not a JSON object");
	assert_has(out, "line 5: channel_invalid: ");
	/* kanald's 400 for the batch named it; the rest went through. */
	assert_has(out, "line 6: ");
	assert_null(strstr(out, "events["));
	assert_has(out, "line 7: not JSON: ");
	th_wait_count(f->conn, SUM_EVENTS, 3);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE assisted AND channel = 'counter'"), 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(duration_ms_sum) "
	    "FROM kanal.usage_hourly"), 180000);

	assert_int_equal(send_cmd(f, NULL, out, sizeof(out), args), 3);
	assert_has(out, "accepted: 3");
	assert_has(out, "(2 sent before: counted then, not again)");
	marker_then_total(f, 4);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}


/*
 * docs/examples/csv-forward.sh maps the sample counter export and pipes it
 * to kanalctl; PostgreSQL holds what the export says, by service, channel,
 * outcome, help and duration, and the rows the script cannot map are
 * reported by their line in the export, not sent.
 */
static void
test_csv_forward_example_maps_the_sample_export(void **state)
{
	struct th_fixture *f = *state;
	char script[700], sample[700], outp[700], out[8192];
	char env_url[128], env_token[128], env_date[64];
	const char *argv[] = { "/bin/sh", script, sample, NULL };

	th_kanald_start(&f->k, f->db, f->sources, FAST_FLUSH);
	snprintf(script, sizeof(script), "%s/docs/examples/csv-forward.sh",
	    th_env("KANAL_SOURCE_DIR"));
	snprintf(sample, sizeof(sample), "%s/docs/examples/loket-export.csv",
	    th_env("KANAL_SOURCE_DIR"));
	/*
	 * The sample is dated November 2026: LOKET_DATE (the script's way to
	 * try it on another day, as its header says) dates every row
	 * yesterday, WIB, inside kanald's 7-day window.
	 */
	{
		time_t t = time(NULL) + 7 * 3600 - 24 * 3600;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(env_date, sizeof(env_date), "LOKET_DATE=%d/%m/%Y",
		    &tm);
	}
	putenv(env_date);
	snprintf(outp, sizeof(outp), "%s/forward.out", f->dir);
	snprintf(env_url, sizeof(env_url), "KANAL_URL=%s", f->k.url);
	snprintf(env_token, sizeof(env_token), "KANAL_TOKEN=%s", f->token);
	putenv(env_url);
	putenv(env_token);
	assert_int_equal(finish(spawn(argv, -1, outp, NULL), 60000), 3);
	unsetenv("KANAL_URL");
	unsetenv("KANAL_TOKEN");
	unsetenv("LOKET_DATE");
	slurp(outp, out, sizeof(out));
	assert_has(out, "rows: 40  accepted: 38  rejected: 2 (2 here, 0 by "
	    "kanald)");
	assert_has(out, "line 17: service_code: empty (required)");
	assert_has(out, "line 31: region_code: empty (required)");
	th_wait_count(f->conn, SUM_EVENTS, 38);
	/* The sample's own figures (10 KTP, 6 mobile unit, 6 left, ...). */
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.ktp-el'"), 10);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE channel = 'outreach'"), 6);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE channel = 'kiosk'"), 3);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE outcome = 'abandoned'"), 6);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE outcome = 'completed'"), 26);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE assisted"), 5);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(duration_ms_sum) "
	    "FROM kanal.usage_hourly"), 25980000);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(duration_events) "
	    "FROM kanal.usage_hourly"), 33);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_csv_counts_good_rows_and_reports_bad_ones_by_line,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_from_standard_input,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_csv_batch_waits_while_kanald_restarts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_csv_forward_example_maps_the_sample_export, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_progress_bar_only_on_a_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_jsonl_counts_good_lines_and_reports_bad_ones_by_line,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
