/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzzlib: see fuzzlib.h.
 */
#include "fuzzlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static char scratch[512];

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level == 0)
		return 0;
	return remove(path) == -1 ? -1 : 0;
}

void
fuzz_empty_dir(const char *dir)
{
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == -1 &&
	    errno != ENOENT) {
		fprintf(stderr, "fuzz: cannot empty %s: %s\n", dir,
		    strerror(errno));
		abort();
	}
}

static void
scratch_remove(void)
{
	if (scratch[0] == '\0')
		return;
	fuzz_empty_dir(scratch);
	rmdir(scratch);
}

const char *
fuzz_scratch_dir(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;

	if (scratch[0] != '\0')
		return scratch;
	if (base == NULL || base[0] == '\0')
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(scratch, sizeof(scratch), "%s/kanal-fuzz.XXXXXX", base);
	if (mkdtemp(scratch) == NULL) {
		fprintf(stderr, "fuzz: mkdtemp %s: %s\n", scratch,
		    strerror(errno));
		abort();
	}
	atexit(scratch_remove);
	return scratch;
}

void
fuzz_write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *c = p;

	if (fd == -1)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		c += n;
		len -= (size_t)n;
	}
	if (close(fd) == -1)
		goto fail;
	return;
fail:
	fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
	abort();
}

void
fuzz_quiet_log(void)
{
	/* Below LOG_LEVEL_ERR: not even errors are written. */
	log_init("fuzz", (enum log_level)0);
}

/*
 * The set-up of a target that needs none of its own; one that defines
 * LLVMFuzzerInitialize itself overrides this one (and calls
 * fuzz_quiet_log).
 */
__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	return 0;
}
