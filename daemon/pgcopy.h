/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgcopy: one COPY ... FROM STDIN of a text buffer already built, sent in
 * pieces of at most 1 MiB (a buffer may pass what an int holds), with
 * every result read. For the flush's staging rows and its sketches.
 */
#ifndef KANAL_PGCOPY_H
#define KANAL_PGCOPY_H

#include <stddef.h>

#include <libpq-fe.h>

/*
 * Runs copy_sql (a COPY ... FROM STDIN) and sends the len bytes of buf as
 * its data. 0, or -1 with "what: libpq's first line" in err (the line
 * alone when what is NULL).
 */
int pg_copy_in(PGconn *conn, const char *copy_sql, const char *buf,
    size_t len, const char *what, char *err, size_t errlen);

#endif
