"""The security-headers policy in a real Chromium: every page works under its CSP with no violation, axe stays
clean, and a page of another origin cannot frame a signed-in page (the one-click Delete, Revoke and Share
buttons cannot be overlaid)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from tests.conftest import free_port

PAGES = ["/", "/videos/new", "/storyboards/new", "/feed", "/cameos", "/cameos/new", "/characters", "/settings/account",
         "/settings/sessions", "/settings/keys", "/settings/webhooks", "/settings/usage", "/settings/invites"]


@pytest.fixture(scope="module")
def video_id(web) -> str:
    video = web.client().videos.create_and_poll(prompt="a lighthouse under the CSP", seconds="4", size="512x288",
                                               extra_body={"num_inference_steps": 2})
    assert video.status == "completed", video.error
    return video.id


@pytest.fixture(scope="module")
def signed_in(web, browser):
    browser.goto(web.base_url + "/signin")
    browser.submit("form[action='/signin']", {"api_key": web.api_key})
    assert "/signin" not in browser.url
    browser.console_errors()
    return browser


def test_every_response_carries_the_policy(web, video_id):
    http = web.http()
    for path, kind in [("/signin", "page"), ("/v1/models", "data"), (f"/v1/videos/{video_id}/content", "data"),
                       ("/static/app.js", "data"), ("/nowhere", "data")]:
        r = http.get(path)
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert h["referrer-policy"] in ("same-origin", "no-referrer"), path
        assert "strict-transport-security" not in h, path  # plain http: no HSTS
        if kind == "page":
            assert "script-src 'self';" in h["content-security-policy"]
            assert "unsafe-inline" not in h["content-security-policy"]


def test_pages_work_under_the_csp_with_no_violation(web, signed_in, video_id):
    b = signed_in
    for path in [*PAGES, f"/videos/{video_id}"]:
        b.goto(web.base_url + path)
        assert "/signin" not in b.url, path
        b.check_page()  # axe, console errors (a CSP violation is one), nothing from other hosts
    # The video page's player actually plays the media under media-src 'self'.
    b.goto(web.base_url + f"/videos/{video_id}")
    b.wait("(() => { const v = document.querySelector('video'); return v && v.readyState >= 1; })()")
    # The create page's script ran (a blocked script would leave its controls inert).
    b.goto(web.base_url + "/videos/new")
    assert b.eval("document.getElementById('model-options') !== null")
    assert not b.console_errors()


@pytest.mark.parametrize("path, ready", [("/docs", "document.querySelector('.swagger-ui .info') !== null"),
                                         ("/redoc", "document.querySelector('.api-content') !== null")])
def test_api_docs_render_under_their_own_policy(web, browser, path, ready):
    browser.goto(web.base_url + path)
    browser.wait(ready, timeout=60)
    # ReDoc's footer asks cdn.redoc.ly for its logo: the policy refusing that is the policy working (this
    # server's pages ask no other host); nothing of this server's own may be refused.
    errors = [e for e in browser.console_errors() if "https://cdn.redoc.ly/" not in e]
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        body = (f'<!doctype html><title>prize</title><iframe id="f" src="{self.target}" width="800" height="600">'
                '</iframe>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_page_of_another_origin_cannot_frame_a_signed_in_page(web, signed_in):
    """Another port of the same host is same-site, so the session cookie rides along into the frame: only
    frame-ancestors / X-Frame-Options stop the page from rendering inside it."""
    b = signed_in
    _Attacker.target = web.base_url + "/settings/keys"
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        b.console_errors()
        b.goto(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 15
        framed = None
        while time.time() < deadline:
            tree = b.send("Page.getFrameTree")["frameTree"]
            children = tree.get("childFrames", [])
            framed = children[0]["frame"] if children else None
            if framed and framed.get("url", "").startswith(("chrome-error:", "about:")) \
                    or framed and framed.get("url") == web.base_url + "/settings/keys":
                break
            time.sleep(0.2)
        errors = b.console_errors()
        blocked = any("frame-ancestors" in e or "X-Frame-Options" in e or "Refused to display" in e for e in errors)
        # The frame either never got the page's document, or the browser says it refused to show it.
        assert framed is not None
        assert blocked or not framed.get("url", "").startswith(web.base_url), (framed, errors)
        assert blocked, errors
    finally:
        server.shutdown()
