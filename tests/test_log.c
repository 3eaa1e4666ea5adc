/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: the line format on stderr, with and without the journal, levels,
 * and errno. Each case points fd 2 at a fresh temporary file, logs, puts
 * fd 2 back and only then checks what the file holds (so a failing check
 * is reported on the real stderr).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

struct capture {
	char path[64];
	int fd;		/* the file, now fd 2 */
	int saved;	/* the real stderr */
};

/*
 * Points fd 2 at a new file. journal: 1 sets JOURNAL_STREAM to the
 * file's device:inode, 0 unsets it, -1 sets it to another stream's.
 */
static void
capture_start(struct capture *c, int journal, enum log_level level)
{
	struct stat st;
	char env[64];

	snprintf(c->path, sizeof(c->path), "/tmp/test_log-XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd != -1);
	assert_int_equal(fstat(c->fd, &st), 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved != -1);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
	if (journal == 0) {
		unsetenv("JOURNAL_STREAM");
	} else {
		snprintf(env, sizeof(env), "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino + (journal == -1 ? 1 : 0));
		setenv("JOURNAL_STREAM", env, 1);
	}
	log_init("kanald", level);
}

/* Puts stderr back; out gets what was written (NUL-terminated). */
static void
capture_end(struct capture *c, char *out, size_t len)
{
	ssize_t n;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	n = pread(c->fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(c->fd);
	unlink(c->path);
	unsetenv("JOURNAL_STREAM");
}

enum call { WARN, WARNX, ERRX, NOTICE, INFO, DEBUG };

static void
log_one(enum call call)
{
	switch (call) {
	case WARN:
		errno = ENOENT;
		log_warn("cannot open the batch index: file=%s", "batches.idx");
		break;
	case WARNX:
		log_warnx("flush failed, retrying in %ds: keys=%d", 4, 1843);
		break;
	case ERRX:
		log_errx("cannot start: %s", "damaged");
		break;
	case NOTICE:
		log_notice("reloaded: sources=%d", 2);
		break;
	case INFO:
		log_info("listening: listen=%s", "127.0.0.1:8080");
		break;
	case DEBUG:
		log_debug("flushed: rows=%d", 7);
		break;
	}
}

static const struct {
	const char *name;
	int journal;
	enum log_level level;
	enum call call;
	const char *want;
} cases[] = {
	{ "a warning to the journal carries priority 4", 1,
	  LOG_LEVEL_INFO, WARNX,
	  "<4>flush failed, retrying in 4s: keys=1843\n" },
	{ "an error to the journal carries priority 3", 1,
	  LOG_LEVEL_INFO, ERRX, "<3>cannot start: damaged\n" },
	{ "a notice to the journal carries priority 5", 1,
	  LOG_LEVEL_INFO, NOTICE, "<5>reloaded: sources=2\n" },
	{ "an info line to the journal carries priority 6", 1,
	  LOG_LEVEL_INFO, INFO, "<6>listening: listen=127.0.0.1:8080\n" },
	{ "a debug line to the journal carries priority 7", 1,
	  LOG_LEVEL_DEBUG, DEBUG, "<7>flushed: rows=7\n" },
	{ "log_warn to the journal appends the errno text", 1,
	  LOG_LEVEL_INFO, WARN, "<4>cannot open the batch index: "
	  "file=batches.idx: No such file or directory\n" },
	{ "a warning without the journal names program and level", 0,
	  LOG_LEVEL_INFO, WARNX,
	  "kanald: warning: flush failed, retrying in 4s: keys=1843\n" },
	{ "log_warn without the journal appends the errno text", 0,
	  LOG_LEVEL_INFO, WARN, "kanald: warning: cannot open the batch "
	  "index: file=batches.idx: No such file or directory\n" },
	{ "an error without the journal says err", 0,
	  LOG_LEVEL_INFO, ERRX, "kanald: err: cannot start: damaged\n" },
	{ "JOURNAL_STREAM naming another stream means plain lines", -1,
	  LOG_LEVEL_INFO, NOTICE, "kanald: notice: reloaded: sources=2\n" },
	{ "at level info a debug line is not written", 0,
	  LOG_LEVEL_INFO, DEBUG, "" },
	{ "at level notice an info line is not written", 1,
	  LOG_LEVEL_NOTICE, INFO, "" },
	{ "at level notice a notice is written", 1,
	  LOG_LEVEL_NOTICE, NOTICE, "<5>reloaded: sources=2\n" },
	{ "at level err a warning is not written", 0,
	  LOG_LEVEL_ERR, WARN, "" },
	{ "at level debug a debug line is written", 0,
	  LOG_LEVEL_DEBUG, DEBUG, "kanald: debug: flushed: rows=7\n" },
};

static void
test_line_format_and_levels(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct capture c;
		char got[4096];

		capture_start(&c, cases[i].journal, cases[i].level);
		log_one(cases[i].call);
		capture_end(&c, got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name,
			    got, cases[i].want);
	}
}

/* Each line is whole: several in a row come out in order, one per line. */
static void
test_lines_follow_each_other(void **state)
{
	struct capture c;
	char got[4096];

	(void)state;
	capture_start(&c, 1, LOG_LEVEL_INFO);
	log_notice("first: n=%d", 1);
	log_debug("hidden: n=%d", 2);
	log_warnx("second: n=%d", 3);
	capture_end(&c, got, sizeof(got));
	assert_string_equal(got, "<5>first: n=1\n<4>second: n=3\n");
}

/* log_warn leaves errno as it found it: callers may log, then report. */
static void
test_log_warn_keeps_errno(void **state)
{
	struct capture c;
	char got[4096];
	int after;

	(void)state;
	capture_start(&c, 0, LOG_LEVEL_INFO);
	errno = ENOSPC;
	log_warn("WAL write failed: bytes=%d", 4096);
	after = errno;
	capture_end(&c, got, sizeof(got));
	assert_int_equal(after, ENOSPC);
	assert_string_equal(got, "kanald: warning: WAL write failed: "
	    "bytes=4096: No space left on device\n");
}

/* A line longer than the buffer is cut, still ends in a newline. */
static void
test_long_line_is_cut_with_a_newline(void **state)
{
	struct capture c;
	char got[8192];
	char big[4000];
	size_t n;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start(&c, 1, LOG_LEVEL_INFO);
	log_warnx("long: v=%s", big);
	capture_end(&c, got, sizeof(got));
	n = strlen(got);
	assert_true(n > 100 && n < sizeof(big));
	assert_int_equal(got[n - 1], '\n');
	assert_memory_equal(got, "<4>long: v=xxx", 14);
	assert_ptr_equal(strchr(got, '\n'), got + n - 1);
}

static const struct {
	const char *name;
	int want;
} levels[] = {
	{ "err", LOG_LEVEL_ERR },
	{ "warning", LOG_LEVEL_WARNING },
	{ "notice", LOG_LEVEL_NOTICE },
	{ "info", LOG_LEVEL_INFO },
	{ "debug", LOG_LEVEL_DEBUG },
	{ "warn", -1 },
	{ "DEBUG", -1 },
	{ "", -1 },
	{ "info ", -1 },
};

static void
test_level_names_parse_exactly(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (log_level_parse(levels[i].name) != levels[i].want)
			fail_msg("log_level_parse(\"%s\") = %d, want %d",
			    levels[i].name, log_level_parse(levels[i].name),
			    levels[i].want);
}

/* log_set_level takes effect for the next line (SIGHUP's reload). */
static void
test_set_level_changes_what_is_written(void **state)
{
	struct capture c;
	char got[4096];

	(void)state;
	capture_start(&c, 0, LOG_LEVEL_INFO);
	log_debug("before: n=%d", 1);
	log_set_level(LOG_LEVEL_DEBUG);
	assert_int_equal(log_get_level(), LOG_LEVEL_DEBUG);
	log_debug("after: n=%d", 2);
	capture_end(&c, got, sizeof(got));
	assert_string_equal(got, "kanald: debug: after: n=2\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format_and_levels),
		cmocka_unit_test(test_lines_follow_each_other),
		cmocka_unit_test(test_log_warn_keeps_errno),
		cmocka_unit_test(test_long_line_is_cut_with_a_newline),
		cmocka_unit_test(test_level_names_parse_exactly),
		cmocka_unit_test(test_set_level_changes_what_is_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
