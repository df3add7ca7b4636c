"""Soak test of plexus-server: minutes of moderate mixed load, watching memory and fds.

Run through scripts/soak (it picks the Python with requests and websockets). Starts its
own server on 127.0.0.1 (a free port, a fresh data dir under /tmp, removed at the end),
then until the time is up:

* HTTP ingest: 2 writers, 10 requests/s each, 20 points a request (400 points/s);
* WebSocket devices: 4 slots; in each, a device connects (acks on), streams 10 frames/s
  of 10 points for 20-60 s, drains its acks, leaves, and another comes 1-5 s later;
* dashboards: 3 slots; in each, a dashboard signs in, subscribes to one device or to
  "*", reads for 10-40 s, leaves, and another comes 1-5 s later;
* queries: one every 2 s (raw last minute, 1-minute buckets of the last 10 minutes,
  the source list, latest values), each expected to answer 200.

Every 10 s it prints the server's RSS (/proc/<pid>/status VmRSS), open fds
(/proc/<pid>/fd), CPU since the last sample, and the load counters. At the end: a table
of the warm-up (first --warmup-minutes, default 1) against the rest (min, max and
least-squares slope per minute of RSS and fds), the points acknowledged against the
points stored (counted back by the rollup query), and a verdict. Exit status 1 if:

* RSS after warm-up exceeds the warm-up's maximum by more than --rss-tolerance-mb (32);
* with at least 10 minutes after warm-up, RSS grows faster than --rss-slope-mb-per-min
  (0.5) over them;
* open fds after warm-up exceed the warm-up's maximum by more than --fd-tolerance (32);
* the server died, a query failed, or an acknowledged point is missing (or stored twice).
"""
import argparse
import os
import random
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "support"))
from chaos_clients import Dashboard, HttpWriter, WsDevice, fd_count, rollup_count, rss_kb  # noqa: E402

T0_MS = 1_700_000_000_000
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")
SAMPLE_S = 10


def default_bin() -> str:
    for kind in ("release", "debug"):
        p = ROOT / ".build" / kind / "plexus-server"
        if p.exists():
            return str(p)
    sys.exit("scripts/soak: no .build/release/plexus-server or .build/debug/plexus-server; build one "
             "(swift build -c release --product plexus-server) or pass --server-bin")


def start_server(binary: str, data_dir: Path, key: str) -> tuple[subprocess.Popen, str]:
    log = open(data_dir.parent / "server.log", "wb")
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir),
                             "--log-level", "warning"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=log, text=True, env={**os.environ, "PLEXUS_BOOTSTRAP_KEY": key},
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"scripts/soak: the server exited ({proc.wait(10)}) before listening; see {log.name}")
        m = LISTENING.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    proc.kill()
    sys.exit("scripts/soak: the server printed no 'listening on' line within 60 s")


class Load:
    """The load generators; every loop ends when `stop` is set."""

    def __init__(self, base_url: str, key: str):
        self.base, self.key = base_url, key
        self.ws = "ws://" + base_url.removeprefix("http://")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.writers: list = []          # every writer ever started, for the final count
        self.devices_connected = 0
        self.dashboards_connected = 0
        self.dashboard_frames = 0
        self.queries = 0
        self.query_errors: list[str] = []
        self.device_errors: list[str] = []
        self.threads: list[threading.Thread] = []
        self.device_seq = 0

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def start(self):
        for i in range(2):
            w = HttpWriter(self.base, self.key, f"soak-http-{i}", T0_MS, batch=20, interval=0.1,
                           stop_on_error=False, record=False)
            self.writers.append(w)
            w.start()
        for slot in range(4):
            self.spawn(self.device_slot, slot)
        for slot in range(3):
            self.spawn(self.dashboard_slot, slot)
        self.spawn(self.query_loop)

    def device_slot(self, slot: int):
        rnd = random.Random(slot)
        for _ in range(100_000):
            if self.stop.is_set():
                return
            with self.lock:
                self.device_seq += 1
                n = self.device_seq
            # One source per slot; every connection writes its own timestamp range.
            d = WsDevice(self.ws, self.key, f"soak-dev-{slot}", T0_MS + n * 10_000_000, batch=10, window=4, rate=10,
                         record=False)
            with self.lock:
                self.writers.append(d)
                self.devices_connected += 1
            d.start()
            self.stop.wait(rnd.uniform(20, 60))
            d.stop(timeout=20)
            if d.error:
                with self.lock:
                    self.device_errors.append(f"{d.source}: {d.error}")
            self.stop.wait(rnd.uniform(1, 5))

    def dashboard_slot(self, slot: int):
        rnd = random.Random(100 + slot)
        for _ in range(100_000):
            if self.stop.is_set():
                return
            source = rnd.choice(["*", "soak-dev-0", "soak-dev-1", "soak-dev-2", "soak-dev-3", "soak-http-0"])
            try:
                d = Dashboard(self.ws, self.key, source)
            except Exception as e:
                with self.lock:
                    self.device_errors.append(f"dashboard: {type(e).__name__}: {e}")
                self.stop.wait(5)
                continue
            d.start()
            with self.lock:
                self.dashboards_connected += 1
            self.stop.wait(rnd.uniform(10, 40))
            d.stop()
            with self.lock:
                self.dashboard_frames += d.frames
            self.stop.wait(rnd.uniform(1, 5))

    def query_loop(self):
        session = requests.Session()
        h = {"x-api-key": self.key}
        for i in range(1_000_000):
            if self.stop.wait(2):
                return
            written = max(1, self.writers[0].next_k)
            k0 = random.randrange(written)
            path, params = [
                ("/v1/sources/soak-http-0/metrics/query", {"interval": "raw", "start": T0_MS + k0, "end": T0_MS + k0 + 5000}),
                ("/v1/sources/soak-http-1/metrics/query", {"interval": "1m", "start": T0_MS, "end": T0_MS + 3_600_000}),
                ("/v1/sources", {}),
                ("/v1/sources/soak-dev-1/metrics/latest", {}),
            ][i % 4]
            try:
                r = session.get(self.base + path, params=params, headers=h, timeout=30)
                ok = r.status_code == 200
                what = f"{path}: HTTP {r.status_code}"
            except requests.RequestException as e:
                ok, what = False, f"{path}: {type(e).__name__}"
            with self.lock:
                self.queries += 1
                if not ok:
                    self.query_errors.append(what)

    def acked(self) -> int:
        with self.lock:
            writers = list(self.writers)
        return sum(w.acked_count for w in writers)

    def finish(self):
        self.stop.set()
        with self.lock:
            writers = list(self.writers)
        for w in writers:
            w.stop_event.set()
        for w in writers:
            w.join(25)
        for t in self.threads:
            t.join(30)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else 60 * sum((t - mt) * (v - mv) for t, v in points) / den


def main() -> int:
    ap = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--server-bin", default=None, help="default: .build/release/plexus-server, else .build/debug")
    ap.add_argument("--warmup-minutes", type=float, default=1)
    ap.add_argument("--rss-tolerance-mb", type=float, default=32)
    ap.add_argument("--rss-slope-mb-per-min", type=float, default=0.5)
    ap.add_argument("--fd-tolerance", type=int, default=32)
    ap.add_argument("--keep", action="store_true", help="keep the data dir and server log")
    args = ap.parse_args()
    binary = args.server_bin or default_bin()
    work = Path(tempfile.mkdtemp(prefix="plexus-soak-"))
    data_dir = work / "data"
    key = "plx_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    proc, base = start_server(binary, data_dir, key)
    try:
        return soak(args, binary, work, data_dir, key, proc, base)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def soak(args, binary, work, data_dir, key, proc, base) -> int:
    pid = proc.pid
    print(f"soak: {binary} (pid {pid}) at {base}, data in {data_dir}, {args.minutes:g} min, "
          f"warm-up {args.warmup_minutes:g} min", flush=True)
    load = Load(base, key)
    samples: list[dict] = []
    problems: list[str] = []
    hz = os.sysconf("SC_CLK_TCK")
    started = time.monotonic()
    end = started + args.minutes * 60
    last_ticks, last_t = cpu_ticks(pid), started
    load.start()
    print(f"{'t':>6} {'rss_mb':>7} {'fds':>5} {'cpu%':>5} {'acked':>9} {'devices':>7} {'dashboards':>10} "
          f"{'queries':>7} {'errors':>6}", flush=True)
    try:
        for i in range(1, 1_000_000):
            next_at = started + i * SAMPLE_S
            if next_at > end + 0.001:
                break
            if load.stop.wait(max(0, next_at - time.monotonic())):
                break
            if proc.poll() is not None:
                problems.append(f"the server exited with {proc.returncode} at {time.monotonic() - started:.0f} s")
                break
            now = time.monotonic()
            ticks = cpu_ticks(pid)
            s = {"t": now - started, "rss_mb": rss_kb(pid) / 1024, "fds": fd_count(pid),
                 "cpu": 100 * (ticks - last_ticks) / hz / (now - last_t), "acked": load.acked()}
            last_ticks, last_t = ticks, now
            samples.append(s)
            with load.lock:
                errors = len(load.query_errors) + len(load.device_errors)
                print(f"{s['t']:6.0f} {s['rss_mb']:7.1f} {s['fds']:5d} {s['cpu']:5.1f} {s['acked']:9d} "
                      f"{load.devices_connected:7d} {load.dashboards_connected:10d} {load.queries:7d} {errors:6d}",
                      flush=True)
    except KeyboardInterrupt:
        problems.append("interrupted")
    finally:
        load.finish()

    alive = proc.poll() is None
    # Count back what every writer had acknowledged (one rollup query per source).
    if alive:
        by_source: dict[str, list] = {}
        for w in load.writers:
            by_source.setdefault(w.source, []).append(w)
        for source, ws in sorted(by_source.items()):
            acked = sum(w.counts["acked"] for w in ws)
            unsure = sum(w.counts["unsure"] for w in ws)
            stored = rollup_count(base, key, source, T0_MS - 1, T0_MS + 10**12)
            if not acked <= stored <= acked + unsure:
                problems.append(f"{source}: {acked} points acknowledged ({unsure} unanswered), {stored} stored")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
            if code != 0:
                problems.append(f"the server exited with {code} on SIGTERM")
        except subprocess.TimeoutExpired:
            proc.kill()
            problems.append("the server did not stop within 30 s of SIGTERM")

    # The sample due at the end of the warm-up (taken a few ms late) still belongs to it.
    warm = [s for s in samples if s["t"] < args.warmup_minutes * 60 + 1]
    rest = [s for s in samples if s["t"] >= args.warmup_minutes * 60 + 1]
    print("\nsummary (RSS in MB, fds; slope per minute, least squares)")
    print(f"{'phase':<22} {'samples':>7} {'rss min':>8} {'rss max':>8} {'rss slope':>9} {'fd min':>6} {'fd max':>6} "
          f"{'fd slope':>8} {'cpu% avg':>8}")
    for name, part in ((f"first {args.warmup_minutes:g} min", warm), ("after", rest), ("whole run", samples)):
        if not part:
            print(f"{name:<22} {0:>7}")
            continue
        print(f"{name:<22} {len(part):>7} {min(s['rss_mb'] for s in part):8.1f} {max(s['rss_mb'] for s in part):8.1f} "
              f"{slope_per_min([(s['t'], s['rss_mb']) for s in part]):9.2f} {min(s['fds'] for s in part):6d} "
              f"{max(s['fds'] for s in part):6d} {slope_per_min([(s['t'], s['fds']) for s in part]):8.2f} "
              f"{sum(s['cpu'] for s in part) / len(part):8.1f}")
    total_acked = load.acked()
    print(f"\nload: {total_acked} points acknowledged ({total_acked / max(1, samples[-1]['t'] if samples else 1):.0f}/s), "
          f"{load.devices_connected} device connections, {load.dashboards_connected} dashboard connections "
          f"({load.dashboard_frames} live frames read), {load.queries} queries")
    if warm and rest:
        rss_growth = max(s["rss_mb"] for s in rest) - max(s["rss_mb"] for s in warm)
        fd_growth = max(s["fds"] for s in rest) - max(s["fds"] for s in warm)
        if rss_growth > args.rss_tolerance_mb:
            problems.append(f"RSS after warm-up is {rss_growth:.1f} MB above the warm-up maximum "
                            f"(tolerance {args.rss_tolerance_mb:g} MB)")
        span_min = (rest[-1]["t"] - rest[0]["t"]) / 60
        slope = slope_per_min([(s["t"], s["rss_mb"]) for s in rest])
        if span_min >= 10 and slope > args.rss_slope_mb_per_min:
            problems.append(f"RSS grows {slope:.2f} MB/min over the {span_min:.0f} min after warm-up "
                            f"(tolerance {args.rss_slope_mb_per_min:g})")
        if fd_growth > args.fd_tolerance:
            problems.append(f"open fds after warm-up are {fd_growth} above the warm-up maximum "
                            f"(tolerance {args.fd_tolerance})")
    else:
        problems.append("too short: no samples after the warm-up to compare")
    if load.query_errors:
        problems.append(f"{len(load.query_errors)} queries failed, e.g. {load.query_errors[:3]}")
    if load.device_errors:
        print(f"client errors (not counted as failures unless points are missing): {load.device_errors[:5]}")
    if not alive:
        problems.append("the server died")
    if args.keep or problems:
        print(f"data dir and server log kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("\nFAIL:\n  " + "\n  ".join(problems))
        return 1
    print("\nPASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
