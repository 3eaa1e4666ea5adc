/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durability invariants of DESIGN.md, each against the real kanald,
 * its real write-ahead log on disk and a real PostgreSQL:
 *
 *  1. an acknowledged event is counted exactly once: across kill -9
 *     before and after a flush, and when the connection drops during
 *     COMMIT (a TCP proxy cuts it right after the server committed, or
 *     right before) so that the outcome is unknown to kanald;
 *  2. a retried batch is answered again and not counted again, across a
 *     restart and after its WAL segment was removed;
 *  3. a full WAL answers 503 with Retry-After, never a silent drop, and
 *     takes batches again once PostgreSQL catches up;
 *  7. several instances writing the same keys add up.
 * (8, no database at start, is in test_e2e_kanald.)
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"
#include "httpc.h"

static int
setup(void **state)
{
	*state = th_fixture_new("dur", "dukcapil.*");
	return 0;
}

static int
teardown(void **state)
{
	th_fixture_free(*state);
	return 0;
}

/*
 * POSTs one batch of n events (all one key) with this batch_id; returns
 * the HTTP status (0: no answer) and fills the ack counts, or for an
 * error the reason code.
 */
static int
send_batch(struct th_kanald *k, const char *token, const char *batch_id,
    size_t n, uint32_t *accepted, int *duplicate, char reason[64])
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent *ev = calloc(n, sizeof(*ev));
	Kanal__V1__ServiceEvent **evp = calloc(n, sizeof(*evp));
	struct client_result res;
	struct httpc *c;
	char err[256];
	int64_t now = client_now_ms();
	int status;

	for (size_t i = 0; i < n; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)"dukcapil.akta-lahir";
		ev[i].channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
		ev[i].region_code = (char *)"32.73.01.1001";
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].occurred_at_ms = now;
		ev[i].duration_ms = 1000;
		evp[i] = &ev[i];
	}
	b.batch_id = (char *)batch_id;
	b.n_events = n;
	b.events = evp;
	c = httpc_new(k->url, 10000, err, sizeof(err));
	assert_non_null(c);
	/* One attempt: the tests look at every answer themselves. */
	if (client_send(c, token, &b, 1, &res) == -1)
		res.status = 0;
	status = res.status;
	if (accepted != NULL)
		*accepted = res.ack != NULL ? res.ack->accepted : 0;
	if (duplicate != NULL)
		*duplicate = res.ack != NULL ? res.ack->duplicate : 0;
	/* The reason code: the error line up to its colon. */
	if (reason != NULL)
		snprintf(reason, 64, "%.*s", (int)strcspn(res.error, ":"),
		    status == 200 ? "" : res.error);
	client_result_clear(&res);
	httpc_free(c);
	free(ev);
	free(evp);
	return status;
}


#define SUM "SELECT sum(events) FROM kanal.usage_hourly"

static int
is_ready(void *arg)
{
	return th_http(arg, "GET", "/readyz", NULL, NULL, 0, NULL, 0) == 200;
}

/* Invariant 1: acknowledged, then killed before any flush: counted once. */
static void
test_kill9_before_flush_loses_nothing(void **state)
{
	struct th_fixture *f = *state;
	char id[32];
	uint32_t acc;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "1h", NULL });
	/* The first flush runs at the first database contact: let it pass. */
	th_wait_log(&f->k, "write-ahead log replayed", 1);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "k9-%d", i);
		assert_int_equal(send_batch(&f->k, f->token, id, 10, &acc, NULL,
		    NULL), 200);
		assert_int_equal(acc, 10);
	}
	assert_int_equal(th_kanald_stop(&f->k, SIGKILL), 128 + SIGKILL);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.usage_hourly"), 0);

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", NULL });
	th_wait_count(f->conn, SUM, 200);
	/* Killed again after the flush: the checkpoint stops a recount. */
	assert_int_equal(th_kanald_stop(&f->k, SIGKILL), 128 + SIGKILL);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", NULL });
	assert_int_equal(send_batch(&f->k, f->token, "after", 1, &acc, NULL,
	    NULL), 200);
	th_wait_count(f->conn, SUM, 201);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, SUM), 201);
}

/* Invariant 2: a retry is acknowledged again, counted once, across restarts. */
static void
test_retried_batch_is_counted_once(void **state)
{
	struct th_fixture *f = *state;
	uint32_t acc;
	int dup;
	char id[32];

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", "--wal-segment-size", "4KiB", NULL });
	assert_int_equal(send_batch(&f->k, f->token, "retry-me", 7, &acc, &dup,
	    NULL), 200);
	assert_int_equal(acc, 7);
	assert_false(dup);
	assert_int_equal(send_batch(&f->k, f->token, "retry-me", 7, &acc, &dup,
	    NULL), 200);
	assert_int_equal(acc, 7);
	assert_true(dup);
	th_wait_count(f->conn, SUM, 7);

	/* Restart: the memory comes back from the WAL. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", "--wal-segment-size", "4KiB", NULL });
	assert_int_equal(send_batch(&f->k, f->token, "retry-me", 7, &acc, &dup,
	    NULL), 200);
	assert_true(dup);
	assert_int_equal(acc, 7);

	/*
	 * Enough other batches that the segment holding retry-me is flushed
	 * and removed; then only batches.idx remembers it.
	 */
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "filler-%d", i);
		assert_int_equal(send_batch(&f->k, f->token, id, 5, NULL, NULL,
		    NULL), 200);
	}
	th_wait_count(f->conn, SUM, 7 + 300);
	assert_int_equal(th_kanald_stop(&f->k, SIGKILL), 128 + SIGKILL);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", "--wal-segment-size", "4KiB", NULL });
	assert_int_equal(send_batch(&f->k, f->token, "retry-me", 7, &acc, &dup,
	    NULL), 200);
	assert_true(dup);
	assert_int_equal(send_batch(&f->k, f->token, "filler-3", 5, &acc, &dup,
	    NULL), 200);
	assert_true(dup);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, SUM), 307);
}

/* Invariant 3: a full WAL answers 503 + Retry-After, then recovers. */
static void
test_full_wal_answers_503_then_recovers(void **state)
{
	struct th_fixture *f = *state;
	char id[32], why[64], body[256];
	uint32_t acc;
	int st = 200, acked = 0;

	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--flush-interval", "50ms", "--wal-segment-size", "16KiB",
	    "--wal-max-size", "1MiB", NULL });
	/* PostgreSQL refuses kanald's writes: the WAL can only grow. */
	th_exec(f->conn, "REVOKE INSERT, UPDATE ON kanal.usage_hourly FROM "
	    "kanal_ingest");
	for (int i = 0; i < 2000 && st == 200; i++) {
		snprintf(id, sizeof(id), "fill-%d", i);
		st = send_batch(&f->k, f->token, id, 100, &acc, NULL, why);
		if (st == 200)
			acked++;
	}
	assert_int_equal(st, 503);
	assert_string_equal(why, "wal_full");
	assert_true(acked > 100);
	assert_int_equal(th_http(&f->k, "GET", "/readyz", NULL, NULL, 0, body,
	    sizeof(body)), 503);
	assert_non_null(strstr(body, "full"));

	th_exec(f->conn, "GRANT INSERT, UPDATE ON kanal.usage_hourly TO "
	    "kanal_ingest");
	th_wait_count(f->conn, SUM, (int64_t)acked * 100);
	/* The refused batch is taken now, its retry with the same id. */
	/* Once the flushed segments are removed the WAL takes batches again. */
	if (!th_wait(is_ready, &f->k, 20000))
		fail_msg("/readyz did not come back within 20 s");
	st = send_batch(&f->k, f->token, id, 100, &acc, NULL, why);
	assert_int_equal(st, 200);
	th_wait_count(f->conn, SUM, (int64_t)(acked + 1) * 100);
	assert_int_equal(th_http(&f->k, "GET", "/readyz", NULL, NULL, 0, body,
	    sizeof(body)), 200);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

/* Invariant 7: instances writing the same keys at once add up. */
struct sender {
	struct th_kanald *k;
	const char *token;
	int index;
	int acked;
};

static void *
send_many(void *arg)
{
	struct sender *s = arg;
	char id[32];

	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "inst%d-%d", s->index, i);
		if (send_batch(s->k, s->token, id, 50, NULL, NULL, NULL) == 200)
			s->acked++;
	}
	return NULL;
}

static void
test_instances_sharing_the_database_add_up(void **state)
{
	struct th_fixture *f = *state;
	struct th_kanald k[3];
	struct sender s[3];
	pthread_t t[3];
	char cid[3][16];

	memset(k, 0, sizeof(k));
	for (int i = 0; i < 3; i++) {
		snprintf(cid[i], sizeof(cid[i]), "inst-%d", i);
		th_kanald_start(&k[i], f->db, f->sources, (const char *const[]){
		    "--flush-interval", "20ms", "--collector-id", cid[i],
		    NULL });
	}
	for (int i = 0; i < 3; i++) {
		s[i] = (struct sender){ &k[i], f->token, i, 0 };
		pthread_create(&t[i], NULL, send_many, &s[i]);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(s[i].acked, 40);
		assert_int_equal(th_kanald_stop(&k[i], SIGTERM), 0);
	}
	assert_int_equal(th_query_i64(f->conn, SUM), 3 * 40 * 50);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint"), 3);
}

/* ------------------------------------------------------------------
 * A TCP proxy between kanald and PostgreSQL that cuts the connection
 * around one COMMIT: after forwarding it and reading the server's answer
 * (the commit happened, kanald can't know), or before forwarding it (it
 * did not happen). Every other byte passes through unchanged.
 */
struct proxy {
	int lfd;
	int port;
	int pg_port;
	int cut_after;		/* 1: cut after the server answered COMMIT */
	int armed;		/* cut the next COMMIT, then stop cutting */
	int cuts;
	int stop;
	pthread_t thread;
};

static int
connect_pg(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
relay(struct proxy *p, int cfd, int sfd)
{
	static const char commit[] = "Q\0\0\0\vCOMMIT";
	struct pollfd pfd[2] = { { cfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
	char buf[65536];

	while (!p->stop) {
		ssize_t n;

		if (poll(pfd, 2, 100) <= 0)
			continue;
		if (pfd[0].revents) {
			n = read(cfd, buf, sizeof(buf));
			if (n <= 0)
				return;
			if (p->armed && memmem(buf, (size_t)n, commit,
			    sizeof(commit) - 1) != NULL) {
				p->armed = 0;
				p->cuts++;
				if (p->cut_after) {
					char ans[256];
					if (write(sfd, buf, (size_t)n) != n)
						return;
					/* The server's CommandComplete. */
					(void)!read(sfd, ans, sizeof(ans));
				}
				return;
			}
			if (write(sfd, buf, (size_t)n) != n)
				return;
		}
		if (pfd[1].revents) {
			n = read(sfd, buf, sizeof(buf));
			if (n <= 0 || write(cfd, buf, (size_t)n) != n)
				return;
		}
	}
}

static void *
proxy_main(void *arg)
{
	struct proxy *p = arg;

	while (!p->stop) {
		struct pollfd pfd = { p->lfd, POLLIN, 0 };
		int cfd, sfd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		cfd = accept(p->lfd, NULL, NULL);
		if (cfd == -1)
			continue;
		sfd = connect_pg(p->pg_port);
		if (sfd != -1) {
			relay(p, cfd, sfd);
			close(sfd);
		}
		close(cfd);
	}
	return NULL;
}

static void
proxy_start(struct proxy *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int one = 1;

	p->pg_port = atoi(th_env("PGPORT"));
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Below the ephemeral range (PITFALLS.md). */
	for (int port = 30000 + getpid() % 2000; ; port++) {
		a.sin_port = htons((uint16_t)port);
		if (bind(p->lfd, (struct sockaddr *)&a, len) == 0)
			break;
		if (port > 32700)
			fail_msg("no free port for the proxy");
	}
	getsockname(p->lfd, (struct sockaddr *)&a, &len);
	p->port = ntohs(a.sin_port);
	listen(p->lfd, 8);
	pthread_create(&p->thread, NULL, proxy_main, p);
}

static void
proxy_stop(struct proxy *p)
{
	p->stop = 1;
	pthread_join(p->thread, NULL);
	close(p->lfd);
}

static void
commit_cut(struct th_fixture *f, int cut_after)
{
	struct proxy p = { .cut_after = cut_after };
	char pg[256];
	int64_t first;

	proxy_start(&p);
	snprintf(pg, sizeof(pg), "host=127.0.0.1 port=%d dbname=%s "
	    "user=kanal_ingest", p.port, f->db);
	th_kanald_start(&f->k, NULL, f->sources, (const char *const[]){
	    "--pg", pg, "--flush-interval", "50ms", NULL });
	assert_int_equal(send_batch(&f->k, f->token, "before", 3, NULL, NULL,
	    NULL), 200);
	th_wait_count(f->conn, SUM, 3);
	first = th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint");
	p.armed = 1;
	assert_int_equal(send_batch(&f->k, f->token, "cut", 4, NULL, NULL,
	    NULL), 200);
	th_wait_count(f->conn, SUM, 7);
	assert_int_equal(p.cuts, 1);
	assert_true(th_query_i64(f->conn, "SELECT wal_position FROM "
	    "kanal.collector_checkpoint") > first);
	assert_int_equal(send_batch(&f->k, f->token, "after", 5, NULL, NULL,
	    NULL), 200);
	th_wait_count(f->conn, SUM, 12);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, SUM), 12);
	proxy_stop(&p);
}

/* Invariant 1: COMMIT happened but kanald never heard: not written twice. */
static void
test_commit_lost_after_it_happened_is_not_repeated(void **state)
{
	commit_cut(*state, 1);
}

/* Invariant 1: COMMIT never reached the server: written again. */
static void
test_commit_lost_before_it_happened_is_repeated(void **state)
{
	commit_cut(*state, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_kill9_before_flush_loses_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retried_batch_is_counted_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_full_wal_answers_503_then_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_instances_sharing_the_database_add_up, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_commit_lost_after_it_happened_is_not_repeated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_commit_lost_before_it_happened_is_repeated, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
