/* SPDX-License-Identifier: Apache-2.0 */
/*
 * opts: see opts.h.
 */
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
opts_usage(FILE *out, const char *synopsis, const char *about,
    const struct opt *o)
{
	fprintf(out, "usage: %s\n\n%s\n\n", synopsis, about);
	for (; o->name != NULL; o++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s%s%s", o->name,
		    o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-26s %s\n", flag, o->help);
	}
}

int
opts_parse(const char *prog, int argc, char **argv, const struct opt *o,
    const char *synopsis, const char *about)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		size_t nlen;
		const struct opt *m;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			opts_usage(stdout, synopsis, about, o);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "%s: unexpected argument %s\n", prog, a);
			goto usage;
		}
		eq = strchr(a, '=');
		nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		for (m = o; m->name != NULL; m++)
			if (strlen(m->name) == nlen &&
			    strncmp(m->name, a + 2, nlen) == 0)
				break;
		if (m->name == NULL) {
			fprintf(stderr, "%s: unknown option %s\n", prog, a);
			goto usage;
		}
		if (m->arg == NULL) {
			if (eq != NULL) {
				fprintf(stderr, "%s: --%s takes no value\n",
				    prog, m->name);
				goto usage;
			}
			*m->on = 1;
			continue;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "%s: --%s needs %s\n", prog, m->name,
			    m->arg);
			goto usage;
		}
		*m->value = val;
	}
	return 0;
usage:
	fprintf(stderr, "usage: %s (see --help)\n", synopsis);
	return -1;
}

int
opts_number(const char *s, long long lo, long long hi, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi
	    ? 0 : -1;
}
