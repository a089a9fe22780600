"""The storyboard editor in a real browser: cards on a timeline, reordered by button and by drag, a refusal
shown by the card it names, and one storyboard video whose shots are the cards in their final order.

The server runs without a worker: what the page owes is the request; rendering a storyboard is proven
through the API (tests/api/test_storyboards.py).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import serve_live
from tests.web.cdp import DESKTOP, MOBILE


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from serve_live(tmp_path_factory, "web-storyboard", "--no-worker", timeout=240,
                          MUTOSCOPE_DEFAULT_PLAN="unlimited")


def sign_in(browser, base_url: str, key: str) -> None:
    browser.goto(base_url + "/signin")
    if browser.eval("location.pathname") != "/signin":
        browser.submit("form[action='/signout']")
    browser.submit("form[action='/signin']", {"api_key": key})
    assert browser.eval("location.pathname") == "/", browser.text()


def prompts(browser) -> list[str]:
    return browser.eval("[...document.querySelectorAll('#timeline .shot-card textarea')].map(t => t.value)")


def set_value(browser, element_id: str, value: str) -> None:
    browser.eval(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change', {{bubbles: true}})); }})"
                 f"(document.getElementById({json.dumps(element_id)}))")


def click(browser, selector: str) -> None:
    browser.eval(f"document.querySelector({json.dumps(selector)}).click()")


def test_cards_reorder_refuse_by_the_card_and_make_one_storyboard(srv, browser):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/storyboards/new")
    assert browser.eval("document.querySelectorAll('#timeline .shot-card').length") == 2
    assert browser.eval("document.getElementById('shot-0-transition').disabled") is True  # follows nothing
    browser.check_page()

    set_value(browser, "shot-0-prompt", "a fox wakes up in its den")
    set_value(browser, "shot-1-prompt", "the fox runs into the forest")
    click(browser, "#add-shot")
    assert browser.eval("document.activeElement.id") == "shot-2-prompt"  # the new card takes the focus
    set_value(browser, "shot-2-prompt", "night falls over the hills")

    # Keyboard path: the third card moves one place earlier; its button keeps the focus and says so.
    browser.eval("document.querySelector('#timeline .shot-card:nth-child(3) .shot-up').focus()")
    browser.eval("document.activeElement.click()")
    assert prompts(browser) == ["a fox wakes up in its den", "night falls over the hills",
                                "the fox runs into the forest"]
    assert browser.eval("document.activeElement.getAttribute('aria-label')") == "Move shot 2 earlier"
    assert browser.text("#timeline-status") == "Shot moved to position 2 of 3."

    # Pointer path: drag the second card onto the first.
    browser.eval("""(() => {
        const cards = document.querySelectorAll('#timeline .shot-card');
        const dt = new DataTransfer();
        cards[1].dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: dt}));
        cards[0].dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: dt}));
        cards[0].dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt}));
        cards[1].dispatchEvent(new DragEvent('dragend', {bubbles: true, dataTransfer: dt}));
    })()""")
    assert prompts(browser) == ["night falls over the hills", "a fox wakes up in its den",
                                "the fox runs into the forest"]
    # Ids, labels and the first card's rule follow the new order.
    assert browser.eval("document.getElementById('shot-0-prompt').value") == "night falls over the hills"
    assert browser.eval("document.querySelector('label[for=shot-0-prompt]').closest('.shot-card') === "
                        "document.getElementById('shot-0-prompt').closest('.shot-card')")
    assert browser.eval("[...document.querySelectorAll('.shot-transition')].map(s => s.disabled)") == \
        [True, False, False]
    assert browser.eval("[...document.querySelectorAll('.shot-image')].map(i => i.name)") == \
        ["shot_image_0", "shot_image_1", "shot_image_2"]
    set_value(browser, "shot-2-transition", "continuous")
    moves = browser.eval("[...document.getElementById('shot-1-camera').options].map(o => o.value)")
    assert "" in moves and "dolly_in" in moves, moves
    set_value(browser, "shot-1-camera", "dolly_in")

    # A length the model cannot make: the service's refusal, shown by that card's field; the cards stay.
    browser.eval("document.getElementById('shot-1-seconds').add(new Option('7 s', '7', true, true))")
    marker = browser._mark()
    browser.eval("document.getElementById('storyboard-form').requestSubmit()")
    browser._loaded(marker, 60)
    assert browser.eval("performance.getEntriesByType('navigation')[0].responseStatus") == 400
    assert "storyboard[1].seconds" in browser.text("#form-error")
    assert browser.text("#shot-1-seconds-error"), browser.text()
    assert browser.eval("document.getElementById('shot-1-seconds').getAttribute('aria-invalid')") == "true"
    # A card added now starts clean: the refusal belongs to the card it names, not to the blank template.
    assert browser.eval("document.getElementById('shot-template').content.querySelector('.field-error, "
                        "[aria-invalid]') === null")
    assert prompts(browser) == ["night falls over the hills", "a fox wakes up in its den",
                                "the fox runs into the forest"]
    assert browser.eval("document.getElementById('shot-2-transition').value") == "continuous"
    browser.console_errors()  # the 400 document's own load is logged by the browser; that is the point here
    browser.check_page()

    set_value(browser, "shot-1-seconds", "4")
    marker = browser._mark()
    browser.eval("document.getElementById('storyboard-form').requestSubmit()")
    browser._loaded(marker, 60)
    path = browser.eval("location.pathname")
    assert path.startswith("/videos/video_"), browser.text()
    video = srv.client().videos.retrieve(path.rsplit("/", 1)[1])
    shots = video.model_extra["shots"]
    assert [s["prompt"] for s in shots] == ["night falls over the hills", "a fox wakes up in its den",
                                            "the fox runs into the forest"]
    assert [s["transition"] for s in shots] == [None, "cut", "continuous"]
    assert [s["camera"] for s in shots] == [None, "dolly_in", None]
    assert video.seconds == "12" and video.status == "queued"


def test_the_editor_at_phone_width(srv, browser):
    browser.viewport(*MOBILE)
    try:
        browser.goto(srv.base_url + "/storyboards/new")
        assert browser.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.check_page()
    finally:
        browser.viewport(*DESKTOP)
