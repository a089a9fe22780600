"""The edit and remix forms' strength control in this process (fast tier): shown at the model's own strength, sent
with the edit, and a bad value refused on the form with nothing queued. The script that keeps the shown
value beside the range is static (web/static/edit.js), as the strict CSP requires."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from mutoscope.web.choices import edit_strength_of
from tests.api.test_extensions_edits import clip_mp4
from tests.conftest import InProcessServer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RANGE = re.compile(r'<input id="edit-strength" name="edit_strength" type="range"[^>]*>')


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    srv = InProcessServer(tmp_path_factory.mktemp("edit-strength") / "data", web_test_models="always").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(studio):
    c = studio.http(Accept="text/html")
    del c.headers["Authorization"]
    token = CSRF.search(c.get("/signin").text).group(1)
    assert c.post("/signin", data={"csrf_token": token, "api_key": studio.api_key, "next": "/"}).status_code == 303
    return c, CSRF.search(c.get("/").text).group(1)


def stored_params(studio) -> list[dict]:
    with sqlite3.connect(studio.data_dir / "mutoscope.db", timeout=30) as db:
        return [json.loads(p or "{}") for (p,) in db.execute("SELECT params FROM videos ORDER BY created_at")]


def model_of(html: str) -> str:
    return re.search(r'<select id="edit-model" name="model">\s*<option value="([^"]+)"', html).group(1)


def test_the_edit_form_has_a_labelled_strength_at_the_models_own(studio, page):
    c, _ = page
    html = c.get("/videos/edit").text
    control = RANGE.search(html)
    assert control, html
    own = edit_strength_of(studio.app.state.services.admission, model_of(html))
    assert own is not None and f'value="{own}"' in control.group(0)
    assert 'min="0.01"' in control.group(0) and 'max="1"' in control.group(0)
    assert '<label for="edit-strength">Edit strength</label>' in html
    assert 'aria-describedby="edit-strength-hint"' in control.group(0) and 'id="edit-strength-hint"' in html
    assert f'<output id="edit-strength-value" for="edit-strength" aria-hidden="true">{own}</output>' in html
    # Every model's own strength, as data for the static script that follows the model select.
    data = re.search(r'<script type="application/json" id="edit-strengths">(.*?)</script>', html).group(1)
    assert json.loads(data)[model_of(html)] == own
    assert '<script src="/static/edit.js" defer></script>' in html
    assert " style=" not in html and not re.search(r"<script(?![^>]*(src=|application/json))[^>]*>", html)
    assert "edit-strength" in c.get("/static/edit.js").text


def test_the_form_sends_the_strength_and_refuses_a_bad_one(studio, page):
    c, token = page
    model = model_of(c.get("/videos/edit").text)
    clip = ("clip.mp4", clip_mp4(4.2), "video/mp4")
    before = len(stored_params(studio))
    r = c.post("/videos/edit", data={"csrf_token": token, "prompt": "too far", "model": model, "edit_strength": "1.5"},
               files={"video": clip})
    assert r.status_code == 400 and "edit_strength" in r.text
    assert 'value="1.5"' in RANGE.search(r.text).group(0)  # the form comes back as it was sent
    assert len(stored_params(studio)) == before
    r = c.post("/videos/edit", data={"csrf_token": token, "prompt": "a lighter touch", "model": model,
                                     "edit_strength": "0.4"}, files={"video": clip})
    assert r.status_code == 303 and r.headers["location"].startswith("/videos/video_"), r.text
    assert stored_params(studio)[-1]["edit_strength"] == 0.4


def test_editing_one_of_your_videos_starts_at_its_models_own(studio, page):
    c, _ = page
    video = studio.client().videos.create(prompt="a heron at dawn", extra_body={"seed": 1})  # stays queued here
    html = c.get("/videos/edit", params={"video": video.id}).text
    own = edit_strength_of(studio.app.state.services.admission, video.model)
    assert own is not None and f'value="{own}"' in RANGE.search(html).group(0)
    assert 'id="edit-model"' not in html  # the source's model, size and length are kept


REMIX_RANGE = re.compile(r'<input id="remix-strength" name="edit_strength" type="range"[^>]*>')


def test_remixing_a_clip_has_the_strength_control_and_sends_it(studio, page):
    c, token = page
    video = studio.client().videos.create(prompt="a fox in the snow", extra_body={"seed": 2})
    with sqlite3.connect(studio.data_dir / "mutoscope.db", timeout=30) as db:  # no worker in this process
        db.execute("UPDATE videos SET status = 'completed', progress = 100 WHERE id = ?", (video.id,))
    html = c.get(f"/videos/{video.id}").text
    control = REMIX_RANGE.search(html)
    assert control, html
    own = edit_strength_of(studio.app.state.services.admission, video.model)
    assert own is not None and f'value="{own}"' in control.group(0)
    assert '<label for="remix-strength">Remix strength</label>' in html
    assert f'<output id="remix-strength-value" for="remix-strength" aria-hidden="true">{own}</output>' in html
    assert '<script src="/static/edit.js" defer></script>' in html
    assert "remix-strength" in c.get("/static/edit.js").text
    r = c.post(f"/videos/{video.id}/remix", data={"csrf_token": token, "prompt": "a fox at night",
                                                  "edit_strength": "1.5"})
    assert r.status_code == 400 and "edit_strength" in r.text
    assert 'value="1.5"' in REMIX_RANGE.search(r.text).group(0)  # the form comes back as it was sent
    r = c.post(f"/videos/{video.id}/remix", data={"csrf_token": token, "prompt": "a fox at night",
                                                  "edit_strength": "0.3"})
    assert r.status_code == 303, r.text
    assert stored_params(studio)[-1]["edit_strength"] == 0.3
