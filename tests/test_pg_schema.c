/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pg_schema: the migrations in schema/ and tools/migrate.c against a
 * real PostgreSQL. The PG* environment (scripts/dev test sets PGHOST, PGPORT
 * and PGUSER to a superuser of the private cluster) says where; each group
 * creates its own databases, kanal_t_schema_<pid>_<n>, and drops them. The
 * roles kanal_ingest and kanal_analyst are cluster-wide and are left in
 * place: other tests on the same cluster rely on them.
 *
 * Groups: migration file names (no database); migrate (fresh database per
 * test: idempotence, every refusal, a second database, two concurrent
 * migrates); views (one migrated database, usage_hourly emptied before each
 * test: arithmetic, WIB boundaries, small-cell suppression, reference
 * data); roles (one migrated database, each statement run under SET ROLE
 * in a transaction that is rolled back).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "harness.h"
#include "migrate.h"

#define ERRLEN 2048
#define OUTLEN 4096

static const char *schema_dir;	/* KANAL_SCHEMA_DIR */
static int schema_files;	/* migrations in schema_dir */
static PGconn *admin;		/* superuser, maintenance database */
static int db_seq;

struct db {
	char name[64];
	PGconn *conn;
};

/* ------------------------------------------------------------- helpers */

static void
fmt_buf(char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
fmt_buf(char *buf, size_t len, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, len, fmt, ap);

	assert_true(n >= 0 && (size_t)n < len);
}

static PGconn *
db_connect(const char *dbname)
{
	/* Everything but the database comes from the PG* environment. */
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { dbname, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 0);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to database %s: %s", dbname,
		    PQerrorMessage(c));
	/* No NOTICE chatter (CREATE .. IF NOT EXISTS) in the test output. */
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static void
exec_ok(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
exec_ok(PGconn *c, const char *fmt, ...)
{
	char sql[8192];
	va_list ap;
	PGresult *res;
	ExecStatusType st;

	va_start(ap, fmt);
	fmt_buf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	res = PQexec(c, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s\n  failed: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

/* The single value of a one-row, one-column query, as text ("" for NULL). */
static void
scalar(PGconn *c, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
scalar(PGconn *c, char *out, size_t outlen, const char *fmt, ...)
{
	char sql[8192];
	va_list ap;
	PGresult *res;

	va_start(ap, fmt);
	fmt_buf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s\n  failed: %s", sql, PQresultErrorMessage(res));
	if (PQntuples(res) != 1 || PQnfields(res) != 1)
		fail_msg("%s\n  returned %d rows, want 1", sql, PQntuples(res));
	snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

static long
scalar_long(PGconn *c, const char *sql)
{
	char buf[64];

	scalar(c, buf, sizeof(buf), "%s", sql);
	return strtol(buf, NULL, 10);
}

static void
db_create(struct db *d)
{
	snprintf(d->name, sizeof(d->name), "kanal_t_schema_%ld_%d",
	    (long)getpid(), ++db_seq);
	exec_ok(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", d->name);
	exec_ok(admin, "CREATE DATABASE %s", d->name);
	d->conn = db_connect(d->name);
}

static void
db_drop(struct db *d)
{
	if (d->conn != NULL)
		PQfinish(d->conn);
	d->conn = NULL;
	if (d->name[0] != '\0')
		exec_ok(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		    d->name);
	d->name[0] = '\0';
}

/*
 * migrate_apply with its output captured. Returns its result; out and err
 * hold what it printed and reported.
 */
static int
migrate(PGconn *c, const char *dir, char *out, size_t outlen, char *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	rc = migrate_apply(c, dir, f, err, ERRLEN);
	fclose(f);
	snprintf(out, outlen, "%s", buf != NULL ? buf : "");
	free(buf);
	return rc;
}

static void
migrate_ok(PGconn *c, const char *dir)
{
	char out[OUTLEN], err[ERRLEN];

	if (migrate(c, dir, out, sizeof(out), err) != 0)
		fail_msg("migrate %s failed: %s", dir, err);
}

/* "N migrations applied, M already current" -> N and M. */
static void
summary_parse(const char *out, int *applied, int *current)
{
	const char *line = strstr(out, " already current");

	assert_non_null(line);
	while (line > out && line[-1] != '\n')
		line--;
	/* "1 migration applied" has no s: skip the word, whatever it is. */
	if (sscanf(line, "%d %*s applied, %d", applied, current) != 2)
		fail_msg("no summary line in: %s", out);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\"\n  does not contain \"%s\"", hay, needle);
}

/* dir/file into path, which is PATH_MAX long. */
static void
path_join(char *path, const char *dir, const char *file)
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, file);

	assert_true(n > 0 && n < PATH_MAX);
}

static void
file_write(const char *path, const char *text, const char *mode)
{
	FILE *f = fopen(path, mode);

	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Whole file into a malloc'd buffer; *len gets its size. */
static char *
file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	for (;;) {
		size_t got;
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	assert_false(ferror(f));
	fclose(f);
	*len = n;
	return buf;
}

static void
sha256_file(const char *path, char hex[65])
{
	size_t len;
	char *buf = file_read(path, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	assert_int_equal(EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL),
	    1);
	assert_int_equal(mdlen, 32);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	free(buf);
}

/* A private copy of schema/ (migrations only) that a test may change. */
static void
dir_copy_schema(char *dir, size_t len)
{
	const char *base = getenv("KANAL_TEST_TMP");
	DIR *d;
	struct dirent *de;

	if (base == NULL || base[0] == '\0')
		base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	/* KANAL_TEST_TMP is a build directory that may not exist yet. */
	if (mkdir(base, 0700) == -1 && errno != EEXIST)
		fail_msg("mkdir %s: %s", base, strerror(errno));
	snprintf(dir, len, "%s/kanal-schema-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		fail_msg("mkdtemp %s: %s", dir, strerror(errno));
	d = opendir(schema_dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char src[PATH_MAX], dst[PATH_MAX];
		size_t n;
		char *buf;
		FILE *f;

		if (migrate_parse_name(de->d_name, NULL) == -1)
			continue;
		path_join(src, schema_dir, de->d_name);
		path_join(dst, dir, de->d_name);
		buf = file_read(src, &n);
		f = fopen(dst, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(buf, 1, n, f), n);
		assert_int_equal(fclose(f), 0);
		free(buf);
	}
	closedir(d);
}

/* The directory is flat: files only. */
static void
dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[PATH_MAX];
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		path_join(p, dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* ------------------------------------------------- migration file names */

static void
test_migration_names_parse(void **state)
{
	static const struct {
		const char *name;
		int version;	/* -1: not a migration name */
	} cases[] = {
		{ "001_core.sql", 1 },
		{ "010_views_v2.sql", 10 },
		{ "999_x.sql", 999 },
		{ "000_a.sql", 0 },
		{ "1_core.sql", -1 },
		{ "0001_core.sql", -1 },
		{ "001-core.sql", -1 },
		{ "001_.sql", -1 },
		{ "001_Core.sql", -1 },
		{ "001_core.SQL", -1 },
		{ "001_core.sql~", -1 },
		{ "001_core.sql.orig", -1 },
		{ "001_co re.sql", -1 },
		{ "001_co-re.sql", -1 },
		{ ".001_core.sql", -1 },
		{ "abc_core.sql", -1 },
		{ "001_core", -1 },
		{ "", -1 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int v = -2;
		int rc = migrate_parse_name(cases[i].name, &v);
		if (cases[i].version < 0 && rc != -1)
			fail_msg("\"%s\" parsed as a migration name",
			    cases[i].name);
		if (cases[i].version >= 0 &&
		    (rc != 0 || v != cases[i].version))
			fail_msg("\"%s\": rc %d version %d, want version %d",
			    cases[i].name, rc, v, cases[i].version);
	}
	assert_int_equal(migrate_parse_name(NULL, NULL), -1);
}

/* -------------------------------------------------------------- migrate */

struct fixture {
	struct db db;
	char dir[PATH_MAX];	/* private schema copy, when one is made */
	const void *param;	/* the case, for table-driven tests */
};

static int
fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->param = *state;
	db_create(&fx->db);
	*state = fx;
	return 0;
}

static int
fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	db_drop(&fx->db);
	if (fx->dir[0] != '\0')
		dir_remove(fx->dir);
	free(fx);
	return 0;
}

static void
test_migrate_twice_applies_nothing_the_second_time(void **state)
{
	struct fixture *fx = *state;
	char out[OUTLEN], err[ERRLEN], path[PATH_MAX], want[65], got[128];
	int applied, current;

	assert_int_equal(migrate(fx->db.conn, schema_dir, out, sizeof(out),
	    err), 0);
	summary_parse(out, &applied, &current);
	assert_int_equal(applied, schema_files);
	assert_int_equal(current, 0);
	assert_contains(out, "applied 001_core.sql");

	assert_int_equal(migrate(fx->db.conn, schema_dir, out, sizeof(out),
	    err), 0);
	summary_parse(out, &applied, &current);
	assert_int_equal(applied, 0);
	assert_int_equal(current, schema_files);
	assert_null(strstr(out, "applied 0"));

	assert_int_equal(scalar_long(fx->db.conn,
	    "SELECT count(*) FROM kanal.schema_migrations"), schema_files);
	/* The recorded checksum is the SHA-256 of the file's bytes. */
	path_join(path, schema_dir, "001_core.sql");
	sha256_file(path, want);
	scalar(fx->db.conn, got, sizeof(got), "SELECT checksum FROM "
	    "kanal.schema_migrations WHERE version = 1");
	assert_string_equal(got, want);
	scalar(fx->db.conn, got, sizeof(got), "SELECT name FROM "
	    "kanal.schema_migrations WHERE version = 1");
	assert_string_equal(got, "001_core.sql");
	/* The session is left as found: no transaction, no lock. */
	assert_int_equal(PQtransactionStatus(fx->db.conn), PQTRANS_IDLE);
	assert_int_equal(scalar_long(fx->db.conn, "SELECT count(*) FROM "
	    "pg_locks WHERE locktype = 'advisory' AND pid = "
	    "pg_backend_pid()"), 0);
}

/*
 * Each case: a private copy of schema/ plus 050_marker.sql is migrated,
 * then changed as the case says, 900_probe.sql (creating kanal.probe) is
 * added, and migrate must refuse with an error holding every want[]
 * string, without applying the probe or anything else.
 */
struct refusal_case {
	const char *name;
	const char *append;	/* a file whose bytes change */
	const char *remove;	/* a file that goes away */
	const char *add;	/* a new file ... */
	const char *add_sql;	/* ... with this text */
	const char *db_sql;	/* run on the database instead */
	const char *want[4];
	int want_recorded_sum;	/* version whose recorded checksum is in err */
	const char *gone;	/* a table the failed migration must not leave */
};

static const struct refusal_case refusal_cases[] = {
	{
		.name = "an applied file that was edited is refused, naming "
		    "the file, both checksums and the fix",
		.append = "002_reference.sql",
		.want = { "002_reference.sql", "was changed after it was "
		    "applied", "new migration", NULL },
		.want_recorded_sum = 2,
	},
	{
		.name = "a recorded checksum that differs from the file is "
		    "refused",
		.db_sql = "UPDATE kanal.schema_migrations SET checksum = "
		    "repeat('0', 64) WHERE version = 1",
		.want = { "001_core.sql", "applied sha256 "
		    "0000000000000000000000000000000000000000000000000000000000000000",
		    "Never edit an applied migration", NULL },
	},
	{
		.name = "an applied migration whose file is gone is refused",
		.remove = "050_marker.sql",
		.want = { "migration 050 (050_marker.sql)", "no 050_*.sql",
		    "Nothing was applied", NULL },
	},
	{
		.name = "a new file numbered below an applied one is refused",
		.add = "040_forgotten.sql",
		.add_sql = "CREATE TABLE kanal.forgotten (i int);\n",
		.want = { "040_forgotten.sql", "renumber it above 050", NULL },
		.gone = "kanal.forgotten",
	},
	{
		.name = "two files with the same number are refused",
		.add = "050_twin.sql",
		.add_sql = "SELECT 2;\n",
		.want = { "050_marker.sql", "050_twin.sql", "same number",
		    NULL },
	},
	{
		.name = "a failing migration is rolled back and reported with "
		    "file, line and the PostgreSQL message",
		.add = "060_broken.sql",
		.add_sql = "-- creates a table, then fails\n"
		    "CREATE TABLE kanal.half (i int);\n"
		    "SELECT no_such_column FROM kanal.half;\n",
		.want = { "060_broken.sql:3:", "no_such_column", "42703",
		    NULL },
		.gone = "kanal.half",
	},
	{
		.name = "a failing statement inside a DO block is reported",
		.add = "060_raise.sql",
		.add_sql = "CREATE TABLE kanal.half (i int);\n"
		    "DO $$ BEGIN RAISE EXCEPTION 'boom %', 42; END $$;\n",
		.want = { "060_raise.sql", "boom 42", "P0001", NULL },
		.gone = "kanal.half",
	},
	{
		.name = "a migration with COPY FROM STDIN is refused and the "
		    "connection stays usable",
		.add = "060_copy.sql",
		.add_sql = "CREATE TABLE kanal.half (i int);\n"
		    "COPY kanal.half FROM STDIN;\n",
		.want = { "060_copy.sql", "use INSERT", NULL },
		.gone = "kanal.half",
	},
	{
		.name = "a migration that commits by itself is reported and "
		    "not recorded",
		.add = "060_commit.sql",
		.add_sql = "COMMIT;\n",
		.want = { "060_commit.sql", "must not contain BEGIN, COMMIT",
		    NULL },
	},
};

static void
test_migrate_refuses(void **state)
{
	struct fixture *fx = *state;
	const struct refusal_case *c = fx->param;
	PGconn *conn = fx->db.conn;
	char out[OUTLEN], err[ERRLEN], path[PATH_MAX], sum[128];
	long recorded;

	dir_copy_schema(fx->dir, sizeof(fx->dir));
	path_join(path, fx->dir, "050_marker.sql");
	file_write(path, "SELECT 1;\n", "w");
	migrate_ok(conn, fx->dir);
	recorded = scalar_long(conn, "SELECT count(*) FROM "
	    "kanal.schema_migrations");
	assert_int_equal(recorded, schema_files + 1);
	if (c->want_recorded_sum != 0)
		scalar(conn, sum, sizeof(sum), "SELECT checksum FROM "
		    "kanal.schema_migrations WHERE version = %d",
		    c->want_recorded_sum);

	if (c->append != NULL) {
		path_join(path, fx->dir, c->append);
		file_write(path, "-- an innocent-looking edit\n", "a");
	}
	if (c->remove != NULL) {
		path_join(path, fx->dir, c->remove);
		assert_int_equal(unlink(path), 0);
	}
	if (c->add != NULL) {
		path_join(path, fx->dir, c->add);
		file_write(path, c->add_sql, "w");
	}
	if (c->db_sql != NULL)
		exec_ok(conn, "%s", c->db_sql);
	path_join(path, fx->dir, "900_probe.sql");
	file_write(path, "CREATE TABLE kanal.probe (i int);\n", "w");

	if (migrate(conn, fx->dir, out, sizeof(out), err) != -1)
		fail_msg("%s: migrate succeeded; output:\n%s", c->name, out);
	for (size_t i = 0; i < 4 && c->want[i] != NULL; i++)
		assert_contains(err, c->want[i]);
	if (c->want_recorded_sum != 0) {
		char now[65];
		assert_contains(err, sum);
		path_join(path, fx->dir, c->append);
		sha256_file(path, now);
		assert_contains(err, now);
	}

	/* Nothing was applied and nothing was recorded. */
	assert_int_equal(scalar_long(conn, "SELECT count(*) FROM "
	    "kanal.schema_migrations"), recorded);
	assert_int_equal(scalar_long(conn, "SELECT count(*) FROM "
	    "pg_class WHERE oid = to_regclass('kanal.probe')"), 0);
	if (c->gone != NULL) {
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_class "
		    "WHERE oid = to_regclass('%s')", c->gone);
		assert_int_equal(scalar_long(conn, sql), 0);
	}
	/* The session is usable and holds no lock. */
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
	assert_int_equal(scalar_long(conn, "SELECT count(*) FROM pg_locks "
	    "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"), 0);
}

static void
test_migrate_reports_a_missing_schema_dir(void **state)
{
	struct fixture *fx = *state;
	char out[OUTLEN], err[ERRLEN];

	assert_int_equal(migrate(fx->db.conn, "/nonexistent/kanal/schema",
	    out, sizeof(out), err), -1);
	assert_contains(err, "/nonexistent/kanal/schema");
	/* The database was not touched. */
	assert_int_equal(scalar_long(fx->db.conn, "SELECT count(*) FROM "
	    "pg_namespace WHERE nspname = 'kanal'"), 0);
}

static void
test_second_database_in_same_cluster_migrates_cleanly(void **state)
{
	struct fixture *fx = *state;
	struct db second = { { 0 }, NULL };
	char out[OUTLEN], err[ERRLEN], sql[512];
	int applied, current;

	/* The first database creates the roles (or finds them). */
	migrate_ok(fx->db.conn, schema_dir);
	db_create(&second);
	if (migrate(second.conn, schema_dir, out, sizeof(out), err) != 0) {
		db_drop(&second);
		fail_msg("second database: %s", err);
	}
	summary_parse(out, &applied, &current);
	assert_int_equal(applied, schema_files);
	assert_int_equal(scalar_long(second.conn, "SELECT count(*) FROM "
	    "pg_roles WHERE rolname IN ('kanal_ingest', 'kanal_analyst')"), 2);
	/* The per-database grants were made in the second one too. */
	snprintf(sql, sizeof(sql), "SELECT count(*) WHERE "
	    "has_database_privilege('kanal_ingest', '%s', 'TEMPORARY') AND "
	    "has_table_privilege('kanal_ingest', 'kanal.usage_hourly', "
	    "'INSERT') AND has_table_privilege('kanal_analyst', "
	    "'kanal.digital_adoption_monthly', 'SELECT')", second.name);
	assert_int_equal(scalar_long(second.conn, sql), 1);
	db_drop(&second);
}

/*
 * A child process that connects to dbname, waits for a byte on go, runs
 * migrate_apply and exits with the number of migrations it applied, or
 * 100 + a reason when it failed. No cmocka asserts in the child.
 */
static pid_t
child_migrate_spawn(const char *dbname, int go_fd)
{
	pid_t pid = fork();
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { dbname, NULL };
	PGconn *cc;
	char cerr[ERRLEN], c, *buf = NULL, *last;
	size_t len = 0;
	FILE *f;
	int rc, applied = -1;

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	cc = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(cc) != CONNECTION_OK)
		_exit(101);
	PQclear(PQexec(cc, "SET client_min_messages = warning"));
	if (read(go_fd, &c, 1) != 1)
		_exit(102);
	f = open_memstream(&buf, &len);
	if (f == NULL)
		_exit(103);
	rc = migrate_apply(cc, schema_dir, f, cerr, sizeof(cerr));
	fclose(f);
	PQfinish(cc);
	if (rc != 0) {
		fprintf(stderr, "concurrent migrate of %s: %s\n", dbname, cerr);
		_exit(104);
	}
	/* The summary is the last line. */
	last = buf + len;
	if (last > buf)
		last--;
	while (last > buf && last[-1] != '\n')
		last--;
	if (sscanf(last, "%d migration", &applied) != 1 || applied < 0 ||
	    applied >= 100)
		_exit(105);
	_exit(applied);
}

/* Wait for the child; returns how many migrations it applied. */
static int
child_migrate_wait(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) >= 100)
		fail_msg("the concurrent migrate failed (exit %d)",
		    WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/*
 * Two migrates of one fresh database at once: the advisory lock makes one
 * wait, so both succeed and each migration is applied exactly once.
 */
static void
test_concurrent_migrates_apply_each_migration_once(void **state)
{
	struct fixture *fx = *state;
	char out[OUTLEN], err[ERRLEN];
	int go[2], applied, current;
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	pid = child_migrate_spawn(fx->db.name, go[0]);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(migrate(fx->db.conn, schema_dir, out, sizeof(out),
	    err), 0);
	summary_parse(out, &applied, &current);
	assert_int_equal(applied + child_migrate_wait(pid), schema_files);
	assert_int_equal(scalar_long(fx->db.conn, "SELECT count(*) FROM "
	    "kanal.schema_migrations"), schema_files);
	close(go[0]);
	close(go[1]);
}

/*
 * Two databases of one cluster migrated at once (ctest runs the pg tests in
 * parallel): the cluster-wide role statements must not collide.
 */
static void
test_concurrent_migrates_of_two_databases_both_succeed(void **state)
{
	struct fixture *fx = *state;
	struct db second = { { 0 }, NULL };
	char out[OUTLEN], err[ERRLEN];
	int go[2], applied, current, rc;
	pid_t pid;

	db_create(&second);
	assert_int_equal(pipe(go), 0);
	pid = child_migrate_spawn(second.name, go[0]);
	assert_int_equal(write(go[1], "g", 1), 1);
	rc = migrate(fx->db.conn, schema_dir, out, sizeof(out), err);
	applied = child_migrate_wait(pid);
	db_drop(&second);
	close(go[0]);
	close(go[1]);
	if (rc != 0)
		fail_msg("migrate: %s", err);
	assert_int_equal(applied, schema_files);
	summary_parse(out, &applied, &current);
	assert_int_equal(applied, schema_files);
}

/* ---------------------------------------------------------------- views */

static struct db views_db;

static int
views_group_setup(void **state)
{
	(void)state;
	db_create(&views_db);
	migrate_ok(views_db.conn, schema_dir);
	return 0;
}

static int
views_group_teardown(void **state)
{
	(void)state;
	db_drop(&views_db);
	return 0;
}

static int
views_setup(void **state)
{
	(void)state;
	exec_ok(views_db.conn, "TRUNCATE kanal.usage_hourly, kanal.usage_daily, "
	    "kanal.usage_monthly_cell");
	exec_ok(views_db.conn, "SET TimeZone = 'UTC'");
	return 0;
}

/*
 * Hourly rows as the owner, then the daily and monthly tiers the views
 * read, made from them as migration 007 does (kanald writes all three).
 */
static void
hourly_insert(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
hourly_insert(const char *fmt, ...)
{
	char sql[8192];
	va_list ap;

	va_start(ap, fmt);
	fmt_buf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	exec_ok(views_db.conn, "%s", sql);
	th_tiers_fill(views_db.conn);
}

struct expect {
	const char *column;
	const char *value;	/* SQL expression; "NULL" for NULL */
};

/*
 * The one row of view matching where must have every column equal its
 * expected value (numerics compared to 12 decimals).
 */
static void
expect_row(const char *view, const char *where, const struct expect *e,
    size_t n)
{
	char sql[1024];
	PGresult *res;

	for (size_t i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "SELECT %s::text, (%s)::text, "
		    "round(%s::numeric, 12) IS NOT DISTINCT FROM "
		    "round((%s)::numeric, 12) FROM kanal.%s WHERE %s",
		    e[i].column, e[i].value, e[i].column, e[i].value, view,
		    where);
		res = PQexec(views_db.conn, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			fail_msg("%s\n  failed: %s", sql,
			    PQresultErrorMessage(res));
		if (PQntuples(res) != 1)
			fail_msg("kanal.%s WHERE %s: %d rows, want 1", view,
			    where, PQntuples(res));
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
			fail_msg("kanal.%s WHERE %s: %s = %s, want %s (%s)",
			    view, where, e[i].column,
			    PQgetisnull(res, 0, 0) ? "NULL" :
			    PQgetvalue(res, 0, 0), e[i].value,
			    PQgetisnull(res, 0, 1) ? "NULL" :
			    PQgetvalue(res, 0, 1));
		PQclear(res);
	}
}

/*
 * The hand-computed case, one service and region, every channel kind:
 *   web        completed            10 events, 50000 ms over 8
 *   mobile_app completed assisted    4 events,  8000 ms over 4
 *   kiosk      abandoned             3 events, no duration
 *   counter    completed             5 events, 30000 ms over 5
 *   counter    failed    assisted    2 events,  1000 ms over 1
 *   phone      unknown               6 events, no duration
 *   fax        completed             7 events (not in kanal.channel)
 */
static const struct {
	const char *channel, *outcome;
	int assisted;
	long events, dur_sum, dur_events;
} hand_rows[] = {
	{ "web", "completed", 0, 10, 50000, 8 },
	{ "mobile_app", "completed", 1, 4, 8000, 4 },
	{ "kiosk", "abandoned", 0, 3, 0, 0 },
	{ "counter", "completed", 0, 5, 30000, 5 },
	{ "counter", "failed", 1, 2, 1000, 1 },
	{ "phone", "unknown", 0, 6, 0, 0 },
	{ "fax", "completed", 0, 7, 700, 7 },
};

static const struct expect hand_expect[] = {
	{ "digital_events", "17" },		/* 10 + 4 + 3 */
	{ "manual_events", "13" },		/* 5 + 2 + 6 */
	{ "assisted_events", "6" },		/* 4 + 2 */
	{ "completed_events", "26" },		/* 10 + 4 + 5 + 7 */
	{ "digital_take_up", "14::numeric / 26" },
	{ "self_service_rate", "10::numeric / 26" },
	{ "completion_rate", "26::numeric / 31" },	/* 26 + 3 + 2 */
	{ "mean_duration_digital_ms", "58000::numeric / 12" },
	{ "mean_duration_manual_ms", "31000::numeric / 6" },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The hand rows, row i at buckets[i % nbuckets]. */
static void
hand_rows_insert(const char *service, const char *region,
    const char *const *buckets, size_t nbuckets)
{
	for (size_t i = 0; i < NELEM(hand_rows); i++)
		hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
		    "('%s', '%s', '%s', '%s', '%s', %s, %ld, %ld, %ld)",
		    buckets[i % nbuckets], service, hand_rows[i].channel,
		    region, hand_rows[i].outcome,
		    hand_rows[i].assisted ? "true" : "false",
		    hand_rows[i].events, hand_rows[i].dur_sum,
		    hand_rows[i].dur_events);
}

static void
test_daily_view_computes_every_column(void **state)
{
	static const char *const day[] = { "2026-03-10 03:00Z",
	    "2026-03-10 09:00Z", "2026-03-09 17:00Z" };
	(void)state;

	hand_rows_insert("dukcapil.akta-lahir", "32.73.02", day, NELEM(day));
	/* Same service, a kelurahan: a row of its own, not rolled up. */
	hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 03:00Z', 'dukcapil.akta-lahir', 'web', "
	    "'32.73.02.1003', 'completed', false, 1, 0, 0)");
	expect_row("digital_adoption_daily", "day = '2026-03-10' AND "
	    "service_code = 'dukcapil.akta-lahir' AND region_code = "
	    "'32.73.02'", hand_expect, NELEM(hand_expect));
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.digital_adoption_daily"), 2);
	assert_int_equal(scalar_long(views_db.conn, "SELECT digital_events "
	    "FROM kanal.digital_adoption_daily WHERE region_code = "
	    "'32.73.02.1003'"), 1);
}

static void
test_monthly_view_sums_days_before_dividing(void **state)
{
	/* WIB: 1 March 00:00 to 31 March 23:00, all in March. */
	static const char *const march[] = { "2026-02-28 17:00Z",
	    "2026-03-15 12:00Z", "2026-03-31 16:00Z" };
	(void)state;

	hand_rows_insert("bapenda.pbb", "32.73.12", march, NELEM(march));
	/* April in WIB, must not count in March. */
	hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-31 17:00Z', 'bapenda.pbb', 'web', '32.73.12', "
	    "'completed', false, 100, 0, 0)");
	expect_row("digital_adoption_monthly", "month = '2026-03-01' AND "
	    "service_code = 'bapenda.pbb' AND region_code = '32.73.12'",
	    hand_expect, NELEM(hand_expect));
	assert_int_equal(scalar_long(views_db.conn, "SELECT digital_events "
	    "FROM kanal.digital_adoption_monthly WHERE month = "
	    "'2026-04-01'"), 100);
}

static void
test_ratios_are_null_when_their_denominator_is_zero(void **state)
{
	static const struct expect only_abandoned[] = {
		{ "digital_events", "3" },
		{ "completed_events", "0" },
		{ "digital_take_up", "NULL" },
		{ "self_service_rate", "NULL" },
		{ "completion_rate", "0" },
		{ "mean_duration_digital_ms", "NULL" },
		{ "mean_duration_manual_ms", "NULL" },
	};
	static const struct expect only_unknown[] = {
		{ "manual_events", "2" },
		{ "completion_rate", "NULL" },
		{ "mean_duration_manual_ms", "NULL" },
	};
	(void)state;

	hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 03:00Z', 's.a', 'kiosk', '32.73.01', 'abandoned', "
	    "false, 3, 0, 0), "
	    "('2026-03-10 03:00Z', 's.u', 'paper', '32.73.01', 'unknown', "
	    "false, 2, 0, 0)");
	expect_row("digital_adoption_daily", "service_code = 's.a'",
	    only_abandoned, NELEM(only_abandoned));
	expect_row("digital_adoption_monthly", "service_code = 's.a'",
	    only_abandoned, NELEM(only_abandoned));
	expect_row("digital_adoption_daily", "service_code = 's.u'",
	    only_unknown, NELEM(only_unknown));
}

static void
test_days_and_months_are_local_wib(void **state)
{
	static const struct {
		const char *bucket, *day, *month;
	} cases[] = {
		{ "2026-03-01 16:00Z", "2026-03-01", "2026-03-01" },
		{ "2026-03-01 17:00Z", "2026-03-02", "2026-03-01" },
		{ "2026-02-28 16:00Z", "2026-02-28", "2026-02-01" },
		{ "2026-02-28 17:00Z", "2026-03-01", "2026-03-01" },
		{ "2026-03-31 16:00Z", "2026-03-31", "2026-03-01" },
		{ "2026-03-31 17:00Z", "2026-04-01", "2026-04-01" },
		{ "2025-12-31 16:00Z", "2025-12-31", "2025-12-01" },
		{ "2025-12-31 17:00Z", "2026-01-01", "2026-01-01" },
	};
	/* The session's TimeZone must not move a day. */
	static const char *const zones[] = { "UTC", "America/Los_Angeles",
	    "Asia/Tokyo" };
	(void)state;

	for (size_t i = 0; i < NELEM(cases); i++)
		hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
		    "('%s', 'boundary.case-%zu', 'web', '32.73.01', "
		    "'completed', false, 1, 0, 0)", cases[i].bucket, i);
	for (size_t z = 0; z < NELEM(zones); z++) {
		exec_ok(views_db.conn, "SET TimeZone = '%s'", zones[z]);
		for (size_t i = 0; i < NELEM(cases); i++) {
			char where[64], day[32], month[32];
			snprintf(where, sizeof(where),
			    "service_code = 'boundary.case-%zu'", i);
			scalar(views_db.conn, day, sizeof(day), "SELECT day "
			    "FROM kanal.digital_adoption_daily WHERE %s",
			    where);
			scalar(views_db.conn, month, sizeof(month), "SELECT "
			    "month FROM kanal.digital_adoption_monthly WHERE "
			    "%s", where);
			if (strcmp(day, cases[i].day) != 0 ||
			    strcmp(month, cases[i].month) != 0)
				fail_msg("bucket %s (TimeZone %s): day %s month "
				    "%s, want day %s month %s",
				    cases[i].bucket, zones[z], day, month,
				    cases[i].day, cases[i].month);
		}
	}
}

/*
 * usage_local_hourly: each hourly row once, its hour as WIB wall-clock
 * time whatever the session's TimeZone, the local day and month, and the
 * channel's mode (NULL for a channel kanal.channel does not list).
 */
static void
test_local_hourly_view_is_the_hourly_table_in_wib(void **state)
{
	static const struct {
		const char *bucket, *channel, *hour, *day, *month, *mode;
	} cases[] = {
		{ "2026-03-31 16:00Z", "counter", "2026-03-31 23:00:00",
		    "2026-03-31", "2026-03-01", "manual" },
		{ "2026-03-31 17:00Z", "web", "2026-04-01 00:00:00",
		    "2026-04-01", "2026-04-01", "digital" },
		{ "2026-04-01 02:00Z", "pigeon", "2026-04-01 09:00:00",
		    "2026-04-01", "2026-04-01", "(null)" },
	};
	static const char *const zones[] = { "UTC", "America/Los_Angeles" };
	(void)state;

	for (size_t i = 0; i < NELEM(cases); i++)
		hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
		    "('%s', 'local.case-%zu', '%s', '32.73.01', 'completed', "
		    "true, %zu, 600, 1)", cases[i].bucket, i, cases[i].channel,
		    i + 2);
	for (size_t z = 0; z < NELEM(zones); z++) {
		exec_ok(views_db.conn, "SET TimeZone = '%s'", zones[z]);
		for (size_t i = 0; i < NELEM(cases); i++) {
			char got[256], want[256];

			scalar(views_db.conn, got, sizeof(got), "SELECT "
			    "local_hour || ' ' || day || ' ' || month || ' ' "
			    "|| coalesce(mode, '(null)') || ' ' || events || "
			    "' ' || assisted FROM kanal.usage_local_hourly "
			    "WHERE service_code = 'local.case-%zu'", i);
			snprintf(want, sizeof(want), "%s %s %s %s %zu true",
			    cases[i].hour, cases[i].day, cases[i].month,
			    cases[i].mode, i + 2);
			if (strcmp(got, want) != 0)
				fail_msg("bucket %s (TimeZone %s): got \"%s\", "
				    "want \"%s\"", cases[i].bucket, zones[z],
				    got, want);
		}
	}
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.usage_local_hourly"), scalar_long(views_db.conn,
	    "SELECT count(*) FROM kanal.usage_hourly"));
}

static void
test_published_view_suppresses_cells_under_ten_events(void **state)
{
	static const struct {
		const char *what, *service, *kecamatan, *month;
		int shown;		/* 1 shown, 0 suppressed, -1 no row */
		long events;
		const char *name;
	} cases[] = {
		{ "9 events are suppressed", "p.nine", "32.73.05",
		    "2026-03-01", 0, 0, "Andir" },
		{ "10 events are shown", "p.ten", "32.73.05", "2026-03-01",
		    1, 10, "Andir" },
		{ "kelurahan roll up to their kecamatan before the threshold",
		    "p.rollup", "32.73.06", "2026-03-01", 1, 10, "Cicendo" },
		{ "a city-level code names no kecamatan", "p.city", NULL,
		    NULL, -1, 0, NULL },
		{ "a WIB month boundary splits a cell (March)", "p.split",
		    "32.73.07", "2026-03-01", 0, 0, "Sukajadi" },
		{ "a WIB month boundary splits a cell (April)", "p.split",
		    "32.73.07", "2026-04-01", 0, 0, "Sukajadi" },
	};
	(void)state;

	hourly_insert("INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 03:00Z', 'p.nine', 'web', '32.73.05', 'completed', "
	    "false, 9, 0, 0), "
	    "('2026-03-10 03:00Z', 'p.ten', 'web', '32.73.05', 'completed', "
	    "false, 7, 7000, 7), "
	    "('2026-03-10 03:00Z', 'p.ten', 'counter', '32.73.05', "
	    "'abandoned', true, 3, 0, 0), "
	    "('2026-03-10 03:00Z', 'p.rollup', 'web', '32.73.06.1001', "
	    "'completed', false, 5, 0, 0), "
	    "('2026-03-10 03:00Z', 'p.rollup', 'web', '32.73.06', "
	    "'completed', false, 5, 0, 0), "
	    "('2026-03-10 03:00Z', 'p.city', 'web', '32.73', 'completed', "
	    "false, 50, 0, 0), "
	    "('2026-03-31 16:00Z', 'p.split', 'web', '32.73.07', "
	    "'completed', false, 6, 0, 0), "
	    "('2026-03-31 17:00Z', 'p.split', 'web', '32.73.07', "
	    "'completed', false, 6, 0, 0)");

	for (size_t i = 0; i < NELEM(cases); i++) {
		char sql[512], v[64];
		long n;

		if (cases[i].shown < 0) {
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM "
			    "kanal.published_adoption_monthly WHERE "
			    "service_code = '%s'", cases[i].service);
			n = scalar_long(views_db.conn, sql);
			if (n != 0)
				fail_msg("%s: %ld rows, want none",
				    cases[i].what, n);
			continue;
		}
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM "
		    "kanal.published_adoption_monthly WHERE service_code = "
		    "'%s' AND month = '%s' AND kecamatan_code = '%s' AND "
		    "kecamatan_name = '%s' AND suppressed = %s AND "
		    "num_nulls(events, digital_events, manual_events, "
		    "assisted_events, completed_events, digital_take_up, "
		    "self_service_rate, completion_rate, "
		    "mean_duration_digital_ms, mean_duration_manual_ms) %s",
		    cases[i].service, cases[i].month, cases[i].kecamatan,
		    cases[i].name, cases[i].shown ? "false" : "true",
		    cases[i].shown ? "< 10" : "= 10");
		n = scalar_long(views_db.conn, sql);
		if (n != 1)
			fail_msg("%s: no such row (%s)", cases[i].what, sql);
		if (cases[i].shown) {
			scalar(views_db.conn, v, sizeof(v), "SELECT events "
			    "FROM kanal.published_adoption_monthly WHERE "
			    "service_code = '%s'", cases[i].service);
			assert_int_equal(strtol(v, NULL, 10), cases[i].events);
		}
	}

	/* The shown cell's indicators are the analyst formulas. */
	{
		static const struct expect ten[] = {
			{ "digital_events", "7" },
			{ "manual_events", "3" },
			{ "assisted_events", "3" },
			{ "completed_events", "7" },
			{ "digital_take_up", "1" },
			{ "self_service_rate", "1" },
			{ "completion_rate", "7::numeric / 10" },
			{ "mean_duration_digital_ms", "1000" },
			{ "mean_duration_manual_ms", "NULL" },
		};
		expect_row("published_adoption_monthly",
		    "service_code = 'p.ten'", ten, NELEM(ten));
	}
}

/* Other code (kanalctl report, dashboards) reads these names and types. */
static void
test_views_have_the_contract_columns(void **state)
{
	static const char indicators[] = "digital_events bigint,"
	    "manual_events bigint,assisted_events bigint,"
	    "completed_events bigint,digital_take_up numeric,"
	    "self_service_rate numeric,completion_rate numeric,"
	    "mean_duration_digital_ms numeric,mean_duration_manual_ms numeric";
	static const struct {
		const char *view, *lead;
	} cases[] = {
		{ "digital_adoption_daily",
		    "day date,service_code text,region_code text," },
		{ "digital_adoption_monthly",
		    "month date,service_code text,region_code text," },
		{ "published_adoption_monthly", "month date,"
		    "kecamatan_code text,kecamatan_name text,service_code text,"
		    "suppressed boolean,events bigint," },
	};
	(void)state;

	for (size_t i = 0; i < NELEM(cases); i++) {
		char got[1024], want[1024];
		scalar(views_db.conn, got, sizeof(got), "SELECT "
		    "string_agg(column_name || ' ' || data_type, ',' "
		    "ORDER BY ordinal_position) FROM information_schema.columns "
		    "WHERE table_schema = 'kanal' AND table_name = '%s'",
		    cases[i].view);
		snprintf(want, sizeof(want), "%s%s", cases[i].lead,
		    indicators);
		assert_string_equal(got, want);
	}
}

static void
test_reference_data_is_seeded(void **state)
{
	static const struct {
		const char *code, *name;
	} kecamatan[] = {
		{ "32.73.01", "Sukasari" }, { "32.73.02", "Coblong" },
		{ "32.73.03", "Babakan Ciparay" },
		{ "32.73.09", "Bandung Wetan" }, { "32.73.13", "Lengkong" },
		{ "32.73.19", "Sumur Bandung" }, { "32.73.22", "Buahbatu" },
		{ "32.73.26", "Ujung Berung" }, { "32.73.27", "Gedebage" },
		{ "32.73.30", "Mandalajati" },
	};
	static const struct {
		const char *code, *mode;
	} channels[] = {
		{ "web", "digital" }, { "mobile_app", "digital" },
		{ "kiosk", "digital" }, { "chat", "digital" },
		{ "partner", "digital" }, { "counter", "manual" },
		{ "phone", "manual" }, { "outreach", "manual" },
		{ "paper", "manual" },
	};
	char v[128];
	long n;
	(void)state;

	for (size_t i = 0; i < NELEM(kecamatan); i++) {
		scalar(views_db.conn, v, sizeof(v), "SELECT name FROM "
		    "kanal.region WHERE code = '%s' AND level = 'kecamatan' "
		    "AND parent_code = '32.73'", kecamatan[i].code);
		assert_string_equal(v, kecamatan[i].name);
	}
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.region WHERE level = 'kecamatan' AND parent_code = '32.73' "
	    "AND code ~ '^32[.]73[.](0[1-9]|[12][0-9]|30)$' AND population > 0"),
	    30);
	/* The kecamatan add up to the city, give or take the rounding. */
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.region c WHERE c.code = '32.73' AND abs((SELECT "
	    "sum(population) FROM kanal.region WHERE parent_code = '32.73') - "
	    "c.population) < c.population / 50"), 1);
	for (size_t i = 0; i < NELEM(channels); i++) {
		scalar(views_db.conn, v, sizeof(v), "SELECT mode FROM "
		    "kanal.channel WHERE code = '%s'", channels[i].code);
		assert_string_equal(v, channels[i].mode);
	}
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.channel"), NELEM(channels));
	n = scalar_long(views_db.conn, "SELECT count(*) FROM kanal.service");
	assert_in_range(n, 20, 30);
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.service WHERE code ~ '^[a-z0-9][a-z0-9._-]{0,63}$' AND "
	    "code ~ '^[a-z0-9]+[.][a-z0-9-]+$' AND name <> '' AND "
	    "agency <> ''"), n);
	assert_int_equal(scalar_long(views_db.conn, "SELECT count(*) FROM "
	    "kanal.service WHERE code IN ('dukcapil.akta-lahir', "
	    "'dukcapil.akta-kematian', 'dukcapil.kartu-keluarga', "
	    "'dukcapil.ktp-el', 'dukcapil.pindah-datang', 'dukcapil.kia', "
	    "'dpmptsp.izin-usaha', 'dpmptsp.pbg', 'bapenda.pbb', "
	    "'bapenda.bphtb', 'diskominfo.lapor')"), 11);
}

/* ---------------------------------------------------------------- roles */

static struct db roles_db;

static int
roles_group_setup(void **state)
{
	(void)state;
	db_create(&roles_db);
	migrate_ok(roles_db.conn, schema_dir);
	exec_ok(roles_db.conn, "INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 03:00Z', 'dukcapil.kia', 'web', '32.73.01', "
	    "'completed', false, 1, 0, 0)");
	exec_ok(roles_db.conn, "INSERT INTO kanal.collector_checkpoint "
	    "(collector_id, wal_position) VALUES ('c1', 10)");
	return 0;
}

static int
roles_group_teardown(void **state)
{
	(void)state;
	db_drop(&roles_db);
	return 0;
}

#define UPSERT_HOURLY \
	"INSERT INTO kanal.usage_hourly AS u VALUES ('2026-03-10 03:00Z', " \
	"'dukcapil.kia', 'web', '32.73.01', 'completed', false, 2, 10, 1) " \
	"ON CONFLICT (bucket, service_code, channel, region_code, outcome, " \
	"assisted) DO UPDATE SET events = u.events + EXCLUDED.events, " \
	"duration_ms_sum = u.duration_ms_sum + EXCLUDED.duration_ms_sum, " \
	"duration_events = u.duration_events + EXCLUDED.duration_events"

static const struct role_case {
	const char *role;
	const char *sql;
	int allowed;
} role_cases[] = {
	{ "kanal_ingest", "INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 04:00Z', 'dukcapil.kia', 'web', '32.73.01', "
	    "'completed', false, 1, 0, 0)", 1 },
	{ "kanal_ingest", UPSERT_HOURLY, 1 },
	{ "kanal_ingest", "INSERT INTO kanal.usage_daily VALUES ('2026-03-10', "
	    "'dukcapil.kia', 'web', '32.73.01', 'completed', false, 1, 0, 0)",
	  1 },
	{ "kanal_ingest", "UPDATE kanal.usage_daily SET events = events + 1",
	  1 },
	{ "kanal_ingest", "DELETE FROM kanal.usage_daily", 0 },
	{ "kanal_ingest", "TRUNCATE kanal.usage_daily", 0 },
	{ "kanal_ingest", "UPDATE kanal.usage_monthly_cell SET events = "
	    "events + 1", 1 },
	{ "kanal_ingest", "DELETE FROM kanal.usage_monthly_cell", 0 },
	{ "kanal_ingest", "DROP TABLE kanal.usage_hourly_default", 0 },
	{ "kanal_ingest", "UPDATE kanal.hourly_retention SET kept_from = "
	    "now()", 0 },
	{ "kanal_ingest", "LOCK TABLE ONLY kanal.usage_hourly IN ROW "
	    "EXCLUSIVE MODE; SELECT kept_from FROM kanal.hourly_retention", 1 },
	{ "kanal_ingest", "SELECT count(*) FROM kanal.usage_hourly_default",
	  1 },
	{ "kanal_ingest", "SELECT kanal.hourly_partitions_ensure(now(), "
	    "now() + interval '1 month')", 1 },
	{ "kanal_ingest", "SELECT * FROM kanal.hourly_retention_apply(400, "
	    "true)", 1 },
	{ "kanal_ingest", "UPDATE kanal.usage_hourly SET events = events + 1 "
	    "WHERE service_code = 'dukcapil.kia'", 1 },
	{ "kanal_ingest", "INSERT INTO kanal.collector_checkpoint AS c "
	    "(collector_id, wal_position) VALUES ('c1', 20) ON CONFLICT "
	    "(collector_id) DO UPDATE SET wal_position = EXCLUDED.wal_position, "
	    "updated_at = now()", 1 },
	{ "kanal_ingest", "UPDATE kanal.collector_checkpoint SET "
	    "wal_position = 30 WHERE collector_id = 'c1'", 1 },
	{ "kanal_ingest", "SELECT wal_position FROM kanal.collector_checkpoint "
	    "WHERE collector_id = 'c1'", 1 },
	{ "kanal_ingest", "CREATE TEMP TABLE staging (LIKE kanal.usage_hourly) "
	    "ON COMMIT DROP", 1 },
	{ "kanal_ingest", "SELECT * FROM kanal.region", 0 },
	/* 008: the flush reads the channels' modes for the monthly cells. */
	{ "kanal_ingest", "SELECT * FROM kanal.channel", 1 },
	{ "kanal_ingest", "SELECT * FROM kanal.digital_adoption_daily", 0 },
	{ "kanal_ingest", "DELETE FROM kanal.usage_hourly", 0 },
	{ "kanal_ingest", "TRUNCATE kanal.usage_hourly", 0 },
	{ "kanal_ingest", "DELETE FROM kanal.collector_checkpoint", 0 },
	{ "kanal_ingest", "CREATE TABLE kanal.x (i int)", 0 },
	{ "kanal_ingest", "CREATE TABLE public.x (i int)", 0 },
	{ "kanal_ingest", "INSERT INTO kanal.schema_migrations (version, "
	    "name, checksum) VALUES (999, 'x', 'x')", 0 },
	/* No view, no reference table, no DDL: only the two tables. */
	{ "kanal_ingest", "SELECT * FROM kanal.digital_adoption_monthly", 0 },
	{ "kanal_ingest", "SELECT * FROM kanal.published_adoption_monthly", 0 },
	{ "kanal_ingest", "SELECT * FROM kanal.schema_migrations", 0 },
	{ "kanal_ingest", "INSERT INTO kanal.channel (code, mode, label) "
	    "VALUES ('x', 'digital', 'x')", 0 },
	{ "kanal_ingest", "UPDATE kanal.service SET name = 'x'", 0 },
	{ "kanal_ingest", "DELETE FROM kanal.region", 0 },
	{ "kanal_ingest", "TRUNCATE kanal.collector_checkpoint", 0 },
	/* The ledger: rows in, slots emptied whole, never edited. */
	{ "kanal_ingest", "INSERT INTO kanal.batch_ledger (slot, digest, "
	    "source, collector_id) VALUES (0, md5('x')::uuid, 's', 'c1')", 1 },
	{ "kanal_ingest", "SELECT count(*) FROM kanal.batch_ledger", 1 },
	{ "kanal_ingest", "TRUNCATE kanal.batch_ledger_2", 1 },
	{ "kanal_ingest", "UPDATE kanal.batch_ledger_epoch SET epoch = epoch",
	    1 },
	{ "kanal_ingest", "TRUNCATE kanal.batch_ledger", 0 },
	{ "kanal_ingest", "DELETE FROM kanal.batch_ledger", 0 },
	{ "kanal_ingest", "UPDATE kanal.batch_ledger SET source = 'x'", 0 },
	{ "kanal_ingest", "DELETE FROM kanal.batch_ledger_epoch", 0 },
	{ "kanal_ingest", "DROP TABLE kanal.batch_ledger_1", 0 },
	{ "kanal_ingest", "ALTER TABLE kanal.usage_hourly ADD COLUMN x int",
	    0 },
	{ "kanal_ingest", "ALTER TABLE kanal.usage_hourly DROP CONSTRAINT "
	    "usage_hourly_counts_valid", 0 },
	{ "kanal_ingest", "DROP TABLE kanal.collector_checkpoint", 0 },
	{ "kanal_ingest", "CREATE VIEW kanal.v AS SELECT 1", 0 },
	{ "kanal_ingest", "CREATE FUNCTION public.f() RETURNS int "
	    "LANGUAGE sql AS 'SELECT 1'", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.digital_adoption_daily", 1 },
	{ "kanal_analyst", "SELECT * FROM kanal.digital_adoption_monthly", 1 },
	{ "kanal_analyst", "SELECT * FROM kanal.published_adoption_monthly",
	    1 },
	{ "kanal_analyst", "SELECT * FROM kanal.usage_local_hourly", 1 },
	{ "kanal_ingest", "SELECT * FROM kanal.usage_local_hourly", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.channel", 1 },
	{ "kanal_analyst", "SELECT * FROM kanal.service", 1 },
	{ "kanal_analyst", "SELECT * FROM kanal.region", 1 },
	{ "kanal_analyst", "INSERT INTO kanal.usage_hourly VALUES "
	    "('2026-03-10 05:00Z', 'dukcapil.kia', 'web', '32.73.01', "
	    "'completed', false, 1, 0, 0)", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.usage_hourly", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.collector_checkpoint", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.schema_migrations", 0 },
	{ "kanal_analyst", "UPDATE kanal.region SET population = 0", 0 },
	{ "kanal_analyst", "CREATE TABLE kanal.x (i int)", 0 },
	/* Reads only: no write anywhere, no DDL. */
	{ "kanal_analyst", "UPDATE kanal.usage_hourly SET events = 1", 0 },
	{ "kanal_analyst", "DELETE FROM kanal.usage_hourly", 0 },
	{ "kanal_analyst", "UPDATE kanal.collector_checkpoint SET "
	    "wal_position = 0", 0 },
	{ "kanal_analyst", "INSERT INTO kanal.service (code, name, agency) "
	    "VALUES ('x', 'x', 'x')", 0 },
	{ "kanal_analyst", "DELETE FROM kanal.channel", 0 },
	{ "kanal_analyst", "TRUNCATE kanal.region", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.batch_ledger", 0 },
	/* 007: the tiers, retention's state, the partition functions. */
	{ "kanal_analyst", "SELECT * FROM kanal.usage_daily", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.usage_monthly_cell", 0 },
	{ "kanal_analyst", "SELECT kanal.hourly_partitions_ensure(now(), "
	    "now())", 0 },
	{ "kanal_analyst", "SELECT * FROM kanal.hourly_retention_apply(400, "
	    "true)", 0 },
	{ "kanal_analyst", "TRUNCATE kanal.batch_ledger_0", 0 },
	{ "kanal_analyst", "CREATE TABLE public.x (i int)", 0 },
	{ "kanal_analyst", "CREATE OR REPLACE VIEW "
	    "kanal.digital_adoption_daily AS SELECT 1", 0 },
	{ "kanal_analyst", "DROP VIEW kanal.published_adoption_monthly", 0 },
};

static void
test_roles_have_exactly_their_privileges(void **state)
{
	PGconn *c = roles_db.conn;
	(void)state;

	for (size_t i = 0; i < NELEM(role_cases); i++) {
		const struct role_case *rc = &role_cases[i];
		PGresult *res;
		ExecStatusType st;
		const char *code;
		int ok;

		exec_ok(c, "BEGIN");
		exec_ok(c, "SET LOCAL ROLE %s", rc->role);
		res = PQexec(c, rc->sql);
		st = PQresultStatus(res);
		ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (rc->allowed && !ok)
			fail_msg("%s must be allowed: %s\n  got: %s", rc->role,
			    rc->sql, PQresultErrorMessage(res));
		if (!rc->allowed && ok)
			fail_msg("%s must be refused: %s", rc->role, rc->sql);
		/* Refused for lack of privilege, not for some other error. */
		if (!rc->allowed && (code == NULL ||
		    strcmp(code, "42501") != 0))
			fail_msg("%s: %s\n  failed with %s, want "
			    "insufficient_privilege (42501): %s", rc->role,
			    rc->sql, code != NULL ? code : "?",
			    PQresultErrorMessage(res));
		PQclear(res);
		exec_ok(c, "ROLLBACK");
	}
}

static void
test_roles_have_no_special_attributes(void **state)
{
	(void)state;

	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_roles WHERE rolname IN ('kanal_ingest', 'kanal_analyst') AND "
	    "rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT "
	    "rolcreaterole AND NOT rolreplication AND NOT rolbypassrls"), 2);
	/* Views run with their owner's rights: no grant on the table. */
	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) WHERE "
	    "NOT has_table_privilege('kanal_analyst', 'kanal.usage_hourly', "
	    "'SELECT') AND NOT has_schema_privilege('kanal_analyst', 'kanal', "
	    "'CREATE') AND NOT has_schema_privilege('kanal_ingest', 'kanal', "
	    "'CREATE')"), 1);
}

/*
 * Migrations run as the database owner: every table, view and the schema
 * belong to it, so neither role can alter, drop or re-grant them.
 * (One kanal_ingest serves every kanald instance, so the privileges can't
 * keep an instance from another's collector_checkpoint row.)
 */
static void
test_migrations_run_as_the_owner(void **state)
{
	(void)state;

	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_class WHERE relnamespace = 'kanal'::regnamespace AND "
	    "relowner <> (SELECT datdba FROM pg_database WHERE datname = "
	    "current_database()) AND relowner <> (SELECT oid FROM pg_roles "
	    "WHERE rolname = current_user)"), 0);
	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE "
	    "c.relnamespace = 'kanal'::regnamespace AND r.rolname IN "
	    "('kanal_ingest', 'kanal_analyst')"), 0);
	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE "
	    "n.nspname = 'kanal' AND r.rolname NOT IN ('kanal_ingest', "
	    "'kanal_analyst')"), 1);
	/*
	 * Only the two partition functions of 007 and reach_key_use of 010
	 * (when the server has hll) run with the owner's rights: each with a
	 * fixed search_path, and callable by kanal_ingest alone (not PUBLIC,
	 * not the analyst).
	 */
	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_proc WHERE pronamespace = 'kanal'::regnamespace AND "
	    "prosecdef AND proname NOT IN ('hourly_partitions_ensure', "
	    "'hourly_retention_apply', 'reach_key_use')"), 0);
	assert_int_equal(scalar_long(roles_db.conn, "SELECT count(*) FROM "
	    "pg_proc WHERE pronamespace = 'kanal'::regnamespace AND "
	    "prosecdef AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig) "
	    "AND has_function_privilege('kanal_ingest', oid, 'EXECUTE') "
	    "AND NOT has_function_privilege('kanal_analyst', oid, 'EXECUTE') "
	    "AND NOT EXISTS (SELECT 1 FROM aclexplode(proacl) a "
	    "WHERE a.grantee = 0)"), 2 + scalar_long(roles_db.conn,
	    "SELECT count(*) FROM pg_proc WHERE oid = "
	    "to_regprocedure('kanal.reach_key_use(bigint)')"));
}

/* ----------------------------------------------------------------- main */

static int
schema_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (migrate_parse_name(de->d_name, NULL) == 0)
			n++;
	closedir(d);
	return n;
}

int
main(void)
{
	const struct CMUnitTest name_tests[] = {
		cmocka_unit_test(test_migration_names_parse),
	};
	const struct CMUnitTest migrate_tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_migrate_twice_applies_nothing_the_second_time,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_reports_a_missing_schema_dir,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_second_database_in_same_cluster_migrates_cleanly,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_migrates_apply_each_migration_once,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_migrates_of_two_databases_both_succeed,
		    fixture_setup, fixture_teardown),
	};
	struct CMUnitTest refusal_tests[NELEM(refusal_cases)];
	const struct CMUnitTest views_tests[] = {
		cmocka_unit_test_setup(test_daily_view_computes_every_column,
		    views_setup),
		cmocka_unit_test_setup(
		    test_monthly_view_sums_days_before_dividing, views_setup),
		cmocka_unit_test_setup(
		    test_ratios_are_null_when_their_denominator_is_zero,
		    views_setup),
		cmocka_unit_test_setup(test_days_and_months_are_local_wib,
		    views_setup),
		cmocka_unit_test_setup(
		    test_local_hourly_view_is_the_hourly_table_in_wib,
		    views_setup),
		cmocka_unit_test_setup(
		    test_published_view_suppresses_cells_under_ten_events,
		    views_setup),
		cmocka_unit_test(test_views_have_the_contract_columns),
		cmocka_unit_test(test_reference_data_is_seeded),
	};
	const struct CMUnitTest roles_tests[] = {
		cmocka_unit_test(test_roles_have_exactly_their_privileges),
		cmocka_unit_test(test_roles_have_no_special_attributes),
		cmocka_unit_test(test_migrations_run_as_the_owner),
	};
	const char *pgdatabase = getenv("PGDATABASE");
	int failed = 0;

	if (getenv("PGHOST") == NULL) {
		fprintf(stderr, "test_pg_schema: PGHOST is not set. This test "
		    "needs the private PostgreSQL cluster: run it via "
		    "`scripts/dev test` (or eval \"$(scripts/pg env)\" "
		    "first).\n");
		return 1;
	}
	schema_dir = getenv("KANAL_SCHEMA_DIR");
	if (schema_dir == NULL || schema_dir[0] == '\0') {
		fprintf(stderr, "test_pg_schema: KANAL_SCHEMA_DIR is not set; "
		    "run it via `scripts/dev test` (CMake sets it to the "
		    "source tree's schema/).\n");
		return 1;
	}
	schema_files = schema_count(schema_dir);
	if (schema_files <= 0) {
		fprintf(stderr, "test_pg_schema: no NNN_name.sql migrations "
		    "in KANAL_SCHEMA_DIR=%s\n", schema_dir);
		return 1;
	}
	for (size_t i = 0; i < NELEM(refusal_cases); i++) {
		refusal_tests[i] = (struct CMUnitTest){
			.name = refusal_cases[i].name,
			.test_func = test_migrate_refuses,
			.setup_func = fixture_setup,
			.teardown_func = fixture_teardown,
			.initial_state = (void *)&refusal_cases[i],
		};
	}

	admin = PQconnectdbParams((const char *[]){ "dbname", NULL },
	    (const char *[]){ pgdatabase != NULL ? pgdatabase : "postgres",
	    NULL }, 0);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "test_pg_schema: cannot connect to PostgreSQL "
		    "(PGHOST=%s): %s", getenv("PGHOST"),
		    PQerrorMessage(admin));
		PQfinish(admin);
		return 1;
	}
	PQclear(PQexec(admin, "SET client_min_messages = warning"));

	failed += cmocka_run_group_tests_name("migration file names",
	    name_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("migrate", migrate_tests, NULL,
	    NULL);
	failed += _cmocka_run_group_tests("migrate refusals", refusal_tests,
	    NELEM(refusal_tests), NULL, NULL);
	failed += cmocka_run_group_tests_name("views", views_tests,
	    views_group_setup, views_group_teardown);
	failed += cmocka_run_group_tests_name("roles", roles_tests,
	    roles_group_setup, roles_group_teardown);
	PQfinish(admin);
	return failed != 0;
}
