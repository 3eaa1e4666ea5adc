/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc_url_parse: which base URLs kanalctl takes, with the scheme, host
 * and port it reads from them, and a specific message for the others.
 * And what httpc makes of the answers of a hostile or broken server (a
 * scripted one on loopback, th_script): sizes that would wrap
 * or exhaust memory are refused with a message, never trusted. The
 * connections themselves are tested end to end (test_e2e_tls_client,
 * test_client_retry).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "harness.h"
#include "httpc.h"

static const struct {
	const char *url;
	int tls;
	const char *host;
	const char *port;
} good[] = {
	{ "http://127.0.0.1:8080", 0, "127.0.0.1", "8080" },
	{ "http://127.0.0.1", 0, "127.0.0.1", "80" },
	{ "https://127.0.0.1", 1, "127.0.0.1", "443" },
	{ "https://kanal.example.go.id:8443", 1, "kanal.example.go.id",
	  "8443" },
	{ "https://kanal.example.go.id/", 1, "kanal.example.go.id", "443" },
	{ "http://[::1]:8080", 0, "::1", "8080" },
	{ "https://[::1]", 1, "::1", "443" },
	{ "http://localhost:65535/v1/events", 0, "localhost", "65535" },
	{ "http://h:08080", 0, "h", "8080" },
	{ "http://h?x=1", 0, "h", "80" },
};

static const struct {
	const char *url;
	const char *error;	/* a part of the message */
} bad[] = {
	{ "127.0.0.1:8080", "must start with http:// or https://" },
	{ "ftp://127.0.0.1", "must start with http:// or https://" },
	{ "HTTPS://127.0.0.1", "must start with http:// or https://" },
	{ "https:/127.0.0.1", "must start with http:// or https://" },
	{ "", "must start with http:// or https://" },
	{ "http://", "no host" },
	{ "https://:8443", "no host" },
	{ "http:///v1", "no host" },
	{ "http://[::1:8080", "bad IPv6 address" },
	{ "http://[]:80", "no host" },
	{ "http://h:", "bad port" },
	{ "http://h:0", "bad port" },
	{ "http://h:65536", "bad port" },
	{ "http://h:123456", "bad port" },
	{ "http://h:-1", "bad port" },
	{ "http://h:80x", "after the port" },
	{ "https://[::1]x", "after the host" },
	{ "https://user@h", "user@" },
};

static void
test_good_urls_give_scheme_host_and_port(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct httpc_url u;
		char err[256] = "";

		if (httpc_url_parse(good[i].url, &u, err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", good[i].url, err);
		if (u.tls != good[i].tls || strcmp(u.host, good[i].host) != 0 ||
		    strcmp(u.port, good[i].port) != 0)
			fail_msg("%s: got tls=%d host=%s port=%s", good[i].url,
			    u.tls, u.host, u.port);
	}
}

static void
test_bad_urls_are_refused_with_what_is_wrong(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct httpc_url u;
		char err[256] = "";

		if (httpc_url_parse(bad[i].url, &u, err, sizeof(err)) != -1)
			fail_msg("%s taken (host=%s port=%s)", bad[i].url,
			    u.host, u.port);
		if (strstr(err, bad[i].error) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].url,
			    err, bad[i].error);
	}
}

/* A CA file that cannot be read is refused before any connection. */
static void
test_unreadable_ca_file_is_refused_at_once(void **state)
{
	char err[256] = "";
	struct httpc *c;

	(void)state;
	c = httpc_new_ca("https://127.0.0.1:1", "/nonexistent/ca.pem", 1000,
	    err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "CA file /nonexistent/ca.pem: No such "
	    "file or directory"));
	/* A file that holds no certificate. */
	c = httpc_new_ca("https://127.0.0.1:1", "/dev/null", 1000, err,
	    sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "CA file /dev/null: no PEM certificate"));
	/* For http:// the CA file is not used, so not read either. */
	c = httpc_new_ca("http://127.0.0.1:1", "/nonexistent/ca.pem", 1000,
	    err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(httpc_connects(c), 0);
	httpc_free(c);
}

static const struct {
	const char *name, *answer;
	const char *error;	/* NULL: answered; else a part of err */
	const char *body;
} answers[] = {
	{ "a plain answer", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
	  NULL, "abc" },
	{ "a chunked answer",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", NULL, "abcde" },
	{ "a body to the end", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
	  "to the end", NULL, "to the end" },
	{ "a negative Content-Length",
	  "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc",
	  "bad Content-Length", NULL },
	{ "a Content-Length that wraps",
	  "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
	  "bad Content-Length", NULL },
	{ "a Content-Length too big to hold",
	  "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc",
	  "bad Content-Length", NULL },
	{ "a Content-Length with junk",
	  "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc",
	  "bad Content-Length", NULL },
	{ "a negative chunk size",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "-1\r\nabc\r\n0\r\n\r\n", "bad chunk size", NULL },
	{ "a chunk size that wraps",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "ffffffffffffffff\r\nabc\r\n0\r\n\r\n", "bad chunk size", NULL },
	{ "a chunk too big to hold",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "7fffffff\r\nabc\r\n0\r\n\r\n", "bad chunk size", NULL },
	{ "a body cut short",
	  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "cut short",
	  NULL },
};

static void
test_hostile_answers_are_refused_not_trusted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		const char *const script[] = { answers[i].answer, NULL };
		struct httpc_response resp;
		struct th_script srv;
		struct httpc *c;
		char err[256];
		int rc;

		th_script_start(&srv, script, NULL);
		c = httpc_new(srv.url, 5000, err, sizeof(err));
		assert_non_null(c);
		rc = httpc_request(c, "GET", "/", NULL, NULL, 0, &resp, err,
		    sizeof(err));
		if (answers[i].error == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", answers[i].name, err);
			assert_int_equal(resp.status, 200);
			assert_int_equal(resp.len, strlen(answers[i].body));
			assert_memory_equal(resp.body, answers[i].body,
			    resp.len);
		} else {
			if (rc != -1)
				fail_msg("%s: answered %d", answers[i].name,
				    resp.status);
			if (strstr(err, answers[i].error) == NULL)
				fail_msg("%s: \"%s\" does not say \"%s\"",
				    answers[i].name, err, answers[i].error);
		}
		httpc_free(c);
		assert_int_equal(th_script_wait(&srv), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_urls_give_scheme_host_and_port),
		cmocka_unit_test(test_bad_urls_are_refused_with_what_is_wrong),
		cmocka_unit_test(test_unreadable_ca_file_is_refused_at_once),
		cmocka_unit_test(test_hostile_answers_are_refused_not_trusted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
