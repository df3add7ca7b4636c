"""kill -9 in the middle of mixed HTTP and WebSocket ingest.

Three HTTP writers (POST /ingest, 50 points a request) and three WebSocket devices
(`acks: true`, 50 points a frame, 4 frames in flight) write distinct points; the server
is killed with SIGKILL while they stream, restarted over the same data dir, and every
source is read back: every acknowledged point (HTTP 200, `telemetry_ack`) must be stored
exactly once, no unacknowledged point twice, nothing that was never sent, and the rollups
must count what the raw query returns (a replay applied twice would double them). Then,
as an SDK does after reconnecting, every client sends again what it has no ack for and
its last acknowledged batch (as if that ack had been lost): every point must still be
stored exactly once, rollups included. Three rounds on the same data dir, each killing
at another moment:

1. as soon as every client has its first acknowledgement (the points are in the WAL and
   the in-memory head, none in SQLite yet);
2. after the flusher has moved data into SQLite twice during the round (the data is split
   between SQLite and the head, and the WAL checkpoint has moved);
3. once 100,000 points were acknowledged in the round (a long stream, many group commits).

Each round runs on the server the previous round restarted, so rounds 2 and 3 also crash
a server that has just replayed a log.
"""
import time

from chaos_clients import HttpWriter, WsDevice, check_stored, prometheus_value, resend, wait_until

T0_MS = 1_700_000_000_000
FLUSHES = "plexus_store_flush_seconds_count"


def start_writers(server, round_no: int):
    writers = [HttpWriter(server.base_url, server.key, f"k{round_no}-http-{i}", T0_MS) for i in range(3)]
    writers += [WsDevice(server.ws_url, server.key, f"k{round_no}-ws-{i}", T0_MS) for i in range(3)]
    for w in writers:
        w.start()
    return writers


def kill_moment(server, writers, round_no: int) -> str:
    """Waits for this round's moment to kill (bounded) and says what it was."""
    wait_until(lambda: all(w.acked_count > 0 or w.error for w in writers), 20, what="a first ack for every client")
    failed = [f"{w.source}: {w.error}" for w in writers if w.error]
    if failed:
        status = server.proc.poll()
        alive = "still running" if status is None else f"exited with {status}"
        tail = server.stderr_path.read_text(errors="replace")[-4000:] if server.stderr_path else ""
        raise AssertionError(f"clients failed before the kill: {failed}\nthe server is {alive}; its stderr ends:\n{tail}")
    if round_no == 0:
        return "right after every client's first ack"
    if round_no == 1:
        flushes = prometheus_value(server.base_url, FLUSHES)
        wait_until(lambda: prometheus_value(server.base_url, FLUSHES) >= flushes + 2, 20, interval=0.1,
                   what="two flushes to SQLite during the stream")
        return "after two flushes during the stream"
    wait_until(lambda: sum(w.acked_count for w in writers) >= 100_000, 60, interval=0.05,
               what="100,000 acknowledged points in the round")
    return "after 100,000 acknowledged points"


def test_kill9_during_mixed_http_and_websocket_ingest(start_server):
    server = start_server()
    data_dir, key = server.data_dir, server.key
    everyone = []
    report = []
    for round_no in range(3):
        writers = start_writers(server, round_no)
        try:
            moment = kill_moment(server, writers, round_no)
        finally:
            server.kill9()
        killed_at = time.monotonic()
        # Every client was still streaming, so its next request or frame fails against the
        # dead server. A thread whose last request was answered just before the kill may not
        # have run since: give each a moment to try again before stopping it.
        deadline = time.monotonic() + 10
        while any(not w.error for w in writers) and time.monotonic() < deadline:
            time.sleep(0.02)
        for w in writers:
            w.stop()
        idle = [w.source for w in writers if not w.error]
        assert not idle, f"round {round_no + 1}: clients that had stopped before the kill: {idle}"
        acked = sum(len(w.acked) for w in writers)
        unsure = sum(len(w.unsure) for w in writers)
        assert all(w.acked for w in writers), f"round {round_no + 1}: a client had no acknowledged point"
        report.append(f"round {round_no + 1} ({moment}): {acked} points acked, {unsure} in flight at the kill")
        everyone += writers

        server = start_server(data_dir=data_dir, key=key)
        restarted_in = time.monotonic() - killed_at
        problems = []
        for w in everyone:
            problems += check_stored(server.base_url, key, w)
        assert not problems, (f"after the kill in round {round_no + 1} ({moment}) and a restart "
                              f"({restarted_in:.1f} s):\n  " + "\n  ".join(problems) + "\n" + "\n".join(report))
        resent = 0
        for w in writers:
            with w.lock:
                again = list(w.unsure) + w.acked[-w.batch:]
            resent += resend(server.base_url, key, w, again)
        problems = []
        for w in everyone:
            problems += check_stored(server.base_url, key, w)
        assert not problems, (f"after resending {resent} points in round {round_no + 1}:\n  "
                              + "\n  ".join(problems) + "\n" + "\n".join(report))
        report[-1] += f"; {resent} resent, stored once"
    print("\n".join(report))
    server.stop()
    assert server.proc.returncode == 0, f"the last server did not stop cleanly: exit {server.proc.returncode}"
