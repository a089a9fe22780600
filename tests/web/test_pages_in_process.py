"""The web app's pages in this process (fast tier): sign-in, CSRF, the create form, the library, a video's page.

The same app `serve` builds, spoken to as a browser's forms would (cookies, form posts, redirects); what
only a browser can show (scripts, layout, axe) stays in the live tests beside this file.
"""

from __future__ import annotations

import re

import pytest

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def page(app_server):
    """A signed-in browser-like client and its CSRF token."""
    c = app_server.http(Accept="text/html")
    del c.headers["Authorization"]  # pages know a person by the session cookie only
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin", data={"csrf_token": token, "api_key": app_server.api_key, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return c, CSRF.search(c.get("/").text).group(1)


def test_signed_out_goes_to_sign_in_and_a_wrong_key_is_refused(app_server):
    c = app_server.http(Accept="text/html")
    del c.headers["Authorization"]
    r = c.get("/videos/new")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fvideos%2Fnew"
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin", data={"csrf_token": token, "api_key": "msk-not-a-real-key"})
    assert r.status_code == 401 and "invalid_api_key" in r.text


def test_a_form_without_its_csrf_token_is_refused(page):
    c, _ = page
    r = c.post("/videos/new", data={"prompt": "no token", "seconds": "4"})
    assert r.status_code == 403
    assert "no token" not in c.get("/").text


def test_create_from_the_form_lands_on_the_video_and_in_the_library(page):
    c, token = page
    form = c.get("/videos/new")
    assert form.status_code == 200 and 'name="prompt"' in form.text
    r = c.post("/videos/new", data={"csrf_token": token, "prompt": "a lantern in the fog", "model": "sora-2",
                                    "seconds": "4", "size": "720x1280"})
    assert r.status_code == 303 and r.headers["location"].startswith("/videos/video_"), r.text
    video = c.get(r.headers["location"])
    assert video.status_code == 200 and "a lantern in the fog" in video.text and "queued" in video.text.lower()
    assert "a lantern in the fog" in c.get("/", params={"q": "lantern"}).text
    assert "a lantern in the fog" not in c.get("/", params={"q": "no such words anywhere"}).text


def test_a_refused_create_shows_the_field_and_keeps_the_prompt(page):
    c, token = page
    r = c.post("/videos/new", data={"csrf_token": token, "prompt": "kept prompt", "model": "sora-2",
                                    "seconds": "4", "size": "3x3"})
    assert r.status_code == 400 and "kept prompt" in r.text and "size" in r.text


def test_an_unknown_video_is_the_not_found_page(page):
    c, _ = page
    r = c.get("/videos/video_does_not_exist")
    assert r.status_code == 404 and "Traceback" not in r.text


@pytest.fixture(scope="module")
def models_page(tmp_path_factory):
    """A server that offers the test models on its pages (`web_test_models = "always"`), signed in."""
    from tests.conftest import InProcessServer

    srv = InProcessServer(tmp_path_factory.mktemp("audio-form") / "data", web_test_models="always").start()
    c = srv.http(Accept="text/html")
    del c.headers["Authorization"]
    token = CSRF.search(c.get("/signin").text).group(1)
    c.post("/signin", data={"csrf_token": token, "api_key": srv.api_key, "next": "/"})
    yield srv, c, CSRF.search(c.get("/").text).group(1)
    srv.stop()


def _sine_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import numpy as np

    from mutoscope.media.sound import wav_bytes

    t = np.arange(round(seconds * rate)) / rate
    return wav_bytes((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None], rate)


def test_the_soundtrack_field_follows_the_model_and_reaches_the_job(models_page):
    """The create form's `audio_reference` upload: shown (and enabled) for a model that can be generated to a
    soundtrack, hidden and disabled for one without sound; each model says which in the form's data, for
    create.js; a chosen file reaches the job as its stored soundtrack; on a silent model it is refused on the
    field, which is then shown with its message."""
    import json

    srv, c, token = models_page
    page = c.get("/videos/new").text
    field = re.search(r'<div class="audio-reference" id="audio-reference-field"([^>]*)>', page)
    assert field and "hidden" not in field.group(1), page  # the default model, tiny LTX-2, makes sound
    assert re.search(r'<input id="audio_reference" name="audio_reference" type="file" accept="audio/\*,video/mp4"\s+>',
                     page)
    options = json.loads(re.search(r'<script type="application/json" id="model-options">(.*?)</script>', page,
                                   re.DOTALL).group(1))
    audio = {m["name"]: m["audio"] for m in options}
    assert audio["sora-2"] is True and audio["tiny-minimax-h3"] is True and audio["tiny-wan"] is False, audio
    assert "/static/create.js" in page and "<script>" not in page  # behaviour in web/static only (strict CSP)

    r = c.post("/videos/new", data={"csrf_token": token, "prompt": "a drummer keeps time", "model": "sora-2",
                                    "seconds": "4", "size": "512x288"},
               files={"audio_reference": ("beat.wav", _sine_wav(), "audio/wav")})
    assert r.status_code == 303 and r.headers["location"].startswith("/videos/video_"), r.text
    video_id = r.headers["location"].rsplit("/", 1)[1]
    from mutoscope.storage.keys import input_audio_key

    assert srv.app.state.services.videos.storage.size(input_audio_key(video_id))

    r = c.post("/videos/new", data={"csrf_token": token, "prompt": "a silent drummer", "model": "tiny-wan",
                                    "seconds": "4"},
               files={"audio_reference": ("beat.wav", _sine_wav(), "audio/wav")})
    assert r.status_code == 400 and "a silent drummer" in r.text
    assert 'id="audio_reference-error"' in r.text and "makes no sound" in r.text
    field = re.search(r'<div class="audio-reference" id="audio-reference-field"([^>]*)>', r.text)
    assert field and "hidden" not in field.group(1)


def test_a_model_that_cannot_edit_offers_neither_edit_nor_remix(models_page):
    """A finished MiniMax-H3 video's page has no Edit link and no remix form (the service refuses both for a
    model that cannot re-generate a clip); a finished LTX-2 video's page has both."""
    from sqlalchemy import create_engine, text

    srv, c, token = models_page
    made = {}
    for model, size in (("tiny-minimax-h3", "256x128"), ("sora-2", "512x288")):
        r = c.post("/videos/new", data={"csrf_token": token, "prompt": f"a kite, by {model}", "model": model,
                                        "seconds": "4", "size": size})
        assert r.status_code == 303, r.text
        made[model] = r.headers["location"].rsplit("/", 1)[1]
    engine = create_engine(srv.settings.db_url)
    with engine.begin() as conn:  # nothing renders in-process: the pages of a finished video are the subject
        conn.execute(text("UPDATE videos SET status = 'completed', progress = 100 WHERE id IN (:a, :b)"),
                     {"a": made["tiny-minimax-h3"], "b": made["sora-2"]})
    engine.dispose()
    h3 = c.get(f"/videos/{made['tiny-minimax-h3']}").text
    ltx = c.get(f"/videos/{made['sora-2']}").text
    assert 'id="remix-form"' in ltx and 'id="edit-link"' in ltx
    assert 'id="remix-form"' not in h3 and 'id="edit-link"' not in h3
    assert "a kite, by tiny-minimax-h3" in h3 and 'id="download"' in h3  # the rest of the page is there
