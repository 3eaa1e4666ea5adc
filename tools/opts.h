/* SPDX-License-Identifier: Apache-2.0 */
/*
 * opts: long options for the command-line tools, from a table:
 * --name VALUE, --name=VALUE, --switch, -h/--help. The table also makes
 * the --help text, so the two never disagree.
 */
#ifndef KANAL_OPTS_H
#define KANAL_OPTS_H

#include <stdio.h>

struct opt {
	const char *name;
	const char *arg;	/* NULL: a switch */
	const char *help;
	const char **value;	/* for options with an argument */
	int *on;		/* for switches */
};

/* The table ends with a row whose name is NULL. */
void opts_usage(FILE *out, const char *synopsis, const char *about,
    const struct opt *o);

/*
 * Parses argv[1..] against o; prog names the tool in messages. Returns 0,
 * 1 when --help was printed, -1 on a usage error (printed to stderr).
 */
int opts_parse(const char *prog, int argc, char **argv, const struct opt *o,
    const char *synopsis, const char *about);

/*
 * A whole decimal number in [lo, hi], nothing after it: 0 and *v, or -1.
 */
int opts_number(const char *s, long long lo, long long hi, long long *v);

#endif
