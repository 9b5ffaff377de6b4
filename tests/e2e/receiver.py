"""The callback receiver for the archive tests (127.0.0.1:18419, in the local stack's
OutboundAllowList), Cairn's callback signature check, and a TCP trap that records any
connection to a port nothing should reach.

    rx = CallbackReceiver().start()
    path = rx.new_path()                 # /cb/<uuid>
    rx.fail_first(path, 2)               # 500, 500, then 200
    hits = rx.wait_for(path, count=3, timeout=120)
    verify_signature(secret, hits[-1].headers["x-cairn-signature"], hits[-1].body)

`python3 receiver.py --self-test` checks all of it with curl.
"""

import hashlib
import hmac
import json
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from httpserver import BackgroundServer

HOST = "127.0.0.1"
DEFAULT_PORT = 18419


# --- signatures ---------------------------------------------------------------------------


def sign(secret: bytes, body: bytes, t: int = None) -> str:
    """The header value Cairn sends: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>."
    + body)>` (what the contract specifies; used by the self-test)."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_signature(header: str):
    """(t, [v1 values]) of an X-Cairn-Signature header; (None, []) when malformed."""
    t, macs = None, []
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return None, []
        key, value = key.strip(), value.strip()
        if key == "t":
            if t is not None or not value.isdigit():
                return None, []
            t = int(value)
        elif key == "v1":
            macs.append(value.lower())
    return t, macs


def verify_signature(secret: bytes, header: str, body: bytes, tolerance: float = None,
                     now: float = None) -> bool:
    """True when one of the header's v1= values is HMAC-SHA256(secret, f"{t}.".encode() +
    body) (constant-time compare). With `tolerance`, t must also be within that many
    seconds of `now` (default: the current time)."""
    t, macs = parse_signature(header)
    if t is None or not macs:
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    ok = False
    for mac in macs:  # no early exit: every candidate is compared
        ok |= hmac.compare_digest(expected.encode(), mac.encode("ascii", "replace"))
    return ok


# --- the receiver -------------------------------------------------------------------------


@dataclass
class Hit:
    """One request the receiver got; `headers` has lower-case names."""
    method: str
    path: str
    query: str
    headers: dict
    body: bytes
    time: float
    answered: int = None
    raw_headers: list = field(default_factory=list)

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cairn-test-receiver/1"

    def log_message(self, fmt, *args):
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        rx: "CallbackReceiver" = self.server.owner
        path, _, query = self.path.partition("?")
        hit = Hit(self.command, path, query,
                  {k.lower(): v for k, v in self.headers.items()}, self._read_body(),
                  time.time(), raw_headers=list(self.headers.items()))
        status = rx._record(hit)
        delay = rx._hang(hit.path)
        if delay:
            time.sleep(delay)  # past the sender's timeout: it gives up on this attempt
        body = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class CallbackReceiver(BackgroundServer):
    handler = _Handler
    thread_name = "callback-receiver"

    def __init__(self, port=DEFAULT_PORT, host=HOST):
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._hits = []
        self._failures = {}
        self._hangs = {}

    def _record(self, hit: Hit) -> int:
        with self._cond:
            status = 200
            left = self._failures.get(hit.path)
            if left and left[0] > 0:
                left[0] -= 1
                status = left[1]
            hit.answered = status
            self._hits.append(hit)
            self._cond.notify_all()
            return status

    def _hang(self, path: str) -> float:
        with self._lock:
            left = self._hangs.get(path)
            if left and left[0] > 0:
                left[0] -= 1
                return left[1]
            return 0

    def hang_first(self, path: str, n: int, seconds: float):
        """The next `n` requests to `path` are answered only after `seconds`."""
        with self._lock:
            self._hangs[path] = [n, seconds]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def new_path(self, prefix="cb") -> str:
        return f"/{prefix}/{uuid.uuid4().hex}"

    def fail_first(self, path: str, n: int, status: int = 500):
        """The next `n` requests to `path` get `status`; later ones 200."""
        with self._lock:
            self._failures[path] = [n, status]

    def requests(self, path: str = None) -> list:
        with self._lock:
            return [h for h in self._hits if path is None or h.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60) -> list:
        """The first `count` requests to `path`, waiting up to `timeout` s for them."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                hits = [h for h in self._hits if h.path == path]
                if len(hits) >= count:
                    return hits
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(
                        f"{count} callback request(s) to {path} expected within {timeout}s, "
                        f"got {len(hits)}: {[(h.method, h.answered, h.body[:200]) for h in hits]}")
                self._cond.wait(left)


class TcpTrap:
    """Listens on `port` on 127.0.0.1 (and ::1 when available) and records every
    connection: (address, time); it reads nothing and closes at once."""

    def __init__(self, port: int, hosts=("127.0.0.1", "::1")):
        self.port = port
        self.hosts = hosts
        self.connections = []
        self._socks = []
        self._threads = []
        self._stop = threading.Event()

    def start(self) -> "TcpTrap":
        for host in self.hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, self.port))
            except OSError:
                if family == socket.AF_INET6:
                    continue  # no IPv6 loopback here
                raise
            s.listen(16)
            s.settimeout(0.2)
            self._socks.append(s)
            t = threading.Thread(target=self._accept, args=(s,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _accept(self, s):
        while not self._stop.is_set():
            try:
                conn, addr = s.accept()
            except (socket.timeout, OSError):
                continue
            self.connections.append((addr, time.time()))
            conn.close()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in self._socks:
            s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- self-test ----------------------------------------------------------------------------


def _curl(*args) -> tuple:
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}",
                          *args], check=True, capture_output=True).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code), body


def self_test(port: int = 0):
    secret = b"s3cret-\x00\xff-bytes"
    body = json.dumps({"tag": "cairn-x", "callback": {"status": 200, "id": "op1"}}).encode()

    # the signature check itself
    t = 1700000000
    good = sign(secret, body, t)
    assert good.startswith("t=1700000000,v1=") and len(good.split("v1=")[1]) == 64
    assert verify_signature(secret, good, body)
    assert verify_signature(secret, good.upper().replace("T=", "t=").replace("V1=", "v1="), body)
    assert verify_signature(secret, f" t={t} , v1={'0' * 64} ,v1={good.split('v1=')[1]}", body)
    assert verify_signature(secret, good, body, tolerance=300, now=t + 299)
    assert not verify_signature(secret, good, body, tolerance=300, now=t + 301)
    assert not verify_signature(b"other", good, body)
    assert not verify_signature(secret, good, body + b" ")
    assert not verify_signature(secret, good.replace(f"t={t}", f"t={t + 1}"), body)
    assert not verify_signature(secret, f"t={t}", body)
    assert not verify_signature(secret, good.split(",")[1], body)  # no t
    assert not verify_signature(secret, f"t=abc,v1={good.split('v1=')[1]}", body)
    assert not verify_signature(secret, f"{good},t={t}", body)  # two t
    assert not verify_signature(secret, "", body)
    assert not verify_signature(secret, None, body)
    assert not verify_signature(secret, "garbage", body)
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify_signature(secret, f"t={t},v1={mac}", body)
    assert not verify_signature(secret, f"t={t},v0={mac}", body)  # only v1 counts

    with CallbackReceiver(port=port) as rx:
        # a signed POST, recorded with its headers and exact body
        path = rx.new_path()
        now = int(time.time())
        proc = subprocess.run(
            ["curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}",
             "-X", "POST", "-H", "Content-Type: application/json",
             "-H", "X-Cairn-Callback-Id: op1",
             "-H", f"X-Cairn-Signature: {sign(secret, body, now)}",
             "--data-binary", "@-", rx.url(path) + "?q=1"],
            input=body, capture_output=True, check=True)
        answer, _, code = proc.stdout.rpartition(b"\n")
        assert int(code) == 200 and json.loads(answer) == {"status": 200}
        (hit,) = rx.wait_for(path, 1, timeout=5)
        assert (hit.method, hit.path, hit.query, hit.body) == ("POST", path, "q=1", body)
        assert hit.headers["x-cairn-callback-id"] == "op1"
        assert verify_signature(secret, hit.headers["x-cairn-signature"], hit.body,
                                tolerance=60)
        assert hit.json()["callback"]["id"] == "op1"

        # fail the first two requests to a path, then 200; other paths are unaffected
        path = rx.new_path()
        rx.fail_first(path, 2)
        codes = [_curl("-X", "PUT", "--data-binary", f"n={i}", rx.url(path))[0]
                 for i in range(3)]
        assert codes == [500, 500, 200], codes
        assert _curl(rx.url(rx.new_path()))[0] == 200
        hits = rx.wait_for(path, 3, timeout=5)
        assert [h.answered for h in hits] == [500, 500, 200]
        assert [h.method for h in hits] == ["PUT"] * 3
        assert [h.body for h in hits] == [b"n=0", b"n=1", b"n=2"]
        rx.fail_first(path, 1, status=503)
        assert _curl(rx.url(path))[0] == 503 and _curl(rx.url(path))[0] == 200

        # a chunked body
        proc = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w",
                               "%{http_code}", "-H", "Transfer-Encoding: chunked",
                               "--data-binary", "@-", rx.url("/chunked")],
                              input=b"x" * 100000, capture_output=True, check=True)
        assert proc.stdout == b"200"
        assert rx.wait_for("/chunked", 1, 5)[0].body == b"x" * 100000

        # wait_for times out with a clear message; a late request wakes it up
        try:
            rx.wait_for("/never", 1, timeout=0.3)
            raise RuntimeError("wait_for did not time out")
        except AssertionError as e:
            assert "/never" in str(e)
        threading.Timer(0.5, lambda: _curl(rx.url("/late"))).start()
        assert len(rx.wait_for("/late", 1, timeout=5)) == 1

    # the trap sees a connection
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free = probe.getsockname()[1]
    probe.close()
    with TcpTrap(free) as trap:
        subprocess.run(["curl", "-s", "--noproxy", "*", "-m", "3", f"http://127.0.0.1:{free}/"],
                       capture_output=True)
        time.sleep(0.5)
        assert len(trap.connections) == 1, trap.connections
    print("receiver self-test: ok")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--port", type=int, default=None,
                    help=f"default {DEFAULT_PORT}; the self-test takes a free port")
    a = ap.parse_args()
    if a.self_test:
        self_test(a.port or 0)
    else:
        rx = CallbackReceiver(port=a.port or DEFAULT_PORT).start()
        print(f"receiving on http://{HOST}:{rx.port}/")
        try:
            while True:
                time.sleep(5)
                for h in rx.requests():
                    print(h.method, h.path, h.answered, h.body[:200])
        except KeyboardInterrupt:
            rx.stop()
