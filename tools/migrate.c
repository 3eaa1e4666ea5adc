/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate: see migrate.h.
 *
 * The rules, in the order they are checked:
 *   1. The directory is read and every migration file hashed before the
 *      database is touched, so a missing or unreadable file fails early.
 *   2. Under a session advisory lock (one migrate per database at a time),
 *      the schema kanal and kanal.schema_migrations are created if missing.
 *   3. Every recorded version must have its file, with the recorded SHA-256,
 *      and no pending file may be numbered below an applied one. Otherwise
 *      nothing is applied: a database whose history differs from the files
 *      is a human's decision, not ours.
 *   4. Each pending file runs in its own transaction together with the
 *      INSERT that records it, so a migration is applied and recorded, or
 *      neither. Files must not contain BEGIN/COMMIT.
 *   5. A file whose leading comment block has a line
 *      "-- requires-extension: NAME" is applied only when the server has
 *      that extension (pg_available_extensions). When it does not, migrate
 *      applies the files before it, none from it on (the sequence stays
 *      linear), says which package to install and returns 1: the database
 *      works without what that file adds (kanald runs with reach off
 *      without 010), so `kanalctl migrate` exits 0 and a service that
 *      migrates before it starts still starts. A CREATE EXTENSION refused
 *      for lack of privilege (42501) is an error like any failed file,
 *      with the fix (a superuser creates the extension once) in the
 *      message.
 *
 * KANAL_MIGRATE_EXTENSION_RENAME="hll=hll_not_installed[,a=b...]" is for
 * tests only: migrate looks up the second name where a file requires the
 * first, so the "missing extension" path runs against a real server that
 * has it. Messages still name the file's extension and its package.
 */
#include "migrate.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* "kanalmig" in ASCII: an arbitrary key other kanal code must not reuse. */
#define MIGRATE_LOCK_KEY "7737586999509215591"
/* A migration is DDL and seed data; anything larger is a mistake. */
#define MIGRATE_MAX_BYTES (16 * 1024 * 1024)
#define SHA256_HEX_LEN 64
/* An extension name: NAMEDATALEN - 1. */
#define EXT_NAME_MAX 63

struct migration {
	int version;
	char *file;		/* file name, no directory */
	char *path;		/* schema_dir/file */
	char *sql;		/* file bytes, NUL-terminated */
	size_t len;
	char checksum[SHA256_HEX_LEN + 1];
	int applied;
	char requires_ext[EXT_NAME_MAX + 1];	/* "": none */
};

struct migration_set {
	struct migration *m;
	size_t n;
	size_t cap;
};

static void
migrate_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
migrate_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
migrate_parse_name(const char *name, int *version)
{
	size_t len, i;

	if (name == NULL)
		return -1;
	len = strlen(name);
	/* NNN _ at least one name character .sql */
	if (len < 3 + 1 + 1 + 4 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	for (i = 0; i < 3; i++)
		if (name[i] < '0' || name[i] > '9')
			return -1;
	if (name[3] != '_')
		return -1;
	for (i = 4; i < len - 4; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_'))
			return -1;
	}
	if (version != NULL)
		*version = (name[0] - '0') * 100 + (name[1] - '0') * 10 +
		    (name[2] - '0');
	return 0;
}

/* ------------------------------------------------------------ the files */

static void
set_free(struct migration_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->m[i].file);
		free(set->m[i].path);
		free(set->m[i].sql);
	}
	free(set->m);
	set->m = NULL;
	set->n = set->cap = 0;
}

static int
sha256_hex(const char *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char digits[] = "0123456789abcdef";

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen * 2 != SHA256_HEX_LEN)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[SHA256_HEX_LEN] = '\0';
	return 0;
}

/*
 * Finds "-- requires-extension: NAME" among the file's leading comment
 * lines (those starting with "--", before the first other line) into
 * m->requires_ext. A malformed directive is an error: silently applying a
 * file that needs an extension would fail later with a worse message.
 */
static int
requires_parse(struct migration *m, char *err, size_t errlen)
{
	static const char tag[] = "-- requires-extension:";
	const char *p = m->sql;

	m->requires_ext[0] = '\0';
	while (strncmp(p, "--", 2) == 0) {
		const char *eol = strchr(p, '\n');
		size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

		if (n >= sizeof(tag) - 1 && strncmp(p, tag, sizeof(tag) - 1)
		    == 0) {
			const char *v = p + sizeof(tag) - 1, *end = p + n;
			size_t k = 0;

			while (v < end && *v == ' ')
				v++;
			while (end > v && (end[-1] == ' ' || end[-1] == '\r'))
				end--;
			for (const char *c = v; c < end; c++)
				if (!((*c >= 'a' && *c <= 'z') ||
				    (*c >= '0' && *c <= '9') || *c == '_' ||
				    *c == '-'))
					k = EXT_NAME_MAX + 1;
			if (k == 0)
				k = (size_t)(end - v);
			if (k == 0 || k > EXT_NAME_MAX) {
				migrate_err(err, errlen, "%s: \"%.*s\": want "
				    "\"-- requires-extension: NAME\" with an "
				    "extension name ([a-z0-9_-])", m->path,
				    (int)n, p);
				return -1;
			}
			memcpy(m->requires_ext, v, k);
			m->requires_ext[k] = '\0';
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
	return 0;
}

/*
 * Read path whole into m->sql. The checksum covers the exact bytes, so no
 * newline or encoding normalisation happens here or anywhere else.
 */
static int
file_load(struct migration *m, char *err, size_t errlen)
{
	FILE *f;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	f = fopen(m->path, "rb");
	if (f == NULL) {
		migrate_err(err, errlen, "%s: cannot open: %s", m->path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1) {
		migrate_err(err, errlen, "%s: cannot stat: %s", m->path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		migrate_err(err, errlen, "%s: not a regular file", m->path);
		goto fail;
	}
	if (st.st_size > MIGRATE_MAX_BYTES) {
		migrate_err(err, errlen, "%s: %lld bytes, over the %d-byte "
		    "limit for a migration; split it", m->path,
		    (long long)st.st_size, MIGRATE_MAX_BYTES);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		migrate_err(err, errlen, "%s: out of memory", m->path);
		goto fail;
	}
	/* The size may change under us; read what is there, up to the cap. */
	got = fread(buf, 1, (size_t)st.st_size + 1, f);
	if (ferror(f)) {
		migrate_err(err, errlen, "%s: cannot read: %s", m->path,
		    strerror(errno));
		goto fail;
	}
	if (got > (size_t)st.st_size) {
		migrate_err(err, errlen, "%s: changed while being read; "
		    "run migrate again", m->path);
		goto fail;
	}
	buf[got] = '\0';
	/* PQexec takes a C string: a NUL would silently cut the file short. */
	if (memchr(buf, '\0', got) != NULL) {
		migrate_err(err, errlen, "%s: contains a NUL byte; a migration "
		    "is SQL text", m->path);
		goto fail;
	}
	if (sha256_hex(buf, got, m->checksum) == -1) {
		migrate_err(err, errlen, "%s: SHA-256 failed (libcrypto)",
		    m->path);
		goto fail;
	}
	fclose(f);
	m->sql = buf;
	m->len = got;
	return requires_parse(m, err, errlen);
fail:
	free(buf);
	fclose(f);
	return -1;
}

static int
migration_cmp(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static int
set_add(struct migration_set *set, const char *dir, const char *file,
    int version, char *err, size_t errlen)
{
	struct migration *m;
	size_t plen;

	if (set->n == set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 16;
		struct migration *nm = realloc(set->m, ncap * sizeof(*nm));
		if (nm == NULL) {
			migrate_err(err, errlen, "out of memory");
			return -1;
		}
		set->m = nm;
		set->cap = ncap;
	}
	m = &set->m[set->n];
	memset(m, 0, sizeof(*m));
	m->version = version;
	plen = strlen(dir) + 1 + strlen(file) + 1;
	m->file = strdup(file);
	m->path = malloc(plen);
	if (m->file == NULL || m->path == NULL) {
		free(m->file);
		free(m->path);
		migrate_err(err, errlen, "out of memory");
		return -1;
	}
	snprintf(m->path, plen, "%s/%s", dir, file);
	set->n++;
	return 0;
}

/*
 * Collect, sort, read and hash the migrations in dir. On error set is freed
 * and err says which file and why.
 */
static int
set_load(struct migration_set *set, const char *dir, FILE *out, char *err,
    size_t errlen)
{
	DIR *d;
	struct dirent *de;

	d = opendir(dir);
	if (d == NULL) {
		migrate_err(err, errlen, "cannot open schema directory %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	for (;;) {
		int version;
		size_t len;

		errno = 0;
		de = readdir(d);
		if (de == NULL)
			break;
		if (migrate_parse_name(de->d_name, &version) == 0) {
			if (set_add(set, dir, de->d_name, version, err,
			    errlen) == -1)
				goto fail;
			continue;
		}
		/* A misnamed migration silently skipped would be a surprise. */
		len = strlen(de->d_name);
		if (len >= 4 && strcmp(de->d_name + len - 4, ".sql") == 0 &&
		    out != NULL)
			fprintf(out, "skipping %s/%s: not named NNN_name.sql\n",
			    dir, de->d_name);
	}
	if (errno != 0) {
		migrate_err(err, errlen, "cannot read schema directory %s: %s",
		    dir, strerror(errno));
		goto fail;
	}
	closedir(d);
	d = NULL;

	if (set->n == 0) {
		migrate_err(err, errlen, "no migrations (NNN_name.sql) in %s: "
		    "is it kanal's schema directory?", dir);
		goto fail;
	}
	qsort(set->m, set->n, sizeof(*set->m), migration_cmp);
	for (size_t i = 1; i < set->n; i++) {
		if (set->m[i].version == set->m[i - 1].version) {
			migrate_err(err, errlen, "%s and %s have the same number "
			    "%03d: renumber the newer one", set->m[i - 1].path,
			    set->m[i].path, set->m[i].version);
			goto fail;
		}
	}
	for (size_t i = 0; i < set->n; i++)
		if (file_load(&set->m[i], err, errlen) == -1)
			goto fail;
	return 0;
fail:
	if (d != NULL)
		closedir(d);
	set_free(set);
	return -1;
}

/* ----------------------------------------------------------- PostgreSQL */

/*
 * Character offset (1-based, as PostgreSQL reports it) into sql -> line
 * number. The server counts characters in the client encoding, UTF-8 here,
 * so continuation bytes are not counted.
 */
static int
sql_line(const char *sql, size_t len, long pos)
{
	int line = 1;
	long chars = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)sql[i];
		if ((c & 0xc0) == 0x80)
			continue;
		if (++chars >= pos)
			break;
		if (c == '\n')
			line++;
	}
	return line;
}

/*
 * Describe a failed result (or a NULL one: out of memory, connection lost)
 * as "where[:line]: message (SQLSTATE x); detail: ..; hint: ..; context:
 * ..". m, when given, turns the statement position into a line of its file.
 */
static void
pg_err(PGconn *conn, const PGresult *res, const char *where,
    const struct migration *m, char *err, size_t errlen)
{
	const char *msg, *state, *pos, *detail, *hint, *context;
	char at[32] = "", sqlstate[32] = "";
	char *nl;
	char conn_msg[512];

	if (res == NULL) {
		snprintf(conn_msg, sizeof(conn_msg), "%s",
		    PQerrorMessage(conn));
		nl = strchr(conn_msg, '\n');
		if (nl != NULL)
			*nl = '\0';
		migrate_err(err, errlen, "%s: %s", where, conn_msg);
		return;
	}
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	if (msg == NULL || msg[0] == '\0') {
		/*
		 * Made by libpq rather than the server (no fields), or not an
		 * error at all: e.g. a COPY .. FROM STDIN in a file.
		 */
		snprintf(conn_msg, sizeof(conn_msg), "%s",
		    PQresultErrorMessage(res));
		nl = strchr(conn_msg, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (conn_msg[0] == '\0')
			snprintf(conn_msg, sizeof(conn_msg), "unexpected "
			    "result %s", PQresStatus(PQresultStatus(res)));
		msg = conn_msg;
	}
	if (m != NULL && pos != NULL)
		snprintf(at, sizeof(at), ":%d",
		    sql_line(m->sql, m->len, strtol(pos, NULL, 10)));
	if (state != NULL)
		snprintf(sqlstate, sizeof(sqlstate), " (SQLSTATE %s)", state);
	migrate_err(err, errlen, "%s%s: %s%s%s%s%s%s%s%s", where, at, msg,
	    sqlstate,
	    detail != NULL ? "; detail: " : "", detail != NULL ? detail : "",
	    hint != NULL ? "; hint: " : "", hint != NULL ? hint : "",
	    context != NULL ? "; context: " : "",
	    context != NULL ? context : "");
}

/*
 * A file holding COPY .. FROM STDIN leaves the connection waiting for data:
 * end the COPY (which fails the transaction) and drain it, so that the
 * ROLLBACK on the error path can run.
 */
static void
copy_abort(PGconn *conn, ExecStatusType st)
{
	PGresult *res;
	char *buf;

	if (st == PGRES_COPY_IN)
		PQputCopyEnd(conn, "COPY is not supported in a migration");
	else
		while (PQgetCopyData(conn, &buf, 0) > 0)
			PQfreemem(buf);
	for (;;) {
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		PQclear(res);
	}
}

/*
 * Run sql expecting success; 0 or -1 with err set and, when state is not
 * NULL, the SQLSTATE of the failure in it ("" when there is none).
 */
static int
pg_run_state(PGconn *conn, const char *sql, const char *where,
    const struct migration *m, char *err, size_t errlen, char state[6])
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = res != NULL ? PQresultStatus(res) :
	    PGRES_FATAL_ERROR;

	if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
		copy_abort(conn, st);
		PQclear(res);
		migrate_err(err, errlen, "%s: COPY FROM STDIN / TO STDOUT "
		    "cannot run in a migration; use INSERT", where);
		return -1;
	}
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *code = res != NULL ?
		    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

		if (state != NULL)
			snprintf(state, 6, "%s", code != NULL ? code : "");
		pg_err(conn, res, where, m, err, errlen);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Run sql expecting success; 0 or -1 with err set. */
static int
pg_run(PGconn *conn, const char *sql, const char *where,
    const struct migration *m, char *err, size_t errlen)
{
	return pg_run_state(conn, sql, where, m, err, errlen, NULL);
}

/* Returns 1 when the lock was free and is now ours, 0 when it is held. */
static int
lock_try(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn,
	    "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")");
	int got;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(conn, res, "taking the migrate lock", NULL, err, errlen);
		PQclear(res);
		return -1;
	}
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return got;
}

static int
lock_take(PGconn *conn, FILE *out, char *err, size_t errlen)
{
	int got = lock_try(conn, err, errlen);

	if (got != 0)
		return got == 1 ? 0 : -1;
	if (out != NULL) {
		fprintf(out, "waiting for another migrate of this database "
		    "to finish\n");
		fflush(out);
	}
	return pg_run(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
	    "taking the migrate lock", NULL, err, errlen);
}

static const char bootstrap_sql[] =
    "BEGIN;"
    "SET LOCAL client_min_messages = warning;"
    "CREATE SCHEMA IF NOT EXISTS kanal;"
    "CREATE TABLE IF NOT EXISTS kanal.schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now());"
    "COMMENT ON TABLE kanal.schema_migrations IS"
    " 'Migrations applied by kanalctl migrate: version, file name,"
    " SHA-256 of the file bytes.';"
    "COMMIT;";

/* Mark the recorded versions applied; refuse any history the files lack. */
static int
history_check(PGconn *conn, const char *dir, struct migration_set *set,
    size_t *napplied, char *err, size_t errlen)
{
	PGresult *res;
	int rows, max_applied = -1;
	size_t i;

	*napplied = 0;
	res = PQexec(conn, "SELECT version, name, checksum "
	    "FROM kanal.schema_migrations ORDER BY version");
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(conn, res, "reading kanal.schema_migrations", NULL,
		    err, errlen);
		PQclear(res);
		return -1;
	}
	rows = PQntuples(res);
	for (int r = 0; r < rows; r++) {
		int version = atoi(PQgetvalue(res, r, 0));
		const char *name = PQgetvalue(res, r, 1);
		const char *sum = PQgetvalue(res, r, 2);
		struct migration *m = NULL;

		for (i = 0; i < set->n; i++)
			if (set->m[i].version == version)
				m = &set->m[i];
		if (m == NULL) {
			migrate_err(err, errlen, "migration %03d (%s) is applied "
			    "to this database but %s has no %03d_*.sql: the "
			    "database was migrated by a newer kanal; use that "
			    "version's schema directory. Nothing was applied",
			    version, name, dir, version);
			goto fail;
		}
		if (strcmp(m->checksum, sum) != 0) {
			migrate_err(err, errlen, "%s was changed after it was "
			    "applied to this database (applied sha256 %s, file "
			    "now sha256 %s). Never edit an applied migration: "
			    "restore the file as it was applied and put the "
			    "change in a new migration numbered above %03d. "
			    "Nothing was applied", m->path, sum, m->checksum,
			    set->m[set->n - 1].version);
			goto fail;
		}
		m->applied = 1;
		(*napplied)++;
		if (version > max_applied)
			max_applied = version;
	}
	PQclear(res);

	/*
	 * A file numbered below an applied one was written against an older
	 * schema than the database has; applying it now could do anything.
	 */
	for (i = 0; i < set->n; i++) {
		if (!set->m[i].applied && set->m[i].version < max_applied) {
			migrate_err(err, errlen, "%s is not applied but the later "
			    "migration %03d already is: migrations apply in "
			    "number order; renumber it above %03d. Nothing was "
			    "applied", set->m[i].path, max_applied,
			    max_applied);
			return -1;
		}
	}
	return 0;
fail:
	PQclear(res);
	return -1;
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000L +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* ----------------------------------------------------------- extensions */

/*
 * The name to look up for the extension a file requires: ext, unless
 * KANAL_MIGRATE_EXTENSION_RENAME (tests only, see the top of this file)
 * maps it to another. Written into buf.
 */
static const char *
ext_lookup_name(const char *ext, char *buf, size_t len)
{
	const char *env = getenv("KANAL_MIGRATE_EXTENSION_RENAME");
	size_t n = strlen(ext);

	snprintf(buf, len, "%s", ext);
	for (const char *p = env; p != NULL && *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t item = comma != NULL ? (size_t)(comma - p) : strlen(p);

		if (item > n + 1 && strncmp(p, ext, n) == 0 && p[n] == '=') {
			snprintf(buf, len, "%.*s", (int)(item - n - 1),
			    p + n + 1);
			break;
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return buf;
}

/* 1 when the server can CREATE EXTENSION m's extension, 0 when not, -1. */
static int
ext_available(PGconn *conn, const struct migration *m, char *err,
    size_t errlen)
{
	char name[EXT_NAME_MAX + 1];
	const char *params[1];
	PGresult *res;
	int n;

	params[0] = ext_lookup_name(m->requires_ext, name, sizeof(name));
	res = PQexecParams(conn, "SELECT 1 FROM pg_available_extensions "
	    "WHERE name = $1", 1, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(conn, res, "reading pg_available_extensions", NULL, err,
		    errlen);
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	PQclear(res);
	return n > 0;
}

/* The Debian package of extension ext for this server's major version. */
static void
ext_package(PGconn *conn, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "postgresql-%d-%s", PQserverVersion(conn) / 10000,
	    ext);
}

/*
 * The message for a pending file held back by a missing extension, and
 * the later files held back with it (after of them).
 */
static void
held_message(PGconn *conn, const struct migration *m, size_t after,
    char *err, size_t errlen)
{
	char pkg[128], also[96] = "";

	ext_package(conn, m->requires_ext, pkg, sizeof(pkg));
	if (after > 0)
		snprintf(also, sizeof(also), " (and the %zu migration%s after "
		    "it)", after, after == 1 ? "" : "s");
	migrate_err(err, errlen, "%s%s needs the PostgreSQL extension \"%s\", "
	    "which this server does not have: install the Debian package %s "
	    "on the database server (the number is the server's major "
	    "version, from server_version_num), then run kanalctl migrate "
	    "again. Until then kanald runs with %s off; everything else is "
	    "migrated.", m->file, also, m->requires_ext, pkg,
	    strcmp(m->requires_ext, "hll") == 0 ? "reach" : "what it adds");
}

/*
 * CREATE EXTENSION refused for lack of privilege: err (the server's
 * error) gets the fix in front.
 */
static void
privilege_hint(PGconn *conn, const struct migration *m, char *err,
    size_t errlen)
{
	char pg_msg[1024];
	const char *db = PQdb(conn);

	snprintf(pg_msg, sizeof(pg_msg), "%s", err);
	migrate_err(err, errlen, "%s needs the extension \"%s\", which only a "
	    "superuser can create (it is not a trusted extension): a "
	    "superuser must run CREATE EXTENSION %s; in database \"%s\" once "
	    "(e.g. sudo -u postgres psql -d %s -c 'CREATE EXTENSION %s;'), "
	    "then run kanalctl migrate again. Nothing of %s was applied. "
	    "(%s)", m->file, m->requires_ext, m->requires_ext,
	    db != NULL ? db : "?", db != NULL ? db : "DBNAME",
	    m->requires_ext, m->file, pg_msg);
}

/* Apply one migration and record it, atomically. */
static int
migration_apply(PGconn *conn, const struct migration *m, FILE *out,
    char *err, size_t errlen)
{
	PGresult *res;
	char version[16];
	const char *params[3];
	struct timespec t0;
	char state[6] = "";

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * search_path = kanal puts an unqualified CREATE in kanal (not public)
	 * while pg_catalog, searched first, cannot be shadowed. The NOTICEs of
	 * IF NOT EXISTS are noise for an operator.
	 */
	if (pg_run(conn, "BEGIN; SET LOCAL search_path = kanal;"
	    "SET LOCAL client_min_messages = warning", m->path, NULL, err,
	    errlen) == -1)
		return -1;
	if (pg_run_state(conn, m->sql, m->path, m, err, errlen, state)
	    == -1) {
		if (m->requires_ext[0] != '\0' && strcmp(state, "42501") == 0)
			privilege_hint(conn, m, err, errlen);
		return -1;
	}
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		migrate_err(err, errlen, "%s ended the transaction itself: part "
		    "of it may be committed and it is not recorded. Migration "
		    "files must not contain BEGIN, COMMIT or ROLLBACK; check "
		    "the database by hand", m->path);
		return -1;
	}
	snprintf(version, sizeof(version), "%d", m->version);
	params[0] = version;
	params[1] = m->file;
	params[2] = m->checksum;
	res = PQexecParams(conn, "INSERT INTO kanal.schema_migrations "
	    "(version, name, checksum) VALUES ($1, $2, $3)", 3, NULL, params,
	    NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_err(conn, res, m->path, NULL, err, errlen);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	/* Deferred constraints are checked here, so COMMIT can fail too. */
	if (pg_run(conn, "COMMIT", m->path, NULL, err, errlen) == -1)
		return -1;
	if (out != NULL) {
		fprintf(out, "applied %s (sha256 %.12s, %ld ms)\n", m->file,
		    m->checksum, elapsed_ms(&t0));
		fflush(out);
	}
	return 0;
}

int
migrate_apply(PGconn *conn, const char *schema_dir, FILE *out, char *err,
    size_t errlen)
{
	struct migration_set set = { 0 };
	size_t napplied = 0, nnew = 0, nheld = 0;
	const struct migration *held = NULL;
	int locked = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (conn == NULL || schema_dir == NULL) {
		migrate_err(err, errlen, "migrate_apply: no connection or "
		    "schema directory");
		return -1;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		pg_err(conn, NULL, "not connected to PostgreSQL", NULL, err,
		    errlen);
		return -1;
	}
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		migrate_err(err, errlen, "migrate_apply: the connection is "
		    "inside a transaction; each migration needs its own");
		return -1;
	}
	if (set_load(&set, schema_dir, out, err, errlen) == -1)
		return -1;
	if (PQsetClientEncoding(conn, "UTF8") != 0) {
		pg_err(conn, NULL, "setting client_encoding UTF8", NULL, err,
		    errlen);
		goto fail;
	}
	if (lock_take(conn, out, err, errlen) == -1)
		goto fail;
	locked = 1;
	if (pg_run(conn, bootstrap_sql, "creating kanal.schema_migrations",
	    NULL, err, errlen) == -1)
		goto fail;
	if (history_check(conn, schema_dir, &set, &napplied, err,
	    errlen) == -1)
		goto fail;
	for (size_t i = 0; i < set.n; i++) {
		if (set.m[i].applied)
			continue;
		if (set.m[i].requires_ext[0] != '\0') {
			int av = ext_available(conn, &set.m[i], err, errlen);

			if (av == -1)
				goto fail;
			if (av == 0) {
				held = &set.m[i];
				nheld = set.n - i;
				break;
			}
		}
		if (migration_apply(conn, &set.m[i], out, err, errlen) == -1)
			goto fail;
		nnew++;
	}
	if (pg_run(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")",
	    "releasing the migrate lock", NULL, err, errlen) == -1)
		goto fail;
	locked = 0;
	if (out != NULL) {
		fprintf(out, "%zu migration%s applied, %zu already current",
		    nnew, nnew == 1 ? "" : "s", napplied);
		if (held != NULL)
			fprintf(out, ", %zu held back (%s needs the extension "
			    "\"%s\")", nheld, held->file, held->requires_ext);
		fputc('\n', out);
		fflush(out);
	}
	if (held != NULL)
		held_message(conn, held, nheld - 1, err, errlen);
	set_free(&set);
	return held != NULL ? 1 : 0;
fail:
	/*
	 * Leave the session as we found it: no open transaction, no lock. If
	 * the connection is gone there is nothing to undo; the server dropped
	 * both with it. err already holds the first failure.
	 */
	if (PQstatus(conn) == CONNECTION_OK) {
		PGTransactionStatusType ts = PQtransactionStatus(conn);
		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
			PQclear(PQexec(conn, "ROLLBACK"));
		if (locked)
			PQclear(PQexec(conn, "SELECT pg_advisory_unlock("
			    MIGRATE_LOCK_KEY ")"));
	}
	set_free(&set);
	return -1;
}

int
migrate_status(PGconn *conn, const char *schema_dir, FILE *out, char *err,
    size_t errlen)
{
	struct migration_set set = { 0 };
	size_t napplied = 0, npending = 0;
	const struct migration *held = NULL;
	PGresult *res;
	int have_table, rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (conn == NULL || schema_dir == NULL || out == NULL) {
		migrate_err(err, errlen, "migrate_status: no connection, "
		    "schema directory or output");
		return -1;
	}
	if (set_load(&set, schema_dir, out, err, errlen) == -1)
		return -1;
	res = PQexec(conn, "SELECT to_regclass('kanal.schema_migrations') "
	    "IS NOT NULL");
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(conn, res, "looking for kanal.schema_migrations", NULL,
		    err, errlen);
		PQclear(res);
		goto out;
	}
	have_table = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (have_table && history_check(conn, schema_dir, &set, &napplied,
	    err, errlen) == -1)
		goto out;
	for (size_t i = 0; i < set.n; i++) {
		const struct migration *m = &set.m[i];

		if (m->applied) {
			fprintf(out, "%-32s applied\n", m->file);
			continue;
		}
		npending++;
		if (held == NULL && m->requires_ext[0] != '\0') {
			int av = ext_available(conn, m, err, errlen);

			if (av == -1)
				goto out;
			if (av == 0)
				held = m;
		}
		if (held == m) {
			char pkg[128];

			ext_package(conn, m->requires_ext, pkg, sizeof(pkg));
			fprintf(out, "%-32s pending, held back: needs the "
			    "extension \"%s\", which this server does not have "
			    "(Debian package %s)\n", m->file, m->requires_ext,
			    pkg);
		} else if (held != NULL)
			fprintf(out, "%-32s pending, held back behind %s\n",
			    m->file, held->file);
		else
			fprintf(out, "%-32s pending%s%s%s\n", m->file,
			    m->requires_ext[0] != '\0' ? " (needs the extension "
			    "\"" : "", m->requires_ext,
			    m->requires_ext[0] != '\0' ? "\", available)" : "");
	}
	fprintf(out, "%zu applied, %zu pending", napplied, npending);
	if (held != NULL)
		fprintf(out, " (from %s on held back until the extension \"%s\" "
		    "is installed)", held->file, held->requires_ext);
	fputc('\n', out);
	fflush(out);
	rc = npending > 0 ? 1 : 0;
out:
	set_free(&set);
	return rc;
}
