/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal: the write-ahead log (see wal.h for the threads and the API).
 *
 * ON-DISK FORMAT
 *
 * A WAL directory holds segment files named by the position of their first
 * record, as 16 lowercase hex digits: 0019b2c4d5e60000.wal. Positions are
 * logical byte offsets that count record bytes only (not segment headers):
 * segment N+1 starts at the position where segment N's last record ends.
 *
 * A segment starts with a 128-byte header, all integers little-endian:
 *
 *     0   8  magic "KANALWAL"
 *     8   4  format version, 1
 *    12   4  header size, 128
 *    16   8  position of the first record
 *    24  64  collector id, NUL-padded
 *    88   8  creation time, Unix ms
 *    96  28  zero
 *   124   4  CRC-32C of bytes 0..123
 *
 * then records, back to back, each:
 *
 *     0   4  payload length n (at most WAL_RECORD_MAX)
 *     4   4  CRC-32C of bytes 0..3, 8 and the payload (length, type, data)
 *     8   1  type (RECORD_TYPE_BATCH, see record.h)
 *     9   n  payload
 *
 * A new directory's first segment starts at position (now in Unix ms) <<
 * 20. Positions of an older log of the same collector are below that
 * unless it wrote more than 1 MiB per millisecond of its life, so a
 * checkpoint left in PostgreSQL by a log that was thrown away is never
 * ahead of the new one; a checkpoint behind the oldest segment means
 * "replay everything". It fits a bigint until about the year 2250.
 *
 * WRITING
 *
 * Appends are buffered; the writer thread writes the buffer with one
 * write(2) and one fdatasync(2), and only then are the records durable and
 * acknowledged; the writer then applies them (outside its lock, so that
 * appends never wait for the rollups). A new segment is created when the current one
 * has passed the segment size: header written and synced, then the
 * directory fsynced, before any record goes in. A failed write is cut off
 * again (ftruncate) and its records answered as failed; a failed fdatasync
 * can't be trusted to be retried (the kernel may have dropped the pages),
 * so the WAL stops taking appends for good and says so.
 *
 * RECOVERY (wal_open, and the same rules in kanalctl wal check)
 *
 * Every segment is read and every header and record checked, oldest first.
 * - The newest segment may end in a torn tail: bytes of a write that was
 *   never synced, so never acknowledged. The first bad record there (cut
 *   short, an impossible length, a CRC mismatch) starts the tail when no
 *   valid record follows it; the tail is cut off (ftruncate) with a
 *   warning naming the bytes. A newest segment whose header itself is
 *   incomplete or bad, with nothing after it, was being created: it holds
 *   no record, and is renamed to NAME.torn-<unix time> with a warning.
 * - Anything else (a bad record in an older segment, a bad record with
 *   valid ones after it, a header that does not match its name or
 *   collector, a first position so high that the segment's positions
 *   would pass 2^63, a gap between segments) is damage: start-up stops with the
 *   segment, the offset and `kanalctl wal check DIR`. Nothing is deleted;
 *   `kanalctl wal check --repair` moves a damaged tail to a quarantine file
 *   beside the segment.
 *
 * REMOVAL
 *
 * A segment is removed once the checkpoint committed to PostgreSQL is at
 * or past its end (all its counts are in the database), never the segment
 * being written; the caller sees each of its records first (the batch-id
 * memory keeps what it needs of them). Oldest first, one at a time: unlink,
 * fsync of the directory, and only then its blocks given back, so that a
 * power cut leaves a prefix of the segments removed and never a gap or a
 * segment cut short (remove_segment).
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "crc32c.h"
#include "fsutil.h"
#include "le.h"
#include "log.h"

#define WAL_MAGIC "KANALWAL"
#define WAL_VERSION 1
#define COLLECTOR_MAX 63
/* How far past a bad record recovery looks for a valid one. */
#define TAIL_SEARCH_CRC_BUDGET (256u << 20)

/* ------------------------------------------------------------ encoding */

static uint32_t
record_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	uint32_t c = crc32c(0, hdr, 4);

	c = crc32c(c, hdr + 8, 1);
	return crc32c(c, payload, len);
}

static void
header_encode(uint8_t h[WAL_SEGMENT_HEADER], uint64_t first,
    const char *collector)
{
	memset(h, 0, WAL_SEGMENT_HEADER);
	memcpy(h, WAL_MAGIC, 8);
	le_put_u32(h + 8, WAL_VERSION);
	le_put_u32(h + 12, WAL_SEGMENT_HEADER);
	le_put_u64(h + 16, first);
	memcpy(h + 24, collector, strlen(collector));
	le_put_u64(h + 88, (uint64_t)clock_wall_ms());
	le_put_u32(h + 124, crc32c(0, h, 124));
}

static void
segment_name(char *buf, size_t len, const char *dir, uint64_t first)
{
	snprintf(buf, len, "%s/%016" PRIx64 ".wal", dir, first);
}

/* First position from a segment file name, or -1 if not one. */
static int
segment_parse_name(const char *name, uint64_t *first)
{
	uint64_t v = 0;

	if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
		return -1;
	for (int i = 0; i < 16; i++) {
		int c = (unsigned char)name[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*first = v;
	return 0;
}

/* ------------------------------------------------------------- reading */

struct seginfo {
	uint64_t first;
	char path[512];
};

struct wal_reader {
	char dir[512];
	struct seginfo *segs;
	size_t nsegs;
	char collector[COLLECTOR_MAX + 1];
	size_t cur;		/* segment being read */
	const uint8_t *map;	/* its bytes */
	size_t size;
	size_t off;		/* next record's offset */
	uint64_t pos;		/* next record's position */
	int opened;		/* cur is mapped */
	int done;
};

static int
seg_cmp(const void *a, const void *b)
{
	const struct seginfo *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Lists the segments of dir, sorted. 0, or -1 with err. */
static int
list_segments(const char *dir, struct seginfo **out, size_t *n, char *err,
    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct seginfo *v = NULL;
	size_t cap = 0;

	*n = 0;
	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		if (segment_parse_name(de->d_name, &first) == -1)
			continue;
		if (*n == cap) {
			struct seginfo *nv;
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*nv));
			if (nv == NULL) {
				free(v);
				closedir(d);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			v = nv;
		}
		v[*n].first = first;
		segment_name(v[*n].path, sizeof(v[*n].path), dir, first);
		(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), seg_cmp);
	*out = v;
	return 0;
}

struct wal_reader *
wal_reader_open(const char *dir, char *err, size_t errlen)
{
	struct wal_reader *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	if (list_segments(dir, &r->segs, &r->nsegs, err, errlen) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

static void
reader_unmap(struct wal_reader *r)
{
	if (r->opened && r->map != NULL)
		munmap((void *)r->map, r->size);
	r->map = NULL;
	r->opened = 0;
}

void
wal_reader_free(struct wal_reader *r)
{
	if (r == NULL)
		return;
	reader_unmap(r);
	free(r->segs);
	free(r);
}

size_t
wal_reader_segments(const struct wal_reader *r)
{
	return r->nsegs;
}

const char *
wal_reader_collector(const struct wal_reader *r)
{
	return r->collector;
}

static int
damage(struct wal_reader *r, struct wal_damage *d, const char *what)
{
	snprintf(d->segment, sizeof(d->segment), "%s", r->segs[r->cur].path);
	d->offset = r->off;
	d->position = r->pos;
	snprintf(d->what, sizeof(d->what), "%s", what);
	d->tail = 0;
	r->done = 1;
	return -1;
}

/*
 * 1 if a whole, valid record starts at offset o of the mapped segment, 0
 * if not, -1 if the CRC budget ran out before it could tell.
 */
static int
valid_record_at(const struct wal_reader *r, size_t o, uint64_t *budget)
{
	uint32_t len;

	if (r->size - o < WAL_RECORD_HEADER)
		return 0;
	len = le_get_u32(r->map + o);
	if (len > WAL_RECORD_MAX || len > r->size - o - WAL_RECORD_HEADER)
		return 0;
	if (*budget < len)
		return -1;
	*budget -= len;
	return record_crc(r->map + o, r->map + o + WAL_RECORD_HEADER, len) ==
	    le_get_u32(r->map + o + 4);
}

/*
 * Damage at r->off in the newest segment: is it a torn tail? Only when
 * no valid record follows; when that can't be settled within the budget,
 * it is not called a tail (kanald stops rather than cut what may have
 * been acknowledged).
 */
static int
is_tail(const struct wal_reader *r)
{
	uint64_t budget = TAIL_SEARCH_CRC_BUDGET;

	if (r->cur + 1 != r->nsegs)
		return 0;
	for (size_t o = r->off + 1; o + WAL_RECORD_HEADER <= r->size; o++)
		if (valid_record_at(r, o, &budget) != 0)
			return 0;
	return 1;
}

/* Maps segment cur and checks its header. 0, or -1 with *d. */
static int
reader_open_segment(struct wal_reader *r, struct wal_damage *d)
{
	const struct seginfo *s = &r->segs[r->cur];
	struct stat st;
	int fd;
	char what[256];

	r->off = 0;
	fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(what, sizeof(what), "cannot read: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return damage(r, d, what);
	}
	r->size = (size_t)st.st_size;
	r->map = NULL;
	if (r->size > 0) {
		r->map = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (r->map == MAP_FAILED) {
			r->map = NULL;
			close(fd);
			snprintf(what, sizeof(what), "cannot map: %s",
			    strerror(errno));
			return damage(r, d, what);
		}
	}
	close(fd);
	r->opened = 1;
	if (r->size < WAL_SEGMENT_HEADER) {
		int rc = damage(r, d, "segment header incomplete");
		d->tail = r->cur + 1 == r->nsegs;
		return rc;
	}
	if (memcmp(r->map, WAL_MAGIC, 8) != 0 ||
	    le_get_u32(r->map + 124) != crc32c(0, r->map, 124)) {
		int rc = damage(r, d, "segment header damaged (magic or CRC)");
		/*
		 * Records go in only after the header is synced: a newest
		 * segment that is a bad header and nothing more was being
		 * created when the machine stopped.
		 */
		d->tail = r->cur + 1 == r->nsegs && r->size == WAL_SEGMENT_HEADER;
		return rc;
	}
	if (le_get_u32(r->map + 8) != WAL_VERSION) {
		snprintf(what, sizeof(what), "format version %u; this kanal "
		    "reads version %d", le_get_u32(r->map + 8), WAL_VERSION);
		return damage(r, d, what);
	}
	if (le_get_u64(r->map + 16) != s->first) {
		snprintf(what, sizeof(what), "header says first position %"
		    PRIu64 ", the file name %" PRIu64, le_get_u64(r->map + 16),
		    s->first);
		return damage(r, d, what);
	}
	/*
	 * Positions are stored in PostgreSQL as a bigint, and a record's end
	 * must not wrap: a first position that leaves no room below 2^63 for
	 * the segment's bytes is damage (kanald's come from the clock and
	 * are far below it).
	 */
	if (s->first > (uint64_t)INT64_MAX - (r->size - WAL_SEGMENT_HEADER)) {
		snprintf(what, sizeof(what), "first position %" PRIu64 " is "
		    "out of range: the segment's records would pass 2^63",
		    s->first);
		return damage(r, d, what);
	}
	if (r->cur > 0 && s->first != r->pos) {
		snprintf(what, sizeof(what), "gap: the previous segment ends at "
		    "%" PRIu64 ", this one starts at %" PRIu64, r->pos,
		    s->first);
		return damage(r, d, what);
	}
	if (r->collector[0] == '\0')
		snprintf(r->collector, sizeof(r->collector), "%.*s",
		    COLLECTOR_MAX, (const char *)r->map + 24);
	else if (strncmp(r->collector, (const char *)r->map + 24,
	    COLLECTOR_MAX) != 0) {
		snprintf(what, sizeof(what), "segment of collector \"%.63s\" "
		    "among segments of \"%s\"", (const char *)r->map + 24,
		    r->collector);
		return damage(r, d, what);
	}
	r->pos = s->first;
	r->off = WAL_SEGMENT_HEADER;
	return 0;
}

int
wal_reader_seek(struct wal_reader *r, uint64_t pos, struct wal_damage *d)
{
	size_t i = 0;

	reader_unmap(r);
	r->done = 0;
	if (r->nsegs == 0 || pos <= r->segs[0].first) {
		r->cur = 0;
		return 0;
	}
	while (i + 1 < r->nsegs && r->segs[i + 1].first <= pos)
		i++;
	r->cur = i;
	r->pos = r->segs[i].first;	/* what the chain check expects */
	if (reader_open_segment(r, d) == -1)
		return -1;
	if (pos - r->segs[i].first > r->size - WAL_SEGMENT_HEADER)
		return damage(r, d, "position is past the end of the log");
	r->off = WAL_SEGMENT_HEADER + (size_t)(pos - r->segs[i].first);
	r->pos = pos;
	return 0;
}

int
wal_reader_next(struct wal_reader *r, struct wal_record *rec,
    struct wal_damage *d)
{
	uint32_t len;

	for (;;) {
		if (r->done)
			return 0;
		if (!r->opened) {
			if (r->cur >= r->nsegs) {
				r->done = 1;
				return 0;
			}
			if (reader_open_segment(r, d) == -1)
				return -1;
		}
		if (r->off == r->size) {
			reader_unmap(r);
			r->cur++;
			continue;
		}
		break;
	}
	if (r->size - r->off < WAL_RECORD_HEADER) {
		int rc = damage(r, d, "record header cut short");
		d->tail = is_tail(r);
		return rc;
	}
	len = le_get_u32(r->map + r->off);
	if (len > WAL_RECORD_MAX ||
	    len > r->size - r->off - WAL_RECORD_HEADER) {
		int rc = damage(r, d, "record length runs past the end of the "
		    "segment");
		d->tail = is_tail(r);
		return rc;
	}
	if (record_crc(r->map + r->off, r->map + r->off + WAL_RECORD_HEADER,
	    len) != le_get_u32(r->map + r->off + 4)) {
		int rc = damage(r, d, "record CRC mismatch");
		d->tail = is_tail(r);
		return rc;
	}
	rec->start = r->pos;
	rec->end = r->pos + WAL_RECORD_HEADER + len;
	rec->type = r->map[r->off + 8];
	rec->in_memory = 0;
	rec->payload = r->map + r->off + WAL_RECORD_HEADER;
	rec->len = len;
	r->off += WAL_RECORD_HEADER + len;
	r->pos = rec->end;
	return 1;
}

/* ------------------------------------------------------------- writing */

struct completion {
	wal_done_fn *done;
	void *arg;
	int ok;
};

struct cvec {
	struct completion *v;
	size_t n, cap;
};

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

struct segment {
	uint64_t first;
	uint64_t size;		/* file size, header included */
};

struct wal {
	char dir[512];
	char collector[COLLECTOR_MAX + 1];
	uint64_t segment_size;
	uint64_t max_size;
	int dirfd;
	int lockfd;
	int fd;			/* newest segment; the writer's after start */
	uint64_t cur_size;	/* its size; the writer's after start */

	pthread_mutex_t mu;	/* guards everything below */
	pthread_cond_t cv;
	struct segment *segs;
	size_t nsegs, capsegs;
	struct bytes appending, writing;
	struct cvec pending, inflight, done;
	uint64_t durable;	/* end of what is written and synced */
	uint64_t bytes;		/* on disk */
	int live, stop, running, failed, full;
	int no_space;		/* the last write met a full disk */
	wal_apply_fn *apply;
	void *apply_arg;
	struct event *done_ev;
	pthread_t thread;
	uint64_t syncs, sync_us_total, sync_us_max;
	struct histogram sync_us;
};

static int
bytes_reserve(struct bytes *b, size_t more)
{
	size_t need = b->len + more, ncap;
	uint8_t *np;

	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 65536;
	while (ncap < need)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (np == NULL)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

static int
cvec_push(struct cvec *c, wal_done_fn *done, void *arg)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct completion *nv = realloc(c->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n].done = done;
	c->v[c->n].arg = arg;
	c->v[c->n].ok = 0;
	c->n++;
	return 0;
}

/* Appends all of src to dst, emptying src. -1 on out-of-memory. */
static int
cvec_move(struct cvec *dst, struct cvec *src, int ok)
{
	for (size_t i = 0; i < src->n; i++) {
		if (cvec_push(dst, src->v[i].done, src->v[i].arg) == -1)
			return -1;
		dst->v[dst->n - 1].ok = ok;
	}
	src->n = 0;
	return 0;
}

static int
segs_push(struct wal *w, uint64_t first, uint64_t size)
{
	if (w->nsegs == w->capsegs) {
		size_t ncap = w->capsegs ? w->capsegs * 2 : 16;
		struct segment *nv = realloc(w->segs, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		w->segs = nv;
		w->capsegs = ncap;
	}
	w->segs[w->nsegs].first = first;
	w->segs[w->nsegs].size = size;
	w->nsegs++;
	w->bytes += size;
	return 0;
}

/*
 * Creates the segment starting at first: header written and synced, the
 * directory synced. Returns its fd, or -1 with errno.
 */
static int
segment_create(struct wal *w, uint64_t first)
{
	char path[600];
	uint8_t h[WAL_SEGMENT_HEADER];
	int fd, saved;

	segment_name(path, sizeof(path), w->dir, first);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND,
	    0640);
	if (fd == -1)
		return -1;
	header_encode(h, first, w->collector);
	if (fs_write_all(fd, h, sizeof(h)) == -1 || fdatasync(fd) == -1 ||
	    fsync(w->dirfd) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	unlink(path);
	errno = saved;
	return -1;
}

/* Cuts the newest segment at offset off (a torn tail), syncing it. */
static int
cut_tail(const struct wal_damage *d, uint64_t off)
{
	int fd = open(d->segment, O_WRONLY | O_CLOEXEC);
	struct stat st;
	int rc = -1;

	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == 0 && ftruncate(fd, (off_t)off) == 0 &&
	    fdatasync(fd) == 0) {
		log_warnx("cut a torn tail off the WAL (a write that was never "
		    "synced, so never acknowledged): segment=%s offset=%" PRIu64
		    " bytes=%" PRIu64 " reason=\"%s\"", d->segment, off,
		    (uint64_t)st.st_size - off, d->what);
		rc = 0;
	}
	close(fd);
	return rc;
}

static void
damage_message(const struct wal_damage *d, const char *dir, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "the write-ahead log is damaged: %s at offset "
	    "%" PRIu64 " of %s; nothing was changed. Inspect it with "
	    "`kanalctl wal check %s`; `kanalctl wal check --repair %s` moves "
	    "the damaged part aside (it deletes nothing)", d->what, d->offset,
	    d->segment, dir, dir);
}

/*
 * Checks every segment; cuts a torn tail. Fills w->segs. 0, or -1 with
 * err.
 */
static int
recover(struct wal *w, char *err, size_t errlen)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct wal_damage d;
	int got;
	uint64_t end = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		r = wal_reader_open(w->dir, err, errlen);
		if (r == NULL)
			return -1;
		while ((got = wal_reader_next(r, &rec, &d)) == 1)
			;
		if (got == 0)
			break;
		if (!d.tail) {
			damage_message(&d, w->dir, err, errlen);
			wal_reader_free(r);
			return -1;
		}
		if (d.offset < WAL_SEGMENT_HEADER) {
			/* A segment whose creation never finished. */
			char torn[640];
			/* Never over an earlier one: the name says when. */
			snprintf(torn, sizeof(torn), "%s.torn-%lld", d.segment,
			    (long long)time(NULL));
			if (rename(d.segment, torn) == -1) {
				snprintf(err, errlen, "%s: %s", d.segment,
				    strerror(errno));
				wal_reader_free(r);
				return -1;
			}
			fsync(w->dirfd);
			log_warnx("set aside a WAL segment whose creation never "
			    "finished (no record in it): file=%s", torn);
		} else if (cut_tail(&d, d.offset) == -1) {
			snprintf(err, errlen, "cannot cut the torn tail of %s: "
			    "%s", d.segment, strerror(errno));
			wal_reader_free(r);
			return -1;
		}
		wal_reader_free(r);
		r = NULL;
	}
	if (r == NULL) {
		snprintf(err, errlen, "WAL still damaged after cutting its tail");
		return -1;
	}
	if (r->nsegs > 0 && strcmp(r->collector, w->collector) != 0) {
		snprintf(err, errlen, "the WAL in %s belongs to collector \"%s\", "
		    "not \"%s\"; give each instance its own --wal-dir", w->dir,
		    r->collector, w->collector);
		wal_reader_free(r);
		return -1;
	}
	for (size_t i = 0; i < r->nsegs; i++) {
		struct stat st;
		if (stat(r->segs[i].path, &st) == -1 ||
		    segs_push(w, r->segs[i].first, (uint64_t)st.st_size) == -1) {
			snprintf(err, errlen, "%s: %s", r->segs[i].path,
			    strerror(errno));
			wal_reader_free(r);
			return -1;
		}
	}
	end = r->nsegs > 0 ? r->pos : 0;
	wal_reader_free(r);
	w->durable = end;
	return 0;
}

static int
mkdirs(const char *dir)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0750) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

struct wal *
wal_open(const struct wal_config *cfg, char *err, size_t errlen)
{
	struct wal *w;
	char lockpath[600], path[600];

	if (strlen(cfg->collector_id) > COLLECTOR_MAX ||
	    strlen(cfg->dir) >= sizeof(w->dir)) {
		snprintf(err, errlen, "WAL directory or collector id too long");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->dirfd = w->lockfd = w->fd = -1;
	snprintf(w->dir, sizeof(w->dir), "%s", cfg->dir);
	snprintf(w->collector, sizeof(w->collector), "%s", cfg->collector_id);
	w->segment_size = cfg->segment_size;
	w->max_size = cfg->max_size;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);

	if (mkdirs(w->dir) == -1) {
		snprintf(err, errlen, "cannot create the WAL directory %s: %s",
		    w->dir, strerror(errno));
		goto fail;
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(lockpath, sizeof(lockpath), "%s/LOCK", w->dir);
	w->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (w->dirfd == -1 || w->lockfd == -1) {
		snprintf(err, errlen, "cannot open the WAL directory %s: %s",
		    w->dir, strerror(errno));
		goto fail;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "the WAL directory %s is in use by another "
		    "process (%s); give each kanald its own --wal-dir", w->dir,
		    strerror(errno));
		goto fail;
	}
	if (recover(w, err, errlen) == -1)
		goto fail;
	if (w->nsegs == 0) {
		uint64_t first = (uint64_t)clock_wall_ms() << 20;

		w->fd = segment_create(w, first);
		if (w->fd == -1 || segs_push(w, first, WAL_SEGMENT_HEADER) == -1) {
			snprintf(err, errlen, "cannot create a WAL segment in "
			    "%s: %s", w->dir, strerror(errno));
			goto fail;
		}
		w->durable = first;
		w->cur_size = WAL_SEGMENT_HEADER;
		log_info("new write-ahead log: dir=%s first_position=%" PRIu64,
		    w->dir, first);
	} else {
		segment_name(path, sizeof(path), w->dir,
		    w->segs[w->nsegs - 1].first);
		w->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		w->cur_size = w->segs[w->nsegs - 1].size;
		if (w->fd == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		log_info("write-ahead log opened: dir=%s segments=%zu "
		    "bytes=%" PRIu64 " first_position=%" PRIu64
		    " end_position=%" PRIu64, w->dir, w->nsegs, w->bytes,
		    w->segs[0].first, w->durable);
	}
	return w;
fail:
	wal_close(w);
	return NULL;
}

int
wal_scan(struct wal *w, uint64_t from, wal_apply_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct wal_reader *r = wal_reader_open(w->dir, err, errlen);
	struct wal_record rec;
	struct wal_damage d;
	int got;

	if (r == NULL)
		return -1;
	while ((got = wal_reader_next(r, &rec, &d)) == 1)
		if (rec.start >= from)
			fn(arg, &rec);
	wal_reader_free(r);
	if (got == -1) {
		damage_message(&d, w->dir, err, errlen);
		return -1;
	}
	return 0;
}

/* Hands every record of buf, starting at position start, to apply. */
static void
apply_buffer(struct wal *w, const uint8_t *buf, size_t len, uint64_t start)
{
	size_t off = 0;

	while (off < len) {
		struct wal_record rec;
		uint32_t n = le_get_u32(buf + off);

		rec.start = start + off;
		rec.end = rec.start + WAL_RECORD_HEADER + n;
		rec.type = buf[off + 8];
		rec.in_memory = 1;
		rec.payload = buf + off + WAL_RECORD_HEADER;
		rec.len = n;
		w->apply(w->apply_arg, &rec);
		off += WAL_RECORD_HEADER + n;
	}
}

static void *
writer_main(void *arg)
{
	struct wal *w = arg;
	struct bytes tmp;
	struct cvec ctmp;
	uint64_t write_failures = 0, roll_failures = 0;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		uint64_t start, t0, us;
		int roll, ok = 1, failed, no_space = 0, live;
		size_t len;

		while (!w->stop && w->appending.len == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->appending.len == 0)
			break;
		tmp = w->writing;
		w->writing = w->appending;
		w->appending = tmp;
		ctmp = w->inflight;
		w->inflight = w->pending;
		w->pending = ctmp;
		start = w->durable;
		len = w->writing.len;
		roll = w->cur_size >= w->segment_size;
		failed = w->failed;
		pthread_mutex_unlock(&w->mu);

		if (roll && !failed) {
			int fd = segment_create(w, start);
			if (fd == -1) {
				no_space = fs_errno_is_full(errno);
				/* Tried at every group: log 1st, 2nd, 4th, ... */
				roll_failures++;
				if ((roll_failures & (roll_failures - 1)) == 0)
					log_warn("cannot start a new WAL segment; "
					    "writing on in the old one: dir=%s "
					    "failures=%" PRIu64, w->dir,
					    roll_failures);
			} else {
				roll_failures = 0;
				close(w->fd);
				w->fd = fd;
				w->cur_size = WAL_SEGMENT_HEADER;
				pthread_mutex_lock(&w->mu);
				if (segs_push(w, start, WAL_SEGMENT_HEADER) == -1)
					fatalx("out of memory in the WAL writer");
				pthread_mutex_unlock(&w->mu);
			}
		}
		t0 = clock_mono_us();
		if (failed) {
			ok = 0;
		} else if (fs_write_all(w->fd, w->writing.p, len) == -1) {
			/*
			 * ENOSPC and the like: take the partial write back so
			 * the segment ends on a record boundary; the batches
			 * are answered 503 and retried by their clients.
			 */
			int saved = errno;
			ok = 0;
			no_space = fs_errno_is_full(saved);
			if (ftruncate(w->fd, (off_t)w->cur_size) == -1) {
				log_warn("cannot take back a failed WAL write; "
				    "refusing appends until restart");
				failed = 1;
			}
			errno = saved;
			/* A full disk fails every group: log 1st, 2nd, 4th, ... */
			write_failures++;
			if ((write_failures & (write_failures - 1)) == 0)
				log_warn("WAL write failed, batches answered 503%s: "
				    "bytes=%zu failures=%" PRIu64, no_space ?
				    " and /readyz 503 until the disk has room "
				    "again" : "", len, write_failures);
		} else if (fdatasync(w->fd) == -1) {
			/* The kernel may have dropped the pages: don't retry. */
			log_warn("WAL fdatasync failed; refusing appends until "
			    "restart (the WAL on disk is what counts)");
			ok = 0;
			failed = 1;
		}
		us = clock_mono_us() - t0;

		if (ok && write_failures > 0) {
			log_notice("WAL writes work again: failures=%" PRIu64,
			    write_failures);
			write_failures = 0;
		}
		pthread_mutex_lock(&w->mu);
		w->failed = failed;
		/* A write that went in had room, whatever the roll met. */
		w->no_space = ok ? 0 : no_space;
		live = 0;
		if (ok) {
			w->cur_size += len;
			w->segs[w->nsegs - 1].size += len;
			w->bytes += len;
			w->durable = start + len;
			live = w->live;
			w->syncs++;
			w->sync_us_total += us;
			if (us > w->sync_us_max)
				w->sync_us_max = us;
			histogram_observe(&w->sync_us, us);
		}
		if (cvec_move(&w->done, &w->inflight, ok) == -1) {
			/* Unrecoverable bookkeeping failure: never lose a reply. */
			fatalx("out of memory in the WAL writer");
		}
		w->writing.len = 0;
		pthread_mutex_unlock(&w->mu);
		event_active(w->done_ev, EV_READ, 0);
		/*
		 * The records are durable and being answered; they reach the
		 * rollups now, outside the lock, so that appends on the loop
		 * thread never wait for agg. Only this thread swaps or reads
		 * the writing buffer, and it applies in position order. Once
		 * live was seen (wal_go_live had replayed up to durable and
		 * set it, under the lock), the records after are this
		 * thread's to apply; before, go-live reads them from disk. A
		 * flush meanwhile commits a checkpoint below them, so nothing
		 * here is removed before it is counted.
		 */
		if (live)
			apply_buffer(w, w->writing.p, len, start);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct wal *w = arg;
	struct cvec batch;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->mu);
	batch = w->done;
	memset(&w->done, 0, sizeof(w->done));
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < batch.n; i++)
		batch.v[i].done(batch.v[i].arg, batch.v[i].ok);
	free(batch.v);
}

int
wal_start(struct wal *w, struct event_base *base, wal_apply_fn *apply,
    void *apply_arg)
{
	int r;

	w->apply = apply;
	w->apply_arg = apply_arg;
	w->done_ev = event_new(base, -1, 0, on_done, w);
	if (w->done_ev == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r = pthread_create(&w->thread, NULL, writer_main, w);
	if (r != 0) {
		errno = r;
		return -1;
	}
	w->running = 1;
	return 0;
}

int
wal_append(struct wal *w, uint8_t type, const void *payload, size_t len,
    wal_done_fn *done, void *arg)
{
	uint8_t h[WAL_RECORD_HEADER];
	int rc = -1;

	if (len > WAL_RECORD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	le_put_u32(h, (uint32_t)len);
	h[8] = type;
	le_put_u32(h + 4, record_crc(h, payload, len));

	pthread_mutex_lock(&w->mu);
	if (w->failed || w->stop) {
		errno = EIO;
		goto out;
	}
	if (w->bytes + w->appending.len + w->writing.len + sizeof(h) + len >
	    w->max_size) {
		if (!w->full)
			log_warnx("the WAL is full; answering 503 until "
			    "PostgreSQL catches up: bytes=%" PRIu64
			    " max=%" PRIu64, w->bytes, w->max_size);
		w->full = 1;
		errno = ENOSPC;
		goto out;
	}
	w->full = 0;
	if (bytes_reserve(&w->appending, sizeof(h) + len) == -1 ||
	    cvec_push(&w->pending, done, arg) == -1) {
		errno = ENOMEM;
		goto out;
	}
	memcpy(w->appending.p + w->appending.len, h, sizeof(h));
	memcpy(w->appending.p + w->appending.len + sizeof(h), payload, len);
	w->appending.len += sizeof(h) + len;
	pthread_cond_signal(&w->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int
wal_go_live(struct wal *w, uint64_t from, char *err, size_t errlen)
{
	uint64_t pos, end, first, applied = 0;

	pthread_mutex_lock(&w->mu);
	first = w->segs[0].first;
	end = w->durable;
	pthread_mutex_unlock(&w->mu);
	if (from > end) {
		snprintf(err, errlen, "the checkpoint in PostgreSQL (%" PRIu64
		    ") is ahead of this write-ahead log (ends at %" PRIu64 "): "
		    "the WAL directory was replaced or restored, or another "
		    "instance uses this collector id", from, end);
		return -1;
	}
	pos = from < first ? first : from;
	for (;;) {
		struct wal_reader *r;
		struct wal_record rec;
		struct wal_damage d;
		int got;

		pthread_mutex_lock(&w->mu);
		end = w->durable;
		if (pos == end) {
			w->live = 1;
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);

		r = wal_reader_open(w->dir, err, errlen);
		if (r == NULL)
			return -1;
		/* Straight to pos: each pass reads only what is new. */
		if (wal_reader_seek(r, pos, &d) == -1) {
			wal_reader_free(r);
			damage_message(&d, w->dir, err, errlen);
			return -1;
		}
		while ((got = wal_reader_next(r, &rec, &d)) == 1) {
			if (rec.end <= pos)
				continue;
			if (rec.start >= end)
				break;
			if (rec.start != pos) {
				snprintf(err, errlen, "checkpoint %" PRIu64 " is "
				    "not at a record boundary of the WAL",
				    pos);
				wal_reader_free(r);
				return -1;
			}
			w->apply(w->apply_arg, &rec);
			pos = rec.end;
			applied += rec.len;
			if (applied >> 26 != (applied - rec.len) >> 26)
				log_info("replaying the write-ahead log: "
				    "bytes=%" PRIu64 " position=%" PRIu64
				    " end=%" PRIu64, applied, pos, end);
		}
		wal_reader_free(r);
		if (got == -1 && pos < end && applied == 0 && pos == from) {
			/* The very first record after the seek. */
			snprintf(err, errlen, "checkpoint %" PRIu64 " is not at a "
			    "record boundary of the WAL in %s (%s at offset %"
			    PRIu64 " of %s)", pos, w->dir, d.what, d.offset,
			    d.segment);
			return -1;
		}
		if (got == -1 && pos < end) {
			damage_message(&d, w->dir, err, errlen);
			return -1;
		}
		if (pos < end) {
			snprintf(err, errlen, "the WAL ends at %" PRIu64 " on disk "
			    "but %" PRIu64 " was synced", pos, end);
			return -1;
		}
	}
	log_info("write-ahead log replayed: from=%" PRIu64 " to=%" PRIu64
	    " bytes=%" PRIu64, from, pos, applied);
	return 0;
}

/*
 * Removes one segment so that a power cut leaves either the whole segment
 * or none of it, and never a later segment gone while an earlier one
 * stays (a gap, which reads as damage): unlink, then fsync the directory
 * before the next one goes (a file system may keep no order between
 * directory operations; docs/durability.md), and only then give the
 * blocks back, through a descriptor opened before the unlink. Shrinking a
 * file that is still named could leave it cut short, followed by the next
 * segment, after a cut.
 *
 * The blocks go a few MiB at a time: freeing 64 MiB at once makes the
 * file system's next journal commit slow (ext4 mounted with discard trims
 * every freed extent there), and the WAL writer's fdatasync waits for that
 * commit: 11-22 ms stalls, measured (bench/results). In steps, a little
 * apart, each commit frees only one step; close frees the rest. -1 when
 * the unlink failed (errno), else 0.
 */
static int
remove_segment(struct wal *w, const char *path)
{
	const off_t step = 4 << 20;
	struct stat st;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int saved;

	if (unlink(path) == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	if (fsync(w->dirfd) == -1)
		log_warn("cannot fsync the WAL directory after removing a "
		    "segment: file=%s", path);
	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == 0) {
		for (off_t size = st.st_size - step; size > 0; size -= step) {
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			if (ftruncate(fd, size) == -1)
				break;
			nanosleep(&ts, NULL);
		}
	}
	close(fd);
	return 0;
}

int
wal_remove_before(struct wal *w, uint64_t pos,
    int (*before)(void *arg, const struct wal_record *rec), void *arg)
{
	int removed = 0;

	for (;;) {
		char path[600], err[256];
		uint64_t first, next;
		struct wal_reader *r;
		struct wal_record rec;
		struct wal_damage d;
		int got, stop = 0;

		pthread_mutex_lock(&w->mu);
		if (w->nsegs < 2 || w->segs[1].first > pos) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		first = w->segs[0].first;
		next = w->segs[1].first;
		pthread_mutex_unlock(&w->mu);

		segment_name(path, sizeof(path), w->dir, first);
		if (before != NULL) {
			r = wal_reader_open(w->dir, err, sizeof(err));
			if (r == NULL)
				break;
			while ((got = wal_reader_next(r, &rec, &d)) == 1 &&
			    rec.start < next)
				if (before(arg, &rec) == -1) {
					stop = 1;
					break;
				}
			wal_reader_free(r);
			if (got == -1 && d.position < next) {
				/* Keep it: its batches could not all be seen. */
				log_warnx("not removing a WAL segment that cannot "
				    "be read whole: file=%s offset=%" PRIu64
				    " reason=\"%s\"", d.segment, d.offset, d.what);
				break;
			}
			if (stop || before(arg, NULL) == -1)
				break;
		}
		if (remove_segment(w, path) == -1) {
			log_warn("cannot remove a WAL segment: file=%s", path);
			break;
		}
		pthread_mutex_lock(&w->mu);
		w->bytes -= w->segs[0].size;
		memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof(*w->segs));
		w->nsegs--;
		/*
		 * Room again: say so now, not at the next append, or /readyz
		 * would keep a load balancer from sending the batch that
		 * would clear it.
		 */
		if (w->bytes + w->appending.len + w->writing.len < w->max_size)
			w->full = 0;
		pthread_mutex_unlock(&w->mu);
		removed++;
	}
	if (removed > 0) {
		log_debug("removed WAL segments: count=%d before=%" PRIu64,
		    removed, pos);
	}
	return removed;
}

void
wal_stop(struct wal *w)
{
	if (!w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->running = 0;
}

void
wal_close(struct wal *w)
{
	if (w == NULL)
		return;
	wal_stop(w);
	if (w->done_ev != NULL) {
		/* Answer whatever is still queued before the loop goes. */
		on_done(-1, 0, w);
		event_free(w->done_ev);
	}
	if (w->fd != -1)
		close(w->fd);
	if (w->lockfd != -1)
		close(w->lockfd);
	if (w->dirfd != -1)
		close(w->dirfd);
	free(w->segs);
	free(w->appending.p);
	free(w->writing.p);
	free(w->pending.v);
	free(w->inflight.v);
	free(w->done.v);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
wal_get_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mu);
	st->bytes = w->bytes;
	st->segments = w->nsegs;
	st->appended = w->durable + w->writing.len + w->appending.len;
	st->durable = w->durable;
	st->first = w->nsegs > 0 ? w->segs[0].first : 0;
	st->syncs = w->syncs;
	st->sync_us_total = w->sync_us_total;
	st->sync_us_max = w->sync_us_max;
	st->sync_us = w->sync_us;
	st->live = w->live;
	st->full = w->full;
	st->failed = w->failed;
	st->no_space = !w->failed && w->no_space;
	pthread_mutex_unlock(&w->mu);
}
