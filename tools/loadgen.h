/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen: the parts of kanal-loadgen that are pure enough to unit-test
 * (tests/test_loadgen.c). The program itself, with its threads, pacing and
 * output, is tools/loadgen.c; these functions are in tools/loadgen_lib.c.
 *
 * - lg_hist: a log-linear latency histogram in the manner of HdrHistogram:
 *   fixed memory (no allocation after lg_hist_new), exact below 128 and
 *   within 1/128 (0.8 %) above, any uint64_t value, mergeable, so each
 *   thread records into its own and the main thread adds them up.
 * - lg_batch: one pre-encoded EventBatch whose batch_id is a fixed-width
 *   field that lg_batch_set_id rewrites in place: no re-encoding on the
 *   hot path, and every request still carries a batch_id of its own.
 * - the event model: 200 synthetic service codes under real agency
 *   prefixes, all 9 channels, Kota Bandung kelurahan codes.
 * - lg_url_is_loopback: the default refusal of non-loopback targets.
 */
#ifndef KANAL_LOADGEN_H
#define KANAL_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "kanal/v1/events.pb-c.h"

/* ------------------------------------------------------------ histogram */

/* Linear sub-buckets per power of two: 2^7, a relative error < 1/128. */
#define LG_HIST_SUB_BITS 7

struct lg_hist;

/* A zeroed histogram; NULL on out-of-memory. */
struct lg_hist *lg_hist_new(void);
/* lg_hist_free(NULL) is a no-op. */
void lg_hist_free(struct lg_hist *h);
/* Adds one recording of v. Can't fail. */
void lg_hist_record(struct lg_hist *h, uint64_t v);
/* Adds every recording of src to dst; src is unchanged. Can't fail. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);
uint64_t lg_hist_count(const struct lg_hist *h);
/* Exact smallest and largest value recorded; 0 when empty. */
uint64_t lg_hist_min(const struct lg_hist *h);
uint64_t lg_hist_max(const struct lg_hist *h);
/* Exact mean of the values recorded; 0 when empty. */
double lg_hist_mean(const struct lg_hist *h);
/*
 * The value at quantile q (0..1): the highest value of the bucket that
 * holds the ceil(q * count)-th smallest recording (at least the first),
 * but never above the largest value recorded. So the answer is >= the
 * true value and less than 1/128 above it. 0 when empty.
 */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/* Bucket index of v and the highest value in a bucket, for the tests. */
size_t lg_hist_bucket(uint64_t v);
uint64_t lg_hist_bucket_high(size_t bucket);

/* ------------------------------------------------------------- batch ids */

/* "lg-" 12 hex digits of the run, "-", 16 hex digits of the sequence. */
#define LG_BATCH_ID_LEN 32

/*
 * Writes the batch_id of request seq in run into out (exactly
 * LG_BATCH_ID_LEN bytes, no NUL). run: 48 random bits per invocation, so
 * two runs against the same kanald never share a batch_id (kanald would
 * answer the second as a duplicate and count nothing). Can't fail.
 */
void lg_batch_id(char out[LG_BATCH_ID_LEN], uint64_t run, uint64_t seq);

/* ------------------------------------------------------------- the model */

#define LG_NSERVICES 200
#define LG_NKECAMATAN 30

/* Service code i (0..LG_NSERVICES-1), e.g. "dukcapil.akta-lahir". */
const char *lg_service_code(size_t i);
/* How many kelurahan codes the model uses, and code i ("32.73.XX.1YYY"). */
size_t lg_region_count(void);
const char *lg_region_code(size_t i);

/* ---------------------------------------------------------------- batches */

struct lg_batch {
	uint8_t *buf;		/* the packed EventBatch, owned */
	size_t len;
	size_t id_off;		/* where the batch_id's bytes start in buf */
	uint32_t nevents;
};

/*
 * Packs one batch of nevents events, generated deterministically from seed
 * and index, each occurred_at between 55 and 1 minutes before now_ms (so
 * kanald's default window, 7 days back, accepts them for any run under
 * 3600 s). The batch_id is a placeholder until lg_batch_set_id. With
 * citizens > 0 each event carries a citizen_ref "c-NNNNNNNNNN" of one of
 * that many residents, drawn uniformly (a pseudonym, never a NIK); 0: no
 * citizen_ref. Returns 0, or -1 (ENOMEM) with b cleared.
 */
int lg_batch_build(struct lg_batch *b, uint64_t seed, uint64_t index,
    uint32_t nevents, int64_t now_ms, uint64_t citizens);
/* Rewrites the batch_id in place (lg_batch_id). Can't fail. */
void lg_batch_set_id(struct lg_batch *b, uint64_t run, uint64_t seq);
/* Frees buf; b can be built again. A cleared batch may be cleared again. */
void lg_batch_clear(struct lg_batch *b);

/* ------------------------------------------------------------------- URLs */

/*
 * 1 when every address the host of url ("http://HOST[:PORT]...") resolves
 * to is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z); 0 when at
 * least one is not; -1 when the URL has no host or the host does not
 * resolve.
 */
int lg_url_is_loopback(const char *url);

#endif
