#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/keyload.py: send events that make N distinct rollup keys.

kanal-loadgen draws its events from a fixed pool of pre-encoded batches
(--pool x --batch events at most) with skewed service and channel weights,
so it cannot make a million distinct keys. This sends exactly one event per
key: every (service, kelurahan, channel + assisted, outcome) combination,
all in one UTC hour, in a fixed pseudo-random order, until --keys keys are
made (with --citizen-refs, each event also carries a citizen_ref of its
own: a new resident per event). The service codes are kanal-loadgen's (read from
tools/loadgen_lib.c), the region codes the 151 kelurahan of Kota Bandung's
shape (32.73.XX.1YYY), so the codes are as long as in the other scenarios.

The protobuf is written by hand (kanal.v1.EventBatch, proto/kanal/v1/
events.proto): no python3-protobuf needed. Loopback only. Bounded: every
request has a timeout, a 503 is retried at most 20 times, the whole run
stops at --deadline.

Prints one JSON object: keys, events sent and acknowledged, batches, time.
Exit 0 when every batch was answered 200 with every event accepted, 1 not,
2 usage.
"""
import argparse
import http.client
import ipaddress
import json
import math
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

# Kelurahan per kecamatan (151 in all), as kanal-loadgen has them.
KELURAHAN = [4, 6, 4, 6, 6, 5, 5, 7, 4, 5, 4, 5, 4, 6, 6,
             4, 6, 3, 4, 4, 5, 6, 4, 6, 6, 4, 6, 6, 6, 4]
# (channel, assisted): assisted only on web, app, kiosk, chat, as loadgen.
CHANNELS = [(c, 0) for c in range(1, 10)] + [(c, 1) for c in range(1, 5)]
OUTCOMES = [1, 2, 3, 0]


def service_codes(root):
    """kanal-loadgen's 200 service codes, from its source; made-up ones
    of the same shape if the table cannot be read."""
    codes = []
    try:
        with open(os.path.join(root, "tools", "loadgen_lib.c")) as f:
            src = f.read()
        table = src[src.index("agencies[] = {"):]
        table = table[:table.index("\n};")]
        for m in re.finditer(r'\{\s*"([a-z0-9.-]+)",\s*[0-9.]+,\s*[0-9.]+,'
                             r'\s*\{([^}]*)\}', table):
            for s in re.findall(r'"([a-z0-9.-]+)"', m.group(2)):
                codes.append(m.group(1) + s)
    except (OSError, ValueError):
        codes = []
    if len(codes) < 50:
        codes = [f"agency{a:02d}.service-{s:02d}" for a in range(20)
                 for s in range(10)]
    return codes


def regions():
    return [f"32.73.{k + 1:02d}.{1000 + l}" for k, n in enumerate(KELURAHAN)
            for l in range(1, n + 1)]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, value):
    return varint(num << 3) + varint(value) if value else b""


def parse_ack(buf):
    """accepted, rejected, duplicate of a kanal.v1.BatchAck."""
    out = {1: 0, 2: 0, 3: 0}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
            out[num] = v
        elif wt == 2:
            n, i = read_varint(buf, i)
            i += n
        else:
            raise ValueError(f"unexpected wire type {wt}")
    return out[1], out[2], out[3]


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default=os.environ.get("KANAL_TOKEN", ""))
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=300,
                    help="seconds the whole run may take")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap.add_argument("--run-id", default=str(os.getpid()))
    ap.add_argument("--citizen-refs", action="store_true",
                    help="give every event a citizen_ref of its own (a new "
                    "resident per event: the most sketch memory a key can "
                    "cost, for kanald with a reach key)")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    try:
        host_ip = ipaddress.ip_address(socket.gethostbyname(u.hostname))
    except (OSError, ValueError, TypeError):
        host_ip = None
    if u.scheme != "http" or host_ip is None or not host_ip.is_loopback:
        print("keyload.py: only http:// loopback URLs", file=sys.stderr)
        return 2
    if not a.token:
        print("keyload.py: no token (--token or KANAL_TOKEN)", file=sys.stderr)
        return 2

    svcs, regs = service_codes(a.root), regions()
    dims = (len(svcs), len(regs), len(CHANNELS), len(OUTCOMES))
    space = math.prod(dims)
    if not 1 <= a.keys <= space or not 1 <= a.batch <= 10000 or \
            not 1 <= a.connections <= 64:
        print(f"keyload.py: --keys 1..{space}, --batch 1..10000, "
              "--connections 1..64", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    # One UTC hour, the one before the current: inside kanald's 7-day
    # window whatever the clock, and a single bucket.
    hour = (int(time.time()) // 3600 - 1) * 3600
    ts = field_varint(4, (hour + 1800) * 1000)
    svc_p = [field_bytes(2, s.encode()) for s in svcs]
    reg_p = [field_bytes(5, r.encode()) for r in regs]
    ch_p = [field_varint(3, c) + field_varint(8, asst) for c, asst in CHANNELS]
    out_p = [field_varint(6, o) for o in OUTCOMES]
    dur_p = [field_varint(7, d) for d in (0, 61_000, 240_000, 1_200_000)]
    # A stride coprime with the key space walks every key once, mixed.
    stride = 1_000_003
    while math.gcd(stride, space) != 1:
        stride += 2
    batches = []
    for b0 in range(0, a.keys, a.batch):
        evs = []
        for i in range(b0, min(b0 + a.batch, a.keys)):
            k = i * stride % space
            k, o = divmod(k, dims[3])
            k, c = divmod(k, dims[2])
            s, r = divmod(k, dims[1])
            ev = b"".join((svc_p[s], ch_p[c], ts, reg_p[r], out_p[o],
                           dur_p[i & 3]))
            if a.citizen_refs:
                ev += field_bytes(9, f"kl-{i:010d}".encode())
            evs.append(b"\x12" + varint(len(ev)) + ev)
        bid = f"kl-{a.run_id}-{len(batches):08d}".encode()
        batches.append((field_bytes(1, bid) + b"".join(evs), len(evs)))
    t_encoded = time.monotonic()

    lock = threading.Lock()
    tot = {"sent": 0, "accepted": 0, "rejected": 0, "duplicate": 0,
           "batches_200": 0, "retries_503": 0, "problems": []}
    nxt = [0]
    stop_at = t0 + a.deadline

    def worker():
        conn = None
        while True:
            with lock:
                if nxt[0] >= len(batches):
                    break
                body, n = batches[nxt[0]]
                nxt[0] += 1
            for attempt in range(21):
                if time.monotonic() > stop_at:
                    with lock:
                        tot["problems"].append("deadline passed")
                    return
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            u.hostname, u.port or 80, timeout=30)
                    conn.request("POST", "/v1/events", body, {
                        "Content-Type": "application/x-protobuf",
                        "Authorization": "Bearer " + a.token})
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                    conn = None
                    with lock:
                        tot["problems"].append(f"transport: {e}")
                    time.sleep(0.2)
                    continue
                if resp.status == 503 and attempt < 20:
                    with lock:
                        tot["retries_503"] += 1
                    time.sleep(min(5, int(resp.getheader("Retry-After")
                                          or 1)))
                    continue
                with lock:
                    tot["sent"] += n
                    if resp.status != 200:
                        tot["problems"].append(
                            f"HTTP {resp.status}: {data[:200]!r}")
                    else:
                        acc, rej, dup = parse_ack(data)
                        tot["batches_200"] += 1
                        tot["accepted"] += acc
                        tot["rejected"] += rej
                        tot["duplicate"] += dup
                break
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_end = time.monotonic()
    ok = (tot["batches_200"] == len(batches) and tot["accepted"] == a.keys
          and not tot["rejected"] and not tot["duplicate"])
    print(json.dumps({
        "keys": a.keys, "key_space": space, "dims": dims,
        "bucket_unix_s": hour, "batches": len(batches),
        "batch": a.batch, "connections": a.connections,
        "events_sent": tot["sent"], "events_accepted": tot["accepted"],
        "events_rejected": tot["rejected"], "duplicates": tot["duplicate"],
        "batches_200": tot["batches_200"], "retries_503": tot["retries_503"],
        "encode_s": round(t_encoded - t0, 3),
        "send_s": round(t_end - t_encoded, 3),
        "events_per_s": round(a.keys / max(t_end - t_encoded, 1e-9)),
        "problems": tot["problems"][:5], "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
