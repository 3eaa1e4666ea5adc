/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report: `kanalctl report`, the month's indicators for a person: a text
 * table on a terminal and, on request, one self-contained HTML page with
 * three inline SVG charts (take-up by kecamatan, the monthly trend, the
 * services with the most manual transactions). It reads the view
 * kanal.adoption_counts_monthly (schema/004), sums its counts over the
 * grouping it shows and divides as digital_adoption_monthly does, so a
 * rolled-up rate is the rate of the summed counts, never an average of
 * rates. Beside digital take-up it shows the distinct residents who used
 * a digital service and the digital-only share, with their change and
 * error bound, from kanal.published_reach_monthly (schema/010_reach.sql),
 * for the scope's city or kecamatan and, for a city, each kecamatan; one
 * line says why when they are not measured (no reach tables, no sketches
 * that month, a desa or several cities). Reading the views and
 * kanal.service / kanal.region (and kanal.reach_monthly_sketch, to find
 * which city has sketches) is all it needs: kanal_analyst is enough.
 */
#ifndef KANAL_REPORT_H
#define KANAL_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

struct report_opts {
	const char *month;	/* YYYY-MM, a local (WIB) month */
	const char *region;	/* Kemendagri code and everything under it;
				   NULL: every region */
	const char *html;	/* write the HTML page here; NULL: none */
};

/*
 * Checks o (the month's and the region's syntax) without a database.
 * Returns 0, or -1 with the reason in err.
 */
int report_check(const struct report_opts *o, char *err, size_t errlen);

/*
 * Prints the report for o to out and, with o->html, writes the page
 * (to a temporary file renamed into place, so a reader never sees half a
 * page). conn is the caller's and stays open.
 *
 * Returns 0; 1 when the month has no events in the region (nothing is
 * printed on out, no page is written, err says so); -1 on any other
 * failure (a query, the file), the reason in err.
 */
int report_run(PGconn *conn, const struct report_opts *o, FILE *out,
    char *err, size_t errlen);

/*
 * `kanalctl report`: argv[0] is "report". Parses the options (tools/opts.h),
 * connects, runs the report. Returns the exit status: 0, 1 (no events that
 * month, or an error, printed on stderr), 2 (usage).
 */
int report_main(int argc, char **argv);

/* Formatting, exposed for the unit tests; each writes a NUL-terminated
   string into buf (always at least 32 bytes) and can't fail. */

/* 1234567 -> "1,234,567"; -42 -> "-42". */
void report_fmt_count(char *buf, size_t len, int64_t v);
/* Milliseconds as "42 s", "4 min 12 s", "1 h 05 min"; with sign, a
   leading "+" or "-" (a change). */
void report_fmt_duration(char *buf, size_t len, double ms, int sign);

/* Writes s with & < > " ' escaped for HTML text and attribute values. */
void report_html_escape(FILE *out, const char *s);

#endif
