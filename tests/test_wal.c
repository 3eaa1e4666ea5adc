/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_wal: the write-ahead log on real files. Round trip and positions;
 * segment roll; going live from a checkpoint; removal of old segments;
 * recovery: a torn tail cut at every byte offset of the last record,
 * garbage after the last record, flipped bits and damaged headers refused
 * without changing anything, a half-created segment set aside; the lock,
 * the collector id, a full WAL; and the read-only reader's damage report.
 *
 * Every test works in its own directory under $KANAL_TEST_TMP (or /tmp),
 * all removed by the group teardown. Done callbacks run on one event base,
 * driven with EVLOOP_ONCE until they have fired, with a deadline; a
 * persistent 10 ms timer keeps the loop from returning at once while the
 * writer thread is busy. Nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "record.h"
#include "wal.h"

#define COLLECTOR "test-collector"
#define BIG (1ull << 30)	/* a segment or WAL size never reached */
#define DEADLINE_MS 60000

/* ------------------------------------------------------------ fixtures */

static char tmpbase[1024];
static struct event_base *base;
static struct event *tick;

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int
setup_group(void **state)
{
	const char *b = getenv("KANAL_TEST_TMP");
	struct timeval tv = { 0, 10000 };

	(void)state;
	log_init("test_wal", LOG_LEVEL_ERR);
	if (b == NULL || b[0] == '\0')
		b = "/tmp";
	if (mkdir(b, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(tmpbase, sizeof(tmpbase), "%s/test_wal.XXXXXX", b);
	if (mkdtemp(tmpbase) == NULL)
		return -1;
	if (evthread_use_pthreads() == -1)
		return -1;
	base = event_base_new();
	if (base == NULL)
		return -1;
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	if (tick == NULL || event_add(tick, &tv) == -1)
		return -1;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown_group(void **state)
{
	(void)state;
	event_free(tick);
	event_base_free(base);
	return nftw(tmpbase, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A fresh directory for one WAL. */
static void
fresh_dir(char *out, size_t len)
{
	snprintf(out, len, "%s/w.XXXXXX", tmpbase);
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp %s: %s", out, strerror(errno));
}

/* ------------------------------------------------------- file helpers */

static void
seg_path(char *out, size_t len, const char *dir, uint64_t first)
{
	snprintf(out, len, "%s/%016" PRIx64 ".wal", dir, first);
}

static long long
file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return (long long)st.st_size;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd == -1 || fstat(fd, &st) == -1)
		fail_msg("%s: %s", path, strerror(errno));
	*len = (size_t)st.st_size;
	p = malloc(*len + 1);
	assert_non_null(p);
	assert_int_equal(pread(fd, p, *len, 0), (ssize_t)*len);
	close(fd);
	return p;
}

static void
write_all_to(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
append_to(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
flip_bit(const char *path, uint64_t off, int bit)
{
	uint8_t b;
	int fd = open(path, O_RDWR);

	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static int
is_segment_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n == 20 && strcmp(e->d_name + 16, ".wal") == 0 &&
	    strspn(e->d_name, "0123456789abcdef") == 16;
}

/* First positions of the segment files in dir, sorted. */
static size_t
list_segments(const char *dir, uint64_t *firsts, size_t max)
{
	struct dirent **v;
	int n = scandir(dir, &v, is_segment_name, alphasort);

	if (n < 0)
		fail_msg("scandir %s: %s", dir, strerror(errno));
	if ((size_t)n > max)
		fail_msg("%d segments in %s, room for %zu", n, dir, max);
	for (int i = 0; i < n; i++) {
		firsts[i] = strtoull(v[i]->d_name, NULL, 16);
		free(v[i]);
	}
	free(v);
	return (size_t)n;
}

/* Every file of a directory, to prove that nothing was changed. */
struct snap {
	size_t n;
	char name[32][256];
	size_t len[32];
	uint8_t *bytes[32];
};

static int
is_not_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static void
snap_take(const char *dir, struct snap *s)
{
	struct dirent **v;
	int n = scandir(dir, &v, is_not_dot, alphasort);
	char path[PATH_MAX + 64];

	if (n < 0 || n > 32)
		fail_msg("scandir %s: %d", dir, n);
	s->n = (size_t)n;
	for (int i = 0; i < n; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "%s", v[i]->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, v[i]->d_name);
		s->bytes[i] = read_all(path, &s->len[i]);
		free(v[i]);
	}
	free(v);
}

static void
snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->bytes[i]);
	s->n = 0;
}

static void
assert_snap_equal(const struct snap *a, const struct snap *b,
    const char *what)
{
	if (a->n != b->n)
		fail_msg("%s: %zu files before, %zu after", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->name[i], b->name[i]) != 0)
			fail_msg("%s: %s became %s", what, a->name[i],
			    b->name[i]);
		if (a->len[i] != b->len[i] ||
		    memcmp(a->bytes[i], b->bytes[i], a->len[i]) != 0)
			fail_msg("%s: %s was changed (%zu -> %zu bytes)", what,
			    a->name[i], a->len[i], b->len[i]);
	}
}

/* ----------------------------------------------------- record contents */

/* Record i: its type and payload bytes are a function of i. */
static uint8_t
type_of(int i)
{
	return (uint8_t)(i * 37 + 1);
}

static void
gen(uint8_t *p, size_t len, int i)
{
	uint32_t x = (uint32_t)i * 2654435761u + 12345;

	for (size_t j = 0; j < len; j++) {
		x = x * 1103515245u + 12345;
		p[j] = (uint8_t)(x >> 16);
	}
}

/* Records as read or applied, copied (the originals are short-lived). */
struct rec_copy {
	uint64_t start, end;
	uint8_t type;
	uint8_t *p;
	size_t len;
	int null;		/* before(arg, NULL) */
};

struct recs {
	pthread_mutex_t mu;
	struct rec_copy *v;
	size_t n, cap;
	int nulls;
	int refuse_at;		/* before: return -1 on this call (1-based) */
	int calls;
};

static void
recs_init(struct recs *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

static void
recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].p);
	free(r->v);
	pthread_mutex_destroy(&r->mu);
	memset(r, 0, sizeof(*r));
}

static void
recs_push(struct recs *r, const struct wal_record *rec)
{
	struct rec_copy *c;

	pthread_mutex_lock(&r->mu);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	c = &r->v[r->n++];
	memset(c, 0, sizeof(*c));
	if (rec == NULL) {
		c->null = 1;
		r->nulls++;
	} else {
		c->start = rec->start;
		c->end = rec->end;
		c->type = rec->type;
		c->len = rec->len;
		c->p = malloc(rec->len + 1);
		assert_non_null(c->p);
		memcpy(c->p, rec->payload, rec->len);
	}
	pthread_mutex_unlock(&r->mu);
}

static size_t
recs_count(struct recs *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/*
 * Waits (5 s deadline) until n records were applied, then checks that it
 * is exactly n: the writer applies a group just after its answers.
 */
static void
wait_applied(struct recs *r, size_t n)
{
	for (int i = 0; i < 500 && recs_count(r) < n; i++)
		usleep(10000);
	assert_int_equal(recs_count(r), n);
}

static void
collect(void *arg, const struct wal_record *rec)
{
	recs_push(arg, rec);
}

static int
collect_before(void *arg, const struct wal_record *rec)
{
	struct recs *r = arg;

	recs_push(r, rec);
	r->calls++;
	return r->calls == r->refuse_at ? -1 : 0;
}

/* c is record i with a payload of len bytes. */
static void
assert_rec(const struct rec_copy *c, int i, size_t len)
{
	uint8_t *want = malloc(len + 1);

	assert_non_null(want);
	gen(want, len, i);
	if (c->null)
		fail_msg("record %d: got the end-of-segment call", i);
	if (c->type != type_of(i) || c->len != len ||
	    memcmp(c->p, want, len) != 0)
		fail_msg("record %d: type %u len %zu, want type %u len %zu (or "
		    "the bytes differ)", i, c->type, c->len, type_of(i), len);
	if (c->end - c->start != WAL_RECORD_HEADER + len)
		fail_msg("record %d: start %" PRIu64 " end %" PRIu64 " for %zu "
		    "bytes", i, c->start, c->end, len);
	free(want);
}

/* Records follow one another with no gap, the first at start. */
static void
assert_contiguous(const struct recs *r, uint64_t start)
{
	uint64_t pos = start;

	for (size_t k = 0; k < r->n; k++) {
		if (r->v[k].null)
			continue;
		if (r->v[k].start != pos)
			fail_msg("record %zu starts at %" PRIu64 ", want %" PRIu64,
			    k, r->v[k].start, pos);
		pos = r->v[k].end;
	}
}

/* --------------------------------------------------------- WAL helpers */

struct acks {
	int calls, ok, failed;
	int next;		/* index the next call should carry */
	int out_of_order;
};

struct ack {
	struct acks *all;
	int index;
};

static void
on_done(void *arg, int ok)
{
	struct ack *a = arg;

	a->all->calls++;
	if (ok)
		a->all->ok++;
	else
		a->all->failed++;
	if (a->index != a->all->next)
		a->all->out_of_order++;
	a->all->next = a->index + 1;
}

/* Runs the loop until *count reaches want, with a deadline. */
static void
run_until(const int *count, int want)
{
	uint64_t deadline = mono_ms() + DEADLINE_MS;

	while (*count < want) {
		if (mono_ms() > deadline)
			fail_msg("%d of %d done callbacks after %d ms", *count,
			    want, DEADLINE_MS);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

static struct wal *
open_wal_as(const char *dir, const char *collector, uint64_t segment_size,
    uint64_t max_size)
{
	struct wal_config cfg;
	char err[2048];
	struct wal *w;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = dir;
	cfg.collector_id = collector;
	cfg.segment_size = segment_size;
	cfg.max_size = max_size;
	w = wal_open(&cfg, err, sizeof(err));
	if (w == NULL)
		fail_msg("wal_open %s: %s", dir, err);
	return w;
}

static struct wal *
open_wal(const char *dir, uint64_t segment_size, uint64_t max_size)
{
	return open_wal_as(dir, COLLECTOR, segment_size, max_size);
}

/* wal_open that must fail; its message goes into err. */
static void
open_fails(const char *dir, const char *collector, char *err, size_t len)
{
	struct wal_config cfg;
	struct wal *w;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = dir;
	cfg.collector_id = collector;
	cfg.segment_size = BIG;
	cfg.max_size = BIG;
	err[0] = '\0';
	w = wal_open(&cfg, err, len);
	if (w != NULL) {
		wal_close(w);
		fail_msg("wal_open %s succeeded", dir);
	}
	assert_true(err[0] != '\0');
}

static void
start(struct wal *w, struct recs *applied)
{
	assert_int_equal(wal_start(w, base, collect, applied), 0);
}

/* Appends record i (len bytes) and waits until it is durable. */
static void
append_sync(struct wal *w, int i, size_t len)
{
	struct acks all = { 0, 0, 0, i, 0 };
	struct ack a = { &all, i };
	uint8_t *p = malloc(len + 1);

	assert_non_null(p);
	gen(p, len, i);
	assert_int_equal(wal_append(w, type_of(i), p, len, on_done, &a), 0);
	free(p);
	assert_int_equal(all.calls, 0);
	run_until(&all.calls, 1);
	assert_int_equal(all.ok, 1);
}

/* Appends records first..first+n-1 of len bytes, each on its own sync. */
static void
append_n(struct wal *w, int first, int n, size_t len)
{
	for (int i = first; i < first + n; i++)
		append_sync(w, i, len);
}

/* All records of the WAL in dir (opened and closed here). */
static void
scan_dir(const char *dir, struct recs *out)
{
	struct wal *w = open_wal(dir, BIG, BIG);
	char err[1024];

	recs_init(out);
	if (wal_scan(w, 0, collect, out, err, sizeof(err)) == -1)
		fail_msg("wal_scan: %s", err);
	wal_close(w);
}

/* A WAL in dir with n records of len bytes, indices 0..n-1; closed. */
static void
make_wal(const char *dir, int n, size_t len, uint64_t segment_size)
{
	struct wal *w = open_wal(dir, segment_size, BIG);

	start(w, NULL);
	append_n(w, 0, n, len);
	wal_close(w);
}

static void
assert_contains(const char *s, const char *part, const char *what)
{
	if (strstr(s, part) == NULL)
		fail_msg("%s: \"%s\" not in \"%s\"", what, part, s);
}

/* ------------------------------------------------------------- fresh */

static void
test_a_fresh_wal_starts_at_a_clock_position(void **state)
{
	char top[PATH_MAX], dir[PATH_MAX + 16], path[PATH_MAX + 64];
	uint64_t before = wall_ms(), after, firsts[4];
	struct wal_stats st;
	struct recs r;
	struct wal *w;
	char err[256];

	(void)state;
	fresh_dir(top, sizeof(top));
	/* wal_open makes the directory and its parents. */
	snprintf(dir, sizeof(dir), "%s/a/b", top);
	w = open_wal(dir, BIG, BIG);
	after = wall_ms();
	wal_get_stats(w, &st);
	assert_true(st.first >= (before - 60000) << 20);
	assert_true(st.first <= (after + 60000) << 20);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.bytes, WAL_SEGMENT_HEADER);
	assert_int_equal(st.durable, st.first);
	assert_int_equal(st.appended, st.first);
	assert_int_equal(st.live, 0);
	assert_int_equal(st.full, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(list_segments(dir, firsts, 4), 1);
	assert_int_equal(firsts[0], st.first);
	seg_path(path, sizeof(path), dir, st.first);
	assert_int_equal(file_size(path), WAL_SEGMENT_HEADER);

	recs_init(&r);
	assert_int_equal(wal_scan(w, 0, collect, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, 0);
	recs_free(&r);
	wal_close(w);
	wal_close(NULL);
}

/* ---------------------------------------------------------- round trip */

static const size_t round_trip_lens[] = {
	0, 1, 8, 9, 100, 4096, 65537, 0, 3, 300000, 127, 128, 129,
};
#define NROUND (sizeof(round_trip_lens) / sizeof(round_trip_lens[0]))

static void
test_round_trip_keeps_order_types_payloads_and_positions(void **state)
{
	char dir[PATH_MAX];
	struct acks all = { 0, 0, 0, 0, 0 };
	struct ack a[NROUND];
	struct wal_stats st;
	struct recs r;
	uint64_t first, end;
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, BIG, BIG);
	wal_get_stats(w, &st);
	first = st.first;
	start(w, NULL);
	/* All at once: group commit. Never answered inside wal_append. */
	for (size_t i = 0; i < NROUND; i++) {
		uint8_t *p = malloc(round_trip_lens[i] + 1);
		assert_non_null(p);
		gen(p, round_trip_lens[i], (int)i);
		a[i].all = &all;
		a[i].index = (int)i;
		assert_int_equal(wal_append(w, type_of((int)i), p,
		    round_trip_lens[i], on_done, &a[i]), 0);
		free(p);
		assert_int_equal(all.calls, 0);
	}
	run_until(&all.calls, (int)NROUND);
	assert_int_equal(all.ok, NROUND);
	assert_int_equal(all.out_of_order, 0);
	end = first;
	for (size_t i = 0; i < NROUND; i++)
		end += WAL_RECORD_HEADER + round_trip_lens[i];
	wal_get_stats(w, &st);
	assert_int_equal(st.durable, end);
	assert_int_equal(st.appended, end);
	assert_int_equal(st.first, first);
	assert_true(st.syncs >= 1);
	/* Every group commit's fdatasync is in the /metrics histogram. */
	assert_int_equal(st.sync_us.count, st.syncs);
	assert_int_equal(histogram_cumulative(&st.sync_us, HISTOGRAM_BUCKETS),
	    st.syncs);
	assert_int_equal(st.sync_us.sum_us, st.sync_us_total);
	assert_int_equal(st.live, 0);
	wal_close(w);

	scan_dir(dir, &r);
	assert_int_equal(r.n, NROUND);
	assert_contiguous(&r, first);
	for (size_t i = 0; i < NROUND; i++)
		assert_rec(&r.v[i], (int)i, round_trip_lens[i]);
	assert_int_equal(r.v[NROUND - 1].end, end);
	recs_free(&r);

	/* Reopened: the positions go on where they stopped. */
	w = open_wal(dir, BIG, BIG);
	wal_get_stats(w, &st);
	assert_int_equal(st.durable, end);
	assert_int_equal(st.first, first);
	start(w, NULL);
	append_sync(w, (int)NROUND, 10);
	wal_close(w);
	scan_dir(dir, &r);
	assert_int_equal(r.n, NROUND + 1);
	assert_contiguous(&r, first);
	assert_rec(&r.v[NROUND], (int)NROUND, 10);
	recs_free(&r);
}

static void
test_scan_starts_at_the_first_record_at_or_after_from(void **state)
{
	char dir[PATH_MAX];
	struct recs all, r;
	struct wal *w;
	char err[1024];

	(void)state;
	fresh_dir(dir, sizeof(dir));
	make_wal(dir, 5, 20, BIG);
	scan_dir(dir, &all);
	assert_int_equal(all.n, 5);

	w = open_wal(dir, BIG, BIG);
	recs_init(&r);
	assert_int_equal(wal_scan(w, all.v[2].start, collect, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.n, 3);
	assert_rec(&r.v[0], 2, 20);
	recs_free(&r);
	recs_init(&r);
	assert_int_equal(wal_scan(w, all.v[2].start + 1, collect, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.n, 2);
	assert_rec(&r.v[0], 3, 20);
	recs_free(&r);
	recs_init(&r);
	assert_int_equal(wal_scan(w, all.v[4].end, collect, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.n, 0);
	recs_free(&r);
	wal_close(w);
	recs_free(&all);
}

static void
test_close_writes_and_answers_what_was_appended(void **state)
{
	char dir[PATH_MAX];
	struct acks all = { 0, 0, 0, 0, 0 };
	struct ack a[3];
	uint8_t p[50];
	struct recs r;
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, BIG, BIG);
	start(w, NULL);
	for (int i = 0; i < 3; i++) {
		a[i].all = &all;
		a[i].index = i;
		gen(p, sizeof(p), i);
		assert_int_equal(wal_append(w, type_of(i), p, sizeof(p), on_done,
		    &a[i]), 0);
	}
	/* The loop never ran: wal_close answers them itself. */
	wal_close(w);
	assert_int_equal(all.calls, 3);
	assert_int_equal(all.ok, 3);
	assert_int_equal(all.out_of_order, 0);
	scan_dir(dir, &r);
	assert_int_equal(r.n, 3);
	for (int i = 0; i < 3; i++)
		assert_rec(&r.v[i], i, sizeof(p));
	recs_free(&r);
}

static void
test_oversized_and_late_appends_are_refused(void **state)
{
	static const uint8_t one[1] = { 0 };
	char dir[PATH_MAX];
	struct acks all = { 0, 0, 0, 0, 0 };
	struct ack a = { &all, 0 };
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, BIG, BIG);
	start(w, NULL);
	errno = 0;
	assert_int_equal(wal_append(w, 1, one, (size_t)WAL_RECORD_MAX + 1,
	    on_done, &a), -1);
	assert_int_equal(errno, EMSGSIZE);
	wal_stop(w);
	errno = 0;
	assert_int_equal(wal_append(w, 1, one, 1, on_done, &a), -1);
	assert_int_equal(errno, EIO);
	wal_close(w);
	assert_int_equal(all.calls, 0);
}

/* -------------------------------------------------------- segment roll */

static void
test_segments_roll_and_are_named_by_their_first_position(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	uint64_t firsts[64];
	uint64_t total = 0;
	struct wal_stats st;
	struct recs r;
	size_t nseg, k;
	struct wal *w;
	const int n = 60;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, 4096, BIG);
	start(w, NULL);
	append_n(w, 0, n, 500);
	wal_get_stats(w, &st);
	nseg = list_segments(dir, firsts, 64);
	assert_true(nseg >= 5);
	assert_int_equal(st.segments, nseg);
	assert_int_equal(st.first, firsts[0]);
	for (size_t i = 0; i < nseg; i++) {
		size_t len;
		uint8_t *h;
		uint64_t hf = 0;

		seg_path(path, sizeof(path), dir, firsts[i]);
		h = read_all(path, &len);
		assert_true(len >= WAL_SEGMENT_HEADER);
		assert_memory_equal(h, "KANALWAL", 8);
		for (int b = 7; b >= 0; b--)
			hf = hf << 8 | h[16 + b];
		assert_int_equal(hf, firsts[i]);
		assert_string_equal((const char *)h + 24, COLLECTOR);
		/* Only the newest may be under the segment size. */
		if (i + 1 < nseg)
			assert_true(len >= 4096);
		total += len;
		free(h);
	}
	assert_int_equal(st.bytes, total);
	wal_close(w);

	/* Reopened: every record, each segment starting at a record. */
	w = open_wal(dir, 4096, BIG);
	wal_get_stats(w, &st);
	assert_int_equal(st.segments, nseg);
	assert_int_equal(st.bytes, total);
	wal_close(w);
	scan_dir(dir, &r);
	assert_int_equal(r.n, n);
	assert_contiguous(&r, firsts[0]);
	k = 0;
	for (int i = 0; i < n; i++) {
		assert_rec(&r.v[i], i, 500);
		if (k < nseg && r.v[i].start == firsts[k])
			k++;
	}
	assert_int_equal(k, nseg);
	recs_free(&r);
}

/* ------------------------------------------------------------- go live */

static void
test_records_are_applied_only_after_go_live_from_the_checkpoint(void **state)
{
	char dir[PATH_MAX], err[1024];
	struct recs scanned, applied;
	struct wal_stats st;
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	make_wal(dir, 6, 40, BIG);

	w = open_wal(dir, BIG, BIG);
	recs_init(&scanned);
	assert_int_equal(wal_scan(w, 0, collect, &scanned, err, sizeof(err)),
	    0);
	assert_int_equal(scanned.n, 6);
	recs_init(&applied);
	start(w, &applied);
	/* Durable and acknowledged, but not applied before go_live. */
	append_n(w, 6, 2, 40);
	assert_int_equal(recs_count(&applied), 0);
	wal_get_stats(w, &st);
	assert_int_equal(st.live, 0);

	/* The checkpoint covers records 0..2. */
	if (wal_go_live(w, scanned.v[2].end, err, sizeof(err)) == -1)
		fail_msg("wal_go_live: %s", err);
	wal_get_stats(w, &st);
	assert_int_equal(st.live, 1);
	assert_int_equal(recs_count(&applied), 5);
	assert_contiguous(&applied, scanned.v[3].start);
	for (int i = 3; i < 8; i++)
		assert_rec(&applied.v[i - 3], i, 40);

	/* From now on each record is applied as it becomes durable. */
	append_sync(w, 8, 0);
	wait_applied(&applied, 6);
	append_n(w, 9, 3, 1000);
	wait_applied(&applied, 9);
	assert_contiguous(&applied, scanned.v[3].start);
	assert_rec(&applied.v[5], 8, 0);
	for (int i = 9; i < 12; i++)
		assert_rec(&applied.v[i - 3], i, 1000);
	wal_close(w);
	recs_free(&applied);
	recs_free(&scanned);
}

enum from_kind { FROM_ZERO, FROM_ONE, FROM_FIRST, FROM_END_OF_1, FROM_END };

static const struct go_live_case {
	const char *name;
	enum from_kind from;
	int first_applied;	/* index of the first record applied */
} go_live_cases[] = {
	{ "a checkpoint of 0 (none yet) applies everything", FROM_ZERO, 0 },
	{ "a checkpoint below the first segment applies everything", FROM_ONE,
	    0 },
	{ "a checkpoint at the first position applies everything", FROM_FIRST,
	    0 },
	{ "a checkpoint at a segment boundary applies that segment on",
	    FROM_END_OF_1, 2 },
	{ "a checkpoint at the end applies nothing", FROM_END, 4 },
};

static void
test_go_live_applies_what_follows_the_checkpoint(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(go_live_cases) / sizeof(go_live_cases[0]);
	    c++) {
		const struct go_live_case *k = &go_live_cases[c];
		char dir[PATH_MAX], err[1024];
		struct recs scanned, applied;
		struct wal_stats st;
		uint64_t from = 0;
		struct wal *w;

		/*
		 * 42-byte records in 200-byte segments: records 0-1, 2-3,
		 * and 4, appended live, in a third segment.
		 */
		fresh_dir(dir, sizeof(dir));
		make_wal(dir, 4, 33, 200);
		w = open_wal(dir, 200, BIG);
		recs_init(&scanned);
		assert_int_equal(wal_scan(w, 0, collect, &scanned, err,
		    sizeof(err)), 0);
		wal_get_stats(w, &st);
		assert_int_equal(st.segments, 2);
		switch (k->from) {
		case FROM_ZERO: from = 0; break;
		case FROM_ONE: from = 1; break;
		case FROM_FIRST: from = st.first; break;
		case FROM_END_OF_1: from = scanned.v[1].end; break;
		case FROM_END: from = st.durable; break;
		}
		recs_init(&applied);
		start(w, &applied);
		if (wal_go_live(w, from, err, sizeof(err)) == -1)
			fail_msg("%s: wal_go_live: %s", k->name, err);
		if (recs_count(&applied) != (size_t)(4 - k->first_applied))
			fail_msg("%s: %zu records applied", k->name,
			    recs_count(&applied));
		for (int i = k->first_applied; i < 4; i++)
			assert_rec(&applied.v[i - k->first_applied], i, 33);
		append_sync(w, 4, 33);
		wait_applied(&applied, (size_t)(5 - k->first_applied));
		assert_rec(&applied.v[4 - k->first_applied], 4, 33);
		assert_contiguous(&applied, k->first_applied < 4 ?
		    scanned.v[k->first_applied].start : st.durable);
		wal_get_stats(w, &st);
		assert_int_equal(st.segments, 3);
		wal_close(w);
		recs_free(&applied);
		recs_free(&scanned);
	}
}

static void
test_go_live_on_a_fresh_wal_applies_new_records(void **state)
{
	char dir[PATH_MAX], err[1024];
	struct recs applied;
	struct wal_stats st;
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, BIG, BIG);
	wal_get_stats(w, &st);
	recs_init(&applied);
	start(w, &applied);
	/* An old checkpoint from a log that was thrown away. */
	if (wal_go_live(w, st.first / 2, err, sizeof(err)) == -1)
		fail_msg("wal_go_live: %s", err);
	assert_int_equal(recs_count(&applied), 0);
	append_n(w, 0, 3, 7);
	wait_applied(&applied, 3);
	assert_contiguous(&applied, st.first);
	wal_close(w);
	recs_free(&applied);
}

enum bad_from { PAST_END, FAR_PAST_END, INSIDE_PAYLOAD, INSIDE_HEADER,
    BEFORE_END_OF_RECORD };

static const struct go_live_fail_case {
	const char *name;
	enum bad_from from;
	const char *says;
} go_live_fail_cases[] = {
	{ "a checkpoint one byte past the end is refused", PAST_END, "ahead" },
	{ "a checkpoint far past the end is refused", FAR_PAST_END, "ahead" },
	{ "a checkpoint inside a record's payload is refused", INSIDE_PAYLOAD,
	    "record boundary" },
	{ "a checkpoint inside a record's header is refused", INSIDE_HEADER,
	    "record boundary" },
	{ "a checkpoint one byte before a record's end is refused",
	    BEFORE_END_OF_RECORD, "record boundary" },
};

static void
test_go_live_from_a_position_not_in_this_wal_fails(void **state)
{
	(void)state;
	for (size_t c = 0;
	    c < sizeof(go_live_fail_cases) / sizeof(go_live_fail_cases[0]);
	    c++) {
		const struct go_live_fail_case *k = &go_live_fail_cases[c];
		char dir[PATH_MAX], err[1024];
		struct recs scanned, applied;
		struct wal_stats st;
		uint64_t from = 0;
		struct wal *w;

		fresh_dir(dir, sizeof(dir));
		make_wal(dir, 4, 33, BIG);
		w = open_wal(dir, BIG, BIG);
		recs_init(&scanned);
		assert_int_equal(wal_scan(w, 0, collect, &scanned, err,
		    sizeof(err)), 0);
		wal_get_stats(w, &st);
		switch (k->from) {
		case PAST_END: from = st.durable + 1; break;
		case FAR_PAST_END: from = st.durable << 1; break;
		case INSIDE_PAYLOAD: from = scanned.v[2].start + 20; break;
		case INSIDE_HEADER: from = scanned.v[2].start + 4; break;
		case BEFORE_END_OF_RECORD: from = scanned.v[2].end - 1; break;
		}
		recs_init(&applied);
		start(w, &applied);
		err[0] = '\0';
		if (wal_go_live(w, from, err, sizeof(err)) != -1)
			fail_msg("%s: went live", k->name);
		assert_contains(err, k->says, k->name);
		assert_int_equal(recs_count(&applied), 0);
		wal_get_stats(w, &st);
		assert_int_equal(st.live, 0);
		wal_close(w);
		recs_free(&applied);
		recs_free(&scanned);
	}
}

/* -------------------------------------------------------------- removal */

/* A WAL of n 500-byte records in 4 KiB segments, started; firsts filled. */
static struct wal *
several_segments(char *dir, size_t dirlen, int n, uint64_t *firsts,
    size_t *nseg)
{
	struct wal *w;

	fresh_dir(dir, dirlen);
	w = open_wal(dir, 4096, BIG);
	start(w, NULL);
	append_n(w, 0, n, 500);
	*nseg = list_segments(dir, firsts, 64);
	assert_true(*nseg >= 4);
	return w;
}

static uint64_t
seg_bytes(const char *dir, uint64_t first)
{
	char path[PATH_MAX + 64];

	seg_path(path, sizeof(path), dir, first);
	return (uint64_t)file_size(path);
}

static void
test_remove_before_removes_only_segments_wholly_before(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	uint64_t firsts[64], left[64], freed;
	struct wal_stats st0, st;
	struct recs seen, r;
	size_t nseg, k;
	int rec_index = 0, seg = 0;
	struct wal *w;
	const int n = 40;

	(void)state;
	w = several_segments(dir, sizeof(dir), n, firsts, &nseg);
	wal_get_stats(w, &st0);

	/* A position inside segment 2: segments 0 and 1 are wholly before. */
	recs_init(&seen);
	freed = seg_bytes(dir, firsts[0]) + seg_bytes(dir, firsts[1]);
	assert_int_equal(wal_remove_before(w, firsts[2] + 1, collect_before,
	    &seen), 2);
	/* Each record of segment 0, NULL, each of segment 1, NULL. */
	assert_int_equal(seen.nulls, 2);
	for (k = 0; k < seen.n; k++) {
		if (seen.v[k].null) {
			seg++;
			assert_true(k + 1 == seen.n ||
			    seen.v[k + 1].start == firsts[seg]);
			continue;
		}
		assert_true(seen.v[k].start >= firsts[seg]);
		assert_true(seen.v[k].end <= firsts[seg + 1]);
		assert_rec(&seen.v[k], rec_index++, 500);
	}
	assert_int_equal(seen.v[seen.n - 1].null, 1);
	assert_int_equal(seen.v[seen.n - 2].end, firsts[2]);
	recs_free(&seen);
	wal_get_stats(w, &st);
	assert_int_equal(st.segments, nseg - 2);
	assert_int_equal(st.bytes, st0.bytes - freed);
	assert_int_equal(st.first, firsts[2]);
	assert_int_equal(list_segments(dir, left, 64), nseg - 2);
	assert_int_equal(left[0], firsts[2]);
	seg_path(path, sizeof(path), dir, firsts[0]);
	assert_int_equal(file_size(path), -1);

	/* Just short of segment 2's end: it stays. */
	assert_int_equal(wal_remove_before(w, firsts[3] - 1, NULL, NULL), 0);
	/* Exactly its end: it goes. */
	assert_int_equal(wal_remove_before(w, firsts[3], NULL, NULL), 1);
	/* Everything: all but the newest go. */
	assert_int_equal(wal_remove_before(w, UINT64_MAX, NULL, NULL),
	    (int)nseg - 4);
	wal_get_stats(w, &st);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.first, firsts[nseg - 1]);
	assert_int_equal(st.bytes, seg_bytes(dir, firsts[nseg - 1]));
	assert_int_equal(wal_remove_before(w, UINT64_MAX, NULL, NULL), 0);
	assert_int_equal(list_segments(dir, left, 64), 1);
	/* Appends go on. */
	append_sync(w, n, 500);
	wal_close(w);

	/* Reopened: the scan starts at the new first position. */
	scan_dir(dir, &r);
	assert_true(r.n >= 2);
	assert_int_equal(r.v[0].start, firsts[nseg - 1]);
	assert_contiguous(&r, firsts[nseg - 1]);
	assert_rec(&r.v[r.n - 1], n, 500);
	for (size_t i = 0; i < r.n; i++)
		assert_rec(&r.v[i], n + 1 - (int)r.n + (int)i, 500);
	recs_free(&r);
}

static const struct refuse_case {
	const char *name;
	int refuse_seg;		/* refuse during this segment (0-based)... */
	int at_end;		/* ...at its NULL call, else at its first record */
	int removed;
} refuse_cases[] = {
	{ "refusing a segment's first record keeps it", 0, 0, 0 },
	{ "refusing at a segment's end (NULL) keeps it", 0, 1, 0 },
	{ "refusing the second segment keeps it and the later ones", 1, 1, 1 },
};

static void
test_a_before_callback_returning_minus_one_keeps_the_segment(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(refuse_cases) / sizeof(refuse_cases[0]);
	    c++) {
		const struct refuse_case *k = &refuse_cases[c];
		char dir[PATH_MAX];
		uint64_t firsts[64], left[64], size0;
		struct wal_stats st0, st;
		struct recs seen;
		size_t nseg;
		int calls = 0;
		struct wal *w;

		w = several_segments(dir, sizeof(dir), 40, firsts, &nseg);
		wal_get_stats(w, &st0);
		size0 = seg_bytes(dir, firsts[0]);
		/* Calls for the segments before: their records and NULL. */
		for (int s = 0; s < k->refuse_seg; s++)
			calls += (int)((firsts[s + 1] - firsts[s]) /
			    (WAL_RECORD_HEADER + 500)) + 1;
		if (k->at_end)
			calls += (int)((firsts[k->refuse_seg + 1] -
			    firsts[k->refuse_seg]) / (WAL_RECORD_HEADER + 500)) +
			    1;
		else
			calls += 1;
		recs_init(&seen);
		seen.refuse_at = calls;
		if (wal_remove_before(w, UINT64_MAX, collect_before, &seen) !=
		    k->removed)
			fail_msg("%s: removed another number of segments",
			    k->name);
		assert_int_equal(seen.calls, calls);
		wal_get_stats(w, &st);
		assert_int_equal(st.segments, nseg - (size_t)k->removed);
		assert_int_equal(list_segments(dir, left, 64),
		    nseg - (size_t)k->removed);
		assert_int_equal(left[0], firsts[k->removed]);
		assert_int_equal(st.first, firsts[k->removed]);
		assert_int_equal(st.bytes, st0.bytes -
		    (k->removed ? size0 : 0));
		recs_free(&seen);
		wal_close(w);
	}
}

/* ------------------------------------------------------------ torn tail */

static const struct torn_case {
	const char *name;
	int records;		/* written, all of len bytes */
	size_t len;
	uint64_t segment_size;
} torn_cases[] = {
	{ "the last of several records in one segment", 4, 60, BIG },
	{ "the only record of the newest segment", 3, 200, 256 },
	{ "a last record of a single byte", 2, 1, BIG },
	{ "a last record with no payload", 2, 0, BIG },
};

static void
test_a_torn_tail_is_cut_at_every_byte_offset_of_the_last_record(
    void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(torn_cases) / sizeof(torn_cases[0]); c++) {
		const struct torn_case *k = &torn_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64];
		uint64_t firsts[64];
		size_t nseg, full_len, rec_off, keep;
		uint8_t *full;
		struct recs r;

		fresh_dir(dir, sizeof(dir));
		make_wal(dir, k->records, k->len, k->segment_size);
		nseg = list_segments(dir, firsts, 64);
		if (k->segment_size != BIG)
			assert_int_equal(nseg, k->records);
		seg_path(path, sizeof(path), dir, firsts[nseg - 1]);
		full = read_all(path, &full_len);
		rec_off = full_len - (WAL_RECORD_HEADER + k->len);
		assert_true(rec_off >= WAL_SEGMENT_HEADER);
		keep = rec_off;

		for (size_t cut = rec_off; cut < full_len; cut++) {
			struct wal_stats st;
			struct wal *w;

			write_all_to(path, full, cut);
			w = open_wal(dir, k->segment_size, BIG);
			if ((size_t)file_size(path) != keep)
				fail_msg("%s, cut at %zu: %lld bytes left, want "
				    "%zu", k->name, cut, file_size(path), keep);
			wal_get_stats(w, &st);
			assert_int_equal(st.segments, nseg);
			wal_close(w);
			scan_dir(dir, &r);
			if (r.n != (size_t)k->records - 1)
				fail_msg("%s, cut at %zu: %zu records", k->name,
				    cut, r.n);
			for (int i = 0; i < k->records - 1; i++)
				assert_rec(&r.v[i], i, k->len);
			recs_free(&r);

			/* Appending after the cut works. */
			w = open_wal(dir, k->segment_size, BIG);
			start(w, NULL);
			append_sync(w, 1000, 17);
			wal_close(w);
			scan_dir(dir, &r);
			assert_int_equal(r.n, k->records);
			assert_contiguous(&r, firsts[0]);
			assert_rec(&r.v[k->records - 1], 1000, 17);
			recs_free(&r);
		}
		free(full);
	}
}

enum garbage { ZEROS, RANDOM, RECORD_CUT_SHORT, RECORD_BAD_CRC };

static const struct garbage_case {
	const char *name;
	enum garbage kind;
	size_t len;
} garbage_cases[] = {
	{ "one zero byte after the last record is cut", ZEROS, 1 },
	{ "eight zero bytes after the last record are cut", ZEROS, 8 },
	{ "nine zero bytes after the last record are cut", ZEROS, 9 },
	{ "a page of zeros after the last record is cut", ZEROS, 4096 },
	{ "random bytes after the last record are cut", RANDOM, 1000 },
	{ "a few random bytes after the last record are cut", RANDOM, 5 },
	{ "a record cut short after the last record is cut", RECORD_CUT_SHORT,
	    60 },
	{ "a whole record with a bad CRC at the end is cut", RECORD_BAD_CRC,
	    100 },
};

static void
test_garbage_after_the_last_record_is_cut_as_a_torn_tail(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(garbage_cases) / sizeof(garbage_cases[0]);
	    c++) {
		const struct garbage_case *k = &garbage_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64];
		uint64_t firsts[4];
		uint8_t *g = calloc(1, k->len + WAL_RECORD_HEADER);
		long long size;
		struct recs r;
		struct wal *w;

		assert_non_null(g);
		fresh_dir(dir, sizeof(dir));
		make_wal(dir, 3, 50, BIG);
		assert_int_equal(list_segments(dir, firsts, 4), 1);
		seg_path(path, sizeof(path), dir, firsts[0]);
		size = file_size(path);
		switch (k->kind) {
		case ZEROS:
			break;
		case RANDOM:
			gen(g, k->len, 99);
			break;
		case RECORD_CUT_SHORT:
			/* Claims 200 bytes; 60 follow. */
			g[0] = 200;
			gen(g + WAL_RECORD_HEADER, k->len - WAL_RECORD_HEADER,
			    5);
			break;
		case RECORD_BAD_CRC:
			g[0] = (uint8_t)(k->len - WAL_RECORD_HEADER);
			g[4] = 0x12;
			g[8] = RECORD_TYPE_BATCH;
			gen(g + WAL_RECORD_HEADER, k->len - WAL_RECORD_HEADER,
			    6);
			break;
		}
		append_to(path, g, k->len);
		free(g);

		w = open_wal(dir, BIG, BIG);
		if (file_size(path) != size)
			fail_msg("%s: %lld bytes, want %lld", k->name,
			    file_size(path), size);
		start(w, NULL);
		append_sync(w, 3, 50);
		wal_close(w);
		scan_dir(dir, &r);
		assert_int_equal(r.n, 4);
		assert_contiguous(&r, firsts[0]);
		for (int i = 0; i < 4; i++)
			assert_rec(&r.v[i], i, 50);
		recs_free(&r);
	}
}

/* --------------------------------------------------------------- damage */

enum where { OLDER, NEWEST_MIDDLE };

static const struct flip_case {
	const char *name;
	enum where where;
	size_t at;		/* byte of the record */
	int bit;
	const char *what;
} flip_cases[] = {
	{ "a flipped payload bit in an older segment is damage", OLDER,
	    WAL_RECORD_HEADER + 250, 3, "CRC" },
	{ "a flipped CRC bit in an older segment is damage", OLDER, 5, 0,
	    "CRC" },
	{ "a flipped type bit in an older segment is damage", OLDER, 8, 7,
	    "CRC" },
	{ "a flipped low length bit in an older segment is damage", OLDER, 0,
	    0, "" },
	{ "a flipped high length bit in an older segment is damage", OLDER, 3,
	    6, "length" },
	{ "a flipped payload bit mid-newest-segment is damage, not a tail",
	    NEWEST_MIDDLE, WAL_RECORD_HEADER, 0, "CRC" },
	{ "a flipped CRC bit mid-newest-segment is damage, not a tail",
	    NEWEST_MIDDLE, 7, 4, "CRC" },
	{ "a flipped low length bit mid-newest-segment is damage, not a tail",
	    NEWEST_MIDDLE, 0, 0, "" },
	{ "a flipped high length bit mid-newest-segment is damage, not a tail",
	    NEWEST_MIDDLE, 3, 7, "length" },
};

/*
 * Three segments, the newest with four records: 500-byte records in
 * 4 KiB segments, appended until the third segment has started.
 */
static void
three_segments(char *dir, size_t dirlen, uint64_t firsts[3])
{
	struct wal_stats st;
	struct wal *w;
	int i = 0;

	fresh_dir(dir, dirlen);
	w = open_wal(dir, 4096, BIG);
	start(w, NULL);
	do {
		append_sync(w, i++, 500);
		wal_get_stats(w, &st);
	} while (st.segments < 3);
	append_n(w, i, 3, 500);
	wal_close(w);
	assert_int_equal(list_segments(dir, firsts, 3), 3);
}

static void
test_a_flipped_bit_is_damage_and_nothing_is_changed(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(flip_cases) / sizeof(flip_cases[0]); c++) {
		const struct flip_case *k = &flip_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64], err[2048], off[64];
		uint64_t firsts[3], rec_off;
		struct snap before, after;

		three_segments(dir, sizeof(dir), firsts);
		if (k->where == OLDER) {
			/* The second record of the oldest segment. */
			seg_path(path, sizeof(path), dir, firsts[0]);
			rec_off = WAL_SEGMENT_HEADER + WAL_RECORD_HEADER + 500;
		} else {
			/* The first record of the newest, three after it. */
			seg_path(path, sizeof(path), dir, firsts[2]);
			assert_int_equal(file_size(path), WAL_SEGMENT_HEADER +
			    4 * (WAL_RECORD_HEADER + 500));
			rec_off = WAL_SEGMENT_HEADER;
		}
		flip_bit(path, rec_off + k->at, k->bit);
		snap_take(dir, &before);

		open_fails(dir, COLLECTOR, err, sizeof(err));
		assert_contains(err, path, k->name);
		snprintf(off, sizeof(off), "offset %" PRIu64 " ", rec_off);
		assert_contains(err, off, k->name);
		assert_contains(err, "kanalctl wal check", k->name);
		assert_contains(err, k->what, k->name);

		snap_take(dir, &after);
		assert_snap_equal(&before, &after, k->name);
		snap_free(&before);
		snap_free(&after);
	}
}

static void
test_a_torn_tail_is_not_cut_when_an_older_segment_is_damaged(void **state)
{
	static const uint8_t garbage[100] = { 0xff, 0xff, 0xff, 0x7f };
	char dir[PATH_MAX], path[PATH_MAX + 64], err[2048];
	uint64_t firsts[3];
	struct snap before, after;

	(void)state;
	three_segments(dir, sizeof(dir), firsts);
	seg_path(path, sizeof(path), dir, firsts[2]);
	append_to(path, garbage, sizeof(garbage));
	seg_path(path, sizeof(path), dir, firsts[1]);
	flip_bit(path, WAL_SEGMENT_HEADER + WAL_RECORD_HEADER + 10, 1);
	snap_take(dir, &before);

	open_fails(dir, COLLECTOR, err, sizeof(err));
	assert_contains(err, path, "older damage");
	snap_take(dir, &after);
	assert_snap_equal(&before, &after, "older damage with a torn tail");
	snap_free(&before);
	snap_free(&after);
}

enum header_damage { BAD_MAGIC, BAD_HEADER_CRC, NEWER_VERSION,
    NAME_MISMATCH, GAP };

static const struct header_case {
	const char *name;
	enum header_damage kind;
	int segment;		/* which of the three */
	const char *what;
} header_cases[] = {
	{ "a damaged magic in an older segment is refused", BAD_MAGIC, 0,
	    "magic" },
	{ "a damaged header CRC in the newest segment is refused",
	    BAD_HEADER_CRC, 2, "CRC" },
	{ "a header of a newer format version is refused", NEWER_VERSION, 1,
	    "version 2" },
	{ "a header whose first position is not its name is refused",
	    NAME_MISMATCH, 2, "first position" },
	{ "a missing segment (a gap) is refused", GAP, 1, "gap" },
};

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
crc32c_ref(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

static void
test_a_damaged_segment_header_is_refused(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(header_cases) / sizeof(header_cases[0]);
	    c++) {
		const struct header_case *k = &header_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64], err[2048];
		uint64_t firsts[3];
		struct snap before, after;
		uint8_t *h;
		size_t len;

		three_segments(dir, sizeof(dir), firsts);
		seg_path(path, sizeof(path), dir, firsts[k->segment]);
		h = read_all(path, &len);
		switch (k->kind) {
		case BAD_MAGIC:
			h[3] ^= 0x20;
			break;
		case BAD_HEADER_CRC:
			h[125] ^= 0x01;
			break;
		case NEWER_VERSION:
			put_le32(h + 8, 2);
			put_le32(h + 124, crc32c_ref(h, 124));
			break;
		case NAME_MISMATCH:
			h[16] ^= 0x01;
			put_le32(h + 124, crc32c_ref(h, 124));
			break;
		case GAP:
			break;
		}
		if (k->kind == GAP)
			assert_int_equal(unlink(path), 0);
		else
			write_all_to(path, h, len);
		free(h);
		snap_take(dir, &before);

		open_fails(dir, COLLECTOR, err, sizeof(err));
		assert_contains(err, k->what, k->name);
		assert_contains(err, "kanalctl wal check", k->name);
		snap_take(dir, &after);
		assert_snap_equal(&before, &after, k->name);
		snap_free(&before);
		snap_free(&after);
	}
}

/*
 * Found by tests/fuzz/fuzz_wal: a segment named, and with a header saying,
 * first position 2^64 - 16 held a record whose end wrapped past 2^64, so
 * positions went backwards (a seek to that record read the first one).
 * Positions are PostgreSQL bigints: a segment whose records would pass
 * 2^63 is damage, refused with nothing changed.
 */
static void
test_a_segment_whose_positions_would_pass_2_63_is_refused(void **state)
{
	static const uint64_t firsts[] = {
		UINT64_C(0xfffffffffffffff0),	/* the fuzzer's: wraps */
		UINT64_C(0x7ffffffffffffff0),	/* passes 2^63, no wrap */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(firsts) / sizeof(firsts[0]); c++) {
		char dir[PATH_MAX], path[PATH_MAX + 64], err[2048];
		uint8_t seg[WAL_SEGMENT_HEADER + WAL_RECORD_HEADER + 20];
		uint8_t *rec = seg + WAL_SEGMENT_HEADER;
		struct wal_reader *rd;
		struct wal_record r;
		struct wal_damage d;
		struct snap before, after;
		uint32_t crc;

		memset(seg, 0, sizeof(seg));
		memcpy(seg, "KANALWAL", 8);
		put_le32(seg + 8, 1);
		put_le32(seg + 12, WAL_SEGMENT_HEADER);
		put_le32(seg + 16, (uint32_t)firsts[c]);
		put_le32(seg + 20, (uint32_t)(firsts[c] >> 32));
		memcpy(seg + 24, COLLECTOR, strlen(COLLECTOR));
		put_le32(seg + 124, crc32c_ref(seg, 124));
		put_le32(rec, 20);
		rec[8] = RECORD_TYPE_BATCH;
		memset(rec + WAL_RECORD_HEADER, 'x', 20);
		/* The record CRC covers bytes 0..3, 8 and the payload. */
		{
			uint8_t covered[4 + 1 + 20];
			memcpy(covered, rec, 4);
			memcpy(covered + 4, rec + 8, 1 + 20);
			crc = crc32c_ref(covered, sizeof(covered));
		}
		put_le32(rec + 4, crc);
		fresh_dir(dir, sizeof(dir));
		seg_path(path, sizeof(path), dir, firsts[c]);
		write_all_to(path, seg, sizeof(seg));
		/* As in a directory kanald has used: wal_open adds no file. */
		snprintf(path, sizeof(path), "%s/LOCK", dir);
		write_all_to(path, "", 0);

		rd = wal_reader_open(dir, err, sizeof(err));
		assert_non_null(rd);
		assert_int_equal(wal_reader_next(rd, &r, &d), -1);
		assert_contains(d.what, "out of range", "reader");
		assert_false(d.tail);
		wal_reader_free(rd);

		snap_take(dir, &before);
		open_fails(dir, COLLECTOR, err, sizeof(err));
		assert_contains(err, "out of range", "wal_open");
		assert_contains(err, "kanalctl wal check", "wal_open");
		snap_take(dir, &after);
		assert_snap_equal(&before, &after, "position out of range");
		snap_free(&before);
		snap_free(&after);
	}
}

static const struct half_created_case {
	const char *name;
	size_t bytes;
	int alone;		/* the only segment of the directory */
} half_created_cases[] = {
	{ "a newest segment with 50 bytes of header is set aside", 50, 0 },
	{ "an empty newest segment is set aside", 0, 0 },
	{ "a newest segment one byte short of a header is set aside", 127, 0 },
	{ "a lone segment with 50 bytes of header is set aside", 50, 1 },
};

static void
test_a_half_created_newest_segment_is_set_aside(void **state)
{
	(void)state;
	for (size_t c = 0;
	    c < sizeof(half_created_cases) / sizeof(half_created_cases[0]); c++) {
		const struct half_created_case *k = &half_created_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64], torn[PATH_MAX + 80];
		char old[PATH_MAX + 64];
		uint64_t firsts[4], end;
		uint8_t header[WAL_SEGMENT_HEADER];
		struct wal_stats st;
		struct recs r;
		struct wal *w;
		int nrec = k->alone ? 0 : 3;

		fresh_dir(dir, sizeof(dir));
		w = open_wal(dir, BIG, BIG);
		start(w, NULL);
		append_n(w, 0, nrec, 70);
		wal_get_stats(w, &st);
		end = st.durable;
		wal_close(w);
		assert_int_equal(list_segments(dir, firsts, 4), 1);
		seg_path(old, sizeof(old), dir, firsts[0]);
		{
			size_t len;
			uint8_t *p = read_all(old, &len);
			memcpy(header, p, WAL_SEGMENT_HEADER);
			free(p);
		}
		if (k->alone)
			assert_int_equal(unlink(old), 0);
		/* The header of a segment whose creation was cut short. */
		seg_path(path, sizeof(path), dir, end);
		write_all_to(path, header, k->bytes);
		w = open_wal(dir, BIG, BIG);
		/* Set aside as NAME.torn-<unix time>, never over another. */
		{
			glob_t g;
			char pat[sizeof(torn)];
			snprintf(pat, sizeof(pat), "%s.torn-*", path);
			if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc != 1)
				fail_msg("%s: no single %s", k->name, pat);
			snprintf(torn, sizeof(torn), "%s", g.gl_pathv[0]);
			globfree(&g);
		}
		if (file_size(torn) != (long long)k->bytes)
			fail_msg("%s: %s has %lld bytes", k->name, torn,
			    file_size(torn));
		wal_get_stats(w, &st);
		if (k->alone) {
			/* A new log, at a new clock position. */
			assert_true(st.first >= end);
			assert_int_equal(st.segments, 1);
		} else {
			assert_int_equal(file_size(path), -1);
			assert_int_equal(st.durable, end);
			assert_int_equal(st.first, firsts[0]);
		}
		start(w, NULL);
		append_sync(w, nrec, 70);
		wal_close(w);
		scan_dir(dir, &r);
		assert_int_equal(r.n, nrec + 1);
		for (int i = 0; i <= nrec; i++)
			assert_rec(&r.v[i], i, 70);
		if (!k->alone)
			assert_contiguous(&r, firsts[0]);
		recs_free(&r);
	}
}

/* ----------------------------------------------------- lock, collector */

static void
test_a_wal_of_another_collector_is_refused(void **state)
{
	char dir[PATH_MAX], err[2048];
	struct snap before, after;
	struct wal *w;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal_as(dir, "kanal-bandung-1", BIG, BIG);
	start(w, NULL);
	append_sync(w, 0, 10);
	wal_close(w);
	snap_take(dir, &before);

	open_fails(dir, "kanal-bandung-2", err, sizeof(err));
	assert_contains(err, "\"kanal-bandung-1\"", "collector");
	assert_contains(err, "\"kanal-bandung-2\"", "collector");
	assert_contains(err, dir, "collector");
	snap_take(dir, &after);
	assert_snap_equal(&before, &after, "collector");
	snap_free(&before);
	snap_free(&after);

	w = open_wal_as(dir, "kanal-bandung-1", BIG, BIG);
	wal_close(w);

	/* The header holds 63 bytes of it and a NUL. */
	open_fails(dir, "kanal-bandung-1-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxx", err, sizeof(err));
	assert_contains(err, "too long", "collector");
}

static void
test_a_second_open_of_the_same_directory_is_refused(void **state)
{
	char dir[PATH_MAX], err[2048];
	struct wal *w, *w2;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, BIG, BIG);
	open_fails(dir, COLLECTOR, err, sizeof(err));
	assert_contains(err, "in use", "lock");
	assert_contains(err, dir, "lock");
	/* Also while it is running. */
	start(w, NULL);
	append_sync(w, 0, 5);
	open_fails(dir, COLLECTOR, err, sizeof(err));
	assert_contains(err, "in use", "lock");
	wal_close(w);

	w2 = open_wal(dir, BIG, BIG);
	wal_close(w2);
}

/* ------------------------------------------------------------- WAL full */

static void
test_a_full_wal_refuses_appends_until_segments_are_removed(void **state)
{
	char dir[PATH_MAX];
	struct acks all = { 0, 0, 0, 0, 0 };
	struct ack a = { &all, 0 };
	uint8_t p[200];
	struct wal_stats st;
	struct recs r;
	struct wal *w;
	int accepted = 0, rc = 0;
	const uint64_t max = 4096;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	w = open_wal(dir, 1024, max);
	start(w, NULL);
	for (int i = 0; i < 100; i++) {
		wal_get_stats(w, &st);
		gen(p, sizeof(p), i);
		errno = 0;
		a.index = i;
		rc = wal_append(w, type_of(i), p, sizeof(p), on_done, &a);
		if (rc == -1)
			break;
		/* Taken only while it fits. */
		assert_true(st.bytes + WAL_RECORD_HEADER + sizeof(p) <= max);
		run_until(&all.calls, i + 1);
		assert_int_equal(all.ok, i + 1);
		accepted++;
	}
	assert_int_equal(rc, -1);
	assert_int_equal(errno, ENOSPC);
	assert_true(accepted > 0);
	wal_get_stats(w, &st);
	assert_int_equal(st.full, 1);
	assert_true(st.bytes + WAL_RECORD_HEADER + sizeof(p) > max);
	/* Refused again, and its done callback is never called. */
	assert_int_equal(wal_append(w, 1, p, sizeof(p), on_done, &a), -1);
	assert_int_equal(errno, ENOSPC);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(all.calls, accepted);

	/* The checkpoint moved on: old segments go, appends are taken. */
	assert_true(st.segments >= 2);
	assert_true(wal_remove_before(w, st.durable, NULL, NULL) >= 1);
	/* Not full any more at once: /readyz must not wait for an append. */
	wal_get_stats(w, &st);
	assert_int_equal(st.full, 0);
	append_sync(w, accepted, sizeof(p));
	wal_get_stats(w, &st);
	assert_int_equal(st.full, 0);
	wal_close(w);

	scan_dir(dir, &r);
	assert_true(r.n >= 1);
	assert_rec(&r.v[r.n - 1], accepted, sizeof(p));
	recs_free(&r);
}

/* ----------------------------------------------------------- the reader */

enum reader_damage { CLEAN, TORN_HEADER, TORN_PAYLOAD, FLIP_NEWEST_MIDDLE,
    FLIP_OLDER, HALF_CREATED };

static const struct reader_case {
	const char *name;
	enum reader_damage kind;
	int segment;		/* where the damage is */
	uint64_t rec_in_seg;	/* index of the damaged record in it */
	int tail;
	const char *what;
} reader_cases[] = {
	{ "a clean WAL reads to the end", CLEAN, 0, 0, 0, "" },
	{ "a record header cut short in the newest segment is a tail",
	    TORN_HEADER, 2, 3, 1, "cut short" },
	{ "a payload cut short in the newest segment is a tail",
	    TORN_PAYLOAD, 2, 3, 1, "past the end" },
	{ "a flipped bit mid-newest-segment is damage, not a tail",
	    FLIP_NEWEST_MIDDLE, 2, 1, 0, "CRC mismatch" },
	{ "a flipped bit in an older segment is damage, not a tail",
	    FLIP_OLDER, 0, 2, 0, "CRC mismatch" },
	{ "a newest segment with half a header is a tail at offset 0",
	    HALF_CREATED, 3, 0, 1, "header incomplete" },
};

static void
test_the_reader_describes_damage(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(reader_cases) / sizeof(reader_cases[0]);
	    c++) {
		const struct reader_case *k = &reader_cases[c];
		char dir[PATH_MAX], path[PATH_MAX + 64], err[256];
		uint64_t firsts[4], off, pos;
		struct wal_record rec;
		struct wal_damage d;
		struct wal_reader *rd;
		struct recs all;
		size_t nseg = 3, n = 0, len;
		uint8_t *p;
		int got;

		three_segments(dir, sizeof(dir), firsts);
		scan_dir(dir, &all);
		off = WAL_SEGMENT_HEADER + k->rec_in_seg *
		    (WAL_RECORD_HEADER + 500);
		pos = k->segment < 3 ? firsts[k->segment] + (off -
		    WAL_SEGMENT_HEADER) : all.v[all.n - 1].end;
		if (k->segment < 3)
			seg_path(path, sizeof(path), dir, firsts[k->segment]);
		else
			seg_path(path, sizeof(path), dir, pos);
		switch (k->kind) {
		case CLEAN:
			break;
		case TORN_HEADER:
		case TORN_PAYLOAD:
			p = read_all(path, &len);
			assert_int_equal(len, off + WAL_RECORD_HEADER + 500);
			write_all_to(path, p, off + (k->kind == TORN_HEADER ?
			    5 : WAL_RECORD_HEADER + 499));
			free(p);
			break;
		case FLIP_NEWEST_MIDDLE:
		case FLIP_OLDER:
			flip_bit(path, off + WAL_RECORD_HEADER + 77, 2);
			break;
		case HALF_CREATED: {
			static const uint8_t half[50] = "KANALWAL";
			write_all_to(path, half, sizeof(half));
			nseg = 4;
			off = 0;
			break;
		}
		}

		rd = wal_reader_open(dir, err, sizeof(err));
		if (rd == NULL)
			fail_msg("%s: wal_reader_open: %s", k->name, err);
		assert_int_equal(wal_reader_segments(rd), nseg);
		while ((got = wal_reader_next(rd, &rec, &d)) == 1) {
			assert_true(n < all.n);
			assert_int_equal(rec.start, all.v[n].start);
			assert_int_equal(rec.end, all.v[n].end);
			n++;
		}
		assert_string_equal(wal_reader_collector(rd), COLLECTOR);
		if (k->kind == CLEAN) {
			assert_int_equal(got, 0);
			assert_int_equal(n, all.n);
		} else {
			if (got != -1)
				fail_msg("%s: no damage reported", k->name);
			assert_string_equal(d.segment, path);
			assert_int_equal(d.offset, off);
			assert_int_equal(d.position, pos);
			assert_contains(d.what, k->what, k->name);
			if (d.tail != k->tail)
				fail_msg("%s: tail %d", k->name, d.tail);
			/* Every record before the damage, none after. */
			for (size_t i = 0; i < n; i++)
				assert_true(all.v[i].end <= pos);
			assert_true(n == all.n || all.v[n].start == pos ||
			    k->kind == HALF_CREATED);
			/* The walk stops at the damage. */
			assert_int_equal(wal_reader_next(rd, &rec, &d), 0);
		}
		wal_reader_free(rd);
		recs_free(&all);
	}
	wal_reader_free(NULL);
}

static void
test_the_reader_of_an_empty_directory_finds_nothing(void **state)
{
	char dir[PATH_MAX], err[256];
	struct wal_reader *rd;
	struct wal_record rec;
	struct wal_damage d;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	rd = wal_reader_open(dir, err, sizeof(err));
	assert_non_null(rd);
	assert_int_equal(wal_reader_segments(rd), 0);
	assert_string_equal(wal_reader_collector(rd), "");
	assert_int_equal(wal_reader_next(rd, &rec, &d), 0);
	wal_reader_free(rd);

	/* A directory that does not exist is an error with its name. */
	strcat(dir, "/nope");
	err[0] = '\0';
	assert_null(wal_reader_open(dir, err, sizeof(err)));
	assert_contains(err, dir, "missing directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_fresh_wal_starts_at_a_clock_position),
		cmocka_unit_test(
		    test_round_trip_keeps_order_types_payloads_and_positions),
		cmocka_unit_test(
		    test_scan_starts_at_the_first_record_at_or_after_from),
		cmocka_unit_test(test_close_writes_and_answers_what_was_appended),
		cmocka_unit_test(test_oversized_and_late_appends_are_refused),
		cmocka_unit_test(
		    test_segments_roll_and_are_named_by_their_first_position),
		cmocka_unit_test(
		    test_records_are_applied_only_after_go_live_from_the_checkpoint),
		cmocka_unit_test(test_go_live_applies_what_follows_the_checkpoint),
		cmocka_unit_test(test_go_live_on_a_fresh_wal_applies_new_records),
		cmocka_unit_test(test_go_live_from_a_position_not_in_this_wal_fails),
		cmocka_unit_test(
		    test_remove_before_removes_only_segments_wholly_before),
		cmocka_unit_test(
		    test_a_before_callback_returning_minus_one_keeps_the_segment),
		cmocka_unit_test(
		    test_a_torn_tail_is_cut_at_every_byte_offset_of_the_last_record),
		cmocka_unit_test(
		    test_garbage_after_the_last_record_is_cut_as_a_torn_tail),
		cmocka_unit_test(
		    test_a_flipped_bit_is_damage_and_nothing_is_changed),
		cmocka_unit_test(
		    test_a_torn_tail_is_not_cut_when_an_older_segment_is_damaged),
		cmocka_unit_test(test_a_damaged_segment_header_is_refused),
		cmocka_unit_test(
		    test_a_segment_whose_positions_would_pass_2_63_is_refused),
		cmocka_unit_test(test_a_half_created_newest_segment_is_set_aside),
		cmocka_unit_test(test_a_wal_of_another_collector_is_refused),
		cmocka_unit_test(
		    test_a_second_open_of_the_same_directory_is_refused),
		cmocka_unit_test(
		    test_a_full_wal_refuses_appends_until_segments_are_removed),
		cmocka_unit_test(test_the_reader_describes_damage),
		cmocka_unit_test(test_the_reader_of_an_empty_directory_finds_nothing),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
