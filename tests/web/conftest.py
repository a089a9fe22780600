"""Fixtures for the web app: its own `mutoscope serve` and one headless Debian chromium."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.cdp import Browser, find_chromium


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    # A server of its own: these tests create, export and delete videos and schedule a sunset, which
    # must not show up in the shared server's lists.
    srv = LiveServer(tmp_path_factory.mktemp("web") / "data").start()
    yield srv
    srv.stop()


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


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in_http(base_url: str, api_key: str) -> tuple[httpx.Client, str]:
    """An httpx client holding a web session, and that session's CSRF token."""
    c = httpx.Client(base_url=base_url, headers={"Accept": "text/html"}, timeout=30)
    token = CSRF.search(c.get("/signin").text).group(1)
    r = c.post("/signin", data={"csrf_token": token, "api_key": api_key, "next": "/"})
    assert r.status_code == 303, r.text
    return c, CSRF.search(c.get("/").text).group(1)
