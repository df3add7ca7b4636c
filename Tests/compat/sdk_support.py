"""Helpers for test_sdk_python.py: run the real plexus-python SDK (one venv per version,
one temporary HOME per simulated device) against a test server, and watch the server
from a dashboard WebSocket (/ws/browser).

Venvs: $PLEXUS_SDK_VENVS/sdk-venv-<version> (scripts/test sets PLEXUS_SDK_VENVS to
<repo>/.build and creates them); without the variable, <repo>/.build is used.
"""
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import websockets.sync.client

REPO = Path(__file__).resolve().parents[2]


def sdk_python(version: str) -> str:
    """The python of the venv that has plexus-python==version; fails the test if missing."""
    base = Path(os.environ.get("PLEXUS_SDK_VENVS") or REPO / ".build")
    python = base / f"sdk-venv-{version}" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: scripts/test creates it (python3 -m venv {python.parent.parent}; "
                    f"pip install plexus-python=={version})", pytrace=False)
    return str(python)


def sdk_env(server, home: Path, **extra) -> dict:
    """Environment of an SDK process: the test server for every URL, the key, HOME=home.
    No PLEXUS_* variable of the caller leaks in (in particular PLEXUS_QUIET stays unset,
    so the SDK prints its `[plexus] …` status lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXUS_")}
    env.update(
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        PLEXUS_API_KEY=server.key,
        PLEXUS_GATEWAY_URL=server.base_url,
        PLEXUS_GATEWAY_WS_URL=server.ws_url,
        PLEXUS_ENDPOINT=server.base_url,
    )
    env.update(extra)
    return env


def new_home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    return home


def run_sdk(version: str, server, home: Path, script: str, timeout: float = 90, wrapper: list[str] = (),
            **extra_env) -> tuple[dict, str]:
    """Runs `script` with the SDK version's python in HOME=home (under `wrapper`, e.g.
    faketime, when given). The script reports by printing one JSON object as its last
    stdout line; returns (that object, stderr)."""
    path = home / "driver.py"
    path.write_text(script)
    r = subprocess.run([*wrapper, sdk_python(version), str(path)], env=sdk_env(server, home, **extra_env), cwd=home,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"SDK {version} script exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert lines, f"SDK {version} script printed nothing\nstderr:\n{r.stderr}"
    return json.loads(lines[-1]), r.stderr


def read_config(home: Path) -> dict:
    return json.loads((home / ".plexus" / "config.json").read_text())


def wait_until(fn, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Calls fn until it returns something truthy (returned) or timeout seconds pass
    (AssertionError with the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {value!r}")
        time.sleep(interval)


def metrics_counter(server, transport: str) -> float:
    """plexus_points_ingested_total{transport=…} from GET /metrics (0 if absent)."""
    r = requests.get(server.base_url + "/metrics", timeout=30)
    assert r.status_code == 200, f"GET /metrics: {r.status_code} {r.text[:300]}"
    text = r.text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("plexus_points_ingested_total{") and f'transport="{transport}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class Dashboard:
    """A dashboard client on /ws/browser: authenticates with the key, keeps every frame
    it receives (decoded) in order; a reader thread does the receiving."""

    def __init__(self, server):
        self.frames: list[dict] = []
        self._cv = threading.Condition()
        self._closed = False
        url, kw = server.ws_url + "/ws/browser", dict(open_timeout=15, close_timeout=2, max_size=None)
        try:
            self.ws = websockets.sync.client.connect(url, legacy=True, **kw)  # websockets >= 17: no warning
        except TypeError:
            self.ws = websockets.sync.client.connect(url, **kw)
        self.ws.send(json.dumps({"type": "auth", "api_key": server.key}))
        threading.Thread(target=self._read, daemon=True).start()
        self.init = self.wait_for(lambda f: f.get("type") in ("init", "error"), 15, "init frame")
        assert self.init["type"] == "init", self.init

    def _read(self):
        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    continue
                with self._cv:
                    self.frames.append(json.loads(message))
                    self._cv.notify_all()
        except Exception:
            pass
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()

    def send(self, frame: dict):
        self.ws.send(json.dumps(frame))

    def mark(self) -> int:
        """Index of the next frame to arrive (for wait_for(since=…))."""
        with self._cv:
            return len(self.frames)

    def since(self, index: int) -> list[dict]:
        with self._cv:
            return list(self.frames[index:])

    def wait_for(self, pred, timeout: float, what: str = "frame", since: int = 0) -> dict:
        """The first frame at index ≥ since matching pred, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cv:
            while True:
                while i < len(self.frames):
                    if pred(self.frames[i]):
                        return self.frames[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    recent = [json.dumps(f)[:200] for f in self.frames[since:][-8:]]
                    raise AssertionError(f"dashboard: no {what} within {timeout} s"
                                         f"{' (socket closed)' if self._closed else ''}; last frames: {recent}")
                self._cv.wait(left)

    def wait_count(self, pred, n: int, timeout: float, what: str = "frames", since: int = 0) -> list[dict]:
        """Waits until at least n frames at index ≥ since match pred; returns them."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                found = [f for f in self.frames[since:] if pred(f)]
                if len(found) >= n:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AssertionError(f"dashboard: {len(found)} of {n} {what} within {timeout} s"
                                         f"{' (socket closed)' if self._closed else ''}")
                self._cv.wait(left)

    def control(self, command: str, source_id: str, timeout: float = 15, **fields) -> dict:
        """Sends a control frame; returns the server's `control_sent` reply (fails on `error`)."""
        start = self.mark()
        self.send({"type": command, "source_id": source_id, **fields})
        reply = self.wait_for(
            lambda f: (f.get("type") == "control_sent" and f.get("command") == command)
            or f.get("type") == "error", timeout, f"control_sent for {command}", since=start)
        assert reply["type"] == "control_sent", f"{command}: {reply}"
        assert reply["source_id"] == source_id and reply["frame"]["type"] == command, reply
        return reply

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def is_telemetry(source_id: str):
    return lambda f: f.get("type") == "telemetry" and f.get("source_id") == source_id
