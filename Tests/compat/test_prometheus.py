"""A real Prometheus (Debian's `prometheus` package) scrapes plexus-server's own /metrics and
remote-writes what it scraped into plexus-server (`POST /api/v1/write`, snappy protobuf,
the key as bearer credentials). The samples are read back through Plexus's read API and
compared with what Prometheus itself stored (docs/prometheus.md).
"""
import math
import shutil
import socket
import subprocess
import time

import pytest
import requests
from plexus_server import terminate

METRICS_TOKEN = "prometheus-scrape-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(start_server, tmp_path):
    """(plexus server, Prometheus base URL): Prometheus scraping the server every second
    and remote-writing into it."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (scripts/test installs Debian's prometheus package)", pytrace=False)
    server = start_server(env={"PLEXUS_METRICS_TOKEN": METRICS_TOKEN, "PLEXUS_PUBLIC_METRICS": "0"})
    target = server.base_url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: plexus
    authorization:
      credentials: {METRICS_TOKEN}
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: {server.base_url}/api/v1/write
    authorization:
      credentials: {server.key}
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
      min_backoff: 100ms
""")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        terminate(proc, 15)
        log.close()


def wait_for(condition, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def plexus_samples(server, source, metric, **tags):
    params = {"metrics": metric, "start": 0, "end": 99999999999999, "interval": "raw"}
    params.update({f"tag.{k}": v for k, v in tags.items()})
    series = server.query(source, **params)["series"].get(metric, {})
    return list(zip(series.get("timestamp_ms", []), series.get("value", [])))


def prometheus_samples(base, selector):
    r = requests.get(f"{base}/api/v1/query", params={"query": f"{selector}[10m]"}, timeout=10)
    r.raise_for_status()
    result = r.json()["data"]["result"]
    assert len(result) == 1, result
    return [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"]]


def test_prometheus_scrapes_and_remote_writes_into_plexus(prometheus):
    server, base = prometheus
    source = server.base_url.removeprefix("http://").replace(":", "-")

    def enough():
        sources = [d["source_id"] for d in server.get("/v1/sources")["devices"]]
        return source in sources and len(plexus_samples(server, source, "up", job="plexus")) >= 5
    wait_for(enough, what=f"five `up` samples of source {source} in plexus-server")

    metrics = set(server.get(f"/v1/sources/{source}/metrics"))
    # Prometheus' own series about the scrape, and plexus-server's series it scraped.
    assert {"up", "scrape_duration_seconds", "scrape_samples_scraped"} <= metrics
    assert any(m.startswith("plexus_") for m in metrics), sorted(metrics)[:20]

    ours = plexus_samples(server, source, "up", job="plexus")
    assert all(v == 1 for _, v in ours)
    # Everything Prometheus stored up to the last sample we have arrived here, at the same
    # millisecond with the same value (one series travels in one remote-write shard, in
    # order, so whatever precedes our last sample has arrived).
    theirs = prometheus_samples(base, 'up{job="plexus"}')
    last = max(t for t, _ in ours)
    assert [s for s in theirs if s[0] <= last] == sorted(ours)

    # The same for a series whose value changes. One series travels in one remote-write
    # shard, in order, so whatever precedes our last sample has arrived.
    scraped_ours = plexus_samples(server, source, "scrape_samples_scraped", job="plexus")
    last = max(t for t, _ in scraped_ours)
    scraped_theirs = [s for s in prometheus_samples(base, 'scrape_samples_scraped{job="plexus"}') if s[0] <= last]
    assert scraped_theirs == sorted(scraped_ours)


def query_range(base, expr, start, end, step, headers=None):
    r = requests.get(f"{base}/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": step},
                     headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["data"]["resultType"] == "matrix", body
    return {frozenset((k, v) for k, v in s["metric"].items() if k not in ("instance", "source_id")):
            [(float(t), float(v)) for t, v in s["values"]] for s in body["data"]["result"]}


def test_query_api_answers_as_prometheus_does(prometheus):
    """The same range query to Prometheus and to Plexus, over the samples Plexus received:
    the same series (but for `instance`, which Plexus calls `source_id`) and the same
    value at every step; and promtool, Prometheus' own client, reads Plexus."""
    server, base = prometheus
    source = server.base_url.removeprefix("http://").replace(":", "-")
    wait_for(lambda: len(plexus_samples(server, source, "scrape_samples_scraped", job="plexus")) >= 12,
             what="twelve scrapes in plexus-server")
    last_ms = min(max(t for t, _ in plexus_samples(server, source, m, job="plexus"))
                  for m in ("up", "scrape_samples_scraped", "scrape_duration_seconds"))
    first_ms = max(min(t for t, _ in plexus_samples(server, source, m, job="plexus"))
                   for m in ("up", "scrape_samples_scraped", "scrape_duration_seconds"))
    start, end = (first_ms + 1) / 1000, last_ms / 1000
    auth = {"Authorization": f"Bearer {server.key}"}
    for expr in ['up{job="plexus"}', 'scrape_samples_scraped', '{__name__=~"scrape_(samples_scraped|duration_seconds)", job="plexus"}']:
        theirs = query_range(base, expr, start, end, "0.5")
        ours = query_range(server.base_url, expr, start, end, "0.5", auth)
        assert theirs and ours == theirs, (expr, ours, theirs)
    # Functions, aggregations and operators, from where their whole range lies in what
    # Plexus received: the same series at the same steps, and values equal but for the
    # last bits of float arithmetic.
    for expr in EXPRESSIONS:
        theirs = query_range(base, expr, start + 5, end, "0.5")
        ours = query_range(server.base_url, expr, start + 5, end, "0.5", auth)
        assert theirs, (expr, "Prometheus has nothing: the expression tests nothing")
        assert ours.keys() == theirs.keys(), (expr, ours.keys(), theirs.keys())
        for labels, values in theirs.items():
            mine = ours[labels]
            assert [t for t, _ in mine] == [t for t, _ in values], (expr, labels, mine, values)
            assert all(close(a, b) for (_, a), (_, b) in zip(mine, values)), (expr, labels, mine, values)
    # Instant queries, in Prometheus' order (topk and sort_desc by value).
    for expr in ['topk(3, {__name__=~"scrape_.*"})', 'sort_desc({__name__=~"scrape_.*", job="plexus"})',
                 'bottomk(2, {__name__=~"scrape_.*"})', 'sum(up)', 'scalar(up) * 2', '1 + 2 * 3']:
        theirs = query_instant(base, expr, end)
        ours = query_instant(server.base_url, expr, end, auth)
        assert ours[0] == theirs[0] and len(ours[1]) == len(theirs[1]), (expr, ours, theirs)
        assert all(a[0] == b[0] and close(a[1], b[1]) for a, b in zip(ours[1], theirs[1])), (expr, ours, theirs)

    out = subprocess.run(
        ["promtool", "query", "range", "--header", f"Authorization: Bearer {server.key}", "--start", str(start),
         "--end", str(end), "--step", "1s", server.base_url, 'up{job="plexus"}'],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "up{" in out.stdout and "job=\"plexus\"" in out.stdout and "1 @[" in out.stdout, out.stdout
    out = subprocess.run(
        ["promtool", "query", "range", "--header", f"Authorization: Bearer {server.key}", "--start", str(start),
         "--end", str(end), "--step", "1s", server.base_url, f'sum by (job) (rate({COUNTER}[3s]))'],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '{job="plexus"} =>' in out.stdout, (out.stdout, out.stderr)
    # promtool 2.42's instant, series and labels queries have no --header: Go's HTTP client
    # sends the credentials in the server URL as basic auth (any user, the key as password).
    with_key = server.base_url.replace("http://", f"http://promtool:{server.key}@")
    out = subprocess.run(["promtool", "query", "instant", "--time", str(end), with_key, 'sum by (job) (up)'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith('{job="plexus"} => 1 @['), (out.stdout, out.stderr)
    out = subprocess.run(["promtool", "query", "series", "--match", 'up{job="plexus"}', with_key],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '__name__="up"' in out.stdout and 'job="plexus"' in out.stdout, (out.stdout, out.stderr)
    out = subprocess.run(["promtool", "query", "labels", with_key, "job"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["plexus"], (out.stdout, out.stderr)
    # What is not supported is Prometheus' bad_data, which promtool reports.
    out = subprocess.run(
        ["promtool", "query", "range", "--header", f"Authorization: Bearer {server.key}", "--start", str(start),
         "--end", str(end), "--step", "1s", server.base_url, 'holt_winters(up[1m], 0.5, 0.5)'],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "bad_data" in out.stderr + out.stdout, (out.stdout, out.stderr)


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(1, abs(b))


def query_instant(base, expr, time_s, headers=None):
    """(result type, [(labels without instance/source_id, value)] in the server's order)."""
    r = requests.get(f"{base}/api/v1/query", params={"query": expr, "time": time_s}, headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    if data["resultType"] == "scalar":
        return "scalar", [((), float(data["result"][1]))]
    return data["resultType"], [(frozenset((k, v) for k, v in s["metric"].items() if k not in ("instance", "source_id")),
                                 float(s["value"][1])) for s in data["result"]]


# A counter and a histogram of plexus-server's own /metrics, and Prometheus' scrape series.
COUNTER = 'http_server_request_duration_count{http_route="/metrics"}'
BUCKETS = 'http_server_request_duration_bucket{http_route="/metrics"}'
DURATION = 'scrape_duration_seconds{job="plexus"}'
SAMPLES = 'scrape_samples_scraped{job="plexus"}'
SCRAPE = '{__name__=~"scrape_.*", job="plexus"}'
EXPRESSIONS = [
    # selectors and the range functions
    'up{job="plexus"}', 'scrape_samples_scraped', SCRAPE,
    f'rate({COUNTER}[3s])', f'irate({COUNTER}[3s])', f'increase({COUNTER}[4s])', f'delta({DURATION}[3s])',
    f'idelta({DURATION}[3s])', f'deriv({COUNTER}[4s])', f'changes({DURATION}[4s])', f'resets({DURATION}[4s])',
    f'avg_over_time({DURATION}[3s])', 'count_over_time(up[2500ms])', f'max_over_time({SAMPLES}[4s] offset 1s)',
    'sum_over_time(up[3s])', f'min_over_time({DURATION}[2s])', f'last_over_time({DURATION}[2s])',
    f'stddev_over_time({DURATION}[3s])', f'stdvar_over_time({DURATION}[3s])', f'quantile_over_time(0.75, {DURATION}[4s])',
    'present_over_time(up[2s])', f'rate({COUNTER}[3s] offset 1s)',
    # aggregations
    f'sum by (job) (rate({COUNTER}[3s]))', f'count by (job) ({SCRAPE})', f'max by (job) ({SCRAPE})',
    f'min by (__name__) ({SCRAPE})', f'avg({SCRAPE})', f'stddev by (job) ({SCRAPE})', f'stdvar({SCRAPE})',
    f'topk(2, {SCRAPE})', f'bottomk(1, {SCRAPE})', f'quantile(0.5, {SCRAPE})', 'group by (job) (up)',
    f'sum without (instance, source_id, __name__) ({SCRAPE})', f'count(count by (__name__) ({SCRAPE}))',
    # operators
    f'{DURATION} * 1000', f'up + {SAMPLES}', f'{SAMPLES} > 3', f'{SAMPLES} > bool 3', f'3 < {SAMPLES}', 'up == 1',
    f'up and {SAMPLES}', f'{DURATION} or up', f'up unless {DURATION} or up', '-up', '2 ^ up', f'{SAMPLES} % 7',
    f'{SAMPLES} / on(job) up', f'{SAMPLES} - ignoring(instance, source_id) up', f'{SAMPLES} >= bool on(job) up',
    'sum(up) + vector(1)', 'scalar(up) * 2', '(1 + 2) * 3 - 2 ^ 3 ^ 0.5', 'time() - 1',
    # instant functions
    f'abs(-{DURATION})', f'clamp({DURATION}, 0, 0.001)', f'clamp_min({DURATION}, 0.001)', f'clamp_max({DURATION}, 0.001)',
    f'round({DURATION}, 0.001)', f'ceil({DURATION} * 1000)', f'floor({DURATION} * 1000)', f'sqrt({SAMPLES})',
    f'ln({SAMPLES})', f'log2({SAMPLES})', f'log10({SAMPLES})', f'exp(up)', f'sgn({DURATION})',
    # many-to-one matching, label functions, absent, predict_linear, timestamp, calendar
    f'{COUNTER} * on(job) group_left up', f'up * on(job) group_right {COUNTER}',
    f'{COUNTER} + on(job) group_left(__name__) up', f'{COUNTER} > bool on(job) group_left {SAMPLES}',
    'label_replace(up, "target", "$1-$2", "job", "(pl)(.*)")', 'label_replace(up, "job", "", "job", ".*")',
    'label_join(up, "both", "/", "job", "__name__")', 'absent(nothing_here{job="x", mode=~"a"})',
    'absent_over_time(nothing_here{job="y"}[2s])', f'predict_linear({COUNTER}[4s], 60)', 'timestamp(up)',
    f'timestamp({DURATION} * 2)', 'hour() + minute()', 'day_of_week(up * 1700000000)', 'days_in_month()',
    'year(up * 951782400) + month(up * 951782400) + day_of_year(up * 951782400)',
    # subqueries
    f'max_over_time(rate({COUNTER}[2s])[4s:1s])', 'avg_over_time(up[3s:500ms])',
    f'min_over_time(({DURATION} * 1000)[3s:1s] offset 1s)', f'sum_over_time(sum by (job) ({SCRAPE})[2s:500ms])',
    f'deriv(max_over_time({SAMPLES}[2s])[4s:1s])',
    # histograms
    f'histogram_quantile(0.9, sum by (le) (rate({BUCKETS}[3s])))', f'histogram_quantile(0.5, rate({BUCKETS}[4s]))',
    f'histogram_quantile(0.99, {BUCKETS})',
]


def backfilled_prometheus(tmp_path, openmetrics: str) -> tuple[subprocess.Popen, str]:
    """A Prometheus over blocks `promtool tsdb create-blocks-from openmetrics` made from
    `openmetrics`, scraping nothing; (process, base URL) once it is ready."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail("prometheus is not installed (scripts/test installs Debian's prometheus package)", pytrace=False)
    source = tmp_path / "samples.om"
    source.write_text(openmetrics)
    tsdb = tmp_path / "backfilled"
    out = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    config = tmp_path / "idle.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    log = open(tmp_path / "backfilled.log", "wb")
    proc = subprocess.Popen(
        [shutil.which("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
         "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return requests.get(f"{base}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
    try:
        wait_for(ready, timeout=60, what="the backfilled Prometheus to be ready")
    except BaseException:
        terminate(proc, 15)
        raise
    return proc, base


# Range functions Plexus answers from its per-minute and per-hour rollups when the step,
# the start, the range and the offset are whole minutes (or hours), and shapes around them.
ROLLUP_EXPRESSIONS = [
    'sum_over_time(rollup_probe[1m])', 'count_over_time(rollup_probe[1m])', 'min_over_time(rollup_probe[5m])',
    'max_over_time(rollup_probe[2m])', 'avg_over_time(rollup_probe[1m])', 'present_over_time(rollup_probe[1m])',
    'avg_over_time(rollup_probe{k="b"}[10m] offset 5m)', 'sum by (k) (sum_over_time(rollup_probe[3m]))',
    'max_over_time(rollup_probe[1m]) - min_over_time(rollup_probe[1m])', 'avg_over_time(rollup_probe[1h])',
    'count_over_time(rollup_probe[1h] offset 1h)', 'sum_over_time(rollup_probe[1m]) / count_over_time(rollup_probe[1m])',
]


def test_rollup_answers_equal_prometheus_on_the_same_samples(start_server, tmp_path):
    """The same samples, several of them exactly on a minute's start (where a PromQL 2.x
    window's two ends meet), go to Plexus (/ingest) and, backfilled with promtool, to a real
    Prometheus; minute- and hour-aligned range queries, which Plexus answers from its
    rollups, give the same series and values as Prometheus' evaluation of the raw samples.
    Unaligned steps (raw samples in Plexus) are checked over the same data too."""
    import random
    rng = random.Random(12)
    hour = 3600
    base = (int(time.time()) // hour - 4) * hour  # four whole hours back: within Prometheus' retention
    series: dict[str, list[tuple[float, float]]] = {}
    for k in ("a", "b", "c"):
        samples, t = [], float(base - 300)
        while t < base + 3 * hour:
            t += rng.choice([2.5, 5, 7.25, 10, 15, 30])
            if rng.random() < 0.3:
                t = float((int(t) // 60 + 1) * 60)  # exactly on the next minute's start
            samples.append((t, round(rng.uniform(-100, 100), 2)))
        series[k] = samples
    lines = ["# TYPE rollup_probe gauge"]
    lines += [f'rollup_probe{{k="{k}"}} {v} {t}' for k, samples in series.items() for t, v in samples]
    lines.append("# EOF")
    proc, prometheus = backfilled_prometheus(tmp_path, "\n".join(lines) + "\n")
    try:
        server = start_server(env={"PLEXUS_METRICS_TOKEN": METRICS_TOKEN, "PLEXUS_PUBLIC_METRICS": "0"})
        points = [{"metric": "rollup_probe", "value": v, "timestamp": int(t * 1000), "tags": {"k": k}}
                  for k, samples in series.items() for t, v in samples]
        assert sum(1 for p in points if p["timestamp"] % 60000 == 0) > 100
        for i in range(0, len(points), 2000):
            r = requests.post(server.base_url + "/ingest", json={"source_id": "probe", "points": points[i:i + 2000]},
                              headers={"x-api-key": server.key}, timeout=30)
            assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {server.key}"}

        def reads():
            text = requests.get(server.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                                timeout=10).text
            found = {m: 0.0 for m in ("rollups", "samples")}
            for line in text.splitlines():
                if line.startswith("plexus_promql_selector_reads_total{"):
                    found[line.split('from="')[1].split('"')[0]] = float(line.split()[-1])
            return found
        # Which reads the aligned and the unaligned query make.
        before = reads()
        query_range(server.base_url, 'sum_over_time(rollup_probe[1m])', base, base + hour, "60", auth)
        after = reads()
        assert (after["rollups"] - before["rollups"], after["samples"] - before["samples"]) == (1, 0), (before, after)
        query_range(server.base_url, 'sum_over_time(rollup_probe[1m])', base + 7, base + hour, "45", auth)
        last = reads()
        assert (last["rollups"] - after["rollups"], last["samples"] - after["samples"]) == (0, 1), (after, last)
        checked = 0
        for expr in ROLLUP_EXPRESSIONS:
            for start, end, step in [(base, base + 3 * hour, "60"), (base + hour, base + 3 * hour, "1h"),
                                     (base + 60, base + 2 * hour, "300"), (base + 7, base + hour, "45")]:
                theirs = query_range(prometheus, expr, start, end, step)
                ours = query_range(server.base_url, expr, start, end, step, auth)
                assert ours.keys() == theirs.keys(), (expr, step, ours.keys(), theirs.keys())
                for labels, values in theirs.items():
                    mine = ours[labels]
                    assert [t for t, _ in mine] == [t for t, _ in values], (expr, step, labels)
                    assert all(close(a, b) for (_, a), (_, b) in zip(mine, values)), (expr, step, labels, mine, values)
                    checked += len(values)
        assert checked > 5000
    finally:
        terminate(proc, 15)
