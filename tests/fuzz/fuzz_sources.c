/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sources: the sources file parser (daemon/sources.c).
 *
 * The input is a sources file. It is parsed from memory (sources_parse,
 * the bytes exactly as given, no NUL after them) and from a real file
 * (sources_load, what kanald reads at start-up and on reload). Checked:
 *
 *   - both agree on whether the file is good and on how many sources it
 *     holds;
 *   - a refused file has every problem printed as "NAME:LINE: ..." and a
 *     good one prints nothing;
 *   - a good file's sources answer sources_auth and source_allows (for a
 *     few tokens and service codes, some taken from the input) without
 *     trouble, and every source has a valid name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "sources.h"

/* Every line of the stream's text starts with prefix. */
static int
lines_start_with(const char *text, const char *prefix)
{
	size_t plen = strlen(prefix);

	while (*text != '\0') {
		const char *nl = strchr(text, '\n');

		if (strncmp(text, prefix, plen) != 0 || nl == NULL)
			return 0;
		text = nl + 1;
	}
	return 1;
}

/*
 * The seed corpus's lines carry the digests of these tokens, so mutations
 * keep some sources reachable.
 */
static const char *const tokens[] = {
	"fuzz-token-1", "fuzz-token-2", "fuzz-token-3",
};

static void
probe(const struct sources *s, const uint8_t *data, size_t size)
{
	static const char *const services[] = {
		"dukcapil.akta-lahir", "dukcapil", "samsat.pkb", "a", "",
	};
	size_t taken = size < 64 ? size : 64;

	FUZZ_CHECK(sources_auth(s, "", 0) == NULL);
	/* The input's first bytes as a token, and as a service code below. */
	(void)sources_auth(s, (const char *)data, taken);
	for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
		const struct source *src = sources_auth(s, tokens[t],
		    strlen(tokens[t]));
		const char *name;
		size_t n;

		if (src == NULL)
			continue;
		name = source_name(src);
		n = strlen(name);
		FUZZ_CHECK(n >= 1 && n <= 63);
		FUZZ_CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
		for (size_t i = 0; i < sizeof(services) / sizeof(services[0]);
		    i++)
			(void)source_allows(src, services[i],
			    strlen(services[i]));
		(void)source_allows(src, (const char *)data, taken);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_scratch_dir();
	char path[600], *errtext = NULL, *errtext2 = NULL;
	size_t errlen = 0, errlen2 = 0;
	struct sources *mem, *file;
	FILE *errs, *errs2;

	errs = open_memstream(&errtext, &errlen);
	errs2 = open_memstream(&errtext2, &errlen2);
	FUZZ_CHECK(errs != NULL && errs2 != NULL);
	mem = sources_parse((const char *)data, size, "in", errs);
	snprintf(path, sizeof(path), "%s/sources.conf", dir);
	fuzz_write_file(path, data, size);
	file = sources_load(path, errs2);
	fclose(errs);
	fclose(errs2);

	FUZZ_CHECK((mem == NULL) == (file == NULL));
	if (mem != NULL) {
		FUZZ_CHECK(sources_count(mem) == sources_count(file));
		FUZZ_CHECK(errlen == 0 && errlen2 == 0);
		probe(mem, data, size);
	} else {
		FUZZ_CHECK(errlen > 0 && errlen2 > 0);
		FUZZ_CHECK(lines_start_with(errtext, "in:"));
		FUZZ_CHECK(lines_start_with(errtext2, path));
	}
	sources_free(mem);
	sources_free(file);
	free(errtext);
	free(errtext2);
	return 0;
}
