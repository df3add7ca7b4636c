"""The live connection survives a server restart: the page shows the state and reconnects with backoff."""
import socket
import time

from conftest import Browser
from plexus_server import launch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reconnects_after_server_restart(server_bin, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    srv = launch(server_bin, data, None, tmp_path / "a.stderr", port=port)
    b = Browser(srv.base_url, "reconnect")
    try:
        b.allowed += ["/api/auth/me - Failed to load resource: the server responded with a status of 401",
                      "WebSocket connection to", "ERR_CONNECTION_REFUSED"]  # expected while the server is down
        b.go("/signup")
        b.el("input[name=email]").send_keys("rc@example.com")
        b.el("input[name=password]").send_keys("reconnect 123")
        b.el("form button[type=submit]").click()
        b.wait(lambda: b.d.current_url.endswith("/devices"))
        b.wait(lambda: "live" in b.el("#conn").get_attribute("class").split(), msg="never live")
        srv.stop()
        b.wait(lambda: "reconnecting" in b.el("#conn").get_attribute("class").split(), msg="lost connection not shown")
        assert "reconnecting" in b.el("#conn").text
        b.shot("reconnecting")
        time.sleep(1)  # the outage lasts a second (the scenario), not a synchronisation
        srv = launch(server_bin, data, None, tmp_path / "b.stderr", port=port)
        b.wait(lambda: "live" in b.el("#conn").get_attribute("class").split(), timeout=40, msg="did not reconnect")
        assert b.el("#topbar").is_displayed() and "/devices" in b.d.current_url
        assert not b.severe(), b.console
    finally:
        b.quit()
        srv.stop()
