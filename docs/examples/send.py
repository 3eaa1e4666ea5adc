#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
send.py: a complete kanal client in Python, to copy into a service backend.

Builds one kanal.v1.EventBatch, POSTs it to kanald, prints the BatchAck
(what was accepted, and each rejected event's index, code and message),
and retries the SAME batch (same batch_id, same bytes) when the connection
fails or kanald answers 503 or 429 (a rate limit), so nothing is ever
counted twice: kanald answers a batch_id it already has with
duplicate: true and adds nothing.
Every other answer (400, 401, 403, 413, 415) is final and not retried.

Needs Debian's python3-protobuf and the code protoc generates from the
wire contract (generated code is never committed):

    protoc -Iproto --python_out=gen proto/kanal/v1/events.proto
    PYTHONPATH=gen KANAL_TOKEN=... \\
        python3 docs/examples/send.py http://127.0.0.1:8080/v1/events

Usage: send.py [--batch-id ID] [--attempts N] [--with-bad-event] URL
Exit: 0 acknowledged (even if some events were rejected), 1 refused or
unreachable, 2 usage.
"""

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from kanal.v1 import events_pb2 as pb

BACKOFF_MAX_S = 30
HTTP_TIMEOUT_S = 10


def build_batch(batch_id, with_bad_event):
    """The example's events; a real backend sends one per transaction."""
    now_ms = int(time.time() * 1000)
    batch = pb.EventBatch(batch_id=batch_id)
    # A business licence (NIB) applied for online, 12 minutes.
    batch.events.add(
        event_id=uuid.uuid4().bytes,          # optional, 16 bytes
        service_code="dpmptsp.izin-usaha",
        channel=pb.CHANNEL_WEB,
        occurred_at_ms=now_ms - 60_000,
        region_code="32.73.05",               # kecamatan
        outcome=pb.OUTCOME_COMPLETED,
        duration_ms=12 * 60_000)
    # The same service at the one-stop counter, 40 minutes, with help.
    batch.events.add(
        service_code="dpmptsp.izin-usaha",
        channel=pb.CHANNEL_COUNTER,
        occurred_at_ms=now_ms - 120_000,
        region_code="32.73.05.1002",          # kelurahan
        outcome=pb.OUTCOME_COMPLETED,
        duration_ms=40 * 60_000,
        assisted=True)
    # A property tax bill paid through a bank partner (QRIS); the
    # citizen_ref is an opaque pseudonym made by the sender, never a NIK.
    batch.events.add(
        service_code="bapenda.pbb",
        channel=pb.CHANNEL_PARTNER,
        occurred_at_ms=now_ms - 180_000,
        region_code="32.73.05",
        outcome=pb.OUTCOME_COMPLETED,
        citizen_ref=b"p1:3c9e77a0b1")
    # A payment that failed in the bank's system.
    batch.events.add(
        service_code="bapenda.pbb",
        channel=pb.CHANNEL_PARTNER,
        occurred_at_ms=now_ms - 240_000,
        region_code="32.73.05",
        outcome=pb.OUTCOME_FAILED)
    if with_bad_event:
        # Rejected with REJECT_REASON_REGION_CODE_INVALID.
        batch.events.add(
            service_code="bapenda.pbb",
            channel=pb.CHANNEL_WEB,
            occurred_at_ms=now_ms,
            region_code="Bandung",
            outcome=pb.OUTCOME_COMPLETED)
    return batch


def post(url, token, body):
    """One POST: (status, headers, body), or None on a connection error."""
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": "Bearer " + token,
        "Content-Type": "application/x-protobuf",
    })
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:       # an answer, just not 200
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        print("no answer from %s (%s)" % (url, e), file=sys.stderr)
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--batch-id", help="default: a fresh UUID; keep it "
                    "when you resend the same events")
    ap.add_argument("--attempts", type=int, default=8)
    ap.add_argument("--with-bad-event", action="store_true",
                    help="add one invalid event to see a rejection")
    ap.add_argument("url")
    args = ap.parse_args()
    token = os.environ.get("KANAL_TOKEN", "")
    if not token:
        print("set KANAL_TOKEN (kanalctl token new)", file=sys.stderr)
        return 2

    # Chosen once, before the first try, and kept until acknowledged.
    batch_id = args.batch_id or "example-py-" + uuid.uuid4().hex
    body = build_batch(batch_id, args.with_bad_event).SerializeToString()
    backoff = 1
    for attempt in range(1, args.attempts + 1):
        answer = post(args.url, token, body)
        wait = backoff
        if answer is not None:
            status, headers, data = answer
            if status == 200:
                ack = pb.BatchAck.FromString(data)
                print("batch %s: accepted=%d rejected=%d%s" % (
                    ack.batch_id, ack.accepted, ack.rejected,
                    " duplicate (already counted; nothing added)"
                    if ack.duplicate else ""))
                for rj in ack.rejections:
                    # Programs act on the code; the message is for people.
                    print("  event %d: %s: %s" % (
                        rj.index, pb.RejectReason.Name(rj.code), rj.message))
                return 0
            text = data.decode("utf-8", "replace").strip()
            if status not in (503, 429):
                # The same bytes would get the same answer.
                print("refused: HTTP %d %s" % (status, text), file=sys.stderr)
                return 1
            # Nothing was kept: wait as told, then the same batch again.
            print("attempt %d: %d %s" % (attempt, status, text),
                  file=sys.stderr)
            try:
                wait = int(headers.get("Retry-After", backoff))
            except ValueError:                # an HTTP date: not from kanald
                wait = backoff
        if attempt == args.attempts:
            break
        time.sleep(min(wait, BACKOFF_MAX_S))
        backoff = min(backoff * 2, BACKOFF_MAX_S)
    print("giving up after %d attempts; send batch %s again later"
          % (args.attempts, batch_id), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
