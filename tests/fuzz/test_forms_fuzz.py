"""Every form of the web app, as its pages render it, filled with NUL and other control characters, on
PostgreSQL: signed in as the server's owner and anonymous. Whatever a field holds, the answer is below 500,
shows no server internals, and a NUL is refused as a 400 (PostgreSQL can store none).

The forms are found by reading the pages (every `<form method=post>` and its fields), so a form added later
is fuzzed too. Seeds are fixed so a run can be replayed."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer
from tests.fuzz.test_api_fuzz import CONTROL_STRINGS
from tests.web.conftest import CSRF, signed_in_http

PAGES = ["/signin", "/", "/videos/new", "/storyboards/new", "/cameos", "/cameos/new", "/characters", "/settings/account",
         "/settings/sessions", "/settings/keys", "/settings/webhooks", "/settings/usage", "/settings/invites"]
# Ending this browser's session or its key would leave the rest of the run signed out.
SKIP = re.compile(r"^/signout$|/revoke$")
LEAKS = re.compile(r"Traceback|File \"|site-packages|psycopg|sqlalchemy|/src/mutoscope")


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._open = {"action": a.get("action") or "", "fields": [], "files": [],
                          "multipart": "multipart" in (a.get("enctype") or "")}
            self.forms.append(self._open)
        elif self._open is not None and tag in ("input", "select", "textarea") and a.get("name"):
            (self._open["files"] if a.get("type") == "file" else self._open["fields"]).append(a["name"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def forms_of(client: httpx.Client, paths: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in paths:
        parser = _Forms()
        parser.feed(client.get(path).text)
        for f in parser.forms:
            if f["action"].startswith("/") and not SKIP.search(f["action"]):
                found.setdefault(f["action"], f)
    return found


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pg_module_url):
    s = LiveServer(tmp_path_factory.mktemp("forms-fuzz") / "data", MUTOSCOPE_DATABASE_URL=pg_module_url,
                   MUTOSCOPE_OPEN_SIGNUP="true").start(timeout=300)
    video = s.client().videos.create_and_poll(prompt="a page with forms", seconds="4", size="512x288",
                                             extra_body={"num_inference_steps": 2})
    s.video_id = video.id
    yield s
    s.stop()


TEXT = st.sampled_from(CONTROL_STRINGS) | st.text(alphabet=st.characters(max_codepoint=0x9f), max_size=12) \
    | st.text(max_size=8).map(lambda t: t + "\x00" + t)


def _fuzz(client: httpx.Client, token: str, forms: dict[str, dict], examples: int) -> tuple[int, set[str]]:
    sent, refused = 0, set()

    @seed(20261207)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def run(data):
        nonlocal sent
        form = data.draw(st.sampled_from(sorted(forms.values(), key=lambda f: f["action"])))
        values = {k: data.draw(TEXT, label=k) for k in form["fields"] if k != "csrf_token"}
        values["csrf_token"] = token
        files = {k: ("x.png", b"\x89PNG\r\n\x1a\n", "image/png") for k in form["files"]} or None
        r = client.post(form["action"], data=values, files=files)
        sent += 1
        context = (form["action"], {k: v for k, v in values.items() if k != "csrf_token"}, r.status_code)
        assert r.status_code < 500, context
        assert not LEAKS.search(r.text), (context, r.text[:500])
        if any("\x00" in v for k, v in values.items() if k != "csrf_token"):
            assert r.status_code in (400, 404), context  # 404: a signed-in form's object id that cannot exist
            refused.add(form["action"])

    run()
    return sent, refused


def test_every_form_signed_in(srv):
    web, token = signed_in_http(srv.base_url, srv.api_key)
    forms = forms_of(web, [*PAGES, f"/videos/{srv.video_id}"])
    assert len(forms) >= 12, sorted(forms)
    sent, refused = _fuzz(web, token, forms, 300)
    assert sent >= 300 and len(refused) >= len(forms) // 2, (sorted(forms), sorted(refused))
    assert "unhandled error" not in srv.log.read_text()  # no request ended in the 500 handler


def test_every_anonymous_form(srv):
    anon = httpx.Client(base_url=srv.base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(anon.get("/signin").text).group(1)
    forms = forms_of(anon, ["/signin", "/signup"])
    assert {"/signin/password", "/signin", "/signup"} <= set(forms)
    sent, refused = _fuzz(anon, token, forms, 120)
    assert sent == 120
    assert refused == set(forms)
    assert "unhandled error" not in srv.log.read_text()
