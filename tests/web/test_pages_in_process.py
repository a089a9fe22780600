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
