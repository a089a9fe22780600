"""The web app in a real browser: sign in, create, watch it finish, play it, export, delete.

One `mutoscope serve` and one headless chromium for the module; the tests run in file order and
share one tiny-ltx2 video (about ten seconds on the CPU), so the file stays well under 90 s.
"""

from __future__ import annotations

import base64
import json
import stat
import time
from datetime import datetime, timedelta, timezone

import httpx

from tests.web.conftest import signed_in_http

state: dict[str, str] = {}


def sign_in(browser, base_url: str, key: str) -> None:
    browser.goto(base_url + "/signin")
    browser.submit("form[action='/signin']", {"api_key": key})
    assert browser.eval("location.pathname") == "/", browser.text()


def sign_out(browser) -> None:
    browser.submit("form[action='/signout']")
    assert browser.eval("location.pathname") == "/signin"


def nav_status(browser) -> int:
    return browser.eval("performance.getEntriesByType('navigation')[0].responseStatus")


def test_signed_out_redirects_and_wrong_key_shows_error(web, browser):
    browser.goto(web.base_url + "/videos/new")
    assert browser.eval("location.pathname + location.search") == "/signin?next=%2Fvideos%2Fnew"
    browser.submit("form[action='/signin']", {"api_key": "msk-not-a-real-key"})
    assert browser.eval("location.pathname") == "/signin"
    assert nav_status(browser) == 401
    assert "Incorrect API key provided." in browser.text("#form-error")
    assert "invalid_api_key" in browser.text("#form-error")


def test_session_cookie_holds_a_session_id_never_the_key(web):
    secret = web.data_dir / "web-session-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    c = httpx.Client(base_url=web.base_url, timeout=30)
    token = c.get("/signin").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/signin", data={"csrf_token": token, "api_key": web.api_key})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    payload = json.loads(base64.b64decode(cookie.split("=", 1)[1].split(".")[0]))
    # A random session id (the server keeps its hash) and the CSRF token: no key, not even its id.
    assert set(payload) == {"sid", "csrf"} and len(payload["sid"]) >= 40 and web.api_key not in cookie
    # A forged cookie (payload changed, signature kept) is no session at all.
    forged = base64.b64encode(json.dumps({**payload, "sid": "x" * 43}).encode()).decode()
    value = cookie.split(";")[0].split("=", 1)[1]
    r = httpx.get(web.base_url + "/", cookies={"mutoscope_session": forged + value[value.index("."):]})
    assert r.status_code == 303 and r.headers["location"] == "/signin"


def test_post_without_csrf_token_is_403(web):
    c, token = signed_in_http(web.base_url, web.api_key)
    for data in ({"prompt": "no token"}, {"prompt": "wrong token", "csrf_token": token[::-1]}):
        r = c.post("/videos/new", data=data)
        assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        assert "csrf_failed" in r.text
    assert c.post("/exports", data={}).status_code == 403
    assert c.post("/signout", data={}).status_code == 403
    fresh = httpx.Client(base_url=web.base_url)  # sign-in itself is protected (login CSRF)
    assert fresh.post("/signin", data={"api_key": web.api_key}).status_code == 403
    assert web.client().videos.list().data == []  # nothing was created


def test_create_watch_complete_and_play(web, browser):
    sign_in(browser, web.base_url, web.api_key)
    browser.goto(web.base_url + "/videos/new")
    # The plan/validation path is the API's: a size the model lacks comes back as the API's error.
    # With nothing but test fixtures installed, the form offers them, under a label that says what they are.
    assert browser.eval("document.getElementById('model').selectedOptions[0].textContent") == \
        "Test model (makes noise) · sora-2"
    browser.eval("document.querySelector('[data-choices=size]').insertAdjacentHTML('beforeend', "
                 "'<input type=radio name=size value=640x480>')")
    browser.submit("#create-form", {"prompt": "a lighthouse at dusk, waves", "size": "640x480"})
    assert nav_status(browser) == 400 and "invalid_size" in browser.text("#form-error")
    assert browser.eval("document.getElementById('prompt').value") == "a lighthouse at dusk, waves"

    browser.submit("#create-form", {"size": "512x288", "seconds": "4"})
    path = browser.eval("location.pathname")
    assert path.startswith("/videos/video_"), browser.text()
    video_id = state["video"] = path.rsplit("/", 1)[1]

    # The library refreshes itself while the job runs: no reload here, only waiting.
    browser.goto(web.base_url + "/")
    tile = f"document.querySelector('.tile[data-id=\"{video_id}\"]')"
    # Every text the tile's label takes while the job runs, to see that it names the phase, not a bare number.
    browser.eval("window.seen = []; new MutationObserver(() => document.querySelectorAll('[data-label-for]')"
                 ".forEach(l => seen.push(l.textContent))).observe(document.body, "
                 "{subtree: true, childList: true, characterData: true})")
    assert browser.eval(f"{tile}.dataset.status") in ("queued", "in_progress", "completed")
    browser.wait(f"{tile}.dataset.status === 'completed'", timeout=180, interval=0.5)
    seen = browser.eval("seen")
    assert any(w in t for t in seen for w in ("loading model", "denoising", "decoding", "encoding")), seen
    browser.wait(f"{tile}.querySelector('img').complete && {tile}.querySelector('img').naturalWidth > 0")
    assert "4 seconds" in browser.text("#usage")
    shot = browser.screenshot(web.data_dir.parent / "library.png")  # for a person to look at
    print(f"library screenshot: {shot}")

    browser.goto(f"{web.base_url}/videos/{video_id}")
    browser.wait("document.getElementById('player').readyState >= 1", timeout=20)
    assert abs(browser.eval("document.getElementById('player').duration") - 4.0) < 0.2
    assert "a lighthouse at dusk" in browser.text(".prompt-title")
    # The player's source answers Range requests, so seeking works.
    status = browser.eval(f"fetch('/videos/{video_id}/content', {{headers: {{Range: 'bytes=0-99'}}}})"
                          ".then(r => r.status + ' ' + r.headers.get('content-range'))")
    assert status.startswith("206 bytes 0-99/")
    assert browser.eval("document.getElementById('download').getAttribute('href')").endswith("download=1")
    assert browser.eval("!!document.getElementById('remix-form') && !!document.getElementById('extend-form')")
    # A remix the service refuses (no prompt) shows the API's error on the page; no job is made.
    browser.eval("document.getElementById('remix-prompt').removeAttribute('required')")
    browser.submit("#remix-form", {"prompt": " "})
    assert nav_status(browser) == 400 and "prompt" in browser.text("#form-error")
    assert browser.text("#remix-prompt-error")  # also by the field it names
    assert len(web.client().videos.list().data) == 1


def test_the_soundtrack_field_follows_the_model(web, browser):
    """The create form's soundtrack upload (`audio_reference`) is on screen only for a model that can be
    generated to one, and disabled while hidden so a file chosen for another model is never sent."""
    browser.goto(web.base_url + "/videos/new")
    if browser.eval("location.pathname") == "/signin":
        sign_in(browser, web.base_url, web.api_key)
        browser.goto(web.base_url + "/videos/new")
    box, field = "document.getElementById('audio-reference-field')", "document.getElementById('audio_reference')"
    shown = f"!{box}.hidden && !{field}.disabled && {box}.offsetParent !== null"
    hidden = f"{box}.hidden && {field}.disabled && {box}.offsetParent === null"
    assert browser.eval(shown)  # sora-2 here is tiny LTX-2, which makes sound
    browser.check_page()
    for model, expect in (("tiny-wan", hidden), ("tiny-minimax-h3", shown), ("tiny-wan", hidden),
                          ("sora-2", shown)):
        browser.eval(f"(() => {{ const s = document.getElementById('model'); s.value = '{model}'; "
                     "s.dispatchEvent(new Event('change')); })()")
        assert browser.eval("document.getElementById('model').value") == model
        assert browser.eval(expect), model


def test_someone_elses_video_is_a_404_page(web, browser):
    video_id = state["video"]
    mallory = web.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]
    sign_out(browser)
    sign_in(browser, web.base_url, mallory)
    assert video_id not in browser.text("#videos, .library")
    browser.goto(f"{web.base_url}/videos/{video_id}")
    assert nav_status(browser) == 404
    assert browser.text("h1") == "Not found" and browser.text("#error-code") == "video_not_found"
    assert browser.eval(f"fetch('/videos/{video_id}/content?variant=thumbnail').then(r => r.status)") == 404
    sign_out(browser)
    sign_in(browser, web.base_url, web.api_key)


def test_export_everything_then_download(web, browser):
    browser.goto(web.base_url + "/")
    browser.submit("form[action='/exports']")
    browser.wait("!!document.getElementById('export-download')", timeout=60, interval=0.5)
    head = browser.eval("fetch(document.getElementById('export-download').href).then(async r => "
                        "r.status + ' ' + r.headers.get('content-type') + ' ' + "
                        "new TextDecoder().decode((await r.arrayBuffer()).slice(0, 2)))")
    assert head == "200 application/zip PK"


def test_delete_from_the_video_page(web, browser):
    video_id = state["video"]
    browser.goto(f"{web.base_url}/videos/{video_id}")
    browser.eval("window.confirm = () => true")  # the page asks first
    browser.submit(f"form[action='/videos/{video_id}/delete']")
    assert browser.eval("location.pathname") == "/"
    assert not browser.eval(f"document.querySelector('.tile[data-id=\"{video_id}\"]')")
    browser.goto(f"{web.base_url}/videos/{video_id}")
    assert nav_status(browser) == 404


def test_api_paths_keep_the_json_envelope(web):
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = httpx.get(web.base_url + "/v1/videos/video_nope", headers={**html, "Authorization": f"Bearer {web.api_key}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "video_not_found"
    r = httpx.get(web.base_url + "/no/such/page", headers=html)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "Not found" in r.text
    r = httpx.get(web.base_url + "/no/such/page", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_sunset_banner(web, browser):
    day = timedelta(days=1)
    t = datetime.now(timezone.utc)
    web.cli("service", "sunset", (t - day).isoformat(), (t + 10 * day).isoformat(), (t + 20 * day).isoformat(),
            (t + 60 * day).isoformat(), "--message", "Moving to a new home.")
    time.sleep(2.1)  # the server re-reads the phase at most every two seconds
    browser.goto(web.base_url + "/")
    banner = browser.text("#sunset")
    assert "This service is closing" in banner and "Moving to a new home." in banner
    assert browser.eval("!!document.querySelector('#sunset a[href=\"/#export\"]')")


def test_signup_is_closed_by_default(web):
    r = httpx.get(web.base_url + "/signup", headers={"Accept": "text/html"})
    assert r.status_code == 404 and "by invitation" in r.text
    assert "/signup" not in httpx.get(web.base_url + "/signin").text
