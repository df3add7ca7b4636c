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
from plexus_server import Server, server_bin_path, server_factory  # noqa: E402


@pytest.fixture(scope="session")
def server_bin() -> str:
    return server_bin_path()


@pytest.fixture
def start_server(server_bin, tmp_path) -> Iterator:
    """A factory: start_server(data_dir=None, key=None, env=None, args=None) -> Server
    (Tests/support/plexus_server.py, `server_factory`)."""
    with server_factory(server_bin, tmp_path) as start:
        yield start


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes half a minute or more (waits out a device heartbeat)")
