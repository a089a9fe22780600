"""A small synchronous driver for headless Chromium over the DevTools protocol.

Debian's `chromium` package plus the `websockets` client: nothing is downloaded at test time
(Playwright would want its own browser build). Only what the web tests need: navigate, run
JavaScript, wait for a condition, take a screenshot, switch between desktop and mobile widths, and
the three checks every page must pass: axe-core (from npm, `tests/web/node_modules`) finds no serious
or critical violation, the console shows no error, and no request goes to another host.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-port=0", "--window-size=1280,900"]


AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
DESKTOP = (1280, 900)
MOBILE = (390, 844)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class JSError(AssertionError):
    pass


class Browser:
    """One headless Chromium with one page; `close()` ends the process and removes its profile."""

    def __init__(self, executable: str, timeout: float = 30, extra_flags: tuple[str, ...] = ()):
        self.profile = tempfile.mkdtemp(prefix="mutoscope-chromium-")
        self.proc = subprocess.Popen([executable, *FLAGS, *extra_flags, f"--user-data-dir={self.profile}",
                                      "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._devtools_port(timeout)
        deadline = time.time() + timeout
        while True:
            try:
                pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                         if t["type"] == "page"]
                if pages:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium opened no page")
            time.sleep(0.1)
        # Entered by hand (closed in close()): the connection outlives any one `with` block.
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout).__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Network.enable")
        self.viewport(*DESKTOP)

    def _devtools_port(self, timeout: float) -> int:
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                # Keep draining stderr so a chatty browser never blocks on a full pipe.
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return int(m.group(1))
        raise RuntimeError("chromium did not start:\n" + "".join(seen[-20:]))

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.time() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.time())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str, timeout: float = 30):
        """The value of a JS expression (promises awaited)."""
        r = self.send("Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise JSError(r["exceptionDetails"].get("exception", {}).get("description")
                          or r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 30, interval: float = 0.1):
        """Poll until the expression is truthy; navigations in between (a destroyed context) are retried."""
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            try:
                value = self.eval(expression)
                if value:
                    return value
            except (JSError, RuntimeError) as e:
                last = e
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {expression!r} (last error: {last}); page: {self.url}")

    def _mark(self) -> str:
        """Tag the current document so `_loaded` can tell when another one has replaced it."""
        marker = f"m{next(self.ids)}"
        self.eval(f"window.__page = {json.dumps(marker)}")
        return marker

    def _loaded(self, marker: str, timeout: float) -> None:
        self.wait(f"window.__page !== {json.dumps(marker)} && document.readyState === 'complete'", timeout)

    def goto(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the page (after any redirects) to finish loading."""
        marker = self._mark()
        self.send("Page.navigate", url=url)
        self._loaded(marker, timeout)

    def submit(self, form_selector: str, fields: dict[str, str] | None = None, timeout: float = 30) -> None:
        """Fill fields by name, click the form's submit button and wait for the next page to load."""
        js = [f"var f = document.querySelector({json.dumps(form_selector)});",
              "if (!f) throw new Error('no form ' + " + json.dumps(form_selector) + ");"]
        for name, value in (fields or {}).items():
            js.append(f"f.elements[{json.dumps(name)}].value = {json.dumps(value)};")
        js.append("var b = f.querySelector('[type=submit]'); if (b) b.click(); else f.requestSubmit();")
        marker = self._mark()
        self.eval("(function(){" + "".join(js) + "})()")
        self._loaded(marker, timeout)

    def viewport(self, width: int, height: int, mobile: bool | None = None) -> None:
        """Emulate a screen size; widths under 600 px also emulate a touch phone."""
        mobile = width < 600 if mobile is None else mobile
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)
        self.send("Emulation.setTouchEmulationEnabled", enabled=mobile)

    def _drain(self) -> None:
        """Pull in the events the browser has sent so far (they arrive between command replies)."""
        self.eval("0")

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the browser logged since the last call."""
        self._drain()
        found, kept = [], []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                    for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                found.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
            elif m == "Network.requestWillBeSent":  # foreign_requests() reads these
                kept.append(e)
        self.events = kept
        return found

    def foreign_requests(self) -> list[str]:
        """URLs of requests since the last call that went anywhere but this machine's loopback."""
        self._drain()
        found, kept = [], []
        for e in self.events:
            if e.get("method") != "Network.requestWillBeSent":
                kept.append(e)
                continue
            url = e["params"]["request"]["url"]
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about", "chrome", "devtools"):
                continue
            if (parts.hostname or "") not in LOCAL_HOSTS and f"[{parts.hostname}]" not in LOCAL_HOSTS:
                found.append(url)
        self.events = kept
        return found

    def axe(self, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
        """axe-core's violations of the given impacts on the current page (injected, never fetched)."""
        if not AXE.exists():
            raise AssertionError(f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}")
        if not self.eval("typeof window.axe === 'object'"):
            self.send("Runtime.evaluate", expression=AXE.read_text(), returnByValue=True)
        result = self.eval("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
                           "v => ({id: v.id, impact: v.impact, help: v.help, "
                           "nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))", timeout=60)
        return [v for v in result if v.get("impact") in impacts]

    def check_page(self) -> None:
        """The bar every page meets: accessible (axe), no console errors, nothing fetched from elsewhere."""
        where = self.url
        violations = self.axe()
        assert not violations, f"{where}: accessibility violations: {json.dumps(violations, indent=1)}"
        errors = self.console_errors()
        assert not errors, f"{where}: console errors: {errors}"
        foreign = self.foreign_requests()
        assert not foreign, f"{where}: requests to other hosts: {foreign}"

    @property
    def url(self) -> str:
        try:
            return self.eval("location.href")
        except Exception:
            return "?"

    def text(self, selector: str = "body") -> str:
        return self.eval(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
