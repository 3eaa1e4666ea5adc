/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End to end: kanalctl (httpc) as an HTTPS client of a kanald with
 * tls-cert and tls-key.
 *
 * A throwaway CA signs a server certificate for IP 127.0.0.1 only.
 * kanalctl send, by flags and --csv, with --cacert (or $KANAL_CACERT) is
 * acknowledged and counted in PostgreSQL. Without the CA, and with the CA
 * but the name "localhost" that the certificate does not hold, the
 * handshake is refused with "certificate verify failed: <why>", exit 1,
 * at once (a refused certificate is not retried) and nothing is counted.
 * One httpc sends many requests over one TLS connection, and a new one
 * after kanald restarted. After a SIGHUP to a certificate for the name
 * localhost only, the name is taken and the IP address refused.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "httpc.h"

static struct th_fixture *f;
static char ca[600], cert[600], key[600];

/* ------------------------------------------------------------ helpers */

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", f->dir, name);
}

/*
 * kanalctl send --url url --token ARGS...: standard output into out,
 * standard error into errout. Returns the exit status.
 */
static int
kanalctl_send(const char *url, char *out, size_t outlen, char *errout,
    size_t errlen, const char *const args[])
{
	const char *argv[40];
	char errpath[700];
	char *text;
	int n = 0, rc;

	path_in(errpath, sizeof(errpath), "kanalctl.err");
	/* sh only redirects standard error, then is kanalctl. */
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = "f=$1; shift; exec \"$@\" 2>\"$f\"";
	argv[n++] = "sh";
	argv[n++] = errpath;
	argv[n++] = th_env("KANALCTL");
	argv[n++] = "send";
	argv[n++] = "--url";
	argv[n++] = url;
	argv[n++] = "--token";
	argv[n++] = f->token;
	for (int i = 0; args[i] != NULL && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	rc = th_run(out, outlen, argv);
	text = th_read_file(errpath, NULL);
	snprintf(errout, errlen, "%s", text);
	free(text);
	return rc;
}

static void
assert_has(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("\"%s\" not in:\n%s", needle, text);
}

static int64_t
count_of(const char *service)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT coalesce(sum(events), 0) FROM "
	    "kanal.usage_hourly WHERE service_code = '%s'", service);
	return th_query_i64(f->conn, sql);
}

/* A CSV file of n web events of service, happening now. */
static void
write_csv(const char *path, const char *service, int n)
{
	FILE *fp = fopen(path, "w");
	long long now = (long long)time(NULL) * 1000;

	if (fp == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	fprintf(fp, "service_code,channel,occurred_at,region_code\n");
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s,web,%lld,32.73.01\n", service, now - i);
	if (fclose(fp) != 0)
		fail_msg("%s: cannot write", path);
}

/* ------------------------------------------------------------ set-up */

static int
setup(void **state)
{
	(void)state;
	/* The tests say what they verify with; nothing from outside. */
	unsetenv("KANAL_CACERT");
	unsetenv("KANAL_URL");
	unsetenv("KANAL_TOKEN");
	f = th_fixture_new("tlscli", "dukcapil.*");
	th_tls_ca(f->dir, "ca");
	th_tls_cert(f->dir, "kanald", "ca", "IP:127.0.0.1");
	path_in(ca, sizeof(ca), "ca.pem");
	path_in(cert, sizeof(cert), "kanald.pem");
	path_in(key, sizeof(key), "kanald.key");
	snprintf(f->k.cacert, sizeof(f->k.cacert), "%s", ca);
	f->k.keep_port = 1;
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

static void
test_send_over_https_with_cacert_is_counted(void **state)
{
	char out[4096], err[4096];

	(void)state;
	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", ca, "--service",
	    "dukcapil.akta-lahir", "--channel", "web", "--region", "32.73.01",
	    "--count", "2", "--batch-id", "tlscli-1", NULL }), 0);
	assert_has(out, "batch tlscli-1: accepted=2 rejected=0");
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.akta-lahir'", 2);
}

/* $KANAL_CACERT does what --cacert does. */
static void
test_kanal_cacert_environment_is_the_default_ca(void **state)
{
	char out[4096], err[4096];
	int rc;

	(void)state;
	setenv("KANAL_CACERT", ca, 1);
	rc = kanalctl_send(f->k.url, out, sizeof(out), err, sizeof(err),
	    (const char *const[]){ "--service", "dukcapil.kia", "--channel",
	    "kiosk", "--region", "32.73.01", "--batch-id", "tlscli-env",
	    NULL });
	unsetenv("KANAL_CACERT");
	if (rc != 0)
		fail_msg("exit %d: %s", rc, err);
	assert_has(out, "batch tlscli-env: accepted=1 rejected=0");
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.kia'", 1);
}

/* send --csv in several batches over one TLS connection. */
static void
test_send_csv_over_https_is_counted(void **state)
{
	char csv[600], out[4096], err[4096];
	int rc;

	(void)state;
	path_in(csv, sizeof(csv), "events.csv");
	write_csv(csv, "dukcapil.ktp-el", 25);
	rc = kanalctl_send(f->k.url, out, sizeof(out), err, sizeof(err),
	    (const char *const[]){ "--cacert", ca, "--csv", csv,
	    "--batch-size", "10", NULL });
	if (rc != 0)
		fail_msg("exit %d: %s", rc, err);
	assert_has(out, "rows: 25  accepted: 25  rejected: 0");
	assert_has(out, "batches: 3");
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.ktp-el'", 25);
}

/*
 * Without --cacert the system trust store does not know the test CA:
 * refused with the reason and a hint, exit 1, not retried, and nothing
 * counted, by flags or by --csv. A send that is taken afterwards shows
 * kanald flushed past the moment the refused ones would have come.
 */
static void
test_without_cacert_verification_fails_and_nothing_is_counted(void **state)
{
	char csv[600], out[4096], err[4096];

	(void)state;
	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--service",
	    "dukcapil.akta-kematian", "--channel", "web", "--region",
	    "32.73.01", NULL }), 1);
	assert_has(err, "certificate verify failed: unable to get local "
	    "issuer certificate");
	assert_has(err, "--cacert FILE");
	assert_null(strstr(out, "accepted="));

	path_in(csv, sizeof(csv), "refused.csv");
	write_csv(csv, "dukcapil.akta-kematian", 3);
	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--csv", csv, NULL }), 1);
	assert_has(err, "certificate verify failed: unable to get local "
	    "issuer certificate");
	/* Not tried again: a refused certificate stays refused. */
	assert_null(strstr(err, "trying again"));
	assert_has(out, "accepted: 0");

	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", ca, "--service",
	    "dukcapil.ikd", "--channel", "web", "--region", "32.73.01",
	    NULL }), 0);
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.ikd'", 1);
	assert_int_equal(count_of("dukcapil.akta-kematian"), 0);
}

/*
 * The certificate is for IP 127.0.0.1; "localhost" resolves there but is
 * not a name in it: refused even with the right CA.
 */
static void
test_certificate_for_another_name_fails_hostname_verification(void **state)
{
	char url[128], out[4096], err[4096];

	(void)state;
	snprintf(url, sizeof(url), "https://localhost:%d", f->k.port);
	assert_int_equal(kanalctl_send(url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", ca, "--service",
	    "dukcapil.akta-perceraian", "--channel", "web", "--region",
	    "32.73.01", NULL }), 1);
	assert_has(err, "certificate verify failed: hostname mismatch");
	assert_null(strstr(err, "--cacert FILE"));
	assert_int_equal(count_of("dukcapil.akta-perceraian"), 0);
}

/* A CA file that does not exist is a usage error, named. */
static void
test_missing_cacert_file_is_a_usage_error(void **state)
{
	char out[4096], err[4096], missing[600];

	(void)state;
	path_in(missing, sizeof(missing), "no-such-ca.pem");
	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", missing,
	    "--service", "dukcapil.kia", "--channel", "web", "--region",
	    "32.73.01", NULL }), 2);
	assert_has(err, "no-such-ca.pem: No such file or directory");
}

/*
 * Keep-alive over TLS: many requests, one connection (and handshake).
 * When kanald restarts, the kept connection is dead: the next request
 * goes on a new one, by itself.
 */
static void
test_keep_alive_reuses_one_tls_connection_and_reconnects(void **state)
{
	char err[256];
	struct httpc_response r;
	struct httpc *c;

	(void)state;
	c = httpc_new_ca(f->k.url, ca, 10000, err, sizeof(err));
	if (c == NULL)
		fail_msg("httpc: %s", err);
	for (int i = 0; i < 20; i++) {
		if (httpc_request(c, "GET", "/healthz", NULL, NULL, 0, &r, err,
		    sizeof(err)) != 0)
			fail_msg("request %d: %s", i, err);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body, "ok\n");
	}
	assert_int_equal(httpc_connects(c), 1);

	/* th_kanald_stop returns once kanald has exited. */
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--tls-cert", cert, "--tls-key", key, "--flush-interval", "100ms",
	    NULL });
	if (httpc_request(c, "GET", "/healthz", NULL, NULL, 0, &r, err,
	    sizeof(err)) != 0)
		fail_msg("after the restart: %s", err);
	assert_int_equal(r.status, 200);
	assert_int_equal(httpc_connects(c), 2);
	httpc_free(c);
}

/*
 * A certificate for the name localhost only (SIGHUP): the name is
 * verified by DNS name (and sent as SNI), and the IP address is now the
 * one refused.
 */
static void
test_name_certificate_verifies_the_name_and_refuses_the_ip(void **state)
{
	char url[128], out[4096], err[4096], src[600];

	(void)state;
	th_tls_cert(f->dir, "byname", "ca", "DNS:localhost");
	path_in(src, sizeof(src), "byname.pem");
	th_copy_file(src, cert);
	path_in(src, sizeof(src), "byname.key");
	th_copy_file(src, key);
	assert_int_equal(kill(f->k.pid, SIGHUP), 0);
	th_wait_log(&f->k, "reloaded TLS certificate", 1);

	snprintf(url, sizeof(url), "https://localhost:%d", f->k.port);
	assert_int_equal(kanalctl_send(url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", ca, "--service",
	    "dukcapil.pindah-datang", "--channel", "web", "--region",
	    "32.73.01", "--batch-id", "tlscli-name", NULL }), 0);
	assert_has(out, "batch tlscli-name: accepted=1 rejected=0");

	assert_int_equal(kanalctl_send(f->k.url, out, sizeof(out), err,
	    sizeof(err), (const char *const[]){ "--cacert", ca, "--service",
	    "dukcapil.pindah-datang", "--channel", "web", "--region",
	    "32.73.01", NULL }), 1);
	assert_has(err, "certificate verify failed: IP address mismatch");
	th_wait_count(f->conn, "SELECT sum(events) FROM kanal.usage_hourly "
	    "WHERE service_code = 'dukcapil.pindah-datang'", 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_over_https_with_cacert_is_counted),
		cmocka_unit_test(
		    test_kanal_cacert_environment_is_the_default_ca),
		cmocka_unit_test(test_send_csv_over_https_is_counted),
		cmocka_unit_test(
		    test_without_cacert_verification_fails_and_nothing_is_counted),
		cmocka_unit_test(
		    test_certificate_for_another_name_fails_hostname_verification),
		cmocka_unit_test(test_missing_cacert_file_is_a_usage_error),
		cmocka_unit_test(
		    test_keep_alive_reuses_one_tls_connection_and_reconnects),
		/* Last: it replaces the certificate. */
		cmocka_unit_test(
		    test_name_certificate_verifies_the_name_and_refuses_the_ip),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
