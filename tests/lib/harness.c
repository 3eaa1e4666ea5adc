/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness: see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "httpc.h"
#include "kanal/v1/events.pb-c.h"
#include "migrate.h"

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

const char *
th_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		fail_msg("%s is not set: run the tests with `scripts/dev test` "
		    "(or ctest from a build whose PG* environment points at "
		    "a PostgreSQL superuser)", name);
	return v;
}

PGconn *
th_pg_connect(const char *dbname)
{
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { dbname, NULL };
	PGconn *c;

	th_env("PGHOST");
	c = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to database %s: %s", dbname,
		    PQerrorMessage(c));
	return c;
}

void
th_exec(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(conn));
	PQclear(r);
}

#define TH_TIER_GROUP(t) \
	"SELECT " t " AS t, service_code, channel, region_code, outcome, " \
	"assisted, sum(events)::bigint AS events, sum(duration_ms_sum)::bigint " \
	"AS duration_ms_sum, sum(duration_events)::bigint AS duration_events " \
	"FROM kanal.usage_hourly GROUP BY 1, 2, 3, 4, 5, 6"
#define TH_DAY "(bucket AT TIME ZONE 'Asia/Jakarta')::date"
/* Days whose every hour the hourly tier still keeps. */
#define TH_KEPT(col) \
	" WHERE (" col "::timestamp AT TIME ZONE 'Asia/Jakarta') >= " \
	"(SELECT kept_from FROM kanal.hourly_retention)"

void
th_tiers_fill(PGconn *conn)
{
	th_exec(conn, "TRUNCATE kanal.usage_daily, kanal.usage_monthly_cell");
	th_exec(conn, "INSERT INTO kanal.usage_daily " TH_TIER_GROUP(TH_DAY));
	th_exec(conn, "INSERT INTO kanal.usage_monthly_cell "
	    "SELECT * FROM kanal.usage_monthly_cell_from_tier");
}

int
th_tiers_match(PGconn *conn)
{
#define TH_G(x) "SELECT * FROM (" TH_TIER_GROUP(x) ") g" TH_KEPT("g.t")
	static const char *const q[] = {
		TH_G(TH_DAY) " EXCEPT ALL SELECT * FROM kanal.usage_daily"
		TH_KEPT("day"),
		"SELECT * FROM kanal.usage_daily" TH_KEPT("day") " EXCEPT ALL "
		TH_G(TH_DAY),
		/* The cells against usage_daily, every month. */
		"SELECT * FROM kanal.usage_monthly_cell_from_tier EXCEPT ALL "
		"SELECT * FROM kanal.usage_monthly_cell",
		"SELECT * FROM kanal.usage_monthly_cell EXCEPT ALL "
		"SELECT * FROM kanal.usage_monthly_cell_from_tier",
	};
#undef TH_G

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		PGresult *r = PQexec(conn, q[i]);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("SQL failed: %s: %s", q[i],
			    PQerrorMessage(conn));
		if (PQntuples(r) > 0) {
			fprintf(stderr, "tiers differ (%s): %d rows, first: "
			    "%s %s %s %s %s %s events=%s\n", q[i],
			    PQntuples(r), PQgetvalue(r, 0, 0),
			    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
			    PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4),
			    PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6));
			PQclear(r);
			return 0;
		}
		PQclear(r);
	}
	return 1;
}

int64_t
th_query_i64(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	int64_t v = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(conn));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

void
th_query_text(PGconn *conn, const char *sql, char *out, size_t len)
{
	PGresult *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(conn));
	snprintf(out, len, "%s", PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ?
	    PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

void
th_db_create(const char *tag, char *name, size_t len)
{
	PGconn *c = th_pg_connect("postgres");
	char sql[256], err[1024];

	snprintf(name, len, "kanal_t_%s_%ld", tag, (long)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    name);
	th_exec(c, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	th_exec(c, sql);
	PQfinish(c);
	c = th_pg_connect(name);
	if (migrate_apply(c, th_env("KANAL_SCHEMA_DIR"), NULL, err,
	    sizeof(err)) == -1)
		fail_msg("migrate %s: %s", name, err);
	PQfinish(c);
}

void
th_db_drop(const char *name)
{
	PGconn *c = th_pg_connect("postgres");
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    name);
	th_exec(c, sql);
	PQfinish(c);
}

void
th_tmpdir(const char *tag, char *out, size_t len)
{
	const char *base = getenv("KANAL_TEST_TMP");

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(out, len, "%s/%s-XXXXXX", base, tag);
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp %s: %s", out, strerror(errno));
	/* kanald may run as another user than the test in no case here. */
}

int
th_run(char *out, size_t len, const char *const argv[])
{
	int pfd[2], status;
	pid_t pid;
	size_t n = 0;

	if (pipe(pfd) == -1)
		fail_msg("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t r = read(pfd[0], tmp, sizeof(tmp));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out != NULL && len > 1) {
			size_t take = (size_t)r;
			if (take > len - 1 - n)
				take = len - 1 - n;
			memcpy(out + n, tmp, take);
			n += take;
		}
	}
	close(pfd[0]);
	if (out != NULL && len > 0)
		out[n] = '\0';
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void
th_make_source(const char *dir, const char *source, const char *allow,
    char token[65], char *path, size_t pathlen)
{
	char out[1024];
	const char *argv[] = { th_env("KANALCTL"), "token", "new", "--source",
	    source, "--allow", allow, NULL };
	const char *line;
	FILE *f;

	if (th_run(out, sizeof(out), argv) != 0)
		fail_msg("kanalctl token new failed");
	if (sscanf(out, "token: %64s", token) != 1)
		fail_msg("kanalctl token new printed no token: %s", out);
	line = strstr(out, "sources: ");
	if (line == NULL)
		fail_msg("kanalctl token new printed no sources line: %s", out);
	snprintf(path, pathlen, "%s/sources-%s.conf", dir, source);
	f = fopen(path, "a");
	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	fprintf(f, "%s", line + 9);
	fclose(f);
}

/* ------------------------------------------------------------ certificates */

void
th_copy_file(const char *src, const char *dst)
{
	char tmp[700], buf[8192];
	FILE *in = fopen(src, "r"), *out;
	size_t n;

	if (in == NULL)
		fail_msg("%s: %s", src, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s.new", dst);
	out = fopen(tmp, "w");
	if (out == NULL)
		fail_msg("%s: %s", tmp, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	if (fclose(out) != 0 || rename(tmp, dst) == -1)
		fail_msg("%s: %s", dst, strerror(errno));
}

static void
openssl(const char *const *args)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = "/usr/bin/openssl";
	for (int i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (th_run(NULL, 0, argv) != 0)
		fail_msg("openssl %s failed", args[0]);
}

void
th_tls_ca(const char *dir, const char *name)
{
	char key[600], pem[600], subj[64];

	snprintf(subj, sizeof(subj), "/CN=kanal test %s", name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	openssl((const char *const[]){ "req", "-x509", "-newkey", "ec",
	    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
	    "-out", pem, "-days", "2", "-subj", subj, NULL });
}

void
th_tls_cert(const char *dir, const char *name, const char *ca,
    const char *san)
{
	char key[600], pem[600], csr[600], ext[600], cakey[600], capem[600];
	char subj[300];
	FILE *fp;

	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
	snprintf(ext, sizeof(ext), "%s/%s.ext", dir, name);
	snprintf(cakey, sizeof(cakey), "%s/%s.key", dir, ca);
	snprintf(capem, sizeof(capem), "%s/%s.pem", dir, ca);
	/* The CN is informative only: clients check the subjectAltName. */
	snprintf(subj, sizeof(subj), "/CN=kanal test %s", name);
	fp = fopen(ext, "w");
	if (fp == NULL)
		fail_msg("%s: %s", ext, strerror(errno));
	fprintf(fp, "subjectAltName = %s\n"
	    "basicConstraints = CA:FALSE\n"
	    "extendedKeyUsage = serverAuth\n", san);
	fclose(fp);
	openssl((const char *const[]){ "req", "-newkey", "ec", "-pkeyopt",
	    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
	    "-subj", subj, NULL });
	openssl((const char *const[]){ "x509", "-req", "-in", csr, "-CA",
	    capem, "-CAkey", cakey, "-CAcreateserial", "-out", pem, "-days",
	    "2", "-extfile", ext, NULL });
}

int
th_http(struct th_kanald *k, const char *method, const char *path,
    const char *headers, const void *body, size_t len, char *resp,
    size_t resplen)
{
	char err[256];
	struct httpc *c = httpc_new_ca(k->url, k->cacert, 10000, err,
	    sizeof(err));
	struct httpc_response r;
	int status;

	if (c == NULL)
		fail_msg("httpc: %s", err);
	if (httpc_request(c, method, path, headers, body, len, &r, err,
	    sizeof(err)) == -1) {
		httpc_free(c);
		return 0;
	}
	status = r.status;
	if (resp != NULL)
		snprintf(resp, resplen, "%.*s", (int)r.len, r.body);
	httpc_free(c);
	return status;
}

static int
healthy(void *arg)
{
	struct th_kanald *k = arg;
	int status;

	/* Still running? */
	if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
		k->pid = -1;
		return 1;
	}
	if (k->cacert[0] != '\0') {
		char url[128];
		const char *argv[] = { "/usr/bin/curl", "-sf", "-o", "/dev/null",
		    "--cacert", k->cacert, url, NULL };

		snprintf(url, sizeof(url), "%s/healthz", k->url);
		return th_run(NULL, 0, argv) == 0;
	}
	return th_http(k, "GET", "/healthz", NULL, NULL, 0, NULL, 0) == 200;
}

void
th_kanald_start(struct th_kanald *k, const char *db, const char *sources,
    const char *const *extra)
{
	static unsigned salt;
	const char *argv[64];
	char listen[64], pg[512];
	int argc;

	if (k->wal_dir[0] == '\0')
		th_tmpdir("wal", k->wal_dir, sizeof(k->wal_dir));

	for (int attempt = 0; attempt < 20; attempt++) {
		int fd;

		/* Below the ephemeral range (PITFALLS.md). */
		if (!k->keep_port || k->port == 0)
			k->port = 20000 + (int)((getpid() * 7919u +
			    salt++ * 104729u + (unsigned)attempt * 1009u) %
			    10000u);
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", k->port);
		snprintf(k->url, sizeof(k->url), "%s://127.0.0.1:%d",
		    k->cacert[0] != '\0' ? "https" : "http", k->port);
		snprintf(k->log, sizeof(k->log), "%s/kanald-%d.log",
		    getenv("KANAL_TEST_TMP") ? getenv("KANAL_TEST_TMP") :
		    "/tmp", k->port);
		argc = 0;
		argv[argc++] = th_env("KANALD");
		argv[argc++] = "--listen";
		argv[argc++] = listen;
		argv[argc++] = "--sources";
		argv[argc++] = sources;
		argv[argc++] = "--wal-dir";
		argv[argc++] = k->wal_dir;
		if (db != NULL) {
			snprintf(pg, sizeof(pg), "dbname=%s user=kanal_ingest",
			    db);
			argv[argc++] = "--pg";
			argv[argc++] = pg;
		}
		for (int i = 0; extra != NULL && extra[i] != NULL &&
		    argc < 62; i++)
			argv[argc++] = extra[i];
		argv[argc] = NULL;

		k->pid = fork();
		if (k->pid == -1)
			fail_msg("fork: %s", strerror(errno));
		if (k->pid == 0) {
			fd = open(k->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd != -1) {
				dup2(fd, STDERR_FILENO);
				dup2(fd, STDOUT_FILENO);
				close(fd);
			}
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (!th_wait(healthy, k, 10000))
			fail_msg("kanald did not serve within 10 s; log: %s",
			    k->log);
		if (k->pid != -1)
			return;
		/* It exited: most likely the port was taken. Try another. */
	}
	fail_msg("kanald did not start; last log: %s", k->log);
}

struct exited {
	pid_t pid;
	int status;
};

static int
has_exited(void *arg)
{
	struct exited *e = arg;

	return waitpid(e->pid, &e->status, WNOHANG) == e->pid;
}

int
th_kanald_stop(struct th_kanald *k, int sig)
{
	struct exited e = { k->pid, 0 };

	if (k->pid <= 0)
		return -1;
	kill(k->pid, sig);
	if (!th_wait(has_exited, &e, 30000)) {
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = -1;
		fail_msg("kanald did not exit within 30 s of signal %d", sig);
	}
	k->pid = -1;
	if (WIFEXITED(e.status))
		return WEXITSTATUS(e.status);
	return 128 + WTERMSIG(e.status);
}

int
th_wait(int (*cond)(void *arg), void *arg, unsigned deadline_ms)
{
	uint64_t end = mono_ms() + deadline_ms;

	for (;;) {
		if (cond(arg))
			return 1;
		if (mono_ms() >= end)
			return 0;
		sleep_ms(20);
	}
}

int
th_log_count(struct th_kanald *k, const char *needle)
{
	static char text[1 << 20];
	FILE *fp = fopen(k->log, "r");
	size_t len;
	int n = 0;

	if (fp == NULL)
		fail_msg("%s: %s", k->log, strerror(errno));
	len = fread(text, 1, sizeof(text) - 1, fp);
	text[len] = '\0';
	fclose(fp);
	for (const char *p = strstr(text, needle); p != NULL;
	    p = strstr(p + 1, needle))
		n++;
	return n;
}

struct log_wait {
	struct th_kanald *k;
	const char *needle;
	int times;
};

static int
log_has(void *arg)
{
	struct log_wait *w = arg;

	return th_log_count(w->k, w->needle) >= w->times;
}

void
th_wait_log(struct th_kanald *k, const char *needle, int times)
{
	struct log_wait w = { k, needle, times };

	if (!th_wait(log_has, &w, 10000))
		fail_msg("waited 10 s for \"%s\" x%d in %s", needle, times,
		    k->log);
}

struct th_fixture *
th_fixture_new(const char *tag, const char *allow)
{
	struct th_fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		fail_msg("out of memory");
	th_db_create(tag, f->db, sizeof(f->db));
	th_tmpdir(tag, f->dir, sizeof(f->dir));
	th_make_source(f->dir, tag, allow, f->token, f->sources,
	    sizeof(f->sources));
	f->conn = th_pg_connect(f->db);
	return f;
}

void
th_fixture_free(struct th_fixture *f)
{
	if (f == NULL)
		return;
	if (f->k.pid > 0)
		th_kanald_stop(&f->k, SIGKILL);
	PQfinish(f->conn);
	th_db_drop(f->db);
	free(f);
}

struct count_wait {
	PGconn *conn;
	const char *sql;
	int64_t want;
};

static int
count_is(void *arg)
{
	struct count_wait *q = arg;

	return th_query_i64(q->conn, q->sql) == q->want;
}

void
th_wait_count(PGconn *conn, const char *sql, int64_t want)
{
	struct count_wait q = { conn, sql, want };

	if (!th_wait(count_is, &q, 20000))
		fail_msg("waited 20 s for %s = %lld; it is %lld", sql,
		    (long long)want, (long long)th_query_i64(conn, sql));
}

int
th_conn_open(struct th_kanald *k)
{
	struct sockaddr_in sa;
	struct timeval tv = { 10, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd == -1)
		fail_msg("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)k->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fail_msg("connect: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

long long
th_metric(struct th_kanald *k, const char *series)
{
	static char text[1 << 16];
	char line[256];
	const char *p;
	int status;

	status = th_http(k, "GET", "/metrics", NULL, NULL, 0, text,
	    sizeof(text));
	if (status != 200)
		fail_msg("GET /metrics answered %d", status);
	snprintf(line, sizeof(line), "\n%s ", series);
	p = strstr(text, line);
	if (p == NULL)
		fail_msg("no series %s in /metrics", series);
	return strtoll(p + strlen(line), NULL, 10);
}

struct metric_wait {
	struct th_kanald *k;
	const char *series;
	long long want;
};

static int
metric_is(void *arg)
{
	struct metric_wait *w = arg;

	return th_metric(w->k, w->series) == w->want;
}

void
th_wait_metric(struct th_kanald *k, const char *series, long long want)
{
	struct metric_wait w = { k, series, want };

	if (!th_wait(metric_is, &w, 10000))
		fail_msg("waited 10 s for %s = %lld; it is %lld", series, want,
		    th_metric(k, series));
}

size_t
th_pack_batch(const char *batch_id, const char *service, unsigned n,
    uint8_t *buf, size_t cap)
{
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[64], *evp[64];
	size_t len;

	if (n > 64)
		fail_msg("th_pack_batch: %u events, at most 64", n);
	for (unsigned i = 0; i < n; i++) {
		kanal__v1__service_event__init(&ev[i]);
		ev[i].service_code = (char *)service;
		ev[i].channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
		ev[i].region_code = (char *)"32.73.01";
		ev[i].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[i].occurred_at_ms = client_now_ms();
		evp[i] = &ev[i];
	}
	batch.batch_id = (char *)batch_id;
	batch.n_events = n;
	batch.events = evp;
	len = kanal__v1__event_batch__get_packed_size(&batch);
	if (len > cap)
		fail_msg("th_pack_batch: %zu bytes, the buffer holds %zu", len,
		    cap);
	kanal__v1__event_batch__pack(&batch, buf);
	return len;
}

char *
th_read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	n = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
	if (n < 0)
		fail_msg("%s: cannot find its size", path);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	if (buf == NULL)
		fail_msg("out of memory");
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
		fail_msg("%s: short read", path);
	buf[n] = '\0';
	fclose(fp);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

/* One request: headers, then the Content-Length bytes of its body. */
static size_t
script_read(int fd, char *req, size_t cap)
{
	size_t n = 0, need = 0;

	while (n < cap - 1) {
		ssize_t r = read(fd, req + n, cap - 1 - n);
		const char *end, *cl;

		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = '\0';
		if (need == 0 && (end = strstr(req, "\r\n\r\n")) != NULL) {
			need = (size_t)(end - req) + 4;
			cl = strcasestr(req, "\r\nContent-Length:");
			if (cl != NULL && cl < end)
				need += strtoul(cl + 17, NULL, 10);
		}
		if (need > 0 && n >= need)
			break;
	}
	return n;
}

static void
script_serve(int lfd, const char *const *answers, const char *const *expect)
{
	int bad = 0;

	for (int i = 0; answers[i] != NULL; i++) {
		char req[8192];
		int fd = accept(lfd, NULL, NULL);

		if (fd == -1)
			_exit(2);
		script_read(fd, req, sizeof(req));
		for (int e = 0; expect != NULL && expect[e] != NULL; e++)
			if (strstr(req, expect[e]) == NULL)
				bad = 1;
		if (answers[i][0] != '\0')
			(void)write(fd, answers[i], strlen(answers[i]));
		close(fd);
	}
	_exit(bad);
}

void
th_script_start(struct th_script *s, const char *const *answers,
    const char *const *expect)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(lfd != -1);
	/* Port 0: the kernel's choice, read back (PITFALLS.md). */
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d",
	    ntohs(a.sin_port));
	s->pid = fork();
	assert_true(s->pid != -1);
	if (s->pid == 0) {
		alarm(30);	/* never outlives a broken test */
		script_serve(lfd, answers, expect);
	}
	close(lfd);
}

int
th_script_wait(struct th_script *s)
{
	int status;

	assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
