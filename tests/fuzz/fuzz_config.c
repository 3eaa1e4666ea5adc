/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config: kanald's config file parser and command line
 * (daemon/config.c).
 *
 * The input is a config file. It is written to a real file and read with
 * config_read_file over the defaults; then its lines (up to 32) are used
 * as a command line after "-c FILE" (config_from_argv), with any -c or
 * --config of the input's own turned into -n so nothing else is read.
 * Checked:
 *
 *   - config_read_file prints exactly one "FILE:LINE: ..." line per
 *     problem it counts;
 *   - config_from_argv says CONFIG_INVALID exactly when it printed a
 *     problem, and prints nothing on errs otherwise;
 *   - a configuration it accepts holds what the checks promise: a listen
 *     address that parses as HOST:PORT, a valid collector id and log
 *     level, NUL-terminated strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzzlib.h"
#include "log.h"

#define MAX_ARGS 32

static size_t
count_lines(const char *text, size_t len, const char *prefix)
{
	size_t n = 0, plen = strlen(prefix);

	for (const char *p = text; p < text + len; ) {
		const char *nl = memchr(p, '\n', (size_t)(text + len - p));

		FUZZ_CHECK(nl != NULL);
		FUZZ_CHECK(strncmp(p, prefix, plen) == 0);
		n++;
		p = nl + 1;
	}
	return n;
}

static void
check_accepted(const struct config *cfg)
{
	char host[256];
	uint16_t port;
	const char *strs[] = { cfg->config_file, cfg->listen, cfg->pg,
	    cfg->wal_dir, cfg->sources, cfg->collector_id, cfg->log_level };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		FUZZ_CHECK(memchr(strs[i], '\0', CONFIG_STR_MAX) != NULL);
	FUZZ_CHECK(config_parse_hostport(cfg->listen, host, sizeof(host),
	    &port) == 0);
	FUZZ_CHECK(log_level_parse(cfg->log_level) != -1);
	FUZZ_CHECK(strlen(cfg->collector_id) >= 1 &&
	    strlen(cfg->collector_id) <= 63);
}

/* The command line made of the input's lines; see the top of the file. */
static void
from_argv(const char *path, const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAX_ARGS + 4], *p;
	char *outtext = NULL, *errtext = NULL;
	size_t outlen = 0, errlen = 0;
	int argc = 0;
	FILE *out, *errs;
	struct config cfg;
	enum config_action act;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = (char *)"kanald";
	argv[argc++] = (char *)"-c";
	argv[argc++] = (char *)path;
	for (p = copy; argc < MAX_ARGS + 3 && p < copy + size; ) {
		char *nl = strchr(p, '\n');

		if (nl != NULL)
			*nl = '\0';
		if (strcmp(p, "-c") == 0 || strcmp(p, "--config") == 0 ||
		    strncmp(p, "--config=", 9) == 0)
			argv[argc++] = (char *)"-n";
		else
			argv[argc++] = p;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	argv[argc] = NULL;
	out = open_memstream(&outtext, &outlen);
	errs = open_memstream(&errtext, &errlen);
	FUZZ_CHECK(out != NULL && errs != NULL);
	act = config_from_argv(&cfg, argc, argv, out, errs);
	fclose(out);
	fclose(errs);
	FUZZ_CHECK((act == CONFIG_INVALID) == (errlen > 0));
	if (act == CONFIG_RUN || act == CONFIG_CHECK)
		check_accepted(&cfg);
	if (act == CONFIG_HELP || act == CONFIG_VERSION)
		FUZZ_CHECK(outlen > 0);
	free(outtext);
	free(errtext);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_scratch_dir();
	char path[600], *errtext = NULL, *prefix;
	size_t errlen = 0;
	struct config cfg;
	FILE *errs;
	int problems;

	snprintf(path, sizeof(path), "%s/kanald.conf", dir);
	fuzz_write_file(path, data, size);
	config_defaults(&cfg);
	errs = open_memstream(&errtext, &errlen);
	FUZZ_CHECK(errs != NULL);
	problems = config_read_file(&cfg, path, errs);
	fclose(errs);
	FUZZ_CHECK(problems >= 0);
	FUZZ_CHECK(asprintf(&prefix, "%s:", path) != -1);
	FUZZ_CHECK(count_lines(errtext, errlen, prefix) == (size_t)problems);
	if (problems == 0)
		check_accepted(&cfg);
	free(prefix);
	free(errtext);

	from_argv(path, data, size);
	return 0;
}
