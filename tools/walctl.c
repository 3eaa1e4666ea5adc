/* SPDX-License-Identifier: Apache-2.0 */
/*
 * walctl: see walctl.h. The walk itself is wal_reader_next, so check
 * classifies damage exactly as kanald's start-up does (a torn tail it cuts
 * itself, or damage it stops on). What the reader does not give, the list
 * of segment files and the accounting of what a repair moves out, is read
 * here from the format at the top of daemon/wal.c.
 *
 * REPAIR, and why it is safe to run twice
 *
 * With dir/LOCK held (so kanald can't start meanwhile), for damage at
 * offset N of segment S:
 *  1. N past the header: bytes [N, end) are copied into a new file
 *     S.quarantine-T (O_EXCL; fsync; fsync the directory), and only then
 *     is S cut to N (ftruncate; fsync). N inside the header: S is renamed
 *     whole to S.quarantine-T.
 *  2. The segments after S start where S used to end, so they would leave
 *     a gap: each is renamed to NAME.quarantine-T (never replacing a file).
 *     Not when S was the oldest segment and renamed whole: the next one
 *     then simply becomes the oldest, as after a normal removal.
 *  3. The directory is checked again; any further damage is repaired the
 *     same way.
 * A crash between the steps leaves either the damage (found again), or a
 * gap before the next segment (damage at its header: step 2 again). Names
 * that are taken get a ".2", ".3" suffix; nothing is ever overwritten.
 */
#include "walctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fsutil.h"
#include "le.h"
#include "record.h"
#include "validate.h"
#include "wal.h"

#define QUARANTINE_TRIES 100

/* ------------------------------------------------------------- format */

/* 1 if the record at p (n bytes available) is whole and its CRC holds. */
static int
record_ok(const uint8_t *p, size_t n, uint32_t *len)
{
	uint32_t c;

	*len = 0;
	if (n < WAL_RECORD_HEADER)
		return 0;
	*len = le_get_u32(p);
	if (*len > WAL_RECORD_MAX || *len > n - WAL_RECORD_HEADER)
		return 0;
	c = crc32c(0, p, 4);
	c = crc32c(c, p + 8, 1);
	c = crc32c(c, p + WAL_RECORD_HEADER, *len);
	return c == le_get_u32(p + 4);
}

/* Segment files, by the same name rule as wal.c. */
struct seg {
	uint64_t first;
	char path[PATH_MAX];
};

struct seglist {
	struct seg *v;
	size_t n;
};

static int
seg_name_parse(const char *name, uint64_t *first)
{
	uint64_t v = 0;

	if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
		return -1;
	for (int i = 0; i < 16; i++) {
		int c = (unsigned char)name[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	*first = v;
	return 0;
}

static int
seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/*
 * Lists the segments of dir, oldest first, with paths spelt as the reader
 * spells them. 0, or -1 with errno.
 */
static int
seglist_load(const char *dir, struct seglist *l)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	l->v = NULL;
	l->n = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		if (seg_name_parse(de->d_name, &first) == -1)
			continue;
		if (l->n == cap) {
			struct seg *nv;
			cap = cap ? cap * 2 : 16;
			nv = realloc(l->v, cap * sizeof(*nv));
			if (nv == NULL) {
				closedir(d);
				free(l->v);
				l->v = NULL;
				errno = ENOMEM;
				return -1;
			}
			l->v = nv;
		}
		l->v[l->n].first = first;
		snprintf(l->v[l->n].path, sizeof(l->v[l->n].path),
		    "%s/%016" PRIx64 ".wal", dir, first);
		l->n++;
	}
	closedir(d);
	if (l->n > 0)
		qsort(l->v, l->n, sizeof(*l->v), seg_cmp);
	return 0;
}

/*
 * The reader reports damage to a segment's header at the position where
 * the previous segment ended (0 for the oldest); the segment's own first
 * position, from its name, is what a person can find.
 */
static void
damage_position(struct wal_damage *d)
{
	const char *base = strrchr(d->segment, '/');
	uint64_t first;

	base = base != NULL ? base + 1 : d->segment;
	if (d->offset < WAL_SEGMENT_HEADER &&
	    seg_name_parse(base, &first) == 0)
		d->position = first;
}

/* Index of the segment with that path, or -1. */
static long
seglist_find(const struct seglist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return (long)i;
	return -1;
}

/* The segment holding position pos (the newest starting at or before). */
static const struct seg *
seglist_holding(const struct seglist *l, uint64_t pos)
{
	const struct seg *s = NULL;

	for (size_t i = 0; i < l->n && l->v[i].first <= pos; i++)
		s = &l->v[i];
	return s;
}

/* ----------------------------------------------------------- decoding */

/*
 * Why a record does not decode, or NULL when it does (then *b holds the
 * batch header and *events_at where its events start).
 */
static const char *
record_problem(const struct wal_record *rec, struct record_batch *b,
    size_t *events_at, char *buf, size_t len)
{
	struct agg_event ev;
	size_t off;

	if (rec->type != RECORD_TYPE_BATCH) {
		snprintf(buf, len, "unknown record type %u (kanald skips it)",
		    rec->type);
		return buf;
	}
	if (record_batch_decode(rec->payload, rec->len, b, events_at) == -1)
		return "the batch header does not decode";
	off = *events_at;
	for (uint32_t i = 0; i < b->accepted; i++) {
		if (record_event_next(rec->payload, rec->len, &off, &ev) ==
		    -1) {
			snprintf(buf, len, "event %" PRIu32 " of %" PRIu32
			    " does not decode", i + 1, b->accepted);
			return buf;
		}
		if (ev.has_ref && !b->has_reach) {
			snprintf(buf, len, "event %" PRIu32 " of %" PRIu32
			    " has a citizen hash in a batch without a reach "
			    "key", i + 1, b->accepted);
			return buf;
		}
	}
	if (off != rec->len) {
		snprintf(buf, len, "%zu bytes after the last event",
		    rec->len - off);
		return buf;
	}
	return NULL;
}

/*
 * Prints s as one token: bare when it is plain printable ASCII, else in
 * double quotes with \" \\ and \xNN escapes. A record is data from disk,
 * and must not be able to write to the terminal.
 */
static void
put_token(FILE *out, const char *s, size_t len)
{
	int plain = len > 0;

	for (size_t i = 0; i < len && plain; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			plain = 0;
	}
	if (plain) {
		fwrite(s, 1, len, out);
		return;
	}
	putc('"', out);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			putc(c, out);
	}
	putc('"', out);
}

/* Unix ms as ISO 8601 UTC with milliseconds, or "ms:N" out of range. */
static void
format_ms(char *buf, size_t len, int64_t ms)
{
	int64_t s = ms / 1000, frac = ms % 1000;
	struct tm tm;
	time_t t;
	char day[32];

	if (frac < 0) {
		frac += 1000;
		s--;
	}
	t = (time_t)s;
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900 ||
	    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "ms:%" PRId64, ms);
		return;
	}
	snprintf(buf, len, "%s.%03dZ", day, (int)frac);
}

/* -------------------------------------------------------------- check */

struct tally {
	size_t segments;
	uint64_t records, batches, events, undecodable;
	uint64_t first, end;
	char collector[64];
	int damaged;		/* the walk stopped at d */
	struct wal_damage d;
};

/*
 * Walks dir with the reader. Each record that passes its CRC but does not
 * decode is printed on out (unless out is NULL). 0, or -1 when the
 * directory cannot be read (said on err).
 */
static int
tally_dir(const char *dir, struct tally *t, FILE *out, FILE *err)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct seglist l;
	char msg[256];
	int got;

	memset(t, 0, sizeof(*t));
	if (seglist_load(dir, &l) == -1) {
		fprintf(err, "kanalctl wal: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	r = wal_reader_open(dir, msg, sizeof(msg));
	if (r == NULL) {
		fprintf(err, "kanalctl wal: %s\n", msg);
		free(l.v);
		return -1;
	}
	t->segments = wal_reader_segments(r);
	t->first = t->end = l.n > 0 ? l.v[0].first : 0;
	while ((got = wal_reader_next(r, &rec, &t->d)) == 1) {
		struct record_batch b;
		size_t at;
		const char *why;
		char buf[128];

		t->records++;
		t->end = rec.end;
		why = record_problem(&rec, &b, &at, buf, sizeof(buf));
		if (why == NULL) {
			t->batches++;
			t->events += b.accepted;
			continue;
		}
		t->undecodable++;
		if (out != NULL) {
			const struct seg *s = seglist_holding(&l, rec.start);
			fprintf(out, "%s: offset %" PRIu64 " (position %"
			    PRIu64 "): record of %zu bytes passes its CRC but "
			    "does not decode: %s\n", s ? s->path : dir, s ?
			    WAL_SEGMENT_HEADER + (rec.start - s->first) : 0,
			    rec.start, rec.len, why);
			fprintf(out, "  kanald starts, skips it and counts "
			    "none of its events; --repair leaves it in "
			    "place\n");
		}
	}
	t->damaged = got == -1;
	snprintf(t->collector, sizeof(t->collector), "%s",
	    wal_reader_collector(r));
	wal_reader_free(r);
	if (t->damaged)
		damage_position(&t->d);
	free(l.v);
	return 0;
}

/* Bytes of path from offset off to its end (0 if it can't be read). */
static uint64_t
bytes_from(const char *path, uint64_t off)
{
	struct stat st;

	if (stat(path, &st) == -1 || (uint64_t)st.st_size < off)
		return 0;
	return (uint64_t)st.st_size - off;
}

/*
 * 1 if another process (kanald) holds dir/LOCK, 0 if not, -1 if that
 * can't be told. Probes without creating anything and lets go at once.
 */
static int
lock_held(const char *dir)
{
	char path[PATH_MAX];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		rc = errno == EWOULDBLOCK ? 1 : -1;
	close(fd);
	return rc;
}

/* locked: we hold dir/LOCK ourselves (a repair). */
static void
damage_print(FILE *out, const char *dir, const struct wal_damage *d,
    int locked)
{
	fprintf(out, "%s: offset %" PRIu64 " (position %" PRIu64 "): %s\n",
	    d->segment, d->offset, d->position, d->what);
	if (d->tail) {
		fprintf(out, "  torn tail: %" PRIu64 " bytes of a write that "
		    "was never synced, so never acknowledged; kanald cuts them "
		    "off at start-up (--repair moves them to a quarantine file "
		    "instead)\n", bytes_from(d->segment, d->offset));
	} else {
		fprintf(out, "  damage: kanald will not start on this "
		    "directory (exit status 3) until it is repaired; stop "
		    "kanald and run `kanalctl wal check --repair %s`\n", dir);
	}
	/* Read under a running kanald, its own work can look like damage. */
	if (!locked && lock_held(dir) == 1)
		fprintf(out, "  kanald is running on this directory: a write "
		    "in progress or a segment it removed meanwhile reads as "
		    "damage; stop it for a definite answer\n");
}

static void
summary_print(FILE *out, const char *dir, const struct tally *t)
{
	fprintf(out, "wal: %s\n", dir);
	fprintf(out, "collector: %s\n", t->collector[0] != '\0' ?
	    t->collector : "-");
	fprintf(out, "segments: %zu\n", t->segments);
	fprintf(out, "records: %" PRIu64 "%s\n", t->records, t->damaged ?
	    " (before the damage)" : "");
	fprintf(out, "batches: %" PRIu64 "\n", t->batches);
	fprintf(out, "events: %" PRIu64 "\n", t->events);
	fprintf(out, "first position: %" PRIu64 "\n", t->first);
	fprintf(out, "end position: %" PRIu64 "\n", t->end);
}

/* ------------------------------------------------------------- repair */

/* What a repair moved out of the log. */
struct loss {
	uint64_t bytes;		/* all bytes moved into quarantine */
	uint64_t records;	/* records in them that still read */
	uint64_t batches, events;
	uint64_t damaged;	/* records whose CRC fails */
	uint64_t unreadable;	/* bytes that don't read as records at all */
};

/*
 * Accounts records from offset off of p: whole records with a good CRC,
 * records with a plausible length but a bad CRC (stepped over), and the
 * rest, from the first impossible length, as unreadable.
 */
static void
loss_add_span(struct loss *ls, const uint8_t *p, size_t size, size_t off)
{
	while (off < size) {
		uint32_t len;
		struct wal_record rec;
		struct record_batch b;
		size_t at;
		char buf[128];

		if (record_ok(p + off, size - off, &len)) {
			ls->records++;
			rec.type = p[off + 8];
			rec.in_memory = 0;
			rec.payload = p + off + WAL_RECORD_HEADER;
			rec.len = len;
			if (record_problem(&rec, &b, &at, buf, sizeof(buf)) ==
			    NULL) {
				ls->batches++;
				ls->events += b.accepted;
			}
		} else if (size - off >= WAL_RECORD_HEADER &&
		    len <= WAL_RECORD_MAX && len <= size - off -
		    WAL_RECORD_HEADER) {
			ls->damaged++;
		} else {
			ls->unreadable += size - off;
			return;
		}
		off += WAL_RECORD_HEADER + (size_t)len;
	}
}

/* Accounts the records of a file from offset off. 0, or -1 with errno. */
static int
loss_add_file(struct loss *ls, const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *map;

	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	if ((uint64_t)st.st_size > off)
		loss_add_span(ls, map, (size_t)st.st_size, (size_t)off);
	else
		ls->unreadable += (uint64_t)st.st_size;
	munmap(map, (size_t)st.st_size);
	return 0;
}

static void
quarantine_name(char *buf, size_t len, const char *path, long long stamp,
    int attempt)
{
	if (attempt == 0)
		snprintf(buf, len, "%s.quarantine-%lld", path, stamp);
	else
		snprintf(buf, len, "%s.quarantine-%lld.%d", path, stamp,
		    attempt + 1);
}

/*
 * Renames from to from.quarantine-stamp (or a free ".N" variant of it),
 * never replacing a file. 0 with the name in to, or -1 with errno.
 */
static int
quarantine_rename(const char *from, long long stamp, char *to, size_t len)
{
	for (int i = 0; i < QUARANTINE_TRIES; i++) {
		quarantine_name(to, len, from, stamp, i);
		if (renameat2(AT_FDCWD, from, AT_FDCWD, to,
		    RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		/* A file system without RENAME_NOREPLACE: link, then unlink. */
		if (link(from, to) == 0)
			return unlink(from);
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/*
 * Copies bytes [off, end) of the segment open as fd into a new quarantine
 * file beside path, synced, with the segment's owner and mode. 0 with its
 * name in to, or -1 with errno (no quarantine file is left then).
 */
static int
quarantine_copy(int fd, const char *path, uint64_t off, long long stamp,
    char *to, size_t len)
{
	struct stat st;
	uint8_t buf[65536];
	int q = -1, saved;

	if (fstat(fd, &st) == -1)
		return -1;
	for (int i = 0; i < QUARANTINE_TRIES && q == -1; i++) {
		quarantine_name(to, len, path, stamp, i);
		q = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    st.st_mode & 0777);
		if (q == -1 && errno != EEXIST)
			return -1;
	}
	if (q == -1)
		return -1;
	/* Run as root, the copy still belongs to kanald's user. */
	if (fchown(q, st.st_uid, st.st_gid) == -1) {
		/* Not root: the copy is the caller's, which is fine. */
	}
	while (off < (uint64_t)st.st_size) {
		size_t want = sizeof(buf);
		ssize_t n;

		if ((uint64_t)st.st_size - off < want)
			want = (size_t)((uint64_t)st.st_size - off);
		n = pread(fd, buf, want, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		if (fs_write_all(q, buf, (size_t)n) == -1)
			goto fail;
		off += (uint64_t)n;
	}
	if (fsync(q) == -1)
		goto fail;
	if (close(q) == -1) {
		q = -1;
		goto fail;
	}
	return 0;
fail:
	saved = errno;
	if (q != -1)
		close(q);
	unlink(to);
	errno = saved;
	return -1;
}

/* Takes dir/LOCK as kanald does. The fd (held), -1 with errno. */
static int
lock_take(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		/* Made by root, LOCK must still open for kanald's user. */
		if (fd != -1 && stat(dir, &st) == 0 &&
		    fchown(fd, st.st_uid, st.st_gid) == -1) {
			/* Not root: LOCK is ours, as the directory is. */
		}
	}
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Moves the damage d out of the log as described at the top of this file,
 * printing each move on out. 0, or -1 with the failure on err (what was
 * done before it is printed).
 */
static int
repair_one(const char *dir, const struct wal_damage *d, long long stamp,
    struct loss *ls, FILE *out, FILE *err)
{
	struct seglist l;
	char to[PATH_MAX + 64];
	long k;
	size_t later_from;
	int fd, rc = -1;

	if (seglist_load(dir, &l) == -1) {
		fprintf(err, "kanalctl wal check: %s: %s\n", dir,
		    strerror(errno));
		return -1;
	}
	k = seglist_find(&l, d->segment);
	if (k < 0) {
		fprintf(err, "kanalctl wal check: %s is gone; nothing was "
		    "moved\n", d->segment);
		goto out;
	}
	if (d->offset < WAL_SEGMENT_HEADER) {
		/* Read it first: a file we can't read is not ours to move. */
		uint64_t size = bytes_from(d->segment, 0);
		if (loss_add_file(ls, d->segment, WAL_SEGMENT_HEADER) == -1 ||
		    quarantine_rename(d->segment, stamp, to, sizeof(to)) ==
		    -1) {
			fprintf(err, "kanalctl wal check: cannot move %s "
			    "aside: %s\n", d->segment, strerror(errno));
			goto out;
		}
		ls->bytes += size;
		fprintf(out, "repair: renamed %s to %s (%" PRIu64 " bytes, the "
		    "whole segment: %s)\n", d->segment, to, size, d->what);
		/* The oldest segment's successors still follow on. */
		later_from = k == 0 ? l.n : (size_t)k + 1;
	} else {
		uint64_t size;
		struct stat st;

		fd = open(d->segment, O_RDWR | O_CLOEXEC);
		if (fd == -1 || fstat(fd, &st) == -1) {
			fprintf(err, "kanalctl wal check: cannot open %s: %s\n",
			    d->segment, strerror(errno));
			if (fd != -1)
				close(fd);
			goto out;
		}
		size = (uint64_t)st.st_size - d->offset;
		if (quarantine_copy(fd, d->segment, d->offset, stamp, to,
		    sizeof(to)) == -1 || dir_sync(dir) == -1) {
			fprintf(err, "kanalctl wal check: cannot copy the "
			    "damaged part of %s aside safely: %s; the segment "
			    "is unchanged\n", d->segment, strerror(errno));
			close(fd);
			goto out;
		}
		fprintf(out, "repair: copied offset %" PRIu64 "..%" PRIu64
		    " of %s (%" PRIu64 " bytes, positions %" PRIu64 "..%"
		    PRIu64 ") to %s\n", d->offset, (uint64_t)st.st_size,
		    d->segment, size, d->position, d->position + size, to);
		if (ftruncate(fd, (off_t)d->offset) == -1 || fsync(fd) == -1) {
			fprintf(err, "kanalctl wal check: cannot cut %s at "
			    "offset %" PRIu64 ": %s (the copy %s stays)\n",
			    d->segment, d->offset, strerror(errno), to);
			close(fd);
			goto out;
		}
		close(fd);
		fprintf(out, "repair: cut %s to %" PRIu64 " bytes\n",
		    d->segment, d->offset);
		if (loss_add_file(ls, to, 0) == -1)
			ls->unreadable += size;
		ls->bytes += size;
		later_from = (size_t)k + 1;
	}
	for (size_t i = later_from; i < l.n; i++) {
		const char *p = l.v[i].path;
		uint64_t size = bytes_from(p, 0);

		if (loss_add_file(ls, p, WAL_SEGMENT_HEADER) == -1 ||
		    quarantine_rename(p, stamp, to, sizeof(to)) == -1) {
			fprintf(err, "kanalctl wal check: cannot move %s "
			    "aside: %s\n", p, strerror(errno));
			dir_sync(dir);
			goto out;
		}
		ls->bytes += size;
		fprintf(out, "repair: renamed %s to %s (%" PRIu64 " bytes, "
		    "positions from %" PRIu64 "; it followed the damage)\n", p,
		    to, size, l.v[i].first);
	}
	if (dir_sync(dir) == -1) {
		fprintf(err, "kanalctl wal check: cannot sync %s: %s\n", dir,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(l.v);
	return rc;
}

static void
loss_print(FILE *out, const struct loss *ls)
{
	fprintf(out, "moved out of the log: %" PRIu64 " bytes, kept in the "
	    "quarantine files above for a person to inspect\n", ls->bytes);
	fprintf(out, "  records that still read: %" PRIu64 " (%" PRIu64
	    " batches, %" PRIu64 " events)\n", ls->records, ls->batches,
	    ls->events);
	fprintf(out, "  damaged records: %" PRIu64 "\n", ls->damaged);
	fprintf(out, "  bytes that do not read as records: %" PRIu64 "\n",
	    ls->unreadable);
	fprintf(out, "  kanald will not replay any of them: their events are "
	    "in PostgreSQL only if they end at or before "
	    "kanal.collector_checkpoint.wal_position\n");
}

static int
repair_all(const char *dir, struct tally *t, FILE *out, FILE *err)
{
	struct loss ls;
	long long stamp = (long long)time(NULL);
	size_t rounds = 0;

	memset(&ls, 0, sizeof(ls));
	while (t->damaged) {
		struct wal_damage prev = t->d;

		/* Each round moves at least one file or cuts one. */
		if (rounds++ > t->segments + 2) {
			fprintf(err, "kanalctl wal check: the repair does not "
			    "converge; stopping\n");
			return 1;
		}
		if (repair_one(dir, &t->d, stamp, &ls, out, err) == -1) {
			loss_print(out, &ls);
			return 1;
		}
		if (tally_dir(dir, t, NULL, err) == -1)
			return 1;
		if (t->damaged) {
			if (strcmp(prev.segment, t->d.segment) == 0 &&
			    prev.offset == t->d.offset) {
				fprintf(err, "kanalctl wal check: %s is still "
				    "damaged at offset %" PRIu64 " after the "
				    "repair; stopping\n", t->d.segment,
				    t->d.offset);
				return 1;
			}
			fprintf(out, "then:\n");
			damage_print(out, dir, &t->d, 1);
		}
	}
	loss_print(out, &ls);
	fprintf(out, "after the repair: %zu segments, %" PRIu64 " records, "
	    "positions %" PRIu64 "..%" PRIu64 "; kanald can start on %s\n",
	    t->segments, t->records, t->first, t->end, dir);
	fprintf(out, "  first compare kanal.collector_checkpoint.wal_position: "
	    "above %" PRIu64 ", everything left is already counted and "
	    "kanald would stop (see docs/wal.md)\n", t->end);
	return 0;
}

int
walctl_check(const char *dir, int repair, FILE *out, FILE *err)
{
	struct tally t;
	FILE *notes;
	char *nbuf = NULL;
	size_t nlen = 0;
	int lockfd = -1, rc;

	if (repair) {
		lockfd = lock_take(dir);
		if (lockfd == -1) {
			if (errno == EWOULDBLOCK)
				fprintf(err, "kanalctl wal check: kanald is "
				    "running on %s (it holds %s/LOCK); stop it "
				    "before --repair. Nothing was changed.\n",
				    dir, dir);
			else
				fprintf(err, "kanalctl wal check: cannot lock "
				    "%s/LOCK: %s. Nothing was changed.\n", dir,
				    strerror(errno));
			return 1;
		}
	}
	/* Records that don't decode are listed after the summary. */
	notes = open_memstream(&nbuf, &nlen);
	if (notes == NULL) {
		fprintf(err, "kanalctl wal check: out of memory\n");
		rc = 1;
		goto out;
	}
	if (tally_dir(dir, &t, notes, err) == -1) {
		rc = 1;
		goto out;
	}
	fclose(notes);
	notes = NULL;
	summary_print(out, dir, &t);
	fwrite(nbuf, 1, nlen, out);
	if (t.damaged)
		damage_print(out, dir, &t.d, lockfd != -1);
	fprintf(out, "status: %s\n", t.damaged ? (t.d.tail ? "torn tail" :
	    "damaged") : t.undecodable > 0 ? "records that do not decode" :
	    "clean");
	rc = t.damaged || t.undecodable > 0;
	if (!repair || !t.damaged)
		goto out;
	rc = repair_all(dir, &t, out, err);
	if (rc == 0 && t.undecodable > 0) {
		fprintf(out, "status: %" PRIu64 " records that do not decode "
		    "are left in place (above)\n", t.undecodable);
		rc = 1;
	} else if (rc == 0) {
		fprintf(out, "status: clean\n");
	}
out:
	if (notes != NULL)
		fclose(notes);
	free(nbuf);
	if (lockfd != -1)
		close(lockfd);
	return rc;
}

/* --------------------------------------------------------------- dump */

static void
dump_events(FILE *out, const struct wal_record *rec,
    const struct record_batch *b, size_t off)
{
	for (uint32_t i = 0; i < b->accepted; i++) {
		struct agg_event ev;
		char at[48];

		if (record_event_next(rec->payload, rec->len, &off, &ev) == -1)
			return;		/* checked before: can't happen */
		format_ms(at, sizeof(at), ev.occurred_at_ms);
		/* Whether a citizen was hashed, never the hash. */
		fprintf(out, "    occurred_at=%s service=%.*s channel=%s "
		    "region=%.*s outcome=%s assisted=%u duration_ms=%" PRIu32
		    "%s\n", at, (int)ev.service_len, ev.service,
		    validate_channel_name(ev.channel), (int)ev.region_len,
		    ev.region, validate_outcome_name(ev.outcome), ev.assisted,
		    ev.duration_ms, ev.has_ref ? " citizen=hashed" : "");
	}
}

int
walctl_dump(const char *dir, uint64_t from, int events, FILE *out,
    FILE *err)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct wal_damage d;
	char msg[256];
	uint64_t shown = 0, bad = 0, end = 0;
	int got;

	r = wal_reader_open(dir, msg, sizeof(msg));
	if (r == NULL) {
		fprintf(err, "kanalctl wal dump: %s\n", msg);
		return 1;
	}
	while ((got = wal_reader_next(r, &rec, &d)) == 1) {
		struct record_batch b;
		size_t at;
		const char *why;
		char buf[128], when[48];

		end = rec.end;
		if (rec.start < from)
			continue;
		shown++;
		why = record_problem(&rec, &b, &at, buf, sizeof(buf));
		fprintf(out, "start=%" PRIu64 " end=%" PRIu64, rec.start,
		    rec.end);
		if (rec.type == RECORD_TYPE_BATCH)
			fprintf(out, " type=batch");
		else
			fprintf(out, " type=%u", rec.type);
		fprintf(out, " len=%zu", rec.len);
		if (why != NULL) {
			fprintf(out, " undecodable=");
			put_token(out, why, strlen(why));
			putc('\n', out);
			bad++;
			continue;
		}
		format_ms(when, sizeof(when), b.received_at_ms);
		fprintf(out, " received_at=%s source=", when);
		put_token(out, b.source, b.source_len);
		fprintf(out, " batch_id=");
		put_token(out, b.batch_id, b.batch_id_len);
		fprintf(out, " accepted=%" PRIu32 " rejected=%" PRIu32,
		    b.accepted, b.rejected);
		if (b.has_reach)
			fprintf(out, " reach_key_id=%" PRId64,
			    b.reach_key_id);
		putc('\n', out);
		if (events)
			dump_events(out, &rec, &b, at);
	}
	wal_reader_free(r);
	fflush(out);
	if (got == -1) {
		damage_position(&d);
		fprintf(err, "kanalctl wal dump: stopped at %s: %s: offset %"
		    PRIu64 " (position %" PRIu64 "): %s; see `kanalctl wal "
		    "check %s`\n", d.tail ? "a torn tail" : "damage",
		    d.segment, d.offset, d.position, d.what, dir);
		return 1;
	}
	if (bad > 0) {
		fprintf(err, "kanalctl wal dump: %" PRIu64 " records do not "
		    "decode (marked undecodable=)\n", bad);
		return 1;
	}
	if (shown == 0 && from > 0)
		fprintf(err, "kanalctl wal dump: no record starts at or after "
		    "position %" PRIu64 " (the log ends at %" PRIu64 ")\n",
		    from, end);
	return 0;
}
