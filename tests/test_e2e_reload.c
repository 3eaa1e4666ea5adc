/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: SIGHUP re-reads the sources file and the log level of the
 * real kanald, without dropping connections or held counts, and a bad new
 * sources file keeps the old one and says why.
 *
 * The keep-alive connection is a raw socket of the test's own, not httpc
 * (which would silently reconnect): a request answered on it after the
 * reload proves kanald kept the connection open through the reload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "kanal/v1/events.pb-c.h"

struct fixture {
	char db[64];
	char dir[512];
	char sources[600];	/* the file kanald reads */
	char conf[600];		/* its config file (-c) */
	char token_a[65], token_b[65];
	char line_a[1024], line_b[1024];	/* their sources lines */
	PGconn *conn;
	int64_t want_events;	/* for wait_events */
	struct th_kanald k;
};

/* ------------------------------------------------------------ files */

static void
read_text(const char *path, char *out, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	n = fread(out, 1, len - 1, fp);
	out[n] = '\0';
	fclose(fp);
}

/* Replaces path whole (write a new file, rename), as an operator would. */
static void
write_text(const char *path, const char *text)
{
	char tmp[700];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fp = fopen(tmp, "w");
	if (fp == NULL)
		fail_msg("%s: %s", tmp, strerror(errno));
	fputs(text, fp);
	if (fclose(fp) != 0 || rename(tmp, path) == -1)
		fail_msg("%s: %s", path, strerror(errno));
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[600];

	th_db_create("reload", f->db, sizeof(f->db));
	th_tmpdir("reload", f->dir, sizeof(f->dir));
	th_make_source(f->dir, "registry", "dukcapil.*", f->token_a, path,
	    sizeof(path));
	read_text(path, f->line_a, sizeof(f->line_a));
	th_make_source(f->dir, "tax", "bapenda.pbb", f->token_b, path,
	    sizeof(path));
	read_text(path, f->line_b, sizeof(f->line_b));
	snprintf(f->sources, sizeof(f->sources), "%s/sources.conf", f->dir);
	write_text(f->sources, f->line_a);
	snprintf(f->conf, sizeof(f->conf), "%s/kanald.conf", f->dir);
	write_text(f->conf, "log-level = info\n");
	f->conn = th_pg_connect(f->db);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->k.pid > 0)
		th_kanald_stop(&f->k, SIGKILL);
	PQfinish(f->conn);
	th_db_drop(f->db);
	free(f);
	return 0;
}

static int
events_are(void *arg)
{
	struct fixture *f = arg;

	return th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly") == f->want_events;
}

/* Waits (deadline) until PostgreSQL holds want events in all. */
static void
wait_events(struct fixture *f, int64_t want)
{
	f->want_events = want;
	if (!th_wait(events_are, f, 15000))
		fail_msg("waited 15 s for %lld events in PostgreSQL",
		    (long long)want);
}

static void
reload(struct fixture *f)
{
	if (kill(f->k.pid, SIGHUP) == -1)
		fail_msg("kill SIGHUP: %s", strerror(errno));
}

/* ------------------------------------------------------------ raw HTTP */

static int
local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		fail_msg("getsockname: %s", strerror(errno));
	return ntohs(sa.sin_port);
}

/*
 * POSTs a batch of n events of service on fd; returns the HTTP status and
 * the accepted count (-1 unless 200). Fails the test if the connection
 * was closed: the point is that it stays open.
 */
static int
post(int fd, const char *token, const char *service, unsigned n,
    int *accepted)
{
	static unsigned seq;
	Kanal__V1__BatchAck *ack;
	char bid[64], head[1024], resp[8192];
	uint8_t body[4096];
	size_t len, got = 0, want;
	const char *end, *cl;
	int status, w;

	snprintf(bid, sizeof(bid), "reload-%ld-%u", (long)getpid(), ++seq);
	len = th_pack_batch(bid, service, n, body, sizeof(body));
	w = snprintf(head, sizeof(head), "POST /v1/events HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n"
	    "Content-Length: %zu\r\n\r\n", token, len);
	if (send(fd, head, (size_t)w, MSG_NOSIGNAL) != w ||
	    send(fd, body, len, MSG_NOSIGNAL) != (ssize_t)len)
		fail_msg("the keep-alive connection was closed: send: %s",
		    strerror(errno));
	for (;;) {
		ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
		if (r <= 0)
			fail_msg("the keep-alive connection was closed or timed "
			    "out before an answer: %s", r == 0 ? "EOF" :
			    strerror(errno));
		got += (size_t)r;
		resp[got] = '\0';
		end = strstr(resp, "\r\n\r\n");
		if (end == NULL)
			continue;
		cl = strcasestr(resp, "\r\nContent-Length:");
		want = (size_t)(end + 4 - resp) +
		    (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		if (got >= want)
			break;
	}
	if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
		fail_msg("not an HTTP answer: %.40s", resp);
	/* kanald must not be about to close it either. */
	cl = strcasestr(resp, "\r\nConnection: close");
	if (cl != NULL && cl < end)
		fail_msg("kanald answered with Connection: close");
	*accepted = -1;
	if (status == 200) {
		ack = kanal__v1__batch_ack__unpack(NULL, got - (size_t)(end +
		    4 - resp), (const uint8_t *)end + 4);
		assert_non_null(ack);
		*accepted = (int)ack->accepted;
		kanal__v1__batch_ack__free_unpacked(ack, NULL);
	}
	return status;
}

/* One request on a connection of its own. */
static int
post_new_conn(struct fixture *f, const char *token, const char *service,
    unsigned n, int *accepted)
{
	int fd = th_conn_open(&f->k);
	int status = post(fd, token, service, n, accepted);

	close(fd);
	return status;
}

/* ------------------------------------------------------------ tests */

/*
 * A new source added by SIGHUP is served at once; a connection opened
 * before the reload still carries requests after it, and counts held in
 * memory (flush-interval 1h) reach PostgreSQL at the stop, none lost.
 */
static void
test_reload_adds_a_source_keeping_connections_and_held_counts(void **state)
{
	struct fixture *f = *state;
	char text[4096];
	int fd, port, acc;

	write_text(f->conf, "log-level = info\nflush-interval = 1h\n");
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "-c", f->conf, NULL });
	/*
	 * The first flush runs at once on first contact with the database;
	 * after it the next is an hour away, so what is sent from here on
	 * is held in memory until the stop.
	 */
	th_wait_log(&f->k, "write-ahead log replayed", 1);
	fd = th_conn_open(&f->k);
	port = local_port(fd);
	assert_int_equal(post(fd, f->token_a, "dukcapil.akta-lahir", 3, &acc),
	    200);
	assert_int_equal(acc, 3);
	/* Not yet a source. */
	assert_int_equal(post_new_conn(f, f->token_b, "bapenda.pbb", 1, &acc),
	    401);

	snprintf(text, sizeof(text), "%s%s", f->line_a, f->line_b);
	write_text(f->sources, text);
	reload(f);
	th_wait_log(&f->k, "reloaded: sources=2", 1);

	assert_int_equal(post_new_conn(f, f->token_b, "bapenda.pbb", 2, &acc),
	    200);
	assert_int_equal(acc, 2);
	/* The same socket, the same local port: the connection survived. */
	assert_int_equal(post(fd, f->token_a, "dukcapil.ktp-el", 4, &acc),
	    200);
	assert_int_equal(acc, 4);
	assert_int_equal(local_port(fd), port);
	close(fd);

	/*
	 * What was sent after the reload is still held in memory (and,
	 * unless that first flush caught it, the first batch too)...
	 */
	assert_true(th_query_i64(f->conn, "SELECT coalesce(sum(events), 0) "
	    "FROM kanal.usage_hourly") <= 3);
	/* ...and all of it is written at the stop. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 9);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly WHERE service_code = 'bapenda.pbb'"), 2);
}

/*
 * A sources file with a bad line, or none at all, keeps the old sources:
 * the log names the file and line and says the old ones are kept, and
 * the old tokens go on working on old and new connections. A good file
 * afterwards is taken.
 */
static void
test_bad_sources_file_keeps_the_old_one_and_says_why(void **state)
{
	struct fixture *f = *state;
	char text[4096], want[700];
	int fd, acc;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "-c", f->conf, "--flush-interval", "1h", NULL });
	fd = th_conn_open(&f->k);
	assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 1, &acc), 200);

	/* Line 2: a digest that is not one. */
	snprintf(text, sizeof(text), "%stax sha256:zz bapenda.pbb\n",
	    f->line_a);
	write_text(f->sources, text);
	reload(f);
	th_wait_log(&f->k, "reload failed, keeping the old sources", 1);
	snprintf(want, sizeof(want), "%s:2: second field must be sha256:",
	    f->sources);
	assert_int_equal(th_log_count(&f->k, want), 1);
	assert_int_equal(th_log_count(&f->k, "reloaded:"), 0);
	assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 2, &acc), 200);
	assert_int_equal(acc, 2);
	assert_int_equal(post_new_conn(f, f->token_a, "dukcapil.kia", 3, &acc),
	    200);

	/* No file at all. */
	assert_int_equal(unlink(f->sources), 0);
	reload(f);
	th_wait_log(&f->k, "reload failed, keeping the old sources", 2);
	snprintf(want, sizeof(want), "%s: cannot open sources file",
	    f->sources);
	assert_int_equal(th_log_count(&f->k, want), 1);
	assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 4, &acc), 200);

	/* A good file again is taken. */
	snprintf(text, sizeof(text), "%s%s", f->line_a, f->line_b);
	write_text(f->sources, text);
	reload(f);
	th_wait_log(&f->k, "reloaded: sources=2", 1);
	assert_int_equal(post(fd, f->token_b, "bapenda.pbb", 5, &acc), 200);
	assert_int_equal(acc, 5);
	close(fd);

	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 15);
}

/*
 * The log level comes from the config file again on SIGHUP: debug lines
 * ("flushed: ...") appear only after the level is raised; a bad level in
 * the file is reported and changes nothing.
 */
static void
test_reload_changes_the_log_level(void **state)
{
	struct fixture *f = *state;
	char want[700];
	int fd, acc;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "-c", f->conf, "--flush-interval", "100ms", NULL });
	fd = th_conn_open(&f->k);
	assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 1, &acc), 200);
	/* Flushed, and nothing said about it at level info. */
	wait_events(f, 1);
	assert_int_equal(th_log_count(&f->k, "flushed:"), 0);

	write_text(f->conf, "log-level = debug\n");
	reload(f);
	th_wait_log(&f->k, "reloaded:", 1);
	assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 2, &acc), 200);
	th_wait_log(&f->k, "flushed:", 1);

	/* A level that does not exist: said where, and debug stays. */
	write_text(f->conf, "log-level = loud\n");
	reload(f);
	th_wait_log(&f->k, "reloaded:", 2);
	snprintf(want, sizeof(want), "%s:1: log-level", f->conf);
	assert_int_equal(th_log_count(&f->k, want), 1);
	{
		int before = th_log_count(&f->k, "flushed:");
		assert_int_equal(post(fd, f->token_a, "dukcapil.kia", 3, &acc),
		    200);
		th_wait_log(&f->k, "flushed:", before + 1);
	}
	close(fd);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, "SELECT sum(events) FROM "
	    "kanal.usage_hourly"), 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_reload_adds_a_source_keeping_connections_and_held_counts,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_sources_file_keeps_the_old_one_and_says_why,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reload_changes_the_log_level, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
