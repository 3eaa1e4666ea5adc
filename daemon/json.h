/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json: the proto3 JSON mapping of the wire contract, for clients that
 * would rather not link a protobuf library. json_decode_batch turns a body
 * into the same arena-allocated Kanal__V1__EventBatch that protobuf-c's
 * unpack gives, so the batch then takes exactly the protobuf path (dedup,
 * validation, WAL); json_encode_ack writes a BatchAck as JSON.
 *
 * Decoding is strict: unknown fields, a field given twice (under either
 * of its names), a value of the wrong type or out of range, and anything
 * that is not RFC 8259 JSON fail the whole body, with a message naming the
 * JSON path ("events[3].channel: expected a string or number"). An enum
 * name this kanald does not know is not such an error: the event is kept
 * with an invalid number, validation rejects it like an unknown number,
 * and json_event_message puts the name the client sent into the message.
 */
#ifndef KANAL_JSON_H
#define KANAL_JSON_H

#include <stddef.h>

#include "kanal/v1/events.pb-c.h"

struct arena;

/* What json_decode_batch gives back; everything lives in the arena. */
struct json_batch {
	Kanal__V1__EventBatch *batch;
	/*
	 * Per event, the channel / outcome name the client sent that is not
	 * a known enum name, or NULL. Either array is NULL when no event
	 * had one.
	 */
	const char **channel_name;
	const char **outcome_name;
};

/*
 * Decodes an EventBatch from len bytes of JSON. Everything it returns is
 * allocated from a, so it is freed by the arena's next reset; jansson's
 * own parse tree is freed before returning. A body whose parse tree would
 * take more than max_mem bytes (estimated from its structure before
 * parsing), or that nests deeper than JSON_MAX_DEPTH, is refused. Returns
 * 0, or -1 with errno EINVAL and a one-line message of printable ASCII in
 * err (the body is wrong: 400) or ENOMEM (the arena or malloc ran out:
 * retry later).
 */
int json_decode_batch(struct arena *a, const void *body, size_t len,
    size_t max_mem, struct json_batch *out, char *err, size_t errlen);

/*
 * ingest's max_mem: this many times the body limit. A batch of 10,000
 * fully filled events needs 24 MB; a 4 MiB body gets 64 MiB.
 */
#define JSON_MEMORY_FACTOR 16
#define JSON_MAX_DEPTH 16

/*
 * For event i rejected with why by validate_event: when the rejection is
 * for an enum name the client sent that kanald does not know, replaces
 * msg with a message naming it and returns 1; else leaves msg alone and
 * returns 0. Can't fail.
 */
int json_event_message(const struct json_batch *jb, size_t i,
    Kanal__V1__RejectReason why, char *msg, size_t msglen);

/*
 * Writes ack as one JSON object: batchId, accepted, rejected, duplicate
 * and rejections [{index, code (the RejectReason name), message}], every
 * field even when it has its default value. Writes at most cap bytes to
 * buf (buf may be NULL when cap is 0) and returns the length of the whole
 * encoding, like snprintf without the NUL: call again with a buffer that
 * big when it is more than cap. Strings are escaped as RFC 8259 requires
 * and bytes that are not UTF-8 become U+FFFD, so the output is always
 * valid JSON. Can't fail.
 */
size_t json_encode_ack(const Kanal__V1__BatchAck *ack, char *buf, size_t cap);

#endif
