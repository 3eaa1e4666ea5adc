/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csv: reads RFC 4180 CSV for `kanalctl send --csv` and turns its rows into
 * ServiceEvents.
 *
 * The reader takes records from a FILE (quoted fields, "" escapes, LF or
 * CRLF line ends, a quoted field may span lines, an optional UTF-8 byte
 * order mark at the start), and reports each record with the physical line
 * it starts on, so every message can say "line N". A malformed record (an
 * unterminated quote, text after a closing quote, a quote inside an
 * unquoted field) is reported and skipped up to the end of its line; the
 * reader then goes on with the next one. Empty lines are skipped.
 *
 * The first record is the header: column names in any order, matched
 * case-insensitively. The value parsers are pure and exposed for tests.
 */
#ifndef KANAL_CSV_H
#define KANAL_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kanal/v1/events.pb-c.h"

/* The columns, in the order --help lists them; the first four required. */
enum csv_col {
	CSV_SERVICE_CODE,
	CSV_CHANNEL,
	CSV_OCCURRED_AT,
	CSV_REGION_CODE,
	CSV_OUTCOME,
	CSV_DURATION_MS,
	CSV_ASSISTED,
	CSV_EVENT_ID,
	CSV_CITIZEN_REF,
	CSV_NCOLS
};
#define CSV_NREQUIRED 4

/* "service_code", ...; NULL out of range. */
const char *csv_col_name(int col);

struct csv_reader;

/* Reads from f (still owned by the caller). NULL when out of memory. */
struct csv_reader *csv_reader_new(FILE *f);
/* csv_reader_free(NULL) is a no-op. */
void csv_reader_free(struct csv_reader *r);

/*
 * Reads the next record. Returns 1 with a record, 0 at the end of the
 * input, -1 for a malformed record (message in err, without the line
 * number; the record is skipped) and -2 on a read error (errno set).
 * *line gets the line the record starts on in every case but 0 and -2.
 */
int csv_next(struct csv_reader *r, uint64_t *line, char *err,
    size_t errlen);
size_t csv_nfields(const struct csv_reader *r);
/* Field i of the last record, NUL-terminated; valid until csv_next. */
const char *csv_field(const struct csv_reader *r, size_t i);
size_t csv_field_len(const struct csv_reader *r, size_t i);
/* The bytes the last record was read from (for the batch hash). */
const char *csv_raw(const struct csv_reader *r, size_t *len);
/* Bytes consumed from the input so far (for the progress bar). */
uint64_t csv_bytes_read(const struct csv_reader *r);

/* Which field holds each column; -1 when the column is absent. */
struct csv_map {
	int field[CSV_NCOLS];
	size_t nfields;
};

/*
 * Maps the header record's names. -1 with err set for an unknown name
 * (naming it and listing the known ones), a name given twice, an empty
 * name, or a required column missing.
 */
int csv_map_header(const struct csv_reader *r, struct csv_map *m,
    char *err, size_t errlen);

/* A ServiceEvent and the storage it points to. */
struct csv_event {
	Kanal__V1__ServiceEvent ev;
	uint8_t id[16];
	char *service_code;
	char *region_code;
	uint8_t *citizen_ref;
};

/*
 * Turns the last record into e (which it first clears). -1 with
 * "column: what is wrong" in err for a bad value (text that is not UTF-8
 * included; citizen_ref is bytes) or a record whose field count differs
 * from the header's; e is then cleared.
 */
int csv_row_event(const struct csv_reader *r, const struct csv_map *m,
    struct csv_event *e, char *err, size_t errlen);
/* Frees what e owns and leaves it empty. */
void csv_event_clear(struct csv_event *e);

/*
 * Value parsers: 0, or -1 with what is wrong in err. Surrounding spaces
 * and tabs are the caller's to strip.
 * time: RFC 3339 with an offset (Z or +07:00), an optional fraction
 * (milliseconds kept, the rest cut), 'T', 't' or a space between date and
 * time; or unix milliseconds (digits only).
 */
int csv_parse_time(const char *s, int64_t *ms, char *err, size_t errlen);
/* web .. paper, or CHANNEL_WEB ..; any case. */
int csv_parse_channel(const char *s, int *channel, char *err, size_t errlen);
/* completed, abandoned, failed, unknown, or OUTCOME_...; any case. */
int csv_parse_outcome(const char *s, int *outcome, char *err, size_t errlen);
/* true/false/1/0/yes/no, any case; empty is false. */
int csv_parse_bool(const char *s, int *v, char *err, size_t errlen);
/* 0 .. 4294967295; empty is 0. */
int csv_parse_duration(const char *s, uint32_t *v, char *err, size_t errlen);
/* 32 hex digits. */
int csv_parse_event_id(const char *s, uint8_t id[16], char *err,
    size_t errlen);

#endif
