/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: the real kanald's connection cap and per-source rate limit.
 *
 *   max-connections  with the cap held by idle connections, one more is
 *                    accepted and closed without an answer while the
 *                    held ones are still served; once some close, a new
 *                    client is served; /metrics counts both.
 *   rate-limit       a source over its bucket gets 429 rate_limited with
 *                    Retry-After while another source is served; the
 *                    same batch passes once Retry-After has passed; a
 *                    batch larger than the bucket gets 413.
 *   open files       a cap the open-file limit cannot hold is lowered,
 *                    with a log line.
 *
 * Idle connections are raw sockets of the test's own (httpc would
 * reconnect by itself).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "httpc.h"

#define CAP 8

static int
setup(void **state)
{
	*state = th_fixture_new("limits", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/* ------------------------------------------------------------ helpers */

/*
 * GET path on fd (keep-alive); returns the status with the body in text,
 * or 0 when the connection was closed with no answer.
 */
static int
conn_get(int fd, const char *path, char *text, size_t textlen)
{
	static char buf[1 << 16];
	char req[256];
	size_t got = 0, want = 0;
	const char *end, *cl;
	ssize_t r;
	int n, status;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1"
	    "\r\n\r\n", path);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return 0;
	for (;;) {
		r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			fail_msg("no answer and no close within 10 s");
		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		want = (size_t)(end + 4 - buf) + (cl != NULL && cl < end ?
		    strtoul(cl + 17, NULL, 10) : 0);
		if (got >= want || got == sizeof(buf) - 1)
			break;
	}
	if (got == 0)
		return 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		fail_msg("not an HTTP answer: %.40s", buf);
	end = strstr(buf, "\r\n\r\n");
	snprintf(text, textlen, "%s", end != NULL ? end + 4 : "");
	return status;
}

static int
conn_healthz(int fd)
{
	char text[64];

	return conn_get(fd, "/healthz", text, sizeof(text));
}

/* A sample of /metrics asked on fd, adding no connection of its own. */
static long long
conn_metric(int fd, const char *series)
{
	static char text[1 << 16];
	char line[256];
	const char *p;

	if (conn_get(fd, "/metrics", text, sizeof(text)) != 200)
		fail_msg("GET /metrics on a held connection failed");
	snprintf(line, sizeof(line), "\n%s ", series);
	p = strstr(text, line);
	if (p == NULL)
		fail_msg("no series %s in /metrics", series);
	return strtoll(p + strlen(line), NULL, 10);
}

static int
healthz_served(void *arg)
{
	return th_http(arg, "GET", "/healthz", NULL, NULL, 0, NULL, 0) == 200;
}

/* ------------------------------------------------------- connection cap */

static void
test_connection_over_the_cap_is_closed_and_a_freed_slot_serves(void **state)
{
	struct th_fixture *f = *state;
	int held[CAP], extra;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--max-connections", "8", NULL });
	assert_int_equal(th_metric(&f->k, "kanal_http_connections_max"), CAP);
	/* Only the scrape itself open: the start-up probes are closed. */
	th_wait_metric(&f->k, "kanal_http_connections", 1);

	for (int i = 0; i < CAP; i++)
		held[i] = th_conn_open(&f->k);
	/* Accepted after the eight (the backlog is in order): refused. */
	extra = th_conn_open(&f->k);
	assert_int_equal(conn_healthz(extra), 0);
	close(extra);
	/* The held ones are served all the same. */
	assert_int_equal(conn_healthz(held[0]), 200);
	assert_int_equal(conn_healthz(held[CAP - 1]), 200);

	close(held[0]);
	close(held[1]);
	if (!th_wait(healthz_served, &f->k, 10000))
		fail_msg("no new client served within 10 s of two closes");
	/* Six held, and the scrape. */
	th_wait_metric(&f->k, "kanal_http_connections", CAP - 2 + 1);
	assert_true(th_metric(&f->k, "kanal_http_connections_refused_total")
	    >= 1);
	for (int i = 2; i < CAP; i++)
		close(held[i]);
	th_wait_metric(&f->k, "kanal_http_connections", 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

static int
all_held(void *arg)
{
	int *held = arg;

	return conn_metric(held[0], "kanal_http_connections") == 1024;
}

/*
 * DESIGN: at least 1,024 concurrent connections. With the defaults kanald
 * holds 1,024 idle ones (the open-file limit raised as needed) and
 * closes the 1,025th at once. The count is read on a held connection,
 * so that the scrape adds none.
 */
static void
test_default_cap_holds_1024_idle_connections(void **state)
{
	struct th_fixture *f = *state;
	struct rlimit rl;
	static int held[1024];
	int extra;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_max < 1200)
		skip();
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	th_kanald_start(&f->k, f->db, f->sources, NULL);
	th_wait_metric(&f->k, "kanal_http_connections", 1);
	for (int i = 0; i < 1024; i++)
		held[i] = th_conn_open(&f->k);
	assert_int_equal(conn_metric(held[0],
	    "kanal_http_connections_max"), 1024);
	/* Every connect() has returned; kanald may still be accepting. */
	if (!th_wait(all_held, held, 10000))
		fail_msg("kanald holds %lld connections after 10 s, want 1024",
		    conn_metric(held[0], "kanal_http_connections"));
	extra = th_conn_open(&f->k);
	assert_int_equal(conn_healthz(extra), 0);
	close(extra);
	assert_int_equal(conn_healthz(held[1023]), 200);
	assert_int_equal(conn_metric(held[0],
	    "kanal_http_connections_refused_total"), 1);
	for (int i = 0; i < 1024; i++)
		close(held[i]);
	th_wait_metric(&f->k, "kanal_http_connections", 1);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* ------------------------------------------------------------ rate limit */

/*
 * POSTs a batch of n events on a connection of its own; returns the
 * status, with Retry-After in retry_after and the body in text.
 */
static int
post(struct th_kanald *k, const char *token, const char *batch_id,
    unsigned n, char retry_after[16], char *text, size_t textlen)
{
	struct httpc_response r;
	struct httpc *c;
	uint8_t body[8192];
	char hdr[256], err[256];
	size_t len = th_pack_batch(batch_id, "dukcapil.kia", n, body,
	    sizeof(body));
	int status;

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n", token);
	c = httpc_new(k->url, 10000, err, sizeof(err));
	if (c == NULL)
		fail_msg("httpc: %s", err);
	if (httpc_request(c, "POST", "/v1/events", hdr, body, len, &r, err,
	    sizeof(err)) == -1)
		fail_msg("POST: %s", err);
	status = r.status;
	snprintf(retry_after, 16, "%s", r.retry_after);
	snprintf(text, textlen, "%.*s", (int)r.len, r.body);
	httpc_free(c);
	return status;
}

struct retry_wait {
	struct th_kanald *k;
	const char *token;
};

static int
batch_passes(void *arg)
{
	struct retry_wait *w = arg;
	char ra[16], text[512];

	return post(w->k, w->token, "reg-2", 5, ra, text, sizeof(text)) == 200;
}

static void
test_source_over_its_rate_gets_429_while_another_is_served(void **state)
{
	struct th_fixture *f = *state;
	char tax_token[65], tax_sources[600], line[1024], ra[16], text[512];
	struct retry_wait w;
	FILE *in, *out;
	int retry;

	/* A second source, added to the fixture's sources file. */
	th_make_source(f->dir, "tax", "dukcapil.*", tax_token, tax_sources,
	    sizeof(tax_sources));
	in = fopen(tax_sources, "r");
	out = fopen(f->sources, "a");
	assert_non_null(in);
	assert_non_null(out);
	while (fgets(line, sizeof(line), in) != NULL)
		fputs(line, out);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	/* 1 event/s, 20 at once: 5 more take 5 s to come back. */
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--rate-limit", "1", "--rate-limit-burst", "20",
	    "--flush-interval", "100ms", NULL });

	assert_int_equal(post(&f->k, f->token, "reg-1", 20, ra, text,
	    sizeof(text)), 200);
	assert_int_equal(post(&f->k, f->token, "reg-2", 5, ra, text,
	    sizeof(text)), 429);
	if (strncmp(text, "rate_limited: ", 14) != 0)
		fail_msg("429 body \"%s\" is not \"rate_limited: ...\"", text);
	retry = atoi(ra);
	if (retry < 1 || retry > 5)
		fail_msg("Retry-After \"%s\", want 1 to 5 seconds", ra);
	/* The other source has a bucket of its own. */
	assert_int_equal(post(&f->k, tax_token, "tax-1", 20, ra, text,
	    sizeof(text)), 200);
	/* More than the bucket holds can never pass: 413, and why. */
	assert_int_equal(post(&f->k, tax_token, "tax-2", 21, ra, text,
	    sizeof(text)), 413);
	if (strncmp(text, "batch_over_burst: ", 18) != 0)
		fail_msg("413 body \"%s\"", text);
	/* The refused batch passes once its tokens are back. */
	w.k = &f->k;
	w.token = f->token;
	if (!th_wait(batch_passes, &w, 15000))
		fail_msg("the rate-limited batch never passed in 15 s");
	assert_true(th_metric(&f->k, "kanal_batches_total{result=\"rate_limited\"}")
	    >= 1);
	assert_int_equal(th_metric(&f->k,
	    "kanal_batches_total{result=\"client_error\"}"), 1);
	assert_int_equal(th_log_count(&f->k, "source over its rate limit"),
	    1);
	/* Counted: 20 + 20 + 5, nothing of the refused ones. */
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly",
	    45);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* ------------------------------------------------------------ open files */

/*
 * Last in the file: it lowers the test process's own hard limit, which
 * can't be raised again, so that kanald inherits it.
 */
static void
test_cap_over_the_open_file_limit_is_lowered(void **state)
{
	struct th_fixture *f = *state;
	struct rlimit rl = { 300, 300 };

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--max-connections", "1024", NULL });
	th_wait_log(&f->k, "max-connections lowered to fit the open-file "
	    "limit", 1);
	/* 300 files, 192 kept for the rest (HTTPD_FD_RESERVE). */
	assert_int_equal(th_metric(&f->k, "kanal_http_connections_max"), 108);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_connection_over_the_cap_is_closed_and_a_freed_slot_serves,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_default_cap_holds_1024_idle_connections, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_source_over_its_rate_gets_429_while_another_is_served,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cap_over_the_open_file_limit_is_lowered, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
