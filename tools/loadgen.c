/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanal-loadgen: the benchmark client for kanald.
 *
 * Sends pre-encoded, realistic EventBatches (loadgen.h) over N keep-alive
 * connections, one thread and one blocking httpc each, for a bounded time,
 * and reports events/s, batches/s, the acknowledgement latency histogram
 * and every answer that was not 200. With --verify-pg it checks at the end
 * that PostgreSQL counted exactly the events kanald acknowledged
 * (DESIGN.md, invariant 1).
 *
 * Pacing and coordinated omission. With --rate, each connection follows an
 * open-loop schedule: its k-th request is due at start + offset + k *
 * interval, whatever happened to the requests before it. A request that
 * goes out late (the previous answer came after its due time) is sent at
 * once, and its latency is measured from its due time, not from when it
 * was actually sent: a stall of kanald then shows in the latency of every
 * request that a real, independent client would have sent during the stall
 * (the correction wrk2 makes). The time from the actual send is reported
 * too, as "service time". Requests still due when the duration ends are
 * not sent and are reported as "behind schedule": a non-zero figure means
 * the rate was not sustained. Without --rate the loop is closed (each
 * connection sends its next request when the previous one is answered):
 * that measures throughput, and its latency is service time only.
 *
 * Unknown outcomes. A request without an answer (transport error) or with
 * a 5xx may or may not have been counted (invariant 3). The hot path does
 * not retry; with --verify-pg those batches are sent again afterwards with
 * the same batch_id until answered 200 (kanald then either counts them or
 * answers duplicate), so the expected count is exact.
 *
 * Exit status: 0 every batch was answered 200 (and, with --verify-pg, the
 * database holds exactly what was acknowledged); 1 some were not, or the
 * verification could not conclude; 2 usage error; 3 --verify-pg found the
 * database count different from the acknowledged count: a kanald bug.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "clock.h"
#include "httpc.h"
#include "loadgen.h"
#include "opts.h"
#include "validate.h"

#define EXIT_USAGE 2
#define EXIT_MISCOUNT 3
#define DEFAULT_URL "http://127.0.0.1:8080"
#define MAX_DURATION_S 3600
#define MAX_CONNECTIONS 1024
#define MAX_POOL_EVENTS 5000000ULL	/* ~400 MB of encoded events */
#define HTTP_TIMEOUT_MS 30000
#define SLEEP_SLICE_NS 100000000LL	/* re-check the stop flag this often */
#define NS 1000000000LL

/* ----------------------------------------------------------- options */


static int
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (s[0] == '-' || s[0] == '\0')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -1;
	*v = (uint64_t)x;
	return 0;
}

/* ------------------------------------------------------------- the run */

struct config {
	const char *url;
	const char *token;
	uint64_t connections, batch, rate, duration_s, max_batches, pool;
	uint64_t seed;
	uint64_t citizens;	/* residents of the citizen_refs; 0: none */
	const char *verify_pg;
	uint64_t verify_timeout_s;
	int json;
};

/* A batch whose outcome is unknown: resent with --verify-pg. */
struct pending {
	size_t slot;
	uint64_t seq;
};

/* What one connection saw; merged by the main thread after the join. */
struct tally {
	uint64_t sent, ok, events_sent, accepted, rejected, duplicates;
	uint64_t transport_errors, bad_acks, ack_mismatch, behind;
	uint64_t s400, s401, s403, s413, s415, s429, s503, s_other;
	char first_problem[256];
};

struct worker {
	struct run *run;
	size_t index;
	pthread_t thread;
	struct httpc *http;
	struct lg_hist *latency;	/* from the due time */
	struct lg_hist *service;	/* from the actual send */
	struct tally t;
	struct pending *pending;
	size_t npending, cap_pending;
	int64_t end_ns;			/* when its last answer came */
	int64_t stop_ns;		/* when its window closed */
	int64_t slowest_ns, slowest_at;	/* worst ack latency, its due time */
};

struct run {
	const struct config *cfg;
	struct lg_batch *pool;
	uint64_t run_id;
	char headers[256];
	/* The start gate: workers connect, say so, and wait for go. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t nready;
	int go;
	int64_t start_ns, deadline_ns;
	int64_t interval_ns;		/* per connection; 0 = closed loop */
	atomic_uint_fast64_t next_seq;
	atomic_int abort_start;
	struct worker *workers;
};

/*
 * SIGINT and SIGTERM: the first stops sending (the run is reported, and
 * --verify-pg still checks what was acknowledged); the second stops the
 * verification too.
 */
#define STOP_SENDING 1
#define STOP_VERIFYING 2
static atomic_int signals;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals, 1);
}

static int
stopping(int level)
{
	return atomic_load(&signals) >= level;
}

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/*
 * Sleeps until the monotonic time t, in slices so that a signal is seen.
 * 0 at t, -1 when stopping(level).
 */
static int
sleep_until(int64_t t, int level)
{
	for (;;) {
		int64_t now = mono_ns(), until;
		struct timespec ts;

		if (stopping(level))
			return -1;
		if (now >= t)
			return 0;
		until = t - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : t;
		ts.tv_sec = (time_t)(until / NS);
		ts.tv_nsec = (long)(until % NS);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/* Keeps the first problem seen, for the report. */
static void
note_problem(struct tally *t, int status, const char *what)
{
	if (t->first_problem[0] != '\0')
		return;
	if (status == 0)
		snprintf(t->first_problem, sizeof(t->first_problem),
		    "no answer: %.200s", what);
	else
		snprintf(t->first_problem, sizeof(t->first_problem),
		    "HTTP %d: %.*s", status, (int)strcspn(what, "\n") < 200 ?
		    (int)strcspn(what, "\n") : 200, what);
}

static int
pending_add(struct worker *w, size_t slot, uint64_t seq)
{
	if (w->npending == w->cap_pending) {
		size_t ncap = w->cap_pending ? w->cap_pending * 2 : 64;
		struct pending *np = realloc(w->pending, ncap * sizeof(*np));
		if (np == NULL)
			return -1;
		w->pending = np;
		w->cap_pending = ncap;
	}
	w->pending[w->npending].slot = slot;
	w->pending[w->npending].seq = seq;
	w->npending++;
	return 0;
}

/* What became of one request. */
enum answer {
	ANSWER_ACKED,		/* 200 with a BatchAck */
	ANSWER_UNKNOWN,		/* no answer, 5xx, or a 200 without a BatchAck */
	ANSWER_REFUSED,		/* 4xx: final, not counted */
};

/* Counts one answer and says which kind it was. */
static enum answer
tally_answer(struct tally *t, int rc, const struct httpc_response *r,
    const char *err, uint32_t nevents)
{
	Kanal__V1__BatchAck *ack;

	if (rc == -1) {
		t->transport_errors++;
		note_problem(t, 0, err);
		return ANSWER_UNKNOWN;
	}
	if (r->status != 200) {
		switch (r->status) {
		case 400: t->s400++; break;
		case 401: t->s401++; break;
		case 403: t->s403++; break;
		case 413: t->s413++; break;
		case 415: t->s415++; break;
		case 429: t->s429++; break;
		case 503: t->s503++; break;
		default: t->s_other++; break;
		}
		note_problem(t, r->status, r->body != NULL ? r->body : "");
		return r->status >= 500 ? ANSWER_UNKNOWN : ANSWER_REFUSED;
	}
	ack = kanal__v1__batch_ack__unpack(NULL, r->len,
	    (const uint8_t *)r->body);
	if (ack == NULL) {
		t->bad_acks++;
		note_problem(t, 200, "the body is not a BatchAck");
		return ANSWER_UNKNOWN;
	}
	t->ok++;
	t->accepted += ack->accepted;
	t->rejected += ack->rejected;
	if (ack->duplicate)
		t->duplicates++;
	if ((uint64_t)ack->accepted + ack->rejected != nevents)
		t->ack_mismatch++;
	if (ack->n_rejections > 0 && t->first_problem[0] == '\0')
		snprintf(t->first_problem, sizeof(t->first_problem),
		    "rejected: %s: %.200s",
		    validate_reason_name(ack->rejections[0]->code),
		    ack->rejections[0]->message);
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	return ANSWER_ACKED;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	const struct config *cfg = run->cfg;
	size_t conns = (size_t)cfg->connections, slot = w->index;
	struct httpc_response r = { .status = 0 };
	char err[512] = "";
	int64_t offset, due;
	uint64_t k = 0;

	/* Connect before the clock starts: set-up is not ack latency. */
	if (httpc_request(w->http, "GET", "/healthz", NULL, NULL, 0, &r, err,
	    sizeof(err)) == -1 || r.status != 200) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "GET /healthz answered %d",
			    r.status);
		fprintf(stderr, "kanal-loadgen: connection %zu: %s\n", w->index,
		    err);
		atomic_store(&run->abort_start, 1);
	}
	pthread_mutex_lock(&run->lock);
	run->nready++;
	pthread_cond_broadcast(&run->cond);
	while (!run->go)
		pthread_cond_wait(&run->cond, &run->lock);
	pthread_mutex_unlock(&run->lock);
	if (atomic_load(&run->abort_start))
		return NULL;
	/* Connections spread their due times evenly over one interval. */
	offset = run->interval_ns * (int64_t)w->index / (int64_t)conns;
	w->end_ns = run->start_ns;
	if (sleep_until(run->start_ns + offset, STOP_SENDING) == -1)
		return NULL;
	for (;; k++) {
		struct lg_batch *b;
		int64_t sent, done;
		enum answer a;
		uint64_t seq;
		int rc;

		if (stopping(STOP_SENDING))
			break;
		if (run->interval_ns > 0) {
			due = run->start_ns + offset + (int64_t)k *
			    run->interval_ns;
			if (due >= run->deadline_ns) {
				/* Its window is the whole duration. */
				w->stop_ns = run->deadline_ns;
				break;
			}
			if (sleep_until(due, STOP_SENDING) == -1)
				break;
			if (mono_ns() >= run->deadline_ns) {
				/* Due in time, but the answers ran late. */
				w->t.behind = (uint64_t)((run->deadline_ns -
				    run->start_ns - offset - 1) /
				    run->interval_ns) + 1 - k;
				break;
			}
		} else {
			due = mono_ns();
			if (due >= run->deadline_ns)
				break;
		}
		seq = atomic_fetch_add(&run->next_seq, 1);
		if (cfg->max_batches > 0 && seq >= cfg->max_batches)
			break;
		b = &run->pool[slot];
		lg_batch_set_id(b, run->run_id, seq);
		sent = mono_ns();
		rc = httpc_request(w->http, "POST", "/v1/events", run->headers,
		    b->buf, b->len, &r, err, sizeof(err));
		done = mono_ns();
		w->end_ns = done;
		w->t.sent++;
		w->t.events_sent += b->nevents;
		a = tally_answer(&w->t, rc, &r, err, b->nevents);
		/* Only acknowledgements are timed: a refusal is no ack. */
		if (a == ANSWER_ACKED) {
			lg_hist_record(w->service, (uint64_t)(done - sent));
			lg_hist_record(w->latency, (uint64_t)(done - due));
			if (done - due > w->slowest_ns) {
				w->slowest_ns = done - due;
				w->slowest_at = due;
			}
		}
		if (a == ANSWER_UNKNOWN && pending_add(w, slot, seq) == -1) {
			fprintf(stderr, "kanal-loadgen: out of memory\n");
			break;
		}
		/*
		 * Closed loop: back off as a real client would (Retry-After
		 * on 503, 100 ms without an answer) instead of spinning on
		 * refusals. Open loop: the schedule goes on regardless.
		 */
		if (run->interval_ns == 0 && (rc == -1 || r.status == 503)) {
			int64_t pause = 100 * 1000000LL;

			if (rc == 0) {
				int ra = atoi(r.retry_after);
				pause = (int64_t)(ra < 1 ? 1 : ra > 10 ? 10 : ra)
				    * NS;
			}
			if (done + pause > run->deadline_ns)
				pause = run->deadline_ns - done;
			if (pause > 0 && sleep_until(done + pause, STOP_SENDING) == -1)
				break;
		}
		/* Each connection owns the slots index, index + conns, ... */
		slot += conns;
		if (slot >= (size_t)cfg->pool)
			slot = w->index;
	}
	if (w->stop_ns == 0)
		w->stop_ns = mono_ns();
	return NULL;
}

/* What resending the batches of unknown outcome found. */
struct resend {
	uint64_t batches;		/* that needed it */
	uint64_t accepted;		/* events in their BatchAcks */
	uint64_t duplicates;		/* kanald had them already */
	uint64_t refused;		/* 4xx: final, not counted */
	uint64_t unknown_batches;	/* still no 200 at the deadline */
	uint64_t unknown_events;
};

/*
 * Sends one batch until it is answered 200 or a 4xx, honouring
 * Retry-After, or the deadline passes. 1 acknowledged (*ack filled; free
 * it), 0 refused, -1 still unknown.
 */
static int
resend_one(struct httpc *http, const char *headers, const struct lg_batch *b,
    int64_t deadline, Kanal__V1__BatchAck **ack)
{
	while (mono_ns() < deadline && !stopping(STOP_VERIFYING)) {
		struct httpc_response r;
		char err[512];
		int wait_s = 1;

		if (httpc_request(http, "POST", "/v1/events", headers, b->buf,
		    b->len, &r, err, sizeof(err)) == 0) {
			if (r.status == 200) {
				*ack = kanal__v1__batch_ack__unpack(NULL, r.len,
				    (const uint8_t *)r.body);
				if (*ack != NULL)
					return 1;
			} else if (r.status < 500) {
				return 0;
			} else {
				wait_s = atoi(r.retry_after);
				wait_s = wait_s < 1 ? 1 : wait_s > 10 ? 10 :
				    wait_s;
			}
		}
		sleep_until(mono_ns() + (int64_t)wait_s * NS, STOP_VERIFYING);
	}
	return -1;
}

/*
 * Sends the batches of unknown outcome again, same batch_id, one at a
 * time, for at most timeout_s in all: kanald either counts them now or
 * answers duplicate (it had them), so what was acknowledged is exact
 * again. Fills res.
 */
static void
resolve_pending(struct run *run, uint64_t timeout_s, struct resend *res)
{
	int64_t deadline = mono_ns() + (int64_t)timeout_s * NS;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < (size_t)run->cfg->connections; i++) {
		struct worker *w = &run->workers[i];

		for (size_t j = 0; j < w->npending; j++) {
			struct lg_batch *b = &run->pool[w->pending[j].slot];
			Kanal__V1__BatchAck *ack = NULL;

			res->batches++;
			lg_batch_set_id(b, run->run_id, w->pending[j].seq);
			switch (resend_one(w->http, run->headers, b, deadline,
			    &ack)) {
			case 1:
				res->accepted += ack->accepted;
				res->duplicates += ack->duplicate ? 1 : 0;
				kanal__v1__batch_ack__free_unpacked(ack, NULL);
				break;
			case 0:
				res->refused++;
				break;
			default:
				res->unknown_batches++;
				res->unknown_events += b->nevents;
				break;
			}
		}
	}
}

/* ----------------------------------------------------------- verify-pg */

/* sum(events) in kanal.usage_hourly, or -1 with a message in err. */
static int64_t
pg_events(PGconn **conn, const char *conninfo, char *err, size_t errlen)
{
	PGresult *r;
	int64_t v = -1;

	if (*conn == NULL || PQstatus(*conn) != CONNECTION_OK) {
		PQfinish(*conn);
		*conn = PQconnectdb(conninfo);
		if (PQstatus(*conn) != CONNECTION_OK) {
			snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
			    PQerrorMessage(*conn));
			return -1;
		}
	}
	r = PQexec(*conn, "SELECT coalesce(sum(events), 0)::bigint "
	    "FROM kanal.usage_hourly");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		snprintf(err, errlen, "reading kanal.usage_hourly: %s",
		    PQerrorMessage(*conn));
	PQclear(r);
	return v;
}

struct verify {
	int asked, ok, conclusive;
	int64_t before, after, counted;
	uint64_t expected, unknown_batches, unknown_events;
	double settle_s;
	char error[512];
};

/*
 * Waits, polling, for the count to settle, then judges it. expected is
 * what was acknowledged; unknown_events more may or may not be counted
 * (batches never answered 200 even when sent again).
 * - Nothing unknown: ok when the database grew by exactly expected; it
 *   waits until it grew by at least that (counts only grow, so more is a
 *   double count at once) or the deadline (less: a loss, or a flush that
 *   does not get through).
 * - Some unknown: a growth below expected at the deadline is a loss and
 *   above expected + unknown_events a double count; in between, once it
 *   has not moved for STABLE_NS, the run is inconclusive.
 */
#define STABLE_NS (3 * NS)

static void
verify_wait(struct verify *v, PGconn **conn, const char *conninfo,
    uint64_t timeout_s)
{
	int64_t t0 = mono_ns(), deadline = t0 + (int64_t)timeout_s * NS;
	int64_t last = -1, since = t0;

	for (;;) {
		int64_t now = pg_events(conn, conninfo, v->error,
		    sizeof(v->error));

		if (now >= 0) {
			v->error[0] = '\0';
			v->after = now;
			v->counted = now - v->before;
			if (now != last) {
				last = now;
				since = mono_ns();
			}
			if (v->counted >= 0 &&
			    (uint64_t)v->counted >= v->expected) {
				if (v->unknown_batches == 0)
					break;
				if ((uint64_t)v->counted > v->expected +
				    v->unknown_events ||
				    mono_ns() - since >= STABLE_NS)
					break;
			}
		}
		if (stopping(STOP_VERIFYING)) {
			snprintf(v->error, sizeof(v->error), "interrupted");
			break;
		}
		if (mono_ns() >= deadline)
			break;
		sleep_until(mono_ns() + 200 * 1000000LL, STOP_VERIFYING);
	}
	v->settle_s = (double)(mono_ns() - t0) / 1e9;
	if (v->error[0] != '\0') {
		v->conclusive = 0;
		v->ok = 0;
	} else if (v->counted < 0 || (uint64_t)v->counted < v->expected) {
		v->conclusive = 1;	/* short: lost, or never flushed */
		v->ok = 0;
	} else if ((uint64_t)v->counted > v->expected + v->unknown_events) {
		v->conclusive = 1;	/* counted twice */
		v->ok = 0;
	} else if (v->unknown_batches > 0) {
		v->conclusive = 0;	/* within what may have been counted */
		v->ok = 0;
	} else {
		v->conclusive = 1;
		v->ok = 1;
	}
}

/* ------------------------------------------------------------- output */

static double
ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void
print_hist_text(FILE *out, const char *what, const struct lg_hist *h)
{
	fprintf(out, "%s: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  "
	    "mean %.3f  (ms, n=%" PRIu64 ")\n", what,
	    ms(lg_hist_quantile(h, 0.50)), ms(lg_hist_quantile(h, 0.90)),
	    ms(lg_hist_quantile(h, 0.99)), ms(lg_hist_quantile(h, 0.999)),
	    ms(lg_hist_max(h)), lg_hist_mean(h) / 1e6, lg_hist_count(h));
}

static void
print_hist_json(FILE *out, const char *name, const struct lg_hist *h)
{
	fprintf(out, "\"%s\":{\"count\":%" PRIu64 ",\"min\":%.4f,\"p50\":%.4f,"
	    "\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,"
	    "\"mean\":%.4f}", name, lg_hist_count(h), ms(lg_hist_min(h)),
	    ms(lg_hist_quantile(h, 0.50)), ms(lg_hist_quantile(h, 0.90)),
	    ms(lg_hist_quantile(h, 0.99)), ms(lg_hist_quantile(h, 0.999)),
	    ms(lg_hist_max(h)), lg_hist_mean(h) / 1e6);
}

static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

struct summary {
	struct tally t;
	uint64_t non200;
	double elapsed_s, events_per_s, batches_per_s;
	uint64_t acked;			/* events acknowledged while running */
	struct resend resend;		/* with --verify-pg */
	double slowest_at_s;		/* when the slowest ack was due */
	struct lg_hist *latency, *service;
};

static void
print_text(FILE *out, const struct config *cfg, const struct summary *s,
    const struct verify *v)
{
	const struct tally *t = &s->t;

	fprintf(out, "events/s %.0f  batches/s %.0f  p50 %.3g ms  p99 %.3g ms  "
	    "p99.9 %.3g ms  non-200: %" PRIu64 " (503: %" PRIu64 ")\n",
	    s->events_per_s, s->batches_per_s,
	    ms(lg_hist_quantile(s->latency, 0.50)),
	    ms(lg_hist_quantile(s->latency, 0.99)),
	    ms(lg_hist_quantile(s->latency, 0.999)), s->non200, t->s503);
	fprintf(out, "batches: sent %" PRIu64 "  answered 200: %" PRIu64
	    "  duplicate: %" PRIu64 "  no answer: %" PRIu64 "  behind "
	    "schedule: %" PRIu64 "  in %.2f s\n", t->sent, t->ok,
	    t->duplicates, t->transport_errors, t->behind, s->elapsed_s);
	fprintf(out, "events: sent %" PRIu64 "  accepted %" PRIu64
	    "  rejected %" PRIu64 "\n", t->events_sent, t->accepted,
	    t->rejected);
	if (s->non200 > 0)
		fprintf(out, "non-200: 400 %" PRIu64 "  401 %" PRIu64 "  403 %"
		    PRIu64 "  413 %" PRIu64 "  415 %" PRIu64 "  429 %" PRIu64
		    "  503 %" PRIu64 "  other %" PRIu64 "  bad BatchAck %"
		    PRIu64 "\n", t->s400, t->s401, t->s403, t->s413, t->s415,
		    t->s429, t->s503, t->s_other, t->bad_acks);
	if (t->ack_mismatch > 0)
		fprintf(out, "odd: %" PRIu64 " BatchAcks where accepted + "
		    "rejected != events in the batch\n", t->ack_mismatch);
	print_hist_text(out, cfg->rate > 0 ? "ack latency (from the due "
	    "time)" : "ack latency", s->latency);
	if (cfg->rate > 0)
		print_hist_text(out, "service time (from the send)",
		    s->service);
	if (lg_hist_count(s->latency) > 0)
		fprintf(out, "slowest ack: %.3f ms, due %.2f s into the run\n",
		    ms(lg_hist_max(s->latency)), s->slowest_at_s);
	if (t->first_problem[0] != '\0')
		fprintf(out, "first problem: %s\n", t->first_problem);
	if (!v->asked)
		return;
	if (s->resend.batches > 0)
		fprintf(out, "resent %" PRIu64 " batches of unknown outcome: "
		    "%" PRIu64 " events acknowledged, %" PRIu64 " of them "
		    "duplicate (kanald had them), %" PRIu64 " refused, %" PRIu64
		    " still unknown\n", s->resend.batches, s->resend.accepted,
		    s->resend.duplicates, s->resend.refused,
		    s->resend.unknown_batches);
	if (v->error[0] != '\0')
		fprintf(out, "verify-pg: INCONCLUSIVE: %s\n", v->error);
	else if (!v->conclusive)
		fprintf(out, "verify-pg: INCONCLUSIVE: %" PRIu64 " batches "
		    "(%" PRIu64 " events) never answered 200 even when sent "
		    "again; counted %" PRId64 ", acknowledged %" PRIu64 " (so "
		    "%" PRIu64 "..%" PRIu64 " would be right)\n",
		    v->unknown_batches, v->unknown_events, v->counted,
		    v->expected, v->expected, v->expected + v->unknown_events);
	else {
		char unknown[96] = "";

		if (v->unknown_events > 0)
			snprintf(unknown, sizeof(unknown), ", plus up to %"
			    PRIu64 " of unknown outcome", v->unknown_events);
		fprintf(out, "verify-pg: %s: counted %" PRId64 " (sum of events "
		    "%" PRId64 " -> %" PRId64 "), acknowledged %" PRIu64
		    "%s%s; waited %.1f s\n", v->ok ? "OK" : "MISMATCH",
		    v->counted, v->before, v->after, v->expected, unknown,
		    s->resend.accepted ? " (some after a resend)" : "",
		    v->settle_s);
	}
}

static void
print_json(FILE *out, const struct config *cfg, const struct summary *s,
    const struct verify *v)
{
	const struct tally *t = &s->t;

	fprintf(out, "{\"url\":");
	json_string(out, cfg->url);
	fprintf(out, ",\"connections\":%" PRIu64 ",\"batch\":%" PRIu64
	    ",\"rate\":%" PRIu64 ",\"duration_s\":%" PRIu64 ",\"pool\":%"
	    PRIu64 ",\"seed\":%" PRIu64 ",\"elapsed_s\":%.3f,"
	    "\"events_per_s\":%.1f,\"batches_per_s\":%.1f,"
	    "\"batches_sent\":%" PRIu64 ",\"batches_200\":%" PRIu64
	    ",\"duplicates\":%" PRIu64 ",\"events_sent\":%" PRIu64
	    ",\"events_accepted\":%" PRIu64 ",\"events_rejected\":%" PRIu64
	    ",\"non_200\":%" PRIu64 ",\"transport_errors\":%" PRIu64
	    ",\"behind_schedule\":%" PRIu64 ",\"ack_mismatch\":%" PRIu64
	    ",\"status\":{\"400\":%" PRIu64 ",\"401\":%" PRIu64 ",\"403\":%"
	    PRIu64 ",\"413\":%" PRIu64 ",\"415\":%" PRIu64 ",\"429\":%" PRIu64
	    ",\"503\":%" PRIu64 ",\"other\":%" PRIu64 ",\"bad_ack\":%" PRIu64
	    "},", cfg->connections, cfg->batch, cfg->rate, cfg->duration_s,
	    cfg->pool, cfg->seed, s->elapsed_s, s->events_per_s,
	    s->batches_per_s, t->sent, t->ok, t->duplicates, t->events_sent,
	    t->accepted, t->rejected, s->non200, t->transport_errors,
	    t->behind, t->ack_mismatch, t->s400, t->s401, t->s403, t->s413,
	    t->s415, t->s429, t->s503, t->s_other, t->bad_acks);
	print_hist_json(out, "latency_ms", s->latency);
	fputc(',', out);
	print_hist_json(out, "service_ms", s->service);
	fprintf(out, ",\"slowest_at_s\":%.3f", s->slowest_at_s);
	fprintf(out, ",\"first_problem\":");
	json_string(out, t->first_problem);
	if (v->asked) {
		fprintf(out, ",\"verify\":{\"ok\":%s,\"conclusive\":%s,"
		    "\"before\":%" PRId64 ",\"after\":%" PRId64 ",\"counted\":%"
		    PRId64 ",\"acknowledged\":%" PRIu64 ",\"resent_accepted\":%"
		    PRIu64 ",\"unknown_batches\":%" PRIu64 ",\"unknown_events\":%"
		    PRIu64 ",\"settle_s\":%.2f,\"error\":",
		    v->ok ? "true" : "false", v->conclusive ? "true" : "false",
		    v->before, v->after, v->counted, v->expected,
		    s->resend.accepted, v->unknown_batches, v->unknown_events,
		    v->settle_s);
		json_string(out, v->error);
		fputc('}', out);
	}
	fprintf(out, "}\n");
}

/* --------------------------------------------------------------- main */

static void
tally_add(struct tally *d, const struct tally *s)
{
	d->sent += s->sent;
	d->ok += s->ok;
	d->events_sent += s->events_sent;
	d->accepted += s->accepted;
	d->rejected += s->rejected;
	d->duplicates += s->duplicates;
	d->transport_errors += s->transport_errors;
	d->bad_acks += s->bad_acks;
	d->ack_mismatch += s->ack_mismatch;
	d->behind += s->behind;
	d->s400 += s->s400;
	d->s401 += s->s401;
	d->s403 += s->s403;
	d->s413 += s->s413;
	d->s415 += s->s415;
	d->s429 += s->s429;
	d->s503 += s->s503;
	d->s_other += s->s_other;
	if (d->first_problem[0] == '\0')
		memcpy(d->first_problem, s->first_problem,
		    sizeof(d->first_problem));
}

static int
parse_config(int argc, char **argv, struct config *cfg)
{
	const char *url = getenv("KANAL_URL"), *token = getenv("KANAL_TOKEN");
	const char *conns_s = "1", *batch_s = "500", *rate_s = "0";
	const char *duration_s = NULL, *max_s = "0", *pool_s = "64";
	const char *seed_s = "1", *verify = NULL, *vtimeout_s = "60";
	const char *citizens_s = "0";
	int json = 0, allow_remote = 0, r;
	const struct opt o[] = {
		{ "url", "URL", "kanald's address, http:// only: no https "
		  "(default $KANAL_URL, else " DEFAULT_URL ")", &url, NULL },
		{ "token", "TOKEN", "bearer token allowed every service "
		  "(default $KANAL_TOKEN)", &token, NULL },
		{ "connections", "N", "keep-alive connections, one thread each "
		  "(default 1)", &conns_s, NULL },
		{ "batch", "N", "events per batch (default 500)", &batch_s,
		  NULL },
		{ "rate", "EVENTS/S", "total events a second, spread over the "
		  "connections on an open-loop schedule; 0 (default): as fast "
		  "as possible", &rate_s, NULL },
		{ "duration", "SECONDS", "how long to send (required, 1..3600)",
		  &duration_s, NULL },
		{ "max-batches", "N", "stop after N batches in all (default 0: "
		  "no limit)", &max_s, NULL },
		{ "pool", "N", "distinct pre-encoded batches (default 64, at "
		  "least --connections)", &pool_s, NULL },
		{ "seed", "N", "random seed of the batch contents (default 1)",
		  &seed_s, NULL },
		{ "citizens", "N", "each event carries the citizen_ref of one "
		  "of N residents, drawn uniformly (default 0: none); for "
		  "kanald with a reach key", &citizens_s, NULL },
		{ "verify-pg", "CONNINFO", "check that sum(events) in "
		  "kanal.usage_hourly grows by exactly what was acknowledged",
		  &verify, NULL },
		{ "verify-timeout", "SECONDS", "how long to wait for the count "
		  "to settle (default 60)", &vtimeout_s, NULL },
		{ "json", NULL, "print one JSON object instead of the table",
		  NULL, &json },
		{ "allow-remote", NULL, "allow a URL that is not a loopback "
		  "address (never point this at production)", NULL,
		  &allow_remote },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanal-loadgen --duration SECONDS [--url URL] "
	    "[--token TOKEN] [--connections N] [--batch N] [--rate EVENTS/S] "
	    "...";

	memset(cfg, 0, sizeof(*cfg));
	r = opts_parse("kanal-loadgen", argc, argv, o, syn, "Sends realistic, pre-encoded "
	    "event batches to kanald over keep-alive connections for a\n"
	    "bounded time and reports events/s, batches/s, the "
	    "acknowledgement latency\n(p50/p90/p99/p99.9/max) and every answer "
	    "that was not 200. Each request has its\nown batch_id. With --rate "
	    "the schedule is open-loop: latency counts from when a\nrequest "
	    "was due, so queueing behind a slow answer is included.\n"
	    "Exit: 0 all answered 200 (and verified); 1 not; 2 usage; 3 "
	    "--verify-pg found\nthe database count != the acknowledged count.");
	if (r != 0)
		return r > 0 ? 1 : -1;
	if (duration_s == NULL) {
		fprintf(stderr, "kanal-loadgen: --duration is required (1..%d "
		    "seconds)\n", MAX_DURATION_S);
		return -1;
	}
	if (token == NULL || token[0] == '\0') {
		fprintf(stderr, "kanal-loadgen: no token: give --token or set "
		    "KANAL_TOKEN\n");
		return -1;
	}
	if (parse_u64(duration_s, 1, MAX_DURATION_S, &cfg->duration_s) == -1 ||
	    parse_u64(conns_s, 1, MAX_CONNECTIONS, &cfg->connections) == -1 ||
	    parse_u64(batch_s, 1, 100000, &cfg->batch) == -1 ||
	    parse_u64(rate_s, 0, 1000000000, &cfg->rate) == -1 ||
	    parse_u64(max_s, 0, UINT64_MAX, &cfg->max_batches) == -1 ||
	    parse_u64(pool_s, 1, 1000000, &cfg->pool) == -1 ||
	    parse_u64(seed_s, 0, UINT64_MAX, &cfg->seed) == -1 ||
	    parse_u64(citizens_s, 0, 10000000000ULL, &cfg->citizens) == -1 ||
	    parse_u64(vtimeout_s, 1, 3600, &cfg->verify_timeout_s) == -1) {
		fprintf(stderr, "kanal-loadgen: --duration is 1..%d, "
		    "--connections 1..%d, --batch 1..100000, --rate 0.."
		    "1000000000, --pool 1..1000000, --verify-timeout 1..3600, "
		    "--citizens 0..10000000000; "
		    "all whole numbers\n", MAX_DURATION_S, MAX_CONNECTIONS);
		return -1;
	}
	if (cfg->pool < cfg->connections)
		cfg->pool = cfg->connections;	/* a slot is one thread's */
	if (cfg->pool * cfg->batch > MAX_POOL_EVENTS) {
		fprintf(stderr, "kanal-loadgen: --pool x --batch is %" PRIu64
		    " events; at most %llu are kept encoded: use a smaller "
		    "--pool\n", cfg->pool * cfg->batch, MAX_POOL_EVENTS);
		return -1;
	}
	cfg->url = url != NULL && url[0] != '\0' ? url : DEFAULT_URL;
	if (strncmp(cfg->url, "https://", 8) == 0) {
		fprintf(stderr, "kanal-loadgen: %s: only http:// is spoken; "
		    "run the benchmark against a plain listener on loopback "
		    "(TLS would measure OpenSSL, not kanald)\n", cfg->url);
		return -1;
	}
	r = lg_url_is_loopback(cfg->url);
	if (r != 1 && !allow_remote) {
		fprintf(stderr, "kanal-loadgen: %s %s; only loopback targets "
		    "are allowed unless --allow-remote is given\n", cfg->url,
		    r == -1 ? "is not an http:// URL whose host resolves" :
		    "is not a loopback address");
		return -1;
	}
	if (cfg->batch > 10000)
		fprintf(stderr, "kanal-loadgen: note: kanald answers 400 to "
		    "batches over its max-batch-events (default 10000)\n");
	cfg->token = token;
	cfg->verify_pg = verify;
	cfg->json = json;
	return 0;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct run run;
	struct summary s;
	struct verify v;
	struct sigaction sa;
	PGconn *pg = NULL;
	uint64_t raw;
	int64_t now_ms, end, slowest = 0;
	size_t built = 0, started = 0;
	char err[512];
	int rc = 1, r;

	r = parse_config(argc, argv, &cfg);
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	memset(&run, 0, sizeof(run));
	memset(&s, 0, sizeof(s));
	memset(&v, 0, sizeof(v));
	run.cfg = &cfg;
	atomic_init(&run.next_seq, 0);
	atomic_init(&run.abort_start, 0);
	snprintf(run.headers, sizeof(run.headers), "Authorization: Bearer %s"
	    "\r\nContent-Type: application/x-protobuf\r\n", cfg.token);
	if (getrandom(&raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		fprintf(stderr, "kanal-loadgen: no randomness: %s\n",
		    strerror(errno));
		return 1;
	}
	run.run_id = raw & 0xffffffffffffULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Read the count first: a database we cannot read is a usage error. */
	if (cfg.verify_pg != NULL) {
		v.asked = 1;
		v.before = pg_events(&pg, cfg.verify_pg, err, sizeof(err));
		if (v.before < 0) {
			fprintf(stderr, "kanal-loadgen: --verify-pg: %s\n", err);
			PQfinish(pg);
			return EXIT_USAGE;
		}
	}

	run.pool = calloc((size_t)cfg.pool, sizeof(*run.pool));
	run.workers = calloc((size_t)cfg.connections, sizeof(*run.workers));
	s.latency = lg_hist_new();
	s.service = lg_hist_new();
	if (run.pool == NULL || run.workers == NULL || s.latency == NULL ||
	    s.service == NULL)
		goto nomem;
	now_ms = clock_wall_ms();
	for (; built < (size_t)cfg.pool; built++)
		if (lg_batch_build(&run.pool[built], cfg.seed, built,
		    (uint32_t)cfg.batch, now_ms, cfg.citizens) == -1)
			goto nomem;
	for (size_t i = 0; i < (size_t)cfg.connections; i++) {
		struct worker *w = &run.workers[i];

		w->run = &run;
		w->index = i;
		w->http = httpc_new(cfg.url, HTTP_TIMEOUT_MS, err, sizeof(err));
		if (w->http == NULL) {
			fprintf(stderr, "kanal-loadgen: %s\n", err);
			rc = EXIT_USAGE;
			goto out;
		}
		w->latency = lg_hist_new();
		w->service = lg_hist_new();
		if (w->latency == NULL || w->service == NULL)
			goto nomem;
	}
	if (cfg.rate > 0)
		run.interval_ns = (int64_t)((double)cfg.batch *
		    (double)cfg.connections * 1e9 / (double)cfg.rate);
	if (cfg.rate > 0 && run.interval_ns < 1)
		run.interval_ns = 1;
	if (!cfg.json) {
		char pace[64] = "as fast as possible";

		if (cfg.rate > 0)
			snprintf(pace, sizeof(pace), "%" PRIu64 " events/s",
			    cfg.rate);
		fprintf(stderr, "kanal-loadgen: %" PRIu64 " connection%s, %"
		    PRIu64 "-event batches, %s, %" PRIu64 " s, pool %" PRIu64
		    ", to %s\n", cfg.connections, cfg.connections == 1 ? "" :
		    "s", cfg.batch, pace, cfg.duration_s, cfg.pool, cfg.url);
	}
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.cond, NULL);
	for (; started < (size_t)cfg.connections; started++)
		if (pthread_create(&run.workers[started].thread, NULL,
		    worker_main, &run.workers[started]) != 0) {
			fprintf(stderr, "kanal-loadgen: cannot start thread "
			    "%zu\n", started);
			atomic_store(&run.abort_start, 1);
			break;
		}
	/* Every started worker is connected (or failed): start the clock. */
	pthread_mutex_lock(&run.lock);
	while (run.nready < started)
		pthread_cond_wait(&run.cond, &run.lock);
	run.start_ns = mono_ns() + 20 * 1000000LL;
	run.deadline_ns = run.start_ns + (int64_t)cfg.duration_s * NS;
	run.go = 1;
	pthread_cond_broadcast(&run.cond);
	pthread_mutex_unlock(&run.lock);
	for (size_t i = 0; i < started; i++)
		pthread_join(run.workers[i].thread, NULL);
	pthread_mutex_destroy(&run.lock);
	pthread_cond_destroy(&run.cond);
	if (atomic_load(&run.abort_start)) {
		fprintf(stderr, "kanal-loadgen: kanald did not answer on every "
		    "connection; nothing was sent\n");
		goto out;
	}

	end = run.start_ns;
	for (size_t i = 0; i < (size_t)cfg.connections; i++) {
		struct worker *w = &run.workers[i];

		tally_add(&s.t, &w->t);
		lg_hist_merge(s.latency, w->latency);
		lg_hist_merge(s.service, w->service);
		if (w->slowest_ns > slowest) {
			slowest = w->slowest_ns;
			s.slowest_at_s = (double)(w->slowest_at -
			    run.start_ns) / 1e9;
		}
		if (w->end_ns > end)
			end = w->end_ns;
		if (w->stop_ns > end)
			end = w->stop_ns;
	}
	s.elapsed_s = (double)(end - run.start_ns) / 1e9;
	s.non200 = s.t.sent - s.t.ok;
	s.events_per_s = s.elapsed_s > 0 ? (double)s.t.accepted / s.elapsed_s
	    : 0;
	s.batches_per_s = s.elapsed_s > 0 ? (double)s.t.ok / s.elapsed_s : 0;
	s.acked = s.t.accepted;

	if (v.asked) {
		resolve_pending(&run, cfg.verify_timeout_s, &s.resend);
		v.unknown_batches = s.resend.unknown_batches;
		v.unknown_events = s.resend.unknown_events;
		v.expected = s.acked + s.resend.accepted;
		verify_wait(&v, &pg, cfg.verify_pg, cfg.verify_timeout_s);
	}
	if (cfg.json)
		print_json(stdout, &cfg, &s, &v);
	else
		print_text(stdout, &cfg, &s, &v);
	fflush(stdout);
	if (v.asked && v.conclusive && !v.ok)
		rc = EXIT_MISCOUNT;
	else if (s.non200 > 0 || (v.asked && !v.ok) ||
	    stopping(STOP_SENDING))
		rc = 1;
	else
		rc = 0;
	goto out;
nomem:
	fprintf(stderr, "kanal-loadgen: out of memory\n");
	rc = 1;
out:
	for (size_t i = 0; run.workers != NULL && i < (size_t)cfg.connections;
	    i++) {
		httpc_free(run.workers[i].http);
		lg_hist_free(run.workers[i].latency);
		lg_hist_free(run.workers[i].service);
		free(run.workers[i].pending);
	}
	for (size_t i = 0; i < built; i++)
		lg_batch_clear(&run.pool[i]);
	free(run.pool);
	free(run.workers);
	lg_hist_free(s.latency);
	lg_hist_free(s.service);
	PQfinish(pg);
	return rc;
}
