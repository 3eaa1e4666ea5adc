/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: kanald's settings, from defaults, then the config file, then
 * command-line flags (flags win).
 *
 * One table in config.c names every key with its type, default, bounds and
 * help text; --help, -n and the example config are all made from it. The
 * file is `key = value` lines with `#` comments, keys spelled as the long
 * flags. Problems are reported as "FILE:LINE: what is wrong, what to do"
 * (or "--flag: ..." for flags), all of them, not only the first.
 */
#ifndef KANAL_CONFIG_H
#define KANAL_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CONFIG_STR_MAX 1024

struct config {
	char config_file[CONFIG_STR_MAX];
	char listen[CONFIG_STR_MAX];
	char pg[CONFIG_STR_MAX];
	char wal_dir[CONFIG_STR_MAX];
	char sources[CONFIG_STR_MAX];
	char collector_id[CONFIG_STR_MAX];
	char log_level[CONFIG_STR_MAX];
	char tls_cert[CONFIG_STR_MAX];
	char tls_key[CONFIG_STR_MAX];
	/* Where tls-cert or tls-key was last set: "PATH:LINE" or "--tls-key". */
	char tls_set_at[CONFIG_STR_MAX + 32];
	char reach_key_file[CONFIG_STR_MAX];	/* "" = reach off */
	uint64_t flush_interval_ms;
	uint64_t max_body_size;
	uint64_t max_header_size;
	uint64_t max_batch_events;
	uint64_t event_max_age_ms;
	uint64_t event_max_ahead_ms;
	uint64_t timeout_ms;
	uint64_t shutdown_timeout_ms;
	uint64_t wal_max_size;
	uint64_t wal_segment_size;
	uint64_t dedup_window_ms;
	uint64_t lease_grace_ms;
	uint64_t dedup_max_batches;
	uint64_t max_connections;
	uint64_t rate_limit;		/* events per second per source; 0 = off */
	uint64_t rate_limit_burst;	/* events; 0 = one second's worth */
	uint64_t retention_hourly_days;	/* 0 = kanald drops no hourly rows */
};

enum config_action {
	CONFIG_RUN,		/* start the daemon */
	CONFIG_CHECK,		/* -n: check and exit */
	CONFIG_HELP,		/* --help was printed */
	CONFIG_VERSION,		/* --version was printed */
	CONFIG_INVALID,		/* problems were printed to errs */
};

/* Fill *cfg with every key's default. Can't fail. */
void config_defaults(struct config *cfg);

/*
 * Set one key from its text form. Returns 0, or -1 with a message (what is
 * wrong and what to do, without file or line) in err; *cfg is unchanged on
 * error.
 */
int config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen);

/*
 * Read a config file into *cfg. Every problem is printed to errs as
 * "PATH:LINE: message". Returns the number of problems (0 = fine); a file
 * that can't be opened is one problem.
 */
int config_read_file(struct config *cfg, const char *path, FILE *errs);

/*
 * Checks that need several keys at once (tls-cert and tls-key go
 * together), after every source of settings was read. Each problem is
 * printed to errs as "WHERE: message"; returns the number of problems.
 */
int config_check(const struct config *cfg, FILE *errs);

/*
 * The whole command line: defaults, then -c FILE, then the flags. --help
 * and --version print to out. Problems go to errs.
 */
enum config_action config_from_argv(struct config *cfg, int argc,
    char **argv, FILE *out, FILE *errs);

/* Usage text made from the key table. */
void config_usage(FILE *out);
/* An example config file, every key commented with its help and default. */
void config_example(FILE *out);

/* Parsers, exposed for tests and other modules. Return 0 or -1. */
int config_parse_duration_ms(const char *s, uint64_t *ms);
int config_parse_size(const char *s, uint64_t *bytes);
/* "HOST:PORT" or "[V6]:PORT"; host is written to host (hostlen bytes). */
int config_parse_hostport(const char *s, char *host, size_t hostlen,
    uint16_t *port);

#endif
