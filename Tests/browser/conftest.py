"""Browser tests of the dashboard against a real plexus-server.

PLEXUS_SERVER_BIN points at the built server. One server (fresh data dir, port 0,
serving the dashboard files built into it, or PLEXUS_DASHBOARD_DIR's if that is set)
serves the whole module; browsers are headless
Chromium driven by Debian's chromedriver.
"""
import json
import os
import sys
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from plexus_server import launch, server_bin_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def server_bin() -> str:
    return server_bin_path()


@pytest.fixture(scope="module")
def server(server_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("plexus")
    (d / "data").mkdir()
    # Open sign-up: the suite signs up a second, unrelated organisation (invite-only, the
    # default, is covered by the Swift account tests).
    s = launch(server_bin, d / "data", None, d / "server.stderr", env={"PLEXUS_OPEN_SIGNUP": "1"})
    yield s
    s.stop()


def make_driver(width=1400, height=1000):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


class Browser:
    """A Chromium with helpers; collects console errors."""

    def __init__(self, base_url: str, name: str):
        self.base = base_url
        self.name = name
        self.d = make_driver()
        self.console: list[dict] = []
        self.allowed: list[str] = []   # substrings of console errors a test provokes on purpose

    def go(self, path: str):
        self.d.get(self.base + path)

    def wait(self, cond, timeout=15, msg=""):
        return WebDriverWait(self.d, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond(), message=msg)

    def el(self, css, timeout=15):
        return self.wait(lambda: self._vis(css), timeout, f"no visible element {css!r} on {self.d.current_url}")

    def _vis(self, css):
        for e in self.d.find_elements(By.CSS_SELECTOR, css):
            if e.is_displayed():
                return e
        return None

    def els(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def fetch(self, path, method="GET", body=None, csrf=True):
        """fetch() inside the page (the session cookie goes along); returns {status, text}."""
        return self.d.execute_async_script("""
            const [path, method, body, csrf, done] = arguments;
            const headers = {};
            if (body != null) headers['content-type'] = 'application/json';
            const tok = window.__plexus && window.__plexus.state.csrf;
            if (csrf && tok && method !== 'GET') headers['x-csrf-token'] = tok;
            fetch(path, {method, headers, body: body == null ? undefined : JSON.stringify(body)})
              .then(async r => done({status: r.status, text: await r.text(), type: r.headers.get('content-type')}))
              .catch(e => done({status: -1, text: String(e)}));
        """, path, method, body, csrf)

    def shot(self, name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self.d.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def collect_console(self):
        for entry in self.d.get_log("browser"):
            self.console.append(entry)

    def severe(self):
        self.collect_console()
        out = []
        for e in self.console:
            if e.get("level") != "SEVERE":
                continue
            if any(a in e.get("message", "") for a in self.allowed):
                continue
            out.append(e["message"])
        self.console.clear()
        return out

    def quit(self):
        self.d.quit()


class BrowserPool:
    def __init__(self, base_url):
        self.base_url = base_url
        self.made: dict[str, Browser] = {}

    def __call__(self, name="main") -> Browser:
        if name not in self.made:
            self.made[name] = Browser(self.base_url, name)
        return self.made[name]

    def quit(self):
        for b in self.made.values():
            b.quit()


@pytest.fixture(scope="module")
def browsers(server):
    pool = BrowserPool(server.base_url)
    yield pool
    pool.quit()


@pytest.fixture(autouse=True)
def no_console_errors(request):
    """Fails a test if any browser logged a console error (SEVERE) during it."""
    yield
    pool = request.node.funcargs.get("browsers")
    if pool is None:
        return
    errs = {name: s for name, b in pool.made.items() if (s := b.severe())}
    assert not errs, "browser console errors:\n" + json.dumps(errs, indent=1)
