/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sendfile: see sendfile.h.
 *
 * One batch is built at a time: the events, the line each came from, and
 * a SHA-256 over the input bytes the batch was made from (rejected rows
 * included, so the hash depends on the input alone). A batch is POSTed
 * with client_post, which tries again with the same body, so the same
 * batch_id, on connection errors, 429 and 5xx. kanald answers 400 for a
 * JSON batch with a malformed event as a whole, naming it ("events[3]...");
 * that event's line is then rejected here and the rest sent again under
 * the same batch_id (kanald keeps no memory of a batch it refused).
 *
 * JSON is read with jansson only to check that a line is one object and to
 * read the ack; the line's own text is what is sent, so nothing is
 * reformatted or rounded on the way.
 */
#include "sendfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "client.h"
#include "csv.h"
#include "httpc.h"
#include "validate.h"

#define REASONS_KEPT	10
#define LINE_MAX_BYTES	(1024 * 1024)
#define PROGRESS_MS	100

struct sf {
	const struct sendfile_config *cfg;
	struct httpc *http;
	FILE *in;
	uint64_t size;			/* of the input; 0 when unknown */
	uint64_t bytes;			/* read so far */
	EVP_MD_CTX *md;
	unsigned char header_md[32];	/* hash of the CSV header record */
	int have_header;

	/* The batch being built. */
	size_t n;
	uint64_t *lines;
	struct csv_event *ev;		/* CSV */
	Kanal__V1__ServiceEvent **evp;
	char *json;			/* JSONL: the events' text, ',' between */
	size_t jlen, jcap;
	size_t *joff;			/* where each event's text starts */
	uint64_t nbatch;
	char batch_id[72];

	/* Totals for the summary. */
	uint64_t rows, accepted, rej_local, rej_remote, dup_batches;
	uint64_t batches, first_unsent;
	struct reason {
		uint64_t line;
		char text[320];
	} reasons[REASONS_KEPT];
	int nreasons;
	int64_t drawn_ms;
	int drawn;
};

/* ------------------------------------------------------------ messages */

static void
progress_clear(struct sf *s)
{
	if (s->drawn) {
		fputs("\r\033[K", s->cfg->err);
		s->drawn = 0;
	}
}

void
sendfile_bar(char bar[SENDFILE_BAR + 1], uint64_t bytes, uint64_t size,
    unsigned *pct)
{
	/* The file may have grown since its size was taken. */
	uint64_t done = size == 0 ? 0 : bytes < size ? bytes : size;
	size_t fill = size == 0 ? 0 : (size_t)(done * SENDFILE_BAR / size);

	memset(bar, '#', fill);
	memset(bar + fill, '.', SENDFILE_BAR - fill);
	bar[SENDFILE_BAR] = '\0';
	*pct = size == 0 ? 0 : (unsigned)(done * 100 / size);
}

static void
progress(struct sf *s, int force)
{
	int64_t now;
	char bar[SENDFILE_BAR + 1];
	unsigned pct;

	if (!s->cfg->progress)
		return;
	now = client_now_ms();
	if (!force && now - s->drawn_ms < PROGRESS_MS)
		return;
	s->drawn_ms = now;
	fputs("\r\033[K", s->cfg->err);
	if (s->size > 0) {
		sendfile_bar(bar, s->bytes, s->size, &pct);
		fprintf(s->cfg->err, "[%s] %3u%%  ", bar, pct);
	}
	fprintf(s->cfg->err, "%" PRIu64 " rows, %" PRIu64 " accepted, %"
	    PRIu64 " rejected", s->rows, s->accepted, s->rej_local +
	    s->rej_remote);
	fflush(s->cfg->err);
	s->drawn = 1;
}

/* Keeps the first reasons for the summary: "line N: ...". */
static void reason(struct sf *s, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
reason(struct sf *s, uint64_t line, const char *fmt, ...)
{
	struct reason *r = &s->reasons[s->nreasons];
	va_list ap;
	int n;

	if (s->nreasons >= REASONS_KEPT)
		return;
	r->line = line;
	n = snprintf(r->text, sizeof(r->text), "line %" PRIu64 ": ", line);
	va_start(ap, fmt);
	vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap);
	va_end(ap);
	s->nreasons++;
}

static int
reason_cmp(const void *a, const void *b)
{
	const struct reason *x = a, *y = b;

	return x->line < y->line ? -1 : x->line > y->line;
}

static void
reject_local(struct sf *s, uint64_t line, const char *why)
{
	s->rows++;
	s->rej_local++;
	reason(s, line, "%s", why);
}

/* "batch ID (lines A-B)", or "(line A)", for messages about the batch. */
static const char *
batch_name(struct sf *s, char *buf, size_t len)
{
	if (s->n > 1 && s->lines[s->n - 1] != s->lines[0])
		snprintf(buf, len, "batch %s (lines %" PRIu64 "-%" PRIu64 ")",
		    s->batch_id, s->lines[0], s->lines[s->n - 1]);
	else
		snprintf(buf, len, "batch %s (line %" PRIu64 ")", s->batch_id,
		    s->n > 0 ? s->lines[0] : 0);
	return buf;
}

static void
retry_note(void *arg, int attempt, unsigned wait_ms, const char *why)
{
	struct sf *s = arg;
	char name[128];

	progress_clear(s);
	fprintf(s->cfg->err, "kanalctl send: %s: %s; trying again in %.1f s "
	    "(try %d of %d)\n", batch_name(s, name, sizeof(name)), why,
	    wait_ms / 1000.0, attempt + 1, s->cfg->retries + 1);
}

static void
summary(struct sf *s)
{
	FILE *out = s->cfg->out;
	uint64_t rejected = s->rej_local + s->rej_remote;

	progress_clear(s);
	fprintf(out, "rows: %" PRIu64 "  accepted: %" PRIu64 "  rejected: %"
	    PRIu64 " (%" PRIu64 " here, %" PRIu64 " by kanald)  batches: %"
	    PRIu64, s->rows, s->accepted, rejected, s->rej_local,
	    s->rej_remote, s->batches);
	if (s->dup_batches > 0)
		fprintf(out, " (%" PRIu64 " sent before: counted then, not "
		    "again)", s->dup_batches);
	fputc('\n', out);
	/* Within a batch kanald's answers come after the local ones. */
	qsort(s->reasons, (size_t)s->nreasons, sizeof(s->reasons[0]),
	    reason_cmp);
	for (int i = 0; i < s->nreasons; i++)
		fprintf(out, "  %s\n", s->reasons[i].text);
	if (rejected > (uint64_t)s->nreasons)
		fprintf(out, "  ... %" PRIu64 " more rejected%s\n", rejected -
		    (uint64_t)s->nreasons, s->dup_batches > 0 ? " (kanald "
		    "names no rows for a batch sent before)" : "");
}

/* --------------------------------------------------------------- batch */

static int
batch_begin(struct sf *s)
{
	s->n = 0;
	s->jlen = 0;
	if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		return -1;
	if (s->have_header)
		EVP_DigestUpdate(s->md, s->header_md, sizeof(s->header_md));
	return 0;
}

static void
make_batch_id(struct sf *s)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	s->nbatch++;
	if (s->cfg->prefix != NULL) {
		snprintf(s->batch_id, sizeof(s->batch_id), "%s-%" PRIu64,
		    s->cfg->prefix, s->nbatch);
		return;
	}
	EVP_DigestFinal_ex(s->md, d, &dlen);
	snprintf(s->batch_id, sizeof(s->batch_id), "%02x%02x%02x%02x%02x%02x"
	    "-%" PRIu64, d[0], d[1], d[2], d[3], d[4], d[5], s->nbatch);
}

/* Takes event i out of a JSONL batch (kanald refused it as malformed). */
static void
json_drop(struct sf *s, size_t i)
{
	size_t from = s->joff[i], to;

	/* The text of i and the ',' after it (or before it, if last). */
	if (i + 1 < s->n)
		to = s->joff[i + 1];
	else {
		to = s->jlen;
		if (i > 0)
			from--;
	}
	memmove(s->json + from, s->json + to, s->jlen - to);
	s->jlen -= to - from;
	for (size_t k = i + 1; k < s->n; k++)
		s->joff[k - 1] = s->joff[k] - (to - from);
	memmove(s->lines + i, s->lines + i + 1, (s->n - i - 1) *
	    sizeof(*s->lines));
	s->n--;
}

/* "REJECT_REASON_TOO_OLD" -> "too_old", as the CSV path names them. */
static void
reason_short(const char *code, char *out, size_t len)
{
	size_t i;

	if (strncmp(code, "REJECT_REASON_", 14) == 0)
		code += 14;
	for (i = 0; code[i] != '\0' && i + 1 < len; i++)
		out[i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ?
		    code[i] - 'A' + 'a' : code[i]);
	out[i] = '\0';
}

/* Counts a JSON ack. 0, or -1 when it is not one. */
static int
json_ack(struct sf *s, const char *body, size_t len)
{
	json_t *a, *rj, *x;
	json_error_t je;
	size_t i;
	uint64_t acc, rej;

	a = json_loadb(body, len, 0, &je);
	if (a == NULL || !json_is_object(a) ||
	    !json_is_integer(json_object_get(a, "accepted")) ||
	    !json_is_integer(json_object_get(a, "rejected"))) {
		json_decref(a);
		return -1;
	}
	acc = (uint64_t)json_integer_value(json_object_get(a, "accepted"));
	rej = (uint64_t)json_integer_value(json_object_get(a, "rejected"));
	s->accepted += acc;
	s->rej_remote += rej;
	s->rows += s->n;
	if (json_is_true(json_object_get(a, "duplicate")))
		s->dup_batches++;
	rj = json_object_get(a, "rejections");
	json_array_foreach(rj, i, x) {
		json_int_t idx = json_integer_value(json_object_get(x,
		    "index"));
		const char *code = json_string_value(json_object_get(x,
		    "code"));
		const char *msg = json_string_value(json_object_get(x,
		    "message"));
		char shortc[64];

		if (idx < 0 || (size_t)idx >= s->n)
			continue;
		reason_short(code != NULL ? code : "?", shortc,
		    sizeof(shortc));
		reason(s, s->lines[idx], "%s: %s", shortc, msg != NULL ? msg :
		    "");
	}
	json_decref(a);
	return 0;
}

static void
pb_ack(struct sf *s, const Kanal__V1__BatchAck *a)
{
	s->accepted += a->accepted;
	s->rej_remote += a->rejected;
	s->rows += s->n;
	if (a->duplicate)
		s->dup_batches++;
	for (size_t i = 0; i < a->n_rejections; i++) {
		const Kanal__V1__Rejection *r = a->rejections[i];

		if (r->index < s->n)
			reason(s, s->lines[r->index], "%s: %s",
			    validate_reason_name(r->code), r->message);
	}
}

/*
 * The first line of a 400's body without the "events[3]." that names the
 * event: the line number says which it is.
 */
static void
without_index(const char *body, char *out, size_t len)
{
	size_t n = strcspn(body, "\n");
	const char *p = strstr(body, "events["), *q;

	q = p != NULL && p < body + n ? strchr(p, ']') : NULL;
	if (q == NULL || q >= body + n) {
		snprintf(out, len, "%.*s", (int)n, body);
		return;
	}
	if (q[1] == '.')
		q++;
	snprintf(out, len, "%.*s%.*s", (int)(p - body), body,
	    (int)(body + n - q - 1), q + 1);
}

/* The event index a 400 names ("... events[3] ..."), or -1. */
static long
named_event(const char *body)
{
	const char *p = strstr(body, "events[");
	char *end;
	long i;

	if (p == NULL)
		return -1;
	i = strtol(p + 7, &end, 10);
	return end != p + 7 && *end == ']' ? i : -1;
}

/*
 * Sends the batch and counts the answer. 0, or -1 after printing why the
 * batch was not taken (the caller stops there).
 */
static int
batch_send(struct sf *s)
{
	const struct sendfile_config *cfg = s->cfg;
	struct client_retry rp = { cfg->retries + 1, 0, 500, 30000,
	    retry_note, s };
	struct httpc_response r;
	char err[512], name[128];
	uint8_t *body = NULL;
	size_t len;
	const char *ctype;
	int rc = -1;

	if (s->n == 0)
		return 0;
	make_batch_id(s);
	s->first_unsent = s->lines[0];
	for (;;) {
		free(body);
		body = NULL;
		if (cfg->format == SENDFILE_CSV) {
			Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;

			for (size_t i = 0; i < s->n; i++)
				s->evp[i] = &s->ev[i].ev;
			b.batch_id = s->batch_id;
			b.n_events = s->n;
			b.events = s->evp;
			len = kanal__v1__event_batch__get_packed_size(&b);
			body = malloc(len);
			if (body != NULL)
				kanal__v1__event_batch__pack(&b, body);
			ctype = "application/x-protobuf";
		} else {
			len = (size_t)snprintf(NULL, 0, "{\"batchId\":\"%s\","
			    "\"events\":[]}", s->batch_id) + s->jlen;
			body = malloc(len + 1);
			if (body != NULL)
				snprintf((char *)body, len + 1, "{\"batchId\":"
				    "\"%s\",\"events\":[%.*s]}", s->batch_id,
				    (int)s->jlen, s->json);
			ctype = "application/json";
		}
		if (body == NULL) {
			snprintf(err, sizeof(err), "out of memory");
			goto fail;
		}
		rp.deadline_ms = client_now_ms() + (int64_t)cfg->retry_for_s *
		    1000;
		if (client_post(s->http, cfg->token, ctype, body, len, &rp, &r,
		    err, sizeof(err)) == -1)
			goto fail;
		if (r.status == 400 && cfg->format == SENDFILE_JSONL) {
			long i = named_event(r.body);

			if (i >= 0 && (size_t)i < s->n) {
				without_index(r.body, err, sizeof(err));
				s->rows++;
				s->rej_remote++;
				reason(s, s->lines[i], "%s", err);
				json_drop(s, (size_t)i);
				if (s->n == 0) {
					rc = 0;
					break;
				}
				continue;
			}
		}
		if (r.status != 200) {
			snprintf(err, sizeof(err), "HTTP %d: %.*s%s", r.status,
			    (int)strcspn(r.body, "\n"), r.body, r.status == 413 ||
			    strncmp(r.body, "batch_too_large", 15) == 0 ?
			    " (lower --batch-size)" : "");
			goto fail;
		}
		if (cfg->format == SENDFILE_CSV) {
			Kanal__V1__BatchAck *a = kanal__v1__batch_ack__unpack(
			    NULL, r.len, (const uint8_t *)r.body);
			if (a == NULL) {
				snprintf(err, sizeof(err), "200 with a body that "
				    "is not a BatchAck");
				goto fail;
			}
			pb_ack(s, a);
			kanal__v1__batch_ack__free_unpacked(a, NULL);
		} else if (json_ack(s, r.body, r.len) == -1) {
			snprintf(err, sizeof(err), "200 with a body that is "
			    "not a JSON BatchAck (is kanald older than JSON "
			    "support?)");
			goto fail;
		}
		s->batches++;
		rc = 0;
		break;
	}
	free(body);
	for (size_t i = 0; cfg->format == SENDFILE_CSV && i < s->n; i++)
		csv_event_clear(&s->ev[i]);
	s->first_unsent = 0;
	progress(s, 0);
	return rc;
fail:
	free(body);
	progress_clear(s);
	fprintf(cfg->err, "kanalctl send: %s not taken: %s\n",
	    batch_name(s, name, sizeof(name)), err);
	return -1;
}

/* ----------------------------------------------------------------- CSV */

static int
run_csv(struct sf *s)
{
	struct csv_reader *rd = csv_reader_new(s->in);
	struct csv_map map;
	char err[600];
	const char *raw;
	size_t rawlen;
	uint64_t line;
	int r, rc = 1;

	if (rd == NULL) {
		fprintf(s->cfg->err, "kanalctl send: out of memory\n");
		return 1;
	}
	r = csv_next(rd, &line, err, sizeof(err));
	if (r != 1) {
		if (r == -2)
			fprintf(s->cfg->err, "kanalctl send: %s: %s\n",
			    s->cfg->path, strerror(errno));
		else
			fprintf(s->cfg->err, "kanalctl send: %s: %s\n",
			    s->cfg->path, r == 0 ? "empty: no header line" :
			    err);
		rc = r == -2 ? 1 : 2;
		goto out;
	}
	if (csv_map_header(rd, &map, err, sizeof(err)) == -1) {
		fprintf(s->cfg->err, "kanalctl send: %s: line %" PRIu64 ": "
		    "%s\n", s->cfg->path, line, err);
		rc = 2;
		goto out;
	}
	raw = csv_raw(rd, &rawlen);
	EVP_Digest(raw, rawlen, s->header_md, NULL, EVP_sha256(), NULL);
	s->have_header = 1;
	if (batch_begin(s) == -1)
		goto out;
	for (;;) {
		r = csv_next(rd, &line, err, sizeof(err));
		s->bytes = csv_bytes_read(rd);
		if (r == 0)
			break;
		if (r == -2) {
			fprintf(s->cfg->err, "kanalctl send: %s: %s\n",
			    s->cfg->path, strerror(errno));
			goto out;
		}
		raw = csv_raw(rd, &rawlen);
		EVP_DigestUpdate(s->md, raw, rawlen);
		if (r == -1) {
			reject_local(s, line, err);
		} else if (csv_row_event(rd, &map, &s->ev[s->n], err,
		    sizeof(err)) == -1) {
			reject_local(s, line, err);
		} else {
			s->lines[s->n++] = line;
			if (s->n == s->cfg->batch_size) {
				if (batch_send(s) == -1 || batch_begin(s) == -1)
					goto out;
			}
		}
		progress(s, 0);
	}
	rc = batch_send(s) == -1 ? 1 : 0;
out:
	csv_reader_free(rd);
	return rc;
}

/* --------------------------------------------------------------- JSONL */

static int
json_append(struct sf *s, const char *text, size_t len)
{
	size_t need = s->jlen + len + 1;

	if (need > s->jcap) {
		size_t ncap = s->jcap ? s->jcap : 65536;
		char *nj;

		while (ncap < need)
			ncap *= 2;
		nj = realloc(s->json, ncap);
		if (nj == NULL)
			return -1;
		s->json = nj;
		s->jcap = ncap;
	}
	if (s->n > 0)
		s->json[s->jlen++] = ',';
	s->joff[s->n] = s->jlen;
	memcpy(s->json + s->jlen, text, len);
	s->jlen += len;
	return 0;
}

static int
run_jsonl(struct sf *s)
{
	char *buf = NULL, *p, why[400];
	size_t cap = 0, len;
	ssize_t got;
	uint64_t line = 0;
	json_error_t je;
	json_t *j;
	int rc = 1;

	if (batch_begin(s) == -1)
		goto out;
	while ((got = getline(&buf, &cap, s->in)) != -1) {
		line++;
		s->bytes += (uint64_t)got;
		EVP_DigestUpdate(s->md, buf, (size_t)got);
		p = buf;
		len = (size_t)got;
		if (line == 1 && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;
			len -= 3;
		}
		while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
		    p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		if (len == 0)
			continue;
		if (len > LINE_MAX_BYTES) {
			reject_local(s, line, "longer than 1 MiB");
			continue;
		}
		j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
		if (j == NULL || !json_is_object(j)) {
			if (j == NULL)
				snprintf(why, sizeof(why), "not JSON: %s "
				    "(column %d)", je.text, je.column);
			else
				snprintf(why, sizeof(why), "not a JSON object "
				    "(one ServiceEvent per line)");
			json_decref(j);
			reject_local(s, line, why);
			continue;
		}
		json_decref(j);
		if (json_append(s, p, len) == -1) {
			fprintf(s->cfg->err, "kanalctl send: out of memory\n");
			goto out;
		}
		s->lines[s->n++] = line;
		if (s->n == s->cfg->batch_size) {
			if (batch_send(s) == -1 || batch_begin(s) == -1)
				goto out;
		}
		progress(s, 0);
	}
	if (ferror(s->in)) {
		fprintf(s->cfg->err, "kanalctl send: %s: %s\n", s->cfg->path,
		    strerror(errno));
		goto out;
	}
	rc = batch_send(s) == -1 ? 1 : 0;
out:
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- main */

int
sendfile_run(const struct sendfile_config *cfg)
{
	struct sf s;
	struct stat st;
	char err[256];
	int rc = 1;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	if (strcmp(cfg->path, "-") == 0)
		s.in = stdin;
	else
		s.in = fopen(cfg->path, "r");
	if (s.in == NULL) {
		fprintf(cfg->err, "kanalctl send: %s: %s\n", cfg->path,
		    strerror(errno));
		return 2;
	}
	if (fstat(fileno(s.in), &st) == 0 && S_ISREG(st.st_mode))
		s.size = (uint64_t)st.st_size;
	s.http = httpc_new_ca(cfg->url, cfg->cacert, 30000, err, sizeof(err));
	if (s.http == NULL) {
		fprintf(cfg->err, "kanalctl send: %s\n", err);
		rc = 2;
		goto out;
	}
	s.md = EVP_MD_CTX_new();
	s.lines = calloc(cfg->batch_size, sizeof(*s.lines));
	s.joff = calloc(cfg->batch_size, sizeof(*s.joff));
	s.evp = calloc(cfg->batch_size, sizeof(*s.evp));
	s.ev = calloc(cfg->batch_size, sizeof(*s.ev));
	if (s.md == NULL || s.lines == NULL || s.joff == NULL ||
	    s.evp == NULL || s.ev == NULL) {
		fprintf(cfg->err, "kanalctl send: out of memory\n");
		goto out;
	}
	rc = cfg->format == SENDFILE_CSV ? run_csv(&s) : run_jsonl(&s);
	if (rc == 2)
		goto out;
	progress(&s, 1);
	summary(&s);
	if (rc != 0) {
		if (s.first_unsent != 0)
			fprintf(cfg->err, "kanalctl send: stopped: what is "
			    "above was sent; line %" PRIu64 " and after were "
			    "not (send the file again: batches already "
			    "taken count once)\n", s.first_unsent);
		rc = 1;
	} else if (s.rej_local + s.rej_remote > 0)
		rc = 3;
out:
	if (s.ev != NULL)
		for (size_t i = 0; i < cfg->batch_size; i++)
			csv_event_clear(&s.ev[i]);
	free(s.ev);
	free(s.evp);
	free(s.joff);
	free(s.lines);
	free(s.json);
	EVP_MD_CTX_free(s.md);
	httpc_free(s.http);
	if (s.in != NULL && s.in != stdin)
		fclose(s.in);
	return rc;
}
