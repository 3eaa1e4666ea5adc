/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: the client examples of docs/integration.md
 * (docs/examples/send.c, built as $KANAL_EXAMPLE_SEND, and
 * docs/examples/send.py with code from protoc --python_out made here)
 * against a real kanald, their counts read back from PostgreSQL. A
 * resent batch_id must be answered duplicate and add nothing; a batch
 * sent while kanald is down must be retried until it serves; a refused
 * batch must not be retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* What the C example sends, as usage_hourly rows, in key order. */
#define C_EXAMPLE_ROWS \
	"counter completed f 1 1500000|kiosk abandoned f 1 0|" \
	"mobile_app completed t 1 360000|web completed f 1 240000"

#define ROWS_SQL \
	"SELECT string_agg(format('%s %s %s %s %s', channel, outcome, " \
	"  CASE WHEN assisted THEN 't' ELSE 'f' END, events, duration_ms_sum)," \
	"  '|' ORDER BY channel, outcome, assisted) FROM kanal.usage_hourly"

/* An example still running when a test fails is killed in teardown. */
static pid_t example_pid = -1;

static int
setup(void **state)
{
	*state = th_fixture_new("examples",
	    "dukcapil.*,dpmptsp.izin-usaha,bapenda.pbb");
	return 0;
}

static int
teardown(void **state)
{
	if (example_pid > 0) {
		kill(example_pid, SIGKILL);
		waitpid(example_pid, NULL, 0);
		example_pid = -1;
	}
	th_fixture_free(*state);
	return 0;
}

static void
events_url(const struct th_fixture *f, char *url, size_t len)
{
	snprintf(url, len, "%s/v1/events", f->k.url);
}

/*
 * Starts argv with stdout and stderr into path (made before the fork, so
 * it exists when this returns); returns the pid.
 */
static pid_t
spawn(const char *const argv[], const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	pid_t pid;

	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	pid = fork();
	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

struct child {
	pid_t pid;
	int status;
};

static int
child_exited(void *arg)
{
	struct child *c = arg;

	return waitpid(c->pid, &c->status, WNOHANG) == c->pid;
}

/* Waits (deadline) for pid; returns its exit status. */
static int
wait_child(pid_t pid, unsigned deadline_ms)
{
	struct child c = { pid, 0 };

	if (!th_wait(child_exited, &c, deadline_ms)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("child %d did not exit within %u ms", (int)pid,
		    deadline_ms);
	}
	return WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
}

static void
assert_contains(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("\"%s\" not in output:\n%s", needle, text);
}

/*
 * The C example's batch is counted once, its bad event is rejected with
 * the NIK code, and sending the same batch_id again adds nothing.
 */
static void
test_c_example_counts_once(void **state)
{
	struct th_fixture *f = *state;
	char url[128], out[4096];

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	setenv("KANAL_TOKEN", f->token, 1);
	events_url(f, url, sizeof(url));
	{
		const char *argv[] = { th_env("KANAL_EXAMPLE_SEND"), "-b",
		    "c-example-1", "-x", url, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
		assert_contains(out, "batch c-example-1: accepted=4 rejected=1\n");
		assert_contains(out, "event 4: REJECT_REASON_CITIZEN_REF_NIK: ");
		assert_null(strstr(out, "duplicate"));

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
		assert_contains(out, "batch c-example-1: accepted=4 rejected=1 "
		    "duplicate");
	}
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 4);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	th_query_text(f->conn, ROWS_SQL, out, sizeof(out));
	assert_string_equal(out, C_EXAMPLE_ROWS);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(DISTINCT "
	    "region_code) FROM kanal.usage_hourly"), 3);
}

/*
 * Sent while kanald is down, the C example retries the same batch until
 * kanald serves again on its address; the batch is then counted once.
 */
static void
test_c_example_retries_until_served(void **state)
{
	struct th_fixture *f = *state;
	char url[128], listen[64], pg[128];
	struct th_kanald ex = { 0 };	/* only its .log: the example's output */
	pid_t pid;

	th_kanald_start(&f->k, f->db, f->sources, NULL);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	setenv("KANAL_TOKEN", f->token, 1);
	events_url(f, url, sizeof(url));
	if (snprintf(ex.log, sizeof(ex.log), "%s/example-retry.log", f->dir)
	    >= (int)sizeof(ex.log))
		fail_msg("scratch directory name too long: %s", f->dir);
	{
		const char *argv[] = { th_env("KANAL_EXAMPLE_SEND"), "-a", "10",
		    "-b", "c-example-retry", url, NULL };

		pid = example_pid = spawn(argv, ex.log);
	}
	/* th_wait_log reads whatever file .log names: here the example's. */
	th_wait_log(&ex, "attempt 1: no answer from 127.0.0.1", 1);

	/*
	 * The harness would pick a new port; the example keeps its URL, so
	 * kanald comes back by hand on the old one, with the old WAL.
	 */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->k.port);
	snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest", f->db);
	{
		const char *argv[] = { th_env("KANALD"), "--listen", listen,
		    "--sources", f->sources, "--wal-dir", f->k.wal_dir, "--pg",
		    pg, "--flush-interval", "100ms", NULL };

		f->k.pid = spawn(argv, f->k.log);
	}
	assert_int_equal(wait_child(pid, 90000), 0);
	example_pid = -1;
	assert_int_equal(th_log_count(&ex,
	    "batch c-example-retry: accepted=4 rejected=0\n"), 1);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 4);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 4);
}

/* A 401 is final: the example gives up at once and nothing is counted. */
static void
test_c_example_refused_not_retried(void **state)
{
	struct th_fixture *f = *state;
	char url[128];
	struct th_kanald ex = { 0 };	/* only its .log: the example's output */
	pid_t pid;

	th_kanald_start(&f->k, f->db, f->sources, NULL);
	setenv("KANAL_TOKEN", "not-a-token-of-this-kanald", 1);
	events_url(f, url, sizeof(url));
	if (snprintf(ex.log, sizeof(ex.log), "%s/example-refused.log",
	    f->dir) >= (int)sizeof(ex.log))
		fail_msg("scratch directory name too long: %s", f->dir);
	{
		const char *argv[] = { th_env("KANAL_EXAMPLE_SEND"), url, NULL };

		pid = example_pid = spawn(argv, ex.log);
	}
	assert_int_equal(wait_child(pid, 30000), 1);
	example_pid = -1;
	assert_int_equal(th_log_count(&ex,
	    "refused: HTTP 401 token_unknown: "), 1);
	assert_int_equal(th_log_count(&ex, "attempt"), 0);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);
}

/*
 * The Python example, with code generated by protoc --python_out as the
 * guide says: counted once, its bad event rejected, a resend duplicate.
 */
static void
test_python_example_counts_once(void **state)
{
	struct th_fixture *f = *state;
	char url[128], gen[600], script[600], proto[600], out[4096];
	const char *py = getenv("KANAL_PYTHON");
	const char *src = th_env("KANAL_SOURCE_DIR");

	if (py == NULL || py[0] == '\0')
		py = "/usr/bin/python3";
	snprintf(gen, sizeof(gen), "%s/gen", f->dir);
	snprintf(proto, sizeof(proto), "%s/proto", src);
	snprintf(script, sizeof(script), "%s/docs/examples/send.py", src);
	{
		char outarg[700], inc[700], file[700];
		const char *argv[] = { "/usr/bin/protoc", inc, outarg, file,
		    NULL };

		if (mkdir(gen, 0755) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", gen, strerror(errno));
		snprintf(inc, sizeof(inc), "-I%s", proto);
		snprintf(outarg, sizeof(outarg), "--python_out=%s", gen);
		snprintf(file, sizeof(file), "%s/kanal/v1/events.proto", proto);
		assert_int_equal(th_run(NULL, 0, argv), 0);
	}
	setenv("PYTHONPATH", gen, 1);
	setenv("KANAL_TOKEN", f->token, 1);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "100ms", NULL });
	events_url(f, url, sizeof(url));
	{
		const char *argv[] = { py, script, "--batch-id", "py-example-1",
		    "--with-bad-event", url, NULL };

		assert_int_equal(th_run(out, sizeof(out), argv), 0);
		assert_contains(out, "batch py-example-1: accepted=4 rejected=1\n");
		assert_contains(out,
		    "event 4: REJECT_REASON_REGION_CODE_INVALID: ");
		assert_int_equal(th_run(out, sizeof(out), argv), 0);
		assert_contains(out, "batch py-example-1: accepted=4 rejected=1 "
		    "duplicate");
	}
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly", 4);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	th_query_text(f->conn, ROWS_SQL, out, sizeof(out));
	assert_string_equal(out, "counter completed t 1 2400000|"
	    "partner completed f 1 0|partner failed f 1 0|"
	    "web completed f 1 720000");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_c_example_counts_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_c_example_retries_until_served, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_c_example_refused_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_python_example_counts_once,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
