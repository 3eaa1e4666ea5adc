/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: kanald with tls-cert and tls-key serves HTTPS only.
 *
 * A throwaway CA and a server certificate for 127.0.0.1 are made at test
 * time with the openssl command; the client is the real curl. A batch
 * POSTed over HTTPS is acknowledged and counted in PostgreSQL; curl that
 * does not trust the CA, or that offers TLS 1.1 at most, gets no answer;
 * plain HTTP on the same port gets no HTTP answer, only a closed
 * connection. SIGHUP loads a renewed certificate for new connections and
 * keeps the old one when the new pair does not match.
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "kanal/v1/events.pb-c.h"

#define CURL "/usr/bin/curl"

/* curl's exit codes (man curl). */
#define CURL_SSL_CONNECT_ERROR 35
#define CURL_EMPTY_REPLY 52
#define CURL_PEER_FAILED_VERIFICATION 60

static struct th_fixture *f;

/* ------------------------------------------------------------ certificates */

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", f->dir, name);
}

/* ------------------------------------------------------------ curl */

/*
 * curl with args, then the URL of path on the kanald; the response body
 * goes to the file out (NULL: discarded) and the status to *status
 * (-w %{http_code}). Returns curl's exit status.
 */
static int
curl(const char *const *args, const char *path, const char *out,
    int *status)
{
	const char *argv[40];
	char url[256], code[32] = "";
	int n = 0, rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", f->k.port, path);
	argv[n++] = CURL;
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "20";
	argv[n++] = "-o";
	argv[n++] = out != NULL ? out : "/dev/null";
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	for (int i = 0; args[i] != NULL && n < 38; i++)
		argv[n++] = args[i];
	argv[n++] = url;
	argv[n] = NULL;
	rc = th_run(code, sizeof(code), argv);
	if (status != NULL)
		*status = atoi(code);
	return rc;
}

static void
read_all(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	*len = fread(buf, 1, cap, fp);
	fclose(fp);
}

/* Writes a batch of n web events of service to the file path. */
static void
write_batch(const char *path, const char *batch_id, const char *service,
    unsigned n)
{
	uint8_t body[4096];
	size_t len = th_pack_batch(batch_id, service, n, body, sizeof(body));
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fwrite(body, 1, len, fp) != len || fclose(fp) != 0)
		fail_msg("%s: cannot write the batch", path);
}

/* ------------------------------------------------------------ set-up */

static int
setup(void **state)
{
	char cert[600], key[600], src[600];

	(void)state;
	f = th_fixture_new("tls", "dukcapil.*");
	th_tls_ca(f->dir, "ca");
	th_tls_cert(f->dir, "server", "ca", "IP:127.0.0.1");
	/* kanald reads these two paths; tests replace their contents. */
	path_in(cert, sizeof(cert), "kanald.pem");
	path_in(key, sizeof(key), "kanald.key");
	path_in(src, sizeof(src), "server.pem");
	th_copy_file(src, cert);
	path_in(src, sizeof(src), "server.key");
	th_copy_file(src, key);
	path_in(f->k.cacert, sizeof(f->k.cacert), "ca.pem");
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--tls-cert", cert, "--tls-key", key, "--flush-interval", "100ms",
	    NULL });
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	th_fixture_free(f);
	return 0;
}

/* ------------------------------------------------------------ tests */

/* A real protobuf batch over HTTPS: 200, the ack's counts, PostgreSQL's. */
static void
test_batch_over_https_is_acknowledged_and_counted(void **state)
{
	char batch[600], resp[600], auth[128], ca[600];
	uint8_t body[4096];
	size_t len;
	int status;
	Kanal__V1__BatchAck *ack;

	(void)state;
	path_in(batch, sizeof(batch), "batch.bin");
	path_in(resp, sizeof(resp), "ack.bin");
	path_in(ca, sizeof(ca), "ca.pem");
	write_batch(batch, "tls-1", "dukcapil.akta-lahir", 3);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->token);
	{
		char data[700];

		snprintf(data, sizeof(data), "@%s", batch);
		assert_int_equal(curl((const char *const[]){ "--cacert", ca,
		    "-H", auth, "-H", "Content-Type: application/x-protobuf",
		    "--data-binary", data, NULL }, "/v1/events", resp,
		    &status), 0);
	}
	assert_int_equal(status, 200);
	read_all(resp, body, sizeof(body), &len);
	ack = kanal__v1__batch_ack__unpack(NULL, len, body);
	assert_non_null(ack);
	assert_int_equal(ack->accepted, 3);
	assert_int_equal(ack->rejected, 0);
	assert_string_equal(ack->batch_id, "tls-1");
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.akta-lahir'", 3);
}

static void
test_healthz_over_https_answers(void **state)
{
	char ca[600], out[600], text[64];
	size_t len;
	int status;

	(void)state;
	path_in(ca, sizeof(ca), "ca.pem");
	path_in(out, sizeof(out), "healthz.txt");
	assert_int_equal(curl((const char *const[]){ "--cacert", ca, NULL },
	    "/healthz", out, &status), 0);
	assert_int_equal(status, 200);
	read_all(out, (uint8_t *)text, sizeof(text) - 1, &len);
	text[len] = '\0';
	assert_string_equal(text, "ok\n");
}

/* Without the CA, curl refuses the certificate: no request is sent. */
static void
test_client_without_the_ca_fails_verification(void **state)
{
	int status;

	(void)state;
	assert_int_equal(curl((const char *const[]){ NULL }, "/healthz", NULL,
	    &status), CURL_PEER_FAILED_VERIFICATION);
	assert_int_equal(status, 0);
}

/* TLS 1.1 and older are not spoken: the handshake fails. */
static void
test_tls_1_1_is_refused(void **state)
{
	char ca[600];
	int status;

	(void)state;
	path_in(ca, sizeof(ca), "ca.pem");
	assert_int_equal(curl((const char *const[]){ "--cacert", ca,
	    "--tls-max", "1.1", NULL }, "/healthz", NULL, &status),
	    CURL_SSL_CONNECT_ERROR);
	assert_int_equal(status, 0);
	/* And TLS 1.2 alone is. */
	assert_int_equal(curl((const char *const[]){ "--cacert", ca,
	    "--tlsv1.2", "--tls-max", "1.2", NULL }, "/healthz", NULL,
	    &status), 0);
	assert_int_equal(status, 200);
}

/*
 * Plain HTTP to the TLS port: kanald closes the connection and no byte
 * it sends back is an HTTP answer.
 */
static void
test_plain_http_gets_no_http_answer(void **state)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1"
	    "\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	ssize_t r = 0;
	int fd = th_conn_open(&f->k);

	(void)state;
	assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL),
	    (ssize_t)(sizeof(req) - 1));
	while (got < sizeof(buf) &&
	    (r = recv(fd, buf + got, sizeof(buf) - got, 0)) > 0)
		got += (size_t)r;
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		fail_msg("kanald kept the plain-HTTP connection open for 10 s");
	close(fd);
	if (got >= 5 && memcmp(buf, "HTTP/", 5) == 0)
		fail_msg("kanald answered plain HTTP on its TLS port: %.40s",
		    buf);
	/* And curl sees no reply either. */
	{
		char url[128];
		const char *argv[] = { CURL, "-s", "--max-time", "20", "-o",
		    "/dev/null", url, NULL };

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz",
		    f->k.port);
		assert_int_equal(th_run(NULL, 0, argv), CURL_EMPTY_REPLY);
	}
}

/*
 * SIGHUP: a renewed certificate (from another CA) is served to new
 * connections; a key that does not match keeps the one in use, and the
 * log says why.
 */
static void
test_sighup_reloads_the_certificate_and_keeps_it_on_a_bad_pair(void **state)
{
	char cert[600], key[600], src[600], ca[600], ca2[600];
	int status;

	(void)state;
	path_in(cert, sizeof(cert), "kanald.pem");
	path_in(key, sizeof(key), "kanald.key");
	path_in(ca, sizeof(ca), "ca.pem");
	path_in(ca2, sizeof(ca2), "ca2.pem");
	th_tls_ca(f->dir, "ca2");
	th_tls_cert(f->dir, "server2", "ca2", "IP:127.0.0.1");

	/* A key that is not the certificate's: the old pair stays. */
	path_in(src, sizeof(src), "server2.key");
	th_copy_file(src, key);
	assert_int_equal(kill(f->k.pid, SIGHUP), 0);
	th_wait_log(&f->k, "TLS certificate not reloaded", 1);
	assert_true(th_log_count(&f->k, "is not the one of the certificate")
	    >= 1);
	assert_int_equal(curl((const char *const[]){ "--cacert", ca, NULL },
	    "/healthz", NULL, &status), 0);
	assert_int_equal(status, 200);

	/* The matching certificate too: new connections get it. */
	path_in(src, sizeof(src), "server2.pem");
	th_copy_file(src, cert);
	assert_int_equal(kill(f->k.pid, SIGHUP), 0);
	th_wait_log(&f->k, "reloaded TLS certificate", 1);
	assert_int_equal(curl((const char *const[]){ "--cacert", ca2, NULL },
	    "/healthz", NULL, &status), 0);
	assert_int_equal(status, 200);
	assert_int_equal(curl((const char *const[]){ "--cacert", ca, NULL },
	    "/healthz", NULL, &status), CURL_PEER_FAILED_VERIFICATION);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_batch_over_https_is_acknowledged_and_counted),
		cmocka_unit_test(test_healthz_over_https_answers),
		cmocka_unit_test(test_client_without_the_ca_fails_verification),
		cmocka_unit_test(test_tls_1_1_is_refused),
		cmocka_unit_test(test_plain_http_gets_no_http_answer),
		cmocka_unit_test(
		    test_sighup_reloads_the_certificate_and_keeps_it_on_a_bad_pair),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
