/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csv: see csv.h.
 *
 * The reader is a small state machine over getc with its own push-back
 * (stdio promises one ungetc; the byte order mark needs three). A record
 * is held as its fields, each NUL-terminated in one buffer, and as the raw
 * bytes it came from. A record over CSV_RECORD_MAX bytes is refused, so a
 * file without line ends cannot take all memory.
 */
#include "csv.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate.h"

#define CSV_RECORD_MAX	(1024 * 1024)

static const char *const col_names[CSV_NCOLS] = {
	"service_code", "channel", "occurred_at", "region_code", "outcome",
	"duration_ms", "assisted", "event_id", "citizen_ref",
};

const char *
csv_col_name(int col)
{
	return col >= 0 && col < CSV_NCOLS ? col_names[col] : NULL;
}

struct csv_reader {
	FILE *f;
	uint64_t line;		/* line of the next byte read from f */
	uint64_t bytes;
	int pb[4];		/* pushed-back bytes, last in first out */
	int npb;
	int head[3];		/* the first bytes, read to look for a BOM */
	int nhead, headpos;
	char *buf;		/* the fields, each NUL-terminated */
	size_t len, cap;
	size_t *off;		/* where each field starts in buf */
	size_t nf, fcap;
	char *raw;		/* the bytes of the record */
	size_t rlen, rcap;
	int too_long;
	int has_nul;		/* a NUL byte in a field: it would cut it */
};

static int
grow(char **p, size_t *cap, size_t need)
{
	size_t ncap;
	char *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap);
	if (np == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

struct csv_reader *
csv_reader_new(FILE *f)
{
	struct csv_reader *r = calloc(1, sizeof(*r));
	int c[3], n = 0;

	if (r == NULL)
		return NULL;
	r->f = f;
	r->line = 1;
	/* A UTF-8 byte order mark is not part of the first column's name. */
	while (n < 3 && (c[n] = getc(f)) != EOF)
		n++;
	if (n == 3 && c[0] == 0xef && c[1] == 0xbb && c[2] == 0xbf) {
		r->bytes = 3;
		return r;
	}
	memcpy(r->head, c, sizeof(c));
	r->nhead = n;
	return r;
}

void
csv_reader_free(struct csv_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r->off);
	free(r->raw);
	free(r);
}

/*
 * The next byte, or EOF; counted, and kept in raw (up to the limit). A
 * pushed-back byte was counted when it was first read.
 */
static int
get(struct csv_reader *r)
{
	int c;

	if (r->npb > 0)
		return r->pb[--r->npb];
	c = r->headpos < r->nhead ? r->head[r->headpos++] : getc(r->f);
	if (c == EOF)
		return EOF;
	r->bytes++;
	if (c == '\n')
		r->line++;
	if (r->rlen < CSV_RECORD_MAX) {
		if (grow(&r->raw, &r->rcap, r->rlen + 1) == 0)
			r->raw[r->rlen++] = (char)c;
	} else
		r->too_long = 1;
	return c;
}

static void
unget(struct csv_reader *r, int c)
{
	if (c != EOF)
		r->pb[r->npb++] = c;
}

/* Appends a byte to the record's fields (a field's end is a NUL). */
static int
put(struct csv_reader *r, int c)
{
	if (r->len >= CSV_RECORD_MAX) {
		r->too_long = 1;
		return 0;
	}
	if (grow(&r->buf, &r->cap, r->len + 1) == -1)
		return -1;
	r->buf[r->len++] = (char)c;
	return 0;
}

/* A byte of a field's value. */
static int
add(struct csv_reader *r, int c)
{
	if (c == '\0')
		r->has_nul = 1;
	return put(r, c);
}

static int
end_field(struct csv_reader *r)
{
	if (put(r, '\0') == -1)
		return -1;
	r->nf++;
	return 0;
}

static int
start_field(struct csv_reader *r)
{
	if (r->nf + 1 > r->fcap) {
		size_t ncap = r->fcap ? r->fcap * 2 : 16;
		size_t *no = realloc(r->off, ncap * sizeof(*no));
		if (no == NULL)
			return -1;
		r->off = no;
		r->fcap = ncap;
	}
	r->off[r->nf] = r->len;
	return 0;
}

/* Skips to the end of the line after a malformed record. */
static void
skip_line(struct csv_reader *r)
{
	int c;

	do
		c = get(r);
	while (c != EOF && c != '\n');
}

enum { FIELD_START, UNQUOTED, QUOTED, AFTER_QUOTE };

int
csv_next(struct csv_reader *r, uint64_t *line, char *err, size_t errlen)
{
	int state, c, c2, quoted;
	uint64_t qline = 0;

again:
	r->len = r->nf = r->rlen = 0;
	r->too_long = r->has_nul = 0;
	quoted = 0;
	*line = r->line;
	if (start_field(r) == -1)
		goto nomem;
	state = FIELD_START;
	for (;;) {
		c = get(r);
		if (c == EOF && ferror(r->f))
			return -2;
		switch (state) {
		case FIELD_START:
			if (c == '"') {
				state = QUOTED;
				quoted = 1;
				qline = r->line;
				continue;
			}
			if (c == EOF && r->nf == 0 && r->rlen == 0)
				return 0;
			state = UNQUOTED;
			/* FALLTHROUGH */
		case UNQUOTED:
			if (c == ',' || c == '\n' || c == EOF)
				break;
			if (c == '\r') {
				c2 = get(r);
				if (c2 == '\n') {
					c = '\n';
					break;
				}
				unget(r, c2);
			} else if (c == '"') {
				snprintf(err, errlen, "a quote inside an "
				    "unquoted field (quote the whole field and "
				    "double the quote)");
				skip_line(r);
				return -1;
			}
			if (add(r, c) == -1)
				goto nomem;
			continue;
		case QUOTED:
			if (c == EOF) {
				snprintf(err, errlen, "the quoted field opened "
				    "on line %llu is never closed",
				    (unsigned long long)qline);
				return -1;
			}
			if (c == '"') {
				c2 = get(r);
				if (c2 != '"') {
					unget(r, c2);
					state = AFTER_QUOTE;
					continue;
				}
			}
			if (add(r, c) == -1)
				goto nomem;
			continue;
		case AFTER_QUOTE:
			if (c == '\r') {
				c2 = get(r);
				if (c2 == '\n')
					c = '\n';
				else
					unget(r, c2);
			}
			if (c == ',' || c == '\n' || c == EOF)
				break;
			snprintf(err, errlen, "text after a closing quote "
			    "(a quote inside a quoted field is written \"\")");
			if (c != '\n')
				skip_line(r);
			return -1;
		}
		/* c ends the field: ',', '\n' or EOF. */
		if (end_field(r) == -1)
			goto nomem;
		if (c == ',') {
			if (start_field(r) == -1)
				goto nomem;
			state = FIELD_START;
			continue;
		}
		break;
	}
	if (r->too_long) {
		snprintf(err, errlen, "record longer than %d bytes",
		    CSV_RECORD_MAX);
		return -1;
	}
	if (r->has_nul) {
		/* Fields are C strings: "web\0x" would pass as "web". */
		snprintf(err, errlen, "a NUL byte in the record");
		return -1;
	}
	/* An empty line is no record. */
	if (r->nf == 1 && r->buf[0] == '\0' && !quoted) {
		if (c == EOF)
			return 0;
		goto again;
	}
	return 1;
nomem:
	snprintf(err, errlen, "out of memory");
	skip_line(r);
	return -1;
}

size_t
csv_nfields(const struct csv_reader *r)
{
	return r->nf;
}

const char *
csv_field(const struct csv_reader *r, size_t i)
{
	return i < r->nf ? r->buf + r->off[i] : "";
}

size_t
csv_field_len(const struct csv_reader *r, size_t i)
{
	return strlen(csv_field(r, i));
}

const char *
csv_raw(const struct csv_reader *r, size_t *len)
{
	*len = r->rlen;
	return r->raw != NULL ? r->raw : "";
}

uint64_t
csv_bytes_read(const struct csv_reader *r)
{
	return r->bytes;
}

/* ------------------------------------------------------------- header */

/* s without leading and trailing spaces and tabs, into out. */
static void
trim(const char *s, char *out, size_t outlen)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	snprintf(out, outlen, "%.*s", (int)n, s);
}

static void
known_columns(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < CSV_NCOLS && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s%s",
		    i == 0 ? "" : ", ", col_names[i],
		    i == CSV_NREQUIRED - 1 ? " (required)" : "");
}

int
csv_map_header(const struct csv_reader *r, struct csv_map *m, char *err,
    size_t errlen)
{
	char name[128], known[256];
	int col;

	for (int i = 0; i < CSV_NCOLS; i++)
		m->field[i] = -1;
	m->nfields = r->nf;
	known_columns(known, sizeof(known));
	for (size_t f = 0; f < r->nf; f++) {
		trim(csv_field(r, f), name, sizeof(name));
		if (name[0] == '\0') {
			snprintf(err, errlen, "column %zu of the header has no "
			    "name; the columns are %s", f + 1, known);
			return -1;
		}
		for (col = 0; col < CSV_NCOLS; col++)
			if (strcasecmp(name, col_names[col]) == 0)
				break;
		if (col == CSV_NCOLS) {
			snprintf(err, errlen, "unknown column \"%.64s\"; the "
			    "columns are %s (map other exports to these "
			    "first, see docs/examples/csv-forward.sh)", name,
			    known);
			return -1;
		}
		if (m->field[col] != -1) {
			snprintf(err, errlen, "column \"%.64s\" is in the header "
			    "twice", col_names[col]);
			return -1;
		}
		m->field[col] = (int)f;
	}
	for (col = 0; col < CSV_NREQUIRED; col++)
		if (m->field[col] == -1) {
			snprintf(err, errlen, "the header has no column "
			    "\"%.64s\"; required are service_code, channel, "
			    "occurred_at and region_code", col_names[col]);
			return -1;
		}
	return 0;
}

/* -------------------------------------------------------------- values */

/* n digits at s as a number; -1 if one is not a digit. */
static int
num(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

int
csv_parse_time(const char *s, int64_t *ms, char *err, size_t errlen)
{
	int y, mo, d, h, mi, sec, oh, om, frac = 0, fdigits = 0, sign;
	size_t n = strspn(s, "0123456789");
	const char *p;

	if (s[0] == '\0') {
		snprintf(err, errlen, "empty (required)");
		return -1;
	}
	if (s[n] == '\0') {
		/* Unix milliseconds: up to the year 9999. */
		if (n > 15) {
			snprintf(err, errlen, "\"%.64s\" is too large for unix "
			    "milliseconds", s);
			return -1;
		}
		*ms = strtoll(s, NULL, 10);
		return 0;
	}
	if (n != 4 || strlen(s) < 19)
		goto syntax;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (n != 4 || s[4] != '-' || mo < 0 || s[7] != '-' || d < 0 ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
		goto syntax;
	h = num(s + 11, 2);
	mi = num(s + 14, 2);
	sec = num(s + 17, 2);
	if (h < 0 || s[13] != ':' || mi < 0 || s[16] != ':' || sec < 0)
		goto syntax;
	p = s + 19;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (fdigits < 3)
				frac = frac * 10 + (*p - '0');
			fdigits++;
			p++;
		}
		if (fdigits == 0)
			goto syntax;
		for (int i = fdigits; i < 3; i++)
			frac *= 10;
	}
	if (*p == '\0') {
		snprintf(err, errlen, "\"%.64s\" has no UTC offset: add Z or "
		    "one like +07:00", s);
		return -1;
	}
	if (*p == 'Z' || *p == 'z') {
		sign = 0;
		oh = om = 0;
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (strlen(p) != 6)
			goto syntax;
		oh = num(p + 1, 2);
		om = num(p + 4, 2);
		if (oh < 0 || p[3] != ':' || om < 0)
			goto syntax;
		if (oh > 23 || om > 59) {
			snprintf(err, errlen, "\"%.64s\": offset out of range", s);
			return -1;
		}
		p += 6;
	} else
		goto syntax;
	if (*p != '\0')
		goto syntax;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59) {
		snprintf(err, errlen, "\"%.64s\" is not a real date and time", s);
		return -1;
	}
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	*ms -= (int64_t)sign * (oh * 3600 + om * 60);
	*ms = *ms * 1000 + frac;
	return 0;
syntax:
	snprintf(err, errlen, "\"%.64s\" is neither RFC 3339 "
	    "(2026-11-02T09:15:00+07:00) nor unix milliseconds", s);
	return -1;
}

/* The name after an optional PREFIX_, any case, against the stored names. */
static int
enum_parse(const char *s, const char *prefix, int lo, int hi,
    const char *(*name)(int))
{
	size_t plen = strlen(prefix);
	int prefixed = strncasecmp(s, prefix, plen) == 0;

	if (prefixed) {
		s += plen;
		/* OUTCOME_UNSPECIFIED is stored as "unknown". */
		if (lo == 0 && strcasecmp(s, "unspecified") == 0)
			return 0;
	}
	for (int i = lo; i <= hi; i++)
		if (strcasecmp(s, name(i)) == 0 && !(prefixed && i == 0))
			return i;
	return -1;
}

int
csv_parse_channel(const char *s, int *channel, char *err, size_t errlen)
{
	if (s[0] == '\0') {
		snprintf(err, errlen, "empty (required)");
		return -1;
	}
	*channel = enum_parse(s, "CHANNEL_", 1, VALIDATE_CHANNEL_MAX,
	    validate_channel_name);
	if (*channel == -1) {
		snprintf(err, errlen, "unknown channel \"%.64s\"; use web, "
		    "mobile_app, kiosk, chat, partner, counter, phone, "
		    "outreach or paper", s);
		return -1;
	}
	return 0;
}

int
csv_parse_outcome(const char *s, int *outcome, char *err, size_t errlen)
{
	if (s[0] == '\0') {
		*outcome = 0;
		return 0;
	}
	*outcome = enum_parse(s, "OUTCOME_", 0, VALIDATE_OUTCOME_MAX,
	    validate_outcome_name);
	if (*outcome == -1) {
		snprintf(err, errlen, "unknown outcome \"%.64s\"; use completed, "
		    "abandoned, failed or unknown", s);
		return -1;
	}
	return 0;
}

int
csv_parse_bool(const char *s, int *v, char *err, size_t errlen)
{
	static const char *const yes[] = { "true", "1", "yes" };
	static const char *const no[] = { "false", "0", "no", "" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*v = 1;
			return 0;
		}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*v = 0;
			return 0;
		}
	snprintf(err, errlen, "\"%.64s\" is not true, false, 1, 0, yes or no", s);
	return -1;
}

int
csv_parse_duration(const char *s, uint32_t *v, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	unsigned long long x;

	if (s[0] == '\0') {
		*v = 0;
		return 0;
	}
	errno = 0;
	x = strtoull(s, NULL, 10);
	if (s[n] != '\0' || n > 10 || errno != 0 || x > UINT32_MAX) {
		snprintf(err, errlen, "\"%.64s\" is not a whole number of "
		    "milliseconds from 0 to 4294967295", s);
		return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

/* The value of hex digit c (either case), or -1. */
static int
hexval(int c)
{
	static const char digits[] = "0123456789abcdef";
	const char *p;

	if (c >= 'A' && c <= 'F')
		c += 'a' - 'A';
	p = c != '\0' ? strchr(digits, c) : NULL;
	return p != NULL ? (int)(p - digits) : -1;
}

int
csv_parse_event_id(const char *s, uint8_t id[16], char *err, size_t errlen)
{
	if (strlen(s) != 32)
		goto bad;
	for (int i = 0; i < 16; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi == -1 || lo == -1)
			goto bad;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
bad:
	snprintf(err, errlen, "\"%.64s\" is not 32 hex digits", s);
	return -1;
}

/* ---------------------------------------------------------------- rows */

/* 1 if s is well-formed UTF-8 (no overlong forms, surrogates or > U+10FFFF). */
static int
utf8_valid(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned c = *s++, n, min, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			min = 0x80;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			min = 0x800;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			min = 0x10000;
			cp = c & 0x07;
		} else
			return 0;
		for (unsigned i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*s & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

void
csv_event_clear(struct csv_event *e)
{
	free(e->service_code);
	free(e->region_code);
	free(e->citizen_ref);
	memset(e, 0, sizeof(*e));
	kanal__v1__service_event__init(&e->ev);
}

int
csv_row_event(const struct csv_reader *r, const struct csv_map *m,
    struct csv_event *e, char *err, size_t errlen)
{
	char v[CSV_NCOLS][256], why[400];
	const char *ref;
	int col, ch, oc, as;
	uint32_t dur;
	int64_t at;

	csv_event_clear(e);
	if (r->nf != m->nfields) {
		snprintf(err, errlen, "%zu field%s, the header has %zu",
		    r->nf, r->nf == 1 ? "" : "s", m->nfields);
		return -1;
	}
	for (col = 0; col < CSV_NCOLS; col++) {
		v[col][0] = '\0';
		if (m->field[col] == -1)
			continue;
		if (csv_field_len(r, (size_t)m->field[col]) >= sizeof(v[0])) {
			snprintf(why, sizeof(why), "longer than %zu bytes",
			    sizeof(v[0]) - 1);
			goto bad;
		}
		trim(csv_field(r, (size_t)m->field[col]), v[col],
		    sizeof(v[col]));
		/* The pseudonym is bytes; everything else is text. */
		if (col != CSV_CITIZEN_REF &&
		    !utf8_valid((const unsigned char *)v[col])) {
			snprintf(why, sizeof(why), "not UTF-8 (a file in "
			    "another encoding converts with iconv -f "
			    "WINDOWS-1252 -t UTF-8)");
			goto bad;
		}
	}
	col = CSV_SERVICE_CODE;
	if (v[col][0] == '\0') {
		snprintf(why, sizeof(why), "empty (required)");
		goto bad;
	}
	col = CSV_CHANNEL;
	if (csv_parse_channel(v[col], &ch, why, sizeof(why)) == -1)
		goto bad;
	col = CSV_OCCURRED_AT;
	if (csv_parse_time(v[col], &at, why, sizeof(why)) == -1)
		goto bad;
	col = CSV_REGION_CODE;
	if (v[col][0] == '\0') {
		snprintf(why, sizeof(why), "empty (required)");
		goto bad;
	}
	col = CSV_OUTCOME;
	if (csv_parse_outcome(v[col], &oc, why, sizeof(why)) == -1)
		goto bad;
	col = CSV_DURATION_MS;
	if (csv_parse_duration(v[col], &dur, why, sizeof(why)) == -1)
		goto bad;
	col = CSV_ASSISTED;
	if (csv_parse_bool(v[col], &as, why, sizeof(why)) == -1)
		goto bad;
	col = CSV_EVENT_ID;
	if (v[col][0] != '\0') {
		if (csv_parse_event_id(v[col], e->id, why, sizeof(why)) == -1)
			goto bad;
		e->ev.event_id.data = e->id;
		e->ev.event_id.len = 16;
	}
	e->service_code = strdup(v[CSV_SERVICE_CODE]);
	e->region_code = strdup(v[CSV_REGION_CODE]);
	if (e->service_code == NULL || e->region_code == NULL)
		goto nomem;
	/* The pseudonym is bytes: taken as given, spaces and all. */
	ref = m->field[CSV_CITIZEN_REF] == -1 ? "" :
	    csv_field(r, (size_t)m->field[CSV_CITIZEN_REF]);
	if (ref[0] != '\0') {
		e->citizen_ref = (uint8_t *)strdup(ref);
		if (e->citizen_ref == NULL)
			goto nomem;
		e->ev.citizen_ref.data = e->citizen_ref;
		e->ev.citizen_ref.len = strlen(ref);
	}
	e->ev.service_code = e->service_code;
	e->ev.region_code = e->region_code;
	e->ev.channel = (Kanal__V1__Channel)ch;
	e->ev.outcome = (Kanal__V1__Outcome)oc;
	e->ev.occurred_at_ms = at;
	e->ev.duration_ms = dur;
	e->ev.assisted = as;
	return 0;
bad:
	snprintf(err, errlen, "%s: %s", col_names[col], why);
	csv_event_clear(e);
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	csv_event_clear(e);
	return -1;
}
