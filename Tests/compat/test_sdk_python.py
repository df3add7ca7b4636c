"""The real plexus-python SDK (from PyPI) against a real plexus-server.

Each SDK version runs in its own venv (sdk_support.sdk_python) and each simulated device
in its own temporary HOME, because the SDK keeps config.json (install_id, source_id) and
its buffer in ~/.plexus. Versions (what each sends was read from the published wheels):

* 0.6.2: the newest release with every feature of the public docs: install_id and
  auto-suffixed names, transport="http", clock correction from authenticated.server_time_ms.
* 0.16.0: the current release: telemetry acks, heartbeats.
* 0.1.0: the only release with `plexus start`, the agent that obeys dashboard commands.

Every test reads back what the server stored (query API, sessions, claims), not only
what the SDK returned.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from sdk_support import (Dashboard, is_telemetry, metrics_counter, new_home, read_config, run_sdk, sdk_env,
                         sdk_python, wait_until)

DAY_MS = 86_400_000


def raw_series(server, source_id, start_ms, end_ms, **params):
    """{metric: (timestamps_ms, values)} of every raw point of source_id in [start, end)."""
    d = server.query(source_id, interval="raw", start=int(start_ms), end=int(end_ms), **params)
    assert d["interval"] == "raw" and d["truncated"] is False, d
    return {m: (s["timestamp_ms"], s["value"]) for m, s in d["series"].items()}


def wait_for_series(server, source_id, start_ms, end_ms, expect_points, timeout=15, **params):
    """raw_series once it holds at least expect_points points in all (stored points are
    readable at once, but an SDK's last frame may still be on its way when it exits)."""
    def enough():
        series = raw_series(server, source_id, start_ms, end_ms, **params)
        return series if sum(len(ts) for ts, _ in series.values()) >= expect_points else None
    try:
        return wait_until(enough, timeout, 0.2, f"{expect_points} points of {source_id}")
    except AssertionError:
        return raw_series(server, source_id, start_ms, end_ms, **params)  # the caller's asserts show what is there


def now_ms():
    return time.time() * 1000


# ---- 0.6.2: identity (install_id, auto-suffixed names, persisted) ---------------------------

IDENTITY_DRIVER = r"""
import json, os
from plexus import Plexus
P = json.loads(os.environ["DRIVER_PARAMS"])
px = Plexus(source_id=P["source_id"]) if P.get("source_id") else Plexus()
px.send("alt", P["value"])
out = {"source_id": px.source_id}
px.close()
print(json.dumps(out))
"""


def run_identity(server, home, value, source_id="drone-01"):
    out, err = run_sdk("0.6.2", server, home, IDENTITY_DRIVER,
                       DRIVER_PARAMS=json.dumps({"source_id": source_id, "value": value}))
    return out["source_id"], err


def test_sdk_0_6_2_identity_suffix_persisted_across_restart(start_server, tmp_path):
    server = start_server()
    home1, home2 = new_home(tmp_path, "home1"), new_home(tmp_path, "home2")
    t0 = now_ms()

    # Two installs ask for the same name: the second gets drone-01_2 and keeps it.
    name1, err1 = run_identity(server, home1, 1.0)
    assert name1 == "drone-01", err1
    assert "[plexus] ✓ Connected to gateway as drone-01\n" in err1, err1
    name2, err2 = run_identity(server, home2, 2.0)
    assert name2 == "drone-01_2", err2
    assert "[plexus] ✓ Connected to gateway as drone-01_2\n" in err2, err2

    cfg1, cfg2 = read_config(home1), read_config(home2)
    assert re.fullmatch(r"[0-9a-f]{32}", cfg1.get("install_id") or ""), cfg1
    assert re.fullmatch(r"[0-9a-f]{32}", cfg2.get("install_id") or ""), cfg2
    assert cfg1["install_id"] != cfg2["install_id"]
    assert cfg2["source_id"] == "drone-01_2", cfg2  # the SDK persisted the assigned name

    claims = {c["source_id"]: c for c in server.get("/api/devices/claims")["claims"]}
    assert set(claims) == {"drone-01", "drone-01_2"}, claims
    assert claims["drone-01"]["install_id"] == cfg1["install_id"]
    assert claims["drone-01_2"]["install_id"] == cfg2["install_id"]
    assert claims["drone-01_2"]["requested"] == "drone-01"

    end = now_ms() + 60_000
    assert raw_series(server, "drone-01", t0 - 60_000, end)["alt"][1] == [1.0]
    assert raw_series(server, "drone-01_2", t0 - 60_000, end)["alt"][1] == [2.0]

    # Restart the server on the same data dir; the second install asks for "drone-01"
    # explicitly again (an explicit source_id beats config.json): it still gets drone-01_2.
    server.stop()
    server = start_server(data_dir=server.data_dir, key=server.key)
    name2_again, err = run_identity(server, home2, 3.0, source_id="drone-01")
    assert name2_again == "drone-01_2", err
    assert read_config(home2)["source_id"] == "drone-01_2"
    # And without an explicit name it uses the persisted one (no new claim).
    name2_cfg, err = run_identity(server, home2, 4.0, source_id=None)
    assert name2_cfg == "drone-01_2", err
    name1_again, err = run_identity(server, home1, 5.0)
    assert name1_again == "drone-01", err

    end = now_ms() + 60_000
    assert raw_series(server, "drone-01_2", t0 - 60_000, end)["alt"][1] == [2.0, 3.0, 4.0]
    assert raw_series(server, "drone-01", t0 - 60_000, end)["alt"][1] == [1.0, 5.0]
    assert {c["source_id"] for c in server.get("/api/devices/claims")["claims"]} == {"drone-01", "drone-01_2"}


# ---- 0.6.2: value types over the WebSocket ------------------------------------------------

TYPES_DRIVER = r"""
import json
from plexus import Plexus
px = Plexus(source_id="types-01")
px.send("temp", 21.5)
px.send("count", 7)
px.send("state", "RUNNING")
px.send("armed", True)
px.send("accel", {"x": 0.12, "y": -0.5, "z": 9.81})
px.send("angles", [0.5, 1.2, -0.3])
px.send_batch([("batch.n", 1.5), ("batch.s", "ok"), ("batch.pos", {"x": 1.0, "y": 2.0}), ("batch.on", False)],
              tags={"unit": "b"})
px.close()
print(json.dumps({"source_id": px.source_id}))
"""


def test_sdk_0_6_2_value_types_over_ws(server, tmp_path):
    home = new_home(tmp_path, "home")
    t0 = now_ms()
    out, err = run_sdk("0.6.2", server, home, TYPES_DRIVER)
    t1 = now_ms()
    assert out["source_id"] == "types-01"
    assert "falling back to POST" not in err, err
    assert "[plexus] ✓ Connected to gateway as types-01" in err, err

    s = wait_for_series(server, "types-01", t0 - 5_000, t1 + 5_000, 10 + 5)  # 10 points + 5 vector fields
    values = {m: v for m, (_, v) in s.items()}
    assert values == {
        "temp": [21.5], "count": [7], "state": ["RUNNING"], "armed": [True],
        "accel": [{"x": 0.12, "y": -0.5, "z": 9.81}], "accel.x": [0.12], "accel.y": [-0.5], "accel.z": [9.81],
        "angles": [[0.5, 1.2, -0.3]],
        "batch.n": [1.5], "batch.s": ["ok"], "batch.pos": [{"x": 1.0, "y": 2.0}], "batch.pos.x": [1.0],
        "batch.pos.y": [2.0], "batch.on": [False],
    }, values
    # Real types, not coerced (the SDK labels all of them class "metric").
    assert values["armed"][0] is True and values["batch.on"][0] is False
    assert isinstance(values["state"][0], str)
    for m, (ts, _) in s.items():
        assert t0 - 2_000 <= ts[0] <= t1 + 2_000, (m, ts, t0, t1)
    batch_ts = {s[m][0][0] for m in s if m.startswith("batch.")}
    assert len(batch_ts) == 1, s  # send_batch: one shared timestamp

    # Tags came through; non-numeric values are in the logs, numbers are not.
    tagged = raw_series(server, "types-01", t0 - 5_000, t1 + 5_000, **{"tag.unit": "b"})
    assert set(tagged) == {"batch.n", "batch.s", "batch.pos", "batch.pos.x", "batch.pos.y", "batch.on"}, tagged
    logs = server.get("/v1/sources/types-01/logs", tail=100)
    assert sorted(p["metric"] for p in logs) == sorted(["state", "armed", "accel", "angles", "batch.s", "batch.pos",
                                                        "batch.on"]), logs
    # All over the WebSocket: 10 points, nothing by HTTP.
    assert metrics_counter(server, "ws") == 10
    assert metrics_counter(server, "http") == 0


# ---- 0.6.2: transport="http" (gzip above 1 KB) ----------------------------------------------

HTTP_DRIVER = r"""
import json
from plexus import Plexus
px = Plexus(source_id="http-01", transport="http")
session = px._get_session()
post = session.post
calls = []
def spy(url, data=b"", headers=None, timeout=10.0):
    r = post(url, data=data, headers=headers, timeout=timeout)
    calls.append({"url": url, "bytes": len(data), "encoding": (headers or {}).get("Content-Encoding"),
                  "status": r.status_code, "body": r.text[:300]})
    return r
session.post = spy
px.send("temp", 20.5)
px.send("state", "idle")
px.send_batch([("m.%03d" % i, float(i)) for i in range(100)])
left = px.buffer_size()
px.close()
print(json.dumps({"calls": calls, "buffer": left}))
"""


def test_sdk_0_6_2_transport_http_with_gzip(server, tmp_path):
    home = new_home(tmp_path, "home")
    t0 = now_ms()
    out, err = run_sdk("0.6.2", server, home, HTTP_DRIVER)
    t1 = now_ms()
    calls = out["calls"]
    assert [c["url"] for c in calls] == [server.base_url + "/ingest"] * 3, calls
    assert all(c["status"] == 200 for c in calls), calls
    assert [c["encoding"] for c in calls] == [None, None, "gzip"], calls  # the batch body is > 1 KB
    assert json.loads(calls[2]["body"]) == {"success": True, "count": 100, "source_id": "http-01"}, calls
    assert out["buffer"] == 0
    assert "Connected to gateway" not in err, err  # no WebSocket at all

    s = wait_for_series(server, "http-01", t0 - 5_000, t1 + 5_000, 102)
    assert s.pop("temp")[1] == [20.5]
    assert s.pop("state")[1] == ["idle"]  # class "metric" with a string: accepted
    assert {m: v for m, (_, v) in s.items()} == {"m.%03d" % i: [float(i)] for i in range(100)}
    assert len({ts[0] for ts, _ in s.values()}) == 1
    assert metrics_counter(server, "http") == 102
    assert metrics_counter(server, "ws") == 0


# ---- 0.6.2: clock correction against a server whose clock is a day ahead ---------------------

CLOCK_DRIVER = r"""
import json, time
from plexus import Plexus
px = Plexus(source_id="clock-01")
for i in range(5):
    px.send("tick", float(i))
px.send("fixed", 1.0, timestamp=1700000000.5)
px.send_batch([("b.x", 1.0), ("b.y", 2.0)])
offset = px._clock_offset_ms
px.close()
print(json.dumps({"offset_ms": offset}))
"""


def test_sdk_0_6_2_clock_correction(start_server, tmp_path):
    # The device's clock is a day behind the server's: the SDK runs under libfaketime
    # (Debian's `faketime`), the server on the real clock.
    server = start_server()
    home = new_home(tmp_path, "home")
    t0 = now_ms()
    out, err = run_sdk("0.6.2", server, home, CLOCK_DRIVER, wrapper=["faketime", "-f", "-1d"],
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
    t1 = now_ms()
    assert abs(out["offset_ms"] - DAY_MS) < 5_000, out  # learnt from authenticated.server_time_ms

    s = wait_for_series(server, "clock-01", t0 - DAY_MS - 10_000, t1 + 10_000, 7)
    ts, values = s["tick"]
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0], s
    # Documented SDK quirk: the first send() builds its point before the socket has
    # authenticated, so it carries the uncorrected device clock (a day behind).
    assert t0 - DAY_MS - 2_000 <= ts[0] <= t1 - DAY_MS + 2_000, (ts, t0, t1)
    # Every later timestamp-less point is at server time (device time + 1 day).
    for t in ts[1:]:
        assert t0 - 5_000 <= t <= t1 + 5_000, (ts, t0, t1)
    for m in ("b.x", "b.y"):
        assert t0 - 5_000 <= s[m][0][0] <= t1 + 5_000, s
    # An explicit timestamp is stored as given.
    fixed = raw_series(server, "clock-01", 1_699_999_999_000, 1_700_000_002_000)
    assert fixed == {"fixed": ([1_700_000_000_500], [1.0])}, fixed


# ---- 0.16.0: telemetry acks -------------------------------------------------------------------

ACKS_DRIVER = r"""
import json, os, sqlite3
from plexus import Plexus
N = 300
px = Plexus(source_id="acks-01")
px.send("seq", 0.0)
acks = px._ws.acks_enabled
for i in range(1, N):
    px.send("seq", float(i))
px.send_batch([("seq", float(N + j), 1_700_000_000_000 + j) for j in range(50)])
# close() waits for the last acks, spills anything unacknowledged into the buffer,
# flushes, then closes the (SQLite) buffer: read buffer_size() at that last moment.
at_close = []
buffer_close = px._buffer.close
def buffer_close_spy():
    at_close.append(px.buffer_size())
    buffer_close()
px._buffer.close = buffer_close_spy
ws = px._ws
px.close()
after_close = at_close[0] if at_close else "buffer not closed"
unacked = ws.unacked_points
fresh = Plexus(source_id="acks-01")
reopened = fresh.buffer_size()
fresh.close()
files = {}
for name in os.listdir(os.path.expanduser("~/.plexus")):
    if name.endswith(".db"):
        db = sqlite3.connect(os.path.join(os.path.expanduser("~/.plexus"), name))
        files[name] = db.execute("select count(*) from points").fetchone()[0]
        db.close()
print(json.dumps({"acks": acks, "after_close": after_close, "unacked": unacked, "reopened": reopened, "files": files, "n": N}))
"""


def test_sdk_0_16_0_acks_nothing_left_in_buffer(server, tmp_path):
    home = new_home(tmp_path, "home")
    t0 = now_ms()
    out, err = run_sdk("0.16.0", server, home, ACKS_DRIVER)
    t1 = now_ms()
    assert out["acks"] is True, out  # device_auth acks:true answered by authenticated acks:true
    assert out["after_close"] == 0 and out["unacked"] == 0, out
    assert out["reopened"] == 0, out
    assert out["files"] and all(n == 0 for n in out["files"].values()), out
    assert "[plexus] ✓ Connected to gateway as acks-01" in err, err

    n = out["n"]
    live = wait_for_series(server, "acks-01", t0 - 5_000, t1 + 5_000, n)
    assert sorted(live["seq"][1]) == [float(i) for i in range(n)], "each point stored exactly once"
    old = raw_series(server, "acks-01", 1_700_000_000_000, 1_700_000_001_000)
    assert old["seq"] == ([1_700_000_000_000 + j for j in range(50)], [float(n + j) for j in range(50)]), old
    # Whatever could not go over the socket (a full ack window) went by HTTP; together, once.
    assert metrics_counter(server, "ws") + metrics_counter(server, "http") == n + 50


# ---- 0.16.0: heartbeats relayed to dashboards ---------------------------------------------------

IDLE_DRIVER = r"""
import json, sys, threading, os
from plexus import Plexus
threading.Timer(90, lambda: os._exit(3)).start()  # never outlive a broken test
px = Plexus(source_id="hb-01")
px.send("x", 1.0)
print(json.dumps({"connected": px._ws.is_authenticated}), flush=True)
sys.stdin.readline()  # idle until the test says so
px.close()
os._exit(0)
"""


@pytest.mark.slow
def test_sdk_0_16_0_heartbeat_reaches_dashboard(server, tmp_path):
    home = new_home(tmp_path, "home")
    (home / "driver.py").write_text(IDLE_DRIVER)
    dash = Dashboard(server)
    dash.send({"type": "subscribe", "source_id": "hb-01"})
    proc = subprocess.Popen([sdk_python("0.16.0"), str(home / "driver.py")], env=sdk_env(server, home), cwd=home,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        online = dash.wait_for(lambda f: f.get("type") == "source_status" and f.get("source_id") == "hb-01"
                               and f.get("status") == "online", 30, "hb-01 online")
        connected_at = time.monotonic()
        assert online["agent_version"] == "0.16.0", online
        # The SDK sends a heartbeat 30 s after authenticating (checked on a 1 s loop).
        hb = dash.wait_for(lambda f: f.get("type") == "heartbeat", 45, "heartbeat")
        waited = time.monotonic() - connected_at
        assert hb["source_id"] == "hb-01" and hb["agent_version"] == "0.16.0", hb
        assert 25 <= waited <= 40, waited
        assert server.get("/v1/sources/hb-01")["online"] is True
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        dash.wait_for(lambda f: f.get("type") == "source_status" and f.get("source_id") == "hb-01"
                      and f.get("status") == "offline", 15, "hb-01 offline")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        dash.close()


# ---- 0.1.0: `plexus start`, driven from a dashboard ---------------------------------------------

# Runs argv with SIGINT at its default action: a process started in the background by a
# non-interactive shell inherits SIGINT ignored, and `plexus start` then cannot be interrupted.
SIGINT_DEFAULT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"


def stop_agent(proc):
    """SIGINT (how 0.1.0 stops: SIGTERM does not end it), then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_sdk_0_1_0_config_discovery(server, tmp_path):
    """What `plexus start` asks the server before connecting: org id (verify-key) and,
    without PLEXUS_WS_URL, the WebSocket URL (/api/config)."""
    home = new_home(tmp_path, "home")
    out, _ = run_sdk("0.1.0", server, home, r"""
import json
from plexus.connector import PlexusConnector
c = PlexusConnector()
print(json.dumps({"org_id": c.org_id, "ws_url": c._get_ws_url()}))
""")
    assert out == {"org_id": "default", "ws_url": server.ws_url + "/ws/device"}, out
    assert read_config(home)["org_id"] == "default"


def test_sdk_0_1_0_plexus_start_dashboard_control(server, tmp_path):
    home = new_home(tmp_path, "home")
    dash = Dashboard(server)
    dash.send({"type": "subscribe", "source_id": "bench-01"})
    plexus = os.path.join(os.path.dirname(sdk_python("0.1.0")), "plexus")
    stdout_path = tmp_path / "agent.stdout"
    env = sdk_env(server, home, PLEXUS_WS_URL=server.ws_url)
    with open(stdout_path, "wb") as out, open(tmp_path / "agent.stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SIGINT_DEFAULT, plexus, "start", "--key", server.key,
                                 "--device-id", "bench-01"],
                                env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)

    def agent_output():
        return (stdout_path.read_text(errors="replace")[-3000:] + "\nstderr:\n"
                + (tmp_path / "agent.stderr").read_text(errors="replace")[-3000:])

    try:
        # Online, with its sensors (the system sensor: no I2C here).
        try:
            online = dash.wait_for(lambda f: f.get("type") == "source_status" and f.get("source_id") == "bench-01"
                                   and f.get("status") == "online", 60, "bench-01 online")
        except AssertionError as e:
            raise AssertionError(f"{e}\nagent output:\n{agent_output()}") from None
        assert online["agent_version"] == "0.1.0", online
        sensors = {s["name"]: s for s in online["sensors"]}
        assert "System" in sensors and "cpu.usage_pct" in sensors["System"]["metrics"], online
        assert server.get("/v1/sources/bench-01")["online"] is True
        # Its registration POST (no class, no timestamp, per-point source_id) landed.
        wait_until(lambda: "system.uptime" in server.get("/v1/sources/bench-01/metrics"), 15, 0.2,
                   "registration points")

        # start_stream → telemetry frames on the dashboard, points in the store.
        t_stream = now_ms()
        mark = dash.mark()
        sent = dash.control("start_stream", "bench-01", interval_ms=100)
        assert sent["frame"] == {"type": "start_stream", "source_id": "bench-01", "interval_ms": 100}, sent
        dash.wait_for(is_telemetry("bench-01"), 15, "telemetry", since=mark)

        # ping → pong relayed.
        mark = dash.mark()
        dash.control("ping", "bench-01")
        pong = dash.wait_for(lambda f: f.get("type") == "pong", 10, "pong", since=mark)
        assert pong.get("source_id") == "bench-01", pong

        # configure: delivered as a top-level frame. 0.1.0 looks the sensor up by its driver
        # name ("System"), so the "system" spelling reaches it but changes nothing; the
        # driver name does (the agent prints "Configured System").
        sent = dash.control("configure", "bench-01", sensor="system", config={"sample_rate": 2})
        assert sent["frame"] == {"type": "configure", "source_id": "bench-01", "sensor": "system",
                                 "config": {"sample_rate": 2}}, sent
        dash.control("configure", "bench-01", sensor="System", config={"sample_rate": 2})
        wait_until(lambda: "Configured System" in stdout_path.read_text(errors="replace"), 10, 0.2,
                   "'Configured System' in the agent's output")

        # A session recorded by the server while the device streams (0.1.0 never answers
        # start_session; the server records anyway).
        mark = dash.mark()
        started = dash.control("start_session", "bench-01")
        session_id = started["frame"]["session_id"]
        dash.wait_count(is_telemetry("bench-01"), 2, 15, "2 telemetry frames during the session", since=mark)
        stopped = dash.control("stop_session", "bench-01")
        assert stopped["frame"]["session_id"] == session_id, stopped
        session = server.get(f"/api/sessions/{session_id}")
        assert session["status"] == "completed" and session["source_id"] == "bench-01", session
        assert session["summary"]["point_count"] > 0, session
        assert "system.uptime" in session["summary"]["metrics"], session
        data = server.get(f"/api/sessions/{session_id}/data", interval="raw")
        assert data["series"].get("system.uptime", {}).get("value"), data

        # stop_stream "*" → the frames stop.
        dash.control("stop_stream", "bench-01", id="*")
        # A barrier instead of a pause: the agent handles commands in order on its one socket,
        # so once its pong for a later ping is here, stop_stream has been handled and every
        # frame it sent before arrived (one socket, in order).
        mark = dash.mark()
        dash.control("ping", "bench-01")
        dash.wait_for(lambda f: f.get("type") == "pong", 10, "pong after stop_stream", since=mark)
        quiet_from = dash.mark()
        # Absence can only be seen over time: streaming every 100 ms, ten intervals without a
        # frame show that it stopped.
        time.sleep(1.0)
        late = [f for f in dash.since(quiet_from) if is_telemetry("bench-01")(f)]
        assert late == [], late

        # Every point the dashboard saw live is in the store, same timestamp and value.
        seen = [(p["metric"], p["timestamp"], p["value"]) for f in dash.since(0) if is_telemetry("bench-01")(f)
                for p in f["points"]]
        assert len(seen) >= 20, seen
        stored = raw_series(server, "bench-01", t_stream - 5_000, now_ms() + 5_000)
        for metric, ts, value in seen:
            tss, values = stored.get(metric, ([], []))
            assert any(abs(t - ts) < 1 and v == value for t, v in zip(tss, values)), (metric, ts, value)
    finally:
        stop_agent(proc)
        dash.close()
