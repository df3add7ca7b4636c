"""End-to-end: the dashboard in headless Chromium against a real plexus-server.

The tests run in file order and share one server and its state (accounts, a
simulated device, a recorded session), like one person's first session with Plexus.
"""
import csv
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from simdevice import SimDevice, try_auth

EMAIL, PASSWORD = "ada@example.com", "correct horse 1"
DEVICE = "sim-rig-1"
ctx: dict = {}


def signup(b, email, password, name, path="/signup"):
    b.go(path)
    b.el("input[name=name]").send_keys(name)
    b.el("input[name=email]").send_keys(email)
    b.el("input[name=password]").send_keys(password)
    b.el("form button[type=submit]").click()
    b.wait(lambda: b.d.current_url.endswith("/devices"), msg="sign-up did not land on /devices")
    b.el("#topbar")


def chart(b, title):
    for c in b.js("return window.__plexus.charts()"):
        if c["title"] == title:
            return c
    return None


def test_signed_out_browser_gets_signin(browsers):
    b = browsers("anon")
    b.allowed.append("/api/auth/me - Failed to load resource: the server responded with a status of 401")
    b.go("/devices")
    b.wait(lambda: "/signin" in b.d.current_url, msg="signed-out /devices did not go to /signin")
    assert b.el("input[type=password]")
    assert not b.el("#topbar", timeout=1) if False else b.js("return document.getElementById('topbar').hidden")
    b.shot("signin")
    b.go("/sessions/whatever")
    b.wait(lambda: "/signin" in b.d.current_url)


def test_signin_shows_api_error(browsers, server):
    b = browsers("anon")
    b.allowed += ["/api/auth/signin - Failed to load resource", "/api/auth/me - Failed to load resource"]
    b.go("/signin")
    b.el("input[name=email]").send_keys("nobody@example.com")
    b.el("input[name=password]").send_keys("wrong password")
    b.el("form button[type=submit]").click()
    err = b.el(".form-error")
    assert err.text.strip(), "no error message shown"
    assert "/signin" in b.d.current_url


def test_signup_shows_api_error(browsers):
    b = browsers("anon")
    b.allowed.append("/api/auth/signup - Failed to load resource")
    b.go("/signup")
    b.el("input[name=email]").send_keys("short@example.com")
    pw = b.el("input[name=password]")
    b.js("arguments[0].removeAttribute('minlength')", pw)  # let the server judge
    pw.send_keys("short")
    b.el("form button[type=submit]").click()
    assert "8" in b.el(".form-error").text
    b.go("/invite/not-a-real-token")
    assert "not valid" in b.el(".form-error").text or "expired" in b.el(".form-error").text
    b.allowed.append("/api/invites/not-a-real-token - Failed to load resource")


def test_signup_and_create_key(browsers):
    b = browsers("main")
    b.allowed.append("/api/auth/me - Failed to load resource: the server responded with a status of 401")
    b.go("/signup")
    b.shot("signup")
    signup(b, EMAIL, PASSWORD, "Ada")
    b.go("/settings")
    b.el("input[aria-label='Key name']").send_keys("dev")
    b.el(".inline-form button[type=submit]").click()
    key = b.el("#new-key").text.strip()
    assert key.startswith("plx_") and len(key) > 10, key
    ctx["key"] = key
    rows = b.els("table.keys tbody tr")
    assert any("dev" in r.text for r in rows)
    cmd = b.el("#setup-cmd").text
    assert cmd.endswith("--key " + key) and "/setup | bash -s --" in cmd, cmd
    b.shot("settings")


def test_device_appears_online(browsers, server):
    b = browsers("main")
    b.go("/devices")
    b.el("table.devices")
    dev = SimDevice(server.ws_url, ctx["key"], DEVICE).start()
    ctx["dev"] = dev
    row = b.el(f"tr[data-source='{DEVICE}']", timeout=15)
    b.wait(lambda: "online" in b.el(f"tr[data-source='{DEVICE}']").text, msg="device row never showed online")
    text = b.el(f"tr[data-source='{DEVICE}']").text
    assert "sim-python" in text and "9.9.9" in text and "IMU" in text, text
    b.shot("devices")
    # live offline/online without reloading
    dev.stop()
    b.wait(lambda: "offline" in b.el(f"tr[data-source='{DEVICE}']").text, msg="offline never shown")
    dev = SimDevice(server.ws_url, ctx["key"], DEVICE).start()
    ctx["dev"] = dev
    b.wait(lambda: "online" in b.el(f"tr[data-source='{DEVICE}']").text.split("\n")[0] + b.el(f"tr[data-source='{DEVICE}']").text)
    assert row is not None


SDK_DEVICE = "py-sdk-rig"
# The real plexus-python (0.16.0, current) as a device: it sends until its stdin closes.
SDK_DRIVER = r"""
import sys, threading, time
from plexus import Plexus
px = Plexus(source_id="py-sdk-rig")
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
i = 0
while not stop.is_set():
    px.send("battery", 100.0 - (i % 50) * 0.5)
    i += 1
    time.sleep(0.05)  # the device's sending rate (20 points/s), not a synchronisation
px.close()
print("sent", i, flush=True)
"""


def sdk_python(version):
    base = Path(os.environ.get("PLEXUS_SDK_VENVS") or Path(__file__).resolve().parents[2] / ".build")
    python = base / f"sdk-venv-{version}" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: scripts/test creates it (pip install plexus-python=={version})", pytrace=False)
    return str(python)


def test_python_sdk_device_streams_live(browsers, server, tmp_path):
    """A real SDK (not the simulator) connects, shows online, and its chart moves live."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXUS_")}
    env.update(HOME=str(tmp_path), PYTHONUNBUFFERED="1", PLEXUS_API_KEY=ctx["key"],
               PLEXUS_GATEWAY_URL=server.base_url, PLEXUS_GATEWAY_WS_URL=server.ws_url, PLEXUS_ENDPOINT=server.base_url)
    proc = subprocess.Popen([sdk_python("0.16.0"), "-c", SDK_DRIVER], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        b = browsers("main")
        b.go("/devices")
        b.wait(lambda: b.els(f"tr[data-source='{SDK_DEVICE}']") and "online" in b.el(f"tr[data-source='{SDK_DEVICE}']").text,
               timeout=30, msg="the plexus-python device never showed online")
        b.el(f"tr[data-source='{SDK_DEVICE}'] a").click()
        b.wait(lambda: b.d.current_url.endswith(f"/devices/{SDK_DEVICE}"))
        b.wait(lambda: chart(b, "battery") and chart(b, "battery")["series"][0]["n"] > 3, timeout=30,
               msg="battery chart got no points from the SDK")
        c1 = chart(b, "battery")
        b.wait(lambda: chart(b, "battery")["series"][0]["n"] > c1["series"][0]["n"]
               and chart(b, "battery")["series"][0]["lastT"] > c1["series"][0]["lastT"], msg="the SDK's points stopped")
        b.shot("device-python-sdk")
    finally:
        out, err = proc.communicate(input="", timeout=60)
    assert proc.returncode == 0 and out.startswith("sent"), (proc.returncode, out, err[-2000:])
    # What the chart showed was also stored.
    r = requests.get(f"{server.base_url}/v1/sources/{SDK_DEVICE}/metrics/query",
                     params={"metrics": "battery", "interval": "raw", "start": 0, "end": 99999999999999},
                     headers={"x-api-key": ctx["key"]}, timeout=30)
    assert r.status_code == 200, r.text
    stored = r.json()["series"]["battery"]["value"]
    assert len(stored) == int(out.split()[1]), (len(stored), out)
    b.go("/devices")
    b.wait(lambda: "offline" in b.el(f"tr[data-source='{SDK_DEVICE}']").text, msg="the SDK device never went offline")


def test_live_chart_updates(browsers):
    b = browsers("main")
    b.el(f"tr[data-source='{DEVICE}'] a").click()
    b.wait(lambda: b.d.current_url.endswith(f"/devices/{DEVICE}"))
    b.el("section.metric-card[data-metric='temp'] canvas")
    b.wait(lambda: chart(b, "temp") and chart(b, "temp")["series"][0]["n"] > 3, msg="temp chart got no points")
    c1 = chart(b, "temp")

    def grew():
        c2 = chart(b, "temp")
        return (c2["series"][0]["n"] > c1["series"][0]["n"] and c2["drawCount"] > c1["drawCount"]
                and c2["series"][0]["lastT"] > c1["series"][0]["lastT"])
    b.wait(grew, msg="the live chart stopped: no new points, draws or times")
    # every value type gets its own kind of chart
    b.wait(lambda: chart(b, "accel") and chart(b, "mode") and chart(b, "wave"), msg="vector/state/array charts missing")
    assert chart(b, "accel")["kind"] == "line" and {s["name"] for s in chart(b, "accel")["series"]} == {"x", "y", "z"}
    assert chart(b, "mode")["kind"] == "state"
    assert chart(b, "wave")["kind"] == "wave" and chart(b, "wave")["wave"] == 64
    # pixels change as points arrive
    canvas = b.el("section.metric-card[data-metric='temp'] canvas")
    p1 = canvas.screenshot_as_png
    b.wait(lambda: canvas.screenshot_as_png != p1, msg="chart pixels did not change")
    b.shot("device")


def test_stream_controls_reach_device(browsers):
    b, dev = browsers("main"), ctx["dev"]
    metrics = b.el("input[aria-label='Metrics to stream (comma separated)']")
    metrics.send_keys("temp, accel")
    interval = b.el("input[aria-label='Interval in milliseconds']")
    interval.clear(); interval.send_keys("40")
    b.el("button[data-ctl=stop_stream]").click()
    f = dev.wait_frame("stop_stream")
    assert f["source_id"] == DEVICE
    status = lambda: b.el("button[data-ctl=start_stream]").find_element(By.XPATH, "..").text  # noqa: E731
    # Confirmed by the device's telemetry ceasing (the spec has no reply frame for it).
    b.wait(lambda: "stopped ✓" in status(), timeout=20, msg="stop_stream never showed 'stopped ✓'")
    b.el("button[data-ctl=start_stream]").click()
    f = dev.wait_frame("start_stream")
    assert f["interval_ms"] == 40 and f["metrics"] == ["temp", "accel"], f
    b.wait(lambda: "streaming" in status(), msg="start_stream never showed 'streaming'")


def test_session_controls_reach_device(browsers):
    b, dev = browsers("main"), ctx["dev"]
    b.el("input[aria-label='Session name']").send_keys("Run A")
    b.el("button[data-ctl=start_session]").click()
    f = dev.wait_frame("start_session")
    assert f["session_name"] == "Run A" and f["session_id"], f
    ctx["session_id"] = f["session_id"]
    rec = b.el(".rec")
    assert "REC" in rec.text
    sess_status = lambda: b.el("button[data-ctl=start_session]").find_element(By.XPATH, "..").text  # noqa: E731
    b.wait(lambda: "device confirmed" in sess_status(), msg="session_started not shown")
    # The badge's clock runs: it leaves 0:00.
    b.wait(lambda: any(f"0:0{k}" in b.el(".rec").text for k in range(1, 10)), msg="the REC badge's time does not run")
    b.shot("device-recording")
    b.el("button[data-ctl=stop_session]").click()
    f = dev.wait_frame("stop_session")
    assert f["session_id"] == ctx["session_id"]
    b.wait(lambda: "stopped · device confirmed" in sess_status(), msg="session_stopped not shown")
    b.wait(lambda: not b.els(".rec") or not b.els(".rec")[0].is_displayed())
    # ping and round trip
    b.el("button[data-ctl=ping]").click()
    dev.wait_frame("ping")
    b.wait(lambda: "round trip" in b.el("button[data-ctl=ping]").find_element(By.XPATH, "..").text, msg="pong not shown")
    # configure
    b.el("input[aria-label='Sensor name']").send_keys("IMU")
    b.el("input[aria-label='Sample rate (Hz)']").send_keys("50")
    b.el("button[data-ctl=configure]").click()
    f = dev.wait_frame("configure")
    assert f["sensor"] == "IMU" and f["config"] == {"sample_rate": 50}, f


def test_session_page_and_playback(browsers):
    b = browsers("main")
    b.go("/sessions")
    b.el(f"tr[data-session='{ctx['session_id']}']")
    b.shot("sessions")
    b.el(f"tr[data-session='{ctx['session_id']}'] a").click()
    b.wait(lambda: "/sessions/" in b.d.current_url)
    assert b.el("h1").text == "Run A"
    b.el("section.metric-card[data-metric='temp'] canvas")
    b.wait(lambda: chart(b, "temp") and chart(b, "temp")["series"][0]["n"] > 10, msg="session has too few temp points")
    pb = lambda: b.js("return window.__plexus.playback && {t: window.__plexus.playback.t, t0: window.__plexus.playback.t0, t1: window.__plexus.playback.t1}")  # noqa: E731
    start = pb()
    assert start["t"] == start["t0"]
    b.el("button.play").click()
    b.wait(lambda: pb()["t"] > start["t"], msg="playback cursor did not move")
    # all charts share the cursor
    cursors = {c["title"]: c["cursor"] for c in b.js("return window.__plexus.charts()")}
    assert len(set(cursors.values())) == 1, cursors
    b.el("button.play").click()  # pause
    # scrub with the keyboard
    scrub = b.el("input.scrub")
    scrub.send_keys(Keys.END)
    b.wait(lambda: pb()["t"] == pb()["t1"])
    assert scrub.get_attribute("value") == "10000"
    # the arrow keys on a chart move the shared cursor, and the slider follows it
    canvas = b.el("section.metric-card[data-metric='temp'] canvas")
    canvas.send_keys(Keys.HOME)
    b.wait(lambda: pb()["t"] == pb()["t0"] or scrub.get_attribute("value") != "10000", msg="Home on a chart did not move the cursor")
    for _ in range(5):
        canvas.send_keys(Keys.ARROW_RIGHT)
    b.wait(lambda: 0 < int(scrub.get_attribute("value")) < 10000, msg="the slider did not follow the chart's cursor")
    b.shot("session")


def test_csv_export(browsers):
    b = browsers("main")
    link = b.el("#export-csv")
    href = link.get_attribute("href")
    assert href.endswith(f"/api/sessions/{ctx['session_id']}/export?format=csv")
    r = b.fetch(f"/api/sessions/{ctx['session_id']}/export?format=csv")
    assert r["status"] == 200, r
    rows = list(csv.DictReader(io.StringIO(r["text"])))
    assert rows and set(rows[0]) >= {"timestamp", "timestamp_ms", "source_id", "metric", "value", "tags"}
    assert {row["metric"] for row in rows} >= {"temp", "accel"}
    assert all(row["source_id"] == DEVICE for row in rows)
    j = b.fetch(f"/api/sessions/{ctx['session_id']}/export?format=jsonl")
    assert j["status"] == 200 and json.loads(j["text"].splitlines()[0])["source_id"] == DEVICE


def test_compare_sessions(browsers):
    b, dev = browsers("main"), ctx["dev"]
    # a second recording over HTTP commands from the page (cookie + CSRF)
    r = b.fetch(f"/v1/sources/{DEVICE}/commands", "POST", {"command": "start_session", "params": {"session_name": "Run B"}})
    assert r["status"] == 200, r
    sid_b = json.loads(r["text"])["frame"]["session_id"]

    def recorded():
        got = b.fetch(f"/api/sessions/{sid_b}")
        return got["status"] == 200 and {"temp", "accel"} <= set(json.loads(got["text"])["summary"]["metrics"])
    b.wait(recorded, msg="session B recorded no temp and accel points")
    r = b.fetch(f"/v1/sources/{DEVICE}/commands", "POST", {"command": "stop_session"})
    assert r["status"] == 200, r
    b.go(f"/sessions/compare?a={ctx['session_id']}&b={sid_b}")
    b.el("section.metric-card canvas")
    b.wait(lambda: any(len(c["series"]) == 2 and all(s["n"] > 0 for s in c["series"]) for c in b.js("return window.__plexus.charts()")))
    b.shot("compare")
    ctx["session_b"] = sid_b
    assert dev
    # delete session B (with confirmation)
    b.go(f"/sessions/{sid_b}")
    b.el("button.btn.danger").click()
    b.el("#confirm-delete").click()
    b.wait(lambda: b.d.current_url.rstrip("/").endswith("/sessions"))
    b.el(f"tr[data-session='{ctx['session_id']}']")
    assert not b.els(f"tr[data-session='{sid_b}']")
    assert b.fetch(f"/api/sessions/{sid_b}")["status"] == 404
    b.allowed.append(f"/api/sessions/{sid_b} - Failed to load resource: the server responded with a status of 404")


def test_explore(browsers):
    b = browsers("main")
    b.go(f"/explore?source={DEVICE}&metric=temp&range=5m")
    b.el("section.metric-card[data-metric='temp'] canvas")
    b.wait(lambda: chart(b, "temp") and chart(b, "temp")["series"][0]["n"] > 5)
    n1 = chart(b, "temp")["series"][0]["n"]
    b.wait(lambda: chart(b, "temp")["series"][0]["n"] > n1, msg="live tail did not add points")
    b.shot("explore")
    # drag to zoom: the range becomes absolute and narrower
    canvas = b.el("section.metric-card[data-metric='temp'] canvas")
    before = chart(b, "temp")
    w = canvas.size["width"]  # the device has data only in the newest part of the window: drag over the right end
    ActionChains(b.d).move_to_element_with_offset(canvas, int(w * 0.30), 0).click_and_hold().move_by_offset(int(w * 0.18), 0).release().perform()
    b.wait(lambda: "range=abs" in b.d.current_url, msg="drag did not zoom")
    b.wait(lambda: chart(b, "temp") and not chart(b, "temp")["follow"])
    after = chart(b, "temp")
    assert after["t1"] - after["t0"] < (before["t1"] - before["t0"]) / 2, (before, after)
    # double-click on a state chart (a string metric) goes back to the default range too
    b.go(f"/explore?source={DEVICE}&metric=mode&range=abs&start={int(after['t0'])}&end={int(after['t1'])}")
    b.wait(lambda: chart(b, "mode") is not None, msg="no state chart for mode")
    ActionChains(b.d).double_click(b.el("section.metric-card[data-metric='mode'] canvas")).perform()
    b.wait(lambda: "range=15m" in b.d.current_url, msg="double-click on a state chart did not reset the range")
    b.go(f"/explore?source={DEVICE}&metric=temp&range=1h&interval=1m")
    b.wait(lambda: chart(b, "temp") and chart(b, "temp")["series"] and chart(b, "temp")["series"][0]["band"])


def test_second_org_sees_nothing(browsers, server):
    o = browsers("other")
    o.allowed.append("/api/auth/me - Failed to load resource: the server responded with a status of 401")
    o.allowed.append("Failed to load resource: the server responded with a status of 404")
    signup(o, "eve@example.com", "another pass 9", "Eve")
    o.el("table.devices")
    # Once the dashboard socket's `init` is in, the page knows every online device it may see.
    o.wait(lambda: o.js("return window.__plexus.live && window.__plexus.live.status") == "live", msg="no init")
    assert DEVICE not in o.js("return [...window.__plexus.live.online.keys()]")
    assert not o.els(f"tr[data-source='{DEVICE}']")
    assert DEVICE not in o.el("main").text
    r = o.fetch("/v1/sources")
    assert r["status"] == 200 and DEVICE not in r["text"], r
    r = o.fetch("/api/sessions")
    assert r["status"] == 200 and ctx["session_id"] not in r["text"], r
    assert o.fetch(f"/api/sessions/{ctx['session_id']}")["status"] == 404
    r = o.fetch("/api/keys")
    assert r["status"] == 200 and json.loads(r["text"])["keys"] == [], r
    o.go("/sessions")
    # The list has loaded when its rows or its empty message show.
    o.wait(lambda: o.els("table.sessions tbody tr") or o._vis("div.empty"), msg="sessions never loaded")
    assert "Run A" not in o.el("main").text
    o.go("/settings")
    o.wait(lambda: "No API keys yet." in o.el("table.keys").text, msg="the other organisation's keys never loaded")
    assert "dev" not in o.el("table.keys").text.split()
    o.shot("other-org")


def settled_width(b, timeout=10):
    """[page width, window width] once two measurements two animation frames apart agree
    (fonts, data and charts laid out), polled with a deadline."""
    measure = ("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => "
               "done([document.documentElement.scrollWidth, window.innerWidth])))")
    last = b.d.execute_async_script(measure)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = b.d.execute_async_script(measure)
        if now == last:
            return now
        last = now
    return last


def test_viewer_cannot_control(browsers, server):
    b = browsers("main")
    b.go("/settings")
    sel = b.el("select[aria-label='Role for the invite']")
    sel.send_keys("viewer")
    b.js("arguments[0].value='viewer'", sel)
    b.wait(lambda: b.els("section[aria-labelledby=mem-h] button.primary"))
    b.el("section[aria-labelledby=mem-h] button.primary").click()
    url = b.el("#invite-url").text.strip()
    assert "/invite/" in url
    v = browsers("viewer")
    v.allowed.append("/api/auth/me - Failed to load resource: the server responded with a status of 401")
    v.allowed.append("Failed to load resource: the server responded with a status of 403")
    v.d.get(url)
    v.wait(lambda: "viewer" in v.el(".auth-card").text, msg="invite page does not show the role")
    v.shot("invite")
    v.el("a.btn.primary").click()
    v.wait(lambda: "/signup" in v.d.current_url)
    v.el("input[name=name]").send_keys("Vic")
    v.wait(lambda: "viewer" in v.el(".auth-card").text)
    v.shot("invite-signup")
    v.el("input[name=email]").send_keys("vic@example.com")
    v.el("input[name=password]").send_keys("viewer pass 1")
    v.el("form button[type=submit]").click()
    v.wait(lambda: v.d.current_url.endswith("/devices"))
    v.el(f"tr[data-source='{DEVICE}']")  # same organisation
    v.go(f"/devices/{DEVICE}")
    v.el("section.metric-card canvas")
    v.wait(lambda: v.js("return window.__plexus.live.status") == "live")
    v.wait(lambda: v.els("[data-ctl]"), msg="control buttons missing")
    buttons = v.els("[data-ctl]")
    assert buttons, "control buttons missing"
    assert all(not btn.is_enabled() for btn in buttons), "viewer has enabled control buttons"
    v.shot("viewer-device")
    r = v.fetch(f"/v1/sources/{DEVICE}/commands", "POST", {"command": "ping"})
    assert r["status"] == 403, r
    before = len(ctx["dev"].frames("stop_stream"))
    # The server answers a viewer's control with a FORBIDDEN error frame instead of relaying
    # it: once that frame is here, the control has been decided, and the device must not
    # have it.
    v.js("window.__refused = []; window.__plexus.live.addEventListener('error-frame', "
         "(e) => window.__refused.push(e.detail.code))")
    v.js(f"window.__plexus.live.send({{type:'stop_stream', source_id:'{DEVICE}', id:'*'}})")
    v.wait(lambda: "FORBIDDEN" in v.js("return window.__refused"), msg="no FORBIDDEN answer to a viewer's control")
    assert len(ctx["dev"].frames("stop_stream")) == before, "viewer's control reached the device"


def test_revoke_key(browsers, server):
    b = browsers("main")
    b.go("/settings")
    row = b.el("table.keys tbody tr")
    btn = row.find_element(By.CSS_SELECTOR, "button.danger")
    btn.click()
    btn.click()
    b.wait(lambda: "revoked" in b.el("table.keys tbody tr").text)
    # Refused at once, or within the server's one-second key cache at most.
    b.wait(lambda: try_auth(server.ws_url, ctx["key"], "sim-rig-2").get("type") == "error", timeout=5,
           msg="the revoked key still signs a device in")


def test_cli_approval(browsers, server):
    """The CLI's browser sign-in: approve, then the browser goes to the loopback callback with a key."""
    got = {}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            got.setdefault("path", self.path)
            self.send_response(200); self.send_header("content-type", "text/html"); self.end_headers()
            self.wfile.write(b"<!doctype html><link rel=icon href='data:,'><title>ok</title><p>You can close this tab.")

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cb = f"http://127.0.0.1:{srv.server_address[1]}/callback"
    b = browsers("main")
    b.go(f"/auth/cli?state=st-123&callback={urllib.parse.quote(cb)}&name=plexus-cli")
    b.wait(lambda: "plexus-cli" in b.el("main").text, msg="CLI page does not name the client")
    b.shot("cli-approve")
    b.el("main button.primary").click()
    b.wait(lambda: "path" in got, msg="callback never reached")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(got["path"]).query)
    assert q["state"] == ["st-123"] and q["key"][0].startswith("plx_"), got
    r = requests.get(server.base_url + "/v1/sources", headers={"x-api-key": q["key"][0]}, timeout=10)
    assert r.status_code == 200 and DEVICE in r.text
    srv.shutdown(); srv.server_close()


def test_phone_layout_and_keyboard(browsers):
    """Every page fits a phone's width (no sideways scrolling), with a screenshot of each;
    the keyboard reaches the skip link and the main navigation, and Enter follows a link."""
    b = browsers("main")
    try:
        b.d.set_window_size(390, 844)
        for path, name in [("/devices", "devices"), (f"/devices/{DEVICE}", "device"), ("/sessions", "sessions"),
                           ("/explore", "explore"), ("/settings", "settings")]:
            b.go(path)
            b.el("main h1")
            over = settled_width(b)
            assert over[0] <= over[1] + 1, f"{path} scrolls sideways on a phone: {over}"
            b.shot(f"phone-{name}")
    finally:
        b.d.set_window_size(1400, 1000)
    b.go("/devices")
    b.el("table.devices")
    b.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    body = b.d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert b.js("return document.activeElement.className") == "skip"
    focused = []
    for _ in range(8):
        ActionChains(b.d).send_keys(Keys.TAB).perform()
        focused.append(b.js("return document.activeElement.textContent.trim()"))
        if focused[-1] == "Sessions":
            break
    assert "Sessions" in focused, focused
    ActionChains(b.d).send_keys(Keys.ENTER).perform()
    b.wait(lambda: b.d.current_url.endswith("/sessions"), msg="Enter on the Sessions link did not navigate")


def test_change_password(browsers):
    b = browsers("main")
    b.allowed.append("/api/auth/password - Failed to load resource")  # the wrong-password attempt below
    b.go("/settings")
    cur = b.el("input[autocomplete=current-password]")
    new = b.el("input[autocomplete=new-password]")
    cur.send_keys("not my password"); new.send_keys("brand new pass 2")
    b.el("section[aria-labelledby=acct-h] button[type=submit]").click()
    assert b.el("section[aria-labelledby=acct-h] .form-error").text.strip()
    cur.clear(); cur.send_keys(PASSWORD)
    new.clear(); new.send_keys("brand new pass 2")
    b.el("section[aria-labelledby=acct-h] button[type=submit]").click()
    b.el("section[aria-labelledby=acct-h] .ok")
    ctx["password"] = "brand new pass 2"


def test_sign_out(browsers):
    b = browsers("main")
    b.allowed.append("/api/auth/me - Failed to load resource: the server responded with a status of 401")
    b.allowed.append("/v1/sources - Failed to load resource: the server responded with a status of 401")  # provoked below
    b.el("#signout").click()
    b.wait(lambda: "/signin" in b.d.current_url)
    b.go("/devices")
    b.wait(lambda: "/signin" in b.d.current_url)
    assert b.fetch("/v1/sources")["status"] == 401
    # and back in with the new password
    b.el("input[name=email]").send_keys(EMAIL)
    b.el("input[name=password]").send_keys(ctx["password"])
    b.el("form button[type=submit]").click()
    b.wait(lambda: b.d.current_url.endswith("/devices"))
    b.el("#topbar")
    ctx["dev"].stop()


@pytest.fixture(scope="module", autouse=True)
def _stop_device():
    yield
    if "dev" in ctx:
        ctx["dev"].stop()
