"""The MQTT bridge example (Examples/plexus-mqtt-bridge/main.swift) for real: Debian's
`mosquitto` broker on a free loopback port, the example's binary (beside PLEXUS_SERVER_BIN)
subscribed to it and forwarding to plexus-server, and messages published with `paho-mqtt`.
Every message is read back through Plexus's query API and compared exactly.

The bridge documents: topic `a/b/c` → metric `a.b.c` (empty levels dropped), tagged
`mqtt_topic`; a JSON payload becomes its value (number, boolean, object, array; a JSON
string its text), anything else the payload as a string (invalid UTF-8 replaced by U+FFFD;
`NaN`, `Infinity`, `1e999`, `[1, NaN]` are not JSON, so they are strings too). A message
Plexus would refuse (a metric or tag value over 256 bytes, a string over 64 KiB, an array
over 1 MiB) is refused by the SDK when it is queued: the bridge skips it with a warning
naming the topic and goes on, the server never sees it, and it cannot sink its neighbours.
The SDK logs a failed delivery (a wrong key) once, not on every retry, and keeps its
buffer under `$HOME/.plexus/`.

The bridge is ready once it has stored the broker's retained probe message (the broker
sends retained messages on SUBSCRIBE). A skipped message is waited for through the
bridge's warning line, a wrong key through the server's `plexus_rejects_total` counter, so
nothing here sleeps a fixed time: every wait polls until a deadline.
"""
import os
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion
from plexus_server import terminate

SOURCE = "greenhouse"
WAIT_S = 20  # ceiling of every wait; each returns as soon as its condition holds
WRONG_KEY = "plx_" + "0" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, bridge=None, timeout=WAIT_S):
    """Polls condition() until truthy (returned); fails at the deadline, or at once if
    `bridge` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if bridge is not None and bridge.proc.poll() is not None:
            pytest.fail(f"the bridge exited ({bridge.proc.returncode}) while waiting for {what}\n{bridge.output()}",
                        pytrace=False)
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.05)


# ---- the broker ---------------------------------------------------------------------------------


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen
    log: Path


@pytest.fixture
def start_broker(tmp_path):
    """start_broker(extra_config="") -> Broker: mosquitto on a free loopback port, no
    persistence; stopped at the end."""
    binary = shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("mosquitto is not installed (scripts/test installs Debian's mosquitto package)", pytrace=False)
    started: list[Broker] = []

    def start(extra_config: str = "allow_anonymous true\n") -> Broker:
        n = len(started) + 1
        port = free_port()
        config = tmp_path / f"mosquitto-{n}.conf"
        log = tmp_path / f"mosquitto-{n}.log"
        # `user root` only when root: mosquitto would otherwise switch to the `mosquitto` user,
        # which cannot read files under pytest's tmp_path.
        config.write_text(f"persistence false\nlistener {port} 127.0.0.1\nlog_dest stderr\nlog_type all\n"
                          + ("user root\n" if os.geteuid() == 0 else "") + extra_config)
        with open(log, "wb") as out:
            proc = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        broker = Broker(port, proc, log)
        started.append(broker)

        def accepts():
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited ({proc.returncode}):\n{log.read_text(errors='replace')[-2000:]}",
                            pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(accepts, f"mosquitto to accept on 127.0.0.1:{port}")
        return broker

    try:
        yield start
    finally:
        for b in started:
            terminate(b.proc, 10)


class Publisher:
    """A paho-mqtt client (MQTT 3.1.1, QoS 0) connected to the broker."""

    def __init__(self, port, username=None, password=None):
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda client, userdata, flags, reason, props: self.connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S), "paho-mqtt did not get CONNACK"

    def publish(self, topic: str, payload: bytes, retain=False):
        info = self.client.publish(topic, payload, qos=0, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.rc == paho.MQTT_ERR_SUCCESS, (topic, info.rc)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(start_broker):
    return start_broker()


@pytest.fixture
def publisher(broker):
    p = Publisher(broker.port)
    yield p
    p.close()


# ---- the bridge ---------------------------------------------------------------------------------


@dataclass
class Bridge:
    proc: subprocess.Popen
    log: Path
    home: Path

    def text(self) -> str:
        """Everything the bridge has printed (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def output(self) -> str:
        return "bridge output:\n" + self.text()[-3000:]

    def lines_with(self, fragment: str) -> list[str]:
        return [line for line in self.text().splitlines() if fragment in line]


@pytest.fixture
def start_bridge(server_bin, tmp_path):
    """start_bridge(server, broker, key=None, args=()) -> Bridge: the example's binary, API key
    in PLEXUS_API_KEY, server in PLEXUS_GATEWAY_URL, `--name greenhouse`. SIGTERM at the end."""
    binary = Path(server_bin).parent / "plexus-mqtt-bridge"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: build the examples (swift build)", pytrace=False)
    started: list[Bridge] = []

    def start(server, broker, key=None, args=()) -> Bridge:
        n = len(started) + 1
        home = tmp_path / f"bridge-home-{n}"
        home.mkdir()
        # The Swift SDK keeps $HOME/.plexus/config.json and its point buffer there: each bridge
        # gets its own HOME (CFFIXED_USER_HOME, Foundation's override, is not passed on, so
        # $HOME alone decides; test_bridge_keeps_its_buffer_under_home checks it).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXUS_") and k != "CFFIXED_USER_HOME"}
        env.update(HOME=str(home), PLEXUS_API_KEY=key or server.key, PLEXUS_GATEWAY_URL=server.base_url)
        log = tmp_path / f"bridge-{n}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(binary), "--broker", "127.0.0.1", "--port", str(broker.port), "--topic", "sensors/#",
                 "--name", SOURCE, *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        bridge = Bridge(proc, log, home)
        started.append(bridge)
        return bridge

    try:
        yield start
    finally:
        for b in started:
            stop(b)


def stop(bridge: Bridge) -> int:
    """SIGTERM (SIGKILL after 10 s); the exit code."""
    return terminate(bridge.proc, 10)


# ---- reading back -------------------------------------------------------------------------------


def series(server, metric, **tags):
    """(timestamps_ms, values) of every stored point of `metric` of the bridge's source."""
    params = {"metrics": metric, "start": 0, "end": 99999999999999, "interval": "raw"}
    params.update({f"tag.{k}": v for k, v in tags.items()})
    s = server.query(SOURCE, **params)["series"].get(metric, {})
    return s.get("timestamp_ms", []), s.get("value", [])


def raw_query_text(server, metric) -> str:
    """The query's response body as text (objects and arrays are stored byte for byte)."""
    r = requests.get(f"{server.base_url}/v1/sources/{SOURCE}/metrics/query",
                     params={"metrics": metric, "start": 0, "end": 99999999999999, "interval": "raw"},
                     headers={"x-api-key": server.key}, timeout=30)
    assert r.status_code == 200, r.text[:500]
    return r.text


def metric_names(server) -> set[str]:
    if SOURCE not in {d["source_id"] for d in server.get("/v1/sources")["devices"]}:
        return set()
    return set(server.get(f"/v1/sources/{SOURCE}/metrics"))


def counter(server, name, **labels) -> float:
    """One series of the server's /metrics (0 if absent)."""
    text = requests.get(server.base_url + "/metrics", timeout=30).text
    want = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for m in re.finditer(rf"^{name}(?:{{([^}}]*)}})? (\S+)$", text, re.M):
        if want <= set((m.group(1) or "").split(",")) - {""}:
            total += float(m.group(2))
    return total


def rejects(server) -> float:
    """Everything the server refused, for any reason, on any transport."""
    return counter(server, "plexus_rejects_total")


def skipped_line(topic: str) -> str:
    """The start of the bridge's warning for a message it skipped: the topic's first 80
    characters, quoted (Swift's debugDescription; the topics here need no escaping)."""
    assert topic.isascii() and '"' not in topic and "\\" not in topic, topic
    return f'skipped a message on "{topic[:80]}": '


def wait_skipped(bridge, topic: str, why: str) -> str:
    """Waits for the bridge's warning that it skipped the message on `topic`; the line."""
    return wait_for(lambda: next(iter(bridge.lines_with(skipped_line(topic))), None),
                    f"the bridge to skip {why} with a warning", bridge)


def wait_ready(server, publisher, bridge, probe="1"):
    """Waits until the bridge has subscribed: the retained probe (published with value
    `probe`) is stored."""
    publisher.publish("sensors/probe", probe.encode(), retain=True)
    wait_for(lambda: float(probe) in series(server, "sensors.probe")[1],
             f"the bridge to store the retained sensors/probe={probe}", bridge)


def wait_stored(server, bridge, expected: dict[str, int]):
    """Waits until every metric holds at least its number of points."""
    def done():
        names = metric_names(server)
        return all(m in names and len(series(server, m)[1]) >= n for m, n in expected.items())
    wait_for(done, f"{len(expected)} metrics of {SOURCE}", bridge)


# ---- the documented mapping ---------------------------------------------------------------------

# (topic, payload, metric, value read back)
DOCUMENTED = [
    # JSON numbers
    ("sensors/greenhouse/temp", b"21.5", "sensors.greenhouse.temp", 21.5),
    ("sensors/greenhouse/count", b"-7", "sensors.greenhouse.count", -7),
    ("sensors/greenhouse/exp", b"1e3", "sensors.greenhouse.exp", 1000),
    ("sensors/greenhouse/pi", b"3.141592653589793", "sensors.greenhouse.pi", 3.141592653589793),
    ("sensors/greenhouse/max", b"1.7976931348623157e308", "sensors.greenhouse.max", 1.7976931348623157e308),
    ("sensors/greenhouse/tiny", b"5e-324", "sensors.greenhouse.tiny", 5e-324),
    ("sensors/greenhouse/big_int", b"123456789012345678", "sensors.greenhouse.big_int", float(123456789012345678)),
    ("sensors/greenhouse/padded", b" 42 \n", "sensors.greenhouse.padded", 42),
    # booleans
    ("sensors/greenhouse/door_open", b"true", "sensors.greenhouse.door_open", True),
    ("sensors/greenhouse/alarm", b"false", "sensors.greenhouse.alarm", False),
    # objects (an all-number one is a vector: also stored as accel.x, accel.y, accel.z)
    ("sensors/greenhouse/accel", b'{"x":0.12,"y":-0.5,"z":9.81}', "sensors.greenhouse.accel",
     {"x": 0.12, "y": -0.5, "z": 9.81}),
    ("sensors/greenhouse/status", b'{"mode": "auto", "ok": true, "n": {"z": 3}, "l": [1]}',
     "sensors.greenhouse.status", {"mode": "auto", "ok": True, "n": {"z": 3}, "l": [1]}),
    ("sensors/greenhouse/empty_object", b"{}", "sensors.greenhouse.empty_object", {}),
    # arrays
    ("sensors/greenhouse/waveform", b"[0.5, 1.2, -0.3]", "sensors.greenhouse.waveform", [0.5, 1.2, -0.3]),
    ("sensors/greenhouse/mixed", b'[1,"x",null,{"k":[]}]', "sensors.greenhouse.mixed", [1, "x", None, {"k": []}]),
    ("sensors/greenhouse/empty_array", b"[ ]", "sensors.greenhouse.empty_array", []),
    # a JSON string is its text; anything else is the payload as a string
    ("sensors/greenhouse/state", b'"RUNNING \\u00e9"', "sensors.greenhouse.state", "RUNNING é"),
    ("sensors/greenhouse/note", b"hello world", "sensors.greenhouse.note", "hello world"),
    ("sensors/greenhouse/null", b"null", "sensors.greenhouse.null", "null"),
    ("sensors/greenhouse/almost_number", b"12abc", "sensors.greenhouse.almost_number", "12abc"),
    ("sensors/greenhouse/leading_zero", b"01", "sensors.greenhouse.leading_zero", "01"),
    ("sensors/greenhouse/plus", b"+1", "sensors.greenhouse.plus", "+1"),
    ("sensors/greenhouse/two_values", b"true false", "sensors.greenhouse.two_values", "true false"),
    # nested topics → dotted metric names; empty levels are dropped
    ("sensors/a/b/c/d/e", b"5", "sensors.a.b.c.d.e", 5),
    ("sensors//double//slashes/", b"6", "sensors.double.slashes", 6),
    ("sensors/", b"7", "sensors", 7),
    ("sensors/odd chars/ü€😀/q\"b\\s.d", b"8", "sensors.odd chars.ü€😀.q\"b\\s.d", 8),
]
DERIVED = {"sensors.greenhouse.accel.x": 0.12, "sensors.greenhouse.accel.y": -0.5, "sensors.greenhouse.accel.z": 9.81}

BAD_UTF8 = b"\xfe\xff\x00\xe2\x82x\xed\xa0\x80"
LARGE_ARRAY = ("[" + ",".join(str(i / 4) for i in range(100_000)) + "]").encode()  # ~800 KB, under 1 MiB
# Hostile, but the server takes them: (topic, payload, metric, value read back)
HOSTILE_STORED = [
    ("sensors/hostile/empty", b"", "sensors.hostile.empty", ""),
    ("sensors/hostile/bad_utf8", BAD_UTF8, "sensors.hostile.bad_utf8", BAD_UTF8.decode("utf-8", "replace")),
    ("sensors/hostile/lone_surrogate", b'"\\ud800"', "sensors.hostile.lone_surrogate", '"\\ud800"'),
    ("sensors/hostile/nan_lowercase", b"nan", "sensors.hostile.nan_lowercase", "nan"),
    ("sensors/hostile/infinity_and_more", b"Infinityx", "sensors.hostile.infinity_and_more", "Infinityx"),
    ("sensors/hostile/longest_string", b"s" * 65_536, "sensors.hostile.longest_string", "s" * 65_536),
    ("sensors/hostile/large_array", LARGE_ARRAY, "sensors.hostile.large_array", [i / 4 for i in range(100_000)]),
    # Not JSON (JSON has no NaN or Infinity, and 1e999 is no finite number): the payload as a string.
    ("sensors/hostile/nan", b"NaN", "sensors.hostile.nan", "NaN"),
    ("sensors/hostile/infinity", b"Infinity", "sensors.hostile.infinity", "Infinity"),
    ("sensors/hostile/minus_infinity", b"-Infinity", "sensors.hostile.minus_infinity", "-Infinity"),
    ("sensors/hostile/overflow", b"1e999", "sensors.hostile.overflow", "1e999"),
    ("sensors/hostile/nan_in_array", b"[1, NaN]", "sensors.hostile.nan_in_array", "[1, NaN]"),
    ("sensors/hostile/infinity_in_object", b'{"a": Infinity}', "sensors.hostile.infinity_in_object",
     '{"a": Infinity}'),
]
LONG_TAG_TOPIC = "sensors/" + "y" * 240 + "/" * 30 + "z"  # metric 251 bytes, the mqtt_topic tag 279
LONG_METRIC_TOPIC = "sensors/" + "m" * 300  # metric 308 bytes
# Hostile, and Plexus would refuse them: the bridge skips them with a warning and stays up.
# (topic, payload, why, the reason in the warning)
HOSTILE_SKIPPED = [
    ("sensors/hostile/string_too_long", b"s" * 65_537, "a string over 64 KiB", "value string exceeds max length (65536)"),
    ("sensors/hostile/array_too_large", b"[" + b"7," * 600_000 + b"7]", "an array over 1 MiB",
     "value exceeds max bytes (1048576)"),
    (LONG_TAG_TOPIC, b"1", "a tag value over 256 bytes", 'tags["mqtt_topic"] value too long'),
    (LONG_METRIC_TOPIC, b"1", "a metric over 256 bytes", "metric must be 1-256 bytes"),
]


def check_value(got, want, metric):
    assert got == want, (metric, str(got)[:200], str(want)[:200])
    assert type(got) is type(want) or {type(got), type(want)} <= {int, float}, (metric, got, want)


def test_bridge_forwards_every_documented_payload(start_server, broker, publisher, start_bridge):
    server = start_server()
    t0 = time.time() * 1000
    bridge = start_bridge(server, broker)
    wait_ready(server, publisher, bridge)

    for topic, payload, _, _ in DOCUMENTED:
        publisher.publish(topic, payload)
    expected = {m: 1 for _, _, m, _ in DOCUMENTED} | {m: 1 for m in DERIVED}
    wait_stored(server, bridge, expected)
    for topic, payload, metric, want in DOCUMENTED:
        ts, values = series(server, metric)
        assert len(values) == 1, (metric, values)
        check_value(values[0], want, metric)
        assert t0 <= ts[0] <= time.time() * 1000, (metric, ts, t0)
        # Tagged with the topic it came from.
        assert series(server, metric, mqtt_topic=topic)[1] == values, (metric, topic)
        if payload[:1] in (b"{", b"["):
            assert payload.decode() in raw_query_text(server, metric), f"{metric}: not stored byte for byte"
    for metric, want in DERIVED.items():
        assert series(server, metric)[1] == [want], metric
    assert metric_names(server) == set(expected) | {"sensors.probe"}
    assert stop(bridge) == 0, bridge.output()  # SIGTERM: a clean exit


def test_bridge_stays_up_through_hostile_messages(start_server, broker, publisher, start_bridge):
    server = start_server()
    bridge = start_bridge(server, broker)
    wait_ready(server, publisher, bridge)

    # Taken by the server: stored exactly.
    for topic, payload, _, _ in HOSTILE_STORED:
        publisher.publish(topic, payload)
    wait_stored(server, bridge, {m: 1 for _, _, m, _ in HOSTILE_STORED})
    for _, payload, metric, want in HOSTILE_STORED:
        values = series(server, metric)[1]
        assert len(values) == 1, (metric, str(values)[:200])
        check_value(values[0], want, metric)
    # Each invalid byte (or truncated sequence) became one U+FFFD, as Python's "replace" does.
    assert series(server, "sensors.hostile.bad_utf8")[1] == ["\ufffd\ufffd\x00\ufffdx\ufffd\ufffd\ufffd"]
    assert rejects(server) == 0

    # Plexus would refuse them: the bridge skips each with a warning naming its topic, the
    # server never sees it, and the next message is stored.
    for n, (topic, payload, why, reason) in enumerate(HOSTILE_SKIPPED, 1):
        publisher.publish(topic, payload)
        line = wait_skipped(bridge, topic, why)
        assert reason in line, (why, line)
        publisher.publish(f"sensors/alive/{n}", str(n).encode())
        wait_stored(server, bridge, {f"sensors.alive.{n}": 1})
        assert series(server, f"sensors.alive.{n}")[1] == [n]
        assert rejects(server) == 0, why
    names = metric_names(server)
    for topic, _, why, _ in HOSTILE_SKIPPED:
        assert ".".join(t for t in topic.split("/") if t) not in names, f"{why} was stored"
        assert len(bridge.lines_with(skipped_line(topic))) == 1, (why, bridge.output())
    assert names == {"sensors.probe"} | {m for _, _, m, _ in HOSTILE_STORED} \
        | {f"sensors.alive.{n}" for n in range(1, len(HOSTILE_SKIPPED) + 1)}
    assert counter(server, "plexus_points_stored_total") == 1 + len(HOSTILE_STORED) + len(HOSTILE_SKIPPED)
    assert len(bridge.lines_with("skipped a message")) == len(HOSTILE_SKIPPED), bridge.output()
    assert bridge.proc.poll() is None, bridge.output()
    assert stop(bridge) == 0, bridge.output()


def test_refused_message_does_not_take_its_neighbours_with_it(start_server, broker, publisher, start_bridge):
    server = start_server()
    bridge = start_bridge(server, broker)
    wait_ready(server, publisher, bridge)

    # A burst within one flush interval: 30 good messages, one Plexus would refuse (a string
    # over 64 KiB), 30 good ones. The SDK refuses the bad one when it is queued, so it never
    # joins (and sinks) the batch of the other 60.
    bad = "sensors/burst/30"
    for i in range(61):
        publisher.publish(f"sensors/burst/{i}", b"s" * 65_537 if i == 30 else str(i).encode())
    wait_stored(server, bridge, {f"sensors.burst.{i}": 1 for i in range(61) if i != 30})
    wait_skipped(bridge, bad, "the string over 64 KiB")
    for i in range(61):
        if i != 30:
            assert series(server, f"sensors.burst.{i}")[1] == [i], i
    assert "sensors.burst.30" not in metric_names(server)
    assert counter(server, "plexus_points_stored_total") == 1 + 60
    assert rejects(server) == 0
    assert len(bridge.lines_with(skipped_line(bad))) == 1, bridge.output()
    assert bridge.lines_with("the server refused") == [], bridge.output()
    assert bridge.proc.poll() is None, bridge.output()


def test_bridge_with_a_wrong_key_stores_nothing(start_server, broker, publisher, start_bridge):
    server = start_server()
    publisher.publish("sensors/probe", b"1", retain=True)
    bridge = start_bridge(server, broker, key=WRONG_KEY)
    # The server answers clearly: the WebSocket's auth fails, ingest by HTTP is 401, again and again.
    wait_for(lambda: counter(server, "plexus_rejects_total", reason="AUTH_FAILED", transport="ws") >= 1,
             "the server to refuse the bridge's WebSocket auth", bridge)
    wait_for(lambda: counter(server, "plexus_rejects_total", reason="UNAUTHORIZED", transport="http") >= 1,
             "the server to refuse a delivery with 401", bridge)
    first = time.monotonic()
    wait_for(lambda: counter(server, "plexus_rejects_total", reason="UNAUTHORIZED", transport="http") >= 4,
             "the server to refuse four deliveries with 401", bridge)
    # The SDK backs off after a failed delivery (0.5 s, 1 s, 2 s, … up to 60 s) instead of
    # resending every flush tick: three more attempts take at least 3.5 s (a lower bound,
    # which a slow machine cannot break).
    assert time.monotonic() - first >= 3.5
    assert counter(server, "plexus_points_stored_total") == 0
    assert server.get("/v1/sources")["devices"] == []
    # The SDK says so, once for the run of failures, not once per retry.
    failed = wait_for(lambda: bridge.lines_with("delivery failed, the points are kept and sent again: "),
                      "the bridge to log the failed delivery", bridge)
    assert len(failed) == 1, bridge.output()
    assert "unauthorized" in failed[0], failed[0]
    assert bridge.lines_with("delivering again") == [], bridge.output()
    assert bridge.proc.poll() is None, bridge.output()  # the points are kept: it retries, it does not exit
    assert stop(bridge) == 0, bridge.output()


def test_bridge_keeps_its_buffer_under_home(start_server, broker, publisher, start_bridge):
    """The SDK's disk buffer goes to $HOME/.plexus/ (the fixture's temporary HOME), not to the
    account's home directory from the password database."""
    account_home = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".plexus"

    def account_state():
        return sorted((p.name, p.stat().st_mtime_ns) for p in account_home.iterdir()) if account_home.is_dir() else None
    before = account_state()
    server = start_server()
    bridge = start_bridge(server, broker)
    wait_ready(server, publisher, bridge)

    buffer = bridge.home / ".plexus" / "buffer-swift.sqlite"
    assert buffer.is_file(), sorted(str(p) for p in bridge.home.rglob("*"))

    def open_files():
        fds = Path(f"/proc/{bridge.proc.pid}/fd")
        return {os.path.realpath(fd) for fd in fds.iterdir() if os.path.exists(fd)}
    opened = open_files()
    assert str(buffer.resolve()) in opened, sorted(opened)
    assert not any(f.startswith(str(account_home) + "/") for f in opened), sorted(opened)
    assert account_state() == before, f"{account_home} changed"
    assert stop(bridge) == 0, bridge.output()


def test_bridge_with_broker_credentials(start_server, start_broker, start_bridge, tmp_path):
    """--username/--password reach the broker (CONNECT with credentials); a refused CONNACK
    ends the bridge with the broker's code."""
    passwords = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "bridge", "s3cret pass"], check=True,
                   capture_output=True, timeout=30)
    broker = start_broker(f"allow_anonymous false\npassword_file {passwords}\n")
    server = start_server()
    publisher = Publisher(broker.port, "bridge", "s3cret pass")
    try:
        bridge = start_bridge(server, broker, args=["--username", "bridge", "--password", "s3cret pass"])
        wait_ready(server, publisher, bridge)
        publisher.publish("sensors/auth/ok", b"1")
        wait_stored(server, bridge, {"sensors.auth.ok": 1})
    finally:
        publisher.close()

    refused_bridge = start_bridge(server, broker, args=["--username", "bridge", "--password", "wrong"])
    assert refused_bridge.proc.wait(WAIT_S) != 0
    assert "broker refused: code 5" in refused_bridge.output(), refused_bridge.output()
