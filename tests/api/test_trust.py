"""What an attack from outside found, each through a live server on PostgreSQL: text PostgreSQL cannot store
refused at the edge of every form and route, header values checked where stored and where sent, Secure
cookies and honest addresses behind a TLS proxy, the password policy, no password oracle on a disabled
account, links only from the public URL, the sealing-key canary, and 0600/0700 for every file written."""

from __future__ import annotations

import inspect
import os
import re
import stat
import subprocess
import sys
import time

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

from tests.conftest import LiveServer, free_port, server_env, wait_for
from tests.web.conftest import CSRF, signed_in_http

FAST = {"num_inference_steps": 2}
SHORT = {"seconds": "4", "size": "512x288"}
NUL = "a\x00b"
BODY_READERS = re.compile(r"read_body|_fields\(|read_form|request\.form|request\.json|request\.body|request\.stream")
INTERNALS = re.compile(r"psycopg|SELECT|INSERT|UPDATE|Traceback|sqlalchemy|/src/mutoscope", re.IGNORECASE)


@pytest.fixture(scope="module")
def pg(tmp_path_factory, pg_module_url):
    srv = LiveServer(tmp_path_factory.mktemp("trust") / "data", MUTOSCOPE_DATABASE_URL=pg_module_url).start(timeout=300)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def owner_web(pg):
    return signed_in_http(pg.base_url, pg.api_key)


def _raw(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _routes() -> list[APIRoute]:
    """Every route the server mounts, from the routers themselves (so a new route is walked too)."""
    from mutoscope.api.routes import (
        account,
        cameos,
        exports,
        files,
        models,
        verify,
        videos,
        webhooks,
    )
    from mutoscope.web import accounts as web_accounts
    from mutoscope.web import cameos as web_cameos
    from mutoscope.web import routes as web_routes
    from mutoscope.web import storyboard as web_storyboard

    routers = [videos.router, files.router, models.router, cameos.router, verify.router, exports.router,
               account.router, account.admin, webhooks.router, web_accounts.router, web_routes.router,
               web_cameos.router, web_storyboard.router]
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def test_routes_are_walked():
    paths = {(m, r.path) for r in _routes() for m in r.methods}
    assert ("POST", "/signin/password") in paths and ("POST", "/v1/videos/characters") in paths
    assert len(paths) > 60


def test_anonymous_sign_in_with_a_nul_is_a_400_not_a_500(pg):
    c = httpx.Client(base_url=pg.base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin/password", content=f"csrf_token={token}&login=a%00b&password=correct+horse+battery",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400, r.text
    assert "login" in r.text and not INTERNALS.search(r.text)


def test_character_name_with_a_nul_is_a_400_naming_it(pg):
    r = pg.http().post("/v1/videos/characters", data={"name": NUL}, files={"video": ("c.mp4", b"\x00" * 64, "video/mp4")})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "name"


def test_every_form_and_route_refuses_a_nul_on_postgresql(pg, owner_web):
    """Path ids, query strings, urlencoded forms, JSON and multipart fields, signed in as the owner (so every
    page's form is reached past its sign-in check): a 400 every time, never a 5xx, never a success."""
    web, token = owner_web
    api = pg.http()
    seen = 0
    for route in _routes():
        page = not route.path.startswith("/v1")
        client = web if page else api
        for method in sorted(route.methods - {"HEAD"}):
            # A NUL in a path id.
            if "{" in route.path:
                r = client.request(method, _fill(route.path, "a%00b"))
                assert r.status_code == 400, (method, route.path, r.status_code, r.text[:300])
            # A NUL in the query string.
            r = client.request(method, _fill(route.path, "x"), params={"after": NUL, "q": "ok"})
            assert r.status_code == 400, (method, route.path, r.status_code, r.text[:300])
            assert r.json()["error"]["param"] == "after"
            if method != "POST":
                seen += 1
                continue
            # A NUL in a body field: as the web forms send it, as JSON, and as multipart.
            fields = {"csrf_token": token, "login": NUL, "name": NUL, "email": NUL, "prompt": NUL, "password": NUL,
                      "api_key": NUL, "url": NUL, "user": NUL, "ids": NUL, "remix_prompt": NUL}
            for kwargs in ({"data": fields}, {"json": fields}, {"data": fields, "files": {"f": ("a.png", b"x", "image/png")}}):
                r = client.post(_fill(route.path, "x"), **kwargs)
                assert r.status_code < 500, (route.path, kwargs.keys(), r.status_code, r.text[:300])
                if r.status_code in (200, 201, 303):  # only a route that reads no body may take it
                    assert not BODY_READERS.search(inspect.getsource(route.endpoint)), (route.path, r.status_code)
                    continue
                if "{" not in route.path:  # an unknown id may be a 404 before the body is read
                    assert r.status_code in (400, 403, 404, 413, 422), (route.path, kwargs.keys(), r.status_code,
                                                                   r.text[:300])
                assert not INTERNALS.search(r.text), (route.path, r.text[:300])
            seen += 1
    assert seen > 60
    assert "Traceback" not in pg.log.read_text()


def test_account_email_with_a_nul_is_the_form_s_own_400(pg, owner_web):
    web, token = owner_web
    r = web.post("/settings/account/email", data={"csrf_token": token, "email": "a\x00b@example.com"})
    assert r.status_code == 400 and "email" in r.text
    with psycopg.connect(_raw(pg.env["MUTOSCOPE_DATABASE_URL"])) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE email LIKE %s", ("%b@example.com",)).fetchone()[0] == 0


def test_a_replacement_that_could_break_a_header_is_refused_and_never_sent(pg):
    http = pg.http()
    future = int(time.time()) + 30 * 86400
    r = http.post("/v1/admin/models/sora-2-pro/deprecation",
                  json={"shutdown_date": future, "replacement": "sora-3\r\nSet-Cookie: a=b"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "replacement", r.text
    r = http.post("/v1/admin/models/sora-2-pro/deprecation", json={"shutdown_date": future, "replacement": "sora-2"})
    assert r.status_code == 200, r.text
    # A row written before the check (or by hand): the header is still safe, and the create answers once.
    with psycopg.connect(_raw(pg.env["MUTOSCOPE_DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("UPDATE model_lifecycle SET replacement = %s WHERE model = 'sora-2-pro'",
                     ("sora-3\r\nSet-Cookie: a=b",))
        before = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
    client = pg.client()
    client.max_retries = 2
    raw = client.videos.with_raw_response.create(prompt="a deprecated model", model="sora-2-pro", **SHORT,
                                                 extra_body=FAST)
    assert raw.status_code == 200
    assert "\r" not in raw.headers["link"] and "Set-Cookie" not in str(raw.headers.get("set-cookie"))
    assert raw.headers["link"].startswith("</v1/models/sora-3%0D%0ASet-Cookie")
    with psycopg.connect(_raw(pg.env["MUTOSCOPE_DATABASE_URL"])) as conn:
        assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] == before + 1
    http.post("/v1/admin/models/sora-2-pro/deprecation", json={"shutdown_date": future, "replacement": "sora-2"})


def test_cookies_are_secure_and_hsts_is_on_behind_a_tls_proxy(pg):
    # The test talks from 127.0.0.1, the proxy address trusted by default (--forwarded-allow-ips).
    plain = httpx.get(pg.base_url + "/signin")
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert "strict-transport-security" not in plain.headers
    tls = httpx.get(pg.base_url + "/signin", headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in tls.headers["set-cookie"].lower()
    assert tls.headers["strict-transport-security"].startswith("max-age=")


def test_the_session_address_is_the_one_the_trusted_proxy_saw(pg):
    c = httpx.Client(base_url=pg.base_url, headers={"Accept": "text/html", "X-Forwarded-For": "198.51.100.7, 203.0.113.9"},
                     timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    assert c.post("/signin", data={"csrf_token": token, "api_key": pg.api_key}).status_code == 303
    page = c.get("/settings/sessions").text
    # The proxy appended the address it saw last; what the client itself put first is not believed.
    assert "203.0.113.9" in page and "198.51.100.7" not in page


def test_untrusted_proxies_cannot_choose_the_address_or_the_scheme(tmp_path):
    srv = LiveServer(tmp_path / "data", "--forwarded-allow-ips", "192.0.2.1").start()
    try:
        c = httpx.Client(base_url=srv.base_url, timeout=30,
                         headers={"Accept": "text/html", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        r = c.get("/signin")
        assert "secure" not in r.headers["set-cookie"].lower() and "strict-transport-security" not in r.headers
        token = CSRF.search(r.text).group(1)
        assert c.post("/signin", data={"csrf_token": token, "api_key": srv.api_key}).status_code == 303
        assert "203.0.113.9" not in c.get("/settings/sessions").text
    finally:
        srv.stop()


def _user_with_password(pg, name: str, password: str) -> str:
    made = pg.http().post("/v1/admin/users", json={"name": name}).json()
    web, token = signed_in_http(pg.base_url, made["api_key"])
    r = web.post("/settings/account/password", data={"csrf_token": token, "new_password": password})
    assert r.status_code == 303, r.text[:500]
    return made["id"]


def _password_sign_in(pg, login: str, password: str) -> httpx.Response:
    c = httpx.Client(base_url=pg.base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    return c.post("/signin/password", data={"csrf_token": token, "login": login, "password": password})


def test_common_and_pattern_passwords_are_refused(pg):
    made = pg.http().post("/v1/admin/users", json={"name": "heidi"}).json()
    web, token = signed_in_http(pg.base_url, made["api_key"])
    for weak in ("aaaaaaaaaa", "password123", "qwertyuiop", "heidi12345", "1234567890ab"):
        r = web.post("/settings/account/password", data={"csrf_token": token, "new_password": weak})
        assert r.status_code == 400 and "too easy to guess" in r.text, weak
    r = web.post("/settings/account/password", data={"csrf_token": token, "new_password": "cobalt otter sings twice"})
    assert r.status_code == 303


def test_a_disabled_account_answers_exactly_like_a_wrong_password(pg):
    user_id = _user_with_password(pg, "ivan", "cobalt otter sings twice")
    assert pg.http().post(f"/v1/admin/users/{user_id}", json={"disabled": True}).status_code == 200
    right = _password_sign_in(pg, "ivan", "cobalt otter sings twice")
    wrong = _password_sign_in(pg, "ivan", "not the password at all")
    assert right.status_code == wrong.status_code == 401
    strip = re.compile(r'name="csrf_token" value="[^"]+"|value="[^"]*"')
    assert strip.sub("", right.text) == strip.sub("", wrong.text)
    assert "disabled" not in right.text.lower()


def test_links_come_from_the_public_url_only(pg, owner_web):
    web, token = owner_web
    with psycopg.connect(_raw(pg.env["MUTOSCOPE_DATABASE_URL"])) as conn:
        before = conn.execute("SELECT count(*) FROM invites").fetchone()[0]
    r = web.post("/settings/invites", data={"csrf_token": token, "role": "member"},
                 headers={"Host": "videos.attacker.example"})
    assert r.status_code == 400 and "MUTOSCOPE_PUBLIC_URL" in r.text
    assert "videos.attacker.example/invite" not in r.text
    r = web.post("/settings/resets", data={"csrf_token": token, "user": "heidi"},
                 headers={"Host": "videos.attacker.example"})
    assert r.status_code == 400 and "MUTOSCOPE_PUBLIC_URL" in r.text
    with psycopg.connect(_raw(pg.env["MUTOSCOPE_DATABASE_URL"])) as conn:
        assert conn.execute("SELECT count(*) FROM invites").fetchone()[0] == before  # no link was made
    r = web.post("/settings/invites", data={"csrf_token": token, "role": "member"})  # opened on this machine
    assert r.status_code == 200 and f"{pg.base_url}/invite/" in r.text


def test_a_process_with_another_sealing_key_refuses_to_start(pg, tmp_path):
    env = server_env(tmp_path / "other", MUTOSCOPE_DATABASE_URL=pg.env["MUTOSCOPE_DATABASE_URL"])
    out = subprocess.run([sys.executable, "-m", "mutoscope", "serve", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode != 0
    assert "MUTOSCOPE_SECRET_KEY" in out.stdout + out.stderr, (out.stdout + out.stderr)[-2000:]
    # With the installation's key, the same process starts.
    key = (pg.data_dir / "secret-key").read_text().strip()
    env["MUTOSCOPE_SECRET_KEY"] = key
    other = LiveServer(tmp_path / "other2", MUTOSCOPE_DATABASE_URL=pg.env["MUTOSCOPE_DATABASE_URL"],
                       MUTOSCOPE_SECRET_KEY=key).start()
    other.stop()


def test_every_file_the_server_wrote_is_private(pg):
    client = pg.client()
    video = client.videos.create_and_poll(prompt="files under 0600", **SHORT, extra_body=FAST)
    assert video.status == "completed", video.error
    http = pg.http()
    export = http.post("/v1/exports", json={}).json()
    done = wait_for(lambda: (e := http.get(f"/v1/exports/{export['id']}").json())["status"] in ("completed", "failed")
                    and e, timeout=180)
    assert done["status"] == "completed", done
    loose = []
    for root, dirs, files in os.walk(pg.data_dir):
        for d in dirs:
            mode = stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode)
            if mode & 0o077:
                loose.append((os.path.join(root, d), oct(mode)))
        for f in files:
            p = os.path.join(root, f)
            mode = stat.S_IMODE(os.lstat(p).st_mode)
            if mode & 0o077:
                loose.append((p, oct(mode)))
    assert not loose, loose
