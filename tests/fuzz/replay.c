/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay: runs one fuzz target's LLVMFuzzerTestOneInput over every file
 * of a corpus directory, without libFuzzer, so that the ordinary and the
 * sanitizer builds check every committed input (the seeds, and the crash
 * inputs kept as seeds) on every test run. A broken invariant aborts as
 * under libFuzzer; the file being run is printed first, so the failing
 * one is named.
 *
 *   replay_<target> DIR
 *
 * Exit 0 when every file ran, 1 on a usage or I/O error, 77 (skipped)
 * when DIR holds no file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (nb == NULL) {
				fprintf(stderr, "replay: out of memory\n");
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 1;
	}
	if ((d = opendir(argv[1])) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) *
			    sizeof(*names));
			if (nn == NULL)
				return 1;
			names = nn;
		}
		if ((names[n++] = strdup(de->d_name)) == NULL)
			return 1;
	}
	closedir(d);
	if (n == 0) {
		printf("replay: no input in %s\n", argv[1]);
		return 77;
	}
	qsort(names, n, sizeof(*names), by_name);
	LLVMFuzzerInitialize(&argc, &argv);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		if (run_file(path) == -1)
			rc = 1;
		free(names[i]);
	}
	free(names);
	printf("replay: %zu inputs, %s\n", n, rc == 0 ? "all passed" :
	    "some could not be read");
	return rc;
}
