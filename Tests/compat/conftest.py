"""Fixtures for the compat tests: a real plexus-server process per test.

The binary comes from PLEXUS_SERVER_BIN (scripts/test sets it to the debug build).
Each test gets a fresh data dir, an API key made with `plexus-server keys create`,
and a server on a free loopback port, stopped (SIGTERM) when the test ends.
`start_server` starts more (or restarts one over the same data dir, or with extra
environment variables).
"""
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

READY_TIMEOUT_S = 60
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")


@pytest.fixture(scope="session")
def server_bin() -> str:
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
    key: str
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

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited within 15 s. Idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


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


def launch(server_bin, data_dir: Path, key: str, stderr_path: Path, env: dict | None = None) -> Server:
    """Starts plexus-server on a free port over data_dir; returns once it listens."""
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [server_bin, "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"],
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


@pytest.fixture
def start_server(server_bin, tmp_path) -> Iterator:
    """A factory: start_server(data_dir=None, key=None, env=None) -> Server.

    Without data_dir: a fresh data dir and a new key (write, read, admin). With the
    data_dir (and key) of an earlier server: a restart over the same data. `env` adds
    environment variables (e.g. PLEXUS_CLOCK_OFFSET_MS). Every server started is
    stopped when the test ends; `Server.stop()` stops one earlier.
    """
    started: list[Server] = []

    def start(data_dir: Path | None = None, key: str | None = None, env: dict | None = None) -> Server:
        if data_dir is None:
            data_dir = tmp_path / ("data" if not started else f"data-{len(started) + 1}")
            data_dir.mkdir()
        if key is None:
            key = create_key(server_bin, data_dir)
        name = "server.stderr" if not started else f"server-{len(started) + 1}.stderr"
        server = launch(server_bin, data_dir, key, tmp_path / name, env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes half a minute or more (waits out a device heartbeat)")
