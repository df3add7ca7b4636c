"""A full disk: the data dir on an 8 MiB tmpfs (needs root to mount; skipped otherwise).

The test acknowledges some points, fills the tmpfs with a filler file and then with
ingest until ingest answers 503, and checks that meanwhile the server stays up, /health
answers, and queries of what was acknowledged answer 200 (complete) or 503, never 500.
Then it deletes the filler file and requires ingest to recover *without a restart*
within 10 s, every acknowledged point to be readable, and, after a kill -9 and a
restart, every acknowledged point to be stored exactly once.
"""
import errno
import os
import time

import requests

from chaos_clients import HttpWriter, check_stored, read_points

T0_MS = 1_700_000_000_000
RECOVERY_S = 10
HEADROOM = 256 << 10   # bytes the filler leaves, for ingest to use up


def fill(path, leave: int) -> int:
    """Writes a file until the filesystem has about `leave` bytes free (or is full)."""
    st = os.statvfs(path.parent)
    target = max(0, st.f_bavail * st.f_frsize - leave)
    written = 0
    chunk = b"\0" * (64 << 10)
    with open(path, "wb", buffering=0) as f:
        for _ in range(1 + target // len(chunk) * 2):
            if written >= target:
                break
            try:
                written += f.write(chunk[: min(len(chunk), target - written)])
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    return written


def test_full_disk_answers_503_and_recovers_without_restart(tmpfs, start_server):
    mount = tmpfs("8m")
    data_dir = mount / "data"
    data_dir.mkdir()
    server = start_server(data_dir=data_dir)
    key = server.key
    w = HttpWriter(server.base_url, key, "disk-1", T0_MS, batch=200, timeout=30)
    problems: list[str] = []

    # 1. Some acknowledged points, readable.
    for _ in range(10):
        assert w.post_once() == 200, f"ingest before the disk filled: {w.statuses}"
    before = set(w.acked)
    assert len(read_points(server.base_url, key, w.source, T0_MS, T0_MS + w.next_k)) == len(before)

    # 2. Fill the disk: a filler file, then ingest until it answers 503 (bounded).
    filler = mount / "filler"
    filled = fill(filler, HEADROOM)
    first_503 = None
    for i in range(500):
        status = w.post_once()
        if status == 503:
            first_503 = i
            break
        assert status == 200, f"ingest on a filling disk answered {status} (expected 200 or 503): {w.statuses}"
    assert first_503 is not None, (f"ingest never answered 503 on a full disk ({filled} bytes of filler, "
                                   f"{w.statuses})")
    for _ in range(5):  # still full: 503 (or 200 if a cut-off failed write made room), never 500
        status = w.post_once()
        assert status in (200, 503), f"ingest on a full disk answered {status} after a 503"

    # 3. Meanwhile the server is up and reads answer cleanly.
    assert server.proc.poll() is None, "the server exited when the disk filled"
    assert requests.get(server.base_url + "/health", timeout=10).status_code == 200
    read_statuses = []
    for _ in range(3):
        r = requests.get(f"{server.base_url}/v1/sources/{w.source}/metrics/query",
                         params={"metrics": "m", "interval": "raw", "start": T0_MS, "end": T0_MS + len(before)},
                         headers={"x-api-key": key}, timeout=60)
        read_statuses.append(r.status_code)
        assert r.status_code in (200, 503), f"query on a full disk: HTTP {r.status_code}: {r.text[:300]}"
        if r.status_code == 200:
            got = r.json()["series"].get("m", {"value": []})["value"]
            assert sorted(int(v) for v in got) == sorted(before), "a query on a full disk answered 200 with data missing"
        else:
            assert r.json().get("code") == "UNAVAILABLE", r.text
    assert server.proc.poll() is None, "the server exited while the disk was full"

    # 4. Free the space: ingest must recover without a restart.
    filler.unlink()
    freed_at = time.monotonic()
    recovered_after = None
    for _ in range(int(RECOVERY_S / 0.2) + 1):
        status = w.post_once(50)
        assert status in (200, 503), f"ingest after freeing space answered {status}"
        if status == 200:
            recovered_after = time.monotonic() - freed_at
            break
        if time.monotonic() - freed_at > RECOVERY_S:
            break
        time.sleep(0.2)  # retry pacing of a client after a 503 (Retry-After: 1), not a synchronisation
    if recovered_after is None:
        problems.append(f"ingest did not recover within {RECOVERY_S} s of freeing the space without a restart "
                        f"(still 503; statuses {dict(w.statuses)})")
    else:
        for _ in range(10):
            status = w.post_once()
            if status != 200:
                problems.append(f"after recovering, ingest answered {status} again")
                break
        try:
            problems += check_stored(server.base_url, key, w)
        except AssertionError as e:
            problems.append(f"reading back without a restart: {e}")
    assert 500 not in w.statuses, f"ingest answered 500: {w.statuses}"

    # 5. Crash and restart: every acknowledged point exactly once.
    server.kill9()
    server = start_server(data_dir=data_dir, key=key)
    problems += [f"after kill -9 and restart: {p}" for p in check_stored(server.base_url, key, w)]
    summary = (f"{len(w.acked)} points acked, {len(w.refused)} refused with 503; first 503 after {first_503} requests "
               f"with {filled >> 10} KiB of filler; reads while full: {read_statuses}; "
               f"recovered after {recovered_after if recovered_after is None else round(recovered_after, 2)} s")
    print(summary)
    assert not problems, "\n".join(problems) + "\n" + summary
