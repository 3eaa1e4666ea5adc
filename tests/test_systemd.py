#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kanald under systemd, without systemd running it.

1. The unit as installed: `cmake --install` into a staging directory
   (DESTDIR, so nothing lands on this machine), then a copy of the staged
   unit whose Exec lines point at the staged kanald is checked with
   `systemd-analyze verify --man=no` (no complaint may name kanald) and
   `systemd-analyze security --offline=true` (overall exposure <= 2.0).
   Every directive group in [Service] must have a comment saying why.
2. The notify protocol of the real kanald, against a datagram socket of
   the test's own as NOTIFY_SOCKET: READY=1, STATUS= summaries, WATCHDOG=1
   at half of WATCHDOG_USEC (none when WATCHDOG_PID names another process),
   RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
3. With an LD_PRELOAD shim that makes fdatasync hang (tests/stallsync.c):
   the pings stop while the WAL writer is stuck with a batch waiting, the
   log says so once, and they resume (and the batch is answered 200) when
   the disk answers again. Skipped in the sanitizer build (the ASan runtime
   must be loaded first, so the shim can't be preloaded).

No database: kanald points at a port where nothing listens. Exit 77
(skipped) when systemd-analyze is not installed.

Environment: KANALD, KANALCTL, KANAL_BUILD_DIR, KANAL_SOURCE_DIR,
CMAKE_COMMAND, KANAL_TEST_TMP, KANAL_STALL_LIB (empty: skip part 3).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
MAX_EXPOSURE = 2.0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def env(name):
    v = os.environ.get(name)
    if not v:
        fail("%s is not set: run this through ctest" % name)
    return v


# ---------------------------------------------------------------- the unit

def stage_install(tmp):
    """Installs the build under tmp/stage; returns (kanald, unit) paths."""
    stage = os.path.join(tmp, "stage")
    r = subprocess.run([env("CMAKE_COMMAND"), "--install",
                        env("KANAL_BUILD_DIR")],
                       env=dict(os.environ, DESTDIR=stage),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        fail("cmake --install into %s failed:\n%s" % (stage, r.stdout))
    kanald = unit = None
    for root, _dirs, files in os.walk(stage):
        for name in files:
            path = os.path.join(root, name)
            if name == "kanald" and os.access(path, os.X_OK):
                kanald = path
            elif name == "kanald.service":
                unit = path
    if kanald is None or unit is None:
        fail("cmake --install staged no %s" %
             ("kanald binary" if kanald is None else "kanald.service"))
    return kanald, unit


def check_unit_text(text):
    """What the unit must say, and that each directive group has a why."""
    want = [
        (r"^Type=notify$", "Type=notify"),
        (r"^WatchdogSec=\d+", "WatchdogSec="),
        (r"^ExecReload=.*-HUP \$MAINPID$", "ExecReload= sending SIGHUP"),
        (r"^StateDirectory=kanal$", "StateDirectory=kanal"),
        (r"^User=kanal$", "a dedicated User="),
        (r"^NoNewPrivileges=yes$", "NoNewPrivileges=yes"),
    ]
    for rx, what in want:
        if not re.search(rx, text, re.M):
            fail("systemd/kanald.service lacks %s" % what)
    section = None
    prev = ""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("["):
            section = s
        elif section == "[Service]" and s and not s.startswith("#"):
            if prev == "" or prev.startswith("["):
                fail("systemd/kanald.service:%d: %s has no comment saying "
                     "what it is for or what it protects" % (n, s))
        prev = s


def staged_unit_copy(tmp, kanald, unit):
    """A copy of the staged unit whose Exec lines run the staged kanald."""
    with open(unit) as f:
        text = f.read()
    out = []
    for line in text.splitlines():
        if re.match(r"^Exec\w*=", line):
            line = re.sub(r"(?<![\w./-])/\S*/kanald(?=\s|$)", kanald, line)
        out.append(line)
    d = os.path.join(tmp, "verify")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "kanald.service")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return text, path


def check_verify(path):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    ours = [l for l in r.stdout.splitlines() if "kanald" in l]
    others = [l for l in r.stdout.splitlines() if "kanald" not in l]
    for l in others:
        print("note (not about kanald): " + l)
    if ours or r.returncode != 0:
        fail("systemd-analyze verify is not clean (exit %d):\n%s" %
             (r.returncode, r.stdout))
    print("ok: systemd-analyze verify --man=no is clean")


def check_security(path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)",
                  r.stdout)
    if m is None:
        fail("systemd-analyze security printed no exposure level "
             "(exit %d):\n%s" % (r.returncode, r.stdout))
    score = float(m.group(1))
    if score > MAX_EXPOSURE:
        bad = [l for l in r.stdout.splitlines() if l.startswith("✗")]
        fail("exposure %.1f is over %.1f; what counts against it:\n%s" %
             (score, MAX_EXPOSURE, "\n".join(bad)))
    print("ok: systemd-analyze security --offline=true: exposure %.1f "
          "(at most %.1f)" % (score, MAX_EXPOSURE))


# ---------------------------------------------------------- notify protocol

class Notify:
    """A NOTIFY_SOCKET: collects kanald's messages, with deadlines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs = []          # (monotonic time, text)

    def poll(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        m = (time.monotonic(), data.decode("utf-8", "replace"))
        self.msgs.append(m)
        return m

    def wait(self, pred, what, deadline=10.0, since=0):
        """The first message (index >= since) for which pred is true."""
        end = time.monotonic() + deadline
        i = since
        while True:
            while i < len(self.msgs):
                if pred(self.msgs[i][1]):
                    return i
                i += 1
            left = end - time.monotonic()
            if left <= 0:
                fail("waited %.0f s for %s; got: %r" %
                     (deadline, what, [m[1] for m in self.msgs[since:]]))
            self.poll(left)

    def drain(self, seconds):
        """Collects for seconds; 0: only what is already queued."""
        end = time.monotonic() + seconds
        while True:
            m = self.poll(max(end - time.monotonic(), 0))
            if m is None and time.monotonic() >= end:
                return

    def close(self):
        self.sock.close()


def has_line(msg, line):
    return line in msg.split("\n")


class Kanald:
    def __init__(self, tmp, tag, sources, extra_env, argv_prefix=None):
        self.tmp = tmp
        self.log = os.path.join(tmp, "kanald-%s.log" % tag)
        self.notify = Notify(os.path.join(tmp, "notify-%s.sock" % tag))
        wal = os.path.join(tmp, "wal-" + tag)
        base = 20000 + (os.getpid() * 7919) % 9000
        for attempt in range(20):
            self.port = base + attempt * 37 % 1000
            argv = (argv_prefix or []) + [
                env("KANALD"), "--listen", "127.0.0.1:%d" % self.port,
                "--sources", sources, "--wal-dir", wal,
                "--pg", "host=127.0.0.1 port=1 dbname=x connect_timeout=1",
                "--shutdown-timeout", "200ms"]
            e = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
            for k in ("WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
                e.pop(k, None)
            e.update(extra_env)
            with open(self.log, "w") as logf:
                self.proc = subprocess.Popen(argv, env=e, stdout=logf,
                                             stderr=logf)
            end = time.monotonic() + 10
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    break
                self.notify.poll(0.1)
                if any(has_line(m[1], "READY=1") for m in self.notify.msgs):
                    return
            if self.proc.poll() is None:
                self.proc.kill()
                fail("kanald sent no READY=1 within 10 s; log %s" %
                     self.log)
            # It exited: most likely the port was taken. Try another.
        fail("kanald did not start; last log:\n" + self.read_log())

    def read_log(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("kanald did not exit within 30 s of SIGTERM")
        self.notify.drain(0)    # what it sent on the way out
        self.notify.close()
        return rc


def pings(n, since=0):
    return sum(1 for m in n.msgs[since:] if has_line(m[1], "WATCHDOG=1"))


def check_notify_protocol(tmp, sources):
    # 0.6 s: a ping every 0.3 s.
    k = Kanald(tmp, "notify", sources, {"WATCHDOG_USEC": "600000"})
    n = k.notify
    i = n.wait(lambda m: has_line(m, "READY=1"), "READY=1")
    if not re.search(r"^STATUS=serving on 127\.0\.0\.1:%d" % k.port,
                     n.msgs[i][1], re.M):
        fail("READY=1 came without STATUS=serving on ...: %r" % n.msgs[i][1])
    first = n.wait(lambda m: has_line(m, "WATCHDOG=1"), "WATCHDOG=1")
    n.wait(lambda m: has_line(m, "WATCHDOG=1"), "a second WATCHDOG=1",
           since=first + 1)
    pat = (r"^STATUS=serving on 127\.0\.0\.1:%d; \d+ batches ok; "
           r"WAL \d+\.\d MiB; db down$" % k.port)
    n.wait(lambda m: re.search(pat, m, re.M) is not None,
           "STATUS=serving on ...; N batches ok; WAL X MiB; db down")
    print("ok: READY=1, STATUS= summary, WATCHDOG=1 pings")

    mark = len(n.msgs)
    k.proc.send_signal(signal.SIGHUP)
    r = n.wait(lambda m: has_line(m, "RELOADING=1"), "RELOADING=1",
               since=mark)
    n.wait(lambda m: has_line(m, "READY=1"), "READY=1 after RELOADING=1",
           since=r + 1)
    print("ok: SIGHUP: RELOADING=1 then READY=1")

    mark = len(n.msgs)
    rc = k.stop()
    if not any(has_line(m[1], "STOPPING=1") for m in n.msgs[mark:]):
        fail("no STOPPING=1 on SIGTERM")
    if rc != 0:
        fail("kanald exited %d on SIGTERM" % rc)
    print("ok: SIGTERM: STOPPING=1, exit 0")

    # WATCHDOG_PID of the shell that execs kanald: the same process.
    k = Kanald(tmp, "pid-same", sources, {"WATCHDOG_USEC": "600000"},
               argv_prefix=["/bin/sh", "-c",
                            'WATCHDOG_PID=$$; export WATCHDOG_PID; '
                            'exec "$@"', "sh"])
    k.notify.wait(lambda m: has_line(m, "WATCHDOG=1"),
                  "WATCHDOG=1 with WATCHDOG_PID = kanald's pid")
    k.stop()
    # WATCHDOG_PID of another process: the watchdog is not kanald's.
    k = Kanald(tmp, "pid-other", sources,
               {"WATCHDOG_USEC": "600000", "WATCHDOG_PID": "1"})
    k.notify.drain(1.5)     # five intervals' worth of pings, were it on
    if pings(k.notify):
        fail("WATCHDOG=1 sent although WATCHDOG_PID names another process")
    k.stop()
    print("ok: WATCHDOG_PID is honoured")


# ------------------------------------------------------------ stuck writer

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def batch_body(batch_id):
    """A kanal.v1.EventBatch of one event, encoded by hand."""
    ev = (field_bytes(2, b"dukcapil.kia") + field_varint(3, 1) +
          field_varint(4, int(time.time() * 1000)) +
          field_bytes(5, b"32.73.01") + field_varint(6, 1))
    return field_bytes(1, batch_id.encode()) + field_bytes(2, ev)


def check_stuck_writer(tmp, sources, token, lib):
    stall = os.path.join(tmp, "stall")
    # 0.4 s: a tick every 0.2 s, stuck after 2 ticks without progress.
    k = Kanald(tmp, "stall", sources,
               {"WATCHDOG_USEC": "400000", "LD_PRELOAD": lib,
                "KANAL_STALL_FILE": stall})
    n = k.notify
    first = n.wait(lambda m: has_line(m, "WATCHDOG=1"), "WATCHDOG=1")
    n.wait(lambda m: has_line(m, "WATCHDOG=1"), "a second WATCHDOG=1",
           since=first + 1)

    open(stall, "w").close()
    body = batch_body("stall-%d" % os.getpid())
    c = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    c.sendall(("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Bearer %s\r\n"
               "Content-Type: application/x-protobuf\r\n"
               "Content-Length: %d\r\n\r\n" % (token, len(body))).encode()
              + body)
    # The pings stop: a silence of 1.2 s (three intervals) within 5 s.
    end = time.monotonic() + 5
    while True:
        last = max([m[0] for m in n.msgs if has_line(m[1], "WATCHDOG=1")])
        if time.monotonic() - last >= 1.2:
            break
        if time.monotonic() > end:
            fail("WATCHDOG=1 kept coming while the WAL writer was stuck")
        n.poll(0.1)
    n.wait(lambda m: "WAL writer stuck" in m, "STATUS=...WAL writer stuck")
    log = k.read_log()
    if log.count("the WAL writer has made no progress") != 1:
        fail("the stuck WAL writer was not logged exactly once:\n" + log)
    print("ok: no WATCHDOG=1 while the WAL writer is stuck; logged once")

    mark = len(n.msgs)
    os.unlink(stall)
    n.wait(lambda m: has_line(m, "WATCHDOG=1"), "WATCHDOG=1 after the stall",
           since=mark)
    resp = b""
    while b"\r\n\r\n" not in resp:
        data = c.recv(4096)
        if not data:
            fail("kanald closed the connection instead of answering")
        resp += data
    c.close()
    if not resp.startswith(b"HTTP/1.1 200"):
        fail("the batch held up by the stall got %r" % resp[:40])
    if "the WAL writer is making progress again" not in k.read_log():
        fail("the recovery was not logged:\n" + k.read_log())
    if k.stop() != 0:
        fail("kanald did not exit 0 after the stall")
    print("ok: pings resume and the batch is answered 200 after the stall")


def make_source(tmp):
    r = subprocess.run([env("KANALCTL"), "token", "new", "--source",
                        "systemd-test", "--allow", "dukcapil.*"],
                       stdout=subprocess.PIPE, text=True)
    tok = re.search(r"^token: (\S+)", r.stdout, re.M)
    line = re.search(r"^sources: (.*)$", r.stdout, re.M)
    if r.returncode != 0 or tok is None or line is None:
        fail("kanalctl token new: %r" % r.stdout)
    path = os.path.join(tmp, "sources.conf")
    with open(path, "w") as f:
        f.write(line.group(1) + "\n")
    return path, tok.group(1)


def main():
    if shutil.which("systemd-analyze") is None:
        print("skipped: systemd-analyze is not installed (Debian: systemd)")
        return SKIP
    base = os.environ.get("KANAL_TEST_TMP") or "/tmp"
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="systemd-", dir=base)
    # A unix socket path has 107 bytes at most.
    if len(os.path.join(tmp, "notify-pid-other.sock")) > 100:
        tmp = tempfile.mkdtemp(prefix="kanal-systemd-")

    kanald, unit = stage_install(tmp)
    text, copy = staged_unit_copy(tmp, kanald, unit)
    check_unit_text(text)
    check_verify(copy)
    check_security(copy)

    sources, token = make_source(tmp)
    check_notify_protocol(tmp, sources)
    lib = os.environ.get("KANAL_STALL_LIB", "")
    if lib:
        check_stuck_writer(tmp, sources, token, lib)
    else:
        print("skipped: the stuck-writer check (no KANAL_STALL_LIB: "
              "sanitizer build)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
