/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: see validate.h.
 */
#include "validate.h"

#include <stdio.h>
#include <string.h>

#include "sources.h"

#define SERVICE_MAX_LEN 64
#define CITIZEN_REF_MAX 32
#define EVENT_ID_LEN 16

static const char *const channel_names[] = {
	NULL, "web", "mobile_app", "kiosk", "chat", "partner", "counter",
	"phone", "outreach", "paper",
};

static const char *const outcome_names[] = {
	"unknown", "completed", "abandoned", "failed",
};

static const char *const reason_names[] = {
	[KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED] = "unspecified",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_CODE_INVALID] =
	    "service_code_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_NOT_ALLOWED] =
	    "service_not_allowed",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_CHANNEL_INVALID] =
	    "channel_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_REGION_CODE_INVALID] =
	    "region_code_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_TOO_OLD] = "too_old",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_IN_FUTURE] = "in_future",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_OUTCOME_INVALID] =
	    "outcome_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_EVENT_ID_INVALID] =
	    "event_id_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_INVALID] =
	    "citizen_ref_invalid",
	[KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_NIK] =
	    "citizen_ref_nik",
};

const char *
validate_channel_name(int channel)
{
	if (channel < 1 || channel > VALIDATE_CHANNEL_MAX)
		return NULL;
	return channel_names[channel];
}

const char *
validate_outcome_name(int outcome)
{
	if (outcome < 0 || outcome > VALIDATE_OUTCOME_MAX)
		return NULL;
	return outcome_names[outcome];
}

const char *
validate_reason_name(Kanal__V1__RejectReason r)
{
	if ((unsigned)r >= sizeof(reason_names) / sizeof(reason_names[0]))
		return "unknown";
	return reason_names[r];
}

static int
is_lower_digit(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
validate_service_code(const char *s, size_t len)
{
	if (len == 0 || len > SERVICE_MAX_LEN || !is_lower_digit(s[0]))
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = s[i];
		if (!is_lower_digit(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

static int
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* 32 | 32.73 | 32.73.01 | 32.73.01.1001 (province, city, district, village). */
int
validate_region_code(const char *s, size_t len)
{
	switch (len) {
	case 2:
		return digits(s, 2);
	case 5:
		return digits(s, 2) && s[2] == '.' && digits(s + 3, 2);
	case 8:
		return validate_region_code(s, 5) && s[5] == '.' &&
		    digits(s + 6, 2);
	case 13:
		return validate_region_code(s, 8) && s[8] == '.' &&
		    digits(s + 9, 4);
	default:
		return 0;
	}
}

int
validate_looks_like_nik(const uint8_t *s, size_t len)
{
	return len == 16 && digits((const char *)s, len);
}

int
validate_batch_id(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

Kanal__V1__RejectReason
validate_event(const Kanal__V1__ServiceEvent *ev, const struct source *src,
    int64_t now_ms, const struct validate_limits *lim, char *msg,
    size_t msglen)
{
	const char *svc = ev->service_code != NULL ? ev->service_code : "";
	const char *region = ev->region_code != NULL ? ev->region_code : "";
	size_t svclen = strlen(svc), regionlen = strlen(region);

	if (!validate_service_code(svc, svclen)) {
		snprintf(msg, msglen, "service_code \"%.64s\" is not "
		    "[a-z0-9][a-z0-9._-]{0,63}", svc);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_CODE_INVALID;
	}
	if (src != NULL && !source_allows(src, svc, svclen)) {
		snprintf(msg, msglen, "source %s may not report service %s; "
		    "ask the operator to extend its sources line",
		    source_name(src), svc);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_SERVICE_NOT_ALLOWED;
	}
	if (validate_channel_name((int)ev->channel) == NULL) {
		snprintf(msg, msglen, "channel %d is not a known channel "
		    "(1..%d; 0 means unspecified)", (int)ev->channel,
		    VALIDATE_CHANNEL_MAX);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_CHANNEL_INVALID;
	}
	if (!validate_region_code(region, regionlen)) {
		snprintf(msg, msglen, "region_code \"%.32s\" is not a Kemendagri "
		    "code like 32.73 or 32.73.01 or 32.73.01.1001", region);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_REGION_CODE_INVALID;
	}
	if (ev->occurred_at_ms < now_ms - lim->max_age_ms) {
		snprintf(msg, msglen, "occurred_at_ms %lld is older than the "
		    "accepted window (%lld s back)", (long long)ev->occurred_at_ms,
		    (long long)(lim->max_age_ms / 1000));
		return KANAL__V1__REJECT_REASON__REJECT_REASON_TOO_OLD;
	}
	if (ev->occurred_at_ms > now_ms + lim->max_ahead_ms) {
		snprintf(msg, msglen, "occurred_at_ms %lld is in the future "
		    "(more than %lld s ahead); check the sender's clock",
		    (long long)ev->occurred_at_ms,
		    (long long)(lim->max_ahead_ms / 1000));
		return KANAL__V1__REJECT_REASON__REJECT_REASON_IN_FUTURE;
	}
	if (validate_outcome_name((int)ev->outcome) == NULL) {
		snprintf(msg, msglen, "outcome %d is not a known outcome (0..%d)",
		    (int)ev->outcome, VALIDATE_OUTCOME_MAX);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_OUTCOME_INVALID;
	}
	if (ev->event_id.len != 0 && ev->event_id.len != EVENT_ID_LEN) {
		snprintf(msg, msglen, "event_id has %zu bytes; send 16 or none",
		    ev->event_id.len);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_EVENT_ID_INVALID;
	}
	if (ev->citizen_ref.len > CITIZEN_REF_MAX) {
		snprintf(msg, msglen, "citizen_ref has %zu bytes; at most %d",
		    ev->citizen_ref.len, CITIZEN_REF_MAX);
		return KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_INVALID;
	}
	if (validate_looks_like_nik(ev->citizen_ref.data, ev->citizen_ref.len)) {
		snprintf(msg, msglen, "citizen_ref looks like a raw NIK (16 "
		    "digits); send a pseudonym, never personal data");
		return KANAL__V1__REJECT_REASON__REJECT_REASON_CITIZEN_REF_NIK;
	}
	return KANAL__V1__REJECT_REASON__REJECT_REASON_UNSPECIFIED;
}
