"""Fixtures for the web app: its own `mutoscope serve` and one headless Debian chromium."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.conftest import serve_live
from tests.web.cdp import Browser, find_chromium


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    # A server of its own: these tests create, export and delete videos and schedule a sunset, which
    # must not show up in the shared server's lists.
    yield from serve_live(tmp_path_factory, "web")


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):  # .ci/run installs Debian's chromium: missing there is a failure
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    b = Browser(exe)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _each_test_checks_its_own_pages(request):
    """The browser is shared by a module's tests, and an earlier test may end on a page that answered an
    error on purpose (a refused form is a 400); its log is that test's business, not the next one's."""
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").console_errors()
    yield


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in_http(base_url: str, api_key: str) -> tuple[httpx.Client, str]:
    """An httpx client holding a web session, and that session's CSRF token."""
    c = httpx.Client(base_url=base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin", data={"csrf_token": token, "api_key": api_key, "next": "/"})
    assert r.status_code == 303, r.text
    return c, CSRF.search(c.get("/").text).group(1)
