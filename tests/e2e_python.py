#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
e2e_python: a client on another protobuf implementation talks to kanald.

The wire contract (proto/kanal/v1/events.proto) is compiled at test time
with `protoc --python_out` into a temporary directory (generated code is
never committed) and used with Debian's python3-protobuf. The test

  1. creates a scratch database in the cluster given by libpq's PG*
     environment, migrates it with `kanalctl migrate` and makes a token for
     source "py" with `kanalctl token new`;
  2. starts a real kanald on a free 127.0.0.1 port in 20000-29999 and waits
     (GET /healthz, with a deadline) until it serves;
  3. sends valid batches (every channel and outcome, assisted or not, with
     and without durations, three different hours, several region levels),
     a batch mixing valid and invalid events whose BatchAck it checks event
     by event, and requests that must fail as a whole (401, 415, 400, 403);
  4. keeps its own tally of what kanald accepted, and waits (deadline,
     polling psql) until kanal.usage_hourly equals it exactly;
  5. stops kanald with SIGTERM (must exit 0), checks the table again, and
     drops the database.

Standard library and google.protobuf only; PostgreSQL is queried with psql.
Environment: PGHOST, PGPORT, PGUSER (a superuser) from the test harness
(`scripts/dev test`); KANALD, KANALCTL, KANAL_SCHEMA_DIR, KANAL_SOURCE_DIR
from CMake. KANAL_TEST_SEED=N replays a run's random events.
Exit status: 0 when every check passed, 1 otherwise.
"""

import os
import sys

# CMake may pick an interpreter (a pyenv or venv python) that cannot see
# Debian's python3-protobuf; the system interpreter can.
SYSTEM_PYTHON = "/usr/bin/python3"
try:
    from google import protobuf as _probe  # noqa: F401
except ImportError:
    if (os.path.exists(SYSTEM_PYTHON)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)
            and not os.environ.get("KANAL_E2E_PY_REEXEC")):
        os.environ["KANAL_E2E_PY_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("FAIL: python module google.protobuf is missing: install Debian's "
          "python3-protobuf (scripts/dev installs the project's packages)\n"
          "0 passed, 1 failed")
    sys.exit(1)

import ctypes
import importlib
import itertools
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import google.protobuf
from google.protobuf.message import DecodeError

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
PORT_MIN, PORT_MAX = 20000, 29999   # below Linux's ephemeral range
START_TRIES = 8
HEALTH_DEADLINE_S = 10.0
HEALTH_POLL_S = 0.05
HEALTH_HTTP_TIMEOUT_S = 0.5
DB_DEADLINE_S = 60.0
DB_POLL_S = 0.1
STOP_DEADLINE_S = 20.0               # kanald allows its last flush 10 s
HTTP_TIMEOUT_S = 10.0
ERROR_BODY_RE = re.compile(r"^[a-z][a-z0-9_]*: \S.*\n?$", re.S)


class Fatal(Exception):
    """A failure after which the test cannot go on."""


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, (": " + detail) if detail else ""),
                  flush=True)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, what,
                          "got %r, want %r" % (got, want))


def log(msg):
    print("e2e_python: " + msg, flush=True)


def need_env(name):
    v = os.environ.get(name, "")
    if not v:
        raise Fatal("%s is not set; run this test through ctest "
                    "(scripts/dev test), which sets it" % name)
    return v


# --------------------------------------------------------------- protobuf


def generate_proto(source_dir, out_dir):
    """protoc --python_out into out_dir; returns the events_pb2 module."""
    protoc = shutil.which("protoc")
    if protoc is None:
        raise Fatal("protoc is missing; install Debian's protobuf-compiler")
    proto_root = os.path.join(source_dir, "proto")
    proto = os.path.join(proto_root, "kanal", "v1", "events.proto")
    if not os.path.exists(proto):
        raise Fatal("no %s; is KANAL_SOURCE_DIR right?" % proto)
    os.makedirs(out_dir, exist_ok=True)
    r = subprocess.run([protoc, "-I", proto_root, "--python_out=" + out_dir,
                        proto], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fatal("protoc failed (exit %d): %s" % (r.returncode,
                                                     r.stderr.strip()))
    sys.path.insert(0, out_dir)
    return importlib.import_module("kanal.v1.events_pb2")


# ------------------------------------------------------------- PostgreSQL


def psql(sql, db="postgres", check=True):
    r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t",
                        "-d", db, "-c", sql], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Fatal("psql -d %s -c %r failed (exit %d): %s"
                    % (db, sql, r.returncode, r.stderr.strip()))
    return r


def run_tool(argv, what):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fatal("%s failed (exit %d): %s%s" % (what, r.returncode,
                                                  r.stdout, r.stderr))
    return r.stdout


def usage_rows(db):
    """kanal.usage_hourly as {key: (events, duration_ms_sum, duration_events)}."""
    out = psql("SELECT extract(epoch FROM bucket)::bigint, service_code, "
               "channel, region_code, outcome, assisted, events, "
               "duration_ms_sum, duration_events FROM kanal.usage_hourly",
               db=db).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) != 9:
            raise Fatal("unexpected psql output line %r" % line)
        key = (int(f[0]) * 1000, f[1], f[2], f[3], f[4], f[5] == "t")
        rows[key] = (int(f[6]), int(f[7]), int(f[8]))
    return rows


def describe_diff(got, want, limit=25):
    lines = []
    for k in sorted(set(got) | set(want)):
        g, w = got.get(k), want.get(k)
        if g != w:
            hour = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(k[0] // 1000))
            lines.append("  %s %s %s %s %s assisted=%s: database %s, sent %s"
                         % ((hour,) + k[1:] + (
                             "(no row)" if g is None else
                             "events=%d duration_ms_sum=%d duration_events=%d" % g,
                             "(nothing)" if w is None else
                             "events=%d duration_ms_sum=%d duration_events=%d" % w)))
    more = len(lines) - limit
    return "\n".join(lines[:limit]) + ("\n  ... %d more" % more if more > 0 else "")


# ----------------------------------------------------------------- kanald


def die_with_parent():
    """In the child before exec: SIGKILL kanald if this test dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def http(method, url, body=None, headers=None, timeout=HTTP_TIMEOUT_S):
    """(status, headers, body) for any status, no exception for 4xx/5xx."""
    req = urllib.request.Request(url, data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


class Kanald:
    def __init__(self, kanald, tmp, db, sources_file):
        self.kanald = kanald
        self.tmp = tmp
        self.db = db
        self.sources_file = sources_file
        self.proc = None
        self.port = None
        self.log_path = None
        self.log_file = None

    def log_text(self):
        if self.log_path is None:
            return ""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self, rng):
        for attempt in range(START_TRIES):
            port = rng.randint(PORT_MIN, PORT_MAX)
            if not port_looks_free(port):
                continue
            rc = self._try_start(port, attempt)
            if rc is None:
                return
            if not re.search(r"address already in use", self.log_text(), re.I):
                raise Fatal("kanald exited with status %d at start-up "
                            "(its log is below)" % rc)
            log("port %d was taken; trying another" % port)
        raise Fatal("kanald could not get a free port in %d-%d in %d tries"
                    % (PORT_MIN, PORT_MAX, START_TRIES))

    def _try_start(self, port, attempt):
        """None once it serves, or its exit status if it exited."""
        self.port = port
        self.log_path = os.path.join(self.tmp, "kanald.%d.log" % attempt)
        if self.log_file is not None:
            self.log_file.close()
        self.log_file = open(self.log_path, "wb")
        wal_dir = os.path.join(self.tmp, "wal")
        os.makedirs(wal_dir, exist_ok=True)
        argv = [self.kanald,
                "--listen", "127.0.0.1:%d" % port,
                "--pg", "dbname=%s user=kanal_ingest" % self.db,
                "--sources", self.sources_file,
                "--collector-id", "py-test",
                "--flush-interval", "100ms",
                # Never the default /var/lib/kanal/wal from a test.
                "--wal-dir", wal_dir]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        url = self.url("/healthz")
        deadline = time.monotonic() + HEALTH_DEADLINE_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                return rc
            try:
                # A short timeout: whoever else may hold the port need
                # not answer, and kanald's exit must be seen in time.
                status, _, _ = http("GET", url, timeout=HEALTH_HTTP_TIMEOUT_S)
                if status == 200 and self.proc.poll() is None:
                    return None
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(HEALTH_POLL_S)
        raise Fatal("kanald did not answer GET /healthz within %.0f s"
                    % HEALTH_DEADLINE_S)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, deadline_s):
        """SIGTERM; the exit status, or None if it did not exit in time."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            return None
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def port_looks_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ----------------------------------------------------------------- events


class Sender:
    """Builds and posts batches, and tallies what kanald accepted."""

    def __init__(self, pb, kd, token, checks):
        self.pb = pb
        self.kd = kd
        self.token = token
        self.c = checks
        self.tally = {}
        self.nbatch = 0
        self.accepted_total = 0

    def channel_name(self, v):
        return self.pb.Channel.Name(v)[len("CHANNEL_"):].lower()

    def outcome_name(self, v):
        name = self.pb.Outcome.Name(v)[len("OUTCOME_"):].lower()
        return "unknown" if name == "unspecified" else name

    def add_to_tally(self, ev):
        bucket = ev.occurred_at_ms - ev.occurred_at_ms % HOUR_MS
        key = (bucket, ev.service_code, self.channel_name(ev.channel),
               ev.region_code, self.outcome_name(ev.outcome), ev.assisted)
        n, dsum, dn = self.tally.get(key, (0, 0, 0))
        if ev.duration_ms > 0:
            dsum += ev.duration_ms
            dn += 1
        self.tally[key] = (n + 1, dsum, dn)

    def batch_id(self):
        self.nbatch += 1
        return "py-%d-%d-%d" % (os.getpid(), int(time.time()), self.nbatch)

    def post(self, body, token="default",
             content_type="application/x-protobuf"):
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        try:
            return http("POST", self.kd.url("/v1/events"), body, headers)
        except (urllib.error.URLError, OSError) as e:
            rc = self.kd.proc.poll() if self.kd.proc is not None else None
            if rc is not None:
                raise Fatal("kanald died (exit status %d) while answering "
                            "POST /v1/events (its log is below)" % rc)
            raise Fatal("POST /v1/events failed: %s" % e)

    def send(self, events, what, expect_rejected=()):
        """
        Posts one batch that must get 200. expect_rejected: (index, code
        name) in order. Every other event is added to the tally.
        """
        batch = self.pb.EventBatch(batch_id=self.batch_id())
        batch.events.extend(events)
        status, headers, body = self.post(batch.SerializeToString())
        if not self.c.equal(status, 200, what + ": HTTP status"):
            print("  body: %r" % body[:300])
            return None
        self.c.check(headers.get("Content-Type", "").startswith(
            "application/x-protobuf"), what + ": Content-Type",
            "got %r" % headers.get("Content-Type"))
        ack = self.pb.BatchAck()
        try:
            ack.ParseFromString(body)
        except DecodeError as e:
            self.c.check(False, what + ": BatchAck decodes", str(e))
            return None
        rejected_idx = {i for i, _ in expect_rejected}
        want_acc = len(events) - len(rejected_idx)
        self.c.equal(ack.accepted, want_acc, what + ": accepted")
        self.c.equal(ack.rejected, len(expect_rejected), what + ": rejected")
        self.c.equal(ack.duplicate, False, what + ": duplicate")
        self.c.equal(ack.batch_id, batch.batch_id, what + ": batch_id echoed")
        got = [(r.index, self.pb.RejectReason.Name(r.code)
                if r.code in self.pb.RejectReason.values() else r.code)
               for r in ack.rejections]
        want = list(expect_rejected)
        self.c.check(got == want, what + ": rejections (index, code)",
                     "differences (got / want):\n" + "\n".join(
                         "  %r / %r" % (g, w) for g, w in
                         itertools.zip_longest(got, want) if g != w))
        for r in ack.rejections:
            self.c.check(len(r.message.strip()) > 0,
                         what + ": rejection %d has a message" % r.index)
        if ack.accepted == want_acc:
            for i, ev in enumerate(events):
                if i not in rejected_idx:
                    self.add_to_tally(ev)
            self.accepted_total += want_acc
        return ack

    def expect_error(self, what, status_want, reason_want, body, **kw):
        status, headers, resp = self.post(body, **kw)
        self.c.equal(status, status_want, what + ": HTTP status")
        ct = headers.get("Content-Type", "")
        self.c.check(ct.startswith("text/plain"), what + ": text/plain answer",
                     "got Content-Type %r" % ct)
        text = resp.decode("utf-8", "replace")
        self.c.check(ERROR_BODY_RE.match(text) is not None and
                     text.split(":", 1)[0] == reason_want,
                     what + ": body is \"%s: message\"" % reason_want,
                     "got %r" % text[:200])
        return status, headers, text


SERVICES = ["dukcapil.akta-lahir", "dukcapil.ktp-el", "dukcapil.kk",
            "dukcapil.pindah-datang", "bapenda.pbb"]
REGIONS = ["32", "32.73", "32.73.01", "32.73.22", "32.73.01.1001",
           "32.73.22.1004"]


def random_event(pb, rng, at_ms):
    if rng.random() < 0.5:
        # A few hot keys, so that rows add up many events...
        ev = pb.ServiceEvent(
            service_code=rng.choice(SERVICES[:2]),
            channel=rng.choice([pb.CHANNEL_WEB, pb.CHANNEL_COUNTER]),
            occurred_at_ms=at_ms,
            region_code="32.73",
            outcome=pb.OUTCOME_COMPLETED,
            assisted=False,
        )
    else:
        # ... and a long tail of every combination.
        ev = pb.ServiceEvent(
            service_code=rng.choice(SERVICES),
            channel=rng.randint(1, 9),
            occurred_at_ms=at_ms,
            region_code=rng.choice(REGIONS),
            outcome=rng.randint(0, 3),
            assisted=rng.random() < 0.3,
        )
    r = rng.random()
    if r < 0.3:
        ev.duration_ms = 0                      # not measured
    elif r < 0.95:
        ev.duration_ms = rng.randint(1, 3 * HOUR_MS)
    else:
        ev.duration_ms = 4294967295             # uint32 max: sums pass 2^32
    if rng.random() < 0.5:
        ev.event_id = rng.getrandbits(128).to_bytes(16, "big")
    if rng.random() < 0.3:
        ev.citizen_ref = rng.getrandbits(256).to_bytes(32, "big")
    return ev


def run(checks, rng, tmp):
    kanald = need_env("KANALD")
    kanalctl = need_env("KANALCTL")
    need_env("KANAL_SCHEMA_DIR")
    source_dir = os.environ.get("KANAL_SOURCE_DIR") or \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    pb = generate_proto(source_dir, os.path.join(tmp, "gen"))
    log("protobuf %s (%s implementation), messages from protoc --python_out"
        % (google.protobuf.__version__, api_implementation()))

    db = "kanal_py_%d_%04x" % (os.getpid(), rng.getrandbits(16))
    state = {"db": None, "kd": None}
    try:
        psql('CREATE DATABASE "%s"' % db)
        state["db"] = db
        run_tool([kanalctl, "migrate", "--pg", "dbname=" + db],
                 "kanalctl migrate")
        out = run_tool([kanalctl, "token", "new", "--source", "py",
                        "--allow", "dukcapil.*,bapenda.pbb"],
                       "kanalctl token new")
        m_tok = re.search(r"^token: ([0-9a-f]+)$", out, re.M)
        m_src = re.search(r"^sources: (.+)$", out, re.M)
        if not (m_tok and m_src):
            raise Fatal("unexpected `kanalctl token new` output: %r" % out)
        token = m_tok.group(1)
        sources_file = os.path.join(tmp, "sources.conf")
        with open(sources_file, "w") as f:
            f.write("# written by tests/e2e_python.py\n" + m_src.group(1) + "\n")

        kd = Kanald(kanald, tmp, db, sources_file)
        state["kd"] = kd
        kd.start(rng)
        log("kanald serves on 127.0.0.1:%d, database %s" % (kd.port, db))
        s = Sender(pb, kd, token, checks)
        exercise(pb, s, checks, rng)

        log("sent: %d events accepted into %d keys; waiting for "
            "kanal.usage_hourly" % (s.accepted_total, len(s.tally)))
        wait_for_table(checks, db, s.tally, "while kanald runs")

        rc = kd.stop(STOP_DEADLINE_S)
        checks.check(rc == 0, "kanald exits 0 within %.0f s of SIGTERM"
                     % STOP_DEADLINE_S,
                     "exit status %s\n%s" % (rc, kd.log_text()[-3000:]))
        # The shutdown flush must not add anything more.
        got = usage_rows(db)
        checks.check(got == s.tally, "kanal.usage_hourly unchanged after "
                     "kanald stopped", "\n" + describe_diff(got, s.tally))
        cp = psql("SELECT count(*) FROM kanal.collector_checkpoint "
                  "WHERE collector_id = 'py-test'", db=db).stdout.strip()
        checks.equal(cp, "1", "collector_checkpoint row for py-test")
    except BaseException:
        if state["kd"] is not None:
            text = state["kd"].log_text()
            if text:
                print("---- kanald log (last 4000 characters) ----\n" +
                      text[-4000:] + "\n---- end of kanald log ----")
        raise
    finally:
        if state["kd"] is not None:
            state["kd"].kill()
        if state["db"] is not None:
            r = psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db,
                     check=False)
            if r.returncode != 0:
                print("warning: could not drop database %s: %s"
                      % (db, r.stderr.strip()))


def api_implementation():
    try:
        from google.protobuf.internal import api_implementation as ai
        return ai.Type()
    except Exception:
        return "unknown"


def exercise(pb, s, checks, rng):
    now = int(time.time() * 1000)
    this_hour = now - now % HOUR_MS
    last_hour = this_hour - HOUR_MS
    days_ago = this_hour - 3 * DAY_MS - 5 * HOUR_MS

    def at_this_hour():
        return this_hour + rng.randint(0, max(0, now - this_hour))

    def at(hour):
        return hour + rng.randint(0, HOUR_MS - 1)

    # 1. Valid batches: every channel, outcome, assisted or not, durations
    # or none, region levels, three hours.
    sizes = [1, 37, 250, 500, 1200, 64]
    for n, size in enumerate(sizes):
        events = []
        for _ in range(size):
            when = rng.choice([at_this_hour, lambda: at(last_hour),
                               lambda: at(days_ago)])()
            events.append(random_event(pb, rng, when))
        s.send(events, "valid batch %d (%d events)" % (n + 1, size))

    # Every channel x outcome x assisted at least once, at the edges of an
    # hour (its first and last millisecond belong to it).
    events = []
    for ch in range(1, 10):
        for oc in range(0, 4):
            for assisted in (False, True):
                ev = random_event(pb, rng, last_hour)
                ev.channel, ev.outcome, ev.assisted = ch, oc, assisted
                events.append(ev)
                ev = random_event(pb, rng, last_hour + HOUR_MS - 1)
                ev.channel, ev.outcome, ev.assisted = ch, oc, assisted
                events.append(ev)
    s.send(events, "every channel, outcome and assisted")

    # One key whose duration sum passes 2^32 within a batch and across
    # batches (duration_ms is a uint32; its sum must not wrap).
    def big(hour):
        ev = random_event(pb, rng, hour + 1234)
        ev.service_code, ev.channel, ev.region_code = \
            "dukcapil.kk", pb.CHANNEL_PAPER, "32.73.01"
        ev.outcome, ev.assisted, ev.duration_ms = \
            pb.OUTCOME_FAILED, True, 4294967295
        return ev
    s.send([big(last_hour) for _ in range(3)], "uint32-max durations (1)")
    s.send([big(last_hour) for _ in range(2)] + [big(this_hour)],
           "uint32-max durations (2)")

    # Empty batch: a 200 with nothing accepted.
    s.send([], "empty batch")

    # 2. A batch mixing valid and invalid events; the ack says which.
    def ok(**kw):
        ev = random_event(pb, rng, at(last_hour))
        for k, v in kw.items():
            setattr(ev, k, v)
        return ev

    mixed = [
        (ok(), None),
        (ok(service_code="Dukcapil.KTP"), "REJECT_REASON_SERVICE_CODE_INVALID"),
        (ok(service_code=""), "REJECT_REASON_SERVICE_CODE_INVALID"),
        (ok(service_code="dukcapil." + "x" * 56),
         "REJECT_REASON_SERVICE_CODE_INVALID"),            # 65 characters
        (ok(service_code="dukcapil." + "x" * 55), None),  # 64 characters
        (ok(service_code="bapenda.bphtb"), "REJECT_REASON_SERVICE_NOT_ALLOWED"),
        (ok(service_code="bapenda.pbb2"), "REJECT_REASON_SERVICE_NOT_ALLOWED"),
        (ok(service_code="dinkes.bpjs"), "REJECT_REASON_SERVICE_NOT_ALLOWED"),
        (ok(service_code="bapenda.pbb"), None),
        (ok(channel=0), "REJECT_REASON_CHANNEL_INVALID"),
        (ok(channel=10), "REJECT_REASON_CHANNEL_INVALID"),  # unknown number
        (ok(region_code="3273"), "REJECT_REASON_REGION_CODE_INVALID"),
        (ok(region_code="32.73.1"), "REJECT_REASON_REGION_CODE_INVALID"),
        (ok(region_code=""), "REJECT_REASON_REGION_CODE_INVALID"),
        (ok(citizen_ref=b"3273012345678901"), "REJECT_REASON_CITIZEN_REF_NIK"),
        (ok(citizen_ref=b"327301234567890"), None),        # 15 digits: fine
        (ok(citizen_ref=b"x" * 33), "REJECT_REASON_CITIZEN_REF_INVALID"),
        (ok(occurred_at_ms=now - 8 * DAY_MS), "REJECT_REASON_TOO_OLD"),
        (ok(occurred_at_ms=now + HOUR_MS), "REJECT_REASON_IN_FUTURE"),
        (ok(outcome=7), "REJECT_REASON_OUTCOME_INVALID"),
        (ok(event_id=b"short"), "REJECT_REASON_EVENT_ID_INVALID"),
        (ok(region_code="32.73.01.1001", channel=pb.CHANNEL_KIOSK), None),
    ]
    expect = [(i, why) for i, (_, why) in enumerate(mixed) if why is not None]
    s.send([ev for ev, _ in mixed], "mixed batch", expect_rejected=expect)

    # 3. Requests refused as a whole: nothing of them may be counted.
    good = pb.EventBatch(batch_id=s.batch_id())
    good.events.extend([ok(), ok()])
    good_body = good.SerializeToString()

    _, headers, _ = s.expect_error("no token", 401, "token_missing",
                                   good_body, token=None)
    checks.check(headers.get("WWW-Authenticate", "").startswith("Bearer"),
                 "no token: WWW-Authenticate: Bearer",
                 "got %r" % headers.get("WWW-Authenticate"))
    s.expect_error("unknown token", 401, "token_unknown", good_body,
                   token="%064x" % rng.getrandbits(256))
    s.expect_error("wrong content type", 415, "content_type_unsupported",
                   good_body, content_type="text/plain")
    s.expect_error("no content type", 415, "content_type_unsupported",
                   good_body, content_type=None)

    garbage = b"\xff" * 24   # a varint that never ends
    try:
        pb.EventBatch().ParseFromString(garbage)
        raise Fatal("the garbage body decodes in Python; pick another")
    except DecodeError:
        pass
    s.expect_error("garbage body", 400, "body_undecodable", garbage)

    no_id = pb.EventBatch()
    no_id.events.extend([ok()])
    s.expect_error("batch without batch_id", 400, "batch_id_invalid",
                   no_id.SerializeToString())

    forbidden = pb.EventBatch(batch_id=s.batch_id())
    forbidden.events.extend([ok(service_code="bapenda.bphtb"),
                             ok(service_code="dinkes.bpjs"),
                             ok(service_code="dukcapil")])
    s.expect_error("no service allowed", 403, "service_not_allowed",
                   forbidden.SerializeToString())

    # 4. A last valid batch after the refusals: kanald still counts.
    events = [random_event(pb, rng, at_this_hour()) for _ in range(100)]
    s.send(events, "valid batch after the refusals")


def wait_for_table(checks, db, tally, when):
    deadline = time.monotonic() + DB_DEADLINE_S
    got = {}
    while True:
        got = usage_rows(db)
        if got == tally:
            break
        over = [k for k in got if k not in tally or
                any(g > w for g, w in zip(got[k], tally[k]))]
        if over:
            break   # counts only grow: this can never become equal
        if time.monotonic() >= deadline:
            break
        time.sleep(DB_POLL_S)
    checks.check(got == tally, "kanal.usage_hourly equals what was accepted "
                 "(%d rows, %d events) %s" % (len(tally),
                                              sum(v[0] for v in tally.values()),
                                              when),
                 "%d rows in the database; differences:\n%s"
                 % (len(got), describe_diff(got, tally)))


def main():
    checks = Checks()

    def on_signal(sig, frame):
        raise SystemExit("e2e_python: stopped by signal %d" % sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    seed = int(os.environ.get("KANAL_TEST_SEED") or
               random.SystemRandom().getrandbits(32))
    rng = random.Random(seed)
    log("seed %d (KANAL_TEST_SEED=%d replays these events)" % (seed, seed))

    if not os.environ.get("PGHOST"):
        print("FAIL: PGHOST is not set: this test needs the PostgreSQL test "
              "cluster; run it through `scripts/dev test` (or set PGHOST, "
              "PGPORT and PGUSER=a superuser)")
        print("0 passed, 1 failed")
        return 1

    tmp = tempfile.mkdtemp(prefix="kanal-e2e-py-")
    fatal = None
    try:
        run(checks, rng, tmp)
    except Fatal as e:
        fatal = str(e)
    except Exception:
        fatal = "unexpected error:\n" + traceback.format_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fatal is not None:
        checks.check(False, "test stopped", fatal)
    print("%d passed, %d failed" % (checks.passed, checks.failed))
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
