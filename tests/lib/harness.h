/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness: what the integration and end-to-end tests share.
 *
 * PostgreSQL comes from libpq's PG* environment, which `scripts/dev test`
 * points at its private cluster as a superuser; each test makes its own
 * database and drops it. kanald is the real binary ($KANALD), on a
 * loopback port below the ephemeral range. Every wait has a deadline.
 * Functions fail the running cmocka test on error instead of returning it.
 */
#ifndef KANAL_TEST_HARNESS_H
#define KANAL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* Superuser connection to dbname ("postgres" for the maintenance db). */
PGconn *th_pg_connect(const char *dbname);
/* Makes and migrates a fresh database kanal_t_<tag>_<pid>; name gets it. */
void th_db_create(const char *tag, char *name, size_t len);
void th_db_drop(const char *name);
/* Runs sql, fails the test unless it succeeds. */
void th_exec(PGconn *conn, const char *sql);
/* First column of the first row as int64; 0 for SQL NULL or no row. */
int64_t th_query_i64(PGconn *conn, const char *sql);
/*
 * For tests that write kanal.usage_hourly by hand: makes usage_daily and
 * usage_monthly_cell anew from it, as migrations 007 and 008 fill them
 * (kanald writes them all itself). As the owner.
 */
void th_tiers_fill(PGconn *conn);
/*
 * 1 when usage_daily holds exactly the GROUP BY of usage_hourly over its
 * day, row for row (only days whose hours usage_hourly keeps), and the
 * monthly cells exactly usage_daily summed per cell, every month; else 0,
 * with the first difference printed.
 */
int th_tiers_match(PGconn *conn);
/* As text into out; "" for NULL or no row. */
void th_query_text(PGconn *conn, const char *sql, char *out, size_t len);

/* A fresh directory under $KANAL_TEST_TMP (or /tmp). */
void th_tmpdir(const char *tag, char *out, size_t len);
/* Writes a one-source sources file in dir; token gets the secret. */
void th_make_source(const char *dir, const char *source, const char *allow,
    char token[65], char *path, size_t pathlen);

struct th_kanald {
	pid_t pid;
	int port;
	int keep_port;		/* set: a restart listens on the same port */
	char url[64];
	char log[512];		/* kanald's stderr */
	char wal_dir[512];	/* made at the first start, kept for restarts */
	/*
	 * Set before the start when kanald serves HTTPS (--tls-cert and
	 * --tls-key in the extra arguments): the CA file that curl checks
	 * /healthz with, and url is https://.
	 */
	char cacert[640];
};

/*
 * Starts $KANALD for database db (as kanal_ingest) with the sources file,
 * plus extra arguments (NULL-terminated; may be NULL), and waits until
 * /healthz answers. db NULL: the extra arguments give --pg. The WAL goes
 * to k->wal_dir: a fresh directory unless it is already set, so starting
 * the same struct again is a restart on the same WAL (and, with
 * keep_port set, on the same port, so a client keeps its URL).
 */
void th_kanald_start(struct th_kanald *k, const char *db,
    const char *sources, const char *const *extra);
/* Sends sig and waits (deadline) for the exit; returns the exit status. */
int th_kanald_stop(struct th_kanald *k, int sig);

/* How many times needle is in the kanald's log (its first MiB). */
int th_log_count(struct th_kanald *k, const char *needle);
/* Waits (10 s deadline) until needle is in the log at least times times. */
void th_wait_log(struct th_kanald *k, const char *needle, int times);

/*
 * Throwaway certificates made with the openssl command (P-256, 2 days):
 * th_tls_ca makes a self-signed CA, dir/NAME.pem and dir/NAME.key;
 * th_tls_cert a server certificate signed by the CA dir/CA.pem, for the
 * subjectAltName san ("IP:127.0.0.1", "DNS:localhost", or both with a
 * comma), dir/NAME.pem and dir/NAME.key.
 */
void th_tls_ca(const char *dir, const char *name);
void th_tls_cert(const char *dir, const char *name, const char *ca,
    const char *san);
/*
 * Replaces dst with a copy of src: a new file renamed over it, so a
 * reader (kanald on SIGHUP) never sees half of it.
 */
void th_copy_file(const char *src, const char *dst);

/*
 * What most end-to-end tests start from: a fresh migrated database, a
 * scratch directory, a source allowed the given services (its token and
 * sources file), a superuser connection to the database, and a kanald
 * slot (not started).
 */
struct th_fixture {
	char db[64];
	char dir[512];
	char sources[600];
	char token[65];
	PGconn *conn;
	struct th_kanald k;
};

struct th_fixture *th_fixture_new(const char *tag, const char *allow);
/* Kills the kanald if it runs, drops the database. NULL is a no-op. */
void th_fixture_free(struct th_fixture *f);

/* Waits (20 s deadline) until the first column of sql's row is want. */
void th_wait_count(PGconn *conn, const char *sql, int64_t want);

/* Polls cond every 20 ms until it returns non-zero or deadline_ms pass. */
int th_wait(int (*cond)(void *arg), void *arg, unsigned deadline_ms);

/*
 * Runs argv (argv[0] a path), stdout into out (NUL-terminated, cut to
 * len), stderr to the test's stderr. Returns the exit status, or -1 when
 * it did not exit normally.
 */
int th_run(char *out, size_t len, const char *const argv[]);

/*
 * HTTP GET/POST to the kanald (over TLS, checked with k->cacert, when it
 * is set); returns the status.
 */
int th_http(struct th_kanald *k, const char *method, const char *path,
    const char *headers, const void *body, size_t len, char *resp,
    size_t resplen);

/*
 * A raw loopback TCP connection to the kanald (10 s receive timeout), for
 * tests that must hold a connection open or see it closed: httpc would
 * reconnect by itself.
 */
int th_conn_open(struct th_kanald *k);

/*
 * The value of one sample of GET /metrics, "name" or "name{labels}"; the
 * test fails when /metrics does not answer 200 or lacks the series.
 */
long long th_metric(struct th_kanald *k, const char *series);
/* Waits (10 s deadline) until th_metric(k, series) == want. */
void th_wait_metric(struct th_kanald *k, const char *series, long long want);

/*
 * Packs an EventBatch of n completed web events of service in 32.73.01,
 * happening now, into buf; returns its length (the test fails when it
 * does not fit).
 */
size_t th_pack_batch(const char *batch_id, const char *service, unsigned n,
    uint8_t *buf, size_t cap);

/* Required environment variable, or the test fails with a hint. */
const char *th_env(const char *name);

/* A whole file, NUL-terminated (len gets its size; may be NULL); free it. */
char *th_read_file(const char *path, size_t *len);

/*
 * A scripted HTTP server on a loopback port of its own (url gets
 * "http://127.0.0.1:PORT"), in a child process: for each of answers in
 * turn (NULL-terminated) it accepts a connection, reads one request (its
 * headers and Content-Length bytes of body), writes the answer as it is
 * ("": none) and closes. Every request must contain each string of expect
 * (NULL-terminated, or NULL for no check). The child gives up after 30 s.
 */
struct th_script {
	pid_t pid;
	char url[64];
};
void th_script_start(struct th_script *s, const char *const *answers,
    const char *const *expect);
/* Waits for the server: 0 when every request held what was expected. */
int th_script_wait(struct th_script *s);

#endif
