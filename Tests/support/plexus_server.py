"""A real plexus-server process for the Python test suites (Tests/compat, Tests/browser, Tests/chaos).

PLEXUS_SERVER_BIN names the binary (scripts/test sets it to the debug build). `launch`
starts one on loopback over a data dir (with `args`: extra command-line options) and
returns once it prints where it listens; `Server.stop()` sends SIGTERM (SIGKILL after
15 s), `Server.kill9()` SIGKILL at once (a crash).
"""
import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

READY_TIMEOUT_S = 60
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")


def server_bin_path() -> str:
    """PLEXUS_SERVER_BIN, checked; fails the test run with a clear message otherwise."""
    path = os.environ.get("PLEXUS_SERVER_BIN")
    if not path:
        pytest.fail("PLEXUS_SERVER_BIN is not set: point it at the built plexus-server "
                    "(scripts/test does: $(swift build --show-bin-path)/plexus-server)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"PLEXUS_SERVER_BIN={path} is not an executable file", pytrace=False)
    return path


@dataclass
class Server:
    base_url: str
    key: str | None
    data_dir: Path
    proc: subprocess.Popen
    stderr_path: Path | None = None

    @property
    def ws_url(self) -> str:
        """ws://127.0.0.1:PORT (no path)."""
        return "ws://" + self.base_url.removeprefix("http://")

    def get(self, path, **params):
        r = requests.get(self.base_url + path, params=params, headers={"x-api-key": self.key}, timeout=30)
        assert r.status_code == 200, f"GET {path} {params}: HTTP {r.status_code}: {r.text[:500]}"
        return r.json()

    def query(self, source_id, **params):
        """GET /v1/sources/{id}/metrics/query; returns the decoded JSON."""
        return self.get(f"/v1/sources/{requests.utils.quote(source_id, safe='')}/metrics/query", **params)

    def kill9(self):
        """SIGKILL now, as a crash would; waits until the process is gone. Idempotent."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited within 15 s. Idempotent."""
        terminate(self.proc, 15)


def terminate(proc: subprocess.Popen, grace: float = 15) -> int:
    """SIGTERM, then SIGKILL if the process has not exited within `grace` seconds; its exit
    code. Idempotent. For every process a test starts (servers, brokers, bridges, Prometheus)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def _pump(stream, lines: "queue.Queue[str | None]"):
    # Keeps reading the server's stdout for its whole life so it never blocks on a full pipe.
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def create_key(server_bin, data_dir: Path) -> str:
    created = subprocess.run(
        [server_bin, "keys", "create", "--data-dir", str(data_dir), "--name", "test", "--scopes", "write,read,admin"],
        capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, f"keys create failed ({created.returncode}): {created.stderr}"
    key = created.stdout.strip()
    assert re.fullmatch(r"plx_[A-Za-z0-9]+", key), f"keys create printed {created.stdout!r}, expected the key alone"
    return key


def launch(server_bin, data_dir: Path, key: str | None, stderr_path: Path, env: dict | None = None,
           port: int = 0, args: list[str] | None = None) -> Server:
    """Starts plexus-server over data_dir on `port` (0: a free one); returns once it listens."""
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [server_bin, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning",
             *(args or [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True,
            env=None if env is None else {**os.environ, **env})
    server = Server(base_url="", key=key, data_dir=data_dir, proc=proc, stderr_path=stderr_path)
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()

    def output_so_far():
        return "stderr:\n" + stderr_path.read_text(errors="replace")[-3000:]

    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while not server.base_url:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"server printed no 'listening on http://127.0.0.1:PORT' within {READY_TIMEOUT_S} s\n"
                            + output_so_far(), pytrace=False)
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                proc.wait(10)
                pytest.fail(f"server exited with code {proc.returncode} before listening\n" + output_so_far(),
                            pytrace=False)
            m = LISTENING.search(line)
            if m:
                server.base_url = m.group(1)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def server_factory(server_bin, tmp_path: Path):
    """Yields start(data_dir=None, key=None, env=None, args=None) -> Server, for the suites'
    `start_server` fixtures.

    Without data_dir: a fresh data dir under tmp_path and a new key (write, read, admin).
    With the data_dir (and key) of an earlier server: a restart over the same data. `env`
    adds environment variables; the server's own counters at /metrics, off by default, are
    served (the suites read them). Every server started is stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path | None = None, key: str | None = None, env: dict | None = None,
              args: list[str] | None = None) -> Server:
        n = len(started) + 1
        if data_dir is None:
            data_dir = tmp_path / ("data" if n == 1 else f"data-{n}")
            data_dir.mkdir()
        if key is None:
            key = create_key(server_bin, data_dir)
        name = "server.stderr" if n == 1 else f"server-{n}.stderr"
        server = launch(server_bin, data_dir, key, tmp_path / name, {"PLEXUS_PUBLIC_METRICS": "1", **(env or {})},
                        args=args)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()
