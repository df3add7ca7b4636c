"""Load clients and probes shared by the chaos tests (Tests/chaos) and scripts/soak.

Everything talks to a plexus-server on loopback and is bounded: every loop has a count or
a deadline. Nothing here imports pytest, so scripts can use it too.

* `rss_kb`, `fd_count`: the server's resident memory and open descriptors from /proc.
* `wait_until`: polls a condition with a deadline (never a fixed sleep).
* `HttpWriter`, `WsDevice`: threads that write distinct points (one source each, metric
  `m`, value k, timestamp t0 + k ms) and remember which were acknowledged (HTTP 200 /
  `telemetry_ack`) and which were sent without an answer. They never resend.
* `resend`: sends a writer's points again, as an SDK does after a kill (what it has no
  ack for, and a batch whose ack was lost).
* `read_points`, `check_stored`: read a source's points back through the raw query API,
  paging under its 10,000-row cap, and compare with what the writers know.
* `RawWebSocket`: a minimal WebSocket client on a plain socket, for dashboards that
  stop reading (small SO_RCVBUF, no recv) and for frame-level control.
* `Dashboard`: a normal, always-reading /ws/browser client that tracks how fresh the
  newest telemetry it got is.
"""
from __future__ import annotations

import base64
import collections
import json
import os
import socket
import struct
import threading
import time

import requests
import websockets.sync.client

METRIC = "m"


# ---- process probes ----------------------------------------------------------------

def rss_kb(pid: int) -> int:
    """VmRSS of the process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def fd_count(pid: int) -> int:
    """Open file descriptors of the process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(fn, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls fn() until it returns something truthy (returned) or timeout seconds pass
    (AssertionError naming `what` and the last value)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(interval)


def prometheus_value(base_url: str, name: str) -> float:
    """Sum of every sample of one series in GET /metrics (0 if absent)."""
    r = requests.get(base_url + "/metrics", timeout=10)
    assert r.status_code == 200, f"GET /metrics: HTTP {r.status_code} (start the server with PLEXUS_PUBLIC_METRICS=1)"
    text = r.text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- writers -----------------------------------------------------------------------

def points_body(source: str, t0_ms: int, ks) -> bytes:
    pts = ",".join(f'{{"metric":"{METRIC}","value":{k},"timestamp":{t0_ms + k}}}' for k in ks)
    return f'{{"source_id":"{source}","points":[{pts}]}}'.encode()


class Writer(threading.Thread):
    """What every writer remembers: acked point indexes, indexes sent without an answer
    (`unsure`: may or may not be stored; never resent), and indexes refused with 503
    (`refused`: must not be stored). With record=False only the counts are kept
    (`counts["acked"]` …), for long runs."""

    def __init__(self, source: str, t0_ms: int, batch: int, record: bool = True):
        super().__init__(daemon=True, name=source)
        self.source = source
        self.t0_ms = t0_ms
        self.batch = batch
        self.acked: list[int] = []
        self.unsure: list[int] = []
        self.refused: list[int] = []
        self.counts: collections.Counter = collections.Counter()
        self.record = record
        self.statuses: collections.Counter = collections.Counter()
        self.error: str | None = None
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.next_k = 0

    def take(self, n: int) -> range:
        ks = range(self.next_k, self.next_k + n)
        self.next_k += n
        return ks

    def note(self, kind: str, ks):
        """Records points as "acked", "unsure" or "refused"; call with self.lock held."""
        self.counts[kind] += len(ks)
        if self.record:
            getattr(self, kind).extend(ks)

    @property
    def acked_count(self) -> int:
        with self.lock:
            return self.counts["acked"]

    def stop(self, timeout: float = 15):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.source}: writer did not stop within {timeout} s"


class HttpWriter(Writer):
    """POSTs batches of `batch` points to /ingest, one request at a time, until stopped,
    `max_requests` were sent, or (stop_on_error) the first request without an answer.
    `interval`: seconds between request starts (0: back to back)."""

    def __init__(self, base_url: str, key: str, source: str, t0_ms: int, batch: int = 50,
                 max_requests: int = 100_000, stop_on_error: bool = True, interval: float = 0.0,
                 timeout: float = 10.0, record: bool = True):
        super().__init__(source, t0_ms, batch, record)
        self.base_url, self.key = base_url, key
        self.max_requests, self.stop_on_error = max_requests, stop_on_error
        self.interval, self.timeout = interval, timeout
        self.session: requests.Session | None = None
        self.last_exception: str | None = None

    def post_once(self, n: int | None = None) -> int | None:
        """One request of n (default: batch) new points; records the outcome and returns
        the HTTP status (None: no answer)."""
        if self.session is None:
            self.session = requests.Session()
        ks = self.take(n or self.batch)
        try:
            r = self.session.post(self.base_url + "/ingest", data=points_body(self.source, self.t0_ms, ks),
                                  headers={"x-api-key": self.key, "content-type": "application/json"},
                                  timeout=self.timeout)
        except requests.RequestException as e:
            with self.lock:
                self.note("unsure", ks)
                self.statuses["no answer"] += 1
                self.last_exception = f"{type(e).__name__}: {e}"
            return None
        with self.lock:
            self.statuses[r.status_code] += 1
            if r.status_code == 200:
                self.note("acked", ks)
            elif r.status_code == 503:
                # UNAVAILABLE: nothing of the request was stored (a failed log write is cut
                # off), so these points must never appear.
                self.note("refused", ks)
            elif r.status_code >= 500:
                # Not acknowledged; whether the record reached the log is unknown.
                self.note("unsure", ks)
            # 4xx: refused before storing; such points must never appear (in no list)
        return r.status_code

    def run(self):
        next_at = time.monotonic()
        for _ in range(self.max_requests):
            if self.stop_event.is_set():
                break
            if self.interval:
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    break
                next_at = max(next_at + self.interval, time.monotonic() - 1.0)
            if self.post_once() is None and self.stop_on_error:
                self.error = self.last_exception
                break
        if self.session is not None:
            self.session.close()


def connect_ws(url: str, **kw):
    kw = {"open_timeout": 10, "close_timeout": 2, "max_size": None, **kw}
    try:
        return websockets.sync.client.connect(url, legacy=True, **kw)  # websockets >= 17: no warning
    except TypeError:
        return websockets.sync.client.connect(url, **kw)


class WsDevice(Writer):
    """A device on /ws/device with `acks: true`: sends `telemetry` frames (seq 1, 2, …) of
    `batch` points, keeping at most `window` unacknowledged, until stopped, `max_frames`
    were sent, or the connection fails. `rate`: frames per second (0: as fast as acks
    allow). Records each ack's latency (seconds). `value_pad` adds to each frame a string
    point of that many bytes (metric `pad`, timestamped with the send time), which makes
    frames heavier and lets a dashboard tell how fresh its data is."""

    def __init__(self, ws_url: str, key: str, source: str, t0_ms: int, batch: int = 50, window: int = 4,
                 max_frames: int = 1_000_000, rate: float = 0.0, value_pad: int = 0, record: bool = True):
        super().__init__(source, t0_ms, batch, record)
        self.ws_url, self.key = ws_url, key
        self.window, self.max_frames, self.rate = window, max_frames, rate
        self.value_pad = value_pad
        self.latencies: list[float] = []
        self.authenticated = threading.Event()
        self.frames_sent = 0

    def frame(self, seq: int, ks) -> str:
        pts = [f'{{"metric":"{METRIC}","value":{k},"timestamp":{self.t0_ms + k}}}' for k in ks]
        if self.value_pad:
            now_ms = time.time() * 1000
            pts.append(f'{{"metric":"pad","value":"{"x" * self.value_pad}","timestamp":{now_ms:.3f}}}')
        return f'{{"type":"telemetry","seq":{seq},"points":[{",".join(pts)}]}}'

    def run(self):
        try:
            ws = connect_ws(self.ws_url + "/ws/device")
        except Exception as e:
            self.error = f"connect: {type(e).__name__}: {e}"
            return
        outstanding: dict[int, tuple[range, float]] = {}
        try:
            ws.send(json.dumps({"type": "device_auth", "api_key": self.key, "source_id": self.source,
                                "platform": "chaos-test", "acks": True}))
            reply = json.loads(ws.recv(timeout=10))
            if reply.get("type") != "authenticated" or reply.get("source_id") != self.source:
                self.error = f"device_auth answered {reply}"
                return
            self.authenticated.set()
            seq = 0
            next_at = time.monotonic()
            drain_until = None
            for _ in range(100_000_000):
                now = time.monotonic()
                if self.stop_event.is_set() or seq >= self.max_frames:
                    # Done sending: wait (at most 10 s) for the acks still due.
                    drain_until = drain_until or now + 10
                    if not outstanding or now > drain_until:
                        break
                    can_send = False
                else:
                    can_send = len(outstanding) < self.window and (not self.rate or now >= next_at)
                if can_send:
                    seq += 1
                    ks = self.take(self.batch)
                    outstanding[seq] = (ks, now)
                    ws.send(self.frame(seq, ks))
                    self.frames_sent += 1
                    if self.rate:
                        next_at = max(next_at + 1 / self.rate, now - 1.0)  # no catch-up burst after a stall
                    continue
                if drain_until or not self.rate or len(outstanding) >= self.window:
                    wait = 0.5   # an ack is what we wait for
                else:
                    wait = max(0.001, min(0.5, next_at - now))   # or the next send time
                try:
                    message = ws.recv(timeout=wait)
                except TimeoutError:
                    continue
                frame = json.loads(message)
                if frame.get("type") == "telemetry_ack":
                    ks, sent_at = outstanding.pop(frame["seq"])
                    with self.lock:
                        self.note("acked", ks)
                        self.latencies.append(time.monotonic() - sent_at)
                elif frame.get("type") == "error":
                    with self.lock:
                        self.statuses[frame.get("code", "error")] += 1
                    if frame.get("code") == "INVALID_MESSAGE" and "seq" in frame:
                        self.error = f"frame refused: {frame}"
                        outstanding.pop(frame["seq"], None)  # refused: not stored
        except Exception as e:  # the server went away (kill -9) or closed the socket
            self.error = f"{type(e).__name__}: {e}"
        finally:
            with self.lock:
                for ks, _ in outstanding.values():
                    self.note("unsure", ks)
            try:
                ws.close()
            except Exception:
                pass


# ---- reading back ------------------------------------------------------------------

def read_points(base_url: str, key: str, source: str, start_ms: int, end_ms: int, metric: str = METRIC,
                page_limit: int = 1_000) -> list[tuple[float, object]]:
    """Every raw point of one metric of `source` in [start_ms, end_ms), as (timestamp_ms,
    value), paging by time under the query's 10,000-row cap: a truncated page keeps only
    the rows before its last timestamp, and the next page starts at that timestamp, so
    duplicates are counted exactly."""
    rows: list[tuple[float, object]] = []
    start = start_ms
    for _ in range(page_limit):
        r = requests.get(f"{base_url}/v1/sources/{source}/metrics/query",
                         params={"metrics": metric, "interval": "raw", "start": str(start), "end": str(end_ms)},
                         headers={"x-api-key": key}, timeout=60)
        if r.status_code != 200:
            raise AssertionError(f"query {source} [{start}, {end_ms}): HTTP {r.status_code}: {r.text[:300]}")
        body = r.json()
        s = body["series"].get(metric, {"timestamp_ms": [], "value": []})
        page = list(zip(s["timestamp_ms"], s["value"]))
        if not body.get("truncated"):
            return rows + page
        last = page[-1][0]
        keep = [row for row in page if row[0] < last]
        if not keep:
            raise AssertionError(f"{source}: more than one page of points at timestamp {last}")
        if float(last) != int(last):
            raise AssertionError(f"{source}: fractional timestamp {last}; these tests write whole ms")
        rows += keep
        start = int(last)
    raise AssertionError(f"{source}: more than {page_limit} pages")


def rollup_count(base_url: str, key: str, source: str, start_ms: int, end_ms: int, metric: str = METRIC) -> int:
    """Points of the metric counted by the 1-hour rollup (interval=1d), which a replay
    applied twice would double."""
    r = requests.get(f"{base_url}/v1/sources/{source}/metrics/query",
                     params={"metrics": metric, "interval": "1d", "start": str(start_ms), "end": str(end_ms)},
                     headers={"x-api-key": key}, timeout=60)
    if r.status_code != 200:
        raise AssertionError(f"rollup query {source}: HTTP {r.status_code}: {r.text[:300]}")
    s = r.json()["series"].get(metric)
    return int(sum(s["count"])) if s else 0


def resend(base_url: str, key: str, writer: Writer, ks, batch: int = 1_000) -> int:
    """Sends points `ks` of `writer` again, as an SDK does with what it has no ack for
    (and with a batch whose ack was lost), by POST /ingest; each request must answer 200.
    The unsure ones among them become acked. Returns how many were sent."""
    ks = sorted(set(ks))
    with requests.Session() as session:
        for i in range(0, len(ks), batch):
            part = ks[i:i + batch]
            r = session.post(base_url + "/ingest", data=points_body(writer.source, writer.t0_ms, part),
                             headers={"x-api-key": key, "content-type": "application/json"}, timeout=30)
            assert r.status_code == 200, f"{writer.source}: resend answered HTTP {r.status_code}: {r.text[:200]}"
    with writer.lock:
        resent = set(ks)
        writer.acked.extend(k for k in writer.unsure if k in resent)
        writer.unsure = [k for k in writer.unsure if k not in resent]
    return len(ks)


def check_stored(base_url: str, key: str, writer: Writer, check_rollup: bool = True) -> list[str]:
    """Problems (empty if none) with what is stored for one writer's source: every acked
    point exactly once, no unsure point twice, no refused (503) point, nothing never sent,
    each at its timestamp."""
    with writer.lock:
        acked, unsure, refused = set(writer.acked), set(writer.unsure), set(writer.refused)
    start, end = writer.t0_ms, writer.t0_ms + writer.next_k + 1
    rows = read_points(base_url, key, writer.source, start, end)
    counts = collections.Counter()
    wrong_ts = []
    for ts, value in rows:
        k = int(value)
        counts[k] += 1
        if ts != writer.t0_ms + k:
            wrong_ts.append((k, ts))
    problems = []
    missing = sorted(acked - counts.keys())
    if missing:
        problems.append(f"{writer.source}: {len(missing)} of {len(acked)} acknowledged points missing, e.g. {missing[:5]}")
    dup_acked = sorted(k for k in acked if counts[k] > 1)
    if dup_acked:
        problems.append(f"{writer.source}: {len(dup_acked)} acknowledged points stored more than once, e.g. "
                        f"{[(k, counts[k]) for k in dup_acked[:5]]}")
    dup_unsure = sorted(k for k in unsure if counts[k] > 1)
    if dup_unsure:
        problems.append(f"{writer.source}: {len(dup_unsure)} unacknowledged points stored more than once, e.g. "
                        f"{[(k, counts[k]) for k in dup_unsure[:5]]}")
    stored_refused = sorted(refused & counts.keys())
    if stored_refused:
        problems.append(f"{writer.source}: {len(stored_refused)} points that got 503 are stored, e.g. {stored_refused[:5]}")
    unknown = sorted(counts.keys() - acked - unsure - refused)
    if unknown:
        problems.append(f"{writer.source}: {len(unknown)} stored points were never sent or were refused, e.g. {unknown[:5]}")
    if wrong_ts:
        problems.append(f"{writer.source}: points at the wrong timestamp, e.g. {wrong_ts[:5]}")
    if check_rollup:
        n = rollup_count(base_url, key, writer.source, start, end)
        if n != len(rows):
            problems.append(f"{writer.source}: rollups count {n} points, raw query {len(rows)} (applied twice?)")
    return problems


# ---- WebSocket on a plain socket -----------------------------------------------------

class WebSocketClosed(Exception):
    pass


class RawWebSocket:
    """A minimal WebSocket client over a plain blocking socket: the test decides exactly
    when (and whether) anything is read. `rcvbuf` sets SO_RCVBUF before connecting, so a
    client that stops reading makes the server's writes back up quickly."""

    def __init__(self, host: str, port: int, path: str, rcvbuf: int | None = None, timeout: float = 10.0,
                 source_address: str | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source_address:
            self.sock.bind((source_address, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
            if len(self.buf) > 65536:
                raise AssertionError("WebSocket handshake: no end of headers in 64 KiB")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"WebSocket handshake refused: {head[:200]!r}")

    def _fill(self, deadline: float):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("WebSocket: nothing to read in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise WebSocketClosed("EOF")
        self.buf += data

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode: int, payload: bytes):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.settimeout(10)
        self.sock.sendall(head + mask + masked)

    def send_json(self, obj: dict):
        self.send_frame(0x1, json.dumps(obj).encode())

    def recv_message(self, timeout: float) -> bytes:
        """The next text or binary message's payload; answers pings; WebSocketClosed on a
        close frame or EOF."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        for _ in range(100_000):
            b0, b1 = self._take(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8, deadline))[0]
            mask = self._take(4, deadline) if b1 & 0x80 else None
            payload = self._take(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.send_frame(0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise WebSocketClosed(f"close frame {code} {payload[2:].decode(errors='replace')!r}")
            elif opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts)
        raise AssertionError("WebSocket: too many frames in one message")

    def wait_json(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            frame = json.loads(self.recv_message(max(0.001, deadline - time.monotonic())))
            if pred(frame):
                return frame
        raise AssertionError(f"WebSocket: no {what}")

    def closed_by_peer(self, timeout: float) -> str | None:
        """Reads (and discards) everything until the server closes the connection: returns
        how it ended ('eof', 'reset', or the close frame) or None if still open at timeout."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        for _ in range(10_000_000):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return "reset"
            if not data:
                return "eof"
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Dashboard(threading.Thread):
    """A /ws/browser dashboard subscribed to one source (or "*") that reads everything as
    it arrives, counts telemetry frames and points, and remembers the newest `pad` point
    (sent by a WsDevice with value_pad), to tell how fresh its live data is."""

    def __init__(self, ws_url: str, key: str, source: str):
        super().__init__(daemon=True, name=f"dashboard-{source}")
        self.ws = connect_ws(ws_url + "/ws/browser")
        self.ws.send(json.dumps({"type": "auth", "api_key": key}))
        init = json.loads(self.ws.recv(timeout=10))
        assert init.get("type") == "init", f"dashboard sign-in answered {init}"
        self.ws.send(json.dumps({"type": "subscribe", "source_id": source}))
        for _ in range(100):
            f = json.loads(self.ws.recv(timeout=10))
            if f.get("type") == "subscribed":
                break
        else:
            raise AssertionError("dashboard: no `subscribed` confirmation")
        self.source = source
        self.lock = threading.Lock()
        self.newest_pad_ms = 0.0     # device send time of the newest pad point received
        self.frames = 0
        self.points = 0
        self.error: str | None = None
        self.stop_event = threading.Event()

    def run(self):
        try:
            while not self.stop_event.is_set():
                try:
                    message = self.ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                f = json.loads(message)
                if f.get("type") != "telemetry" or self.source not in ("*", f.get("source_id")):
                    continue
                pads = [p["timestamp"] for p in f["points"] if p.get("metric") == "pad"]
                with self.lock:
                    self.frames += 1
                    self.points += len(f["points"])
                    if pads:
                        self.newest_pad_ms = max(self.newest_pad_ms, max(pads))
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"

    def age_s(self) -> float:
        """How old the newest live point this dashboard holds is, by the wall clock."""
        with self.lock:
            newest = self.newest_pad_ms
        return float("inf") if not newest else time.time() - newest / 1000

    def stop(self):
        self.stop_event.set()
        self.join(5)
        try:
            self.ws.close()
        except Exception:
            pass
