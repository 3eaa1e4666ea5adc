/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dedup: the batch-id memory. States (new, pending, done) and
 * settling; expiry after the window; eviction when max_entries batches
 * arrive within it; growth of the ring and table; and the memory across
 * restarts: batches.idx written by dedup_persist_record, read back by
 * dedup_load (expired, torn and damaged entries), and dedup_add_record
 * from WAL records.
 *
 * batches.idx files are real files in a fresh directory under
 * $KANAL_TEST_TMP (or /tmp), one per test, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dedup.h"
#include "log.h"
#include "record.h"
#include "wal.h"

#define DAY_MS (24LL * 3600 * 1000)
#define T0 1780000000000LL
#define IDX_ENTRY 40

/* ------------------------------------------------------------- helpers */

static char tmpbase[1024];

static int
setup_group(void **state)
{
	const char *base = getenv("KANAL_TEST_TMP");

	(void)state;
	log_init("test_dedup", LOG_LEVEL_ERR);
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (mkdir(base, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(tmpbase, sizeof(tmpbase), "%s/test_dedup.XXXXXX", base);
	return mkdtemp(tmpbase) == NULL ? -1 : 0;
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
	return nftw(tmpbase, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory for one test's batches.idx. */
static void
fresh_dir(char *out, size_t len)
{
	snprintf(out, len, "%s/d.XXXXXX", tmpbase);
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp %s: %s", out, strerror(errno));
}

static void
idx_path(const char *dir, char *out, size_t len)
{
	snprintf(out, len, "%s/batches.idx", dir);
}

/* Size of a file, -1 if it does not exist. */
static long long
file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return (long long)st.st_size;
}

static void
append_bytes(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd != -1);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
batch_id(char *out, size_t len, int i)
{
	snprintf(out, len, "batch-%06d", i);
}

static enum dedup_state
find(struct dedup *d, const char *src, const char *bid, uint32_t *acc,
    uint32_t *rej)
{
	uint32_t a = 0, r = 0;
	enum dedup_state s = dedup_find(d, src, strlen(src), bid, strlen(bid),
	    &a, &r);

	if (acc != NULL)
		*acc = a;
	if (rej != NULL)
		*rej = r;
	return s;
}

static void
add(struct dedup *d, const char *src, const char *bid, uint32_t acc,
    uint32_t rej, int64_t ms, int pending)
{
	assert_int_equal(dedup_add(d, src, strlen(src), bid, strlen(bid), acc,
	    rej, ms, pending), 0);
}

static void
add_i(struct dedup *d, int i, int64_t ms, int pending)
{
	char bid[32];

	batch_id(bid, sizeof(bid), i);
	add(d, "src", bid, (uint32_t)i % 7, (uint32_t)i % 3, ms, pending);
}

static void
assert_state_i(struct dedup *d, int i, enum dedup_state want)
{
	char bid[32];
	uint32_t acc, rej;
	enum dedup_state s;

	batch_id(bid, sizeof(bid), i);
	s = find(d, "src", bid, &acc, &rej);
	if (s != want)
		fail_msg("%s: state %d, want %d", bid, (int)s, (int)want);
	if (s != DEDUP_NEW) {
		assert_int_equal(acc, (uint32_t)i % 7);
		assert_int_equal(rej, (uint32_t)i % 3);
	}
}

/*
 * A WAL BATCH record of source/batch_id with `accepted` events and the
 * given counts. The payload lives in buf (at least 1024 bytes).
 */
static struct wal_record
batch_record(uint8_t *buf, const char *src, const char *bid,
    uint32_t accepted, uint32_t rejected, int64_t received_ms)
{
	struct agg_event ev[8];
	struct record_batch b;
	struct wal_record rec;

	assert_true(accepted <= 8);
	for (uint32_t i = 0; i < accepted; i++) {
		memset(&ev[i], 0, sizeof(ev[i]));
		ev[i].occurred_at_ms = received_ms - 1000;
		ev[i].service = "dukcapil.akta-lahir";
		ev[i].service_len = strlen(ev[i].service);
		ev[i].region = "32.73.01";
		ev[i].region_len = strlen(ev[i].region);
		ev[i].channel = 1 + (uint8_t)(i % 9);
		ev[i].outcome = 1;
	}
	memset(&b, 0, sizeof(b));
	b.received_at_ms = received_ms;
	b.source = src;
	b.source_len = strlen(src);
	b.batch_id = bid;
	b.batch_id_len = strlen(bid);
	b.accepted = accepted;
	b.rejected = rejected;
	assert_true(record_batch_size(&b, ev, accepted) <= 1024);
	memset(&rec, 0, sizeof(rec));
	rec.type = RECORD_TYPE_BATCH;
	rec.payload = buf;
	rec.len = record_batch_encode(&b, ev, accepted, buf);
	return rec;
}

/* Persists batches first..last-1 (received at ms) and flushes the index. */
static void
persist_range(struct dedup *d, int first, int last, int64_t ms)
{
	uint8_t buf[1024];
	char bid[32];

	for (int i = first; i < last; i++) {
		struct wal_record rec;
		batch_id(bid, sizeof(bid), i);
		rec = batch_record(buf, "src", bid, (uint32_t)i % 7,
		    (uint32_t)i % 3, ms);
		assert_int_equal(dedup_persist_record(d, &rec, ms), 0);
	}
	assert_int_equal(dedup_persist_record(d, NULL, ms), 0);
}

/* ------------------------------------------------------------- states */

static void
test_find_new_pending_done(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	uint32_t acc, rej;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(find(d, "src", "b1", NULL, NULL), DEDUP_NEW);

	add(d, "src", "b1", 5, 2, T0, 1);
	assert_int_equal(find(d, "src", "b1", &acc, &rej), DEDUP_PENDING);
	assert_int_equal(acc, 5);
	assert_int_equal(rej, 2);

	dedup_settle(d, "src", 3, "b1", 2, 1);
	assert_int_equal(find(d, "src", "b1", &acc, &rej), DEDUP_DONE);
	assert_int_equal(acc, 5);
	assert_int_equal(rej, 2);

	/* The same batch_id from another source, and a prefix, are new. */
	assert_int_equal(find(d, "other", "b1", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "b", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "sr", "cb1", NULL, NULL), DEDUP_NEW);

	/* Added as done straight away (replay). */
	add(d, "src", "b2", 0, 9, T0, 0);
	assert_int_equal(find(d, "src", "b2", &acc, &rej), DEDUP_DONE);
	assert_int_equal(acc, 0);
	assert_int_equal(rej, 9);
	dedup_free(d);
	dedup_free(NULL);
}

static void
test_a_failed_batch_is_forgotten_and_can_be_taken_again(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;
	uint32_t acc, rej;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	add(d, "src", "b1", 5, 2, T0, 1);
	add(d, "src", "b2", 1, 0, T0, 1);
	dedup_settle(d, "src", 3, "b1", 2, 0);
	assert_int_equal(find(d, "src", "b1", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "b2", NULL, NULL), DEDUP_PENDING);

	/* The retry is taken afresh, with its own counts. */
	add(d, "src", "b1", 4, 3, T0 + 10, 1);
	assert_int_equal(find(d, "src", "b1", &acc, &rej), DEDUP_PENDING);
	assert_int_equal(acc, 4);
	assert_int_equal(rej, 3);
	dedup_settle(d, "src", 3, "b1", 2, 1);
	assert_int_equal(find(d, "src", "b1", &acc, &rej), DEDUP_DONE);
	assert_int_equal(acc, 4);

	/* Settling what is not known changes nothing. */
	dedup_settle(d, "src", 3, "zz", 2, 0);
	dedup_settle(d, "src", 3, "zz", 2, 1);
	assert_int_equal(find(d, "src", "zz", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "b2", NULL, NULL), DEDUP_PENDING);

	/* The failed entry's slot expires with the others, harmlessly. */
	dedup_settle(d, "src", 3, "b2", 2, 1);
	add(d, "src", "later", 1, 1, T0 + DAY_MS + 11, 0);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(find(d, "src", "later", NULL, NULL), DEDUP_DONE);
	assert_int_equal(find(d, "src", "b1", NULL, NULL), DEDUP_NEW);
	dedup_free(d);
}

/* -------------------------------------------------------------- expiry */

static const struct expiry_case {
	const char *name;
	int64_t age_ms;		/* now - received of the old entry */
	int forgotten;
} expiry_cases[] = {
	{ "an entry younger than the window is kept", 999, 0 },
	{ "an entry exactly the window old is kept", 1000, 0 },
	{ "an entry a millisecond past the window is forgotten", 1001, 1 },
	{ "an entry far past the window is forgotten", 100000, 1 },
};

static void
test_entries_older_than_the_window_are_forgotten_on_the_next_add(
    void **state)
{
	char dir[PATH_MAX];

	(void)state;
	fresh_dir(dir, sizeof(dir));
	for (size_t c = 0; c < sizeof(expiry_cases) / sizeof(expiry_cases[0]);
	    c++) {
		const struct expiry_case *k = &expiry_cases[c];
		struct dedup *d = dedup_new(dir, 1000, 100000);
		struct dedup_stats st;
		enum dedup_state s;

		assert_non_null(d);
		add(d, "src", "old", 1, 0, T0, 0);
		/* Not until the next add. */
		assert_int_equal(find(d, "src", "old", NULL, NULL), DEDUP_DONE);
		add(d, "src", "new", 1, 0, T0 + k->age_ms, 0);
		s = find(d, "src", "old", NULL, NULL);
		if (s != (k->forgotten ? DEDUP_NEW : DEDUP_DONE))
			fail_msg("%s: state %d", k->name, (int)s);
		assert_int_equal(find(d, "src", "new", NULL, NULL), DEDUP_DONE);
		dedup_get_stats(d, &st);
		assert_int_equal(st.entries, k->forgotten ? 1 : 2);
		assert_int_equal(st.oldest_ms, k->forgotten ? T0 + k->age_ms : T0);
		assert_int_equal(st.evicted, 0);
		dedup_free(d);
	}
}

static void
test_expiry_takes_the_oldest_first_and_stops_at_a_younger_one(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, 1000, 100000);
	assert_non_null(d);
	for (int i = 0; i < 10; i++)
		add_i(d, i, T0 + i * 100, 0);
	/* At T0 + 1450: received before T0 + 450 have expired (0..4). */
	add_i(d, 10, T0 + 1450, 0);
	for (int i = 0; i <= 10; i++)
		assert_state_i(d, i, i <= 4 ? DEDUP_NEW : DEDUP_DONE);
	dedup_free(d);
}

static void
test_a_pending_entry_is_not_expired(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, 1000, 100000);
	assert_non_null(d);
	add(d, "src", "slow", 1, 0, T0, 1);
	add(d, "src", "new", 1, 0, T0 + 5000, 0);
	/* Still being written: a retry must still be told to wait. */
	assert_int_equal(find(d, "src", "slow", NULL, NULL), DEDUP_PENDING);
	dedup_settle(d, "src", 3, "slow", 4, 1);
	add(d, "src", "newer", 1, 0, T0 + 5001, 0);
	assert_int_equal(find(d, "src", "slow", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "new", NULL, NULL), DEDUP_DONE);
	dedup_free(d);
}

/* ------------------------------------------------ eviction and growth */

static void
test_max_entries_evicts_the_oldest_first_and_counts_it(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	/* Below the ring's minimum, 1024, the minimum applies. */
	d = dedup_new(dir, DAY_MS, 10);
	assert_non_null(d);
	for (int i = 0; i < 1024; i++)
		add_i(d, i, T0 + i, 0);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 1024);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.oldest_ms, T0);

	for (int i = 1024; i < 1024 + 11; i++)
		add_i(d, i, T0 + i, 0);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 1024);
	assert_int_equal(st.evicted, 11);
	assert_int_equal(st.oldest_ms, T0 + 11);
	for (int i = 0; i < 1024 + 11; i++)
		assert_state_i(d, i, i < 11 ? DEDUP_NEW : DEDUP_DONE);
	dedup_free(d);
}

static void
test_a_ring_full_of_pending_batches_refuses_a_new_one(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 1024);
	assert_non_null(d);
	for (int i = 0; i < 1024; i++)
		add_i(d, i, T0 + i, 1);
	/* Evicting a pending batch would let its retry be counted twice. */
	errno = 0;
	assert_int_equal(dedup_add(d, "src", 3, "one-more", 8, 1, 0, T0 + 2000,
	    1), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(find(d, "src", "one-more", NULL, NULL), DEDUP_NEW);
	assert_state_i(d, 0, DEDUP_PENDING);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 1024);
	assert_int_equal(st.evicted, 0);
	dedup_free(d);
}

static void
test_growth_beyond_1024_keeps_every_entry_findable(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;
	const int n = 20000;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 1000000);
	assert_non_null(d);
	for (int i = 0; i < n; i++) {
		add_i(d, i, T0 + i, i % 2);
		/* Spot checks while the ring and table double. */
		if ((i & (i + 1)) == 0)
			for (int j = 0; j <= i; j += 1 + i / 64)
				assert_state_i(d, j, j % 2 ? DEDUP_PENDING :
				    DEDUP_DONE);
	}
	for (int i = 0; i < n; i++)
		assert_state_i(d, i, i % 2 ? DEDUP_PENDING : DEDUP_DONE);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, n);
	assert_int_equal(st.evicted, 0);
	dedup_free(d);
}

static void
test_forgetting_many_failed_batches_keeps_the_others_findable(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	char bid[32];
	const int n = 6000;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 1000000);
	assert_non_null(d);
	for (int i = 0; i < n; i++)
		add_i(d, i, T0 + i, 1);
	/* Deletions everywhere in the table's probe runs. */
	for (int i = 0; i < n; i++) {
		batch_id(bid, sizeof(bid), i);
		dedup_settle(d, "src", 3, bid, strlen(bid), i % 3 != 0);
	}
	for (int i = 0; i < n; i++)
		assert_state_i(d, i, i % 3 == 0 ? DEDUP_NEW : DEDUP_DONE);
	/* More growth after the deletions. */
	for (int i = n; i < 2 * n; i++)
		add_i(d, i, T0 + i, 0);
	for (int i = 0; i < 2 * n; i++)
		assert_state_i(d, i, i < n && i % 3 == 0 ? DEDUP_NEW :
		    DEDUP_DONE);
	dedup_free(d);
}

/* --------------------------------------------------------- persistence */

static void
test_persisted_batches_are_loaded_as_done_with_their_counts(void **state)
{
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	struct dedup *d, *d2;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	/* Nothing kept: no file. */
	assert_int_equal(dedup_persist_record(d, NULL, T0), 0);
	assert_int_equal(file_size(idx), -1);

	persist_range(d, 0, 5, T0);
	assert_int_equal(file_size(idx), 5 * IDX_ENTRY);
	/* A second segment's batches are appended. */
	persist_range(d, 5, 8, T0 + 1000);
	assert_int_equal(file_size(idx), 8 * IDX_ENTRY);
	dedup_free(d);

	d2 = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d2);
	assert_int_equal(dedup_load(d2, T0 + 2000), 0);
	for (int i = 0; i < 8; i++)
		assert_state_i(d2, i, DEDUP_DONE);
	assert_int_equal(find(d2, "src", "batch-000008", NULL, NULL),
	    DEDUP_NEW);
	dedup_get_stats(d2, &st);
	assert_int_equal(st.entries, 8);
	assert_int_equal(st.oldest_ms, T0);
	dedup_free(d2);
}

/*
 * A segment whose ids could not be written is kept, and at the next
 * checkpoint hands all its records over again: each must land once, not
 * once per failed try (batches.idx was a directory here, so the append
 * failed; a full disk takes the same path).
 */
static void
test_a_failed_append_is_not_written_twice_later(void **state)
{
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	uint8_t buf[1024];
	char bid[32];
	struct dedup *d;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(mkdir(idx, 0700), 0);
	for (int try = 0; try < 3; try++) {
		for (int i = 0; i < 4; i++) {
			struct wal_record rec;
			batch_id(bid, sizeof(bid), i);
			rec = batch_record(buf, "src", bid, 1, 0, T0);
			assert_int_equal(dedup_persist_record(d, &rec, T0), 0);
		}
		assert_int_equal(dedup_persist_record(d, NULL, T0), -1);
	}
	/* A walk cut short: what it held is dropped. */
	{
		struct wal_record rec;
		batch_id(bid, sizeof(bid), 9);
		rec = batch_record(buf, "src", bid, 1, 0, T0);
		assert_int_equal(dedup_persist_record(d, &rec, T0), 0);
		dedup_persist_reset(d);
	}
	assert_int_equal(rmdir(idx), 0);
	persist_range(d, 0, 4, T0);
	assert_int_equal(file_size(idx), 4 * IDX_ENTRY);
	dedup_free(d);
}

static void
test_loading_without_an_index_is_not_an_error(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0), 0);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 0);
	dedup_free(d);
}

static void
test_persist_keeps_only_batches_inside_the_window(void **state)
{
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	uint8_t buf[1024];
	struct dedup *d;
	struct wal_record rec;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, 1000, 100000);
	assert_non_null(d);
	rec = batch_record(buf, "src", "old", 1, 0, T0);
	assert_int_equal(dedup_persist_record(d, &rec, T0 + 1001), 0);
	rec = batch_record(buf, "src", "edge", 1, 0, T0 + 1);
	assert_int_equal(dedup_persist_record(d, &rec, T0 + 1001), 0);
	/* Other record types and malformed payloads are passed over. */
	rec = batch_record(buf, "src", "typed", 1, 0, T0 + 1000);
	rec.type = RECORD_TYPE_BATCH + 1;
	assert_int_equal(dedup_persist_record(d, &rec, T0 + 1001), 0);
	rec = batch_record(buf, "src", "short", 1, 0, T0 + 1000);
	rec.len = 12;	/* cut inside the batch_id */
	assert_int_equal(dedup_persist_record(d, &rec, T0 + 1001), 0);
	assert_int_equal(dedup_persist_record(d, NULL, T0 + 1001), 0);
	assert_int_equal(file_size(idx), IDX_ENTRY);
	dedup_free(d);

	d = dedup_new(dir, 1000, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0 + 1001), 0);
	assert_int_equal(find(d, "src", "edge", NULL, NULL), DEDUP_DONE);
	assert_int_equal(find(d, "src", "old", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "typed", NULL, NULL), DEDUP_NEW);
	assert_int_equal(find(d, "src", "short", NULL, NULL), DEDUP_NEW);
	dedup_free(d);
}

static void
test_expired_index_entries_are_not_loaded(void **state)
{
	char dir[PATH_MAX];
	struct dedup *d;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	persist_range(d, 0, 4, T0);
	persist_range(d, 4, 8, T0 + DAY_MS);
	dedup_free(d);

	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0 + DAY_MS + 1), 0);
	for (int i = 0; i < 8; i++)
		assert_state_i(d, i, i < 4 ? DEDUP_NEW : DEDUP_DONE);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 4);
	dedup_free(d);
}

static void
test_a_torn_last_index_entry_is_ignored(void **state)
{
	static const uint8_t torn[17] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3 };
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	struct dedup *d;
	struct dedup_stats st;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	persist_range(d, 0, 3, T0);
	dedup_free(d);
	append_bytes(idx, torn, sizeof(torn));

	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0), 0);
	for (int i = 0; i < 3; i++)
		assert_state_i(d, i, DEDUP_DONE);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 3);
	dedup_free(d);
}

/*
 * Regression: a torn last entry (a crash, or a short write, while
 * appending) used to stay in batches.idx, and the next segment's entries
 * were appended after it, off the 40-byte grid: the next dedup_load read
 * every one of them as damaged and forgot those batches, so their
 * retries within 24 hours were counted twice (DESIGN.md invariant 2).
 */
static void
test_batches_persisted_after_a_torn_index_entry_are_loaded(void **state)
{
	static const uint8_t torn[17] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3 };
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	struct dedup *d;
	int forgotten = 0;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	persist_range(d, 0, 3, T0);
	dedup_free(d);
	append_bytes(idx, torn, sizeof(torn));

	/* The restart after the crash, then the next segment's removal. */
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0), 0);
	persist_range(d, 3, 6, T0 + 1000);
	dedup_free(d);

	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0 + 2000), 0);
	for (int i = 0; i < 6; i++) {
		char bid[32];
		uint32_t acc, rej;
		batch_id(bid, sizeof(bid), i);
		if (find(d, "src", bid, &acc, &rej) != DEDUP_DONE)
			forgotten++;
	}
	dedup_free(d);
	if (forgotten != 0)
		fail_msg("%d of the 6 batches were forgotten: those "
		    "persisted after the torn entry are misaligned", forgotten);
}

static void
test_a_damaged_index_entry_is_skipped(void **state)
{
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	struct dedup *d;
	struct dedup_stats st;
	uint8_t b;
	int fd;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	persist_range(d, 0, 5, T0);
	dedup_free(d);

	/* Flip one bit of entry 2's accepted count. */
	fd = open(idx, O_RDWR);
	assert_true(fd != -1);
	assert_int_equal(pread(fd, &b, 1, 2 * IDX_ENTRY + 20), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 2 * IDX_ENTRY + 20), 1);
	close(fd);

	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0), 0);
	for (int i = 0; i < 5; i++)
		assert_state_i(d, i, i == 2 ? DEDUP_NEW : DEDUP_DONE);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 4);
	dedup_free(d);
	/* The file is left as it is. */
	assert_int_equal(file_size(idx), 5 * IDX_ENTRY);
}

static void
test_a_mostly_expired_index_is_compacted_at_load(void **state)
{
	char dir[PATH_MAX], idx[PATH_MAX + 16];
	struct dedup *d;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	idx_path(dir, idx, sizeof(idx));
	d = dedup_new(dir, 10000, 100000);
	assert_non_null(d);
	persist_range(d, 0, 1500, T0);
	persist_range(d, 1500, 2000, T0 + 50000);
	dedup_free(d);
	assert_int_equal(file_size(idx), 2000 * IDX_ENTRY);

	d = dedup_new(dir, 10000, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0 + 55000), 0);
	dedup_free(d);
	assert_int_equal(file_size(idx), 500 * IDX_ENTRY);

	/* What is left loads again, whole. */
	d = dedup_new(dir, 10000, 100000);
	assert_non_null(d);
	assert_int_equal(dedup_load(d, T0 + 55000), 0);
	for (int i = 0; i < 2000; i++)
		assert_state_i(d, i, i < 1500 ? DEDUP_NEW : DEDUP_DONE);
	dedup_free(d);
}

/* ------------------------------------------------- from WAL records */

static void
test_wal_records_are_remembered_as_done(void **state)
{
	char dir[PATH_MAX];
	uint8_t buf[1024];
	struct dedup *d;
	struct wal_record rec;
	struct dedup_stats st;
	uint32_t acc, rej;

	(void)state;
	fresh_dir(dir, sizeof(dir));
	d = dedup_new(dir, DAY_MS, 100000);
	assert_non_null(d);
	rec = batch_record(buf, "dukcapil-salaman", "b-1", 3, 2, T0);
	dedup_add_record(d, &rec);
	rec = batch_record(buf, "dukcapil-salaman", "b-2", 0, 4, T0 + 1);
	dedup_add_record(d, &rec);
	/* Replayed twice (index and WAL): the first counts stay. */
	rec = batch_record(buf, "dukcapil-salaman", "b-1", 1, 1, T0 + 2);
	dedup_add_record(d, &rec);
	/* Another type, and a malformed payload, are passed over. */
	rec = batch_record(buf, "dukcapil-salaman", "b-typed", 1, 0, T0 + 3);
	rec.type = 0;
	dedup_add_record(d, &rec);
	rec = batch_record(buf, "dukcapil-salaman", "b-short", 1, 0, T0 + 3);
	rec.len = 12;	/* cut inside the batch_id */
	dedup_add_record(d, &rec);

	assert_int_equal(find(d, "dukcapil-salaman", "b-1", &acc, &rej),
	    DEDUP_DONE);
	assert_int_equal(acc, 3);
	assert_int_equal(rej, 2);
	assert_int_equal(find(d, "dukcapil-salaman", "b-2", &acc, &rej),
	    DEDUP_DONE);
	assert_int_equal(acc, 0);
	assert_int_equal(rej, 4);
	assert_int_equal(find(d, "dukcapil-salaman", "b-typed", NULL, NULL),
	    DEDUP_NEW);
	assert_int_equal(find(d, "dukcapil-salaman", "b-short", NULL, NULL),
	    DEDUP_NEW);
	dedup_get_stats(d, &st);
	assert_int_equal(st.entries, 2);
	dedup_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_new_pending_done),
		cmocka_unit_test(
		    test_a_failed_batch_is_forgotten_and_can_be_taken_again),
		cmocka_unit_test(
		    test_entries_older_than_the_window_are_forgotten_on_the_next_add),
		cmocka_unit_test(
		    test_expiry_takes_the_oldest_first_and_stops_at_a_younger_one),
		cmocka_unit_test(test_a_pending_entry_is_not_expired),
		cmocka_unit_test(
		    test_max_entries_evicts_the_oldest_first_and_counts_it),
		cmocka_unit_test(
		    test_a_ring_full_of_pending_batches_refuses_a_new_one),
		cmocka_unit_test(
		    test_growth_beyond_1024_keeps_every_entry_findable),
		cmocka_unit_test(
		    test_forgetting_many_failed_batches_keeps_the_others_findable),
		cmocka_unit_test(
		    test_persisted_batches_are_loaded_as_done_with_their_counts),
		cmocka_unit_test(test_a_failed_append_is_not_written_twice_later),
		cmocka_unit_test(test_loading_without_an_index_is_not_an_error),
		cmocka_unit_test(
		    test_persist_keeps_only_batches_inside_the_window),
		cmocka_unit_test(test_expired_index_entries_are_not_loaded),
		cmocka_unit_test(test_a_torn_last_index_entry_is_ignored),
		cmocka_unit_test(
		    test_batches_persisted_after_a_torn_index_entry_are_loaded),
		cmocka_unit_test(test_a_damaged_index_entry_is_skipped),
		cmocka_unit_test(
		    test_a_mostly_expired_index_is_compacted_at_load),
		cmocka_unit_test(test_wal_records_are_remembered_as_done),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
