"""The edit form's strength control in Chromium under the server's strict CSP: its value shown as it moves,
the chosen model's own strength until it is moved, axe clean at desktop and phone widths."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer
from tests.web.test_studio import at_both_widths, sign_in

# A second silent test model whose own strength differs from the shipped 0.7, so following the model shows.
LIGHT = """
[[models]]
name = "tiny-wan-light"
family = "wan"
weights = "builtin:tiny-wan"
fps = 24
sizes = ["512x288", "288x512"]
seconds = ["4"]
steps = 2
guidance = 1.0
has_audio = false
memory = "full"
dtype = "float32"
test_model = true
edit_strength = 0.4
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH

    root = tmp_path_factory.mktemp("edit-strength-browser")
    models = root / "models.toml"
    models.write_text(DEFAULT_REGISTRY_PATH.read_text() + LIGHT)
    s = LiveServer(root / "data", "--no-worker", MUTOSCOPE_MODELS_FILE=str(models),
                   MUTOSCOPE_DEFAULT_PLAN="unlimited").start()
    yield s
    s.stop()


def test_the_strength_shows_its_value_and_follows_the_model_until_moved(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/videos/edit")
    value = "document.getElementById('edit-strength').value"
    shown = "document.getElementById('edit-strength-value').textContent"
    pick = ("(name) => { const s = document.getElementById('edit-model'); s.value = name;"
            " s.dispatchEvent(new Event('change')); }")
    names = browser.eval("[...document.getElementById('edit-model').options].map(o => o.value)")
    assert "tiny-wan-light" in names, names
    other = next(n for n in names if n != "tiny-wan-light")
    browser.eval(f"({pick})('tiny-wan-light')")
    assert (browser.eval(value), browser.eval(shown)) == ("0.4", "0.4")
    assert browser.eval("document.getElementById('edit-strength-default').textContent") == "0.4"
    browser.eval(f"({pick})({other!r})")
    assert (browser.eval(value), browser.eval(shown)) == ("0.7", "0.7")
    # Moved by hand (the keyboard's arrows fire the same input event), it stays when the model changes.
    browser.eval("(() => { const r = document.getElementById('edit-strength'); r.value = '0.55';"
                 " r.dispatchEvent(new Event('input')); })()")
    assert browser.eval(shown) == "0.55"
    browser.eval(f"({pick})('tiny-wan-light')")
    assert (browser.eval(value), browser.eval(shown)) == ("0.55", "0.55")
    browser.eval("(() => { const r = document.getElementById('edit-strength'); r.value = '1';"
                 " r.dispatchEvent(new Event('input')); })()")
    assert browser.eval(shown) == "1"
    at_both_widths(browser, "edit-strength", srv.data_dir.parent)
