/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanal-fuzz-mkcorpus DIR: writes the seed corpus of every target into
 * DIR/<target>/ (tests/fuzz/corpus is what is committed; docs/fuzzing.md).
 *
 * Seeds are real inputs made with kanal's own encoders (protobuf-c pack,
 * the WAL record codec, the config example), so the fuzzer starts from
 * inputs that reach deep: accepted events, every rejection reason, clean
 * and torn WAL segments, good and bad sources and config files. Nothing
 * depends on the clock: the same build writes the same bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agg.h"
#include "config.h"
#include "crc32c.h"
#include "fuzzlib.h"
#include "le.h"
#include "record.h"
#include "sources.h"
#include "validate.h"
#include "wal.h"

static const char *outdir;

static void
put(const char *target, const char *name, const void *p, size_t len)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	fuzz_write_file(path, p, len);
}

static void
put_text(const char *target, const char *name, const char *text)
{
	put(target, name, text, strlen(text));
}

/* ------------------------------------------------------------- decode */

struct ev {
	const char *service;
	int channel;
	int64_t ago_ms;		/* before FUZZ_NOW_MS */
	const char *region;
	int outcome;
	uint32_t duration_ms;
	int assisted;
	size_t id_len;		/* event_id bytes, 0 = none */
	const char *ref;	/* citizen_ref, NULL = none */
};

static void
put_batch(const char *name, const char *batch_id, const struct ev *evs,
    size_t n)
{
	Kanal__V1__EventBatch b = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent *e = calloc(n + 1, sizeof(*e));
	Kanal__V1__ServiceEvent **ep = calloc(n + 1, sizeof(*ep));
	static uint8_t id[64];
	uint8_t *out;
	size_t len;

	if (e == NULL || ep == NULL)
		abort();
	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < n; i++) {
		kanal__v1__service_event__init(&e[i]);
		e[i].service_code = (char *)evs[i].service;
		e[i].channel = (Kanal__V1__Channel)evs[i].channel;
		e[i].occurred_at_ms = FUZZ_NOW_MS - evs[i].ago_ms;
		e[i].region_code = (char *)evs[i].region;
		e[i].outcome = (Kanal__V1__Outcome)evs[i].outcome;
		e[i].duration_ms = evs[i].duration_ms;
		e[i].assisted = evs[i].assisted;
		e[i].event_id.len = evs[i].id_len;
		e[i].event_id.data = id;
		if (evs[i].ref != NULL) {
			e[i].citizen_ref.len = strlen(evs[i].ref);
			e[i].citizen_ref.data = (uint8_t *)evs[i].ref;
		}
		ep[i] = &e[i];
	}
	b.batch_id = (char *)batch_id;
	b.n_events = n;
	b.events = ep;
	len = kanal__v1__event_batch__get_packed_size(&b);
	out = malloc(len + 1);
	if (out == NULL)
		abort();
	kanal__v1__event_batch__pack(&b, out);
	put("decode", name, out, len);
	free(out);
	free(ep);
	free(e);
}

#define MIN_MS 60000
#define HOUR_MS 3600000
#define DAY_MS (24 * HOUR_MS)

static void
decode_seeds(void)
{
	/* Batch ids of even length go to the source allowed "*". */
	static const struct ev ok[] = {
		{ "dukcapil.akta-lahir", 1, 5 * MIN_MS, "32.73.01", 1, 90000,
		    0, 16, NULL },
		{ "samsat.pkb", 6, HOUR_MS, "32.73.01.1001", 1, 420000, 1, 0,
		    "9f2c1a7e0b5d3c8f" },
		{ "dukcapil.kk", 3, DAY_MS, "32", 2, 0, 0, 0, NULL },
		{ "dpmptsp.pbg", 5, 2 * DAY_MS, "32.73", 3, 1, 0, 16, NULL },
	};
	static const struct ev bad[] = {
		{ "Dukcapil.akta", 1, MIN_MS, "32.73", 1, 0, 0, 0, NULL },
		{ "dukcapil.akta-lahir", 0, MIN_MS, "32.73", 1, 0, 0, 0, NULL },
		{ "dukcapil.akta-lahir", 10, MIN_MS, "32.73", 1, 0, 0, 0,
		    NULL },
		{ "dukcapil.akta-lahir", 1, MIN_MS, "32.7", 1, 0, 0, 0, NULL },
		{ "dukcapil.akta-lahir", 1, 8 * DAY_MS, "32.73", 1, 0, 0, 0,
		    NULL },
		{ "dukcapil.akta-lahir", 1, -HOUR_MS, "32.73", 1, 0, 0, 0,
		    NULL },
		{ "dukcapil.akta-lahir", 1, MIN_MS, "32.73", 4, 0, 0, 0, NULL },
		{ "dukcapil.akta-lahir", 1, MIN_MS, "32.73", 1, 0, 0, 5, NULL },
		{ "dukcapil.akta-lahir", 1, MIN_MS, "32.73", 1, 0, 0, 0,
		    "0123456789abcdef0123456789abcdef-" },
		{ "dukcapil.akta-lahir", 1, MIN_MS, "32.73", 1, 0, 0, 0,
		    "3273011201900001" },
		{ "samsat.pkb", 7, MIN_MS, "32.73.01", 0, 60000, 1, 16, NULL },
	};
	/* Not allowed for the "dukcapil.*,samsat.pkb" source (odd id). */
	static const struct ev other[] = {
		{ "dpmptsp.pbg", 1, MIN_MS, "32.73", 1, 0, 0, 0, NULL },
		{ "dukcapil", 1, MIN_MS, "32.73", 1, 0, 0, 0, NULL },
	};
	struct ev many[300];

	put_batch("accepted-all-source", "batch-0002", ok, 4);
	put_batch("accepted-some-source", "batch-00003", ok, 4);
	put_batch("every-rejection", "batch-0004", bad, 11);
	put_batch("none-allowed", "batch-00005", other, 2);
	put_batch("empty-batch", "batch-0006", NULL, 0);
	for (size_t i = 0; i < 300; i++) {
		many[i] = ok[i % 4];
		many[i].channel = (int)(i % 9) + 1;
		many[i].ago_ms = (int64_t)i * 997 * 1000;
	}
	put_batch("300-events", "batch-0007", many, 300);
	/*
	 * batch_id "ab", then a field whose 5-byte tag varint makes
	 * protobuf-c 1.4.1's parse_tag_and_wiretype shift 0x40 left by 25
	 * in an int: the UBSan report of protobuf-c issue 506, which can
	 * fire only if libprotobuf-c itself is instrumented
	 * (docs/fuzzing.md).
	 */
	put("decode", "protobuf-c-506-tag-shift",
	    "\x0a\x02" "ab" "\x82\x80\x80\x80\x40\x00", 10);
}

/* ---------------------------------------------------------------- wal */

#define FIRST UINT64_C(0x0019b2c4d5e60000)

/* Makes the CRC of the record at r right again. */
static void
recrc(uint8_t *r)
{
	uint32_t n = le_get_u32(r), c;

	c = crc32c(0, r, 4);
	c = crc32c(c, r + 8, 1);
	le_put_u32(r + 4, crc32c(c, r + WAL_RECORD_HEADER, n));
}

/* Appends a BATCH record of events ok-like to buf at *len. */
static size_t
add_record(uint8_t *buf, size_t len, const char *batch_id, size_t nev,
    uint8_t type)
{
	struct agg_event ev[4];
	struct record_batch b = {
		.received_at_ms = FUZZ_NOW_MS,
		.source = "portal",
		.source_len = 6,
		.batch_id = batch_id,
		.batch_id_len = strlen(batch_id),
		.accepted = (uint32_t)nev,
		.rejected = 1,
	};
	static const char *const svc[] = { "dukcapil.akta-lahir",
	    "samsat.pkb", "dukcapil.kk", "dpmptsp.pbg" };
	static const char *const reg[] = { "32.73.01", "32.73.01.1001", "32",
	    "32.73" };
	uint8_t *r = buf + len, *p = r + WAL_RECORD_HEADER;
	size_t n;

	for (size_t i = 0; i < nev; i++) {
		ev[i].occurred_at_ms = FUZZ_NOW_MS - (int64_t)i * HOUR_MS;
		ev[i].service = svc[i];
		ev[i].service_len = strlen(svc[i]);
		ev[i].region = reg[i];
		ev[i].region_len = strlen(reg[i]);
		ev[i].duration_ms = (uint32_t)i * 1000;
		ev[i].channel = (uint8_t)(i * 2 + 1);
		ev[i].outcome = (uint8_t)(i % 4);
		ev[i].assisted = (uint8_t)(i % 2);
		/* Batches named "reach-..." carry citizen hashes. */
		ev[i].has_ref = i % 2 == 0;
		ev[i].ref_hash = 0x9e3779b97f4a7c15ULL * (i + 1);
	}
	b.has_reach = strncmp(batch_id, "reach-", 6) == 0;
	b.reach_key_id = -77;
	n = record_batch_encode(&b, ev, nev, p);
	le_put_u32(r, (uint32_t)n);
	r[8] = type;
	recrc(r);
	return len + WAL_RECORD_HEADER + n;
}

static size_t
add_header(uint8_t *buf, size_t len, uint64_t first)
{
	uint8_t *h = buf + len;

	memset(h, 0, WAL_SEGMENT_HEADER);
	memcpy(h, "KANALWAL", 8);
	le_put_u32(h + 8, 1);
	le_put_u32(h + 12, WAL_SEGMENT_HEADER);
	le_put_u64(h + 16, first);
	memcpy(h + 24, "bdg-1", 5);
	le_put_u64(h + 88, (uint64_t)FUZZ_NOW_MS);
	le_put_u32(h + 124, crc32c(0, h, 124));
	return len + WAL_SEGMENT_HEADER;
}

static void
wal_seeds(void)
{
	static uint8_t buf[8192];
	size_t len, seg1;

	/* flags 1 (fix up): one clean segment of three records. */
	buf[0] = 1;
	len = add_header(buf, 1, FIRST);
	len = add_record(buf, len, "batch-1", 4, RECORD_TYPE_BATCH);
	len = add_record(buf, len, "batch-2", 1, RECORD_TYPE_BATCH);
	len = add_record(buf, len, "batch-3", 0, RECORD_TYPE_BATCH);
	put("wal", "one-segment-fixup", buf, len);

	/* flags 0: the same bytes as written, and with a torn tail. */
	buf[0] = 0;
	put("wal", "one-segment-raw", buf, len);
	put("wal", "torn-tail-raw", buf, len - 7);

	/* flags 0: a record of an unknown type, one that does not decode. */
	len = add_header(buf, 1, FIRST);
	len = add_record(buf, len, "batch-1", 2, 7);
	seg1 = len;
	len = add_record(buf, len, "batch-2", 2, RECORD_TYPE_BATCH);
	buf[len - 1] = 'X';	/* a region code no event may have */
	recrc(buf + seg1);	/* CRC-valid: written so, decodes badly */
	len = add_record(buf, len, "batch-3", 1, RECORD_TYPE_BATCH);
	put("wal", "odd-records-raw", buf, len);

	/* flags 3 (fix up, two segments): the second follows the first. */
	buf[0] = 3;
	seg1 = add_header(buf, 5, FIRST);
	seg1 = add_record(buf, seg1, "batch-1", 3, RECORD_TYPE_BATCH);
	le_put_u32(buf + 1, (uint32_t)(seg1 - 5));
	len = add_header(buf, seg1, FIRST + (seg1 - 5 - WAL_SEGMENT_HEADER));
	len = add_record(buf, len, "batch-2", 2, RECORD_TYPE_BATCH);
	put("wal", "two-segments-fixup", buf, len);

	/* flags 6 (two segments, repair): damage in the older one. */
	buf[0] = 6;
	buf[5 + WAL_SEGMENT_HEADER + 20] ^= 0x10;
	put("wal", "older-damage-repair", buf, len);

	/* flags 0: a newest segment that is half a header. */
	buf[0] = 0;
	len = add_header(buf, 1, FIRST);
	put("wal", "half-header", buf, 1 + 50);

	/* flags 0: records with citizen hashes, between plain ones. */
	buf[0] = 0;
	len = add_header(buf, 1, FIRST);
	len = add_record(buf, len, "batch-1", 2, RECORD_TYPE_BATCH);
	len = add_record(buf, len, "reach-1", 4, RECORD_TYPE_BATCH);
	len = add_record(buf, len, "reach-2", 1, RECORD_TYPE_BATCH);
	put("wal", "reach-records-raw", buf, len);
}

/* ------------------------------------------------------------ sources */

static void
sources_seeds(void)
{
	char d[3][65], text[2048];

	for (int i = 0; i < 3; i++) {
		char tok[32];
		snprintf(tok, sizeof(tok), "fuzz-token-%d", i + 1);
		sources_digest_hex(tok, strlen(tok), d[i]);
	}
	snprintf(text, sizeof(text),
	    "# NAME  TOKEN DIGEST  SERVICES IT MAY REPORT\n"
	    "portal sha256:%s dukcapil.*,samsat.pkb\n"
	    "kiosk-bdg\tsha256:%s *   # every service\n"
	    "\n"
	    "bank_bjb.v2 sha256:%s samsat.pkb,samsat.*,dpmptsp.pbg\n",
	    d[0], d[1], d[2]);
	put_text("sources", "good", text);
	snprintf(text, sizeof(text),
	    "portal sha256:%s dukcapil.*\r\n"
	    "portal sha256:%s dukcapil.*\r\n", d[0], d[1]);
	put_text("sources", "rotation-crlf", text);
	snprintf(text, sizeof(text),
	    "portal sha256:%s dukcapil.*\n"
	    "again sha256:%s *\n"
	    "two-fields sha256:%s\n"
	    "bad/name sha256:%s *\n"
	    "hex sha256:%.63sg *\n"
	    "short sha256:abc *\n"
	    "pat sha256:%s Dukcapil.*\n"
	    "pat2 sha256:%s a,,b\n"
	    "four sha256:%s a b\n",
	    d[0], d[0], d[1], d[1], d[2], d[2], d[2], d[2]);
	put_text("sources", "every-problem", text);
	put("sources", "nul-byte", "a sha256:\0 *\n", 13);
	put_text("sources", "empty", "");
}

/* ------------------------------------------------------------- config */

static void
config_seeds(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		abort();
	config_example(f);
	fclose(f);
	put("config", "example", text, len);
	free(text);
	put_text("config", "small",
	    "listen = [::1]:8080\n"
	    "pg = host=/run/postgresql dbname=kanal user=kanal_ingest\n"
	    "wal-dir = /var/lib/kanal/wal\n"
	    "collector-id = bdg-1\n"
	    "flush-interval = 30s\n"
	    "max-body-size = 4MiB\n"
	    "max-batch-events = 10000\n"
	    "log-level = info\n");
	put_text("config", "every-problem",
	    "listen = 127.0.0.1\n"
	    "flush-interval = 5x\n"
	    "max-body-size = 99999999999999999999G\n"
	    "max-batch-events = 0\n"
	    "no-such-key = 1\n"
	    "just words\n"
	    "collector-id = has space\n"
	    "log-level = loud\n"
	    "event-max-age = 18446744073709551615d\n");
	put_text("config", "flags",
	    "--flush-interval=10s\n"
	    "--listen\n"
	    "127.0.0.1:9000\n"
	    "-n\n"
	    "--collector-id=x\n"
	    "--max-batch-events\n");
	put_text("config", "help", "--example-config\n");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: kanal-fuzz-mkcorpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "mkdir %s: %s\n", outdir, strerror(errno));
		return 1;
	}
	decode_seeds();
	wal_seeds();
	sources_seeds();
	config_seeds();
	return 0;
}
