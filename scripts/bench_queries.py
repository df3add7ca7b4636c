"""Query hooks of the shared benchmark harness (../shared/bench, --query-style module:FILE)
for plexus-server's read API:

  GET /v1/sources/{id}/metrics/query?metrics=a,b&start=MS&end=MS&interval=raw|1m|1h
      -> {"interval", "auto_downsampled", "truncated",
          "series": {metric: {"timestamp_ms": [...], "value": [...]}}}            (raw)
          "series": {metric: {"timestamp_ms", "min", "max", "avg", "count"}}       (buckets)

start/end are epoch ms here (numbers >= 1e12 are ms); end is exclusive, the harness's
end_ms inclusive, hence end_ms + 1.

With PLEXUS_BENCH_QUERIES=promql (scripts/bench --promql), bucket_avg asks the
Prometheus-style query API the very query the harness sends VictoriaMetrics, in one
request: GET /api/v1/query_range?query=avg(avg_over_time(M[1m]))&step=60s over the same
minutes (M in the quoted form, `{"temperature"}`, which also fits dotted names).

The harness times raw_range and bucket_avg (HTTP round trips only) and calls the *_rows
functions, untimed, to check the answers. ctx["http"] sends the bench API key.
"""
import json
import os
import sys
import urllib.parse

# Metric names as the server stores them: line protocol's `temperature value=…` is the
# metric `temperature.value` (scripts/bench --line-protocol sets ".value").
SUFFIX = os.environ.get("PLEXUS_BENCH_METRIC_SUFFIX", "")
PROMQL = os.environ.get("PLEXUS_BENCH_QUERIES", "") == "promql"


def _path(source_id):
    return "/v1/sources/" + urllib.parse.quote(source_id, safe="") + "/metrics/query"


def _get(ctx, source_id, **params):
    params.update(start=ctx["start_ms"], end=ctx["end_ms"] + 1)
    path = _path(source_id) + "?" + urllib.parse.urlencode(params)
    status, body = ctx["http"].get(path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
    return body


def _series(body, what):
    doc = json.loads(body)
    if doc.get("truncated") or doc.get("auto_downsampled"):
        print(f"bench_queries: {what}: truncated={doc.get('truncated')} "
              f"auto_downsampled={doc.get('auto_downsampled')}", file=sys.stderr)
    return doc["series"]


def count(ctx):
    """Points stored for this run: 1-hour buckets of every metric of every source, summed."""
    total = 0
    for source_id in ctx["sources"]:
        doc = json.loads(_get(ctx, source_id, interval="1h"))
        if doc.get("truncated"):
            raise RuntimeError(f"count query for {source_id} was truncated")
        total += sum(sum(s["count"]) for s in doc["series"].values())
    return total


def raw_range(ctx):
    rs = ctx["raw_series"]
    return _get(ctx, rs["source_id"], metrics=rs["metric"] + SUFFIX, interval="raw")


def raw_range_rows(body):
    series = _series(body, "raw_range")
    return sum(len(s["timestamp_ms"]) for s in series.values())


def bucket_avg(ctx):
    if PROMQL:
        return _promql_bucket_avg(ctx)
    # The read API is per source, so this is one request per source (10 sequential
    # round trips in the default workload), timed together; the peers answer it in one.
    return [_get(ctx, source_id, metrics=ctx["bucket_metric"] + SUFFIX, interval="1m") for source_id in ctx["sources"]]


def _promql_bucket_avg(ctx):
    # The harness's VictoriaMetrics query (../shared/bench/peers.py), step for step.
    start = (ctx["start_ms"] // 60000 + 1) * 60
    end = ctx["end_ms"] // 1000 + 60
    query = 'avg(avg_over_time({"%s"}[1m]))' % (ctx["bucket_metric"] + SUFFIX)
    path = "/api/v1/query_range?" + urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": "60s"})
    status, body = ctx["http"].get(path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
    return body


def bucket_avg_rows(bodies):
    """Rows of the merged answer: distinct 1-minute bucket timestamps over all sources."""
    if PROMQL:
        result = json.loads(bodies)["data"]["result"]
        return len(result[0]["values"]) if result else 0
    buckets = set()
    for body in bodies:
        for s in _series(body, "bucket_avg").values():
            buckets.update(s["timestamp_ms"])
    return len(buckets)
