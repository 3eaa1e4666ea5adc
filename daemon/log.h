/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: one line per event that matters, to stderr.
 *
 * When stderr is the journal (JOURNAL_STREAM names our stderr), each line
 * starts with a "<N>" syslog priority so journald files it at the right
 * level; otherwise lines carry a short level word. Messages are a short
 * sentence followed by key=value fields. The level is checked before
 * anything is formatted, so a disabled debug line costs one comparison.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef KANAL_LOG_H
#define KANAL_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* Reads JOURNAL_STREAM once; call before the first line, before threads. */
void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "err", "warning", "notice", "info", "debug"; -1 for anything else. */
int log_level_parse(const char *name);

#define LOG_ATTR(f) __attribute__((format(printf, f, f + 1)))
/* log_warn and log_crit add ": strerror(errno)"; the x forms don't. */
void log_warn(const char *fmt, ...) LOG_ATTR(1);
void log_warnx(const char *fmt, ...) LOG_ATTR(1);
void log_errx(const char *fmt, ...) LOG_ATTR(1);
void log_notice(const char *fmt, ...) LOG_ATTR(1);
void log_info(const char *fmt, ...) LOG_ATTR(1);
void log_debug(const char *fmt, ...) LOG_ATTR(1);
/* Log at LOG_LEVEL_ERR and exit(1). Never return. */
void fatal(const char *fmt, ...) LOG_ATTR(1) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_ATTR(1) __attribute__((noreturn));

#endif
