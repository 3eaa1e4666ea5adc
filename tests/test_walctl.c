/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_walctl: `kanalctl wal check`, `check --repair` and `dump`, run as
 * the real binary ($KANALCTL) on WAL directories written by the daemon's
 * own writer (wal_open, wal_append) or, for what the writer never makes,
 * by hand from the format at the top of daemon/wal.c, and then damaged by
 * hand: a torn tail, a flipped CRC bit in an older segment, a damaged
 * segment header, a record that passes its CRC but does not decode.
 *
 * A repaired directory must check clean, keep every byte it had (in the
 * segments or their quarantine files) and open with wal_open, as kanald
 * does at start-up, with the records before the damage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "crc32c.h"
#include "record.h"
#include "wal.h"

#define COLLECTOR "walctl-test"
#define NREC 6
#define EVENTS_PER_BATCH 2
/* 2026-05-28T20:26:40.123Z; batch i is received i seconds later. */
#define RECEIVED_MS 1780000000123LL
/* 2026-05-28T20:10:00.000Z; batch i's events happen i minutes later. */
#define OCCURRED_MS 1779999000000LL
#define OUT_MAX 65536

/* ------------------------------------------------------------ fixture */

struct fx {
	char root[256];		/* removed at the end */
	char dir[300];		/* the WAL directory: root/wal */
	char out[OUT_MAX];	/* the last run's stdout */
	char err[OUT_MAX];	/* and stderr */
	/* What the writer wrote. */
	uint64_t start[NREC], end[NREC];
	size_t len;		/* every record's payload length */
	size_t nsegs;
	char seg[NREC][400];	/* segment paths, oldest first */
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("KANAL_TEST_TMP");

	assert_non_null(fx);
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(fx->root, sizeof(fx->root), "%s/walctl-XXXXXX", base);
	assert_non_null(mkdtemp(fx->root));
	snprintf(fx->dir, sizeof(fx->dir), "%s/wal", fx->root);
	*state = fx;
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
teardown(void **state)
{
	struct fx *fx = *state;

	nftw(fx->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* ---------------------------------------------------------- kanalctl */

static void
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f == NULL)
		return;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/*
 * Runs $KANALCTL with the NULL-terminated arguments; its stdout and stderr
 * land in fx->out and fx->err. Returns the exit status (-1: no exit).
 */
static int
ctl(struct fx *fx, ...)
{
	const char *argv[16];
	char outp[600], errp[600];
	int n = 1, status;
	va_list ap;
	pid_t pid;

	argv[0] = getenv("KANALCTL");
	if (argv[0] == NULL)
		fail_msg("KANALCTL is not set (ctest sets it)");
	va_start(ap, fx);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/stdout", fx->root);
	snprintf(errp, sizeof(errp), "%s/stderr", fx->root);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o == -1 || e == -1)
			_exit(126);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		assert_int_equal(errno, EINTR);
	slurp(outp, fx->out, sizeof(fx->out));
	slurp(errp, fx->err, sizeof(fx->err));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Fails, showing what kanalctl said, unless the run exited with want. */
static void
expect_exit(struct fx *fx, int got, int want)
{
	if (got != want)
		fail_msg("kanalctl exited %d, not %d\n--- stdout:\n%s--- "
		    "stderr:\n%s", got, want, fx->out, fx->err);
}

static void
expect_in(const char *what, const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("%s lacks \"%s\":\n%s", what, needle, text);
}

/* ------------------------------------------------------------- files */

static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void
write_all_to(const char *path, const void *p, size_t len, const char *mode)
{
	FILE *f = fopen(path, mode);

	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static size_t
file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		fail_msg("%s: %s", path, strerror(errno));
	return (size_t)st.st_size;
}

static void
flip_bit(const char *path, size_t off)
{
	size_t len;
	uint8_t *p = read_all(path, &len);

	assert_true(off < len);
	p[off] ^= 0x10;
	write_all_to(path, p, len, "wb");
	free(p);
}

/* Names in fx->dir containing part, sorted, one per line into buf. */
static size_t
names_with(struct fx *fx, const char *part, char *buf, size_t len)
{
	struct dirent **v;
	int n = scandir(fx->dir, &v, NULL, alphasort);
	size_t found = 0, used = 0;

	assert_true(n >= 0);
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strstr(v[i]->d_name, part) != NULL) {
			used += (size_t)snprintf(buf + used, len - used, "%s\n",
			    v[i]->d_name);
			assert_true(used < len);
			found++;
		}
		free(v[i]);
	}
	free(v);
	return found;
}

/* Sum of the sizes of every segment and quarantine file in fx->dir. */
static size_t
wal_bytes(struct fx *fx)
{
	DIR *d = opendir(fx->dir);
	struct dirent *de;
	size_t sum = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[1000];
		if (strstr(de->d_name, ".wal") == NULL)
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		sum += file_size(p);
	}
	closedir(d);
	return sum;
}

/* ----------------------------------------------------------- records */

/*
 * Batch i: every batch has the same size, so a segment size can put
 * exactly two records in each segment.
 */
static size_t
batch_encode(int i, uint8_t *out)
{
	char bid[32];
	struct record_batch b;
	struct agg_event ev[EVENTS_PER_BATCH];

	snprintf(bid, sizeof(bid), "batch-%02d", i + 1);
	memset(&b, 0, sizeof(b));
	b.received_at_ms = RECEIVED_MS + i * 1000;
	b.source = "svc-a";
	b.source_len = 5;
	b.batch_id = bid;
	b.batch_id_len = strlen(bid);
	b.accepted = EVENTS_PER_BATCH;
	b.rejected = (uint32_t)(i % 2);
	memset(ev, 0, sizeof(ev));
	ev[0].occurred_at_ms = OCCURRED_MS + i * 60000;
	ev[0].service = "dukcapil.akta-lahir";
	ev[0].service_len = strlen(ev[0].service);
	ev[0].region = "32.73.01";
	ev[0].region_len = 8;
	ev[0].duration_ms = 1500;
	ev[0].channel = 1;	/* web */
	ev[0].outcome = 1;	/* completed */
	ev[1].occurred_at_ms = OCCURRED_MS + i * 60000 + 30000;
	ev[1].service = "bapenda.pbb-bayar";
	ev[1].service_len = strlen(ev[1].service);
	ev[1].region = "32.73.02";
	ev[1].region_len = 8;
	ev[1].channel = 6;	/* counter */
	ev[1].outcome = 3;	/* failed */
	ev[1].assisted = 1;
	if (out == NULL)
		return record_batch_size(&b, ev, EVENTS_PER_BATCH);
	return record_batch_encode(&b, ev, EVENTS_PER_BATCH, out);
}

/* The lines `wal dump` must print for record i, written independently. */
static void
expected_dump(struct fx *fx, int i, int events, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "start=%" PRIu64 " end=%" PRIu64
	    " type=batch len=%zu received_at=2026-05-28T20:26:%02d.123Z "
	    "source=svc-a batch_id=batch-%02d accepted=2 rejected=%d\n",
	    fx->start[i], fx->end[i], fx->len, 40 + i, i + 1, i % 2);

	if (events)
		snprintf(buf + n, len - n, "    occurred_at=2026-05-28T20:%02d:"
		    "00.000Z service=dukcapil.akta-lahir channel=web "
		    "region=32.73.01 outcome=completed assisted=0 "
		    "duration_ms=1500\n"
		    "    occurred_at=2026-05-28T20:%02d:30.000Z "
		    "service=bapenda.pbb-bayar channel=counter region=32.73.02 "
		    "outcome=failed assisted=1 duration_ms=0\n", 10 + i,
		    10 + i);
}

/* ------------------------------------------------------------ writing */

static void
on_done(void *arg, int ok)
{
	*(int *)arg = ok ? 1 : -1;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

static void
apply_nothing(void *arg, const struct wal_record *rec)
{
	(void)arg;
	(void)rec;
}

/* Runs base until *flag is set, for at most 10 seconds. */
static void
loop_until(struct event_base *base, const int *flag)
{
	int timed_out = 0;
	struct event *t = evtimer_new(base, on_timeout, &timed_out);
	struct timeval tv = { 10, 0 };

	assert_non_null(t);
	evtimer_add(t, &tv);
	while (*flag == 0 && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	if (timed_out)
		fail_msg("no done callback within 10 s");
}

static void
list_segments(struct fx *fx)
{
	struct dirent **v;
	int n = scandir(fx->dir, &v, NULL, alphasort);

	assert_true(n >= 0);
	fx->nsegs = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(v[i]->d_name);
		if (l == 20 && strcmp(v[i]->d_name + 16, ".wal") == 0) {
			assert_true(fx->nsegs < NREC);
			snprintf(fx->seg[fx->nsegs++], sizeof(fx->seg[0]),
			    "%s/%.20s", fx->dir, v[i]->d_name);
		}
		free(v[i]);
	}
	free(v);
}

static struct wal *
wal_open_dir(struct fx *fx, uint64_t segment_size)
{
	struct wal_config cfg = {
		.dir = fx->dir,
		.collector_id = COLLECTOR,
		.segment_size = segment_size,
		.max_size = 1u << 30,
	};
	char err[1024];
	struct wal *w = wal_open(&cfg, err, sizeof(err));

	if (w == NULL)
		fail_msg("wal_open: %s", err);
	return w;
}

/*
 * Writes records 0..n-1 with the daemon's writer, one durable append at a
 * time, two to a segment; remembers their positions and the segments.
 */
static void
wal_write(struct fx *fx, int n)
{
	struct event_base *base = event_base_new();
	struct wal *w;
	struct wal_stats st;
	uint8_t buf[512];
	uint64_t prev;

	assert_non_null(base);
	fx->len = batch_encode(0, NULL);
	assert_true(fx->len <= sizeof(buf));
	/* Past one record, short of two: a new segment every two. */
	w = wal_open_dir(fx, WAL_SEGMENT_HEADER + WAL_RECORD_HEADER + fx->len
	    + 1);
	assert_int_equal(wal_start(w, base, apply_nothing, NULL), 0);
	wal_get_stats(w, &st);
	prev = st.durable;
	for (int i = 0; i < n; i++) {
		int done = 0;

		assert_int_equal(batch_encode(i, buf), fx->len);
		assert_int_equal(wal_append(w, RECORD_TYPE_BATCH, buf, fx->len,
		    on_done, &done), 0);
		loop_until(base, &done);
		assert_int_equal(done, 1);
		wal_get_stats(w, &st);
		fx->start[i] = prev;
		fx->end[i] = prev = st.durable;
		assert_int_equal(fx->end[i] - fx->start[i], WAL_RECORD_HEADER +
		    fx->len);
	}
	wal_close(w);
	event_base_free(base);
	list_segments(fx);
	assert_int_equal(fx->nsegs, (size_t)(n + 1) / 2);
}

/* File offset of record i in its segment (two records a segment). */
static size_t
record_offset(const struct fx *fx, int i)
{
	return WAL_SEGMENT_HEADER + (size_t)(i % 2) * (WAL_RECORD_HEADER +
	    fx->len);
}

/* By hand, from the format in wal.c. */
static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static size_t
hand_header(uint8_t *h, uint64_t first)
{
	memset(h, 0, WAL_SEGMENT_HEADER);
	memcpy(h, "KANALWAL", 8);
	put_u32(h + 8, 1);
	put_u32(h + 12, WAL_SEGMENT_HEADER);
	put_u64(h + 16, first);
	memcpy(h + 24, COLLECTOR, strlen(COLLECTOR));
	put_u64(h + 88, (uint64_t)RECEIVED_MS);
	put_u32(h + 124, crc32c(0, h, 124));
	return WAL_SEGMENT_HEADER;
}

static size_t
hand_record(uint8_t *p, uint8_t type, const void *payload, size_t len)
{
	uint32_t c;

	put_u32(p, (uint32_t)len);
	p[8] = type;
	memcpy(p + WAL_RECORD_HEADER, payload, len);
	c = crc32c(0, p, 4);
	c = crc32c(c, p + 8, 1);
	put_u32(p + 4, crc32c(c, payload, len));
	return WAL_RECORD_HEADER + len;
}

/* ------------------------------------------------------------- tests */

static void
test_check_clean_dir_counts_everything(void **state)
{
	struct fx *fx = *state;
	char want[256];

	wal_write(fx, NREC);
	expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 0);
	expect_in("check", fx->out, "collector: " COLLECTOR "\n");
	expect_in("check", fx->out, "segments: 3\n");
	expect_in("check", fx->out, "records: 6\n");
	expect_in("check", fx->out, "batches: 6\n");
	expect_in("check", fx->out, "events: 12\n");
	snprintf(want, sizeof(want), "first position: %" PRIu64 "\n",
	    fx->start[0]);
	expect_in("check", fx->out, want);
	snprintf(want, sizeof(want), "end position: %" PRIu64 "\n",
	    fx->end[NREC - 1]);
	expect_in("check", fx->out, want);
	expect_in("check", fx->out, "status: clean\n");
}

static void
test_dump_prints_exactly_the_records(void **state)
{
	static const struct {
		const char *name;
		int from;	/* record index; -1: no --from; NREC: the end */
		int equals;	/* --from=N rather than --from N */
		int events;
	} cases[] = {
		{ "all records", -1, 0, 0 },
		{ "all records with their events", -1, 0, 1 },
		{ "from the start of record 3", 3, 0, 0 },
		{ "from record 4 with --from= and events", 4, 1, 1 },
		{ "from the start of the log", 0, 0, 0 },
		{ "from the end of the log: nothing", NREC, 0, 0 },
	};
	struct fx *fx = *state;

	wal_write(fx, NREC);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char want[OUT_MAX], from[64], eq[80];
		const char *args[6];
		size_t n = 0, used = 0;
		int first = cases[c].from < 0 ? 0 : cases[c].from, rc;

		args[n++] = "wal";
		args[n++] = "dump";
		if (cases[c].from >= 0) {
			snprintf(from, sizeof(from), "%" PRIu64,
			    cases[c].from < NREC ? fx->start[cases[c].from] :
			    fx->end[NREC - 1]);
			if (cases[c].equals) {
				snprintf(eq, sizeof(eq), "--from=%s", from);
				args[n++] = eq;
			} else {
				args[n++] = "--from";
				args[n++] = from;
			}
		}
		args[n++] = fx->dir;
		if (cases[c].events)
			args[n++] = "--events";
		while (n < 6)
			args[n++] = NULL;
		rc = ctl(fx, args[0], args[1], args[2], args[3], args[4],
		    args[5], NULL);
		if (rc != 0)
			fail_msg("case \"%s\": exit %d: %s", cases[c].name, rc,
			    fx->err);
		want[0] = '\0';
		for (int i = first; i < NREC; i++) {
			expected_dump(fx, i, cases[c].events, want + used,
			    sizeof(want) - used);
			used = strlen(want);
		}
		if (strcmp(fx->out, want) != 0)
			fail_msg("case \"%s\":\n--- got:\n%s--- want:\n%s",
			    cases[c].name, fx->out, want);
	}
}

/* Ways the newest segment can end torn. off gets where the tail starts. */
static void
tear_partial_record(struct fx *fx, char *path, size_t *off)
{
	uint8_t part[WAL_RECORD_HEADER + 20];

	/* A record header promising 100 bytes, 20 of them written. */
	memset(part, 0x5a, sizeof(part));
	put_u32(part, 100);
	snprintf(path, 400, "%s", fx->seg[fx->nsegs - 1]);
	*off = file_size(path);
	write_all_to(path, part, sizeof(part), "ab");
}

static void
tear_header(struct fx *fx, char *path, size_t *off)
{
	uint8_t h[WAL_SEGMENT_HEADER];

	/* A new segment whose header write never finished. */
	hand_header(h, fx->end[NREC - 1]);
	snprintf(path, 400, "%s/%016" PRIx64 ".wal", fx->dir,
	    fx->end[NREC - 1]);
	*off = 0;
	write_all_to(path, h, 50, "wb");
}

static void
test_torn_tail_is_reported_and_repaired(void **state)
{
	static const struct {
		const char *name;
		void (*tear)(struct fx *, char *, size_t *);
		const char *what;
	} cases[] = {
		{ "a record cut short", tear_partial_record,
		  "record length runs past the end of the segment" },
		{ "a segment header cut short", tear_header,
		  "segment header incomplete" },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fx *fx;
		char path[400], want[4096], names[2048], q[2048];
		size_t off, before, len, qlen;
		uint8_t *orig, *kept;

		setup((void **)&fx);
		wal_write(fx, NREC);
		cases[c].tear(fx, path, &off);
		orig = read_all(path, &len);
		before = wal_bytes(fx);

		expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 1);
		snprintf(want, sizeof(want), "%s: offset %zu (position %" PRIu64
		    "): %s\n", path, off, fx->end[NREC - 1], cases[c].what);
		expect_in(cases[c].name, fx->out, want);
		expect_in(cases[c].name, fx->out, "torn tail: ");
		expect_in(cases[c].name, fx->out, "status: torn tail\n");
		expect_exit(fx, ctl(fx, "wal", "dump", fx->dir, NULL), 1);
		expect_in(cases[c].name, fx->err, "stopped at a torn tail");

		expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir,
		    NULL), 0);
		expect_in(cases[c].name, fx->out, "status: clean\n");
		assert_int_equal(names_with(fx, ".quarantine-", names,
		    sizeof(names)), 1);
		snprintf(q, sizeof(q), "%s/%.*s", fx->dir,
		    (int)strlen(names) - 1, names);
		assert_true(strncmp(q, path, strlen(path)) == 0);
		kept = read_all(q, &qlen);
		assert_int_equal(qlen, len - off);
		assert_memory_equal(kept, orig + off, qlen);
		assert_int_equal(wal_bytes(fx), before);
		free(kept);
		free(orig);

		expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 0);
		expect_in(cases[c].name, fx->out, "records: 6\n");
		teardown((void **)&fx);
	}
}

static void
test_flipped_crc_in_older_segment_is_damage(void **state)
{
	struct fx *fx = *state;
	char want[4096];
	size_t off;

	wal_write(fx, NREC);
	off = record_offset(fx, 1);
	flip_bit(fx->seg[0], off + 4);

	expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 1);
	snprintf(want, sizeof(want), "%s: offset %zu (position %" PRIu64 "): "
	    "record CRC mismatch\n", fx->seg[0], off, fx->start[1]);
	expect_in("check", fx->out, want);
	expect_in("check", fx->out, "damage: kanald will not start");
	expect_in("check", fx->out, "records: 1 (before the damage)\n");
	expect_in("check", fx->out, "status: damaged\n");
	assert_null(strstr(fx->out, "torn tail"));

	/* dump prints what comes before, then stops. */
	expect_exit(fx, ctl(fx, "wal", "dump", fx->dir, NULL), 1);
	expected_dump(fx, 0, 0, want, sizeof(want));
	assert_string_equal(fx->out, want);
	expect_in("dump", fx->err, "stopped at damage: ");
	expect_in("dump", fx->err, fx->seg[0]);
}

struct scanned {
	int n;
	uint64_t start[NREC], end[NREC];
};

static void
scan_one(void *arg, const struct wal_record *rec)
{
	struct scanned *s = arg;

	assert_true(s->n < NREC);
	s->start[s->n] = rec->start;
	s->end[s->n++] = rec->end;
}

static void
test_repair_quarantines_the_damage_and_what_follows(void **state)
{
	struct fx *fx = *state;
	uint8_t *orig[NREC], *kept;
	size_t olen[NREC], klen, off, before;
	char names[4096], want[2048], q[1000], stamp[32];
	const char *p;
	struct scanned sc = { 0 };
	struct wal *w;
	struct wal_stats st;
	char err[1024];

	wal_write(fx, NREC);
	off = record_offset(fx, 1);
	flip_bit(fx->seg[0], off + 4);
	for (size_t i = 0; i < fx->nsegs; i++)
		orig[i] = read_all(fx->seg[i], &olen[i]);
	before = wal_bytes(fx);

	expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir, NULL), 0);
	snprintf(want, sizeof(want), "repair: copied offset %zu..%zu of %s",
	    off, olen[0], fx->seg[0]);
	expect_in("repair", fx->out, want);
	snprintf(want, sizeof(want), "repair: cut %s to %zu bytes\n",
	    fx->seg[0], off);
	expect_in("repair", fx->out, want);
	snprintf(want, sizeof(want), "repair: renamed %s to %s.quarantine-",
	    fx->seg[1], fx->seg[1]);
	expect_in("repair", fx->out, want);
	snprintf(want, sizeof(want), "repair: renamed %s to %s.quarantine-",
	    fx->seg[2], fx->seg[2]);
	expect_in("repair", fx->out, want);
	/* Record 1 is damaged; records 2..5 still read. */
	expect_in("repair", fx->out, "  records that still read: 4 (4 "
	    "batches, 8 events)\n");
	expect_in("repair", fx->out, "  damaged records: 1\n");
	expect_in("repair", fx->out, "  bytes that do not read as records: "
	    "0\n");
	expect_in("repair", fx->out, "status: clean\n");

	/* Nothing deleted: the same bytes, in the segment or in quarantine. */
	assert_int_equal(wal_bytes(fx), before);
	assert_int_equal(file_size(fx->seg[0]), off);
	assert_int_equal(names_with(fx, ".quarantine-", names, sizeof(names)),
	    3);
	p = strstr(names, ".quarantine-");
	assert_non_null(p);
	snprintf(stamp, sizeof(stamp), "%.*s", (int)strcspn(p, "\n"), p);
	snprintf(q, sizeof(q), "%s%s", fx->seg[0], stamp);
	kept = read_all(q, &klen);
	assert_int_equal(klen, olen[0] - off);
	assert_memory_equal(kept, orig[0] + off, klen);
	free(kept);
	for (size_t i = 1; i < fx->nsegs; i++) {
		snprintf(q, sizeof(q), "%s%s", fx->seg[i], stamp);
		kept = read_all(q, &klen);
		assert_int_equal(klen, olen[i]);
		assert_memory_equal(kept, orig[i], klen);
		free(kept);
		assert_int_equal(access(fx->seg[i], F_OK), -1);
	}
	for (size_t i = 0; i < fx->nsegs; i++)
		free(orig[i]);

	expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 0);
	expect_in("check", fx->out, "records: 1\n");

	/* kanald's start-up: opens, and replays the record before. */
	w = wal_open_dir(fx, 1u << 20);
	assert_int_equal(wal_scan(w, 0, scan_one, &sc, err, sizeof(err)), 0);
	assert_int_equal(sc.n, 1);
	assert_int_equal(sc.start[0], fx->start[0]);
	assert_int_equal(sc.end[0], fx->end[0]);
	wal_get_stats(w, &st);
	assert_int_equal(st.durable, fx->end[0]);
	wal_close(w);
}

static void
test_repair_is_refused_while_the_wal_is_open(void **state)
{
	struct fx *fx = *state;
	struct wal *w;
	char names[1024];
	size_t before, seg0;

	wal_write(fx, NREC);
	w = wal_open_dir(fx, 1u << 20);		/* as a running kanald */
	flip_bit(fx->seg[0], record_offset(fx, 1) + 4);
	before = wal_bytes(fx);
	seg0 = file_size(fx->seg[0]);

	expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir, NULL), 1);
	expect_in("repair", fx->err, "kanald is running");
	expect_in("repair", fx->err, "Nothing was changed");
	assert_int_equal(names_with(fx, ".quarantine-", names, sizeof(names)),
	    0);
	assert_int_equal(file_size(fx->seg[0]), seg0);
	assert_int_equal(wal_bytes(fx), before);

	/* Plain check still reads, and says who holds the directory. */
	expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 1);
	expect_in("check", fx->out, "kanald is running on this directory");

	wal_close(w);
	expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir, NULL), 0);
}

static void
test_damaged_header_quarantines_the_whole_segment(void **state)
{
	static const struct {
		const char *name;
		int seg;		/* whose header CRC is flipped */
		int renamed;		/* files renamed whole */
		int left;		/* records left */
		int first;		/* record the log then starts with */
	} cases[] = {
		{ "the oldest: the others still follow on", 0, 1, 4, 2 },
		{ "a middle one: it and the newer ones go", 1, 2, 2, 0 },
		{ "the newest", 2, 1, 4, 0 },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fx *fx;
		char names[2048], want[4096];
		size_t before;

		setup((void **)&fx);
		wal_write(fx, NREC);
		flip_bit(fx->seg[cases[c].seg], 124);
		before = wal_bytes(fx);

		expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 1);
		snprintf(want, sizeof(want), "%s: offset 0 (position %" PRIu64
		    "): segment header damaged (magic or CRC)\n",
		    fx->seg[cases[c].seg], fx->start[2 * cases[c].seg]);
		expect_in(cases[c].name, fx->out, want);

		expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir,
		    NULL), 0);
		snprintf(want, sizeof(want), "repair: renamed %s to %s."
		    "quarantine-", fx->seg[cases[c].seg],
		    fx->seg[cases[c].seg]);
		expect_in(cases[c].name, fx->out, want);
		assert_int_equal(names_with(fx, ".quarantine-", names,
		    sizeof(names)), (size_t)cases[c].renamed);
		assert_int_equal(wal_bytes(fx), before);

		expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 0);
		snprintf(want, sizeof(want), "records: %d\n", cases[c].left);
		expect_in(cases[c].name, fx->out, want);
		snprintf(want, sizeof(want), "first position: %" PRIu64 "\n",
		    fx->start[cases[c].first]);
		expect_in(cases[c].name, fx->out, want);
		teardown((void **)&fx);
	}
}

static void
test_record_that_does_not_decode_is_reported_not_cut(void **state)
{
	struct fx *fx = *state;
	uint8_t seg[4096], batch[512];
	size_t n = 0, blen, before;
	const uint64_t first = UINT64_C(1) << 40;
	char path[400], names[1024], want[4096];
	static const char junk[] = "not a batch";

	mkdir(fx->dir, 0750);
	blen = batch_encode(0, batch);
	n += hand_header(seg, first);
	n += hand_record(seg + n, RECORD_TYPE_BATCH, batch, blen);
	n += hand_record(seg + n, RECORD_TYPE_BATCH, junk, sizeof(junk) - 1);
	n += hand_record(seg + n, RECORD_TYPE_BATCH, batch, blen);
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".wal", fx->dir, first);
	write_all_to(path, seg, n, "wb");
	before = wal_bytes(fx);

	expect_exit(fx, ctl(fx, "wal", "check", fx->dir, NULL), 1);
	snprintf(want, sizeof(want), "%s: offset %zu (position %" PRIu64 "): "
	    "record of %zu bytes passes its CRC but does not decode",
	    path, WAL_SEGMENT_HEADER + WAL_RECORD_HEADER + blen, first +
	    WAL_RECORD_HEADER + blen, sizeof(junk) - 1);
	expect_in("check", fx->out, want);
	expect_in("check", fx->out, "records: 3\n");
	expect_in("check", fx->out, "batches: 2\n");
	expect_in("check", fx->out, "status: records that do not decode\n");

	expect_exit(fx, ctl(fx, "wal", "dump", fx->dir, NULL), 1);
	snprintf(want, sizeof(want), "start=%" PRIu64 " end=%" PRIu64
	    " type=batch len=%zu undecodable=\"", first + WAL_RECORD_HEADER +
	    blen, first + 2 * WAL_RECORD_HEADER + blen + sizeof(junk) - 1,
	    sizeof(junk) - 1);
	expect_in("dump", fx->out, want);
	expect_in("dump", fx->out, "batch_id=batch-01");

	/* Repair leaves it: kanald starts on it and skips it. */
	expect_exit(fx, ctl(fx, "wal", "check", "--repair", fx->dir, NULL), 1);
	assert_int_equal(names_with(fx, ".quarantine-", names, sizeof(names)),
	    0);
	assert_int_equal(wal_bytes(fx), before);
}

static void
test_help_and_usage(void **state)
{
	static const struct {
		const char *name;
		const char *args[8];
		int exit;
		int on_stdout;
		const char *says;
	} cases[] = {
		{ "wal --help lists both", { "--help" }, 0, 1,
		  "kanalctl wal dump [--from POSITION] [--events] DIR" },
		{ "wal alone is a usage error", { NULL }, 2, 0,
		  "kanalctl wal check [--repair] DIR" },
		{ "check --help tells of the quarantine", { "check", "--help" },
		  0, 1, "SEGMENT.quarantine-<unix time>" },
		{ "dump --help tells of --events", { "dump", "--help" }, 0, 1,
		  "--events" },
		{ "check DIR --help still helps", { "check", "d", "--help" }, 0,
		  1, "--repair" },
		{ "check needs DIR", { "check" }, 2, 0, "usage:" },
		{ "check takes one DIR", { "check", "a", "b" }, 2, 0,
		  "one DIR only" },
		{ "check knows no --force", { "check", "--force", "d" }, 2, 0,
		  "unknown option --force" },
		{ "dump --from is a number", { "dump", "--from", "x", "d" }, 2,
		  0, "--from is a position" },
		{ "dump --from needs a value", { "dump", "d", "--from" }, 2, 0,
		  "--from needs POSITION" },
		{ "an unknown wal command", { "fix", "d" }, 2, 0,
		  "unknown command \"fix\"" },
		{ "wal --help lists adopt", { "--help" }, 0, 1,
		  "kanalctl wal adopt --wal-dir DIR --collector-id ID" },
		{ "adopt --help tells of the lease", { "adopt", "--help" }, 0, 1,
		  "holds its lease in PostgreSQL" },
		{ "adopt needs --collector-id", { "adopt", "--wal-dir", "d" }, 2,
		  0, "usage: kanalctl wal adopt" },
		{ "adopt needs --wal-dir", { "adopt", "--collector-id", "x" }, 2,
		  0, "usage: kanalctl wal adopt" },
		{ "adopt --deadline is seconds", { "adopt", "--wal-dir", "d",
		  "--collector-id", "x", "--deadline", "0" }, 2, 0,
		  "--deadline is seconds" },
		{ "adopt --deadline is a number", { "adopt", "--wal-dir", "d",
		  "--collector-id", "x", "--deadline", "soon" }, 2, 0,
		  "--deadline is seconds" },
		{ "adopt takes no DIR argument", { "adopt", "d" }, 2, 0,
		  "adopt" },
		{ "adopt of a directory that is not there", { "adopt",
		  "--wal-dir", "/nonexistent/kanal-wal", "--collector-id", "x" },
		  1, 0, "cannot read /nonexistent/kanal-wal" },
	};
	struct fx *fx = *state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int rc = ctl(fx, "wal", cases[c].args[0], cases[c].args[1],
		    cases[c].args[2], cases[c].args[3], cases[c].args[4],
		    cases[c].args[5], cases[c].args[6], NULL);

		if (rc != cases[c].exit)
			fail_msg("case \"%s\": exit %d, not %d", cases[c].name,
			    rc, cases[c].exit);
		expect_in(cases[c].name, cases[c].on_stdout ? fx->out : fx->err,
		    cases[c].says);
	}
	/* The top-level usage names the command. */
	expect_exit(fx, ctl(fx, "--help", NULL), 0);
	expect_in("kanalctl --help", fx->out, "  wal ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_check_clean_dir_counts_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_dump_prints_exactly_the_records, setup, teardown),
		cmocka_unit_test(test_torn_tail_is_reported_and_repaired),
		cmocka_unit_test_setup_teardown(
		    test_flipped_crc_in_older_segment_is_damage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_repair_quarantines_the_damage_and_what_follows, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_repair_is_refused_while_the_wal_is_open, setup,
		    teardown),
		cmocka_unit_test(
		    test_damaged_header_quarantines_the_whole_segment),
		cmocka_unit_test_setup_teardown(
		    test_record_that_does_not_decode_is_reported_not_cut, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_help_and_usage, setup,
		    teardown),
	};

	if (evthread_use_pthreads() == -1) {
		fprintf(stderr, "libevent has no pthreads support\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
