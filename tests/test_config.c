/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config: the value parsers, the config file, the command line, and
 * that --help and the example config are both made from the key table.
 *
 * Config files are real files in a fresh directory under $KANAL_TEST_TMP
 * (or /tmp), removed by the group teardown. Every FILE * output is caught
 * with open_memstream so the messages themselves are checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* ------------------------------------------------------------- helpers */

static char tmpdir[1024];

static int
make_tmpdir(void **state)
{
	const char *base = getenv("KANAL_TEST_TMP");

	(void)state;
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (mkdir(base, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX", base);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
remove_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[PATH_MAX + 256];

	(void)state;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(tmpdir);
}

/* Writes len bytes of text (strlen when len is 0) to tmpdir/name. */
static void
write_file(const char *name, const char *text, size_t len, char *path,
    size_t pathlen)
{
	FILE *f;

	snprintf(path, pathlen, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	if (len == 0)
		len = strlen(text);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* An in-memory FILE *; close it with capture_end to read what was written. */
struct capture {
	FILE *f;
	char *buf;
	size_t len;
};

static void
capture_begin(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static const char *
capture_end(struct capture *c)
{
	assert_int_equal(fclose(c->f), 0);
	c->f = NULL;
	return c->buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ----------------------------------------------------------- durations */

struct duration_case {
	const char *name;
	const char *text;
	int ok;
	uint64_t ms;
};

static const struct duration_case duration_cases[] = {
	{ "milliseconds are read as they are", "200ms", 1, 200 },
	{ "seconds are thousands of ms", "1s", 1, 1000 },
	{ "minutes are 60000 ms", "5m", 1, 300000 },
	{ "hours are 3600000 ms", "1h", 1, 3600000 },
	{ "days are 86400000 ms", "7d", 1, 7ULL * 86400000 },
	{ "zero with a unit is a duration", "0s", 1, 0 },
	{ "a number without a unit is not a duration", "1", 0, 0 },
	{ "a unit without a number is not a duration", "s", 0, 0 },
	{ "a negative duration is refused", "-1s", 0, 0 },
	{ "a fraction is refused", "1.5s", 0, 0 },
	{ "an unknown unit is refused", "1x", 0, 0 },
	{ "an upper-case unit is refused", "1S", 0, 0 },
	{ "a space before the unit is refused", "1 s", 0, 0 },
	{ "a leading space is refused", " 1s", 0, 0 },
	{ "a leading plus is refused", "+1s", 0, 0 },
	{ "trailing text after the unit is refused", "1ss", 0, 0 },
	{ "the empty string is refused", "", 0, 0 },
	{ "a number past uint64 is refused", "99999999999999999999ms", 0, 0 },
	{ "a number that overflows once scaled to ms is refused",
	  "18446744073709551615d", 0, 0 },
	{ "the largest day count that fits in ms is accepted",
	  "213503982334d", 1, 213503982334ULL * 86400000 },
	{ "one day more overflows and is refused", "213503982335d", 0, 0 },
};

static void
test_duration_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(duration_cases) /
	    sizeof(duration_cases[0]); i++) {
		const struct duration_case *c = &duration_cases[i];
		uint64_t ms = 12345;
		int r = config_parse_duration_ms(c->text, &ms);

		if (c->ok && r != 0)
			fail_msg("%s: \"%s\" was refused", c->name, c->text);
		if (!c->ok && r != -1)
			fail_msg("%s: \"%s\" was accepted as %llu ms", c->name,
			    c->text, (unsigned long long)ms);
		if (c->ok && ms != c->ms)
			fail_msg("%s: \"%s\" gave %llu ms, want %llu", c->name,
			    c->text, (unsigned long long)ms,
			    (unsigned long long)c->ms);
		if (!c->ok && ms != 12345)
			fail_msg("%s: \"%s\" wrote the result although refused",
			    c->name, c->text);
	}
}

/* --------------------------------------------------------------- sizes */

struct size_case {
	const char *name;
	const char *text;
	int ok;
	uint64_t bytes;
};

static const struct size_case size_cases[] = {
	{ "MiB are 2^20 bytes", "4MiB", 1, 4ULL << 20 },
	{ "KiB are 2^10 bytes", "64KiB", 1, 64ULL << 10 },
	{ "G is a GiB", "1G", 1, 1ULL << 30 },
	{ "GiB are 2^30 bytes", "2GiB", 1, 2ULL << 30 },
	{ "K is a KiB", "8K", 1, 8ULL << 10 },
	{ "M is a MiB", "3M", 1, 3ULL << 20 },
	{ "a bare number is bytes", "4096", 1, 4096 },
	{ "B is bytes", "512B", 1, 512 },
	{ "a space before the unit is refused", "4 MiB", 0, 0 },
	{ "a unit without a number is refused", "MiB", 0, 0 },
	{ "a negative size is refused", "-1", 0, 0 },
	{ "a fraction is refused", "1.5MiB", 0, 0 },
	{ "decimal MB is not a unit", "4MB", 0, 0 },
	{ "a lower-case unit is refused", "4mib", 0, 0 },
	{ "the empty string is refused", "", 0, 0 },
	{ "a size that overflows once scaled is refused",
	  "18446744073709551615GiB", 0, 0 },
};

static void
test_size_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]);
	    i++) {
		const struct size_case *c = &size_cases[i];
		uint64_t bytes = 12345;
		int r = config_parse_size(c->text, &bytes);

		if (c->ok && r != 0)
			fail_msg("%s: \"%s\" was refused", c->name, c->text);
		if (!c->ok && r != -1)
			fail_msg("%s: \"%s\" was accepted as %llu bytes",
			    c->name, c->text, (unsigned long long)bytes);
		if (c->ok && bytes != c->bytes)
			fail_msg("%s: \"%s\" gave %llu bytes, want %llu",
			    c->name, c->text, (unsigned long long)bytes,
			    (unsigned long long)c->bytes);
	}
}

/* ----------------------------------------------------------- host:port */

struct hostport_case {
	const char *name;
	const char *text;
	int ok;
	const char *host;
	uint16_t port;
};

static const struct hostport_case hostport_cases[] = {
	{ "an IPv4 address and port parse", "127.0.0.1:8080", 1,
	  "127.0.0.1", 8080 },
	{ "a bracketed IPv6 address parses without the brackets",
	  "[::1]:8080", 1, "::1", 8080 },
	{ "a host name parses", "localhost:1", 1, "localhost", 1 },
	{ "the highest port parses", "0.0.0.0:65535", 1, "0.0.0.0", 65535 },
	{ "a bare IPv6 address is ambiguous and refused", "::1:80", 0, NULL,
	  0 },
	{ "a host without a port is refused", "host", 0, NULL, 0 },
	{ "a host with an empty port is refused", "host:", 0, NULL, 0 },
	{ "a port over 65535 is refused", "host:70000", 0, NULL, 0 },
	{ "a bracketed address without ':' before the port is refused",
	  "[::1]80", 0, NULL, 0 },
	{ "an unclosed bracket is refused", "[::1:80", 0, NULL, 0 },
	{ "empty brackets are refused", "[]:80", 0, NULL, 0 },
	{ "an empty host is refused", ":80", 0, NULL, 0 },
	{ "a port with a sign is refused", "host:+80", 0, NULL, 0 },
	{ "a port with trailing text is refused", "host:80x", 0, NULL, 0 },
	{ "a port past unsigned long is refused",
	  "host:99999999999999999999999", 0, NULL, 0 },
	{ "the empty string is refused", "", 0, NULL, 0 },
};

static void
test_hostport_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hostport_cases) /
	    sizeof(hostport_cases[0]); i++) {
		const struct hostport_case *c = &hostport_cases[i];
		char host[64] = "untouched";
		uint16_t port = 7;
		int r = config_parse_hostport(c->text, host, sizeof(host),
		    &port);

		if (c->ok && r != 0)
			fail_msg("%s: \"%s\" was refused", c->name, c->text);
		if (!c->ok && r != -1)
			fail_msg("%s: \"%s\" was accepted as host \"%s\" port "
			    "%u", c->name, c->text, host, port);
		if (c->ok && (strcmp(host, c->host) != 0 || port != c->port))
			fail_msg("%s: \"%s\" gave host \"%s\" port %u, want "
			    "\"%s\" %u", c->name, c->text, host, port, c->host,
			    c->port);
	}
}

static void
test_hostport_host_too_long_for_buffer_is_refused(void **state)
{
	char host[4];
	uint16_t port;

	(void)state;
	assert_int_equal(config_parse_hostport("abcd:80", host, sizeof(host),
	    &port), -1);
	assert_int_equal(config_parse_hostport("abc:80", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "abc");
}

/* ------------------------------------------------------ defaults and set */

static void
test_defaults_are_the_documented_ones(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_string_equal(cfg.pg, "");
	assert_string_equal(cfg.collector_id, "kanald");
	assert_string_equal(cfg.log_level, "info");
	assert_string_equal(cfg.config_file, "");
	assert_int_equal(cfg.flush_interval_ms, 1000);
	assert_int_equal(cfg.max_body_size, 4 << 20);
	assert_int_equal(cfg.max_header_size, 64 << 10);
	assert_int_equal(cfg.max_batch_events, 10000);
	assert_int_equal(cfg.event_max_age_ms, 7ULL * 86400000);
	assert_int_equal(cfg.event_max_ahead_ms, 5 * 60000);
	assert_int_equal(cfg.timeout_ms, 30000);
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.tls_key, "");
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.rate_limit, 0);
	assert_int_equal(cfg.rate_limit_burst, 0);
}

struct set_case {
	const char *name;
	const char *key;
	const char *value;
	int ok;
	const char *want_in_err;	/* when !ok */
};

static const struct set_case set_cases[] = {
	{ "a duration key takes a duration", "flush-interval", "200ms", 1,
	  NULL },
	{ "a size key takes a size", "max-body-size", "1MiB", 1, NULL },
	{ "a count key takes a whole number", "max-batch-events", "500", 1,
	  NULL },
	{ "a string key takes any text", "pg", "host=/run/postgresql", 1,
	  NULL },
	{ "event-max-ahead may be zero", "event-max-ahead", "0s", 1, NULL },
	{ "an unknown key is named in the error", "flush-intervall", "1s", 0,
	  "unknown key \"flush-intervall\"" },
	{ "a duration below the minimum gives the range", "flush-interval",
	  "1ms", 0, "1ms is out of range; use 10ms to 1h" },
	{ "a duration above the maximum gives the range", "flush-interval",
	  "2h", 0, "out of range; use 10ms to 1h" },
	{ "a size below the minimum gives the range in KiB", "max-body-size",
	  "100", 0, "out of range; use 1KiB to 1024MiB" },
	{ "a count of zero is out of range", "max-batch-events", "0", 0,
	  "out of range; use 1 to 1000000" },
	{ "a count with a unit is not a whole number", "max-batch-events",
	  "10k", 0, "is not a whole number" },
	{ "a negative count is not a whole number", "max-batch-events", "-1",
	  0, "is not a whole number" },
	{ "an empty count is not a whole number", "max-batch-events", "", 0,
	  "is not a whole number" },
	{ "a count past uint64 is not a whole number", "max-batch-events",
	  "99999999999999999999", 0, "is not a whole number" },
	{ "a duration without unit says how to write one", "timeout", "30",
	  0, "write a number and a unit" },
	{ "a bad size says which units exist", "max-header-size", "4 KiB", 0,
	  "KiB, MiB or GiB" },
	{ "a listen address without port shows the form", "listen",
	  "localhost", 0, "is not HOST:PORT" },
	{ "a collector id with a space is refused", "collector-id", "a b", 0,
	  "collector id must be" },
	{ "an empty collector id is refused", "collector-id", "", 0,
	  "collector id must be" },
	{ "an unknown log level lists the levels", "log-level", "verbose", 0,
	  "use err, warning, notice, info or debug" },
	{ "rate-limit 0 turns the limit off", "rate-limit", "0", 1, NULL },
	{ "a rate limit is events per second", "rate-limit", "500", 1, NULL },
	{ "a burst of 0 is one second's worth", "rate-limit-burst", "0", 1,
	  NULL },
	{ "max-connections of zero is out of range", "max-connections", "0",
	  0, "out of range; use 1 to 1000000" },
	{ "a TLS key path is taken as given", "tls-key", "/etc/kanal/key.pem",
	  1, NULL },
};

static void
test_config_set_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
		const struct set_case *c = &set_cases[i];
		struct config cfg, before;
		char err[512] = "";
		int r;

		config_defaults(&cfg);
		before = cfg;
		r = config_set(&cfg, c->key, c->value, err, sizeof(err));
		if (c->ok && r != 0)
			fail_msg("%s: %s = \"%s\" was refused: %s", c->name,
			    c->key, c->value, err);
		if (c->ok)
			continue;
		if (r != -1)
			fail_msg("%s: %s = \"%s\" was accepted", c->name,
			    c->key, c->value);
		if (strstr(err, c->want_in_err) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err,
			    c->want_in_err);
		if (memcmp(&cfg, &before, sizeof(cfg)) != 0)
			fail_msg("%s: a refused value changed the config",
			    c->name);
	}
}

static void
test_config_set_refuses_a_string_longer_than_the_field(void **state)
{
	struct config cfg;
	char err[256];
	char *big = malloc(CONFIG_STR_MAX + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', CONFIG_STR_MAX);
	big[CONFIG_STR_MAX] = '\0';
	config_defaults(&cfg);
	assert_int_equal(config_set(&cfg, "pg", big, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	assert_string_equal(cfg.pg, "");
	big[CONFIG_STR_MAX - 1] = '\0';
	assert_int_equal(config_set(&cfg, "pg", big, err, sizeof(err)), 0);
	assert_int_equal(strlen(cfg.pg), CONFIG_STR_MAX - 1);
	free(big);
}

/* ---------------------------------------------------------- config file */

static void
test_file_with_comments_blank_lines_and_spaces_is_read(void **state)
{
	static const char text[] =
	    "# kanald test config\n"
	    "\n"
	    "   \n"
	    "\t# an indented comment\n"
	    "listen=127.0.0.1:9000\n"
	    "  flush-interval   =   200ms  \n"
	    "pg = host=/run/postgresql dbname=kanal\n"
	    "collector-id\t=\tkanald-2\r\n"
	    "max-body-size = 1MiB\n"
	    "max-body-size = 2MiB\n"
	    "log-level = debug";	/* no newline at the end */
	struct config cfg;
	struct capture errs;
	char path[PATH_MAX];
	int problems;

	(void)state;
	write_file("good.conf", text, 0, path, sizeof(path));
	config_defaults(&cfg);
	capture_begin(&errs);
	problems = config_read_file(&cfg, path, errs.f);
	capture_end(&errs);
	if (problems != 0)
		fail_msg("a clean file gave %d problems:\n%s", problems,
		    errs.buf);
	assert_string_equal(errs.buf, "");
	assert_string_equal(cfg.listen, "127.0.0.1:9000");
	assert_int_equal(cfg.flush_interval_ms, 200);
	/* Only the first '=' splits: the value may hold more of them. */
	assert_string_equal(cfg.pg, "host=/run/postgresql dbname=kanal");
	assert_string_equal(cfg.collector_id, "kanald-2");
	/* A key given twice: the later line wins. */
	assert_int_equal(cfg.max_body_size, 2 << 20);
	assert_string_equal(cfg.log_level, "debug");
	/* Keys the file does not name keep their defaults. */
	assert_int_equal(cfg.max_batch_events, 10000);
	free(errs.buf);
}

struct file_case {
	const char *name;
	const char *text;
	size_t len;		/* 0: strlen(text) */
	int problems;
	unsigned lines[4];	/* each must appear as "PATH:LINE: " */
	const char *want[3];	/* each must appear in the messages */
};

#define NUL_FILE "listen = 127.0.0.1:1\nlog-level = info\0x\n"

static const struct file_case file_cases[] = {
	{ "an unknown key is reported with its line and name",
	  "listen = 127.0.0.1:1\nbogus-key = 1\n", 0, 1, { 2 },
	  { "bogus-key", "unknown key" } },
	{ "a bad duration is reported with its line and how to write one",
	  "# c\n\nflush-interval = 1x\n", 0, 1, { 3 },
	  { "flush-interval", "\"1x\" is not a duration", "200ms" } },
	{ "an out-of-range value is reported with the range",
	  "flush-interval = 1ms\n", 0, 1, { 1 },
	  { "flush-interval: 1ms is out of range; use 10ms to 1h" } },
	{ "a line without '=' is reported",
	  "listen 127.0.0.1:8080\n", 0, 1, { 1 },
	  { "expected \"key = value\"" } },
	{ "a key without a value is reported as a bad value",
	  "flush-interval =\n", 0, 1, { 1 },
	  { "flush-interval", "is not a duration" } },
	{ "a value without a key is reported as an unknown key",
	  "= 1s\n", 0, 1, { 1 }, { "unknown key \"\"" } },
	{ "a bad listen address explains the form",
	  "listen = localhost\n", 0, 1, { 1 }, { "HOST:PORT" } },
	{ "a NUL byte in a line is reported", NUL_FILE, sizeof(NUL_FILE) - 1,
	  1, { 2 }, { "NUL" } },
	{ "every problem is reported, not only the first",
	  "bogus = 1\n"
	  "listen = nope\n"
	  "# fine\n"
	  "max-batch-events = many\n"
	  "flush-interval = 5s\n"
	  "no equals sign here\n", 0, 4, { 1, 2, 4, 6 },
	  { "bogus", "nope", "many" } },
};

static void
test_file_problem_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]);
	    i++) {
		const struct file_case *c = &file_cases[i];
		struct config cfg;
		struct capture errs;
		char path[PATH_MAX], name[32], where[PATH_MAX + 32];
		int problems;

		snprintf(name, sizeof(name), "bad-%zu.conf", i);
		write_file(name, c->text, c->len, path, sizeof(path));
		config_defaults(&cfg);
		capture_begin(&errs);
		problems = config_read_file(&cfg, path, errs.f);
		capture_end(&errs);
		if (problems != c->problems)
			fail_msg("%s: %d problems, want %d:\n%s", c->name,
			    problems, c->problems, errs.buf);
		if (count_lines(errs.buf) != (size_t)c->problems)
			fail_msg("%s: want one message line per problem:\n%s",
			    c->name, errs.buf);
		for (size_t j = 0; j < 4 && c->lines[j] != 0; j++) {
			snprintf(where, sizeof(where), "%s:%u: ", path,
			    c->lines[j]);
			if (strstr(errs.buf, where) == NULL)
				fail_msg("%s: no message starts with "
				    "\"%s\":\n%s", c->name, where, errs.buf);
		}
		for (size_t j = 0; j < 3 && c->want[j] != NULL; j++)
			if (strstr(errs.buf, c->want[j]) == NULL)
				fail_msg("%s: messages lack \"%s\":\n%s",
				    c->name, c->want[j], errs.buf);
		free(errs.buf);
	}
}

static void
test_missing_file_is_one_problem_naming_the_path(void **state)
{
	struct config cfg;
	struct capture errs;
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	config_defaults(&cfg);
	capture_begin(&errs);
	assert_int_equal(config_read_file(&cfg, path, errs.f), 1);
	capture_end(&errs);
	assert_non_null(strstr(errs.buf, path));
	assert_non_null(strstr(errs.buf, "cannot open"));
	free(errs.buf);
}

/* ---------------------------------------------------------- command line */

#define MAX_ARGS 8

struct argv_case {
	const char *name;
	const char *args[MAX_ARGS];	/* after argv[0]; "@FILE" = file */
	const char *file;		/* written to a temp file, or NULL */
	enum config_action action;
	const char *listen;		/* NULL: not checked */
	uint64_t flush_ms;		/* 0: not checked */
	const char *in_out;		/* must appear in out, or NULL */
	const char *in_errs;		/* must appear in errs, or NULL */
};

static const struct argv_case argv_cases[] = {
	{ "no arguments run with the defaults", { NULL }, NULL, CONFIG_RUN,
	  "127.0.0.1:8080", 1000, NULL, NULL },
	{ "--key value sets the key", { "--listen", "10.0.0.1:80", NULL },
	  NULL, CONFIG_RUN, "10.0.0.1:80", 1000, NULL, NULL },
	{ "--key=value sets the key", { "--flush-interval=250ms", NULL },
	  NULL, CONFIG_RUN, "127.0.0.1:8080", 250, NULL, NULL },
	{ "-c FILE reads the file", { "-c", "@FILE", NULL },
	  "listen = 10.0.0.1:1\nflush-interval = 2s\n", CONFIG_RUN,
	  "10.0.0.1:1", 2000, NULL, NULL },
	{ "--config=FILE reads the file", { "--config=@FILE", NULL },
	  "listen = 10.0.0.1:1\n", CONFIG_RUN, "10.0.0.1:1", 0, NULL, NULL },
	{ "a flag after -c wins over the file",
	  { "-c", "@FILE", "--listen", "10.0.0.2:2", NULL },
	  "listen = 10.0.0.1:1\nflush-interval = 2s\n", CONFIG_RUN,
	  "10.0.0.2:2", 2000, NULL, NULL },
	{ "a flag before -c wins over the file too",
	  { "--listen=10.0.0.2:2", "-c", "@FILE", NULL },
	  "listen = 10.0.0.1:1\n", CONFIG_RUN, "10.0.0.2:2", 0, NULL, NULL },
	{ "-n asks for a check", { "-n", NULL }, NULL, CONFIG_CHECK, NULL, 0,
	  NULL, NULL },
	{ "--check asks for a check", { "--check", "-c", "@FILE", NULL },
	  "flush-interval = 5s\n", CONFIG_CHECK, NULL, 5000, NULL, NULL },
	{ "--help prints the usage", { "--help", NULL }, NULL, CONFIG_HELP,
	  NULL, 0, "usage: kanald", NULL },
	{ "-h prints the usage even after a bad flag",
	  { "--bogus", "-h", NULL }, NULL, CONFIG_HELP, NULL, 0,
	  "usage: kanald", NULL },
	{ "--version prints the version", { "--version", NULL }, NULL,
	  CONFIG_VERSION, NULL, 0, "kanald ", NULL },
	{ "an unknown flag is named in the error", { "--bogus", NULL }, NULL,
	  CONFIG_INVALID, NULL, 0, NULL, "--bogus: unknown key \"bogus\"" },
	{ "an unknown flag with a value is named in the error",
	  { "--bogus=1", NULL }, NULL, CONFIG_INVALID, NULL, 0, NULL,
	  "unknown key \"bogus\"" },
	{ "a stray word is an unexpected argument", { "listen", NULL }, NULL,
	  CONFIG_INVALID, NULL, 0, NULL, "listen: unexpected argument" },
	{ "a short flag kanald lacks is an unexpected argument",
	  { "-x", NULL }, NULL, CONFIG_INVALID, NULL, 0, NULL,
	  "-x: unexpected argument" },
	{ "a flag without its value says so", { "--listen", NULL }, NULL,
	  CONFIG_INVALID, NULL, 0, NULL, "--listen: needs a value" },
	{ "-c without a file name says so", { "-c", NULL }, NULL,
	  CONFIG_INVALID, NULL, 0, NULL, "-c: needs a file name" },
	{ "an out-of-range flag gives the range",
	  { "--flush-interval", "1ms", NULL }, NULL, CONFIG_INVALID, NULL, 0,
	  NULL, "--flush-interval: 1ms is out of range; use 10ms to 1h" },
	{ "a bad file makes -n invalid, naming FILE:LINE",
	  { "-n", "-c", "@FILE", NULL }, "\nflush-interval = soon\n",
	  CONFIG_INVALID, NULL, 0, NULL, ":2: flush-interval: \"soon\"" },
	{ "tls-cert without tls-key is refused, naming the flag",
	  { "--tls-cert", "/etc/kanal/cert.pem", NULL }, NULL, CONFIG_INVALID,
	  NULL, 0, NULL, "--tls-cert: tls-cert is set but tls-key is not; "
	  "give both" },
	{ "tls-key without tls-cert in a file is refused at FILE:LINE",
	  { "-n", "-c", "@FILE", NULL }, "\n\ntls-key = /etc/kanal/key.pem\n",
	  CONFIG_INVALID, NULL, 0, NULL,
	  ":3: tls-key is set but tls-cert is not" },
	{ "tls-cert in the file and tls-key as a flag go together",
	  { "-c", "@FILE", "--tls-key", "/etc/kanal/key.pem", NULL },
	  "tls-cert = /etc/kanal/cert.pem\n", CONFIG_RUN, NULL, 0, NULL,
	  NULL },
	{ "a missing config file is invalid",
	  { "-c", "/nonexistent/kanald.conf", NULL }, NULL, CONFIG_INVALID,
	  NULL, 0, NULL, "/nonexistent/kanald.conf: cannot open" },
};

static void
test_argv_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(argv_cases) / sizeof(argv_cases[0]);
	    i++) {
		const struct argv_case *c = &argv_cases[i];
		char path[PATH_MAX] = "", name[32];
		char args[MAX_ARGS + 1][PATH_MAX + 16];
		char *argv[MAX_ARGS + 2];
		int argc = 0;
		struct config cfg;
		struct capture out, errs;
		enum config_action action;

		if (c->file != NULL) {
			snprintf(name, sizeof(name), "argv-%zu.conf", i);
			write_file(name, c->file, 0, path, sizeof(path));
		}
		argv[argc++] = (char *)"kanald";
		for (size_t j = 0; j < MAX_ARGS && c->args[j] != NULL; j++) {
			const char *at = strstr(c->args[j], "@FILE");

			if (at == NULL)
				snprintf(args[j], sizeof(args[j]), "%s",
				    c->args[j]);
			else
				snprintf(args[j], sizeof(args[j]), "%.*s%s",
				    (int)(at - c->args[j]), c->args[j], path);
			argv[argc++] = args[j];
		}
		argv[argc] = NULL;

		capture_begin(&out);
		capture_begin(&errs);
		action = config_from_argv(&cfg, argc, argv, out.f, errs.f);
		capture_end(&out);
		capture_end(&errs);
		if (action != c->action)
			fail_msg("%s: action %d, want %d; errs:\n%s", c->name,
			    (int)action, (int)c->action, errs.buf);
		if (c->listen != NULL && strcmp(cfg.listen, c->listen) != 0)
			fail_msg("%s: listen \"%s\", want \"%s\"", c->name,
			    cfg.listen, c->listen);
		if (c->flush_ms != 0 && cfg.flush_interval_ms != c->flush_ms)
			fail_msg("%s: flush-interval %llu ms, want %llu",
			    c->name, (unsigned long long)cfg.flush_interval_ms,
			    (unsigned long long)c->flush_ms);
		if (c->in_out != NULL && strstr(out.buf, c->in_out) == NULL)
			fail_msg("%s: output lacks \"%s\":\n%s", c->name,
			    c->in_out, out.buf);
		if (c->in_errs != NULL && strstr(errs.buf, c->in_errs) == NULL)
			fail_msg("%s: errors lack \"%s\":\n%s", c->name,
			    c->in_errs, errs.buf);
		if (c->action != CONFIG_INVALID && errs.buf[0] != '\0')
			fail_msg("%s: unexpected errors:\n%s", c->name,
			    errs.buf);
		if (c->action == CONFIG_INVALID && errs.buf[0] == '\0')
			fail_msg("%s: invalid but nothing was printed",
			    c->name);
		if (c->file != NULL && c->action != CONFIG_INVALID &&
		    strcmp(cfg.config_file, path) != 0)
			fail_msg("%s: config_file \"%s\", want \"%s\"", c->name,
			    cfg.config_file, path);
		free(out.buf);
		free(errs.buf);
	}
}

/* ------------------------------------------------- example and usage text */

/*
 * Keys of the example config: its "#key = value" lines. Help lines start
 * with "# ", so they are told apart by the character after the '#'.
 */
static size_t
example_keys(const char *example, char keys[][64], size_t max)
{
	size_t n = 0;
	const char *p = example;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', len);

		if (len > 1 && p[0] == '#' && p[1] != ' ' && eq != NULL) {
			size_t klen = (size_t)(eq - p - 1);

			while (klen > 0 && p[klen] == ' ')
				klen--;
			assert_true(n < max);
			snprintf(keys[n++], 64, "%.*s", (int)klen, p + 1);
		}
		p += len + (nl != NULL);
	}
	return n;
}

static void
test_example_config_reparses_with_every_key_uncommented(void **state)
{
	struct capture ex, errs;
	struct config from_file, defaults;
	char path[PATH_MAX], keys[64][64];
	char *uncommented, *w;
	size_t nkeys;
	int problems;

	(void)state;
	capture_begin(&ex);
	config_example(ex.f);
	capture_end(&ex);

	/* Drop the '#' in front of every "#key = value" line. */
	uncommented = malloc(ex.len + 1);
	assert_non_null(uncommented);
	w = uncommented;
	for (const char *p = ex.buf; *p != '\0'; p++) {
		int line_start = p == ex.buf || p[-1] == '\n';

		if (line_start && p[0] == '#' && p[1] != ' ' && p[1] != '\n' &&
		    p[1] != '\0')
			continue;
		*w++ = *p;
	}
	*w = '\0';

	nkeys = example_keys(ex.buf, keys, 64);
	assert_true(nkeys >= 12);

	write_file("example.conf", uncommented, 0, path, sizeof(path));
	/* From zero, not the defaults: every value must come from the file. */
	memset(&from_file, 0, sizeof(from_file));
	capture_begin(&errs);
	problems = config_read_file(&from_file, path, errs.f);
	capture_end(&errs);
	if (problems != 0)
		fail_msg("the example config, uncommented, has %d problems:\n"
		    "%s", problems, errs.buf);

	/* Every key set to its default gives exactly the defaults. */
	config_defaults(&defaults);
	if (memcmp(&from_file, &defaults, sizeof(defaults)) != 0)
		fail_msg("the example's values differ from config_defaults");
	free(uncommented);
	free(ex.buf);
	free(errs.buf);
}

/* The shipped example config is what the key table makes, byte for byte. */
static void
test_shipped_example_config_matches_the_key_table(void **state)
{
	const char *src = getenv("KANAL_SOURCE_DIR");
	char path[PATH_MAX], *made = NULL, *shipped;
	size_t made_len = 0;
	long shipped_len;
	FILE *f, *m;

	(void)state;
	if (src == NULL)
		fail_msg("KANAL_SOURCE_DIR is not set (ctest sets it)");
	snprintf(path, sizeof(path), "%s/systemd/kanald.conf.example", src);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	shipped_len = ftell(f);
	rewind(f);
	shipped = calloc(1, (size_t)shipped_len + 1);
	assert_non_null(shipped);
	assert_int_equal(fread(shipped, 1, (size_t)shipped_len, f),
	    (size_t)shipped_len);
	fclose(f);
	m = open_memstream(&made, &made_len);
	config_example(m);
	fclose(m);
	if (strcmp(made, shipped) != 0)
		fail_msg("%s is out of date: regenerate it with "
		    "build/daemon/kanald --example-config > %s", path, path);
	free(made);
	free(shipped);
}

static void
test_usage_and_example_name_the_same_keys(void **state)
{
	struct capture ex, usage;
	char keys[64][64], flag[80];
	size_t nkeys, nflags = 0;
	const char *p;

	(void)state;
	capture_begin(&ex);
	config_example(ex.f);
	capture_end(&ex);
	capture_begin(&usage);
	config_usage(usage.f);
	capture_end(&usage);

	nkeys = example_keys(ex.buf, keys, 64);
	for (size_t i = 0; i < nkeys; i++) {
		snprintf(flag, sizeof(flag), "  --%s ", keys[i]);
		if (strstr(usage.buf, flag) == NULL)
			fail_msg("usage does not mention key \"%s\" of the "
			    "example config:\n%s", keys[i], usage.buf);
	}
	/* And no key in the usage's key list is missing from the example. */
	p = strstr(usage.buf, "Keys ");
	assert_non_null(p);
	while ((p = strstr(p, "\n  --")) != NULL) {
		size_t len;
		int found = 0;

		p += 5;
		len = strcspn(p, " ");
		for (size_t i = 0; i < nkeys; i++)
			if (strlen(keys[i]) == len &&
			    strncmp(keys[i], p, len) == 0)
				found = 1;
		if (!found)
			fail_msg("usage key \"%.*s\" is not in the example "
			    "config", (int)len, p);
		nflags++;
	}
	assert_int_equal(nflags, nkeys);
	free(ex.buf);
	free(usage.buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_table),
		cmocka_unit_test(test_shipped_example_config_matches_the_key_table),
		cmocka_unit_test(test_size_table),
		cmocka_unit_test(test_hostport_table),
		cmocka_unit_test(test_hostport_host_too_long_for_buffer_is_refused),
		cmocka_unit_test(test_defaults_are_the_documented_ones),
		cmocka_unit_test(test_config_set_table),
		cmocka_unit_test(test_config_set_refuses_a_string_longer_than_the_field),
		cmocka_unit_test(test_file_with_comments_blank_lines_and_spaces_is_read),
		cmocka_unit_test(test_file_problem_table),
		cmocka_unit_test(test_missing_file_is_one_problem_naming_the_path),
		cmocka_unit_test(test_argv_table),
		cmocka_unit_test(test_example_config_reparses_with_every_key_uncommented),
		cmocka_unit_test(test_usage_and_example_name_the_same_keys),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
