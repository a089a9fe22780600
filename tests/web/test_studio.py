"""A creator's first minutes in a real browser, at desktop and phone widths: the empty state on every creator
page (and in `serve`'s output), test models labelled as noise, a plan with no usable model saying why, and the
progress text naming the phase. Screenshots of each page land beside the server's data for a person to see.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import PARTIAL_MODEL, LiveServer, partial_weights_models_file
from tests.web.cdp import DESKTOP, MOBILE
from tests.web.conftest import signed_in_http

SMALL = "512x288"
state: dict[str, str] = {}


def plans_file(root) -> str:
    """The shipped plans plus `narrow`, which includes only a model this server has not installed."""
    from mutoscope.accounts.plans import SHIPPED

    path = root / "plans.toml"
    path.write_text(SHIPPED.read_text() + '\n[plans.narrow]\nmodels = ["ltx-2"]\nmonthly_seconds = 60\n')
    return str(path)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A fresh server: nothing but the test models, which its operator turned on (conftest's server_env)."""
    s = LiveServer(tmp_path_factory.mktemp("web-studio") / "data", MUTOSCOPE_DEFAULT_PLAN="unlimited",
                   MUTOSCOPE_PUBLIC_LINKS="true", MUTOSCOPE_PUBLIC_LINK_REQUESTS_PER_MINUTE="60").start()
    yield s
    s.stop()


def sign_in(browser, base_url: str, key: str) -> None:
    browser.goto(base_url + "/signin")
    if browser.eval("location.pathname") != "/signin":
        browser.submit("form[action='/signout']")
    browser.submit("form[action='/signin']", {"api_key": key})
    assert browser.eval("location.pathname") == "/", browser.text()


def at_both_widths(browser, name: str, shots_dir) -> None:
    """axe clean and nothing wider than the screen at 1280 and 390 px, with a screenshot at each."""
    browser.check_page()
    browser.screenshot(shots_dir / f"{name}-1280.png")
    browser.viewport(*MOBILE)
    try:
        browser.wait("document.documentElement.clientWidth <= 400")
        browser.check_page()
        assert browser.eval("document.documentElement.scrollWidth") <= MOBILE[0] + 1, browser.url
        browser.screenshot(shots_dir / f"{name}-390.png")
    finally:
        browser.viewport(*DESKTOP)


CREATOR_PAGES = ["/", "/videos/new", "/videos/edit", "/storyboards/new", "/feed", "/cameos", "/characters"]


def test_serve_says_no_real_model_is_installed(srv):
    log = srv.log.read_text()
    assert "No real model is installed" in log and "mutoscope models pull" in log and "HF_ENDPOINT" in log


def test_every_creator_page_shows_the_empty_state_panel(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    shots = srv.data_dir.parent
    for path in CREATOR_PAGES:
        browser.goto(srv.base_url + path)
        assert browser.eval("document.querySelectorAll('#setup-panel').length") == 1, path
        panel = browser.text("#setup-panel")
        # The shipped models file's first real model, by the name this server gives it (the suite maps
        # sora-2 to a test model), its size, and the ways around a closed network.
        assert "mutoscope models pull ltx-2.3-distilled" in panel and "about 71 GB" in panel, panel
        assert "HF_ENDPOINT" in panel and "weights" in panel
        at_both_widths(browser, "empty" + path.replace("/", "-").rstrip("-"), shots)
    browser.goto(srv.base_url + "/settings")  # not a creator page
    assert browser.eval("document.getElementById('setup-panel')") is None


def test_test_models_are_labelled_as_noise_wherever_they_show(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/videos/new")
    assert browser.eval("document.getElementById('model').selectedOptions[0].textContent").startswith(
        "Test model (makes noise)")
    video = srv.client().videos.create(prompt="noise, honestly", model="sora-2", size=SMALL, seconds="4")
    state["video"] = video.id
    with srv.http() as h:
        assert h.post(f"/v1/videos/{video.id}", json={"visibility": "everyone"}).status_code == 200
    browser.goto(f"{srv.base_url}/videos/{video.id}")
    assert "noise" in browser.text("#noise-tag")
    browser.goto(srv.base_url + "/")
    assert "noise" in browser.text(f".tile[data-id='{video.id}'] .noise-tag")
    browser.goto(f"{srv.base_url}/videos/{video.id}")  # the feed shows finished videos: wait on the page
    browser.wait("document.querySelector('[data-watch]').dataset.status === 'completed'", timeout=400, interval=1)
    browser.goto(srv.base_url + "/feed")
    assert "noise" in browser.text(f".tile[data-id='{video.id}'] .noise-tag")


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """A server with a real model installed (a local folder) and its test models off, whose default plan
    includes only a model it does not have."""
    root = tmp_path_factory.mktemp("web-studio-narrow")
    s = LiveServer(root / "data", MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(root)),
                   MUTOSCOPE_PLANS_FILE=plans_file(root), MUTOSCOPE_WEB_TEST_MODELS="never").start()
    yield s
    s.stop()


def test_a_plan_with_no_usable_model_says_why_instead_of_a_half_built_form(narrow, browser):
    with narrow.http() as h:
        r = h.post("/v1/admin/users", json={"name": "nina", "plan": "narrow"})
        assert r.status_code == 200, r.text
        nina = r.json()["api_key"]
    assert "No real model is installed" not in narrow.log.read_text()
    sign_in(browser, narrow.base_url, nina)
    browser.goto(narrow.base_url + "/videos/new")
    assert browser.eval("document.getElementById('setup-panel')") is None  # a real model is installed
    assert browser.eval("document.getElementById('create-form')") is None  # no form to half fill
    reason = browser.text("#no-models")
    assert "narrow" in reason and "ltx-2" in reason and "Ask the operator" in reason, reason
    at_both_widths(browser, "narrow-plan", narrow.data_dir.parent)
    # The owner's plan includes every model: the real one is offered, the test models are not (turned off).
    sign_in(browser, narrow.base_url, narrow.api_key)
    browser.goto(narrow.base_url + "/videos/new")
    labels = browser.eval("[...document.querySelectorAll('#model option')].map(o => o.textContent)")
    assert any(PARTIAL_MODEL in x for x in labels) and not any("noise" in x for x in labels), labels


def test_the_cameo_page_says_what_is_missing_before_handing_out_a_challenge(srv, browser):
    """This server has the analyzers but no speech-to-text model: nobody is given a challenge to record."""
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/cameos/new")
    why = browser.text("#cameo-unavailable")
    assert "cannot verify cameos" in why and "faster-whisper" in why, why
    assert browser.eval("document.getElementById('challenge-form')") is None
    at_both_widths(browser, "cameo-unavailable", srv.data_dir.parent)
    c, token = signed_in_http(srv.base_url, srv.api_key)
    r = c.post("/cameos/challenges", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/cameos/new"  # no challenge id handed out


def test_the_install_hint_works_from_a_checkout_and_an_install():
    from mutoscope.likeness.runtime import extra_install_command, install_hint

    hint = extra_install_command()
    # The extra's own requirements from this environment's metadata, never the unpublished `mutoscope[likeness]`.
    assert hint.startswith("pip install ") and "faster-whisper" in hint and "mutoscope[" not in hint, hint
    assert install_hint("resemblyzer") == hint and "--force-reinstall" in install_hint("dlib-bin")


def set_value(browser, element_id: str, value: str) -> None:
    browser.eval(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change', {{bubbles: true}})); }})"
                 f"(document.getElementById({json.dumps(element_id)}))")


def test_a_storyboard_from_the_timeline_editor_plays_and_seeks_to_shot_two(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/")
    browser.eval("document.querySelector('nav a[href=\"/storyboards/new\"]').click()")  # a nav entry
    browser.wait("location.pathname === '/storyboards/new' && document.readyState === 'complete'")
    # The timeline runs sideways, each card as wide as its shot is long; the ends cannot move further.
    set_value(browser, "shot-0-prompt", "a red kite over a hill")
    set_value(browser, "shot-1-prompt", "the kite lands in tall grass")
    set_value(browser, "shot-1-seconds", "8")
    widths = browser.eval("[...document.querySelectorAll('#timeline .shot-card')].map(c => c.getBoundingClientRect())"
                          ".map(r => [Math.round(r.left), Math.round(r.width)])")
    assert widths[1][0] > widths[0][0] and abs(widths[1][1] / widths[0][1] - 2) < 0.05, widths
    assert browser.eval("[...document.querySelectorAll('.shot-up, .shot-down')].map(b => b.disabled)") == \
        [True, False, False, True]
    at_both_widths(browser, "storyboard-editor", srv.data_dir.parent)
    set_value(browser, "shot-1-seconds", "4")
    browser.eval(f"document.querySelector('input[name=size][value=\"{SMALL}\"]').checked = true")
    marker = browser._mark()
    browser.eval("document.getElementById('storyboard-form').requestSubmit()")
    browser._loaded(marker, 60)
    path = browser.eval("location.pathname")
    assert path.startswith("/videos/video_"), browser.text()
    video_id = path.rsplit("/", 1)[1]
    # The page follows the job itself (and keeps the browser's connection busy while it renders).
    browser.wait("['completed', 'failed'].includes(document.querySelector('[data-watch]').dataset.status)",
                 timeout=400, interval=1)
    browser.goto(srv.base_url + path)
    browser.wait("document.getElementById('player').readyState >= 1", timeout=30)
    assert browser.eval("document.querySelectorAll('#shot-strip .shot-seek').length") == 2
    browser.eval("document.querySelectorAll('#shot-strip .shot-seek')[1].click()")
    browser.wait("document.getElementById('player').currentTime > 3.9", timeout=10)
    t = browser.eval("document.getElementById('player').currentTime")
    assert 3.9 < t < 4.2, t
    assert browser.eval("document.querySelectorAll('#shot-strip .shot-seek')[1].getAttribute('aria-current')") == "true"
    browser.eval("document.querySelectorAll('#shot-strip .shot-remix')[1].click()")
    assert browser.eval("document.getElementById('remix-shot').value") == "1"
    assert browser.eval("document.getElementById('remix-prompt').value") == "the kite lands in tall grass"
    assert browser.eval("document.activeElement.id") == "remix-prompt"
    at_both_widths(browser, "storyboard-video", srv.data_dir.parent)
    set_value(browser, "remix-prompt", "the kite flies away at dusk")
    marker = browser._mark()
    browser.eval("document.getElementById('remix-form').requestSubmit()")
    browser._loaded(marker, 60)
    remix = srv.client().videos.retrieve(browser.eval("location.pathname").rsplit("/", 1)[1])
    assert remix.remixed_from_video_id == video_id
    assert [s["prompt"] for s in remix.model_extra["shots"]] == ["a red kite over a hill", "the kite flies away at dusk"]


def test_a_public_link_opens_without_a_session_leads_nowhere_else_and_stops_once_revoked(srv, browser):
    import httpx

    video_id = state["video"]  # the finished noise video from the test above
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(f"{srv.base_url}/videos/{video_id}")
    browser.submit("#public-form", {"days": ""})
    link = browser.eval("document.getElementById('public-url').getAttribute('href')")
    assert link.startswith("/p/") and "(no expiry)" in browser.text("#sharing")
    owner_bytes = srv.http().get(f"/v1/videos/{video_id}/content").content

    browser.submit("form[action='/signout']")
    browser.goto(srv.base_url + link)
    assert browser.eval("location.pathname") == link  # no sign-in asked
    browser.wait("document.getElementById('player').readyState >= 1", timeout=30)
    assert browser.eval("document.querySelectorAll('a[href], form, nav').length") == 0  # leads nowhere else
    at_both_widths(browser, "public-link", srv.data_dir.parent)
    anon = httpx.Client(base_url=srv.base_url, timeout=30)
    r = anon.get(link + "/video")
    assert r.status_code == 200 and r.content == owner_bytes  # the published file: watermark and C2PA kept
    assert r.headers["x-robots-tag"].startswith("noindex")
    assert anon.get(link + "/video", headers={"Range": "bytes=0-99"}).status_code == 206
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert anon.get(forged).status_code == 404 and anon.get(forged + "/video").status_code == 404
    assert anon.get(f"/videos/{video_id}").status_code in (303, 401)  # the rest still needs an account

    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(f"{srv.base_url}/videos/{video_id}")
    browser.submit("#public-revoke-form")
    assert browser.eval("document.getElementById('public-form') !== null")
    r = anon.get(link)
    assert r.status_code == 404 and "does not work" in r.text
    assert anon.get(link + "/video").status_code == 404
    # Rate-limited per address: past the operator's limit, 429 with Retry-After.
    codes = [anon.get(link).status_code for _ in range(70)]
    assert 429 in codes and anon.get(link).headers.get("retry-after")


def test_the_create_form_offers_camera_moves_and_prompt_examples(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/videos/new")
    moves = browser.eval("[...document.getElementById('camera').options].map(o => o.value)")
    assert moves[0] == "" and "dolly_in" in moves, moves
    browser.eval("document.querySelector('#examples .example').click()")
    first = browser.eval("document.getElementById('prompt').value")
    assert first.startswith("A lighthouse on a cliff") and browser.eval("document.activeElement.id") == "prompt"
    at_both_widths(browser, "create-controls", srv.data_dir.parent)
    browser.eval(f"document.querySelector('input[name=size][value=\"{SMALL}\"]').checked = true")
    browser.submit("#create-form", {"camera": "dolly_in"})
    video_id = browser.eval("location.pathname").rsplit("/", 1)[1]
    video = srv.client().videos.retrieve(video_id)
    assert video.model_extra["camera"]["move"] == "dolly_in" and video.prompt == first
    srv.client().videos.delete(video_id)  # not needed rendered
