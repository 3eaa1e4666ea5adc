/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen_lib: the histogram, batch ids, event model and URL check of
 * kanal-loadgen; see loadgen.h.
 */
#include "loadgen.h"
#include "rng.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* -------------------------------------------------------------- histogram */

/*
 * Layout: values below 2^SUB_BITS have a bucket each (exact). Above, a
 * value whose highest set bit is b (b >= SUB_BITS) is shifted right by
 * s = b - SUB_BITS, leaving 2^SUB_BITS..2^(SUB_BITS+1)-1: that remainder
 * picks one of 2^SUB_BITS linear sub-buckets in the block of s. So the
 * bucket width is 2^s for values of at least 2^(s+SUB_BITS): the relative
 * error is under 2^-SUB_BITS everywhere. 64-bit values need 57 blocks of
 * 128 counters: 58 KiB per histogram, whatever is recorded.
 */
#define SUB (1u << LG_HIST_SUB_BITS)
#define NBLOCKS (64 - LG_HIST_SUB_BITS + 1)
#define NBUCKETS ((size_t)NBLOCKS * SUB)

struct lg_hist {
	uint64_t count;
	uint64_t min, max;
	long double sum;	/* exact enough for a mean of nanoseconds */
	uint64_t counts[NBUCKETS];
};

struct lg_hist *
lg_hist_new(void)
{
	return calloc(1, sizeof(struct lg_hist));
}

void
lg_hist_free(struct lg_hist *h)
{
	free(h);
}

size_t
lg_hist_bucket(uint64_t v)
{
	int top, shift;

	if (v < SUB)
		return (size_t)v;
	top = 63 - __builtin_clzll(v);
	shift = top - LG_HIST_SUB_BITS;
	return (size_t)(shift + 1) * SUB + (size_t)((v >> shift) - SUB);
}

uint64_t
lg_hist_bucket_high(size_t bucket)
{
	size_t block = bucket / SUB, sub = bucket % SUB;
	unsigned shift;
	uint64_t low;

	if (block == 0)
		return (uint64_t)bucket;
	shift = (unsigned)block - 1;
	low = (uint64_t)(SUB + sub) << shift;
	/* The top bucket's high end is UINT64_MAX: avoid the overflow. */
	return low + (((uint64_t)1 << shift) - 1);
}

void
lg_hist_record(struct lg_hist *h, uint64_t v)
{
	h->counts[lg_hist_bucket(v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (long double)v;
}

void
lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
	if (src->count == 0)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		dst->counts[i] += src->counts[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
}

uint64_t
lg_hist_count(const struct lg_hist *h)
{
	return h->count;
}

uint64_t
lg_hist_min(const struct lg_hist *h)
{
	return h->min;
}

uint64_t
lg_hist_max(const struct lg_hist *h)
{
	return h->max;
}

double
lg_hist_mean(const struct lg_hist *h)
{
	return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

uint64_t
lg_hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < NBUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t high = lg_hist_bucket_high(i);
			return high < h->max ? high : h->max;
		}
	}
	return h->max;
}

/* -------------------------------------------------------------- batch ids */

void
lg_batch_id(char out[LG_BATCH_ID_LEN], uint64_t run, uint64_t seq)
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "lg-", 3);
	for (int i = 0; i < 12; i++)
		out[3 + i] = hex[(run >> (44 - 4 * i)) & 15];
	out[15] = '-';
	for (int i = 0; i < 16; i++)
		out[16 + i] = hex[(seq >> (60 - 4 * i)) & 15];
}

/* --------------------------------------------------------------- the model */

/*
 * 20 agencies of a city government, 10 services each. The codes are made
 * up in the shape service backends use; only the prefixes match the
 * reference catalogue (kanal.service), which ingest does not consult.
 */
struct agency {
	const char *prefix;
	double volume;		/* relative traffic */
	double digital;		/* share of transactions on digital channels */
	const char *services[10];
};

static const struct agency agencies[] = {
	{ "dukcapil.", 3.0, 0.36, { "akta-lahir", "akta-kematian", "ktp-el",
	  "kartu-keluarga", "pindah-datang", "kia", "akta-perkawinan",
	  "akta-perceraian", "legalisir", "perubahan-biodata" } },
	{ "dinkes.", 2.5, 0.22, { "rawat-jalan", "imunisasi", "rujukan",
	  "surat-sehat", "skrining-tb", "pemeriksaan-kehamilan",
	  "vaksin-dewasa", "laboratorium", "izin-klinik", "sertifikat-pirt" } },
	{ "bapenda.", 2.0, 0.62, { "pbb-bayar", "pbb-sppt", "bphtb",
	  "pajak-hotel", "pajak-restoran", "pajak-reklame", "pajak-parkir",
	  "pajak-hiburan", "pbb-keberatan", "pajak-air-tanah" } },
	{ "dpmptsp.", 1.0, 0.58, { "izin-usaha", "pbg", "slf", "izin-reklame",
	  "sip-dokter", "izin-apotek", "sip-bidan", "izin-lingkungan",
	  "tdup", "izin-penelitian" } },
	{ "diskominfo.", 0.8, 0.70, { "lapor", "sapa-warga", "wifi-publik",
	  "ppid", "aduan-sampah", "aduan-jalan", "aduan-banjir", "aduan-pju",
	  "aduan-ketertiban", "hotline" } },
	{ "disdik.", 1.2, 0.55, { "ppdb", "mutasi-siswa", "legalisir-ijazah",
	  "beasiswa", "kip", "izin-paud", "surat-pengganti-ijazah",
	  "rekomendasi-sekolah", "data-guru", "pengaduan-sekolah" } },
	{ "dinsos.", 1.0, 0.25, { "dtks", "pbi-jk", "bansos",
	  "rehabilitasi-sosial", "kartu-disabilitas", "lansia",
	  "anak-terlantar", "pengangkatan-anak", "izin-undian", "rekomendasi" } },
	{ "disnaker.", 0.6, 0.45, { "kartu-kuning", "pelatihan-kerja",
	  "lowongan", "izin-lpk", "pengaduan-phk", "wajib-lapor",
	  "pengesahan-pp", "lembur", "jamsos", "mediasi" } },
	{ "dishub.", 0.7, 0.40, { "uji-kir", "izin-trayek", "parkir-langganan",
	  "andalalin", "izin-angkutan", "rekomendasi-bongkar-muat",
	  "kartu-pengawasan", "izin-terminal", "aduan-angkot", "tilang" } },
	{ "dlh.", 0.4, 0.35, { "amdal", "ukl-upl", "bank-sampah",
	  "angkut-sampah", "izin-limbah-b3", "uji-emisi", "pengaduan-lingkungan",
	  "sppl", "izin-pembuangan", "taman-kota" } },
	{ "dpkp.", 0.4, 0.30, { "rutilahu", "psu", "izin-pemakaman",
	  "sewa-rusunawa", "sertifikasi-tanah", "krk", "bantuan-perumahan",
	  "pengaduan-pemakaman", "pemetaan", "izin-pertamanan" } },
	{ "disdagin.", 0.4, 0.40, { "izin-pasar", "tera-ulang", "siinas",
	  "sertifikat-halal", "sewa-kios", "pameran", "izin-minol",
	  "stpw", "pelatihan-umkm", "pengaduan-konsumen" } },
	{ "diskumkm.", 0.4, 0.50, { "iumk", "nib-umkm", "kur", "pelatihan",
	  "kurasi-produk", "izin-koperasi", "rat-koperasi", "pendampingan",
	  "kemitraan", "pengaduan" } },
	{ "bpbd.", 0.2, 0.30, { "lapor-bencana", "rekomendasi-kebakaran",
	  "evakuasi", "logistik", "kaji-risiko", "pelatihan-relawan",
	  "posko", "bantuan-darurat", "peringatan-dini", "pengaduan" } },
	{ "dispusip.", 0.3, 0.60, { "kartu-anggota", "pinjam-buku",
	  "perpustakaan-keliling", "arsip", "ruang-baca", "e-library",
	  "kunjungan", "layanan-rujukan", "deposit", "literasi" } },
	{ "disbudpar.", 0.3, 0.55, { "izin-pariwisata", "tdup-hotel",
	  "cagar-budaya", "sewa-gedung", "event", "pemandu-wisata",
	  "sertifikasi-usaha", "kesenian", "museum", "pengaduan" } },
	{ "dispora.", 0.2, 0.50, { "sewa-gor", "organisasi-pemuda",
	  "pelatihan-atlet", "beasiswa-atlet", "event-olahraga", "paskibra",
	  "kepemudaan", "sewa-lapangan", "rekomendasi", "pengaduan" } },
	{ "satpolpp.", 0.3, 0.20, { "aduan-pkl", "aduan-bangunan", "penertiban",
	  "pengamanan-acara", "aduan-reklame", "aduan-kebisingan",
	  "aduan-minol", "linmas", "pengawasan-perda", "pengaduan" } },
	{ "kesbangpol.", 0.1, 0.45, { "skt-ormas", "rekomendasi-penelitian",
	  "pendaftaran-partai", "wawasan-kebangsaan", "fkub", "pemilu",
	  "orang-asing", "kewaspadaan", "pembauran", "pengaduan" } },
	{ "kecamatan.", 1.5, 0.15, { "surat-pengantar", "skck-pengantar",
	  "sktm", "surat-domisili", "surat-ahli-waris", "izin-keramaian",
	  "legalisir", "surat-usaha", "rekomendasi-nikah", "pengaduan" } },
};

#define NAGENCIES (sizeof(agencies) / sizeof(agencies[0]))

/* "prefix" + "name": the longest is well under kanald's 64 bytes. */
static char service_codes[LG_NSERVICES][64];
/* Kelurahan per kecamatan: 151 in all, as in Kota Bandung. */
static const uint8_t kelurahan_per_kecamatan[LG_NKECAMATAN] = {
	4, 6, 4, 6, 6, 5, 5, 7, 4, 5, 4, 5, 4, 6, 6,
	4, 6, 3, 4, 4, 5, 6, 4, 6, 6, 4, 6, 6, 6, 4,
};
static char region_codes[160][14];
static size_t nregions;
static double svc_cum[LG_NSERVICES];		/* cumulative weights */
static double svc_digital[LG_NSERVICES];
static int model_ready;

/*
 * Builds the tables. Not thread-safe on the first call: lg_batch_build is
 * called from one thread before any request is sent.
 */
static void
model_init(void)
{
	double cum = 0;
	size_t i = 0;

	if (model_ready)
		return;
	for (size_t a = 0; a < NAGENCIES; a++)
		for (size_t s = 0; s < 10; s++, i++) {
			snprintf(service_codes[i], sizeof(service_codes[i]),
			    "%s%s", agencies[a].prefix, agencies[a].services[s]);
			/* Within an agency, the first services are busiest. */
			cum += agencies[a].volume / (1.0 + 0.5 * (double)s);
			svc_cum[i] = cum;
			svc_digital[i] = agencies[a].digital;
		}
	for (int k = 0; k < LG_NKECAMATAN; k++)
		for (int l = 1; l <= kelurahan_per_kecamatan[k]; l++)
			snprintf(region_codes[nregions++], sizeof(region_codes[0]),
			    "32.73.%02d.%04d", k + 1, 1000 + l);
	model_ready = 1;
}

const char *
lg_service_code(size_t i)
{
	model_init();
	return i < LG_NSERVICES ? service_codes[i] : NULL;
}

size_t
lg_region_count(void)
{
	model_init();
	return nregions;
}

const char *
lg_region_code(size_t i)
{
	model_init();
	return i < nregions ? region_codes[i] : NULL;
}

static size_t
pick_service(uint64_t *s)
{
	return rng_pick(s, svc_cum, LG_NSERVICES);
}

/*
 * One event: channel by the agency's digital share (all 9 channels occur),
 * outcomes 84/11/4/1 % (completed/abandoned/failed/unknown) on digital
 * channels and 93/5/1/1 on manual ones, log-normal durations (median 4 min
 * digital, 20 min manual, 10 % not measured), half of kiosk use and 1 in 8
 * web/app/chat transactions assisted.
 */
static void
gen_event(uint64_t *s, Kanal__V1__ServiceEvent *ev, uint8_t id[16],
    int64_t now_ms)
{
	size_t si = pick_service(s);
	int digital = rng_uniform(s) < svc_digital[si];
	double u = rng_uniform(s);
	uint64_t r1, r2;
	int ch;

	if (digital)
		ch = u < 0.40 ? 1 : u < 0.75 ? 2 : u < 0.85 ? 3 : u < 0.93 ? 4 : 5;
	else
		ch = u < 0.75 ? 6 : u < 0.87 ? 7 : u < 0.95 ? 8 : 9;
	kanal__v1__service_event__init(ev);
	ev->service_code = service_codes[si];
	ev->region_code = region_codes[rng_next(s) % nregions];
	ev->channel = (Kanal__V1__Channel)ch;
	ev->occurred_at_ms = now_ms - 60 * 1000 -
	    (int64_t)(rng_uniform(s) * 54 * 60 * 1000);
	u = rng_uniform(s);
	if (digital)
		ev->outcome = u < 0.84 ? 1 : u < 0.95 ? 2 : u < 0.99 ? 3 : 0;
	else
		ev->outcome = u < 0.93 ? 1 : u < 0.98 ? 2 : u < 0.99 ? 3 : 0;
	if (rng_uniform(s) >= 0.1) {
		double median = digital ? 240000.0 : 1200000.0;
		double d = median * exp((digital ? 0.6 : 0.5) * rng_normal(s));
		ev->duration_ms = (uint32_t)(d < 1000 ? 1000 :
		    d > 8.0 * 3600 * 1000 ? 8.0 * 3600 * 1000 : d);
	}
	u = rng_uniform(s);
	ev->assisted = ch == 3 ? u < 0.5 : (ch == 1 || ch == 2 || ch == 4) ?
	    u < 0.125 : 0;
	r1 = rng_next(s);
	r2 = rng_next(s);
	memcpy(id, &r1, 8);
	memcpy(id + 8, &r2, 8);
	ev->event_id.data = id;
	ev->event_id.len = 16;
}

/* ---------------------------------------------------------------- batches */

int
lg_batch_build(struct lg_batch *b, uint64_t seed, uint64_t index,
    uint32_t nevents, int64_t now_ms, uint64_t citizens)
{
	char placeholder[LG_BATCH_ID_LEN + 1];
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent *evs = NULL, **evp = NULL;
	uint8_t (*ids)[16] = NULL;
	char (*refs)[24] = NULL;
	uint64_t s = seed ^ (index * 0xd1b54a32d192ed03ULL);
	const uint8_t *at;
	int rc = -1;

	model_init();
	memset(b, 0, sizeof(*b));
	evs = calloc(nevents ? nevents : 1, sizeof(*evs));
	evp = calloc(nevents ? nevents : 1, sizeof(*evp));
	ids = calloc(nevents ? nevents : 1, sizeof(*ids));
	refs = calloc(citizens > 0 && nevents ? nevents : 1, sizeof(*refs));
	if (evs == NULL || evp == NULL || ids == NULL || refs == NULL)
		goto out;
	for (uint32_t i = 0; i < nevents; i++) {
		gen_event(&s, &evs[i], ids[i], now_ms);
		if (citizens > 0) {
			snprintf(refs[i], sizeof(refs[i]), "c-%010llu",
			    (unsigned long long)(rng_next(&s) % citizens));
			evs[i].citizen_ref.data = (uint8_t *)refs[i];
			evs[i].citizen_ref.len = strlen(refs[i]);
		}
		evp[i] = &evs[i];
	}
	lg_batch_id(placeholder, 0, 0);
	placeholder[LG_BATCH_ID_LEN] = '\0';
	batch.batch_id = placeholder;
	batch.n_events = nevents;
	batch.events = evp;
	b->len = kanal__v1__event_batch__get_packed_size(&batch);
	b->buf = malloc(b->len);
	if (b->buf == NULL)
		goto out;
	kanal__v1__event_batch__pack(&batch, b->buf);
	/*
	 * protobuf-c writes fields in field-number order: batch_id (field 1,
	 * tag 0x0a, length 32) comes first. Look for it rather than assume,
	 * and check the tag and length in front of it.
	 */
	at = memmem(b->buf, b->len, placeholder, LG_BATCH_ID_LEN);
	if (at == NULL || at - b->buf < 2 || at[-2] != 0x0a ||
	    at[-1] != LG_BATCH_ID_LEN) {
		errno = EINVAL;
		goto out;
	}
	b->id_off = (size_t)(at - b->buf);
	b->nevents = nevents;
	rc = 0;
out:
	free(evs);
	free(evp);
	free(ids);
	free(refs);
	if (rc == -1)
		lg_batch_clear(b);
	else
		errno = 0;
	return rc;
}

void
lg_batch_set_id(struct lg_batch *b, uint64_t run, uint64_t seq)
{
	lg_batch_id((char *)b->buf + b->id_off, run, seq);
}

void
lg_batch_clear(struct lg_batch *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------- URLs */

static int
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return 0;
}

int
lg_url_is_loopback(const char *url)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[256];
	const char *p, *end;
	size_t len;
	int all = 1;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	p = url + 7;
	if (*p == '[') {
		end = strchr(++p, ']');
		if (end == NULL)
			return -1;
	} else {
		end = p + strcspn(p, ":/?#");
	}
	len = (size_t)(end - p);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, p, len);
	host[len] = '\0';
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (!addr_is_loopback(ai->ai_addr))
			all = 0;
	freeaddrinfo(res);
	return all;
}
