#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# curl-json.sh: send one batch of service events to kanald as JSON, then
# send it again the way a client retries, and print both answers.
#
#   KANAL_TOKEN=$(cat var/dev.token) docs/examples/curl-json.sh
#   KANAL_URL=http://127.0.0.1:8080 KANAL_TOKEN=... docs/examples/curl-json.sh
#
# KANAL_TOKEN: a token from kanald's sources file (`scripts/dev run` prints
# one for the source "dev"; `kanalctl token new` makes others). It must
# allow the services below (dukcapil.*).
# KANAL_URL: where kanald listens; default http://127.0.0.1:8080.
#
# The body is a kanal.v1.EventBatch (proto/kanal/v1/events.proto) in the
# proto3 JSON mapping; the answer is a kanal.v1.BatchAck in JSON, one line:
#
#   {"batchId":"example-...","accepted":2,"rejected":1,"duplicate":false,
#    "rejections":[{"index":2,"code":"REJECT_REASON_CHANNEL_INVALID",
#    "message":"channel \"CHANNEL_FAX\" is not a known channel name ..."}]}
#
# A body kanald cannot read at all (not JSON, an unknown field, a string
# where a number belongs) is answered 400 with one text line naming the
# field, e.g. "body_undecodable: events[0].durationMs: expected ...".
set -eu

: "${KANAL_TOKEN:?set KANAL_TOKEN to a token from the sources file (scripts/dev run prints one)}"
url=${KANAL_URL:-http://127.0.0.1:8080}

# batchId: chosen by the client, unique per source; a retry reuses it.
batch="example-$(date +%s%N)"
# occurredAtMs: when the transaction happened, Unix time in milliseconds
# (UTC). int64 goes as a string or a number; kanald takes either.
now=$(date +%s%3N)
# eventId (optional, for tracing): 16 bytes in base64.
event_id=$(head -c 16 /dev/urandom | base64)

body=$(cat <<EOF
{
  "batchId": "$batch",
  "events": [
    {
      "eventId": "$event_id",
      "serviceCode": "dukcapil.akta-lahir",
      "channel": "CHANNEL_WEB",
      "regionCode": "32.73.01",
      "occurredAtMs": "$now",
      "outcome": "OUTCOME_COMPLETED",
      "durationMs": 240000,
      "assisted": false
    },
    {
      "service_code": "dukcapil.ktp-el",
      "channel": 6,
      "region_code": "32.73.02",
      "occurred_at_ms": $now,
      "outcome": "OUTCOME_ABANDONED",
      "assisted": true
    },
    {
      "serviceCode": "dukcapil.kia",
      "channel": "CHANNEL_FAX",
      "regionCode": "32.73.03",
      "occurredAtMs": "$now"
    }
  ]
}
EOF
)
# The first event uses the JSON names, the second the .proto names and an
# enum number (6 = CHANNEL_COUNTER); the third has a channel kanald does
# not know, so it alone is rejected: the answer lists it with its index (2)
# and reason code, and the other two are counted.

send() {
	printf '%s' "$body" |
	    curl -sS --fail-with-body --data-binary @- \
	        -H "Authorization: Bearer $KANAL_TOKEN" \
	        -H 'Content-Type: application/json' "$url/v1/events"
}

send
# The same batch again (what a client does when it did not get the answer):
# "duplicate":true with the first answer's counts, and nothing is counted
# twice.
send
