/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hll: see hll.h. The register rule, the format and the estimator are
 * postgresql-hll's (Aggregate Knowledge / Citus, STORAGE.markdown
 * "Storage Specification" v1.0.0 and src/hll.c; Debian's
 * postgresql-15-hll 2.17, extension SQL version 2.16), reimplemented
 * here; test_pg_hll checks the bytes against the extension.
 *
 * Registers. A hash h goes to register i = h & (2^log2m - 1) with value
 * w = h >> log2m; the value is 0 when w == 0, else the number of trailing
 * zero bits of w plus one, capped at 2^regwidth - 1; a register keeps the
 * largest value it was given (compressed_add in src/hll.c).
 *
 * Storage format, schema version 1, all fields big-endian bit strings:
 *
 *   byte 0  version << 4 | type: 0x11 EMPTY, 0x13 SPARSE, 0x14 FULL
 *           (0x12 EXPLICIT and 0x10 UNDEFINED are never written here)
 *   byte 1  (regwidth - 1) << 5 | log2m: 0x8b for 11 and 5
 *   byte 2  sparse-enabled << 6 | encoded expthresh: 0x40 for sparse on
 *           and expthresh 0
 *   EMPTY   nothing more
 *   SPARSE  one (log2m + regwidth)-bit word per non-zero register,
 *           index << regwidth | value, ascending index, packed from the
 *           top bit of the first data byte down, zero bits padding the
 *           last byte
 *   FULL    every register's value in regwidth bits, index 0 first,
 *           packed the same way
 *
 * A non-empty set is written SPARSE when nfilled * (log2m + regwidth) <
 * 2^log2m * regwidth, counted in bits (nfilled: the non-zero registers),
 * else FULL: multiset_pack with the default "auto" hll_set_max_sparse
 * (-1). At 11 and 5 that is SPARSE up to 639 registers (at most 1281
 * bytes) and FULL (1283 bytes) from 640. A set that was given a hash but
 * has no non-zero register is a SPARSE of no words (3 bytes): once a value
 * is added, postgresql-hll's set is no longer EMPTY, whatever the value.
 *
 * The exception is the empty set: hll_add_agg over no rows is NULL, not
 * an hll. Our empty sketch is hll_empty(log2m, regwidth, 0, 1) (0x11 0x8b
 * 0x40), which is what hll_union and hll_union_agg take; the server's
 * default hll_empty() differs in byte 2 (0x7f: expthresh -1) and cannot
 * be unioned with ours.
 *
 * In memory: empty (no heap); sparse, a sorted array of entries in the
 * SPARSE word layout (index << regwidth | value, value >= 1), so that a
 * sort by entry is a sort by index, the encoder copies them out as they
 * are, and a lookup is a binary search; dense, one byte per register.
 * The array starts at 8 entries and doubles; it becomes dense when it
 * would grow past SPARSE_MAX entries: a quarter of the dense array's
 * bytes, and at most 512 entries; at log2m 11, 256 entries of 2 bytes
 * (512 bytes against 2048). Below that, an add is a binary search of at
 * most 9 probes and, for a register not yet there, a memmove of at most
 * 512 bytes (2 KiB with 4-byte entries past log2m + regwidth = 16); most
 * sketches of an hour's cell hold a handful of residents and stay at 16
 * bytes of heap. Above it, a dense array is at most 4 times bigger, an add
 * is one compare and store, and the few sketches with hundreds of
 * residents are the ones that see the most events.
 */
#include "hll.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if HLL_LOG2M < 4 || HLL_LOG2M > 17
#error "HLL_LOG2M must be 4..17 (postgresql-hll: 2^log2m registers in 128 KiB)"
#endif
#if HLL_REGWIDTH < 1 || HLL_REGWIDTH > 7
#error "HLL_REGWIDTH must be 1..7 (postgresql-hll's regwidth modifier)"
#endif

#define NREGS		(1u << HLL_LOG2M)
#define REGMAX		((1u << HLL_REGWIDTH) - 1)
#define WORDBITS	(HLL_LOG2M + HLL_REGWIDTH)

#if WORDBITS <= 16
typedef uint16_t entry_t;
#else
typedef uint32_t entry_t;
#endif

/* Entries in a quarter of the dense array's bytes. */
#define SPARSE_QUARTER	(NREGS / 4 / sizeof(entry_t))
#define SPARSE_MAX	(SPARSE_QUARTER < 512 ? SPARSE_QUARTER : 512)
#define SPARSE_FIRST	(SPARSE_MAX < 8 ? SPARSE_MAX : 8)

_Static_assert(SPARSE_MAX >= 1 && SPARSE_MAX <= UINT16_MAX,
    "sparse capacity must fit struct hll's cap");

enum { FORM_EMPTY = 0, FORM_SPARSE, FORM_DENSE };

#define HDR_VERSION	1
#define TYPE_EMPTY	1
#define TYPE_SPARSE	3
#define TYPE_FULL	4
#define HDR_PARAM	((HLL_REGWIDTH - 1) << 5 | HLL_LOG2M)
#define HDR_CUTOFF	(1 << 6 | 0)	/* sparse on, expthresh 0 */
#define HDRSZ		3
#define FULL_BYTES	((NREGS * HLL_REGWIDTH + 7) / 8)

/* ------------------------------------------------------------ registers */

static inline uint32_t
reg_index(uint64_t hash)
{
	return (uint32_t)(hash & (NREGS - 1));
}

static inline unsigned
reg_value(uint64_t hash)
{
	uint64_t w = hash >> HLL_LOG2M;
	unsigned v;

	if (w == 0)
		return 0;
	v = (unsigned)__builtin_ctzll(w) + 1;
	return v < REGMAX ? v : REGMAX;
}

/* First entry whose index is >= idx. */
static inline uint32_t
sparse_find(const entry_t *e, uint32_t n, uint32_t idx)
{
	entry_t key = (entry_t)(idx << HLL_REGWIDTH);
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (e[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t
dense_filled(const uint8_t *r)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < NREGS; i++)
		n += r[i] != 0;
	return n;
}

/* The smallest capacity for n entries (n <= SPARSE_MAX). */
static uint16_t
sparse_cap(uint32_t n)
{
	uint32_t cap = SPARSE_FIRST;

	while (cap < n)
		cap *= 2;
	return (uint16_t)(cap < SPARSE_MAX ? cap : SPARSE_MAX);
}

/* A sparse copy of registers r (nfilled non-zero, <= SPARSE_MAX). */
static entry_t *
sparse_from_dense(const uint8_t *r, uint32_t nfilled, uint16_t *cap)
{
	entry_t *e;
	uint32_t k = 0;

	*cap = sparse_cap(nfilled);
	e = malloc((size_t)*cap * sizeof(*e));
	if (e == NULL)
		return NULL;
	for (uint32_t i = 0; i < NREGS; i++)
		if (r[i] != 0)
			e[k++] = (entry_t)(i << HLL_REGWIDTH | r[i]);
	return e;
}

static void
dense_apply_sparse(uint8_t *r, const entry_t *e, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = e[k] >> HLL_REGWIDTH;
		uint8_t v = (uint8_t)(e[k] & REGMAX);
		if (r[i] < v)
			r[i] = v;
	}
}

/* h's memory is replaced by the dense registers r. */
static void
set_dense(struct hll *h, uint8_t *r)
{
	free(h->mem);
	h->mem = r;
	h->n = 0;
	h->cap = 0;
	h->form = FORM_DENSE;
}

/* Makes a sparse h dense, then sets register idx to at least v. */
static int
to_dense(struct hll *h, uint32_t idx, unsigned v)
{
	uint8_t *r = calloc(NREGS, 1);

	if (r == NULL)
		return -1;
	dense_apply_sparse(r, h->mem, h->n);
	if (r[idx] < v)
		r[idx] = (uint8_t)v;
	set_dense(h, r);
	return 0;
}

/* ------------------------------------------------------------------ API */

void
hll_init(struct hll *h)
{
	memset(h, 0, sizeof(*h));
}

void
hll_free(struct hll *h)
{
	if (h == NULL)
		return;
	free(h->mem);
	hll_init(h);
}

int
hll_is_empty(const struct hll *h)
{
	return h->form == FORM_EMPTY;
}

size_t
hll_mem_bytes(const struct hll *h)
{
	switch (h->form) {
	case FORM_SPARSE:
		return (size_t)h->cap * sizeof(entry_t);
	case FORM_DENSE:
		return NREGS;
	default:
		return 0;
	}
}

int
hll_add(struct hll *h, uint64_t hash)
{
	uint32_t idx = reg_index(hash), pos;
	unsigned v = reg_value(hash);
	entry_t *e;

	if (h->form == FORM_DENSE) {
		uint8_t *r = h->mem;
		if (r[idx] < v)
			r[idx] = (uint8_t)v;
		return 0;
	}
	if (v == 0) {
		/* No register changes, but the set is no longer EMPTY. */
		h->form = FORM_SPARSE;
		return 0;
	}

	e = h->mem;
	pos = sparse_find(e, h->n, idx);
	if (pos < h->n && e[pos] >> HLL_REGWIDTH == idx) {
		if ((e[pos] & REGMAX) < v)
			e[pos] = (entry_t)(idx << HLL_REGWIDTH | v);
		return 0;
	}
	if (h->n == h->cap) {
		uint32_t cap;

		if (h->cap >= SPARSE_MAX) {
			if (to_dense(h, idx, v) == -1) {
				errno = ENOMEM;
				return -1;
			}
			return 0;
		}
		cap = h->cap == 0 ? SPARSE_FIRST : (uint32_t)h->cap * 2;
		if (cap > SPARSE_MAX)
			cap = SPARSE_MAX;
		e = realloc(h->mem, cap * sizeof(*e));
		if (e == NULL) {
			errno = ENOMEM;
			return -1;
		}
		h->mem = e;
		h->cap = (uint16_t)cap;
	}
	memmove(e + pos + 1, e + pos, (h->n - pos) * sizeof(*e));
	e[pos] = (entry_t)(idx << HLL_REGWIDTH | v);
	h->n++;
	h->form = FORM_SPARSE;
	return 0;
}

int
hll_merge(struct hll *dst, const struct hll *src)
{
	const entry_t *a, *b;
	entry_t *out;
	uint8_t *r;
	uint32_t i, j, k, n;
	uint16_t cap;

	if (src == dst || src->form == FORM_EMPTY)
		return 0;

	if (dst->form == FORM_DENSE) {
		if (src->form == FORM_DENSE) {
			const uint8_t *s = src->mem;
			r = dst->mem;
			for (i = 0; i < NREGS; i++)
				if (r[i] < s[i])
					r[i] = s[i];
		} else
			dense_apply_sparse(dst->mem, src->mem, src->n);
		return 0;
	}

	/* dst is empty or sparse: the result is built aside, then swapped. */
	a = dst->mem;
	b = src->mem;
	if (src->form == FORM_DENSE) {
		r = malloc(NREGS);
		if (r == NULL)
			goto nomem;
		memcpy(r, src->mem, NREGS);
		dense_apply_sparse(r, a, dst->n);
		goto dense;
	}

	/* Both sparse (or dst empty): how many registers the union has. */
	for (i = j = n = 0; i < dst->n || j < src->n; n++) {
		if (j == src->n || (i < dst->n && a[i] >> HLL_REGWIDTH <
		    b[j] >> HLL_REGWIDTH))
			i++;
		else if (i == dst->n || b[j] >> HLL_REGWIDTH <
		    a[i] >> HLL_REGWIDTH)
			j++;
		else {
			i++;
			j++;
		}
	}
	if (n == 0) {
		/* Neither has a non-zero register; src is not EMPTY. */
		dst->form = FORM_SPARSE;
		return 0;
	}
	if (n > SPARSE_MAX) {
		r = calloc(NREGS, 1);
		if (r == NULL)
			goto nomem;
		dense_apply_sparse(r, a, dst->n);
		dense_apply_sparse(r, b, src->n);
		goto dense;
	}
	if (n == dst->n && dst->form == FORM_SPARSE) {
		/* The same registers: raise values in place, no allocation. */
		for (i = j = 0; j < src->n; j++) {
			while (a[i] >> HLL_REGWIDTH < b[j] >> HLL_REGWIDTH)
				i++;
			if (a[i] < b[j])
				((entry_t *)dst->mem)[i] = b[j];
		}
		return 0;
	}
	cap = sparse_cap(n);
	out = malloc((size_t)cap * sizeof(*out));
	if (out == NULL)
		goto nomem;
	for (i = j = k = 0; i < dst->n || j < src->n; k++) {
		if (j == src->n || (i < dst->n && a[i] >> HLL_REGWIDTH <
		    b[j] >> HLL_REGWIDTH))
			out[k] = a[i++];
		else if (i == dst->n || b[j] >> HLL_REGWIDTH <
		    a[i] >> HLL_REGWIDTH)
			out[k] = b[j++];
		else {
			/* Same index: the larger value is the larger entry. */
			out[k] = a[i] > b[j] ? a[i] : b[j];
			i++;
			j++;
		}
	}
	free(dst->mem);
	dst->mem = out;
	dst->n = n;
	dst->cap = cap;
	dst->form = FORM_SPARSE;
	return 0;

dense:
	set_dense(dst, r);
	return 0;

nomem:
	errno = ENOMEM;
	return -1;
}

/* --------------------------------------------------------------- format */

struct bitw {
	uint8_t *p;
	uint64_t acc;		/* the low `bits` bits are not yet written */
	unsigned bits;
};

static inline void
bitw_put(struct bitw *w, uint32_t v, unsigned nbits)
{
	w->acc = w->acc << nbits | v;
	w->bits += nbits;
	while (w->bits >= 8) {
		w->bits -= 8;
		*w->p++ = (uint8_t)(w->acc >> w->bits);
	}
}

/* Pads the last byte with zero bits; returns the end. */
static uint8_t *
bitw_end(struct bitw *w)
{
	if (w->bits > 0)
		*w->p++ = (uint8_t)(w->acc << (8 - w->bits));
	return w->p;
}

struct bitr {
	const uint8_t *p;
	uint64_t acc;
	unsigned bits;
};

/* The caller has checked that the bytes are there. */
static inline uint32_t
bitr_get(struct bitr *r, unsigned nbits)
{
	while (r->bits < nbits) {
		r->acc = r->acc << 8 | *r->p++;
		r->bits += 8;
	}
	r->bits -= nbits;
	return (uint32_t)(r->acc >> r->bits) & ((1u << nbits) - 1);
}

size_t
hll_encoded_max(void)
{
	/* SPARSE is only chosen when it has fewer bits than FULL. */
	return HDRSZ + FULL_BYTES;
}

size_t
hll_encode(const struct hll *h, uint8_t *out)
{
	struct bitw w = { out + HDRSZ, 0, 0 };
	const uint8_t *r = h->mem;
	const entry_t *e = h->mem;
	uint32_t nfilled;

	out[1] = HDR_PARAM;
	out[2] = HDR_CUTOFF;
	if (h->form == FORM_EMPTY) {
		out[0] = HDR_VERSION << 4 | TYPE_EMPTY;
		return HDRSZ;
	}
	nfilled = h->form == FORM_SPARSE ? h->n : dense_filled(r);
	if ((uint64_t)nfilled * WORDBITS < (uint64_t)NREGS * HLL_REGWIDTH) {
		out[0] = HDR_VERSION << 4 | TYPE_SPARSE;
		if (h->form == FORM_SPARSE) {
			for (uint32_t k = 0; k < h->n; k++)
				bitw_put(&w, e[k], WORDBITS);
		} else {
			for (uint32_t i = 0; i < NREGS; i++)
				if (r[i] != 0)
					bitw_put(&w, i << HLL_REGWIDTH | r[i],
					    WORDBITS);
		}
	} else {
		uint32_t k = 0;

		out[0] = HDR_VERSION << 4 | TYPE_FULL;
		for (uint32_t i = 0; i < NREGS; i++) {
			unsigned v = 0;
			if (h->form == FORM_DENSE)
				v = r[i];
			else if (k < h->n && e[k] >> HLL_REGWIDTH == i)
				v = e[k++] & REGMAX;
			bitw_put(&w, v, HLL_REGWIDTH);
		}
	}
	return (size_t)(bitw_end(&w) - out);
}

int
hll_decode(struct hll *h, const uint8_t *p, size_t len)
{
	struct bitr br = { p + HDRSZ, 0, 0 };
	struct hll t = { 0 };
	uint8_t *r;
	size_t n;

	if (len < HDRSZ || p[0] >> 4 != HDR_VERSION || p[1] != HDR_PARAM ||
	    p[2] != HDR_CUTOFF)
		goto inval;
	switch (p[0] & 0xf) {
	case TYPE_EMPTY:
		if (len != HDRSZ)
			goto inval;
		hll_free(h);
		return 0;
	case TYPE_SPARSE:
		/*
		 * As multiset_unpack: as many whole words as the bytes hold,
		 * fewer than 8 bits of padding; the last word for an index
		 * wins. (Canonical input is ascending and has no repeats.)
		 */
		n = (len - HDRSZ) * 8 / WORDBITS;
		if ((len - HDRSZ) * 8 - n * WORDBITS >= 8)
			goto inval;
		break;
	case TYPE_FULL:
		if (len != HDRSZ + FULL_BYTES)
			goto inval;
		n = NREGS;
		break;
	default:
		goto inval;
	}

	r = calloc(NREGS, 1);
	if (r == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if ((p[0] & 0xf) == TYPE_SPARSE) {
		for (size_t k = 0; k < n; k++) {
			uint32_t word = bitr_get(&br, WORDBITS);
			r[word >> HLL_REGWIDTH] = (uint8_t)(word & REGMAX);
		}
	} else {
		for (uint32_t i = 0; i < NREGS; i++)
			r[i] = (uint8_t)bitr_get(&br, HLL_REGWIDTH);
	}

	t.form = FORM_SPARSE;
	n = dense_filled(r);
	if (n > SPARSE_MAX) {
		t.mem = r;
		t.form = FORM_DENSE;
	} else if (n > 0) {
		t.mem = sparse_from_dense(r, (uint32_t)n, &t.cap);
		free(r);
		if (t.mem == NULL) {
			errno = ENOMEM;
			return -1;
		}
		t.n = (uint32_t)n;
	} else
		free(r);
	hll_free(h);
	*h = t;
	return 0;

inval:
	errno = EINVAL;
	return -1;
}

/* ------------------------------------------------------------ estimator */

/* alpha_m * m^2, as gamma_register_count_squared (m >= 16 here). */
static double
alpha_mm(int nregs)
{
	switch (nregs) {
	case 16:
		return 0.673 * nregs * nregs;
	case 32:
		return 0.697 * nregs * nregs;
	case 64:
		return 0.709 * nregs * nregs;
	default:
		return (0.7213 / (1.0 + 1.079 / nregs)) * nregs * nregs;
	}
}

/*
 * multiset_card, step for step, so that the result is the same double:
 * the raw estimate alpha m^2 / sum 2^-reg summed in index order; linear
 * counting m ln(m / zeros) while there are empty registers and the raw
 * estimate is below 5m/2; the raw estimate up to 2^L / 30; above it the
 * large-range correction -2^L ln(1 - E / 2^L), where L = 2^regwidth - 2 +
 * log2m. At regwidth 6 and more L >= 64 and postgresql-hll's 1ULL << L is
 * undefined in C (on x86-64 it wraps to 1 << (L mod 64), and
 * hll_cardinality is NaN for all but tiny sets); here that correction is
 * left out, which is what L >= 64 means (2^L / 30 is never reached). At
 * regwidth 5 and log2m 11, L = 41.
 */
double
hll_estimate(const struct hll *h)
{
	const uint8_t *r = h->mem;
	const entry_t *e = h->mem;
	size_t nregs = NREGS;
	unsigned total_bits = REGMAX - 1 + HLL_LOG2M;
	double sum = 0.0, estimator;
	int zero_count = 0;
	uint32_t k = 0;

	if (h->form == FORM_EMPTY)
		return 0.0;
	for (uint32_t i = 0; i < NREGS; i++) {
		unsigned v = 0;
		if (h->form == FORM_DENSE)
			v = r[i];
		else if (k < h->n && e[k] >> HLL_REGWIDTH == i)
			v = e[k++] & REGMAX;
		sum += 1.0 / (double)(1ULL << v);
		if (v == 0)
			zero_count++;
	}
	estimator = alpha_mm((int)nregs) / sum;
	if (zero_count != 0 && estimator < 5.0 * nregs / 2.0)
		return nregs * log((double)nregs / zero_count);
	if (total_bits >= 64)
		return estimator;
	{
		uint64_t two_to_l = 1ULL << total_bits;

		if (estimator <= (double)two_to_l / 30.0)
			return estimator;
		return (-1 * (int64_t)two_to_l) *
		    log(1.0 - (estimator / two_to_l));
	}
}
