/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json: see json.h.
 *
 * Why jansson (Debian libjansson-dev, in main): its integers are json_int_t
 * (long long), so an int64 occurredAtMs sent as a number survives exactly
 * (cJSON keeps every number as a double, which loses past 2^53); it can
 * refuse duplicate object keys (JSON_REJECT_DUPLICATES) and otherwise
 * parses strict RFC 8259 (UTF-8 checked, no trailing garbage, no \u0000
 * unless asked); it is mature and small.
 *
 * The mapping (proto/kanal/v1/events.proto, proto3 JSON):
 *
 *   EventBatch    batchId (string), events (array of ServiceEvent)
 *   ServiceEvent  eventId, citizenRef    bytes: base64, standard or URL-safe
 *                                        alphabet, padded or not
 *                 serviceCode, regionCode  string
 *                 channel, outcome       enum: its name ("CHANNEL_WEB") or
 *                                        its number
 *                 occurredAtMs           int64: a number or a string of
 *                                        digits
 *                 durationMs             uint32: a number or a string
 *                 assisted               true or false
 *
 * Each field is also taken under its proto name (service_code), as proto3
 * JSON parsers must; null is the field's default. A number must be an
 * integer in the field's range: 1.0, 1e3 and "1e3" are refused rather
 * than guessed at.
 *
 * Unknown fields are refused (400 naming the field), as proto3 JSON
 * parsers do by default: a misspelt field ("assited": true) would
 * otherwise be dropped in silence and the event counted with the default,
 * skewing the indicators without anyone noticing.
 *
 * Memory: jansson mallocs its parse tree, and a small body can make a big
 * tree (a body of "{}"s takes 74 times its size). So before jansson sees
 * a body, one pass over its bytes estimates what the tree will take from
 * its structure (per object, array, string, member and element; measured
 * with jansson 2.14 at 1.1 to 2.5 times what it really takes) and refuses
 * it when that is over the caller's max_mem, and refuses nesting deeper
 * than JSON_MAX_DEPTH (the mapping needs 3). A real batch is far inside:
 * 10,000 fully filled events estimate at 24 MB, 11 times their 2.2 MB.
 * The tree is freed before json_decode_batch returns; what it returns is
 * in the request's arena. jansson's allocations are not made to fail on
 * purpose: jansson 2.14 asserts (lex_unget_unsave: c == d) when a malloc
 * inside its lexer fails (upstream akheron/jansson issue 362, still open),
 * which a budget enforced in its allocator made reachable from the
 * network (found by tests/fuzz/fuzz_json.c). A real out-of-memory there
 * still aborts kanald; the WAL keeps what was acknowledged.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"

/* ------------------------------------------------------------------------
 * Before parsing: the shape of the body
 */

/*
 * Bytes jansson will allocate to parse s, over-estimated from its
 * structure, or SIZE_MAX when it nests deeper than JSON_MAX_DEPTH (where
 * *depth is set). Only structure outside strings counts; whether it is
 * JSON at all is for jansson to say.
 */
static size_t
parse_cost(const unsigned char *s, size_t len, int *deep)
{
	size_t cost = 64 + len, depth = 0;
	int in_string = 0;

	*deep = 0;
	/* At most 256 per byte: this can't overflow for len under that. */
	if (len > SIZE_MAX / 512)
		return SIZE_MAX;
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			in_string = 1;
			cost += 48;
			break;
		case '{':
		case '[':
			cost += s[i] == '{' ? 256 : 128;
			if (++depth > JSON_MAX_DEPTH) {
				*deep = 1;
				return SIZE_MAX;
			}
			break;
		case '}':
		case ']':
			if (depth > 0)
				depth--;
			break;
		case ',':
			cost += 48;
			break;
		case ':':
			cost += 112;
			break;
		default:
			break;
		}
	}
	return cost;
}

/* ------------------------------------------------------------------------
 * Decoding
 */

enum kind { K_STRING, K_BYTES, K_INT64, K_UINT32, K_BOOL, K_CHANNEL,
    K_OUTCOME };

struct field {
	const char *json, *proto;
	enum kind kind;
	size_t off;
};

#define EV(m) offsetof(Kanal__V1__ServiceEvent, m)
static const struct field event_fields[] = {
	{ "eventId", "event_id", K_BYTES, EV(event_id) },
	{ "serviceCode", "service_code", K_STRING, EV(service_code) },
	{ "channel", "channel", K_CHANNEL, EV(channel) },
	{ "occurredAtMs", "occurred_at_ms", K_INT64, EV(occurred_at_ms) },
	{ "regionCode", "region_code", K_STRING, EV(region_code) },
	{ "outcome", "outcome", K_OUTCOME, EV(outcome) },
	{ "durationMs", "duration_ms", K_UINT32, EV(duration_ms) },
	{ "assisted", "assisted", K_BOOL, EV(assisted) },
	{ "citizenRef", "citizen_ref", K_BYTES, EV(citizen_ref) },
};
#undef EV
#define NEVENT_FIELDS (sizeof(event_fields) / sizeof(event_fields[0]))

/* The value an unknown enum name decodes to: no enum has it. */
#define ENUM_UNKNOWN (-1)

struct dec {
	struct arena *a;
	char *err;
	size_t errlen;
	size_t nev;
	const char **channel_name, **outcome_name;
};

/*
 * Copies at most max bytes of s into out for a message, with anything but
 * printable ASCII as '?': a key or name from the body must not put control
 * characters into a text/plain answer or a log line.
 */
static void
printable(const char *s, size_t max, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max && i + 1 < outlen; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* Fails the decode with "PATH: what" (EINVAL). */
static int
fail(struct dec *d, long idx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct dec *d, long idx, const char *key, const char *fmt, ...)
{
	char k[68], what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	printable(key, 64, k, sizeof(k));
	if (idx >= 0)
		snprintf(d->err, d->errlen, "events[%ld]%s%s: %s", idx,
		    k[0] != '\0' ? "." : "", k, what);
	else
		snprintf(d->err, d->errlen, "%s: %s", k, what);
	errno = EINVAL;
	return -1;
}

static int
nomem(void)
{
	errno = ENOMEM;
	return -1;
}

static char *
arena_strdup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/*
 * A decimal integer in [lo, hi]: an optional '-', then digits and nothing
 * else. 1 if so, with the value in *v.
 */
static int
parse_decimal(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
	int neg = *s == '-';
	uint64_t mag = 0, lim;

	if (neg)
		s++;
	if (*s == '\0')
		return 0;
	/* The magnitude of INT64_MIN is INT64_MAX + 1. */
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s != '\0'; s++) {
		unsigned dgt;

		if (*s < '0' || *s > '9')
			return 0;
		dgt = (unsigned)(*s - '0');
		if (mag > (lim - dgt) / 10)
			return 0;
		mag = mag * 10 + dgt;
	}
	if (neg)
		*v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		*v = (int64_t)mag;
	return *v >= lo && *v <= hi;
}

/* An integer field: a JSON integer or a string of digits, in [lo, hi]. */
static int
get_integer(struct dec *d, long idx, const char *key, json_t *v, int64_t lo,
    int64_t hi, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n < lo || n > hi)
			return fail(d, idx, key, "%lld is out of range "
			    "(%" PRId64 "..%" PRId64 ")", (long long)n, lo, hi);
		*out = n;
		return 0;
	}
	if (json_is_real(v))
		return fail(d, idx, key, "expected an integer, not a "
		    "fraction or exponent");
	if (json_is_string(v)) {
		if (!parse_decimal(json_string_value(v), lo, hi, out))
			return fail(d, idx, key, "expected a decimal integer "
			    "in range (%" PRId64 "..%" PRId64 ")", lo, hi);
		return 0;
	}
	return fail(d, idx, key, "expected an integer or a string of digits");
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/*
 * Base64 in either alphabet (RFC 4648 sections 4 and 5), padded or not,
 * into the arena. 0, or -1 (EINVAL: not base64; ENOMEM).
 */
static int
b64_decode(struct arena *a, const char *s, size_t len, ProtobufCBinaryData *out)
{
	size_t pad = 0, n;
	uint8_t *p;
	uint32_t acc = 0;
	int bits = 0;

	while (len > 0 && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	/* Padding makes a whole number of quads; without it 1 left is bad. */
	if ((pad > 0 && (len + pad) % 4 != 0) || len % 4 == 1) {
		errno = EINVAL;
		return -1;
	}
	n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	out->len = 0;
	out->data = NULL;
	if (n == 0)
		return 0;
	p = arena_alloc(a, n);
	if (p == NULL)
		return nomem();
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0) {
			errno = EINVAL;
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[out->len++] = (uint8_t)(acc >> bits);
		}
	}
	out->data = p;
	return 0;
}

/*
 * An enum: its name, or its number (int32). An unknown name decodes to
 * ENUM_UNKNOWN and is kept in (*notes)[idx], the notes being allocated at
 * the batch's first unknown name.
 */
static int
get_enum(struct dec *d, long idx, const char *key, json_t *v,
    const ProtobufCEnumDescriptor *desc, const char ***notes, int *out)
{
	if (json_is_string(v)) {
		const char *name = json_string_value(v);
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value_by_name(desc, name);

		if (ev != NULL) {
			*out = ev->value;
			return 0;
		}
		if (*notes == NULL) {
			*notes = arena_alloc(d->a, d->nev * sizeof(**notes));
			if (*notes == NULL)
				return nomem();
			memset(*notes, 0, d->nev * sizeof(**notes));
		}
		(*notes)[idx] = arena_strdup(d->a, name, json_string_length(v));
		if ((*notes)[idx] == NULL)
			return nomem();
		*out = ENUM_UNKNOWN;
		return 0;
	}
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n < INT32_MIN || n > INT32_MAX)
			return fail(d, idx, key, "enum number %lld is out of "
			    "range", (long long)n);
		*out = (int)n;
		return 0;
	}
	return fail(d, idx, key, "expected a string or number");
}

static int
set_field(struct dec *d, long idx, const char *key, const struct field *f,
    json_t *v, Kanal__V1__ServiceEvent *ev)
{
	char *base = (char *)ev + f->off;
	int64_t n;
	int e, val;

	switch (f->kind) {
	case K_STRING:
		if (!json_is_string(v))
			return fail(d, idx, key, "expected a string");
		*(char **)base = arena_strdup(d->a, json_string_value(v),
		    json_string_length(v));
		return *(char **)base != NULL ? 0 : nomem();
	case K_BYTES:
		if (!json_is_string(v))
			return fail(d, idx, key, "expected a base64 string");
		if (b64_decode(d->a, json_string_value(v),
		    json_string_length(v), (ProtobufCBinaryData *)base) == -1)
			return errno == ENOMEM ? -1 : fail(d, idx, key,
			    "not base64 (standard or URL-safe alphabet)");
		return 0;
	case K_INT64:
		if (get_integer(d, idx, key, v, INT64_MIN, INT64_MAX, &n) == -1)
			return -1;
		*(int64_t *)base = n;
		return 0;
	case K_UINT32:
		if (get_integer(d, idx, key, v, 0, UINT32_MAX, &n) == -1)
			return -1;
		*(uint32_t *)base = (uint32_t)n;
		return 0;
	case K_BOOL:
		if (!json_is_boolean(v))
			return fail(d, idx, key, "expected true or false");
		*(protobuf_c_boolean *)base = json_is_true(v);
		return 0;
	case K_CHANNEL:
	case K_OUTCOME:
		if (f->kind == K_CHANNEL)
			e = get_enum(d, idx, key, v,
			    &kanal__v1__channel__descriptor, &d->channel_name,
			    &val);
		else
			e = get_enum(d, idx, key, v,
			    &kanal__v1__outcome__descriptor, &d->outcome_name,
			    &val);
		if (e == -1)
			return -1;
		/* The enum types are int-sized (PROTOBUF_C__FORCE_ENUM_TO_BE_INT_SIZE). */
		*(int *)base = val;
		return 0;
	}
	return fail(d, idx, key, "internal error: unknown field kind");
}

static int
decode_event(struct dec *d, long idx, json_t *obj, Kanal__V1__ServiceEvent *ev)
{
	const char *seen[NEVENT_FIELDS] = { NULL };
	const char *key;
	json_t *v;

	kanal__v1__service_event__init(ev);
	if (!json_is_object(obj))
		return fail(d, idx, "", "expected an object (a ServiceEvent)");
	json_object_foreach(obj, key, v) {
		size_t i;

		for (i = 0; i < NEVENT_FIELDS; i++)
			if (strcmp(key, event_fields[i].json) == 0 ||
			    strcmp(key, event_fields[i].proto) == 0)
				break;
		if (i == NEVENT_FIELDS)
			return fail(d, idx, key, "unknown field");
		if (seen[i] != NULL)
			return fail(d, idx, key, "the same field as \"%s\"; "
			    "send it once", seen[i]);
		seen[i] = key;
		if (json_is_null(v))
			continue;
		if (set_field(d, idx, key, &event_fields[i], v, ev) == -1)
			return -1;
	}
	return 0;
}

static int
decode_batch(struct dec *d, json_t *root, Kanal__V1__EventBatch *b)
{
	const char *key, *id_key = NULL;
	json_t *v, *events = NULL;

	if (!json_is_object(root))
		return fail(d, -1, "body", "expected a JSON object (an "
		    "EventBatch)");
	json_object_foreach(root, key, v) {
		if (strcmp(key, "batchId") == 0 || strcmp(key, "batch_id") ==
		    0) {
			if (id_key != NULL)
				return fail(d, -1, key, "the same field as "
				    "\"%s\"; send it once", id_key);
			id_key = key;
			if (json_is_null(v))
				continue;
			if (!json_is_string(v))
				return fail(d, -1, key, "expected a string");
			b->batch_id = arena_strdup(d->a, json_string_value(v),
			    json_string_length(v));
			if (b->batch_id == NULL)
				return nomem();
		} else if (strcmp(key, "events") == 0) {
			/* jansson refused a second "events" already. */
			events = v;
			if (!json_is_null(v) && !json_is_array(v))
				return fail(d, -1, key, "expected an array");
		} else {
			return fail(d, -1, key, "unknown field");
		}
	}
	d->nev = json_is_array(events) ? json_array_size(events) : 0;
	if (d->nev == 0)
		return 0;
	b->events = arena_alloc(d->a, d->nev * sizeof(*b->events));
	if (b->events == NULL)
		return nomem();
	for (size_t i = 0; i < d->nev; i++) {
		b->events[i] = arena_alloc(d->a, sizeof(*b->events[i]));
		if (b->events[i] == NULL)
			return nomem();
		if (decode_event(d, (long)i, json_array_get(events, i),
		    b->events[i]) == -1)
			return -1;
	}
	b->n_events = d->nev;
	return 0;
}

int
json_decode_batch(struct arena *a, const void *body, size_t len,
    size_t max_mem, struct json_batch *out, char *err, size_t errlen)
{
	struct dec d = { .a = a, .err = err, .errlen = errlen };
	Kanal__V1__EventBatch *b;
	json_error_t jerr;
	json_t *root;
	size_t cost;
	int deep, rc;

	memset(out, 0, sizeof(*out));
	cost = parse_cost(body, len, &deep);
	if (deep) {
		snprintf(err, errlen, "the JSON nests deeper than %d levels (an "
		    "EventBatch needs 3)", JSON_MAX_DEPTH);
		errno = EINVAL;
		return -1;
	}
	if (cost > max_mem) {
		snprintf(err, errlen, "the JSON body would take more than %zu "
		    "bytes of memory to decode; send fewer, plainer values",
		    max_mem);
		errno = EINVAL;
		return -1;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		char text[JSON_ERROR_TEXT_LENGTH];

		if (json_error_code(&jerr) == json_error_out_of_memory)
			return nomem();
		printable(jerr.text, sizeof(text) - 1, text, sizeof(text));
		snprintf(err, errlen, "not JSON: %s at line %d, column %d",
		    text, jerr.line, jerr.column);
		errno = EINVAL;
		return -1;
	}
	b = arena_alloc(a, sizeof(*b));
	if (b == NULL) {
		json_decref(root);
		return nomem();
	}
	kanal__v1__event_batch__init(b);
	rc = decode_batch(&d, root, b);
	json_decref(root);
	if (rc == -1)
		return -1;
	out->batch = b;
	out->channel_name = d.channel_name;
	out->outcome_name = d.outcome_name;
	return 0;
}

int
json_event_message(const struct json_batch *jb, size_t i,
    Kanal__V1__RejectReason why, char *msg, size_t msglen)
{
	const char *name = NULL, *what = NULL;
	char shown[68];

	if (jb->batch == NULL || i >= jb->batch->n_events)
		return 0;
	if (why == KANAL__V1__REJECT_REASON__REJECT_REASON_CHANNEL_INVALID &&
	    jb->channel_name != NULL) {
		name = jb->channel_name[i];
		what = "channel";
	} else if (why ==
	    KANAL__V1__REJECT_REASON__REJECT_REASON_OUTCOME_INVALID &&
	    jb->outcome_name != NULL) {
		name = jb->outcome_name[i];
		what = "outcome";
	}
	if (name == NULL)
		return 0;
	printable(name, 64, shown, sizeof(shown));
	snprintf(msg, msglen, "%s \"%s\" is not a known %s name (see "
	    "proto/kanal/v1/events.proto)", what, shown, what);
	return 1;
}

/* ------------------------------------------------------------------------
 * Encoding the acknowledgement
 */

struct out {
	char *buf;
	size_t cap, len;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap)
		memcpy(o->buf + o->len, s, n < o->cap - o->len ? n :
		    o->cap - o->len);
	o->len += n;
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
putu(struct out *o, uint32_t v)
{
	char t[16];

	put(o, t, (size_t)snprintf(t, sizeof(t), "%" PRIu32, v));
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0:
 * no overlong forms, surrogates or code points past U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

static void
put_string(struct out *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str != NULL ? str :
	    "");
	size_t n = strlen((const char *)s);

	put(o, "\"", 1);
	while (n > 0) {
		size_t l = utf8_len(s, n);
		char esc[8];

		if (l == 0) {
			puts_(o, "\\ufffd");
			l = 1;
		} else if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s;
			put(o, esc, 2);
		} else if (*s < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *s);
			put(o, esc, 6);
		} else {
			put(o, (const char *)s, l);
		}
		s += l;
		n -= l;
	}
	put(o, "\"", 1);
}

size_t
json_encode_ack(const Kanal__V1__BatchAck *ack, char *buf, size_t cap)
{
	struct out o = { .buf = buf, .cap = buf != NULL ? cap : 0 };

	puts_(&o, "{\"batchId\":");
	put_string(&o, ack->batch_id);
	puts_(&o, ",\"accepted\":");
	putu(&o, ack->accepted);
	puts_(&o, ",\"rejected\":");
	putu(&o, ack->rejected);
	puts_(&o, ack->duplicate ? ",\"duplicate\":true" :
	    ",\"duplicate\":false");
	puts_(&o, ",\"rejections\":[");
	for (size_t i = 0; i < ack->n_rejections; i++) {
		const Kanal__V1__Rejection *r = ack->rejections[i];
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		    &kanal__v1__reject_reason__descriptor, (int)r->code);

		puts_(&o, i > 0 ? ",{\"index\":" : "{\"index\":");
		putu(&o, r->index);
		puts_(&o, ",\"code\":");
		if (ev != NULL)
			put_string(&o, ev->name);
		else
			putu(&o, (uint32_t)r->code);
		puts_(&o, ",\"message\":");
		put_string(&o, r->message);
		put(&o, "}", 1);
	}
	puts_(&o, "]}\n");
	return o.len;
}
