/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_wal: WAL segments built from the input, read and recovered as
 * kanald and kanalctl do (the format and the rules are at the top of
 * daemon/wal.c).
 *
 * Input: one flags byte, then the bytes of one segment file, or of two:
 *
 *   flag 1  fix up: the header's magic, version, size and CRC and every
 *           record's CRC are made right (records walked by their length
 *           fields, up to the first that runs past the end), and a second
 *           segment's first position made the first one's end, so the
 *           fuzzer gets past the checksums to the record codec; without
 *           it the bytes are written as they are
 *   flag 2  two segments: a u32 (little-endian) length of the first
 *           follows the flags
 *   flag 4  repair first with `kanalctl wal check --repair` (walctl_check)
 *   bits 3-7  which record boundary wal_reader_seek is tried at
 *
 * A segment is named after the first position in its header (bytes
 * 16..23), or 0x100000 when it is shorter than that, in an empty scratch
 * directory. Then, with the invariants checked:
 *
 *   - `kanalctl wal check` and `kanalctl wal dump --events` run (read
 *     only) on it;
 *   - the reader walks it: each record starts where the one before
 *     ended, positions stay below 2^63, and a seek to a record's start
 *     reads that same record;
 *   - wal_open (recovery) succeeds exactly when the walk found no damage
 *     or a torn tail, and afterwards the WAL reads clean, with the same
 *     records as before the tail;
 *   - wal_scan replays it into the rollups through ingest_apply, the
 *     daemon's own record decoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "crc32c.h"
#include "fuzzlib.h"
#include "ingest.h"
#include "le.h"
#include "wal.h"
#include "walctl.h"

#define FLAG_FIX 1
#define FLAG_TWO 2
#define FLAG_REPAIR 4
#define DEFAULT_FIRST UINT64_C(0x100000)
#define MAX_RECORDS 4096

static FILE *devnull;
static uint8_t *buf;
static size_t bufcap;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	devnull = fopen("/dev/null", "w");
	FUZZ_CHECK(devnull != NULL);
	return 0;
}

/* Makes the checksums of segment s right; returns its end position. */
static uint64_t
fix_segment(uint8_t *s, size_t len, uint64_t first)
{
	size_t off = WAL_SEGMENT_HEADER;

	if (len < WAL_SEGMENT_HEADER)
		return first;
	memcpy(s, "KANALWAL", 8);
	le_put_u32(s + 8, 1);
	le_put_u32(s + 12, WAL_SEGMENT_HEADER);
	le_put_u64(s + 16, first);
	le_put_u32(s + 124, crc32c(0, s, 124));
	while (len - off >= WAL_RECORD_HEADER) {
		uint32_t n = le_get_u32(s + off), c;

		if (n > len - off - WAL_RECORD_HEADER)
			break;
		c = crc32c(0, s + off, 4);
		c = crc32c(c, s + off + 8, 1);
		c = crc32c(c, s + off + WAL_RECORD_HEADER, n);
		le_put_u32(s + off + 4, c);
		off += WAL_RECORD_HEADER + n;
		first += WAL_RECORD_HEADER + n;
	}
	return first;
}

static void
write_segment(const char *dir, const uint8_t *s, size_t len)
{
	char path[600];
	uint64_t first = len >= 24 ? le_get_u64(s + 16) : DEFAULT_FIRST;

	snprintf(path, sizeof(path), "%s/%016llx.wal", dir,
	    (unsigned long long)first);
	fuzz_write_file(path, s, len);
}

struct walk {
	size_t n;		/* records read */
	uint64_t start[MAX_RECORDS], len[MAX_RECORDS];
	int damaged, tail;
	char collector[64];
};

/* Reads the whole WAL in dir with the reader; checks the positions. */
static void
walk(const char *dir, struct walk *w)
{
	char err[256];
	struct wal_reader *r = wal_reader_open(dir, err, sizeof(err));
	struct wal_record rec;
	struct wal_damage d;
	int got;
	uint64_t prev = 0;

	FUZZ_CHECK(r != NULL);
	memset(w, 0, sizeof(*w));
	while ((got = wal_reader_next(r, &rec, &d)) == 1) {
		FUZZ_CHECK(rec.end == rec.start + WAL_RECORD_HEADER + rec.len);
		/* Back to back, across segments too (no gap, no wrap). */
		FUZZ_CHECK(w->n == 0 || rec.start == prev);
		FUZZ_CHECK(rec.end > rec.start &&
		    rec.end <= (uint64_t)INT64_MAX);
		prev = rec.end;
		if (w->n < MAX_RECORDS) {
			w->start[w->n] = rec.start;
			w->len[w->n] = rec.len;
		}
		w->n++;
	}
	if (got == -1) {
		w->damaged = 1;
		w->tail = d.tail;
		FUZZ_CHECK(memchr(d.what, '\0', sizeof(d.what)) != NULL);
	}
	snprintf(w->collector, sizeof(w->collector), "%s",
	    wal_reader_collector(r));
	wal_reader_free(r);
}

/* A seek to the start of record k reads record k again. */
static void
check_seek(const char *dir, const struct walk *w, size_t k)
{
	char err[256];
	struct wal_reader *r;
	struct wal_record rec;
	struct wal_damage d;

	if (w->n == 0 || w->n > MAX_RECORDS)
		return;
	k %= w->n;
	r = wal_reader_open(dir, err, sizeof(err));
	FUZZ_CHECK(r != NULL);
	FUZZ_CHECK(wal_reader_seek(r, w->start[k], &d) == 0);
	FUZZ_CHECK(wal_reader_next(r, &rec, &d) == 1);
	FUZZ_CHECK(rec.start == w->start[k] && rec.len == w->len[k]);
	wal_reader_free(r);
}

/* Opens (recovers) the WAL and replays it through ingest_apply. */
static void
recover(const char *dir, const struct walk *before)
{
	struct wal_config cfg = {
		.dir = dir,
		/* Whatever the headers say, even "": a mismatch is not
		 * what is being tested. */
		.collector_id = before->collector,
		.segment_size = 1u << 30,
		.max_size = 1ull << 40,
	};
	struct ingest_config icfg = { .max_body_size = 1024,
	    .max_batch_events = 1 };
	struct walk after;
	char err[1024];
	struct wal *w;
	struct agg *a;
	struct ingest *in;

	w = wal_open(&cfg, err, sizeof(err));
	if (before->damaged && !before->tail) {
		FUZZ_CHECK(w == NULL);
		return;
	}
	FUZZ_CHECK(w != NULL);
	a = agg_new();
	in = ingest_new(a, &icfg);
	FUZZ_CHECK(a != NULL && in != NULL);
	FUZZ_CHECK(wal_scan(w, 0, ingest_apply, in, err, sizeof(err)) == 0);
	ingest_free(in);
	agg_free(a);
	wal_close(w);
	walk(dir, &after);
	FUZZ_CHECK(!after.damaged);
	FUZZ_CHECK(after.n == before->n);
	for (size_t i = 0; i < after.n && i < MAX_RECORDS; i++)
		FUZZ_CHECK(after.start[i] == before->start[i] &&
		    after.len[i] == before->len[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_scratch_dir();
	struct walk before;
	size_t len1, len2;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	if (buf == NULL || size > bufcap) {
		free(buf);
		buf = malloc(size + 1);
		FUZZ_CHECK(buf != NULL);
		bufcap = size;
	}
	len1 = size;
	if (flags & FLAG_TWO) {
		if (size < 4)
			return 0;
		len1 = le_get_u32(data);
		data += 4;
		size -= 4;
		if (len1 > size)
			len1 = size;
	}
	len2 = size - len1;
	if (size > 0)
		memcpy(buf, data, size);
	if (flags & FLAG_FIX) {
		uint64_t end = fix_segment(buf, len1, len1 >= 24 ?
		    le_get_u64(buf + 16) : DEFAULT_FIRST);
		fix_segment(buf + len1, len2, end);
	}
	fuzz_empty_dir(dir);
	write_segment(dir, buf, len1);
	if (flags & FLAG_TWO)
		write_segment(dir, buf + len1, len2);

	walctl_check(dir, 0, devnull, devnull);
	walctl_dump(dir, 0, 1, devnull, devnull);
	walk(dir, &before);
	check_seek(dir, &before, (size_t)(flags >> 3));
	if (flags & FLAG_REPAIR) {
		walctl_check(dir, 1, devnull, devnull);
		walk(dir, &before);
		FUZZ_CHECK(!before.damaged);
	}
	recover(dir, &before);
	return 0;
}
