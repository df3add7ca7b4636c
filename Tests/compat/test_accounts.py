"""The dashboard socket signs in with the session cookie, as a browser would.

A browser sends the cookie and the page's Origin with the WebSocket upgrade; the
server accepts the cookie only when that Origin is the server itself (no cross-site
WebSocket hijacking), and gives read-only people no control.
"""
import json

import requests
from websockets.sync.client import connect


def sign_up(server, email, password="a good password", invite=None):
    s = requests.Session()
    body = {"email": email, "password": password}
    if invite:
        body["invite"] = invite
    r = s.post(server.base_url + "/api/auth/signup", json=body, timeout=30)
    assert r.status_code == 201, r.text
    s.headers["x-csrf-token"] = r.json()["csrf_token"]
    return s


def first_frame(server, cookie, origin, frame='{"type":"browser_auth"}'):
    headers = {}
    if cookie:
        headers["Cookie"] = f"plexus_session={cookie}"
    if origin:
        headers["Origin"] = origin
    with connect(server.ws_url + "/ws/browser", additional_headers=headers, open_timeout=10) as ws:
        ws.send(frame)
        return json.loads(ws.recv(timeout=10))


def test_browser_auth_with_cookie(server):
    owner = sign_up(server, "owner@example.com")
    cookie = owner.cookies["plexus_session"]

    init = first_frame(server, cookie, server.base_url)
    assert init["type"] == "init" and init["can_control"] is True and init["org_id"] == "default"
    # A client that is no browser (no Origin) may use the cookie too.
    assert first_frame(server, cookie, None)["type"] == "init"
    # Another site's page: the browser attaches the cookie, the server ignores it.
    for evil in ["http://evil.example", server.base_url + ".evil.example", "http://127.0.0.1:1"]:
        reply = first_frame(server, cookie, evil)
        assert reply == {"type": "error", "message": "Invalid session"}, evil
    # No cookie, or one that was signed out.
    assert first_frame(server, None, server.base_url)["message"] == "Invalid session"
    assert owner.post(server.base_url + "/api/auth/signout", timeout=30).status_code == 204
    assert first_frame(server, cookie, server.base_url)["message"] == "Invalid session"


def test_viewer_cannot_control(server):
    owner = sign_up(server, "owner@example.com")
    invite = owner.post(server.base_url + "/api/invites", json={"role": "viewer"}, timeout=30).json()["token"]
    viewer = sign_up(server, "viewer@example.com", invite=invite)
    with connect(server.ws_url + "/ws/browser", open_timeout=10,
                 additional_headers={"Cookie": f"plexus_session={viewer.cookies['plexus_session']}",
                                     "Origin": server.base_url}) as ws:
        ws.send('{"type":"browser_auth"}')
        init = json.loads(ws.recv(timeout=10))
        assert init["type"] == "init" and init["can_control"] is False
        ws.send('{"type":"ping","source_id":"rig-1"}')
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "error" and "control" in json.dumps(reply).lower(), reply
