"""A simulated device on /ws/device (python websockets, in its own thread).

It authenticates with an API key, streams telemetry (a number, a string state, a
vector and an array) every `period` seconds, records every control frame it receives,
and replies to start_session/stop_session/ping with session_started/session_stopped/pong.
"""
import asyncio
import json
import math
import threading
import time

import websockets


class SimDevice:
    def __init__(self, ws_base: str, key: str, source_id: str, period: float = 0.05):
        self.url = ws_base + "/ws/device"
        self.key = key
        self.source_id = source_id
        self.period = period
        self.received: list[dict] = []      # control frames from the server
        self.errors: list[dict] = []
        self.auth_reply: dict | None = None
        self.sent_points = 0
        self.streaming = True
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop = None
        self.closed_code = None

    def start(self, timeout: float = 15) -> "SimDevice":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulated device did not authenticate")
        if not self.auth_reply or self.auth_reply.get("type") != "authenticated":
            raise RuntimeError(f"device auth failed: {self.auth_reply}")
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def frames(self, type_: str) -> list[dict]:
        return [f for f in list(self.received) if f.get("type") == type_]

    def wait_frame(self, type_: str, timeout: float = 10, after: int = 0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            fs = self.frames(type_)
            if len(fs) > after:
                return fs[after]
            time.sleep(0.05)
        raise AssertionError(f"device never received {type_!r}; got {[f.get('type') for f in self.received]}")

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        try:
            async with websockets.connect(self.url, max_size=2**22) as ws:
                await ws.send(json.dumps({"type": "device_auth", "api_key": self.key, "source_id": self.source_id,
                                          "platform": "sim-python", "agent_version": "9.9.9",
                                          "sensors": [{"name": "IMU", "metrics": ["accel"]}, {"name": "Thermo", "metrics": ["temp"]}]}))
                self.auth_reply = json.loads(await ws.recv())
                self._ready.set()
                if self.auth_reply.get("type") != "authenticated":
                    return
                reader = asyncio.create_task(self._reader(ws))
                seq = 0
                t0 = time.time()
                while not self._stop.is_set() and not reader.done():
                    now = time.time()
                    if self.streaming:
                        seq += 1
                        x = now - t0
                        pts = [
                            {"metric": "temp", "value": round(20 + 5 * math.sin(x), 4), "timestamp": now * 1000},
                            {"metric": "accel", "value": {"x": round(math.sin(x * 3), 4), "y": round(math.cos(x * 3), 4), "z": 9.81}, "timestamp": now * 1000},
                        ]
                        if seq % 10 == 1:
                            pts.append({"metric": "mode", "value": "armed" if int(x) % 4 < 2 else "idle", "timestamp": now * 1000})
                            pts.append({"metric": "wave", "value": [round(math.sin(i / 4 + x), 3) for i in range(64)], "timestamp": now * 1000})
                        await ws.send(json.dumps({"type": "telemetry", "seq": seq, "points": pts}))
                        self.sent_points += len(pts)
                    await asyncio.sleep(self.period)
                reader.cancel()
        except Exception as e:  # noqa: BLE001 - reported through auth_reply/closed_code
            if self.auth_reply is None:
                self.auth_reply = {"type": "exception", "error": repr(e)}
            self.closed_code = repr(e)
            self._ready.set()

    async def _reader(self, ws):
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            m = json.loads(raw)
            t = m.get("type")
            if t == "error":
                self.errors.append(m)
                continue
            if t == "telemetry_ack":
                continue
            self.received.append(m)
            if t == "start_session":
                await ws.send(json.dumps({"type": "session_started", "session_id": m.get("session_id")}))
            elif t == "stop_session":
                await ws.send(json.dumps({"type": "session_stopped", "session_id": m.get("session_id")}))
            elif t == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif t == "stop_stream":
                self.streaming = False
            elif t == "start_stream":
                self.streaming = True
                if isinstance(m.get("interval_ms"), (int, float)) and m["interval_ms"] > 0:
                    self.period = max(0.01, m["interval_ms"] / 1000)


def try_auth(ws_base: str, key: str, source_id: str) -> dict:
    """One device_auth; returns the server's first reply."""
    async def go():
        async with websockets.connect(ws_base + "/ws/device") as ws:
            await ws.send(json.dumps({"type": "device_auth", "api_key": key, "source_id": source_id}))
            return json.loads(await ws.recv())
    return asyncio.run(go())
