"""A small synchronous driver for headless Chromium over the DevTools protocol.

Debian's `chromium` package plus the `websockets` client: nothing is downloaded at test time
(Playwright would want its own browser build). Only what the web tests need: navigate, run
JavaScript, wait for a condition, take a screenshot.
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

import httpx
from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-port=0", "--window-size=1280,900"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class JSError(AssertionError):
    pass


class Browser:
    """One headless Chromium with one page; `close()` ends the process and removes its profile."""

    def __init__(self, executable: str, timeout: float = 30):
        self.profile = tempfile.mkdtemp(prefix="mutoscope-chromium-")
        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
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
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)

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

    # --- protocol ---------------------------------------------------------------------------------
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

    # --- conveniences -----------------------------------------------------------------------------
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
