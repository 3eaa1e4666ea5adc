/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dedup: see dedup.h.
 *
 * Entries sit in a ring in the order they were received (so expiry and
 * eviction take the oldest), indexed by an open-addressing table of ring
 * slots (linear probing, deletion by backward shift, so no tombstones).
 * The digest is the first 16 bytes of SHA-256(source NUL batch_id): a
 * source can only collide with its own batches, and only with
 * negligible chance.
 *
 * batches.idx: fixed 40-byte entries,
 *     u32 CRC-32C of the next 36 bytes, 16 digest, u32 accepted,
 *     u32 rejected, u64 received_ms
 * appended and fdatasynced before the WAL segment they came from goes.
 * The file is rewritten (temp file, fdatasync, rename, directory fsync)
 * at start-up when most of it has expired; if the rename is lost in a
 * crash the old file, a superset, is read again.
 */
#include "dedup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "crc32c.h"
#include "fsutil.h"
#include "log.h"
#include "record.h"
#include "wal.h"

#define IDX_ENTRY 40
#define RING_MIN 1024

struct entry {
	uint8_t digest[16];
	uint32_t accepted;
	uint32_t rejected;
	int64_t received_ms;
	uint8_t pending;
	uint8_t dead;		/* forgotten (failed); not in the table */
};

struct dedup {
	char idx_path[600];
	uint64_t window_ms;
	size_t max_entries;
	struct entry *ring;	/* ring[(head + i) % cap], i < n */
	size_t cap, head, n;
	uint32_t *table;	/* ring index + 1; 0 = empty */
	size_t tcap;		/* power of two, >= 2 * cap */
	uint64_t evicted;
	uint8_t *persist;	/* idx entries of the segment being removed */
	size_t plen, pcap;
	int dir_synced;		/* the directory fsynced since batches.idx was
				 * opened by this process: its name is durable */
	atomic_int no_space;	/* the last write of batches.idx met a full
				 * disk (flush thread; read by /readyz) */
};

/* The directory batches.idx is in, into buf. */
static void
idx_dir(const struct dedup *d, char *buf, size_t len)
{
	char *slash;

	snprintf(buf, len, "%s", d->idx_path);
	slash = strrchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	else
		snprintf(buf, len, ".");
}

void
dedup_digest(const char *src, size_t srclen, const char *bid, size_t bidlen,
    uint8_t out[16])
{
	uint8_t buf[64 + 1 + 64], d[SHA256_DIGEST_LENGTH];

	/* Both are at most 64 bytes (record.h, validate.h). */
	srclen = srclen > 64 ? 64 : srclen;
	bidlen = bidlen > 64 ? 64 : bidlen;
	memcpy(buf, src, srclen);
	buf[srclen] = 0;
	memcpy(buf + srclen + 1, bid, bidlen);
	SHA256(buf, srclen + 1 + bidlen, d);
	memcpy(out, d, 16);
}

static size_t
slot_of(const struct dedup *d, const uint8_t digest[16])
{
	uint64_t h;

	memcpy(&h, digest, 8);
	return (size_t)h & (d->tcap - 1);
}

/* Table slot holding digest, or the empty slot where it would go. */
static size_t
table_find(const struct dedup *d, const uint8_t digest[16])
{
	size_t i = slot_of(d, digest);

	while (d->table[i] != 0 &&
	    memcmp(d->ring[d->table[i] - 1].digest, digest, 16) != 0)
		i = (i + 1) & (d->tcap - 1);
	return i;
}

static void
table_delete(struct dedup *d, size_t i)
{
	size_t j = i;

	d->table[i] = 0;
	/* Backward shift: pull later members of the run into the hole. */
	for (;;) {
		size_t k;
		j = (j + 1) & (d->tcap - 1);
		if (d->table[j] == 0)
			return;
		k = slot_of(d, d->ring[d->table[j] - 1].digest);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			d->table[i] = d->table[j];
			d->table[j] = 0;
			i = j;
		}
	}
}

static void
drop_oldest(struct dedup *d)
{
	struct entry *e = &d->ring[d->head];
	size_t i = table_find(d, e->digest);

	if (d->table[i] != 0 && d->table[i] - 1 == d->head)
		table_delete(d, i);
	d->head = (d->head + 1) % d->cap;
	d->n--;
}

/* Rebuilds ring and table with room for cap entries. */
static int
grow(struct dedup *d, size_t cap)
{
	struct entry *ring = calloc(cap, sizeof(*ring));
	size_t tcap = 1;
	uint32_t *table;

	while (tcap < cap * 2)
		tcap *= 2;
	table = calloc(tcap, sizeof(*table));
	if (ring == NULL || table == NULL) {
		free(ring);
		free(table);
		return -1;
	}
	for (size_t i = 0; i < d->n; i++)
		ring[i] = d->ring[(d->head + i) % d->cap];
	free(d->ring);
	free(d->table);
	d->ring = ring;
	d->table = table;
	d->cap = cap;
	d->tcap = tcap;
	d->head = 0;
	for (size_t i = 0; i < d->n; i++)
		if (!ring[i].dead)
			d->table[table_find(d, ring[i].digest)] = (uint32_t)i + 1;
	return 0;
}

struct dedup *
dedup_new(const char *dir, uint64_t window_ms, size_t max_entries)
{
	struct dedup *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	atomic_init(&d->no_space, 0);
	snprintf(d->idx_path, sizeof(d->idx_path), "%s/batches.idx", dir);
	d->window_ms = window_ms;
	d->max_entries = max_entries < RING_MIN ? RING_MIN : max_entries;
	if (grow(d, RING_MIN) == -1) {
		free(d);
		return NULL;
	}
	return d;
}

void
dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	free(d->ring);
	free(d->table);
	free(d->persist);
	free(d);
}

static void
expire(struct dedup *d, int64_t now_ms)
{
	while (d->n > 0 && !d->ring[d->head].pending &&
	    d->ring[d->head].received_ms + (int64_t)d->window_ms < now_ms)
		drop_oldest(d);
}

enum dedup_state
dedup_find(struct dedup *d, const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, uint32_t *accepted,
    uint32_t *rejected)
{
	uint8_t dg[16];
	size_t i;
	const struct entry *e;

	dedup_digest(source, source_len, batch_id, batch_id_len, dg);
	i = table_find(d, dg);
	if (d->table[i] == 0)
		return DEDUP_NEW;
	e = &d->ring[d->table[i] - 1];
	*accepted = e->accepted;
	*rejected = e->rejected;
	return e->pending ? DEDUP_PENDING : DEDUP_DONE;
}

static int
add_digest(struct dedup *d, const uint8_t dg[16], uint32_t accepted,
    uint32_t rejected, int64_t received_ms, int pending)
{
	size_t i, slot;
	struct entry *e;

	expire(d, received_ms);
	if (d->n == d->cap) {
		if (d->cap < d->max_entries) {
			size_t ncap = d->cap * 2 > d->max_entries ?
			    d->max_entries : d->cap * 2;
			if (grow(d, ncap) == -1)
				return -1;
		} else if (!d->ring[d->head].pending) {
			drop_oldest(d);
			d->evicted++;
		} else {
			errno = ENOSPC;
			return -1;
		}
	}
	i = table_find(d, dg);
	if (d->table[i] != 0) {
		/* Already known (replayed twice): keep the first counts. */
		return 0;
	}
	slot = (d->head + d->n) % d->cap;
	e = &d->ring[slot];
	memcpy(e->digest, dg, 16);
	e->accepted = accepted;
	e->rejected = rejected;
	e->received_ms = received_ms;
	e->pending = pending != 0;
	e->dead = 0;
	d->table[i] = (uint32_t)slot + 1;
	d->n++;
	return 0;
}

int
dedup_add(struct dedup *d, const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, uint32_t accepted,
    uint32_t rejected, int64_t received_ms, int pending)
{
	uint8_t dg[16];

	dedup_digest(source, source_len, batch_id, batch_id_len, dg);
	return add_digest(d, dg, accepted, rejected, received_ms, pending);
}

void
dedup_settle(struct dedup *d, const char *source, size_t source_len,
    const char *batch_id, size_t batch_id_len, int ok)
{
	uint8_t dg[16];
	size_t i;

	dedup_digest(source, source_len, batch_id, batch_id_len, dg);
	i = table_find(d, dg);
	if (d->table[i] == 0)
		return;
	if (ok) {
		d->ring[d->table[i] - 1].pending = 0;
		return;
	}
	/*
	 * A failed batch is forgotten so its retry is taken afresh. Its
	 * ring slot stays (the ring is in arrival order); it is marked as
	 * done with no table entry, and simply expires.
	 */
	d->ring[d->table[i] - 1].pending = 0;
	d->ring[d->table[i] - 1].dead = 1;
	table_delete(d, i);
}

void
dedup_add_record(struct dedup *d, const struct wal_record *rec)
{
	struct record_batch b;
	size_t at;

	if (rec->type != RECORD_TYPE_BATCH ||
	    record_batch_decode(rec->payload, rec->len, &b, &at) == -1)
		return;
	if (dedup_add(d, b.source, b.source_len, b.batch_id, b.batch_id_len,
	    b.accepted, b.rejected, b.received_at_ms, 0) == -1)
		log_warnx("cannot remember a replayed batch: out of memory");
}

int
dedup_persist_record(struct dedup *d, const struct wal_record *rec,
    int64_t now_ms)
{
	struct record_batch b;
	size_t at;
	uint8_t *e;
	struct stat st;
	int fd, rc = -1, saved = 0;

	if (rec != NULL) {
		if (rec->type != RECORD_TYPE_BATCH ||
		    record_batch_decode(rec->payload, rec->len, &b, &at) == -1 ||
		    b.received_at_ms + (int64_t)d->window_ms < now_ms)
			return 0;
		if (d->plen + IDX_ENTRY > d->pcap) {
			size_t ncap = d->pcap ? d->pcap * 2 : 64 * IDX_ENTRY;
			uint8_t *np = realloc(d->persist, ncap);
			if (np == NULL)
				return -1;
			d->persist = np;
			d->pcap = ncap;
		}
		e = d->persist + d->plen;
		dedup_digest(b.source, b.source_len, b.batch_id, b.batch_id_len,
		    e + 4);
		memcpy(e + 20, &b.accepted, 4);
		memcpy(e + 24, &b.rejected, 4);
		memcpy(e + 28, &b.received_at_ms, 8);
		{
			uint32_t c = crc32c(0, e + 4, IDX_ENTRY - 4);
			memcpy(e, &c, 4);
		}
		d->plen += IDX_ENTRY;
		return 0;
	}
	if (d->plen == 0)
		return 0;
	fd = open(d->idx_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd == -1) {
		d->plen = 0;
		atomic_store(&d->no_space, fs_errno_is_full(errno));
		log_warn("cannot open the batch index; keeping the WAL "
		    "segment: file=%s", d->idx_path);
		return -1;
	}
	/* A torn last entry would shift every later one off the 40-byte grid. */
	if (fstat(fd, &st) == 0 && ftruncate(fd, st.st_size -
	    st.st_size % IDX_ENTRY) == 0) {
		if (fs_write_all(fd, d->persist, d->plen) == 0 &&
		    fdatasync(fd) == 0) {
			rc = 0;
		} else {
			saved = errno;
			if (ftruncate(fd, st.st_size - st.st_size % IDX_ENTRY)
			    == -1)
				log_warn("cannot take back a failed write of "
				    "the batch index: file=%s", d->idx_path);
		}
	} else {
		saved = errno;
	}
	close(fd);
	/*
	 * The first time in each process, the directory too: batches.idx may
	 * have just been created, and the segment about to be unlinked must
	 * not outlive its name in a power cut on a file system that keeps no
	 * order between directory operations (docs/durability.md).
	 */
	if (rc == 0 && !d->dir_synced) {
		char dir[600];
		idx_dir(d, dir, sizeof(dir));
		if (fs_sync_dir(dir) == 0)
			d->dir_synced = 1;
		else {
			saved = errno;
			rc = -1;
		}
	}
	atomic_store(&d->no_space, rc == -1 && fs_errno_is_full(saved));
	/*
	 * Failed or not, the buffer starts empty again: a segment that was
	 * kept hands over all its records at the next try.
	 */
	d->plen = 0;
	if (rc != 0) {
		errno = saved;
		log_warn("cannot write the batch index; keeping the WAL "
		    "segment until it can be written%s: file=%s",
		    fs_errno_is_full(saved) ? " (/readyz 503 until the disk "
		    "has room again)" : "", d->idx_path);
	}
	return rc;
}

/*
 * Rewrites batches.idx with the live entries: a temp file written with
 * write(2) and fdatasynced, renamed over the index, then the directory
 * fsynced. Until that fsync the rename may be lost in a power cut and the
 * old file (a superset) comes back. Without it, a later append to the new
 * file could be lost with the rename while an unlink in the same
 * directory (a WAL segment whose ids were just appended) survives, on a
 * file system that does not keep directory operations in order (see
 * docs/durability.md). Best effort: on any failure the old file stays.
 */
static void
compact_failed(struct dedup *d, const char *tmp)
{
	int full = fs_errno_is_full(errno);

	atomic_store(&d->no_space, full);
	log_warn("cannot rewrite the batch index; the old one stays (it holds "
	    "every live entry, and expired ones)%s: file=%s",
	    full ? " and /readyz is 503 until the disk has room again" : "",
	    tmp);
}

static void
compact(struct dedup *d, size_t kept)
{
	uint8_t buf[IDX_ENTRY * 256];
	char tmp[640], dir[600];
	size_t blen = 0;
	int fd, ok = 1, saved;

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->idx_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1) {
		compact_failed(d, tmp);
		return;
	}
	for (size_t i = 0; i < d->n && ok; i++) {
		const struct entry *en = &d->ring[(d->head + i) % d->cap];
		uint8_t *e = buf + blen;
		uint32_t c;

		if (en->dead)
			continue;
		memcpy(e + 4, en->digest, 16);
		memcpy(e + 20, &en->accepted, 4);
		memcpy(e + 24, &en->rejected, 4);
		memcpy(e + 28, &en->received_ms, 8);
		c = crc32c(0, e + 4, IDX_ENTRY - 4);
		memcpy(e, &c, 4);
		blen += IDX_ENTRY;
		if (blen == sizeof(buf)) {
			ok = fs_write_all(fd, buf, blen) == 0;
			blen = 0;
		}
	}
	ok = ok && fs_write_all(fd, buf, blen) == 0 && fdatasync(fd) == 0;
	saved = errno;
	if (close(fd) != 0 && ok) {
		saved = errno;
		ok = 0;
	}
	if (ok && rename(tmp, d->idx_path) != 0) {
		saved = errno;
		ok = 0;
	}
	if (!ok) {
		unlink(tmp);
		errno = saved;
		compact_failed(d, tmp);
		return;
	}
	atomic_store(&d->no_space, 0);
	idx_dir(d, dir, sizeof(dir));
	if (fs_sync_dir(dir) == -1)
		log_warn("cannot fsync the directory of the batch index: "
		    "dir=%s", dir);
	log_info("batch index compacted: entries=%zu", kept);
}

int
dedup_load(struct dedup *d, int64_t now_ms)
{
	FILE *f = fopen(d->idx_path, "r");
	uint8_t e[IDX_ENTRY];
	size_t total = 0, kept = 0, n;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((n = fread(e, 1, IDX_ENTRY, f)) == IDX_ENTRY) {
		uint32_t c, acc, rej;
		int64_t t;

		total++;
		memcpy(&c, e, 4);
		if (c != crc32c(0, e + 4, IDX_ENTRY - 4)) {
			log_warnx("skipping a damaged entry of the batch index: "
			    "file=%s entry=%zu", d->idx_path, total - 1);
			continue;
		}
		memcpy(&acc, e + 20, 4);
		memcpy(&rej, e + 24, 4);
		memcpy(&t, e + 28, 8);
		if (t + (int64_t)d->window_ms < now_ms)
			continue;
		if (add_digest(d, e + 4, acc, rej, t, 0) == -1) {
			fclose(f);
			return -1;
		}
		kept++;
	}
	if (n != 0)
		log_warnx("ignoring a torn last entry of the batch index: "
		    "file=%s bytes=%zu", d->idx_path, n);
	fclose(f);
	/* Mostly expired: rewrite it with what is left. */
	if (total > 1024 && kept * 2 < total)
		compact(d, kept);
	return 0;
}

void
dedup_persist_reset(struct dedup *d)
{
	d->plen = 0;
}

void
dedup_get_stats(const struct dedup *d, struct dedup_stats *st)
{
	st->entries = d->n;
	st->evicted = d->evicted;
	st->oldest_ms = d->n > 0 ? d->ring[d->head].received_ms : 0;
	st->no_space = atomic_load(&((struct dedup *)d)->no_space);
}
