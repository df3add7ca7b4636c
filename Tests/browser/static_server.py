"""A tiny static server for chart pages without the Plexus server: /assets/* from the
dashboard's Public/assets, and /<name>.html from Tests/browser/. Loopback only."""
import http.server
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ROOT / "Sources" / "PlexusDashboard" / "Public"
HERE = Path(__file__).resolve().parent


class Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path.startswith("/assets/"):
            return str(PUBLIC / path.lstrip("/"))
        name = path.lstrip("/")
        if name.endswith(".html") and "/" not in name:
            return str(HERE / name)
        return str(HERE / "__missing__")

    def log_message(self, *args):
        pass


Handler.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".css": "text/css"}


def start():
    """Starts the server on a free loopback port; returns (server, base_url)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"
