/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: see log.h. The journal check follows sd_journal_stream_fd's
 * convention: JOURNAL_STREAM is "DEVICE:INODE" of the stream that systemd
 * connected to stderr; if our fd 2 still is that stream, journald reads the
 * "<N>" prefix as the priority.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static int log_journal;
static const char *log_prog = "kanald";

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "err",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static int
stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_level = level;
	log_journal = stderr_is_journal();
}

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
log_level_parse(const char *name)
{
	for (int i = LOG_LEVEL_ERR; i <= LOG_LEVEL_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* The attribute lets clang's -Wformat-nonliteral see fmt is checked. */
static void log_vwrite(enum log_level, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_vwrite(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char line[2048];
	int saved = errno;
	size_t n = 0;
	int r;

	if (log_journal)
		r = snprintf(line, sizeof(line), "<%d>", (int)level);
	else
		r = snprintf(line, sizeof(line), "%s: %s: ", log_prog,
		    level_names[level]);
	n = r > 0 ? (size_t)r : 0;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (with_errno) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line so that threads never interleave mid-line. */
	(void)!write(STDERR_FILENO, line, n);
	errno = saved;
}

#define LOG_BODY(level, with_errno)                        \
	do {                                               \
		va_list ap;                                \
		if ((level) > log_get_level())             \
			return;                            \
		va_start(ap, fmt);                         \
		log_vwrite((level), (with_errno), fmt, ap); \
		va_end(ap);                                \
	} while (0)

void log_warn(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARNING, 1); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARNING, 0); }
void log_errx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_ERR, 0); }
void log_notice(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_NOTICE, 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_INFO, 0); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_DEBUG, 0); }

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
