"""Fixtures for the chaos tests: real plexus-server processes that the tests crash, starve
of disk, lock out of their database and flood with idle or stalled connections.

The binary comes from PLEXUS_SERVER_BIN (scripts/test sets it to the debug build). Every
server listens on 127.0.0.1 (port 0) over a fresh data dir, or the data dir of an earlier
one (a restart), and is stopped when the test ends. The tests that mount a tmpfs need
root; without it they skip, saying so (CI runs as root).
"""
import ctypes
import ctypes.util
import errno
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from plexus_server import Server, server_bin_path, server_factory  # noqa: E402

# 1,000 client sockets in this process plus the server's own (it inherits the limit).
WANTED_NOFILE = 8192


def pytest_configure(config):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < WANTED_NOFILE:
        target = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(WANTED_NOFILE, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@pytest.fixture(scope="session")
def server_bin() -> str:
    return server_bin_path()


@pytest.fixture(scope="session")
def serve_help(server_bin) -> str:
    r = subprocess.run([server_bin, "serve", "--help"], capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


@pytest.fixture
def require_flags(serve_help):
    """require_flags("--idle-timeout", …): fails (not skips) the test, naming the flags this
    binary does not know yet."""
    def check(*flags):
        missing = [f for f in flags if f not in serve_help]
        if missing:
            pytest.fail(f"this plexus-server does not know {', '.join(missing)} yet (not in `plexus-server serve --help`): "
                        f"the test needs a build with these options", pytrace=False)
    return check


@pytest.fixture
def start_server(server_bin, tmp_path) -> Iterator:
    """A factory: start_server(data_dir=None, key=None, env=None, args=None) -> Server
    (Tests/support/plexus_server.py, `server_factory`)."""
    with server_factory(server_bin, tmp_path) as start:
        yield start


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
MNT_DETACH = 2


@pytest.fixture
def tmpfs(tmp_path) -> Iterator:
    """A factory: tmpfs(size="8m") -> Path of a fresh tmpfs mount (unmounted at the end).
    Needs root (CAP_SYS_ADMIN): on EPERM the test is skipped with that reason."""
    mounts: list[Path] = []

    def mount(size: str = "8m") -> Path:
        target = tmp_path / f"tmpfs-{len(mounts) + 1}"
        target.mkdir()
        if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", 0, f"size={size}".encode()) != 0:
            e = ctypes.get_errno()
            if e == errno.EPERM:
                pytest.skip(f"mount -t tmpfs -o size={size} failed with EPERM (Operation not permitted): "
                            f"this test needs root (CAP_SYS_ADMIN) for a small tmpfs; CI runs as root")
            pytest.fail(f"mount -t tmpfs -o size={size} {target} failed: {os.strerror(e)}", pytrace=False)
        mounts.append(target)
        return target

    try:
        yield mount
    finally:
        for m in reversed(mounts):
            if _libc.umount2(str(m).encode(), 0) != 0:
                _libc.umount2(str(m).encode(), MNT_DETACH)  # a process still holds it: detach

