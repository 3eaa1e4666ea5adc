/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgcopy: see pgcopy.h.
 */
#include "pgcopy.h"

#include <stdio.h>
#include <string.h>

#define PIECE (1 << 20)

static int
fail(PGconn *conn, const char *what, char *err, size_t errlen)
{
	const char *m = PQerrorMessage(conn);

	if (what != NULL)
		snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(m, "\n"),
		    m);
	else
		snprintf(err, errlen, "%.*s", (int)strcspn(m, "\n"), m);
	return -1;
}

int
pg_copy_in(PGconn *conn, const char *copy_sql, const char *buf, size_t len,
    const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, copy_sql);
	int ok = PQresultStatus(res) == PGRES_COPY_IN;

	PQclear(res);
	if (!ok)
		return fail(conn, what, err, errlen);
	for (size_t off = 0; off < len; off += PIECE) {
		size_t n = len - off < PIECE ? len - off : PIECE;

		if (PQputCopyData(conn, buf + off, (int)n) != 1)
			return fail(conn, what, err, errlen);
	}
	if (PQputCopyEnd(conn, NULL) != 1)
		return fail(conn, what, err, errlen);
	res = PQgetResult(conn);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fail(conn, what, err, errlen);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return ok ? 0 : -1;
}
