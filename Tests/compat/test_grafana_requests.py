"""Prometheus query clients read plexus-server's Prometheus-compatible API (docs/prometheus.md,
docs/integrations.md):

- `prometheus-api-client` from PyPI, unchanged: metric and label listings, current values,
  raw samples (an instant query of a range vector, `m{…}[Ns]`), and PromQL through
  `custom_query` and `custom_query_range`;
- the requests Grafana's Prometheus data source sends. Grafana is not installable here
  (Debian has no package, and this machine has no other way to install it), so the test
  sends exactly what Grafana 10/11 sends, header for header, in the order it sends them:
  "Save & test" (buildinfo, then `1+1`), the metrics browser (labels, `__name__` values,
  series), a panel (POST form `query_range`, `query`), exemplars, rules, metadata.

The data is written through the JSON `/ingest` API, so each answer can be checked exactly.
"""
import base64
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

STEP_S = 10
N = 31  # samples per series, STEP_S apart, the last one about a minute ago


@pytest.fixture
def seeded(server):
    """(server, t0 in whole seconds, the points written): two rigs, a gauge, a counter and a
    metric whose name is not a legacy Prometheus name."""
    t0 = (int(time.time()) - 60 - STEP_S * (N - 1)) // STEP_S * STEP_S
    points = []
    for k in range(N):
        t = t0 + k * STEP_S
        for rig, base in (("rig-1", 100.0), ("rig-2", 200.0)):
            points.append({"metric": "motor_rpm", "value": base + k, "timestamp": t * 1000, "source_id": rig,
                           "tags": {"axis": "x"}})
            points.append({"metric": "packets_total", "value": float(k * 6 if k < 20 else (k - 20) * 6),
                           "timestamp": t * 1000, "source_id": rig})
            points.append({"metric": "motor.temp", "value": 40.5 + k / 4, "timestamp": t * 1000, "source_id": rig})
    r = requests.post(server.base_url + "/ingest", json={"points": points}, headers={"x-api-key": server.key}, timeout=30)
    assert r.status_code == 200, r.text
    return server, t0, points


def client(server):
    return PrometheusConnect(url=server.base_url, headers={"Authorization": f"Bearer {server.key}"}, disable_ssl=True)


def test_prometheus_api_client(seeded):
    server, t0, points = seeded
    pc = client(server)
    assert pc.check_prometheus_connection()
    assert set(pc.all_metrics()) == {"motor_rpm", "packets_total", "motor.temp"}
    assert set(pc.get_label_names()) == {"__name__", "axis", "source_id"}
    assert pc.get_label_values("source_id") == ["rig-1", "rig-2"]

    # The newest sample of each series (within Prometheus' 5-minute lookback).
    current = pc.get_current_metric_value("motor_rpm", label_config={"source_id": "rig-2"})
    assert [(c["metric"], c["value"][1]) for c in current] == [
        ({"__name__": "motor_rpm", "axis": "x", "source_id": "rig-2"}, str(200 + N - 1))]

    # Raw samples: the client asks /api/v1/query for `motor_rpm{…}[Ns]` at the range's end.
    start = datetime.fromtimestamp(t0, timezone.utc)
    end = datetime.fromtimestamp(t0 + STEP_S * (N - 1), timezone.utc)
    raw = pc.get_metric_range_data("motor_rpm", label_config={"source_id": "rig-1"}, start_time=start, end_time=end)
    assert len(raw) == 1 and raw[0]["metric"]["source_id"] == "rig-1"
    # [t - range, t]: both ends included, as Prometheus 2.x.
    assert [(int(t), float(v)) for t, v in raw[0]["values"]] == [(t0 + k * STEP_S, 100.0 + k) for k in range(N)]
    chunked = pc.get_metric_range_data("motor_rpm", label_config={"source_id": "rig-1"}, start_time=start,
                                       end_time=end, chunk_size=timedelta(seconds=100))
    assert sorted({(int(t), float(v)) for c in chunked for t, v in c["values"]}) == [
        (t0 + k * STEP_S, 100.0 + k) for k in range(N)]

    # PromQL: a counter's rate with its reset corrected, per rig; and the quoted UTF-8 name.
    rate = pc.custom_query("sum by (source_id) (rate(packets_total[1m]))", params={"time": t0 + 150})
    assert {r["metric"]["source_id"]: float(r["value"][1]) for r in rate} == {"rig-1": 0.6, "rig-2": 0.6}
    across_reset = pc.custom_query("increase(packets_total{source_id='rig-1'}[60s])", params={"time": t0 + 230})
    # Samples at 170..230 s: 102, 108, 114, 0 (a reset), 6, 12, 18: five steps of 6 and the
    # reset's 0, over samples that span the whole window (no extrapolation).
    assert [float(r["value"][1]) for r in across_reset] == [30.0]
    temps = pc.custom_query_range('avg({"motor.temp"})', start_time=start, end_time=end, step="30")
    assert len(temps) == 1 and temps[0]["metric"] == {}
    assert [float(v) for _, v in temps[0]["values"]] == [40.5 + 0.75 * j for j in range(11)]
    with pytest.raises(PrometheusApiClientException) as refused:
        pc.custom_query("holt_winters(motor_rpm[1m], 0.5, 0.5)")
    assert "bad_data" in str(refused.value) and "holt_winters" in str(refused.value)


def grafana_headers(server, **more):
    """What Grafana's data source proxy sends with basic auth (user any, password the key)."""
    token = base64.b64encode(f"grafana:{server.key}".encode()).decode()
    return {"Authorization": f"Basic {token}", "User-Agent": "Grafana/11.2.0", "X-Grafana-Org-Id": "1",
            "Accept": "application/json, text/plain, */*", "Accept-Encoding": "gzip", **more}


def test_grafana_data_source_requests(seeded):
    server, t0, _ = seeded
    base = server.base_url
    h = grafana_headers(server)
    form = grafana_headers(server, **{"Content-Type": "application/x-www-form-urlencoded"})
    start, end = t0, t0 + STEP_S * (N - 1)

    def ok(r):
        assert r.status_code == 200, (r.request.method, r.url, r.status_code, r.text[:300])
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    # "Save & test": the version, then the query 1+1.
    build = ok(requests.get(f"{base}/api/v1/status/buildinfo", headers=h, timeout=10))
    assert build["version"].startswith("2.")
    health = ok(requests.get(f"{base}/api/v1/query", params={"query": "1+1", "time": end}, headers=h, timeout=10))
    assert health == {"resultType": "scalar", "result": [end, "2"]}

    # The metrics browser and the query editor's completion.
    window = {"start": start, "end": end}
    assert set(ok(requests.get(f"{base}/api/v1/labels", params=window, headers=h, timeout=10))) == {
        "__name__", "axis", "source_id"}
    names = ok(requests.get(f"{base}/api/v1/label/__name__/values", params=window, headers=h, timeout=10))
    assert names == ["motor.temp", "motor_rpm", "packets_total"]
    values = ok(requests.get(f"{base}/api/v1/label/source_id/values",
                             params={**window, "match[]": "motor_rpm"}, headers=h, timeout=10))
    assert values == ["rig-1", "rig-2"]
    series = ok(requests.get(f"{base}/api/v1/series", params={**window, "match[]": '{__name__="motor_rpm"}'},
                             headers=h, timeout=10))
    assert sorted(s["source_id"] for s in series) == ["rig-1", "rig-2"]
    assert ok(requests.get(f"{base}/api/v1/metadata", headers=h, timeout=10)) == {}
    assert ok(requests.get(f"{base}/api/v1/metadata", params={"metric": "motor_rpm"}, headers=h, timeout=10)) == {}

    # A time series panel: POST form (Grafana's default method), step from the panel width.
    panel = ok(requests.post(f"{base}/api/v1/query_range", headers=form, timeout=10,
                             data={"query": 'max by (source_id) (motor_rpm{axis="x"})', "start": start, "end": end,
                                   "step": 20}))
    assert panel["resultType"] == "matrix"
    assert {s["metric"]["source_id"]: [(t, v) for t, v in s["values"]][:2] for s in panel["result"]} == {
        "rig-1": [(start, "100"), (start + 20, "102")], "rig-2": [(start, "200"), (start + 20, "202")]}
    # A table or stat panel: an instant query.
    stat = ok(requests.post(f"{base}/api/v1/query", headers=form, timeout=10,
                            data={"query": "topk(1, motor_rpm)", "time": end}))
    assert [(s["metric"]["source_id"], s["value"]) for s in stat["result"]] == [("rig-2", [end, str(200 + N - 1)])]
    # Exemplars (asked for with every panel query where enabled) and the alerting tab's rules.
    assert ok(requests.post(f"{base}/api/v1/query_exemplars", headers=form, timeout=10,
                            data={"query": "motor_rpm", "start": start, "end": end})) == []
    assert ok(requests.get(f"{base}/api/v1/rules", headers=h, timeout=10)) == {"groups": []}

    # Errors come in Prometheus' envelope, which Grafana shows under the panel.
    r = requests.post(f"{base}/api/v1/query_range", headers=form, timeout=10,
                      data={"query": "motor_rpm[5m]", "start": start, "end": end, "step": 20})
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data", r.text
    wrong = grafana_headers(server, Authorization="Basic " + base64.b64encode(b"grafana:plx_wrong").decode())
    r = requests.get(f"{base}/api/v1/query", params={"query": "1+1"}, headers=wrong, timeout=10)
    assert r.status_code == 401 and r.json()["status"] == "error", r.text
