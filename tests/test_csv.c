/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_csv: the CSV reader of `kanalctl send --csv` (RFC 4180 quoting, ""
 * escapes, LF and CRLF, BOM, fields across lines, malformed records with
 * their line numbers), the header mapping (any order and case, unknown,
 * twice, missing), and every column's good and bad values as one row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "sendfile.h"

/*
 * Reads all of in and writes each record as "LINE:f1|f2;" and each
 * malformed one as "LINE!message;" into out.
 */
static void
dump(const char *in, char *out, size_t len)
{
	FILE *f = fmemopen((void *)in, strlen(in), "r");
	struct csv_reader *r;
	char err[256];
	uint64_t line;
	size_t n = 0;
	int rc;

	assert_non_null(f);
	r = csv_reader_new(f);
	assert_non_null(r);
	out[0] = '\0';
	while ((rc = csv_next(r, &line, err, sizeof(err))) != 0) {
		assert_true(rc == 1 || rc == -1);
		n += (size_t)snprintf(out + n, len - n, "%" PRIu64 "%c", line,
		    rc == 1 ? ':' : '!');
		if (rc == -1)
			n += (size_t)snprintf(out + n, len - n, "%s", err);
		for (size_t i = 0; rc == 1 && i < csv_nfields(r); i++)
			n += (size_t)snprintf(out + n, len - n, "%s%s",
			    i ? "|" : "", csv_field(r, i));
		n += (size_t)snprintf(out + n, len - n, ";");
		assert_true(n < len);
	}
	csv_reader_free(r);
	fclose(f);
}

static const struct {
	const char *name, *in, *want;
} read_cases[] = {
	{ "LF line ends", "a,b\nc,d\n", "1:a|b;2:c|d;" },
	{ "CRLF line ends", "a,b\r\nc,d\r\n", "1:a|b;2:c|d;" },
	{ "no line end at the end", "a,b\nc,d", "1:a|b;2:c|d;" },
	{ "quoted comma and doubled quotes",
	  "\"x,y\",\"say \"\"hi\"\"\"\n", "1:x,y|say \"hi\";" },
	{ "a quoted field across lines keeps its line break and line number",
	  "\"multi\nline\",b\nc,d\n", "1:multi\nline|b;3:c|d;" },
	{ "a quoted CRLF inside a field is kept",
	  "\"a\r\nb\",c\r\nd\r\n", "1:a\r\nb|c;3:d;" },
	{ "a UTF-8 byte order mark is dropped", "\xef\xbb\xbf" "a,b\n",
	  "1:a|b;" },
	{ "a lone byte order mark is an empty input", "\xef\xbb\xbf", "" },
	{ "an empty input has no records", "", "" },
	{ "empty lines are skipped, LF and CRLF", "a\n\n\r\nb\n", "1:a;4:b;" },
	{ "empty fields are fields", ",,\n", "1:||;" },
	{ "a quoted empty field is a record", "\"\"\n", "1:;" },
	{ "a bare CR inside a field is data", "a\rb,c\n", "1:a\rb|c;" },
	{ "UTF-8 passes through",
	  "Kecamatan Sumur Bandung,Cibeunying \xc3\xb6\n",
	  "1:Kecamatan Sumur Bandung|Cibeunying \xc3\xb6;" },
	{ "a quote inside an unquoted field is malformed, the next line read",
	  "a\"b,c\nd,e\n", "1!a quote inside an unquoted field (quote the "
	  "whole field and double the quote);2:d|e;" },
	{ "text after a closing quote is malformed, the next line read",
	  "\"a\"b,c\nd\n", "1!text after a closing quote (a quote inside a "
	  "quoted field is written \"\");2:d;" },
	{ "an unclosed quote is reported with the line it opened on",
	  "a\n\"open,b\nc\n", "1:a;2!the quoted field opened on line 2 is "
	  "never closed;" },
	{ "a quoted field then CRLF", "\"a\"\r\n\"b\"", "1:a;2:b;" },
};

static void
test_reader_cases(void **state)
{
	char out[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]);
	    i++) {
		dump(read_cases[i].in, out, sizeof(out));
		if (strcmp(out, read_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    read_cases[i].name, out, read_cases[i].want);
	}
}

/*
 * A NUL byte would cut a field short ("web\0garbage" read as "web", a
 * citizen_ref sent as another pseudonym): its record is refused, quoted
 * or not, and the reader goes on.
 */
static void
test_reader_refuses_a_nul_byte(void **state)
{
	static const char in[] = "a,web\0garbage\n\"q\0\",b\nok,1\n";
	FILE *f = fmemopen((void *)in, sizeof(in) - 1, "r");
	struct csv_reader *r;
	char err[256];
	uint64_t line;

	(void)state;
	assert_non_null(f);
	r = csv_reader_new(f);
	assert_non_null(r);
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), -1);
	assert_int_equal(line, 1);
	assert_string_equal(err, "a NUL byte in the record");
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), -1);
	assert_int_equal(line, 2);
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
	assert_int_equal(line, 3);
	assert_string_equal(csv_field(r, 0), "ok");
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 0);
	csv_reader_free(r);
	fclose(f);
}

/*
 * kanalctl send's progress bar: a share of SENDFILE_BAR characters, and a
 * file that grew while it was read (more bytes than its size at the
 * start) shows full at 100%, never past the bar's end.
 */
static void
test_progress_bar(void **state)
{
	static const struct {
		uint64_t bytes, size;
		const char *bar;
		unsigned pct;
	} cases[] = {
		{ 0, 100, "........................", 0 },
		{ 50, 100, "############............", 50 },
		{ 100, 100, "########################", 100 },
		{ 400, 100, "########################", 100 },
		{ UINT64_MAX / 2, 3, "########################", 100 },
		{ 7, 0, "........................", 0 },
	};
	char bar[SENDFILE_BAR + 8];
	unsigned pct;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(bar, 'Z', sizeof(bar));
		sendfile_bar(bar, cases[i].bytes, cases[i].size, &pct);
		assert_string_equal(bar, cases[i].bar);
		assert_int_equal(pct, cases[i].pct);
		/* Nothing written past the bar and its NUL. */
		for (size_t j = SENDFILE_BAR + 1; j < sizeof(bar); j++)
			assert_int_equal(bar[j], 'Z');
	}
}

/* A record over 1 MiB is refused, and the reader goes on after it. */
static void
test_reader_refuses_a_huge_record(void **state)
{
	size_t big = 1024 * 1024 + 10;
	char *in = malloc(big + 16), out[512];

	(void)state;
	assert_non_null(in);
	memset(in, 'x', big);
	strcpy(in + big, "\nok\n");
	dump(in, out, sizeof(out));
	assert_string_equal(out, "1!record longer than 1048576 bytes;2:ok;");
	free(in);
}

/* The raw bytes and the byte count follow the input. */
static void
test_reader_raw_and_bytes(void **state)
{
	const char *in = "a,\"b\"\r\nc\n";
	FILE *f = fmemopen((void *)in, strlen(in), "r");
	struct csv_reader *r = csv_reader_new(f);
	char err[64];
	uint64_t line;
	size_t len;
	const char *raw;

	(void)state;
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
	raw = csv_raw(r, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(raw, "a,\"b\"\r\n", 7);
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
	assert_int_equal(csv_bytes_read(r), strlen(in));
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 0);
	csv_reader_free(r);
	fclose(f);
}

/* ------------------------------------------------------------- header */

static int
map_header(const char *header, struct csv_map *m, char *err, size_t len)
{
	FILE *f = fmemopen((void *)header, strlen(header), "r");
	struct csv_reader *r = csv_reader_new(f);
	uint64_t line;
	int rc;

	assert_int_equal(csv_next(r, &line, err, len), 1);
	rc = csv_map_header(r, m, err, len);
	csv_reader_free(r);
	fclose(f);
	return rc;
}

static const struct {
	const char *name, *header, *want;	/* want: error, or NULL */
} header_cases[] = {
	{ "the four required columns", "service_code,channel,occurred_at,"
	  "region_code\n", NULL },
	{ "all columns in another order and case, with spaces",
	  "Citizen_Ref, EVENT_ID ,assisted,duration_ms,Outcome,region_code,"
	  "occurred_at,CHANNEL,service_code\n", NULL },
	{ "an unknown column is named, with the known ones",
	  "service_code,channel,occurred_at,region_code,tanggal\n",
	  "unknown column \"tanggal\"; the columns are service_code, channel, "
	  "occurred_at, region_code (required), outcome, duration_ms, "
	  "assisted, event_id, citizen_ref (map other exports to these "
	  "first, see docs/examples/csv-forward.sh)" },
	{ "a column twice", "service_code,channel,occurred_at,region_code,"
	  "Channel\n", "column \"channel\" is in the header twice" },
	{ "a required column missing", "service_code,channel,occurred_at\n",
	  "the header has no column \"region_code\"; required are "
	  "service_code, channel, occurred_at and region_code" },
	{ "a column without a name", "service_code,,channel\n",
	  "column 2 of the header has no name; the columns are service_code, "
	  "channel, occurred_at, region_code (required), outcome, "
	  "duration_ms, assisted, event_id, citizen_ref" },
};

static void
test_header_cases(void **state)
{
	struct csv_map m;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(header_cases) /
	    sizeof(header_cases[0]); i++) {
		int rc = map_header(header_cases[i].header, &m, err,
		    sizeof(err));
		const char *want = header_cases[i].want;

		if (want == NULL && rc != 0)
			fail_msg("%s: refused: %s", header_cases[i].name, err);
		if (want != NULL && (rc != -1 || strcmp(err, want) != 0))
			fail_msg("%s: got %d \"%s\", want \"%s\"",
			    header_cases[i].name, rc, rc ? err : "", want);
	}
	/* The mixed-order header maps each column to its field. */
	assert_int_equal(map_header(header_cases[1].header, &m, err,
	    sizeof(err)), 0);
	assert_int_equal(m.nfields, 9);
	assert_int_equal(m.field[CSV_CITIZEN_REF], 0);
	assert_int_equal(m.field[CSV_EVENT_ID], 1);
	assert_int_equal(m.field[CSV_CHANNEL], 7);
	assert_int_equal(m.field[CSV_SERVICE_CODE], 8);
}

/* ---------------------------------------------------------------- rows */

#define HDR "service_code,channel,occurred_at,region_code,outcome," \
	"duration_ms,assisted,event_id,citizen_ref\n"
#define GOOD_AT "2026-11-02T09:15:00+07:00"
#define ID32 "00112233445566778899AaBbCcDdEeFf"

/*
 * One row under HDR: want is the event as "service channel at region
 * outcome duration assisted idlen reflen" or the error message.
 */
static const struct {
	const char *name, *row, *want;
} row_cases[] = {
	{ "required columns only, the rest defaults",
	  "dukcapil.akta-lahir,web," GOOD_AT ",32.73.01,,,,,\n",
	  "dukcapil.akta-lahir 1 1793585700000 32.73.01 0 0 0 0 0" },
	{ "every column", "dukcapil.ktp-el,counter," GOOD_AT ",32.73.02,"
	  "completed,120000,yes," ID32 ",pz-1\n",
	  "dukcapil.ktp-el 6 1793585700000 32.73.02 1 120000 1 16 4" },
	{ "values with spaces around are trimmed",
	  " dukcapil.ktp-el , kiosk , " GOOD_AT " , 32.73 , failed , 5 , 1 ,,\n",
	  "dukcapil.ktp-el 3 1793585700000 32.73 3 5 1 0 0" },
	{ "citizen_ref is taken as given, spaces and all",
	  "s,web," GOOD_AT ",32,,,,,\" p s \"\n",
	  "s 1 1793585700000 32 0 0 0 0 5" },
	/* channel */
	{ "channel as an enum name", "s,CHANNEL_MOBILE_APP," GOOD_AT ",32,,,,,\n",
	  "s 2 1793585700000 32 0 0 0 0 0" },
	{ "channel in upper case", "s,PAPER," GOOD_AT ",32,,,,,\n",
	  "s 9 1793585700000 32 0 0 0 0 0" },
	{ "channel enum name in lower case",
	  "s,channel_partner," GOOD_AT ",32,,,,,\n",
	  "s 5 1793585700000 32 0 0 0 0 0" },
	{ "channel unknown", "s,webb," GOOD_AT ",32,,,,,\n",
	  "channel: unknown channel \"webb\"; use web, mobile_app, kiosk, "
	  "chat, partner, counter, phone, outreach or paper" },
	{ "channel unspecified", "s,CHANNEL_UNSPECIFIED," GOOD_AT ",32,,,,,\n",
	  "channel: unknown channel \"CHANNEL_UNSPECIFIED\"; use web, "
	  "mobile_app, kiosk, chat, partner, counter, phone, outreach or "
	  "paper" },
	{ "channel empty", "s,," GOOD_AT ",32,,,,,\n",
	  "channel: empty (required)" },
	/* outcome */
	{ "outcome as an enum name", "s,web," GOOD_AT ",32,OUTCOME_ABANDONED,,,,\n",
	  "s 1 1793585700000 32 2 0 0 0 0" },
	{ "outcome unspecified is unknown",
	  "s,web," GOOD_AT ",32,OUTCOME_UNSPECIFIED,,,,\n",
	  "s 1 1793585700000 32 0 0 0 0 0" },
	{ "outcome unknown by name", "s,web," GOOD_AT ",32,Unknown,,,,\n",
	  "s 1 1793585700000 32 0 0 0 0 0" },
	{ "outcome bad", "s,web," GOOD_AT ",32,done,,,,\n",
	  "outcome: unknown outcome \"done\"; use completed, abandoned, "
	  "failed or unknown" },
	/* occurred_at */
	{ "occurred_at in Z with a fraction",
	  "s,web,2026-11-02t02:15:00.5z,32,,,,,\n",
	  "s 1 1793585700500 32 0 0 0 0 0" },
	{ "occurred_at with a space and microseconds (cut to ms)",
	  "s,web,2026-11-02 09:15:00.123456+07:00,32,,,,,\n",
	  "s 1 1793585700123 32 0 0 0 0 0" },
	{ "occurred_at with a negative offset",
	  "s,web,2026-11-02T09:15:00-05:30,32,,,,,\n",
	  "s 1 1793630700000 32 0 0 0 0 0" },
	{ "occurred_at on a leap day", "s,web,2024-02-29T00:00:00Z,32,,,,,\n",
	  "s 1 1709164800000 32 0 0 0 0 0" },
	{ "occurred_at before 1970", "s,web,1969-12-31T23:59:59Z,32,,,,,\n",
	  "s 1 -1000 32 0 0 0 0 0" },
	{ "occurred_at in unix milliseconds", "s,web,1764300000000,32,,,,,\n",
	  "s 1 1764300000000 32 0 0 0 0 0" },
	{ "occurred_at without an offset",
	  "s,web,2026-11-02T09:15:00,32,,,,,\n",
	  "occurred_at: \"2026-11-02T09:15:00\" has no UTC offset: add Z or "
	  "one like +07:00" },
	{ "occurred_at on a day that does not exist",
	  "s,web,2026-02-29T00:00:00Z,32,,,,,\n",
	  "occurred_at: \"2026-02-29T00:00:00Z\" is not a real date and time" },
	{ "occurred_at in month 13", "s,web,2026-13-01T00:00:00Z,32,,,,,\n",
	  "occurred_at: \"2026-13-01T00:00:00Z\" is not a real date and time" },
	{ "occurred_at at hour 24", "s,web,2026-11-02T24:00:00Z,32,,,,,\n",
	  "occurred_at: \"2026-11-02T24:00:00Z\" is not a real date and time" },
	{ "occurred_at with an offset out of range",
	  "s,web,2026-11-02T09:15:00+24:00,32,,,,,\n",
	  "occurred_at: \"2026-11-02T09:15:00+24:00\": offset out of range" },
	{ "occurred_at with a one-digit offset",
	  "s,web,2026-11-02T09:15:00+7:00,32,,,,,\n",
	  "occurred_at: \"2026-11-02T09:15:00+7:00\" is neither RFC 3339 "
	  "(2026-11-02T09:15:00+07:00) nor unix milliseconds" },
	{ "occurred_at with an empty fraction",
	  "s,web,2026-11-02T09:15:00.Z,32,,,,,\n",
	  "occurred_at: \"2026-11-02T09:15:00.Z\" is neither RFC 3339 "
	  "(2026-11-02T09:15:00+07:00) nor unix milliseconds" },
	{ "occurred_at as a word", "s,web,yesterday,32,,,,,\n",
	  "occurred_at: \"yesterday\" is neither RFC 3339 "
	  "(2026-11-02T09:15:00+07:00) nor unix milliseconds" },
	{ "occurred_at as a date only", "s,web,2026-11-02,32,,,,,\n",
	  "occurred_at: \"2026-11-02\" is neither RFC 3339 "
	  "(2026-11-02T09:15:00+07:00) nor unix milliseconds" },
	{ "occurred_at too many digits", "s,web,1234567890123456,32,,,,,\n",
	  "occurred_at: \"1234567890123456\" is too large for unix "
	  "milliseconds" },
	{ "occurred_at empty", "s,web,,32,,,,,\n",
	  "occurred_at: empty (required)" },
	/* duration_ms */
	{ "duration_ms at its maximum", "s,web," GOOD_AT ",32,,4294967295,,,\n",
	  "s 1 1793585700000 32 0 4294967295 0 0 0" },
	{ "duration_ms over uint32", "s,web," GOOD_AT ",32,,4294967296,,,\n",
	  "duration_ms: \"4294967296\" is not a whole number of milliseconds "
	  "from 0 to 4294967295" },
	{ "duration_ms negative", "s,web," GOOD_AT ",32,,-1,,,\n",
	  "duration_ms: \"-1\" is not a whole number of milliseconds from 0 "
	  "to 4294967295" },
	{ "duration_ms with a fraction", "s,web," GOOD_AT ",32,,1.5,,,\n",
	  "duration_ms: \"1.5\" is not a whole number of milliseconds from 0 "
	  "to 4294967295" },
	{ "duration_ms with a unit", "s,web," GOOD_AT ",32,,12ms,,,\n",
	  "duration_ms: \"12ms\" is not a whole number of milliseconds from 0 "
	  "to 4294967295" },
	/* assisted */
	{ "assisted TRUE", "s,web," GOOD_AT ",32,,,TRUE,,\n",
	  "s 1 1793585700000 32 0 0 1 0 0" },
	{ "assisted 1", "s,web," GOOD_AT ",32,,,1,,\n",
	  "s 1 1793585700000 32 0 0 1 0 0" },
	{ "assisted No", "s,web," GOOD_AT ",32,,,No,,\n",
	  "s 1 1793585700000 32 0 0 0 0 0" },
	{ "assisted false", "s,web," GOOD_AT ",32,,,false,,\n",
	  "s 1 1793585700000 32 0 0 0 0 0" },
	{ "assisted 0", "s,web," GOOD_AT ",32,,,0,,\n",
	  "s 1 1793585700000 32 0 0 0 0 0" },
	{ "assisted y", "s,web," GOOD_AT ",32,,,y,,\n",
	  "assisted: \"y\" is not true, false, 1, 0, yes or no" },
	{ "assisted 2", "s,web," GOOD_AT ",32,,,2,,\n",
	  "assisted: \"2\" is not true, false, 1, 0, yes or no" },
	/* event_id */
	{ "event_id of 31 digits", "s,web," GOOD_AT ",32,,,,"
	  "0011223344556677889900112233445,\n",
	  "event_id: \"0011223344556677889900112233445\" is not 32 hex digits" },
	{ "event_id not hex", "s,web," GOOD_AT ",32,,,,"
	  "0011223344556677889900112233445g,\n",
	  "event_id: \"0011223344556677889900112233445g\" is not 32 hex "
	  "digits" },
	/* encoding */
	{ "UTF-8 text passes", "s,web," GOOD_AT ",\"32 \xc3\xa9\",,,,,\n",
	  "s 1 1793585700000 32 \xc3\xa9 0 0 0 0 0" },
	{ "Latin-1 text is not UTF-8", "s,web," GOOD_AT ",32 \xe9,,,,,\n",
	  "region_code: not UTF-8 (a file in another encoding converts with "
	  "iconv -f WINDOWS-1252 -t UTF-8)" },
	{ "an overlong UTF-8 form is not UTF-8",
	  "s,web," GOOD_AT ",32,\xc0\xaf,,,,\n",
	  "outcome: not UTF-8 (a file in another encoding converts with iconv "
	  "-f WINDOWS-1252 -t UTF-8)" },
	{ "a UTF-8 surrogate is not UTF-8",
	  "\xed\xa0\x80,web," GOOD_AT ",32,,,,,\n",
	  "service_code: not UTF-8 (a file in another encoding converts with "
	  "iconv -f WINDOWS-1252 -t UTF-8)" },
	{ "a cut UTF-8 sequence is not UTF-8",
	  "s\xe2\x82,web," GOOD_AT ",32,,,,,\n",
	  "service_code: not UTF-8 (a file in another encoding converts with "
	  "iconv -f WINDOWS-1252 -t UTF-8)" },
	{ "citizen_ref is bytes, not text", "s,web," GOOD_AT ",32,,,,,\xff\xfe\n",
	  "s 1 1793585700000 32 0 0 0 0 2" },
	/* required strings, field count */
	{ "service_code empty", ",web," GOOD_AT ",32,,,,,\n",
	  "service_code: empty (required)" },
	{ "region_code empty", "s,web," GOOD_AT ",,,,,,\n",
	  "region_code: empty (required)" },
	{ "a field missing", "s,web," GOOD_AT ",32,,,,\n",
	  "8 fields, the header has 9" },
	{ "a field too many", "s,web," GOOD_AT ",32,,,,,,\n",
	  "10 fields, the header has 9" },
};

static void
test_row_cases(void **state)
{
	struct csv_event e;
	struct csv_map m;
	char err[512], got[512], in[1024];

	(void)state;
	memset(&e, 0, sizeof(e));
	for (size_t i = 0; i < sizeof(row_cases) / sizeof(row_cases[0]);
	    i++) {
		FILE *f;
		struct csv_reader *r;
		uint64_t line;

		snprintf(in, sizeof(in), "%s%s", HDR, row_cases[i].row);
		f = fmemopen(in, strlen(in), "r");
		r = csv_reader_new(f);
		assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
		assert_int_equal(csv_map_header(r, &m, err, sizeof(err)), 0);
		assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
		if (csv_row_event(r, &m, &e, err, sizeof(err)) == 0)
			snprintf(got, sizeof(got), "%s %d %" PRId64 " %s %d %"
			    PRIu32 " %d %zu %zu", e.ev.service_code,
			    (int)e.ev.channel, e.ev.occurred_at_ms,
			    e.ev.region_code, (int)e.ev.outcome,
			    e.ev.duration_ms, (int)e.ev.assisted,
			    e.ev.event_id.len, e.ev.citizen_ref.len);
		else
			snprintf(got, sizeof(got), "%s", err);
		if (strcmp(got, row_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    row_cases[i].name, got, row_cases[i].want);
		csv_event_clear(&e);
		csv_reader_free(r);
		fclose(f);
	}
}

/* The event_id bytes and the pseudonym's bytes are what the row says. */
static void
test_row_bytes(void **state)
{
	const char *in = HDR "s,web," GOOD_AT ",32,,,," ID32 ",\" p s \"\n";
	static const uint8_t id[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
	    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	FILE *f = fmemopen((void *)in, strlen(in), "r");
	struct csv_reader *r = csv_reader_new(f);
	struct csv_event e;
	struct csv_map m;
	char err[256];
	uint64_t line;

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
	assert_int_equal(csv_map_header(r, &m, err, sizeof(err)), 0);
	assert_int_equal(csv_next(r, &line, err, sizeof(err)), 1);
	assert_int_equal(line, 2);
	assert_int_equal(csv_row_event(r, &m, &e, err, sizeof(err)), 0);
	assert_int_equal(e.ev.event_id.len, 16);
	assert_memory_equal(e.ev.event_id.data, id, 16);
	assert_int_equal(e.ev.citizen_ref.len, 5);
	assert_memory_equal(e.ev.citizen_ref.data, " p s ", 5);
	csv_event_clear(&e);
	csv_reader_free(r);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_cases),
		cmocka_unit_test(test_reader_refuses_a_huge_record),
		cmocka_unit_test(test_reader_refuses_a_nul_byte),
		cmocka_unit_test(test_progress_bar),
		cmocka_unit_test(test_reader_raw_and_bytes),
		cmocka_unit_test(test_header_cases),
		cmocka_unit_test(test_row_cases),
		cmocka_unit_test(test_row_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
