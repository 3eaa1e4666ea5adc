/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile input end to end: one real kanald (log level debug, a 2 s
 * timeout, small body and header limits) over loopback, attacked with
 * fuzzed and truncated protobuf bodies, bodies and headers over the
 * limits, ambiguous framing (the request-smuggling family), pipelining,
 * wrong methods and paths, guessed tokens, raw NIKs as citizen_ref and a
 * few hundred slow sockets. Raw sockets where httpc can't say the attack.
 *
 * After each attack a well-behaved client on one keep-alive connection
 * must still be served; every batch kanald acknowledged must end up
 * counted in PostgreSQL exactly; and kanald's log must hold no token, no
 * digest and no citizen_ref. The tests run in order on the one kanald;
 * the last one checks the totals and the log.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"
#include "httpc.h"
#include "kanal/v1/events.pb-c.h"
#include "rng.h"
#include "validate.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_BODY	65536	/* --max-body-size 64KiB */
#define MAX_EVENTS	100	/* --max-batch-events */
#define SLOW_CLIENTS	300
#define GUESSES		100
#define FUZZ_BODIES	400

static struct th_fixture *f;
static struct httpc *good;	/* the well-behaved client, keep-alive */
static int64_t accepted_total;	/* events kanald acknowledged as accepted */
static unsigned batch_seq;
static char guessed[GUESSES][65];
static char digest[65];		/* the fixture's token's, from its file */
static char other_token[65];	/* a second source, "other": bapenda.* */

/* What a secret-free log must not hold besides tokens and the digest. */
static const char *const citizen_refs[] = {
	"3273014506900001",		/* a raw NIK: rejected */
	"ps-7f3a9c1e2b5d",		/* a pseudonym: accepted */
	"32730145069000012",		/* 17 digits: no NIK, accepted */
};

/* ------------------------------------------------------------ helpers */

static void
fill_event(Kanal__V1__ServiceEvent *ev, const char *service)
{
	kanal__v1__service_event__init(ev);
	ev->service_code = (char *)service;
	ev->channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
	ev->region_code = (char *)"32.73.01";
	ev->outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
	ev->occurred_at_ms = client_now_ms();
	ev->duration_ms = 1000;
}

/* Packs a batch of n good events (n <= 8) into out; returns its length. */
static size_t
make_batch(const char *batch_id, size_t n, uint8_t *out, size_t cap)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[8], *evp[8];
	size_t len;

	assert_true(n <= NELEM(ev));
	for (size_t i = 0; i < n; i++) {
		fill_event(&ev[i], "dukcapil.ktp-el");
		evp[i] = &ev[i];
	}
	b.batch_id = (char *)batch_id;
	b.n_events = n;
	b.events = evp;
	len = kanal__v1__event_batch__get_packed_size(&b);
	assert_true(len <= cap);
	return kanal__v1__event_batch__pack(&b, out);
}

/*
 * POSTs body with token (NULL: the fixture's) on the well-behaved
 * client's connection. Returns the status; on 200 the decoded ack in
 * *ack (free it), else the reason line in text.
 */
static int
post(const char *token, const void *body, size_t len,
    Kanal__V1__BatchAck **ack, char *text, size_t textlen)
{
	struct httpc_response r;
	char hdr[256], err[256];

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n",
	    token != NULL ? token : f->token);
	if (httpc_request(good, "POST", "/v1/events", hdr, body, len, &r, err,
	    sizeof(err)) == -1)
		fail_msg("the well-behaved client got no answer: %s", err);
	if (ack != NULL)
		*ack = NULL;
	if (text != NULL)
		snprintf(text, textlen, "%.*s", (int)r.len, r.body);
	if (r.status == 200 && ack != NULL) {
		*ack = kanal__v1__batch_ack__unpack(NULL, r.len,
		    (const uint8_t *)r.body);
		if (*ack == NULL)
			fail_msg("a 200 whose body is not a BatchAck");
	}
	return r.status;
}

/* The well-behaved client is still served: a batch and /healthz. */
static void
assert_still_served(void)
{
	Kanal__V1__BatchAck *ack;
	struct httpc_response r;
	uint8_t body[1024];
	char bid[64], err[256];
	size_t len;

	snprintf(bid, sizeof(bid), "good-%u", ++batch_seq);
	len = make_batch(bid, 2, body, sizeof(body));
	assert_int_equal(post(NULL, body, len, &ack, NULL, 0), 200);
	assert_int_equal(ack->accepted, 2);
	assert_false(ack->duplicate);
	accepted_total += ack->accepted;
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	if (httpc_request(good, "GET", "/healthz", NULL, NULL, 0, &r, err,
	    sizeof(err)) == -1)
		fail_msg("/healthz: %s", err);
	assert_int_equal(r.status, 200);
}

/* Sum of kanal_batches_total over its results: requests ingest saw. */
static int64_t
batches_seen(void)
{
	struct httpc_response r;
	char err[256];
	int64_t n = 0;
	const char *p;

	if (httpc_request(good, "GET", "/metrics", NULL, NULL, 0, &r, err,
	    sizeof(err)) == -1 || r.status != 200)
		fail_msg("/metrics: %s", err);
	for (p = strstr(r.body, "\nkanal_batches_total{"); p != NULL;
	    p = strstr(p + 1, "\nkanal_batches_total{")) {
		const char *v = strchr(p, '}');
		if (v != NULL)
			n += strtoll(v + 1, NULL, 10);
	}
	return n;
}

/* ------------------------------------------------- raw HTTP connections */

struct raw {
	int fd;
	size_t have;
	char buf[1 << 17];
};

struct raw_resp {
	int status;
	char head[2048];
	char body[512];
};

static void
raw_open(struct raw *c)
{
	struct sockaddr_in sa;
	struct timeval tv = { 5, 0 };

	c->have = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd == -1)
		fail_msg("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)f->k.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fail_msg("connect: %s", strerror(errno));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Sends all of it; kanald may close early, so errors are not fatal. */
static void
raw_send(struct raw *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

/* Reads more into the buffer: >0 bytes, 0 EOF, -1 error or timeout. */
static ssize_t
raw_fill(struct raw *c)
{
	ssize_t r;

	if (c->have == sizeof(c->buf) - 1)
		fail_msg("an answer too long for the test's buffer");
	do
		r = recv(c->fd, c->buf + c->have, sizeof(c->buf) - 1 -
		    c->have, 0);
	while (r == -1 && errno == EINTR);
	if (r > 0) {
		c->have += (size_t)r;
		c->buf[c->have] = '\0';
	}
	return r;
}

/*
 * The next whole response on c (Content-Length framed, as evhttp sends
 * them). Returns 0, or -1 when the connection ended (or 5 s passed)
 * before one was there.
 */
static int
raw_response(struct raw *c, struct raw_resp *r)
{
	const char *end, *cl;
	size_t head, blen, want;

	for (;;) {
		c->buf[c->have] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (end != NULL) {
			head = (size_t)(end + 4 - c->buf);
			cl = strcasestr(c->buf, "\r\nContent-Length:");
			blen = cl != NULL && cl < end ? strtoul(cl + 17, NULL,
			    10) : 0;
			want = head + blen;
			if (c->have >= want)
				break;
		}
		if (raw_fill(c) <= 0)
			return -1;
	}
	if (sscanf(c->buf, "HTTP/1.%*d %d", &r->status) != 1)
		fail_msg("not an HTTP answer: %.60s", c->buf);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)head, c->buf);
	snprintf(r->body, sizeof(r->body), "%.*s", (int)blen, c->buf + head);
	memmove(c->buf, c->buf + want, c->have - want);
	c->have -= want;
	return 0;
}

/* kanald closes c (EOF or reset) with nothing more to say, within 5 s. */
static void
assert_closed_silently(struct raw *c, const char *what)
{
	ssize_t r;

	if (c->have > 0)
		fail_msg("%s: more after the answer: %.80s", what, c->buf);
	r = raw_fill(c);
	if (r > 0)
		fail_msg("%s: more after the answer: %.80s", what, c->buf);
	if (r == -1 && errno != ECONNRESET)
		fail_msg("%s: kanald kept the connection open: %s", what,
		    strerror(errno));
}

static void
raw_close(struct raw *c)
{
	close(c->fd);
	c->fd = -1;
}

static const char *
header_value(const struct raw_resp *r, const char *name, char *out,
    size_t len)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\r\n%s:", name);
	p = strcasestr(r->head, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	while (*p == ' ')
		p++;
	snprintf(out, len, "%.*s", (int)strcspn(p, "\r\n"), p);
	return out;
}

/* -------------------------------------------------------------- setup */

static int
group_setup(void **state)
{
	char err[256], line[512];
	FILE *fp;
	const char *p;

	(void)state;
	f = th_fixture_new("hostile", "dukcapil.*");
	/* The digest is the only other secret-like thing kanald holds. */
	fp = fopen(f->sources, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	p = strstr(line, "sha256:");
	assert_non_null(p);
	snprintf(digest, sizeof(digest), "%.64s", p + 7);
	/* A second source in the same file. */
	{
		char path[600];
		FILE *in, *out;

		th_make_source(f->dir, "other", "bapenda.*", other_token, path,
		    sizeof(path));
		in = fopen(path, "r");
		out = fopen(f->sources, "a");
		assert_non_null(in);
		assert_non_null(out);
		assert_non_null(fgets(line, sizeof(line), in));
		fputs(line, out);
		fclose(in);
		fclose(out);
	}
	th_kanald_start(&f->k, f->db, f->sources, (const char *const[]){
	    "--log-level", "debug", "--timeout", "2s",
	    "--max-body-size", "64KiB", "--max-header-size", "4KiB",
	    "--max-batch-events", "100", "--flush-interval", "100ms", NULL });
	good = httpc_new(f->k.url, 10000, err, sizeof(err));
	if (good == NULL)
		fail_msg("httpc: %s", err);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	httpc_free(good);
	th_fixture_free(f);
	return 0;
}

/* -------------------------------------------------------------- tests */

/*
 * Random bytes and valid batches with a few bytes changed (seeded): what
 * protobuf-c can't decode is 400 body_undecodable; what decodes gets the
 * answer its content calls for, and each event is accepted or rejected.
 */
static void
test_fuzzed_bodies_get_a_specific_answer(void **state)
{
	uint64_t seed = 0x6b616e616cULL;
	uint8_t valid[1024], body[1024];
	char text[512];
	size_t vlen;
	int undecodable = 0, answered200 = 0;

	(void)state;
	for (int i = 0; i < FUZZ_BODIES; i++) {
		Kanal__V1__EventBatch *b;
		Kanal__V1__BatchAck *ack;
		char bid[32];
		size_t len;
		int st, want;
		const char *reason = NULL;

		if (i % 4 == 0) {
			len = 1 + rng_next(&seed) % 300;
			for (size_t j = 0; j < len; j++)
				body[j] = (uint8_t)rng_next(&seed);
		} else {
			snprintf(bid, sizeof(bid), "fuzz-%04d", i);
			vlen = make_batch(bid, 3, valid, sizeof(valid));
			memcpy(body, valid, vlen);
			len = vlen;
			for (int m = 1 + (int)(rng_next(&seed) % 4); m > 0; m--)
				body[rng_next(&seed) % len] =
				    (uint8_t)rng_next(&seed);
		}
		/* What the same library makes of it decides the answer. */
		b = kanal__v1__event_batch__unpack(NULL, len, body);
		if (b == NULL) {
			want = 400;
			reason = "body_undecodable";
		} else if (b->batch_id == NULL || !validate_batch_id(b->batch_id,
		    strlen(b->batch_id))) {
			want = 400;
			reason = "batch_id_invalid";
		} else if (b->n_events > MAX_EVENTS) {
			want = 400;
			reason = "batch_too_large";
		} else {
			want = 200;	/* or 403 when no service is allowed */
		}
		st = post(NULL, body, len, &ack, text, sizeof(text));
		if (want == 200 && st == 403 &&
		    strncmp(text, "service_not_allowed", 19) == 0)
			;
		else if (st != want || (reason != NULL &&
		    strncmp(text, reason, strlen(reason)) != 0))
			fail_msg("fuzzed body %d (%zu bytes): got %d \"%.60s\", "
			    "want %d %s", i, len, st, text, want,
			    reason != NULL ? reason : "");
		if (st == 200) {
			answered200++;
			if (ack->accepted + ack->rejected != b->n_events &&
			    !ack->duplicate)
				fail_msg("fuzzed body %d: %u accepted + %u "
				    "rejected of %zu events", i, ack->accepted,
				    ack->rejected, b->n_events);
			if (!ack->duplicate)
				accepted_total += ack->accepted;
			kanal__v1__batch_ack__free_unpacked(ack, NULL);
		}
		if (st == 400 && reason != NULL &&
		    strcmp(reason, "body_undecodable") == 0)
			undecodable++;
		if (b != NULL)
			kanal__v1__event_batch__free_unpacked(b, NULL);
		if (i % 100 == 99)
			assert_still_served();
	}
	/* The seed gives both kinds; a change of seed must keep that. */
	assert_true(undecodable > 0);
	assert_true(answered200 > 0);
	assert_still_served();
}

/*
 * Every prefix of a valid 3-event batch: a cut inside a field is
 * undecodable; a cut between events is a shorter batch, counted as such.
 */
static void
test_truncated_bodies_are_undecodable_or_shorter(void **state)
{
	uint8_t body[1024];
	char bid[32], text[512];
	size_t full;

	(void)state;
	snprintf(bid, sizeof(bid), "trunc-%03d", 0);
	full = make_batch(bid, 3, body, sizeof(body));
	for (size_t cut = 1; cut < full; cut++) {
		Kanal__V1__EventBatch *b;
		Kanal__V1__BatchAck *ack;
		int st;

		snprintf(bid, sizeof(bid), "trunc-%03zu", cut);
		assert_int_equal(make_batch(bid, 3, body, sizeof(body)), full);
		b = kanal__v1__event_batch__unpack(NULL, cut, body);
		st = post(NULL, body, cut, &ack, text, sizeof(text));
		if (b == NULL) {
			if (st != 400 || strncmp(text, "body_undecodable",
			    16) != 0)
				fail_msg("cut at %zu of %zu: got %d \"%.60s\", "
				    "want 400 body_undecodable", cut, full, st,
				    text);
			continue;
		}
		/* batch_id is field 1, so a decodable prefix has it whole. */
		if (st != 200)
			fail_msg("cut at %zu of %zu (%zu whole events): got %d "
			    "\"%.60s\", want 200", cut, full, b->n_events, st,
			    text);
		assert_true(b->n_events < 3);
		assert_int_equal(ack->accepted, b->n_events);
		assert_int_equal(ack->rejected, 0);
		accepted_total += ack->accepted;
		kanal__v1__batch_ack__free_unpacked(ack, NULL);
		kanal__v1__event_batch__free_unpacked(b, NULL);
	}
	assert_still_served();
}

/* Over max-body-size: 413 from evhttp, the handler never runs. */
static void
test_bodies_over_the_limit_get_413_and_are_not_counted(void **state)
{
	static char req[MAX_BODY * 2 + 4096];
	int64_t before = batches_seen();
	struct raw *c = calloc(1, sizeof(*c));
	struct raw_resp r;
	int n;

	(void)state;
	assert_non_null(c);
	/* Declared too big: answered before any of the body is read. */
	n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/"
	    "x-protobuf\r\nContent-Length: %d\r\n\r\n", f->token, MAX_BODY + 1);
	memset(req + n, 'a', MAX_BODY + 1);
	raw_open(c);
	raw_send(c, req, (size_t)n + MAX_BODY + 1);
	assert_int_equal(raw_response(c, &r), 0);
	assert_int_equal(r.status, 413);
	raw_close(c);
	/* Chunked, each chunk small, the sum too big. */
	n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/"
	    "x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n", f->token);
	for (int i = 0; i < 5; i++) {
		n += snprintf(req + n, sizeof(req) - (size_t)n, "4000\r\n");
		memset(req + n, 'b', 0x4000);
		n += 0x4000;
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	}
	n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
	raw_open(c);
	raw_send(c, req, (size_t)n);
	assert_int_equal(raw_response(c, &r), 0);
	assert_int_equal(r.status, 413);
	raw_close(c);
	free(c);
	assert_int_equal(batches_seen(), before);
	assert_still_served();
}

/* Over max-header-size: evhttp answers 400 itself. */
static void
test_headers_over_the_limit_get_400(void **state)
{
	static char req[16384];
	int64_t before = batches_seen();
	struct raw *c = calloc(1, sizeof(*c));
	struct raw_resp r;
	int n;

	(void)state;
	assert_non_null(c);
	/* One long header, then many short ones. */
	for (int kind = 0; kind < 2; kind++) {
		n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\n"
		    "Host: x\r\nAuthorization: Bearer %s\r\n", f->token);
		if (kind == 0) {
			n += snprintf(req + n, sizeof(req) - (size_t)n, "X-Pad: ");
			memset(req + n, 'p', 5000);
			n += 5000;
			n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
		} else {
			for (int i = 0; i < 600; i++)
				n += snprintf(req + n, sizeof(req) - (size_t)n,
				    "X-H%d: v\r\n", i);
		}
		n += snprintf(req + n, sizeof(req) - (size_t)n,
		    "Content-Length: 0\r\n\r\n");
		raw_open(c);
		raw_send(c, req, (size_t)n);
		assert_int_equal(raw_response(c, &r), 0);
		assert_int_equal(r.status, 400);
		assert_closed_silently(c, kind == 0 ? "long header" :
		    "many headers");
		raw_close(c);
	}
	free(c);
	assert_int_equal(batches_seen(), before);
	assert_still_served();
}

/*
 * Framing a proxy could read otherwise (request smuggling), bad lengths
 * and bad chunk sizes: one answer, then the connection is closed, so the
 * request hidden behind (GET /healthz) is never answered, and nothing
 * reaches ingest.
 */
static void
test_ambiguous_framing_is_refused_and_the_connection_closed(void **state)
{
	static const struct {
		const char *name, *headers, *body;
		int status;
		const char *reason;	/* NULL: evhttp's own answer */
	} cases[] = {
		{ "Content-Length and Transfer-Encoding: chunked",
		  "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
		  "0\r\n\r\n", 400, NULL },
		{ "Transfer-Encoding: chunked and Content-Length",
		  "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
		  "0\r\n\r\n", 400, NULL },
		{ "two different Content-Lengths",
		  "Content-Length: 2\r\nContent-Length: 4\r\n", "abcd", 400,
		  "request_framing_invalid" },
		{ "two equal Content-Lengths",
		  "Content-Length: 4\r\nContent-Length: 4\r\n", "abcd", 400,
		  "request_framing_invalid" },
		{ "Transfer-Encoding: gzip, chunked",
		  "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n", 400,
		  "request_framing_invalid" },
		{ "Transfer-Encoding: identity",
		  "Transfer-Encoding: identity\r\n", "abcd", 400,
		  "request_framing_invalid" },
		{ "Transfer-Encoding: identity and Content-Length",
		  "Transfer-Encoding: identity\r\nContent-Length: 4\r\n",
		  "abcd", 400, NULL },
		{ "chunked, then a second Transfer-Encoding",
		  "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
		  "0\r\n\r\n", 400, NULL },
		{ "negative Content-Length", "Content-Length: -5\r\n", "abcd",
		  400, NULL },
		{ "garbage Content-Length", "Content-Length: 12abc\r\n", "abcd",
		  400, NULL },
		{ "Content-Length over 2^64",
		  "Content-Length: 99999999999999999999999\r\n", "abcd", 413,
		  NULL },
		{ "chunk size not hex", "Transfer-Encoding: chunked\r\n",
		  "zz\r\nabc\r\n0\r\n\r\n", 413, NULL },
		{ "negative chunk size", "Transfer-Encoding: chunked\r\n",
		  "-5\r\nabc\r\n0\r\n\r\n", 413, NULL },
		{ "chunk size over 2^64", "Transfer-Encoding: chunked\r\n",
		  "fffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 413, NULL },
		{ "chunk over the body limit", "Transfer-Encoding: chunked\r\n",
		  "100000\r\nabc\r\n0\r\n\r\n", 413, NULL },
	};
	int64_t before = batches_seen();
	struct raw *c = calloc(1, sizeof(*c));
	char req[2048];

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct raw_resp r;
		int n;

		n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\n"
		    "Host: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
		    "application/x-protobuf\r\n%s\r\n%sGET /healthz HTTP/1.1\r\n"
		    "Host: x\r\n\r\n", f->token, cases[i].headers,
		    cases[i].body);
		raw_open(c);
		raw_send(c, req, (size_t)n);
		if (raw_response(c, &r) == -1)
			fail_msg("%s: no answer", cases[i].name);
		if (r.status != cases[i].status || (cases[i].reason != NULL &&
		    strncmp(r.body, cases[i].reason,
		    strlen(cases[i].reason)) != 0))
			fail_msg("%s: got %d \"%.60s\", want %d %s",
			    cases[i].name, r.status, r.body, cases[i].status,
			    cases[i].reason != NULL ? cases[i].reason : "");
		assert_closed_silently(c, cases[i].name);
		raw_close(c);
	}
	free(c);
	assert_int_equal(batches_seen(), before);
	assert_still_served();
}

/*
 * Pipelining: a request after a body is a request of its own, answered
 * in order; a request inside a body (by Content-Length) is only body.
 */
static void
test_a_request_after_a_body_is_its_own(void **state)
{
	struct raw *c = calloc(1, sizeof(*c));
	struct raw_resp r;
	Kanal__V1__BatchAck *ack;
	uint8_t body[1024];
	char req[4096], bid[32];
	static const char hidden[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len;
	int n;

	(void)state;
	assert_non_null(c);
	snprintf(bid, sizeof(bid), "pipe-%u", ++batch_seq);
	len = make_batch(bid, 1, body, sizeof(body));
	n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/x-protobuf"
	    "\r\nContent-Length: %zu\r\n\r\n", f->token, len);
	memcpy(req + n, body, len);
	n += (int)len;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "GET /healthz HTTP/1.1"
	    "\r\nHost: x\r\nConnection: close\r\n\r\n");
	raw_open(c);
	raw_send(c, req, (size_t)n);
	assert_int_equal(raw_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	ack = kanal__v1__batch_ack__unpack(NULL, strlen(r.body),
	    (const uint8_t *)r.body);
	/* The ack has no NUL byte: accepted 1, batch_id. */
	assert_non_null(ack);
	assert_int_equal(ack->accepted, 1);
	accepted_total += ack->accepted;
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	assert_int_equal(raw_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	assert_closed_silently(c, "pipelined");
	raw_close(c);

	/* The same GET as the body itself: undecodable, nothing else. */
	n = snprintf(req, sizeof(req), "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/x-protobuf"
	    "\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", f->token,
	    sizeof(hidden) - 1, hidden);
	raw_open(c);
	raw_send(c, req, (size_t)n);
	assert_int_equal(raw_response(c, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "body_undecodable"));
	assert_closed_silently(c, "request inside a body");
	raw_close(c);
	free(c);
	assert_still_served();
}

/* 405 with Allow for a method the path does not take, 404 elsewhere. */
static void
test_wrong_methods_get_405_with_allow_and_unknown_paths_404(void **state)
{
	static const struct {
		const char *method, *path;
		int status;
		const char *allow;
	} cases[] = {
		{ "GET", "/v1/events", 405, "POST" },
		{ "PUT", "/v1/events", 405, "POST" },
		{ "DELETE", "/v1/events", 405, "POST" },
		{ "PATCH", "/v1/events", 405, "POST" },
		{ "OPTIONS", "/v1/events", 405, "POST" },
		{ "POST", "/healthz", 405, "GET" },
		{ "DELETE", "/readyz", 405, "GET" },
		{ "PUT", "/metrics", 405, "GET" },
		{ "GET", "/", 404, NULL },
		{ "POST", "/v1/events/", 404, NULL },
		{ "POST", "/v2/events", 404, NULL },
		{ "GET", "/../../etc/passwd", 404, NULL },
		{ "GET", "/healthz%00", 404, NULL },
		/* evhttp knows no such method and answers itself. */
		{ "BREW", "/v1/events", 501, NULL },
	};
	struct raw *c = calloc(1, sizeof(*c));
	char req[512], allow[64];

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct raw_resp r;
		int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n",
		    cases[i].method, cases[i].path);

		raw_open(c);
		raw_send(c, req, (size_t)n);
		if (raw_response(c, &r) == -1)
			fail_msg("%s %s: no answer", cases[i].method,
			    cases[i].path);
		if (r.status != cases[i].status)
			fail_msg("%s %s: got %d, want %d", cases[i].method,
			    cases[i].path, r.status, cases[i].status);
		if (r.status == 405) {
			if (header_value(&r, "Allow", allow, sizeof(allow)) ==
			    NULL || strcmp(allow, cases[i].allow) != 0)
				fail_msg("%s %s: Allow \"%s\", want %s",
				    cases[i].method, cases[i].path,
				    header_value(&r, "Allow", allow,
				    sizeof(allow)) ? allow : "(none)",
				    cases[i].allow);
			assert_non_null(strstr(r.body, "method_not_allowed"));
		}
		if (r.status == 404)
			assert_non_null(strstr(r.body, "not_found"));
		raw_close(c);
	}
	free(c);
	assert_still_served();
}

/*
 * Guessing tokens: each guess is 401 token_unknown (counted as a client
 * error, so it did reach the check), and neither the guesses nor the real
 * token nor its digest are ever logged.
 */
static void
test_guessed_tokens_get_401_and_are_never_logged(void **state)
{
	uint8_t body[512];
	char text[256];
	size_t len;
	int64_t before = batches_seen();
	static const char *const malformed[] = {
		"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
		"Bearer a b", "bearer\ttoken",
	};

	(void)state;
	len = make_batch("guess", 1, body, sizeof(body));
	for (int i = 0; i < GUESSES; i++) {
		assert_int_equal(client_random_hex(guessed[i], 32), 0);
		/* A near miss too: the real token with its last digit changed. */
		if (i == 0) {
			memcpy(guessed[i], f->token, 64);
			guessed[i][63] = guessed[i][63] == '0' ? '1' : '0';
		}
		assert_int_equal(post(guessed[i], body, len, NULL, text,
		    sizeof(text)), 401);
		if (strncmp(text, "token_unknown", 13) != 0)
			fail_msg("guess %d: \"%s\", want token_unknown", i, text);
	}
	for (size_t i = 0; i < NELEM(malformed); i++) {
		struct httpc_response r;
		char hdr[128], err[256];

		snprintf(hdr, sizeof(hdr), "Authorization: %s\r\nContent-Type: "
		    "application/x-protobuf\r\n", malformed[i]);
		if (httpc_request(good, "POST", "/v1/events", hdr, body, len, &r,
		    err, sizeof(err)) == -1)
			fail_msg("%s", err);
		if (r.status != 401 || strncmp(r.body, "token_", 6) != 0)
			fail_msg("Authorization \"%s\": got %d \"%.40s\"",
			    malformed[i], r.status, r.body);
	}
	assert_int_equal(batches_seen(), before + GUESSES +
	    (int64_t)NELEM(malformed));
	for (int i = 0; i < GUESSES; i++)
		if (th_log_count(&f->k, guessed[i]) != 0)
			fail_msg("guessed token %d is in the log %s", i, f->k.log);
	assert_int_equal(th_log_count(&f->k, f->token), 0);
	assert_int_equal(th_log_count(&f->k, digest), 0);
	assert_still_served();
}

/* POSTs one event of service as batch bid with token; returns the status. */
static int
post_one(const char *token, const char *bid, const char *service,
    Kanal__V1__BatchAck **ack, char *text, size_t textlen)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev, *evp = &ev;
	uint8_t body[512];
	size_t len;

	fill_event(&ev, service);
	b.batch_id = (char *)bid;
	b.n_events = 1;
	b.events = &evp;
	len = kanal__v1__event_batch__pack(&b, body);
	return post(token, body, len, ack, text, textlen);
}

/*
 * One source's token reports only its services, and its batch_ids are
 * its own: the same batch_id from another source is a batch of its own,
 * not a duplicate, and neither answer says anything of the other source.
 */
static void
test_a_token_reports_only_its_services_and_its_own_batches(void **state)
{
	Kanal__V1__BatchAck *ack;
	char text[256];

	(void)state;
	/* "other" may report bapenda.*, not dukcapil.*. */
	assert_int_equal(post_one(other_token, "shared-1", "dukcapil.kia",
	    NULL, text, sizeof(text)), 403);
	assert_int_equal(strncmp(text, "service_not_allowed", 19), 0);
	assert_int_equal(post_one(NULL, "shared-1", "bapenda.pbb", &ack, NULL,
	    0), 403);
	/*
	 * The fixture's source sends shared-1, then "other" does: each is
	 * new. Then each source's retry is a duplicate of its own.
	 */
	for (int i = 0; i < 4; i++) {
		const char *tok = i % 2 == 0 ? NULL : other_token;
		int dup = i >= 2;

		assert_int_equal(post_one(tok, "shared-1", i % 2 == 0 ?
		    "dukcapil.kia" : "bapenda.pbb", &ack, NULL, 0), 200);
		assert_int_equal(ack->accepted, 1);
		assert_int_equal(ack->duplicate, dup);
		if (!dup)
			accepted_total += ack->accepted;
		kanal__v1__batch_ack__free_unpacked(ack, NULL);
	}
	assert_int_equal(th_log_count(&f->k, other_token), 0);
	assert_still_served();
}

/* How many times needle is in the files of dir (the WAL). */
static int
dir_count(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	static char buf[1 << 20];
	size_t nlen = strlen(needle);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[1024];
		int fd;
		ssize_t r;
		size_t keep = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd == -1)
			continue;
		/* Overlap reads by nlen - 1 so no match is split. */
		while ((r = read(fd, buf + keep, sizeof(buf) - keep)) > 0) {
			size_t have = keep + (size_t)r;
			for (size_t i = 0; i + nlen <= have; i++)
				if (memcmp(buf + i, needle, nlen) == 0)
					n++;
			keep = have >= nlen - 1 ? nlen - 1 : have;
			memmove(buf, buf + have - keep, keep);
		}
		close(fd);
	}
	closedir(d);
	return n;
}

/*
 * A raw NIK as citizen_ref is rejected with citizen_ref_nik, the rest of
 * the batch is counted, and no citizen_ref, NIK or pseudonym, is in the
 * answer, the log or the WAL.
 */
static void
test_raw_nik_is_rejected_and_no_citizen_ref_is_kept(void **state)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent ev[NELEM(citizen_refs)], *evp[NELEM(citizen_refs)];
	Kanal__V1__BatchAck *ack;
	uint8_t body[2048];
	char bid[32];
	size_t len;

	(void)state;
	for (size_t i = 0; i < NELEM(citizen_refs); i++) {
		fill_event(&ev[i], "dukcapil.kia");
		ev[i].citizen_ref.data = (uint8_t *)citizen_refs[i];
		ev[i].citizen_ref.len = strlen(citizen_refs[i]);
		evp[i] = &ev[i];
	}
	snprintf(bid, sizeof(bid), "nik-%u", ++batch_seq);
	b.batch_id = bid;
	b.n_events = NELEM(citizen_refs);
	b.events = evp;
	len = kanal__v1__event_batch__pack(&b, body);
	assert_int_equal(post(NULL, body, len, &ack, NULL, 0), 200);
	assert_int_equal(ack->accepted, 2);
	assert_int_equal(ack->rejected, 1);
	assert_int_equal(ack->n_rejections, 1);
	assert_int_equal(ack->rejections[0]->index, 0);
	assert_int_equal(ack->rejections[0]->code,
	    KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_NIK);
	assert_null(strstr(ack->rejections[0]->message, citizen_refs[0]));
	accepted_total += ack->accepted;
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	/* Durable (acknowledged) means in the WAL: look there too. */
	for (size_t i = 0; i < NELEM(citizen_refs); i++) {
		if (th_log_count(&f->k, citizen_refs[i]) != 0)
			fail_msg("citizen_ref %s is in the log", citizen_refs[i]);
		if (dir_count(f->k.wal_dir, citizen_refs[i]) != 0)
			fail_msg("citizen_ref %s is in the WAL", citizen_refs[i]);
	}
	assert_still_served();
}

/*
 * A few hundred slow sockets (idle, half a request line, half the
 * headers, a byte more after a pause, headers and half a body): a normal
 * client is served meanwhile, and kanald closes every one of them once it
 * has been quiet for the timeout (2 s here).
 */
struct slow {
	struct pollfd pfd[SLOW_CLIENTS];
	int open;
};

static int
slow_all_closed(void *arg)
{
	struct slow *s = arg;
	char buf[512];

	if (poll(s->pfd, SLOW_CLIENTS, 0) == -1)
		return 0;
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		if (s->pfd[i].fd < 0 || s->pfd[i].revents == 0)
			continue;
		/* An answer (408 or 400) is fine; the end is what counts. */
		if (recv(s->pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			continue;
		close(s->pfd[i].fd);
		s->pfd[i].fd = -1;
		s->open--;
	}
	return s->open == 0;
}

static void
test_slow_clients_are_closed_while_others_are_served(void **state)
{
	static const char *const starts[] = {
		"",
		"POST /v1/ev",
		"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthoriz",
		"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
		"\r\nabcdefghij",
		"GET /healthz HTTP/1.1\r\nHo",
	};
	struct slow *s = calloc(1, sizeof(*s));
	struct raw *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(s);
	assert_non_null(c);
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		const char *start = starts[i % NELEM(starts)];

		raw_open(c);
		raw_send(c, start, strlen(start));
		s->pfd[i].fd = c->fd;
		s->pfd[i].events = POLLIN;
		s->open++;
	}
	/* While they all hang on, the well-behaved client is served. */
	assert_still_served();
	/*
	 * Trickle: one more byte on every fifth. (Each byte restarts
	 * evhttp's read timeout, so these close only 2 s after it: a client
	 * that sends a byte more often than that stays; see
	 * docs/security.md.) On a busy machine the send may come too late,
	 * which is no failure.
	 */
	for (int i = 2; i < SLOW_CLIENTS; i += 5)
		(void)send(s->pfd[i].fd, "a", 1, MSG_NOSIGNAL);
	assert_still_served();
	if (!th_wait(slow_all_closed, s, 15000))
		fail_msg("%d of %d slow clients still open 15 s later (timeout "
		    "2 s)", s->open, SLOW_CLIENTS);
	free(s);
	free(c);
	assert_still_served();
}

/*
 * A client that trickles its request a header line at a time, far more
 * often than the timeout, never lets evhttp's inactivity timer fire; the
 * deadline for a whole request (timeout, 2 s here) closes it anyway. The
 * loop is bounded: 40 lines 250 ms apart, 10 s, five times the deadline.
 */
static void
test_a_trickling_request_is_closed_at_its_deadline(void **state)
{
	static const char start[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\n";
	struct raw *c = calloc(1, sizeof(*c));
	long long before = th_metric(&f->k, "kanal_http_requests_overdue_total");
	struct pollfd pfd;
	int lines = 0, closed = 0;
	char buf[512];

	(void)state;
	assert_non_null(c);
	assert_true(before >= 0);
	raw_open(c);
	raw_send(c, start, strlen(start));
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	while (!closed && lines < 40) {
		int n = poll(&pfd, 1, 250);

		if (n == 1) {
			/* EOF (or a reset) is the end; an answer is read on. */
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			closed = r <= 0;
			continue;
		}
		if (send(c->fd, "X-Slow: a\r\n", 11, MSG_NOSIGNAL) == -1)
			closed = 1;
		lines++;
	}
	if (!closed)
		fail_msg("a request trickled for %d lines (%d ms) is still "
		    "open; the deadline is 2 s", lines, lines * 250);
	/* It was the deadline, not a header limit: it had sent < 1 KiB. */
	assert_true(lines >= 4);
	/* Counted before the close, so already there. */
	assert_true(th_metric(&f->k, "kanal_http_requests_overdue_total") >
	    before);
	raw_close(c);
	free(c);
	assert_still_served();
}

/* kanald's resident memory in KiB, from /proc. */
static long
kanald_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)f->k.pid);
	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

/*
 * A client that pipelines requests without end and never reads the
 * answers (its receive buffer as small as the kernel allows, set before
 * connecting so that the window is small from the start): once an answer
 * waits to be written evhttp parses nothing, and without a read
 * high-water mark kanald would buffer whatever came (hundreds of MB a
 * second over loopback). It must stop
 * reading at about one whole request (4 KiB of headers + 64 KiB of body
 * here, and a little more), so the client's sends stall on full socket
 * buffers, and the connection is closed at the deadline. Bounded: 32 MiB
 * (a failure) or 10 s, whichever comes first.
 */
#define FLOOD_MAX	(32u << 20)	/* socket buffers hold < 12 MB here */
static void
test_a_client_that_never_reads_cannot_make_kanald_buffer(void **state)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	static char chunk[64 << 10];
	struct sockaddr_in sa;
	size_t sent = 0, len = 0;
	long rss0, rss1;
	int fd, small = 1, closed = 0;
	struct timeval t0, now;

	(void)state;
	rss0 = kanald_rss_kib();
	while (len + sizeof(req) - 1 <= sizeof(chunk)) {
		memcpy(chunk + len, req, sizeof(req) - 1);
		len += sizeof(req) - 1;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)f->k.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fail_msg("connect: %s", strerror(errno));
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
	    0);
	gettimeofday(&t0, NULL);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		gettimeofday(&now, NULL);
		if (sent >= FLOOD_MAX || (now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_usec - t0.tv_usec) / 1000 > 10000)
			break;
		if (poll(&pfd, 1, 100) == 1 && (pfd.revents & (POLLERR |
		    POLLHUP))) {
			closed = 1;
			break;
		}
		/* From where the last send stopped: requests stay whole. */
		w = send(fd, chunk + sent % len, len - sent % len,
		    MSG_NOSIGNAL);
		if (w > 0)
			sent += (size_t)w;
		else if (w == -1 && errno != EAGAIN && errno != EINTR) {
			closed = 1;	/* EPIPE, ECONNRESET: kanald closed it */
			break;
		}
	}
	rss1 = kanald_rss_kib();
	close(fd);
	print_message("never-reading client: %zu KiB taken in, closed=%d, "
	    "kanald RSS %ld -> %ld KiB\n", sent >> 10, closed, rss0, rss1);
	if (sent >= FLOOD_MAX)
		fail_msg("kanald took in %zu MiB from a client that reads "
		    "nothing", sent >> 20);
	assert_true(closed);
	/*
	 * What the client got into the kernel's buffers bounds what kanald
	 * read (sent above). Its RSS is printed, not asserted: under ASan the
	 * quarantine of the answers' freed memory alone is tens of MB.
	 */
	assert_still_served();
}

/*
 * kanald writes as kanal_ingest, and a login that is only a member of
 * kanal_ingest (how an operator would give it a password of its own)
 * is enough: a second instance on it counts its batch.
 */
static void
test_a_member_of_kanal_ingest_is_enough(void **state)
{
	struct th_kanald k2;
	char sql[512], login[64], pg[256], out[1024];
	int64_t before;

	(void)state;
	memset(&k2, 0, sizeof(k2));
	/* Every session of kanald's on this database is kanal_ingest's. */
	th_wait_count(f->conn, "SELECT (count(*) > 0)::int FROM "
	    "pg_stat_activity WHERE datname = current_database() AND usename = "
	    "'kanal_ingest'", 1);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "pg_stat_activity WHERE datname = current_database() AND pid <> "
	    "pg_backend_pid() AND backend_type = 'client backend' AND usename "
	    "<> 'kanal_ingest'"), 0);

	snprintf(login, sizeof(login), "kanal_t_login_%ld", (long)getpid());
	snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", login);
	th_exec(f->conn, sql);
	snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN IN ROLE kanal_ingest",
	    login);
	th_exec(f->conn, sql);
	snprintf(pg, sizeof(pg), "dbname=%s user=%s", f->db, login);
	th_kanald_start(&k2, NULL, f->sources, (const char *const[]){
	    "--pg", pg, "--collector-id", "member", "--flush-interval",
	    "100ms", NULL });
	before = th_query_i64(f->conn, "SELECT coalesce(sum(events), 0) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.member'");
	assert_int_equal(before, 0);
	{
		const char *argv[] = { th_env("KANALCTL"), "send", "--url",
		    k2.url, "--token", f->token, "--service", "dukcapil.member",
		    "--channel", "web", "--region", "32.73.01", "--outcome",
		    "completed", "--count", "3", NULL };
		assert_int_equal(th_run(out, sizeof(out), argv), 0);
	}
	th_wait_count(f->conn, "SELECT coalesce(sum(events), 0) FROM "
	    "kanal.usage_hourly WHERE service_code = 'dukcapil.member'", 3);
	assert_int_equal(th_query_i64(f->conn, "SELECT count(*) FROM "
	    "kanal.collector_checkpoint WHERE collector_id = 'member'"), 1);
	assert_int_equal(th_kanald_stop(&k2, SIGTERM), 0);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", login);
	th_exec(f->conn, sql);
}

/*
 * After all that: kanald still runs, every event it acknowledged as
 * accepted is in PostgreSQL exactly once, and its log (at debug level)
 * holds no token, digest or citizen_ref.
 */
static void
test_every_accepted_event_is_counted_and_the_log_is_clean(void **state)
{
	char sql[256];

	(void)state;
	assert_still_served();
	snprintf(sql, sizeof(sql), "SELECT coalesce(sum(events), 0) FROM "
	    "kanal.usage_hourly WHERE service_code <> 'dukcapil.member'");
	th_wait_count(f->conn, sql, accepted_total);
	assert_int_equal(th_kanald_stop(&f->k, SIGTERM), 0);
	assert_int_equal(th_query_i64(f->conn, sql), accepted_total);
	assert_int_equal(th_log_count(&f->k, f->token), 0);
	assert_int_equal(th_log_count(&f->k, digest), 0);
	assert_int_equal(th_log_count(&f->k, other_token), 0);
	for (int i = 0; i < GUESSES; i++)
		assert_int_equal(th_log_count(&f->k, guessed[i]), 0);
	for (size_t i = 0; i < NELEM(citizen_refs); i++)
		assert_int_equal(th_log_count(&f->k, citizen_refs[i]), 0);
	/* It did log at debug level: the check above is not vacuous. */
	assert_true(th_log_count(&f->k, "debug:") > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzzed_bodies_get_a_specific_answer),
		cmocka_unit_test(test_truncated_bodies_are_undecodable_or_shorter),
		cmocka_unit_test(
		    test_bodies_over_the_limit_get_413_and_are_not_counted),
		cmocka_unit_test(test_headers_over_the_limit_get_400),
		cmocka_unit_test(
		    test_ambiguous_framing_is_refused_and_the_connection_closed),
		cmocka_unit_test(test_a_request_after_a_body_is_its_own),
		cmocka_unit_test(
		    test_wrong_methods_get_405_with_allow_and_unknown_paths_404),
		cmocka_unit_test(test_guessed_tokens_get_401_and_are_never_logged),
		cmocka_unit_test(
		    test_a_token_reports_only_its_services_and_its_own_batches),
		cmocka_unit_test(
		    test_raw_nik_is_rejected_and_no_citizen_ref_is_kept),
		cmocka_unit_test(
		    test_slow_clients_are_closed_while_others_are_served),
		cmocka_unit_test(
		    test_a_trickling_request_is_closed_at_its_deadline),
		cmocka_unit_test(
		    test_a_client_that_never_reads_cannot_make_kanald_buffer),
		cmocka_unit_test(test_a_member_of_kanal_ingest_is_enough),
		cmocka_unit_test(
		    test_every_accepted_event_is_counted_and_the_log_is_clean),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
