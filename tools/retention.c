/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention: see retention.h.
 */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "opts.h"

#define EXIT_USAGE 2
/* A drop waits at most 1 s for its lock (the function's lock_timeout). */
#define ATTEMPTS 5
#define LOCK_NOT_AVAILABLE "55P03"
#define UNDEFINED_FUNCTION "42883"
#define MIGRATE_HINT \
	" (the database lacks migration 007: run kanalctl migrate as its owner)"

static void
pause_s(unsigned s)
{
	struct timespec ts = { (time_t)s, 0 };

	nanosleep(&ts, NULL);
}

/* The first line of the server's message, for one line of output. */
static const char *
first_line(PGconn *conn, char *buf, size_t len)
{
	snprintf(buf, len, "%s", PQerrorMessage(conn));
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static int
ensure_ahead(PGconn *conn)
{
	char e[512];
	PGresult *r = PQexec(conn, "SELECT kanal.hourly_partitions_ensure("
	    "now() - interval '1 day', now() + interval '2 months')");

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		fprintf(stderr, "kanalctl retention: cannot make the hourly "
		    "partitions ahead: %s%s\n", first_line(conn, e, sizeof(e)),
		    state != NULL && strcmp(state, UNDEFINED_FUNCTION) == 0 ?
		    MIGRATE_HINT : "");
		PQclear(r);
		return -1;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
		printf("made %s hourly partition(s) for the months ahead\n",
		    PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int
retention_main(int argc, char **argv)
{
	const char *pg = "", *days_s = NULL;
	int dry = 0;
	const struct opt o[] = {
		{ "pg", "CONNINFO", "database (as kanal_ingest or the owner; "
		  "default: libpq's PG* environment)", &pg, NULL },
		{ "hourly-days", "DAYS", "keep this many days of hourly rows, "
		  "1..36500 (default: as last applied, by kanald's daily run "
		  "from its retention-hourly-days, else 400)", &days_s, NULL },
		{ "dry-run", NULL, "list what would be dropped; change nothing",
		  NULL, &dry },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl retention [--pg CONNINFO] "
	    "[--hourly-days DAYS] [--dry-run]";
	const char *params[2];
	char e[512];
	PGconn *conn;
	PGresult *r = NULL;
	long long days = 0;
	int rc, n;

	rc = opts_parse("kanalctl", argc, argv, o, syn, "Makes the hourly "
	    "partitions of the months ahead, then drops the whole months of\n"
	    "kanal.usage_hourly that ended DAYS or more days ago (DETACH and "
	    "DROP; a\nflush waits at most about a second). The daily and "
	    "monthly tiers keep every\ncount for ever. kanald does the same "
	    "once a day (retention-hourly-days).\nExit 0; 1: a failure (after "
	    "5 tries when the lock was busy); 2: usage.");
	if (rc != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (days_s != NULL && opts_number(days_s, 1, 36500, &days) == -1) {
		fprintf(stderr, "kanalctl retention: --hourly-days is a whole "
		    "number of days, 1..36500 (not \"%s\")\n", days_s);
		return EXIT_USAGE;
	}
	conn = PQconnectdb(pg);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "kanalctl retention: cannot connect: %s",
		    PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	r = PQexec(conn, "SET TimeZone = 'UTC'");
	PQclear(r);
	if (!dry && ensure_ahead(conn) == -1) {
		PQfinish(conn);
		return 1;
	}
	params[0] = days_s;
	params[1] = dry ? "true" : "false";
	for (int attempt = 1;; attempt++) {
		const char *state;

		r = PQexecParams(conn, "SELECT partition_name, range_from,"
		    " range_to, rows_dropped, (SELECT hourly_days FROM"
		    " kanal.hourly_retention) FROM kanal.hourly_retention_apply("
		    "$1::integer, $2::boolean)", 2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			break;
		state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state == NULL || strcmp(state, LOCK_NOT_AVAILABLE) != 0 ||
		    attempt == ATTEMPTS) {
			fprintf(stderr, "kanalctl retention: %s%s\n",
			    first_line(conn, e, sizeof(e)),
			    state != NULL && strcmp(state, UNDEFINED_FUNCTION) ==
			    0 ? MIGRATE_HINT : "");
			PQclear(r);
			PQfinish(conn);
			return 1;
		}
		fprintf(stderr, "kanalctl retention: the hourly table is busy "
		    "(a long query holds it); trying again (%d of %d)\n",
		    attempt + 1, ATTEMPTS);
		PQclear(r);
		pause_s(2);
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		printf("%s %s  %s .. %s  %s rows\n", dry ? "would drop" :
		    "dropped", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
	PQclear(r);
	r = PQexec(conn, "SELECT CASE WHEN kept_from = '-infinity' THEN "
	    "'every hour' ELSE 'from ' || kept_from::text END, "
	    "coalesce(hourly_days::text, 'none yet') FROM kanal.hourly_retention");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		printf("%s; hourly rows kept: %s (hourly_days last applied: "
		    "%s)\n", n == 0 ? (dry ? "nothing would be dropped" :
		    "nothing to drop") : (dry ? "dry run: nothing changed" :
		    "done"), PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	PQfinish(conn);
	return 0;
}
