"""Dashboards that stop reading must not slow devices, other dashboards or memory, and a
dashboard stalled for long must be closed by the server.

A device streams 50 frames/s (50 points and an 8 KiB string each, acknowledged) while a
normal dashboard, subscribed to it, reads everything. Then five dashboards sign in with
the key, subscribe to the device, and never read again (SO_RCVBUF 4 KiB, no recv), so the
server's writes to them back up (checked: their server-side send queues fill). While they
are connected:

* the device keeps its rate (≥ 90 % of 50 frames/s acknowledged) and its acks stay fast
  (95th percentile < 250 ms, none over 2 s);
* the normal dashboard's newest live point is never more than 2 s old;
* the server's RSS grows by less than 200 MB.

And the stalled dashboards must be closed by the server within 30 s of their stall
(`/health` `browsers` back to 1, and each stalled socket, drained, reaches its end).
"""
import statistics
import time

import requests

from chaos_clients import Dashboard, RawWebSocket, WsDevice, prometheus_value, rss_kb, wait_until

T0_MS = 1_700_000_000_000
RATE = 50
STALLED = 5
CLOSE_WITHIN_S = 30
RSS_BUDGET_KB = 200 * 1024


def server_send_queues(server_port: int, client_ports: set[int]) -> dict[int, int]:
    """Bytes waiting in the server's send queue for each client port (from /proc/net/tcp)."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) in client_ports:
                out[int(remote.split(":")[1], 16)] = int(queues.split(":")[0], 16)
    return out


def browsers(server) -> int:
    return int(prometheus_value(server.base_url, "plexus_dashboards_connected"))


def test_stalled_dashboards_do_not_slow_devices_and_are_closed(start_server):
    server = start_server()
    stalled: list[RawWebSocket] = []
    try:
        check_stalled_dashboards(server, stalled)
    finally:
        for d in stalled:
            d.close()


def check_stalled_dashboards(server, stalled: list):
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    pid = server.proc.pid
    device = WsDevice(server.ws_url, server.key, "busy-1", T0_MS, batch=50, window=8, rate=RATE, value_pad=8192)
    device.start()
    normal = None
    try:
        assert device.authenticated.wait(10), f"device did not authenticate: {device.error}"
        normal = Dashboard(server.ws_url, server.key, "busy-1")
        normal.start()
        wait_until(lambda: normal.age_s() < 1, 10, what="the normal dashboard receiving live data")

        rss_before = rss_kb(pid)
        for _ in range(STALLED):
            d = RawWebSocket(host, port, "/ws/browser", rcvbuf=4096)
            stalled.append(d)
            d.send_json({"type": "auth", "api_key": server.key})
            d.wait_json(lambda f: f.get("type") in ("init", "error"), 10, "init")
            d.send_json({"type": "subscribe", "source_id": "busy-1"})
            d.wait_json(lambda f: f.get("type") == "subscribed", 10, "subscribed")
            # from here on, never read
        stalled_at = time.monotonic()
        assert browsers(server) == STALLED + 1
        client_ports = {d.sock.getsockname()[1] for d in stalled}

        acked_at_stall = device.acked_count // device.batch
        ages, rss, backed_up = [], [], set()
        open_for = None
        for _ in range(int(CLOSE_WITHIN_S / 0.5) + 2):
            t = time.monotonic() - stalled_at
            ages.append((round(t, 1), round(normal.age_s(), 2)))
            rss.append(rss_kb(pid))
            backed_up |= {p for p, q in server_send_queues(port, client_ports).items() if q > 0}
            if browsers(server) == 1:
                open_for = t
                break
            if t > CLOSE_WITHIN_S:
                break
            time.sleep(0.5)  # sampling interval
        window = time.monotonic() - stalled_at
        frames = device.acked_count // device.batch - acked_at_stall
        with device.lock:
            latencies = sorted(device.latencies[acked_at_stall:]) or [float("inf")]
    finally:
        device.stop()
        if normal is not None:
            normal.stop()

    assert device.error is None, f"device: {device.error}"
    assert normal.error is None, f"normal dashboard: {normal.error}"
    assert backed_up == client_ports, (f"only {len(backed_up)} of {STALLED} stalled dashboards ever had data waiting in "
                                       f"the server's send queue: they were not really stalled")
    p95 = latencies[int(len(latencies) * 0.95)]
    summary = (f"over {window:.1f} s with {STALLED} stalled dashboards: {frames} frames acked "
               f"({frames / window:.1f}/s of {RATE}), ack p50 {statistics.median(latencies) * 1000:.0f} ms "
               f"p95 {p95 * 1000:.0f} ms max {latencies[-1] * 1000:.0f} ms; normal dashboard age max "
               f"{max(a for _, a in ages):.2f} s; RSS {rss_before // 1024} MB, max {max(rss) // 1024} MB; "
               f"stalled dashboards closed after {open_for if open_for is None else round(open_for, 1)} s")
    print(summary)
    assert frames >= 0.9 * RATE * window - RATE, f"the device slowed down: {summary}"
    assert p95 < 0.25 and latencies[-1] < 2, f"acks slowed down: {summary}"
    stale = [(t, a) for t, a in ages if a > 2]
    assert not stale, f"the normal dashboard's data went stale (s since stall, age s): {stale[:10]}; {summary}"
    assert max(rss) - rss_before < RSS_BUDGET_KB, f"the server's RSS grew too much: {summary}"

    assert open_for is not None, (f"the server had not closed the {STALLED} stalled dashboards {CLOSE_WITHIN_S} s after "
                                  f"they stopped reading (/health browsers={browsers(server)}); {summary}")
    ends = [d.closed_by_peer(10) for d in stalled]
    assert all(ends), f"/health counts the stalled dashboards gone, but their sockets did not end: {ends}"
