/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: see config.h. The table below is the single list of keys; adding
 * a key means adding a field to struct config and a row here.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum key_type {
	KEY_STRING,
	KEY_DURATION,
	KEY_SIZE,
	KEY_UINT,
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	uint64_t min, max;	/* bounds for numbers (ms, bytes, count) */
	int (*check)(const char *value, char *err, size_t errlen);
	const char *arg;	/* placeholder in --help */
	const char *help;
};

static int check_listen(const char *, char *, size_t);
static int check_collector_id(const char *, char *, size_t);
static int check_log_level(const char *, char *, size_t);

#define OFF(f) offsetof(struct config, f)
#define MS_DAY (24ULL * 3600 * 1000)

static const struct key keys[] = {
	{ "listen", KEY_STRING, OFF(listen), "127.0.0.1:8080", 0, 0,
	  check_listen, "HOST:PORT",
	  "address to serve HTTP on; [::1]:8080 for IPv6" },
	{ "pg", KEY_STRING, OFF(pg), "", 0, 0, NULL, "CONNINFO",
	  "PostgreSQL connection string; empty uses libpq's PG* environment" },
	{ "wal-dir", KEY_STRING, OFF(wal_dir), "/var/lib/kanal/wal", 0, 0,
	  NULL, "DIR", "directory of the write-ahead log: every acknowledged "
	  "batch is here until PostgreSQL has it" },
	{ "wal-max-size", KEY_SIZE, OFF(wal_max_size), "1GiB", 1ULL << 20,
	  1ULL << 40, NULL, "SIZE",
	  "when the WAL holds this much, new batches get 503 until "
	  "PostgreSQL catches up" },
	{ "wal-segment-size", KEY_SIZE, OFF(wal_segment_size), "64MiB", 4096,
	  1ULL << 30, NULL, "SIZE",
	  "WAL segment file size; whole segments are removed once flushed" },
	{ "dedup-window", KEY_DURATION, OFF(dedup_window_ms), "24h", 60000,
	  30 * MS_DAY, NULL, "DURATION",
	  "how long a batch_id is remembered, so a retry is not counted twice "
	  "(here, and in the fleet's ledger in PostgreSQL)" },
	{ "dedup-max-batches", KEY_UINT, OFF(dedup_max_batches), "1000000",
	  1024, 100000000, NULL, "N",
	  "most batch_ids remembered (about 50 bytes each); past it the "
	  "oldest go first" },
	{ "sources", KEY_STRING, OFF(sources), "/etc/kanal/sources.conf", 0,
	  0, NULL, "FILE", "sources file: who may send, with which token" },
	{ "collector-id", KEY_STRING, OFF(collector_id), "kanald", 0, 0,
	  check_collector_id, "ID",
	  "this instance's name in kanal.collector_checkpoint; unique per instance" },
	{ "lease-grace", KEY_DURATION, OFF(lease_grace_ms), "15s", 0,
	  600 * 1000, NULL, "DURATION",
	  "how long the collector-id may be found in use by another session "
	  "before kanald exits 4 (a killed predecessor's session ends late)" },
	{ "flush-interval", KEY_DURATION, OFF(flush_interval_ms), "1s", 10,
	  3600 * 1000, NULL, "DURATION",
	  "how often rollups are written to PostgreSQL (200ms, 1s, 1h)" },
	{ "max-body-size", KEY_SIZE, OFF(max_body_size), "4MiB", 1024,
	  1ULL << 30, NULL, "SIZE", "largest request body; larger gets 413" },
	{ "max-header-size", KEY_SIZE, OFF(max_header_size), "64KiB", 1024,
	  1ULL << 20, NULL, "SIZE", "largest request header block" },
	{ "max-batch-events", KEY_UINT, OFF(max_batch_events), "10000", 1,
	  1000000, NULL, "N", "most events in one batch; more gets 400" },
	{ "event-max-age", KEY_DURATION, OFF(event_max_age_ms), "7d", 1000,
	  366 * MS_DAY, NULL, "DURATION",
	  "oldest occurred_at accepted, back from now" },
	{ "event-max-ahead", KEY_DURATION, OFF(event_max_ahead_ms), "5m", 0,
	  MS_DAY, NULL, "DURATION",
	  "newest occurred_at accepted, ahead of now (clock skew)" },
	{ "timeout", KEY_DURATION, OFF(timeout_ms), "30s", 100, 3600 * 1000,
	  NULL, "DURATION", "a whole request must arrive within it (from the connection or the previous answer); also the idle timeout" },
	{ "shutdown-timeout", KEY_DURATION, OFF(shutdown_timeout_ms), "10s",
	  0, 3600 * 1000, NULL, "DURATION",
	  "on SIGTERM, how long to keep trying to write held counts" },
	{ "log-level", KEY_STRING, OFF(log_level), "info", 0, 0,
	  check_log_level, "LEVEL", "err, warning, notice, info or debug" },
	{ "tls-cert", KEY_STRING, OFF(tls_cert), "", 0, 0, NULL, "FILE",
	  "PEM certificate chain (server first); with tls-key the listener "
	  "speaks HTTPS only (TLS 1.2+); SIGHUP re-reads both" },
	{ "tls-key", KEY_STRING, OFF(tls_key), "", 0, 0, NULL, "FILE",
	  "PEM private key of tls-cert" },
	{ "reach-key-file", KEY_STRING, OFF(reach_key_file), "", 0, 0, NULL,
	  "FILE", "the city's reach key (kanalctl reach keygen): 32 bytes, "
	  "mode 0600, owned by kanald's user; citizen_refs are then counted "
	  "as distinct residents, keyed so the sketches can't be tested "
	  "against a list of NIKs; empty = reach off" },
	{ "max-connections", KEY_UINT, OFF(max_connections), "1024", 1,
	  1000000, NULL, "N",
	  "most open client connections; more are accepted and closed at "
	  "once (lowered to fit the open-file limit)" },
	{ "rate-limit", KEY_UINT, OFF(rate_limit), "0", 0, 100000000, NULL,
	  "N", "events per second each source may send on average; over it "
	  "a batch gets 429 with Retry-After; 0 = no limit" },
	{ "rate-limit-burst", KEY_UINT, OFF(rate_limit_burst), "0", 0,
	  1000000000, NULL, "N",
	  "events a source may send at once (its bucket); a batch larger "
	  "gets 413; 0 = one second's worth (rate-limit)" },
	{ "retention-hourly-days", KEY_UINT, OFF(retention_hourly_days), "400",
	  0, 36500, NULL, "DAYS",
	  "hourly rows are kept this many days, then dropped a whole month at "
	  "a time (checked daily); the daily tier and the monthly cells keep "
	  "every count; 0 = never drop" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* ---------------------------------------------------------------- parsers */

struct unit {
	const char *name;
	uint64_t mult;
};

/* A whole number followed by exactly one of the units. */
static int
parse_with_unit(const char *s, const struct unit *units, size_t nunits,
    uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			return -1;
		*out = n * units[i].mult;
		return 0;
	}
	return -1;
}

int
config_parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct unit units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", MS_DAY },
	};

	return parse_with_unit(s, units, sizeof(units) / sizeof(units[0]), ms);
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	static const struct unit units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
		{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
	};

	return parse_with_unit(s, units, sizeof(units) / sizeof(units[0]),
	    bytes);
}

int
config_parse_hostport(const char *s, char *host, size_t hostlen,
    uint16_t *port)
{
	const char *colon, *h = s;
	size_t n;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		h = s + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p > 65535)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int
check_listen(const char *v, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;

	if (config_parse_hostport(v, host, sizeof(host), &port) == -1) {
		snprintf(err, errlen, "\"%s\" is not HOST:PORT; write e.g. "
		    "127.0.0.1:8080 or [::1]:8080", v);
		return -1;
	}
	return 0;
}

static int
check_collector_id(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 63 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		snprintf(err, errlen, "collector id must be 1 to 63 letters, "
		    "digits, '.', '_' or '-'");
		return -1;
	}
	return 0;
}

static int
check_log_level(const char *v, char *err, size_t errlen)
{
	if (log_level_parse(v) == -1) {
		snprintf(err, errlen, "unknown log level \"%s\"; use err, "
		    "warning, notice, info or debug", v);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- the table */

static void
format_number(const struct key *k, uint64_t v, char *buf, size_t len)
{
	if (k->type == KEY_DURATION) {
		if (v % MS_DAY == 0 && v != 0)
			snprintf(buf, len, "%llud", (unsigned long long)(v / MS_DAY));
		else if (v % 3600000 == 0 && v != 0)
			snprintf(buf, len, "%lluh", (unsigned long long)(v / 3600000));
		else if (v % 60000 == 0 && v != 0)
			snprintf(buf, len, "%llum", (unsigned long long)(v / 60000));
		else if (v % 1000 == 0)
			snprintf(buf, len, "%llus", (unsigned long long)(v / 1000));
		else
			snprintf(buf, len, "%llums", (unsigned long long)v);
	} else if (k->type == KEY_SIZE && v % (1ULL << 20) == 0 && v != 0) {
		snprintf(buf, len, "%lluMiB", (unsigned long long)(v >> 20));
	} else if (k->type == KEY_SIZE && v % 1024 == 0 && v != 0) {
		snprintf(buf, len, "%lluKiB", (unsigned long long)(v >> 10));
	} else {
		snprintf(buf, len, "%llu", (unsigned long long)v);
	}
}

static int
key_set(struct config *cfg, const struct key *k, const char *value,
    char *err, size_t errlen)
{
	char *field = (char *)cfg + k->offset;
	uint64_t v = 0;
	int r = 0;
	char lo[32], hi[32];

	switch (k->type) {
	case KEY_STRING:
		if (strlen(value) >= CONFIG_STR_MAX) {
			snprintf(err, errlen, "value is too long (over %d bytes)",
			    CONFIG_STR_MAX - 1);
			return -1;
		}
		if (k->check != NULL && k->check(value, err, errlen) == -1)
			return -1;
		strcpy(field, value);
		return 0;
	case KEY_DURATION:
		r = config_parse_duration_ms(value, &v);
		if (r == -1) {
			snprintf(err, errlen, "\"%s\" is not a duration; write a "
			    "number and a unit: 200ms, 30s, 5m, 1h, 7d", value);
			return -1;
		}
		break;
	case KEY_SIZE:
		r = config_parse_size(value, &v);
		if (r == -1) {
			snprintf(err, errlen, "\"%s\" is not a size; write bytes "
			    "or a number with KiB, MiB or GiB", value);
			return -1;
		}
		break;
	case KEY_UINT: {
		char *end;
		errno = 0;
		if (!isdigit((unsigned char)value[0]))
			r = -1;
		else
			v = strtoull(value, &end, 10);
		if (r == -1 || errno != 0 || *end != '\0') {
			snprintf(err, errlen, "\"%s\" is not a whole number",
			    value);
			return -1;
		}
		break;
	}
	}
	if (v < k->min || v > k->max) {
		format_number(k, k->min, lo, sizeof(lo));
		format_number(k, k->max, hi, sizeof(hi));
		snprintf(err, errlen, "%s is out of range; use %s to %s", value,
		    lo, hi);
		return -1;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

void
config_defaults(struct config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (key_set(cfg, &keys[i], keys[i].def, err, sizeof(err)) == -1)
			fatalx("config table: default of %s: %s", keys[i].name,
			    err);
}

int
config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen)
{
	const struct key *k = key_find(key);

	if (k == NULL) {
		snprintf(err, errlen, "unknown key \"%s\"; see kanald --help "
		    "for the keys", key);
		return -1;
	}
	return key_set(cfg, k, value, err, errlen);
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Remembers where a TLS key was set, for config_check's message. */
static void
note_where(struct config *cfg, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note_where(struct config *cfg, const char *key, const char *fmt, ...)
{
	const char *value;
	va_list ap;

	if (strcmp(key, "tls-cert") == 0)
		value = cfg->tls_cert;
	else if (strcmp(key, "tls-key") == 0)
		value = cfg->tls_key;
	else
		return;
	if (value[0] == '\0')
		return;		/* set to empty: nothing to point at */
	va_start(ap, fmt);
	vsnprintf(cfg->tls_set_at, sizeof(cfg->tls_set_at), fmt, ap);
	va_end(ap);
}

int
config_check(const struct config *cfg, FILE *errs)
{
	int cert = cfg->tls_cert[0] != '\0', key = cfg->tls_key[0] != '\0';

	if (cert == key)
		return 0;
	fprintf(errs, "%s: %s is set but %s is not; give both PEM files "
	    "(the certificate chain and its private key) or neither\n",
	    cfg->tls_set_at[0] != '\0' ? cfg->tls_set_at : "tls",
	    cert ? "tls-cert" : "tls-key", cert ? "tls-key" : "tls-cert");
	return 1;
}

int
config_read_file(struct config *cfg, const char *path, FILE *errs)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int problems = 0;
	char err[512];

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(errs, "%s: cannot open: %s; check the path given "
		    "with -c\n", path, strerror(errno));
		return 1;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		char *s, *eq, *key, *value;

		lineno++;
		if ((size_t)len != strlen(line)) {
			fprintf(errs, "%s:%u: line holds a NUL byte; the file "
			    "must be text\n", path, lineno);
			problems++;
			continue;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			fprintf(errs, "%s:%u: expected \"key = value\"\n", path,
			    lineno);
			problems++;
			continue;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (config_set(cfg, key, value, err, sizeof(err)) == -1) {
			fprintf(errs, "%s:%u: %s: %s\n", path, lineno, key, err);
			problems++;
		} else
			note_where(cfg, key, "%s:%u", path, lineno);
	}
	if (ferror(f)) {
		fprintf(errs, "%s: read error: %s\n", path, strerror(errno));
		problems++;
	}
	free(line);
	fclose(f);
	return problems;
}

/* ------------------------------------------------------------ command line */

void
config_usage(FILE *out)
{
	char def[64];

	fprintf(out,
	    "usage: kanald [-n] [-c FILE] [--KEY VALUE ...]\n"
	    "\n"
	    "kanald collects service-usage events over HTTP (POST /v1/events),\n"
	    "adds them to hourly digital-vs-manual rollups and writes them to\n"
	    "PostgreSQL.\n"
	    "\n"
	    "  -c, --config FILE   read KEY = VALUE lines from FILE; flags win\n"
	    "  -n, --check         check the configuration and the sources file,\n"
	    "                      print \"configuration OK\" or each problem, exit\n"
	    "  -h, --help          this text\n"
	    "      --example-config  print a config file with every key and its\n"
	    "                      default, commented out\n"
	    "  -V, --version       print the version\n"
	    "\n"
	    "Keys (as --KEY VALUE, --KEY=VALUE, or KEY = VALUE in the file):\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s %s", k->name, k->arg);
		snprintf(def, sizeof(def), "%s", k->def[0] ? k->def : "(empty)");
		fprintf(out, "  %-28s %s\n  %-28s default: %s\n", flag, k->help,
		    "", def);
	}
}

void
config_example(FILE *out)
{
	fprintf(out,
	    "# kanald configuration: KEY = VALUE lines; a line starting with '#'\n"
	    "# is a comment (a '#' after a value is part of the value).\n"
	    "# Keys are the long flags of kanald; a flag on the command line\n"
	    "# wins over this file. Every key is shown with its default.\n");
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(out, "\n# %s\n#%s = %s\n", keys[i].help, keys[i].name,
		    keys[i].def);
}

enum config_action
config_from_argv(struct config *cfg, int argc, char **argv, FILE *out,
    FILE *errs)
{
	const char *file = NULL;
	int check = 0, problems = 0;
	char err[512];

	config_defaults(cfg);

	/* First pass: the file and the modes, so that flags can win. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			config_usage(out);
			return CONFIG_HELP;
		}
		if (strcmp(a, "--example-config") == 0) {
			config_example(out);
			return CONFIG_HELP;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			fprintf(out, "kanald %s\n", KANAL_VERSION);
			return CONFIG_VERSION;
		}
		if (strncmp(a, "--", 2) == 0 && strchr(a, '=') == NULL &&
		    key_find(a + 2) != NULL) {
			i++;	/* its value, whatever it looks like */
			continue;
		}
		if (strcmp(a, "-n") == 0 || strcmp(a, "--check") == 0)
			check = 1;
		else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(errs, "%s: needs a file name\n", a);
				return CONFIG_INVALID;
			}
			file = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0)
			file = a + 9;
	}
	if (file != NULL) {
		snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", file);
		problems += config_read_file(cfg, file, errs);
	}

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *value;
		char key[64];
		const char *eq;

		if (strcmp(a, "-n") == 0 || strcmp(a, "--check") == 0)
			continue;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			fprintf(errs, "%s: unexpected argument; see kanald "
			    "--help\n", a);
			problems++;
			continue;
		}
		eq = strchr(a, '=');
		if (eq != NULL) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - a - 2),
			    a + 2);
			value = eq + 1;
		} else {
			snprintf(key, sizeof(key), "%s", a + 2);
			if (key_find(key) != NULL && i + 1 >= argc) {
				fprintf(errs, "%s: needs a value\n", a);
				problems++;
				continue;
			}
			value = key_find(key) != NULL ? argv[++i] : "";
		}
		if (config_set(cfg, key, value, err, sizeof(err)) == -1) {
			fprintf(errs, "--%s: %s\n", key, err);
			problems++;
		} else
			note_where(cfg, key, "--%s", key);
	}
	if (problems == 0)
		problems += config_check(cfg, errs);
	if (problems > 0)
		return CONFIG_INVALID;
	return check ? CONFIG_CHECK : CONFIG_RUN;
}
