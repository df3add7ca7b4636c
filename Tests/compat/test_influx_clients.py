"""The real InfluxDB client libraries from PyPI write into plexus-server unchanged.

- `influxdb` (the 1.x client): `write_points` POSTs line protocol to `/write?db=…` with the
  key as the `p` parameter (username/password auth);
- `influxdb-client` (the 2.x client): the batching write API POSTs gzip'd line protocol to
  `/api/v2/write?org=…&bucket=…` with `Authorization: Token …`.

Every point is read back through Plexus's own read API (docs/line-protocol.md).
"""
import time

import pytest
import requests
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as InfluxDBClient2
from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions
from influxdb_client.rest import ApiException

T0_NS = 1_750_000_000_000_000_000


def host_port(server):
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def raw(server, source, metric, **tags):
    params = {"metrics": metric, "start": 0, "end": 99999999999999, "interval": "raw"}
    params.update({f"tag.{k}": v for k, v in tags.items()})
    series = server.query(source, **params)["series"].get(metric, {})
    return series.get("timestamp_ms", []), series.get("value", [])


def test_influxdb_v1_client_write_points(server):
    host, port = host_port(server)
    client = InfluxDBClient(host=host, port=port, username="telegraf", password=server.key, database="fleet")
    client.create_database("fleet")  # a no-op success, as Telegraf's first request is
    with pytest.raises(InfluxDBClientError) as unsupported:
        client.query("SELECT * FROM motor")
    assert unsupported.value.code == 400
    body = [{
        "measurement": "motor",
        "tags": {"host": "Rover-7", "side": "left wheel", "unit,odd=tag": "a b"},
        "time": T0_NS + i * 1_000_000,
        "fields": {"rpm": 1000 + i, "temp": 40.25 + i, "ok": i % 2 == 0, "state": f'run "{i}"\\'},
    } for i in range(50)]
    assert client.write_points(body, time_precision="n") is True
    ts, rpm = raw(server, "rover-7", "motor.rpm")
    assert rpm == [1000 + i for i in range(50)]
    assert ts == [T0_NS // 1_000_000 + i for i in range(50)]
    assert raw(server, "rover-7", "motor.temp")[1] == [40.25 + i for i in range(50)]
    assert raw(server, "rover-7", "motor.ok")[1] == [i % 2 == 0 for i in range(50)]
    assert raw(server, "rover-7", "motor.state")[1][3] == 'run "3"\\'
    # The escaped tag keys and values arrive as they were sent.
    assert len(raw(server, "rover-7", "motor.rpm", **{"side": "left wheel", "unit,odd=tag": "a b"})[1]) == 50

    # A bad point is refused with InfluxDB's error, the client raises, the good ones stay.
    with pytest.raises(InfluxDBClientError) as refused:
        client.write_points([{"measurement": "motor", "tags": {"host": "rover-7"}, "fields": {"rpm": float("nan")}}])
    assert refused.value.code == 400
    wrong_key = InfluxDBClient(host=host, port=port, username="x", password="plx_" + "0" * 32, database="fleet")
    with pytest.raises(InfluxDBClientError) as unauthorized:
        wrong_key.write_points(body[:1])
    assert unauthorized.value.code == 401


def test_influxdb_client_v2_batching_gzip(server):
    url = server.base_url
    points = 2_000
    errors = []
    with InfluxDBClient2(url=url, token=server.key, org="acme", enable_gzip=True) as client:
        write_api = client.write_api(
            write_options=WriteOptions(batch_size=500, flush_interval=100, max_retries=0),
            error_callback=lambda conf, data, e: errors.append(e))
        for i in range(points):
            write_api.write(
                bucket="telemetry",
                record=Point("imu").tag("host", "arm-2").tag("axis", "x").field("accel", i * 0.5).field("seq", i)
                .time(T0_NS + i * 1_000, WritePrecision.NS))
        write_api.close()
    assert errors == []
    ts, accel = raw(server, "arm-2", "imu.accel", axis="x")
    assert accel == [i * 0.5 for i in range(points)]
    # Nanoseconds are stored to the microsecond.
    assert ts[:3] == [T0_NS / 1e6, T0_NS / 1e6 + 0.001, T0_NS / 1e6 + 0.002]
    assert raw(server, "arm-2", "imu.seq")[1] == list(range(points))


def test_influxdb_client_v2_sync_errors(server):
    with InfluxDBClient2(url=server.base_url, token=server.key, org="acme") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        write_api.write(bucket="lab-rig", record="env temp=21.5 1750000000", write_precision=WritePrecision.S)
        # No host tag: the bucket names the source.
        assert raw(server, "lab-rig", "env.temp")[1] == [21.5]
        with pytest.raises(ApiException) as partial:
            write_api.write(bucket="b", record=["env,host=a temp=1", "env,host=a temp=", "env,host=a temp=2"])
        assert partial.value.status == 400
        assert "line 2" in partial.value.body and "dropped=1" in partial.value.body
        assert raw(server, "a", "env.temp")[1] == [1, 2]
    with InfluxDBClient2(url=server.base_url, token="plx_" + "0" * 32, org="acme") as client:
        with pytest.raises(ApiException) as unauthorized:
            client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record="env,host=a temp=1")
        assert unauthorized.value.status == 401


def test_ping(server):
    r = requests.get(server.base_url + "/ping", timeout=10)
    assert r.status_code == 204
    assert r.headers.get("X-Influxdb-Version")
    host, port = host_port(server)
    version = InfluxDBClient(host=host, port=port).ping()
    assert version
