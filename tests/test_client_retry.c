/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_client_retry: client_post against a scripted HTTP server on
 * loopback (a child process). Which answers are tried again (connection
 * lost, 429, 5xx) and which not (400); Retry-After is honoured, else the
 * back-off doubles up to its cap; every try carries the same body; the
 * tries and the deadline bound it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "harness.h"
#include "httpc.h"

#define BODY "the same batch, every time"

/* Every request must carry the same body and headers. */
static const char *const same_request[] = {
	"\r\n\r\n" BODY, "Content-Type: application/x-test\r\n", NULL,
};

/* Answers in order, one per connection; "" closes without answering. */
static void
server_start(struct th_script *s, const char *const *answers)
{
	th_script_start(s, answers, same_request);
}

struct notes {
	int n;
	unsigned wait_ms[8];
	char why[8][128];
};

static void
note(void *arg, int attempt, unsigned wait_ms, const char *why)
{
	struct notes *nt = arg;

	assert_int_equal(attempt, nt->n + 1);
	assert_true(nt->n < 8);
	nt->wait_ms[nt->n] = wait_ms;
	snprintf(nt->why[nt->n], sizeof(nt->why[0]), "%s", why);
	nt->n++;
}

static int
post(struct th_script *s, int attempts, int64_t deadline_ms, struct notes *nt,
    struct httpc_response *r, char *err, size_t errlen)
{
	struct client_retry rp = { attempts, deadline_ms, 10, 25, note, nt };
	struct httpc *c = httpc_new(s->url, 5000, err, errlen);
	int rc;

	assert_non_null(c);
	rc = client_post(c, "t0ken", "application/x-test", BODY,
	    strlen(BODY), &rp, r, err, errlen);
	/* r->body belongs to c: keep what the caller checks. */
	if (rc == 0)
		snprintf(err, errlen, "%s", r->body);
	httpc_free(c);
	return rc;
}

#define ANSWER(status, extra, body)					\
	"HTTP/1.1 " status "\r\n" extra "Content-Length: "		\
	    "2\r\nConnection: close\r\n\r\n" body

/* 503 with Retry-After, a dropped connection, 429, 500, then 200. */
static void
test_retryable_answers_are_tried_again_with_the_same_body(void **state)
{
	static const char *const answers[] = {
		ANSWER("503 Service Unavailable", "Retry-After: 1\r\n", "no"),
		"",
		ANSWER("429 Too Many Requests", "", "no"),
		ANSWER("500 Internal Server Error", "", "no"),
		ANSWER("200 OK", "", "ok"),
		NULL,
	};
	struct th_script s;
	struct notes nt = { 0 };
	struct httpc_response r;
	char err[256];

	(void)state;
	server_start(&s, answers);
	assert_int_equal(post(&s, 10, 0, &nt, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(err, "ok");
	assert_int_equal(nt.n, 4);
	/* Retry-After wins; then 10, 20 and the cap, 25. */
	assert_int_equal(nt.wait_ms[0], 1000);
	assert_int_equal(nt.wait_ms[1], 20);
	assert_int_equal(nt.wait_ms[2], 25);
	assert_int_equal(nt.wait_ms[3], 25);
	assert_non_null(strstr(nt.why[0], "HTTP 503"));
	assert_non_null(strstr(nt.why[2], "HTTP 429"));
	assert_non_null(strstr(nt.why[3], "HTTP 500"));
	assert_int_equal(th_script_wait(&s), 0);
}

/* A 400 is the answer: not tried again. */
static void
test_a_client_error_is_not_tried_again(void **state)
{
	static const char *const answers[] = {
		ANSWER("400 Bad Request", "", "no"),
		NULL,
	};
	struct th_script s;
	struct notes nt = { 0 };
	struct httpc_response r;
	char err[256];

	(void)state;
	server_start(&s, answers);
	assert_int_equal(post(&s, 10, 0, &nt, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 400);
	assert_int_equal(nt.n, 0);
	assert_int_equal(th_script_wait(&s), 0);
}

/* Out of tries: the last answer is returned, 503 here. */
static void
test_the_last_answer_comes_back_when_the_tries_run_out(void **state)
{
	static const char *const answers[] = {
		ANSWER("503 Service Unavailable", "", "no"),
		ANSWER("503 Service Unavailable", "", "no"),
		NULL,
	};
	struct th_script s;
	struct notes nt = { 0 };
	struct httpc_response r;
	char err[256];

	(void)state;
	server_start(&s, answers);
	assert_int_equal(post(&s, 2, 0, &nt, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(nt.n, 1);
	assert_int_equal(th_script_wait(&s), 0);
}

/* A deadline that a wait would pass stops the tries; no answer: -1. */
static void
test_a_deadline_stops_the_tries(void **state)
{
	static const char *const answers[] = { "", NULL };
	struct th_script s;
	struct notes nt = { 0 };
	struct httpc_response r;
	char err[256];

	(void)state;
	server_start(&s, answers);
	assert_int_equal(post(&s, 100, client_now_ms() + 5, &nt, &r, err,
	    sizeof(err)), -1);
	assert_int_equal(nt.n, 0);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_int_equal(th_script_wait(&s), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_retryable_answers_are_tried_again_with_the_same_body),
		cmocka_unit_test(test_a_client_error_is_not_tried_again),
		cmocka_unit_test(
		    test_the_last_answer_comes_back_when_the_tries_run_out),
		cmocka_unit_test(test_a_deadline_stops_the_tries),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
