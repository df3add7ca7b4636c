"""The API spec's own examples, run unchanged against a real plexus-server.

Each snippet below is copied verbatim from the spec (docs "Plexus API"); the only
changes are made at run time by `for_server`: the gateway URL becomes the test
server's base URL and the placeholder key (`plx_xxxxx`, `YOUR_API_KEY`) the test key.
After each example the point is read back through the query API.
"""
import json
import math
import shutil
import subprocess
import sys
import time

import requests

SPEC_URL = "https://plexus-gateway.fly.dev"
SPEC_KEYS = ("plx_xxxxx", "YOUR_API_KEY")

# ---- verbatim from the spec --------------------------------------------------------------

# Quick Start, "Option 2: Direct HTTP"
CURL_DIRECT_HTTP = r"""curl -X POST https://plexus-gateway.fly.dev/ingest \
  -H "x-api-key: YOUR_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "points": [{
      "metric": "temperature",
      "value": 72.5,
      "timestamp": 1699900000,
      "source_id": "sensor-001"
    }]
  }'
"""

# HTTP API, "Send Data" (POST /api/ingest)
SEND_DATA_BODY = r"""{
  "points": [
    {
      "metric": "temperature",
      "value": 72.5,
      "timestamp": 1699900000.123,
      "source_id": "sensor-001",
      "tags": { "location": "lab" },
      "session_id": "test-001"
    }
  ]
}
"""

# Sessions, "Create session" (POST /api/sessions)
CREATE_SESSION_BODY = r"""{
  "session_id": "test-001",
  "name": "Motor Test Run",
  "source_id": "sensor-001",
  "status": "active"
}
"""

# Sessions, "End session" (PATCH /api/sessions/{session_id})
END_SESSION_BODY = r"""{
  "status": "completed",
  "ended_at": "2024-01-15T10:30:00Z"
}
"""

# Code Examples, "Python (Direct HTTP)"
PYTHON_EXAMPLE = r"""import requests
import time

requests.post(
    "https://plexus-gateway.fly.dev/ingest",
    headers={"x-api-key": "plx_xxxxx"},
    json={
        "points": [{
            "metric": "temperature",
            "value": 72.5,
            "timestamp": time.time(),
            "source_id": "sensor-001"
        }]
    }
)
"""

# Code Examples, "JavaScript"
JAVASCRIPT_EXAMPLE = r"""await fetch("https://plexus-gateway.fly.dev/ingest", {
  method: "POST",
  headers: {
    "x-api-key": "plx_xxxxx",
    "Content-Type": "application/json",
  },
  body: JSON.stringify({
    points: [
      {
        metric: "temperature",
        value: 72.5,
        timestamp: Date.now() / 1000,
        source_id: "sensor-001",
      },
    ],
  }),
});
"""

# Code Examples, "Bash"
BASH_EXAMPLE = r"""#!/bin/bash
API_KEY="plx_xxxxx"
SOURCE_ID="sensor-001"

curl -X POST https://plexus-gateway.fly.dev/ingest \
  -H "x-api-key: $API_KEY" \
  -H "Content-Type: application/json" \
  -d "{
    \"points\": [{
      \"metric\": \"temperature\",
      \"value\": 72.5,
      \"timestamp\": $(date +%s),
      \"source_id\": \"$SOURCE_ID\"
    }]
  }"
"""

# Code Examples, "Arduino / ESP32" (not compiled here: arduino_payload() below builds the
# same string in Python and the test sends it as the raw body, as http.POST(payload) would)
ARDUINO_EXAMPLE = r"""    String payload = "{\"points\":[{";
    payload += "\"metric\":\"" + String(metric) + "\",";
    payload += "\"value\":" + String(value) + ",";
    payload += "\"timestamp\":" + String(time(nullptr)) + ",";
    payload += "\"source_id\":\"esp32-001\"";
    payload += "}]}";
"""


# ---- helpers -----------------------------------------------------------------------------

def for_server(snippet, server):
    """The snippet with the spec's URL and placeholder key replaced by the test server's."""
    out = snippet.replace(SPEC_URL, server.base_url)
    for placeholder in SPEC_KEYS:
        out = out.replace(placeholder, server.key)
    assert SPEC_URL not in out and server.key in out, "substitution failed"
    return out


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kw)
    assert r.returncode == 0, f"{cmd[0]} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def assert_ingest_response(stdout):
    body = json.loads(stdout)
    assert body.get("success") is True and body.get("count") == 1, body


def read_temperature(server, source_id, start, end):
    """All raw `temperature` points of source_id in [start, end): (timestamps ms, values)."""
    d = server.query(source_id, metrics="temperature", interval="raw", start=start, end=end)
    assert d["interval"] == "raw" and d["truncated"] is False and d["auto_downsampled"] is False, d
    s = d["series"].get("temperature", {"timestamp_ms": [], "value": []})
    return s["timestamp_ms"], s["value"]


def assert_one_recent_point(server, source_id, t0, t1, whole_seconds=False):
    """Exactly one point 72.5, stamped by the client between t0 and t1 (epoch s)."""
    ts, values = read_temperature(server, source_id, int(t0 * 1000) - 60_000, int(t1 * 1000) + 60_000)
    assert values == [72.5], (ts, values)
    assert math.floor(t0) * 1000 - 1000 <= ts[0] <= math.ceil(t1) * 1000 + 1000, (ts[0], t0, t1)
    if whole_seconds:
        assert ts[0] % 1000 == 0, ts[0]


def curl_json(server, method, path, body_text, tmp_path):
    """Sends body_text with curl (x-api-key, JSON); returns (status, decoded body)."""
    body_file = tmp_path / "body.json"
    body_file.write_text(body_text)
    r = run(["curl", "-sS", "-X", method, server.base_url + path,
             "-H", f"x-api-key: {server.key}", "-H", "Content-Type: application/json",
             "--data-binary", f"@{body_file}", "-w", "\n%{http_code}"])
    text, _, status = r.stdout.rpartition("\n")
    return int(status), (json.loads(text) if text.strip() else None)


def arduino_payload(metric, value, now):
    """sendToPlexus()'s string, line by line: String(float) prints 2 decimals,
    String(time(nullptr)) an integer; now=None leaves the timestamp line out, as the
    sketch's comment says to do without NTP sync."""
    payload = "{\"points\":[{"
    payload += "\"metric\":\"" + metric + "\","
    payload += "\"value\":" + f"{value:.2f}" + ","
    if now is not None:
        payload += "\"timestamp\":" + str(now) + ","
    payload += "\"source_id\":\"esp32-001\""
    payload += "}]}"
    return payload


# ---- the examples ------------------------------------------------------------------------

def test_curl_direct_http_example(server):
    r = run(["bash", "-c", for_server(CURL_DIRECT_HTTP, server)])
    assert_ingest_response(r.stdout)

    # "timestamp": 1699900000 is seconds: stored at 1699900000000 ms.
    assert read_temperature(server, "sensor-001", "2023-11-13T18:00:00Z", "2023-11-13T19:00:00Z") \
        == ([1699900000000], [72.5])
    assert read_temperature(server, "sensor-001", 1699900000, 1699900001) == ([1699900000000], [72.5])
    devices = server.get("/v1/sources")["devices"]
    assert "sensor-001" in [d["source_id"] for d in devices], devices


def test_send_data_example_api_ingest(server, tmp_path):
    status, body = curl_json(server, "POST", "/api/ingest", SEND_DATA_BODY, tmp_path)
    assert status == 200, body
    assert body["success"] is True and body["count"] == 1, body
    # 1699900000.123 s is 1699900000123 ms.
    assert read_temperature(server, "sensor-001", 1699900000000, 1699900001000) == ([1699900000123], [72.5])


def test_sessions_example(server, tmp_path):
    status, created = curl_json(server, "POST", "/api/sessions", CREATE_SESSION_BODY, tmp_path)
    assert status == 201, created
    assert created["session_id"] == "test-001", created

    status, ended = curl_json(server, "PATCH", "/api/sessions/test-001", END_SESSION_BODY, tmp_path)
    assert status == 200, ended

    assert server.get("/api/sessions/test-001")["status"] == "completed"


def test_python_example(server, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(for_server(PYTHON_EXAMPLE, server))
    t0 = time.time()
    run([sys.executable, str(script)])  # the test venv's python, which has requests
    assert_one_recent_point(server, "sensor-001", t0, time.time())


def test_javascript_example(server, tmp_path):
    node = shutil.which("node")
    assert node, "node is not on PATH (scripts/test installs nodejs)"
    script = tmp_path / "example.mjs"  # an ES module: top-level await, as the snippet uses
    script.write_text(for_server(JAVASCRIPT_EXAMPLE, server))
    t0 = time.time()
    run([node, str(script)])
    assert_one_recent_point(server, "sensor-001", t0, time.time())


def test_bash_example(server, tmp_path):
    script = tmp_path / "example.sh"
    script.write_text(for_server(BASH_EXAMPLE, server))
    t0 = time.time()
    r = run(["bash", str(script)])
    assert_ingest_response(r.stdout)
    assert_one_recent_point(server, "sensor-001", t0, time.time(), whole_seconds=True)


def _post_arduino(server, payload):
    r = requests.post(server.base_url + "/ingest", data=payload.encode(),
                      headers={"Content-Type": "application/json", "x-api-key": server.key}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["count"] == 1, r.text


def test_arduino_example_payload(server):
    t0 = time.time()
    now = int(t0)  # time(nullptr)
    payload = arduino_payload("temperature", 72.5, now)
    assert payload == ('{"points":[{"metric":"temperature","value":72.50,"timestamp":%d,'
                       '"source_id":"esp32-001"}]}' % now)
    _post_arduino(server, payload)
    assert read_temperature(server, "esp32-001", (now - 60) * 1000, (now + 60) * 1000) == ([now * 1000], [72.5])


def test_arduino_example_payload_without_timestamp(server):
    t0 = time.time()
    _post_arduino(server, arduino_payload("temperature", 72.5, None))
    # omitted timestamp = the server's receive time
    assert_one_recent_point(server, "esp32-001", t0, time.time())
