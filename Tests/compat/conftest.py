"""Fixtures for the compat tests: a real plexus-server process per test.

The binary comes from PLEXUS_SERVER_BIN (scripts/test sets it to the debug build).
Each test gets a fresh data dir, an API key made with `plexus-server keys create`,
and a server on a free loopback port, stopped (SIGTERM) when the test ends.
`start_server` starts more (or restarts one over the same data dir, or with extra
environment variables).
"""
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from plexus_server import Server, create_key, launch, server_bin_path  # noqa: E402


@pytest.fixture(scope="session")
def server_bin() -> str:
    return server_bin_path()


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
        # The SDK checks read the server's own counters at /metrics (off by default).
        server = launch(server_bin, data_dir, key, tmp_path / name, {"PLEXUS_PUBLIC_METRICS": "1", **(env or {})})
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
