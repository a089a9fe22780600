"""People in the browser: invites, sign-up, password sign-in and its rate limit, sessions, the settings pages
(API keys, webhooks, usage), and the shell (offline /docs, favicon, mobile width, accessibility).

One `mutoscope serve --no-worker` (no video is rendered here) and one headless chromium for the module;
the tests run in file order and share the people they make. Every page is checked with axe-core, for
console errors and for requests to other hosts, at desktop and phone widths. A second person's browser
is an httpx client holding its own session.
"""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from tests.conftest import serve_live
from tests.hooks import Receiver
from tests.web.cdp import DESKTOP, MOBILE
from tests.web.conftest import CSRF, signed_in_http

PASSWORD = "correct horse battery staple"
state: dict = {}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    # Loopback is opened to outbound requests so the receiver here can take deliveries; the per-address
    # sign-in limit is low so the last test reaches it without hundreds of requests; open sign-up is on
    # (off by default: tests/web/test_web.py checks /signup is a 404 there).
    yield from serve_live(tmp_path_factory, "accounts", "--no-worker", MUTOSCOPE_OPEN_SIGNUP="true",
                          MUTOSCOPE_OUTBOUND_ALLOW='["127.0.0.1"]', MUTOSCOPE_SIGNIN_FAILURES_PER_IP="8")


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def nav_status(browser) -> int:
    return browser.eval("performance.getEntriesByType('navigation')[0].responseStatus")


def check_both_widths(browser, refused: bool = False) -> None:
    """axe, console and other-host checks at desktop width, then at a phone's, where nothing may scroll
    sideways; back to desktop after."""
    check = check_refused_page if refused else type(browser).check_page
    check(browser)
    browser.viewport(*MOBILE)
    try:
        browser.wait("document.documentElement.clientWidth <= 400")
        overflow = browser.eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{browser.url}: {overflow} px wider than a {MOBILE[0]} px screen"
        check(browser)
    finally:
        browser.viewport(*DESKTOP)


def check_refused_page(browser) -> None:
    """check_page for a form answered with its 4xx on purpose: the browser logs that status as a failed
    load of the page itself, which is the one console line allowed here."""
    where = browser.url
    violations = browser.axe()
    assert not violations, f"{where}: accessibility violations: {json.dumps(violations, indent=1)}"
    own = re.compile(r"log: Failed to load resource: the server responded with a status of 4\d\d .* "
                     + re.escape(where.split("#")[0]) + "$")
    errors = [e for e in browser.console_errors() if not own.match(e)]
    assert not errors, f"{where}: console errors: {errors}"
    assert browser.foreign_requests() == []


def field_error(browser, name: str) -> dict:
    """The field's own error, and whether the field points at it for assistive technology."""
    return browser.eval(f"""(function() {{
        var f = document.getElementById({json.dumps(name)}), e = document.getElementById({json.dumps(name + '-error')});
        return {{text: e ? e.innerText : null, invalid: f.getAttribute('aria-invalid'),
                 describedby: (f.getAttribute('aria-describedby') || '').split(' '), value: f.value}};
    }})()""")


def sign_out(browser) -> None:
    browser.submit("form[action='/signout']")
    assert browser.eval("location.pathname") == "/signin"


def sign_in_password(browser, base_url: str, login: str, password: str) -> None:
    browser.goto(base_url + "/signin")
    browser.submit("#password-form", {"login": login, "password": password})


def http_session(base_url: str, login: str, password: str, ua: str) -> httpx.Client:
    c = httpx.Client(base_url=base_url, headers={"Accept": "text/html", "User-Agent": ua}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin/password", data={"csrf_token": token, "login": login, "password": password, "next": "/"})
    assert r.status_code == 303, r.text
    assert c.get("/").status_code == 200
    return c


def test_docs_work_offline_and_the_favicon(web, browser):
    browser.goto(web.base_url + "/docs")
    browser.wait("!!document.querySelector('.swagger-ui .info .title')", timeout=30)
    assert "Mutoscope" in browser.text(".swagger-ui .info .title")
    browser.wait("document.querySelectorAll('.opblock').length > 10")  # the spec loaded and rendered
    assert browser.foreign_requests() == []
    assert browser.console_errors() == []
    r = httpx.get(web.base_url + "/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content
    browser.goto(web.base_url + "/signin")
    assert browser.eval("document.querySelector('link[rel=icon]').href").endswith("/favicon.ico")
    check_both_widths(browser)


def test_every_new_form_needs_the_csrf_token(web):
    c = httpx.Client(base_url=web.base_url, headers={"Accept": "text/html"}, timeout=30)
    signed_in, _ = signed_in_http(web.base_url, web.api_key)
    for client, path, data in ((c, "/signin/password", {"login": "owner", "password": "x" * 12}),
                               (c, "/invite/anything", {"name": "x", "password": "x" * 12}),
                               (signed_in, "/settings/keys", {"name": "k"}),
                               (signed_in, "/settings/invites", {"name": "k"}),
                               (signed_in, "/settings/resets", {"user": "owner"}),
                               (signed_in, "/settings/webhooks", {"url": "https://example.com/"})):
        r = client.post(path, data=data)
        assert r.status_code == 403 and "csrf_failed" in r.text, path
    assert "k" not in [k["name"] for k in web.http().get("/v1/admin/keys").json()["data"]]
    c.get("/signin")  # a pre-auth session: it carries a token, and a wrong one is still refused
    assert c.post("/signin/password", data={"csrf_token": "forged", "login": "owner"}).status_code == 403


def test_owner_creates_an_invite(web, browser):
    browser.goto(web.base_url + "/signin")
    browser.submit("#key-form", {"api_key": web.api_key})
    assert browser.eval("location.pathname") == "/"
    browser.goto(web.base_url + "/settings/invites")
    check_both_widths(browser)
    # A bad email is shown by its field, and the rest of what was typed stays.
    browser.submit("#invite-form", {"email": "ada-at-example", "name": "Ada"})
    assert nav_status(browser) == 400
    err = field_error(browser, "email")
    assert "email address like" in err["text"] and err["invalid"] == "true" and "email-error" in err["describedby"]
    assert err["value"] == "ada-at-example" and field_error(browser, "name")["value"] == "Ada"
    check_refused_page(browser)
    browser.submit("#invite-form", {"email": "Ada@Example.com", "name": "Ada", "plan": "plus"})
    link = browser.text("#invite-link")
    assert re.fullmatch(re.escape(web.base_url) + r"/invite/[\w-]{40,}", link), link
    state["link"] = link
    browser.check_page()
    browser.goto(web.base_url + "/settings/invites")
    assert "ada@example.com" in browser.text("#invites") and link not in browser.text()  # shown once
    # A second invite, withdrawn: its link is dead.
    browser.submit("#invite-form", {"email": "", "name": "Nobody"})
    dead = browser.text("#invite-link")
    browser.goto(web.base_url + "/settings/invites")
    browser.submit("#invites li:first-child form")
    assert "Nobody" not in browser.text("#invites")
    assert httpx.get(dead, headers={"Accept": "text/html"}).status_code == 410
    sign_out(browser)


def test_cli_invite(web):
    link = web.cli("users", "invite", "--email", "grace@example.com", "--days", "1").stdout.strip()
    path = "/invite/" + link.rsplit("/invite/", 1)[1]
    page = httpx.get(web.base_url + path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'value="grace@example.com"' in page.text


def test_open_sign_up_when_the_operator_allows_it(web, browser):
    browser.goto(web.base_url + "/signin")
    browser.eval("document.querySelector('a[href=\"/signup\"]').click()")
    browser.wait("location.pathname === '/signup' && document.readyState === 'complete'")
    browser.submit("#signup-form", {"name": "Grace", "email": "", "password": "grace's long password"})
    err = field_error(browser, "email")
    assert nav_status(browser) == 400 and "Enter an email address" in err["text"] and err["invalid"] == "true"
    assert field_error(browser, "name")["value"] == "Grace"
    check_refused_page(browser)
    browser.submit("#signup-form", {"email": "grace.h@example.com", "password": "grace's long password"})
    assert browser.eval("location.pathname") == "/" and browser.text(".who") == "Grace"
    grace = next(u for u in web.http().get("/v1/admin/users").json()["data"] if u["name"] == "Grace")
    assert grace["role"] == "member" and grace["plan"] is None  # the default plan
    sign_out(browser)


def test_the_invited_person_signs_up_with_a_password(web, browser):
    browser.goto(state["link"])
    assert "owner invited you" in browser.text("#invite-note") and "plus" in browser.text("#invite-note")
    assert browser.eval("document.getElementById('email').value") == "ada@example.com"
    check_both_widths(browser)
    browser.submit("#signup-form", {"name": "Ada", "password": "short"})
    assert nav_status(browser) == 400
    err = field_error(browser, "password")
    assert "at least 10 characters" in err["text"] and err["invalid"] == "true"
    assert "password-error" in err["describedby"] and field_error(browser, "name")["value"] == "Ada"
    assert "at least 10 characters" in browser.text("#form-error")
    check_refused_page(browser)
    browser.submit("#signup-form", {"name": "Ada", "password": PASSWORD})
    assert browser.eval("location.pathname") == "/" and browser.text(".who") == "Ada"
    r = httpx.get(state["link"], headers={"Accept": "text/html"})  # single use
    assert r.status_code == 410 and "already been used" in r.text
    users = web.http().get("/v1/admin/users").json()["data"]
    ada = next(u for u in users if u["name"] == "Ada")
    assert ada["plan"] == "plus" and ada["role"] == "member"
    state["ada_id"] = ada["id"]


def test_sign_out_and_in_with_the_password(web, browser):
    sign_out(browser)
    sign_in_password(browser, web.base_url, "ada@example.com", "not the password")
    assert nav_status(browser) == 401
    err = field_error(browser, "password")
    assert "don't match an account" in err["text"] and err["invalid"] == "true"
    assert field_error(browser, "login")["value"] == "ada@example.com"  # what was typed stays
    assert browser.eval("document.getElementById('password').value") == ""  # a password is never echoed
    check_both_widths(browser, refused=True)
    browser.submit("#password-form", {"password": PASSWORD})
    assert browser.eval("location.pathname") == "/" and browser.text(".who") == "Ada"
    # The name works as well as the email.
    c = http_session(web.base_url, "Ada", PASSWORD, "second-browser/1.0")
    state["second"] = c


def test_sessions_page_lists_and_revokes(web, browser):
    browser.goto(web.base_url + "/settings/sessions")
    rows = browser.eval("[...document.querySelectorAll('#sessions li')].map(li => li.innerText)")
    assert len(rows) == 2 and sum("This browser" in r for r in rows) == 1
    assert any("second-browser/1.0" in r for r in rows)
    check_both_widths(browser)
    other = browser.eval("[...document.querySelectorAll('#sessions li')].find(li => "
                         "li.innerText.includes('second-browser')).dataset.id")
    browser.submit(f"#sessions li[data-id='{other}'] form")
    assert browser.eval("location.pathname") == "/settings/sessions"
    assert browser.eval("document.querySelectorAll('#sessions li').length") == 1
    r = state["second"].get("/")  # that browser is signed out on its next request
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert browser.eval("fetch('/').then(r => r.url.endsWith('/') && !r.redirected)")  # this one is not
    # Someone else's session id is a 404, like a made-up one, and that session lives on.
    owner, _ = signed_in_http(web.base_url, web.api_key)
    owners = re.findall(r'data-id="(websession_\w+)"', owner.get("/settings/sessions").text)
    assert owners
    for sid in (owners[0], "websession_nope"):
        assert browser.eval(f"fetch('/settings/sessions/{sid}/revoke', {{method: 'POST', body: new URLSearchParams("
                            "{csrf_token: document.querySelector('[name=csrf_token]').value})}).then(r => r.status)"
                            ) == 404
    assert re.findall(r'data-id="(websession_\w+)"', owner.get("/settings/sessions").text) == owners
    assert len(browser.console_errors()) == 2  # those two 404s, logged as they should be


def test_api_key_made_in_the_browser_works_with_the_sdk_then_is_revoked(web, browser):
    browser.goto(web.base_url + "/settings/keys")
    check_both_widths(browser)
    browser.submit("#key-create-form", {"name": "sdk test"})
    key = browser.text("#new-key")
    assert key.startswith("msk-")
    browser.check_page()
    sdk = web.client(key)
    assert sdk.models.list().data  # it is Ada's key on /v1
    assert httpx.get(web.base_url + "/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()["plan"] == "plus"
    # A developer's browser signed in with that key.
    dev = httpx.Client(base_url=web.base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(dev.get("/signin").text).group(1)
    assert dev.post("/signin", data={"csrf_token": token, "api_key": key}).status_code == 303
    assert dev.get("/").status_code == 200
    browser.goto(web.base_url + "/settings/keys")
    assert key not in browser.text()  # shown once
    assert browser.eval(f"document.querySelector('#keys li[data-prefix=\"{key[:12]}\"]').dataset.state") == "active"
    browser.submit(f"#keys li[data-prefix='{key[:12]}'] form")
    assert browser.eval(f"document.querySelector('#keys li[data-prefix=\"{key[:12]}\"]').dataset.state") == "revoked"
    with pytest.raises(openai.AuthenticationError):
        sdk.models.list()
    r = dev.get("/")  # revoking the key signed its browser session out too
    assert r.status_code == 303 and r.headers["location"] == "/signin"


def test_webhook_validation_rotate_and_a_delivery(web, browser, receiver):
    browser.goto(web.base_url + "/settings/webhooks")
    check_both_widths(browser)
    for url, words in (("not a url", "url"), ("http://10.0.0.1/hook", "public address")):
        browser.submit("#webhook-create-form", {"url": url, "name": "mine"})
        assert nav_status(browser) == 400
        err = field_error(browser, "url")
        assert words in err["text"] and err["invalid"] == "true" and "url-error" in err["describedby"], err
        assert err["value"] == url and field_error(browser, "name")["value"] == "mine"
    check_refused_page(browser)
    browser.eval("document.querySelectorAll('#webhook-create-form input[type=checkbox]')"
                 ".forEach(c => c.checked = false)")
    browser.submit("#webhook-create-form", {"url": receiver.url})
    assert nav_status(browser) == 400 and "at least one event" in browser.text(".field-error")
    assert browser.eval("document.getElementById('url').value") == receiver.url
    check_refused_page(browser)
    browser.eval("document.querySelectorAll('#webhook-create-form input[type=checkbox]')"
                 ".forEach(c => c.checked = true)")
    browser.submit("#webhook-create-form", {"url": receiver.url, "name": "my receiver"})
    first = browser.text("#signing-secret")
    assert first.startswith("whsec_")
    check_both_widths(browser)
    browser.submit("#rotate-form")
    second = browser.text("#signing-secret")
    assert second.startswith("whsec_") and second != first and browser.text("#secret-hint") == second[:10] + "…"
    browser.submit("#test-form")
    browser.wait("document.querySelector('#deliveries .delivery')?.dataset.state === 'delivered'", timeout=30)
    tries = browser.text("#deliveries .tries")
    assert "HTTP 204" in tries and "delivered" in tries and "UTC" in tries
    browser.check_page()
    body, headers = receiver.received[-1]
    web.client().webhooks.verify_signature(body, headers, secret=second)  # signed with the rotated secret
    assert json.loads(body)["type"] == "video.completed"
    browser.eval("window.confirm = () => true")
    browser.submit("#delete-form")
    assert browser.eval("location.pathname") == "/settings/webhooks" and "my receiver" not in browser.text()


def test_usage_and_plan(web, browser):
    browser.goto(web.base_url + "/settings/usage")
    assert "Plan: plus" in browser.text("#plan") and "2" == browser.eval(
        "[...document.querySelectorAll('#plan dt')].find(dt => dt.innerText === 'Jobs at once')"
        ".nextElementSibling.innerText")
    assert browser.text("#remaining") == "1,200 of 1,200 seconds"  # plans.toml's plus: 1200 s a month
    assert browser.text("#used") == "0 seconds"
    check_both_widths(browser)


def test_owner_sets_a_password_and_a_member_sees_no_invites(web, browser):
    assert httpx.get(web.base_url + "/settings/invites", headers={"Accept": "text/html"},
                     cookies=browser_cookies(browser)).status_code == 404
    sign_out(browser)
    browser.goto(web.base_url + "/signin")
    browser.submit("#key-form", {"api_key": web.api_key})
    browser.goto(web.base_url + "/settings/account")
    check_both_widths(browser)
    browser.submit("#password-form", {"new_password": "tiny"})
    assert "at least 10 characters" in field_error(browser, "new_password")["text"]
    check_refused_page(browser)
    browser.submit("#password-form", {"new_password": "owner password 42"})
    assert "password is saved" in browser.text("#notice")
    sign_out(browser)
    sign_in_password(browser, web.base_url, "owner", "owner password 42")
    assert browser.eval("location.pathname") == "/" and browser.text(".who") == "owner"


def browser_cookies(browser) -> dict[str, str]:
    return {c["name"]: c["value"] for c in browser.send("Network.getCookies")["cookies"]}


def test_a_disabled_account_is_signed_out(web):
    c = http_session(web.base_url, "Ada", PASSWORD, "third-browser/1.0")
    h = web.http()
    assert h.post(f"/v1/admin/users/{state['ada_id']}", json={"disabled": True}).status_code == 200
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    token = CSRF.search(c.get("/signin").text).group(1)
    # The right password answers exactly like a wrong one (and counts like one): no oracle for a guesser.
    # From an address of their own (through the trusted loopback proxy), so the address limit's test below
    # counts only its own attempts.
    away = {"X-Forwarded-For": "198.51.100.23"}
    r = c.post("/signin/password", data={"csrf_token": token, "login": "Ada", "password": PASSWORD}, headers=away)
    wrong = c.post("/signin/password", data={"csrf_token": token, "login": "Ada", "password": "not her password"},
                   headers=away)
    assert r.status_code == wrong.status_code == 401 and "disabled" not in r.text
    assert "match an account" in r.text and "match an account" in wrong.text
    assert h.post(f"/v1/admin/users/{state['ada_id']}", json={"disabled": False}).status_code == 200


def test_a_forgotten_password_is_reset_by_a_link_the_owner_hands_over(web, browser):
    elsewhere = http_session(web.base_url, "Ada", PASSWORD, "fourth-browser/1.0")
    browser.goto(web.base_url + "/settings/invites")  # the owner's, signed in with a password above
    browser.submit("#reset-form", {"user": "nobody@example.com"})
    assert nav_status(browser) == 404 and "No account" in field_error(browser, "user")["text"]
    assert field_error(browser, "user")["value"] == "nobody@example.com"
    check_refused_page(browser)
    browser.goto(web.base_url + "/settings/invites")
    browser.submit("#reset-form", {"user": "ADA@example.com"})
    link = browser.text("#reset-link")
    assert re.fullmatch(re.escape(web.base_url) + r"/invite/[\w-]{40,}", link), link
    assert "password reset" in browser.text("#invites")  # pending, and withdrawable like an invite
    check_both_widths(browser)
    sign_out(browser)
    browser.goto(link)
    assert "Ada" in browser.text("#reset-note")
    check_both_widths(browser)
    browser.submit("#reset-form", {"password": "short"})
    assert nav_status(browser) == 400 and "at least 10 characters" in field_error(browser, "password")["text"]
    check_refused_page(browser)
    browser.submit("#reset-form", {"password": "a brand new passphrase"})
    assert browser.eval("location.pathname") == "/" and browser.text(".who") == "Ada"
    assert elsewhere.get("/").status_code == 303  # every other browser of hers was signed out
    assert httpx.get(link, headers={"Accept": "text/html"}).status_code == 410  # once only
    http_session(web.base_url, "ada@example.com", "a brand new passphrase", "fifth-browser/1.0")
    # A member may not make reset links; the page is not there for her.
    ada = http_session(web.base_url, "Ada", "a brand new passphrase", "sixth-browser/1.0")
    token = CSRF.search(ada.get("/settings/account").text).group(1)
    assert ada.post("/settings/resets", data={"csrf_token": token, "user": "owner"}).status_code == 404
    # The operator's command line makes one too; it puts her password back for the tests after this one.
    link = web.cli("users", "reset-link", "Ada").stdout.strip()
    c = httpx.Client(base_url=web.base_url, headers={"Accept": "text/html"}, timeout=30)
    path = "/invite/" + link.rsplit("/invite/", 1)[1]
    token = CSRF.search(c.get(path).text).group(1)
    assert c.post(path, data={"csrf_token": token, "password": PASSWORD}).status_code == 303
    assert c.get("/").status_code == 200


def test_repeated_failures_are_429_per_account_then_per_address(web, browser):
    c = httpx.Client(base_url=web.base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)

    def attempt(login: str, password: str) -> httpx.Response:
        return c.post("/signin/password", data={"csrf_token": token, "login": login, "password": password})

    # Ada failed once before and then signed in, which cleared her account's count; five more fail.
    for i in range(5):
        assert attempt("ada@example.com", f"guess number {i}").status_code == 401
    r = attempt("ada@example.com", "guess number 6")
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 900
    assert "Too many failed sign-ins for this account" in r.text
    assert attempt("Ada", PASSWORD).status_code == 429  # locked: even the right password waits
    sign_out(browser)
    browser.submit("#password-form", {"login": "Ada", "password": PASSWORD})
    assert nav_status(browser) == 429 and "Wait 15 minutes" in browser.text("#form-error")
    assert field_error(browser, "login")["value"] == "Ada"
    check_refused_page(browser)
    # The address: 6 failures so far from 127.0.0.1 (refused attempts are not counted), the limit is 8.
    assert attempt("someone", "guess one two").status_code == 401
    assert attempt("someone else", "guess one two").status_code == 401
    r = attempt("a third name", "guess one two")
    assert r.status_code == 429 and "your network address" in r.text and int(r.headers["retry-after"]) >= 1
