/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_json: libFuzzer target for the JSON path of POST /v1/events
 * (daemon/json.c): decode a body, validate every event as ingest does,
 * and encode the acknowledgement. What must hold for any input:
 *
 *   - no crash, leak or undefined behaviour (ASan, UBSan);
 *   - a refused body gets errno EINVAL or ENOMEM and a one-line message of
 *     printable ASCII (it goes into a text/plain answer as it is);
 *   - a decoded batch is a well-formed protobuf-c message: it packs, and
 *     unpacks to the same size;
 *   - the acknowledgement, carrying every event's rejection message, is
 *     valid JSON to a strict parser, and json_encode_ack's length is exact.
 *
 * The fuzz build (tests/fuzz) links it with kanal_core. Standalone, from
 * the repository root after a normal build (for the generated
 * events.pb-c.c):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Idaemon -Ibuild/proto -D_GNU_SOURCE tests/fuzz/fuzz_json.c \
 *       daemon/json.c daemon/arena.c daemon/validate.c daemon/sources.c \
 *       daemon/log.c build/proto/kanal/v1/events.pb-c.c \
 *       $(pkg-config --cflags --libs jansson libprotobuf-c libcrypto) \
 *       -o build/fuzz_json
 *   mkdir -p build/fuzz-json-corpus
 *   build/fuzz_json -max_total_time=60 -max_len=8192 \
 *       build/fuzz-json-corpus tests/fuzz/corpus/json
 *
 * (New inputs go to the first directory; the seeds stay as they are.)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "json.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed "now" inside the window of the seed corpus's timestamps. */
#define NOW_MS 1780000000000LL

static void
check_message(const char *err)
{
	size_t n = strlen(err);

	if (n == 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if (err[i] < 0x20 || err[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *arena;
	static const struct validate_limits lim = {
		7LL * 24 * 3600 * 1000, 5LL * 60 * 1000 };
	struct json_batch jb;
	Kanal__V1__EventBatch *b, *again;
	Kanal__V1__BatchAck ack = KANAL__V1__BATCH_ACK__INIT;
	Kanal__V1__Rejection *rej, **rejp;
	char err[256], msg[200], *out;
	size_t n, len;
	uint8_t *packed;
	json_t *v;

	if (arena == NULL) {
		arena = arena_new(64u << 20);
		if (arena == NULL)
			abort();
	}
	arena_reset(arena);
	err[0] = '\0';
	/* As ingest with a 64 KiB body limit. */
	if (json_decode_batch(arena, data, size, (size_t)JSON_MEMORY_FACTOR *
	    65536, &jb, err, sizeof(err)) == -1) {
		if (errno != EINVAL && errno != ENOMEM)
			abort();
		if (errno == EINVAL)
			check_message(err);
		return 0;
	}
	b = jb.batch;
	if (b == NULL || (b->n_events > 0 && b->events == NULL))
		abort();

	/* It is a protobuf message like any other. */
	n = kanal__v1__event_batch__get_packed_size(b);
	packed = malloc(n + 1);
	if (packed == NULL)
		abort();
	if (kanal__v1__event_batch__pack(b, packed) != n)
		abort();
	again = kanal__v1__event_batch__unpack(NULL, n, packed);
	if (again == NULL || again->n_events != b->n_events ||
	    kanal__v1__event_batch__get_packed_size(again) != n)
		abort();
	kanal__v1__event_batch__free_unpacked(again, NULL);
	free(packed);

	/* Validated as ingest does, with the rejections in the answer. */
	rej = calloc(b->n_events + 1, sizeof(*rej));
	rejp = calloc(b->n_events + 1, sizeof(*rejp));
	if (rej == NULL || rejp == NULL)
		abort();
	for (size_t i = 0; i < b->n_events; i++) {
		Kanal__V1__RejectReason why = validate_event(b->events[i],
		    NULL, NOW_MS, &lim, msg, sizeof(msg));

		if (why == KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED)
			continue;
		json_event_message(&jb, i, why, msg, sizeof(msg));
		kanal__v1__rejection__init(&rej[ack.n_rejections]);
		rej[ack.n_rejections].index = (uint32_t)i;
		rej[ack.n_rejections].code = why;
		rej[ack.n_rejections].message = strdup(msg);
		if (rej[ack.n_rejections].message == NULL)
			abort();
		rejp[ack.n_rejections] = &rej[ack.n_rejections];
		ack.n_rejections++;
	}
	ack.batch_id = b->batch_id;
	ack.rejected = (uint32_t)ack.n_rejections;
	ack.accepted = (uint32_t)(b->n_events - ack.n_rejections);
	ack.rejections = rejp;
	len = json_encode_ack(&ack, NULL, 0);
	out = malloc(len + 1);
	if (out == NULL || json_encode_ack(&ack, out, len + 1) != len)
		abort();
	v = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
	if (v == NULL || !json_is_object(v) || json_array_size(
	    json_object_get(v, "rejections")) != ack.n_rejections)
		abort();
	json_decref(v);
	free(out);
	for (size_t i = 0; i < ack.n_rejections; i++)
		free(rej[i].message);
	free(rej);
	free(rejp);
	return 0;
}
