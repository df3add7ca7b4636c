"""The Swift device executable `plexus` and the Python SDK 0.6.2 on one ~/.plexus/config.json.

Both read and write the same file (api_key, source_id, install_id, gateway_url, …). A device
that moves from one to the other must keep its identity: the same install_id, so the server
gives it back the name it claimed, never a new `_2`. Every check reads what the server
knows (who is online, the name claims, the stored points).
"""
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from sdk_support import Dashboard, new_home, read_config
from test_sdk_python import now_ms, raw_series, run_identity


def plexus_bin(server_bin: str) -> str:
    """The `plexus` built beside plexus-server (or $PLEXUS_BIN)."""
    path = os.environ.get("PLEXUS_BIN") or str(Path(server_bin).parent / "plexus")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not an executable: build it (swift build --product plexus) or set PLEXUS_BIN",
                    pytrace=False)
    return path


def swift_env(home: Path) -> dict:
    """No PLEXUS_* variable of the caller: the config file decides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXUS_")}
    env["HOME"] = str(home)
    return env


def run_plexus(plexus: str, home: Path, *args: str) -> str:
    r = subprocess.run([plexus, *args], env=swift_env(home), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"plexus {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def start_until_online(plexus: str, home: Path, dash: Dashboard, *args: str) -> str:
    """Runs `plexus start --simulate ARGS` until it is online; returns the name it got."""
    since = dash.mark()
    log = open(home / "plexus-start.log", "w")
    proc = subprocess.Popen([plexus, "start", "--simulate", *args], env=swift_env(home), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        online = dash.wait_for(lambda f: f.get("type") == "source_status" and f.get("status") == "online", 30,
                               "the Swift agent online", since=since)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, (home / "plexus-start.log").read_text()
        log.close()
    return online["source_id"]


def test_swift_and_python_0_6_2_share_one_config(start_server, server_bin, tmp_path):
    server = start_server()
    plexus = plexus_bin(server_bin)
    dash = Dashboard(server)
    t0 = now_ms()
    home_a, home_b = new_home(tmp_path, "a"), new_home(tmp_path, "b")

    # A: Python first. It claims drone-01 and writes install_id and source_id.
    name, err = run_identity(server, home_a, 1.0)
    assert name == "drone-01", err
    python_cfg = read_config(home_a)
    # The Swift executable takes over that file: the key is added, the identity kept.
    run_plexus(plexus, home_a, "login", "--key", server.key, "--server", server.base_url)
    cfg = read_config(home_a)
    # (0.6.2 does not save a source_id it was given explicitly, so none is stored yet.)
    assert cfg["install_id"] == python_cfg["install_id"] and cfg.get("source_id") == python_cfg.get("source_id"), cfg
    assert cfg["api_key"] == server.key and cfg["gateway_url"] == server.base_url, cfg
    # Same install_id: the server gives it drone-01 back, not a new name.
    assert start_until_online(plexus, home_a, dash, "--name", "drone-01") == "drone-01"
    assert read_config(home_a)["source_id"] == "drone-01"
    run_plexus(plexus, home_a, "send", "alt", "2")
    # And Python, back on the file Swift wrote, is still drone-01.
    name, err = run_identity(server, home_a, 3.0, source_id=None)
    assert name == "drone-01", err
    assert read_config(home_a)["install_id"] == python_cfg["install_id"]

    # B: Swift first, asking for the taken name: it gets drone-01_2 and saves it.
    assert start_until_online(plexus, home_b, dash, "--key", server.key, "--server", server.base_url,
                              "--name", "drone-01") == "drone-01_2"
    swift_cfg = read_config(home_b)
    assert swift_cfg["source_id"] == "drone-01_2", swift_cfg
    assert re.fullmatch(r"[0-9a-f]{32}", swift_cfg.get("install_id") or ""), swift_cfg
    # Python on the file Swift wrote: the same install, so the same name.
    name, err = run_identity(server, home_b, 4.0, source_id=None)
    assert name == "drone-01_2", err

    claims = {c["source_id"]: c["install_id"] for c in server.get("/api/devices/claims")["claims"]}
    assert claims == {"drone-01": python_cfg["install_id"], "drone-01_2": swift_cfg["install_id"]}, claims
    end = now_ms() + 60_000
    assert raw_series(server, "drone-01", t0 - 60_000, end)["alt"][1] == [1.0, 2.0, 3.0]
    assert raw_series(server, "drone-01_2", t0 - 60_000, end)["alt"][1] == [4.0]
    dash.close()
