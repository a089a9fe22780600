"""The creator's web app in a real browser: the create form (plan-aware choices, a dropped first frame),
progress in place (focus kept, an aria-live announcement, the tab title), remix/extend/edit and lineage,
reuse and retry, search/filter/bulk, and sharing: the feed, share links, a second person remixing a
shared video under their own plan with cameo consent enforced, and the same 404 for no access as for no
video.

One server (test fixtures offered in the form by the operator switch, plus the `half-pulled` model whose
jobs fail at once) and one chromium for the module; the tests run in file order and share two rendered
tiny-ltx2 videos at the smallest size and length.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import PARTIAL_MODEL, partial_weights_models_file, serve_live, wait_for
from tests.web.cdp import DESKTOP, MOBILE
from tests.web.conftest import signed_in_http

state: dict[str, str] = {}
SMALL = "512x288"  # the tiny models' smallest landscape size: these tests are not about size
WATCH = "document.querySelector('[data-watch]').getAttribute('data-status')"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-library")
    yield from serve_live(tmp_path_factory, "web-library", root=root, timeout=180,
                          MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(root)),
                          MUTOSCOPE_WEB_TEST_MODELS="always")


@pytest.fixture(scope="module")
def bob(srv) -> str:
    """A second person on the default (free) plan, made through the admin API."""
    with srv.http() as h:
        r = h.post("/v1/admin/users", json={"name": "bob"})
        assert r.status_code == 200, r.text
        return r.json()["api_key"]


@pytest.fixture(scope="module")
def cameo(srv) -> str:
    """The owner's active cameo @eileen (policy: approved people only), written straight into the server's
    database: verification is the likeness tests' subject; here only the consent rules matter."""
    from mutoscope.db.models import Cameo, User
    from mutoscope.db.session import make_engine, make_sessionmaker
    from mutoscope.likeness import audit

    engine = make_engine(f"sqlite:///{srv.data_dir / 'mutoscope.db'}")
    with make_sessionmaker(engine)() as s:
        owner = s.scalar(select(User).where(User.name == "owner"))
        c = Cameo(owner_id=owner.id, handle="eileen", challenge_id="challenge_x", status="active",
                  policy="approved", face_embedding=[0.1] * 128, voice_embedding=[0.2] * 256, keep_upload=False)
        s.add(c)
        s.flush()
        audit.append(s, "create", actor_id=owner.id, owner_id=owner.id, cameo_id=c.id)
        s.commit()
        cameo_id = c.id
    engine.dispose()
    return cameo_id


def sign_in(browser, base_url: str, key: str) -> None:
    browser.goto(base_url + "/signin")
    if browser.eval("location.pathname") != "/signin":  # still signed in as someone
        browser.submit("form[action='/signout']")
    browser.submit("form[action='/signin']", {"api_key": key})
    assert browser.eval("location.pathname") == "/", browser.text()


def nav_status(browser) -> int:
    return browser.eval("performance.getEntriesByType('navigation')[0].responseStatus")


def error_page(browser, status: int) -> None:
    """This page is the expected error answer; the browser's log line about its status is no fault."""
    assert nav_status(browser) == status, browser.text()
    assert all(f"status of {status}" in e for e in browser.console_errors())


def check_both_widths(browser) -> None:
    """axe, console and other-host checks at desktop and phone widths, and nothing wider than a phone."""
    browser.check_page()
    browser.viewport(*MOBILE)
    try:
        browser.check_page()
        assert browser.eval("document.documentElement.scrollWidth") <= MOBILE[0] + 1, browser.url
    finally:
        browser.viewport(*DESKTOP)


def option_labels(html: str) -> list[str]:
    select_html = html.split('<select id="model"', 1)[1].split("</select>", 1)[0]
    return [re.sub(r"\s+", " ", x).strip() for x in re.findall(r">([^<]+)</option>", select_html)]


def test_test_fixtures_are_offered_only_when_the_operator_turns_them_on(tmp_path):
    """The create form's rule (web/choices.py `model_choices`) over a stand-in catalog: which models exist is the
    subject here, and the shipped registry has no real model installed on a test machine."""
    from dataclasses import replace

    from mutoscope.accounts.plans import load_plans
    from mutoscope.accounts.service import Principal
    from mutoscope.config import Settings
    from mutoscope.db.migrate import upgrade
    from mutoscope.db.session import make_engine, make_sessionmaker
    from mutoscope.engine.base import ModelInfo
    from mutoscope.videos.admission import Admission
    from mutoscope.web.choices import model_choices

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))

    class Catalog:
        def __init__(self, models):
            self.models = models

        def list_models(self):
            return self.models

    tiny = ModelInfo(name="tiny-ltx2", family="ltx2", weights="builtin:tiny-ltx2", sizes=("1280x720", "720x1280"),
                     seconds=("4", "8", "12"), installed=True, test_model=True)
    real = ModelInfo(name="ltx-2.3-distilled", family="ltx2", weights="w", aliases=("sora-2",),
                     sizes=("1280x720",), seconds=("4",), installed=True,
                     description="LTX-2.3 distilled (Lightricks): 8-step video with synchronized audio.")
    absent = replace(real, name="wan", aliases=(), installed=False)
    plans = load_plans()

    def offered(models, mode, plan="unlimited"):
        who = Principal(user_id="user_x", user_name="x", role="member", key_id="key_x", plan=plan)
        admission = Admission(sessions, Catalog(models), Settings(data_dir=tmp_path), plans)
        return [m.label for m in model_choices(admission, who, mode)]

    # Noise only when the operator turned the fixtures on, even while nothing real is installed.
    assert offered([tiny, absent], "never") == []
    assert offered([tiny, absent], "always") == ["Test model (makes noise) · tiny-ltx2"]
    assert offered([tiny, real, absent], "never") == ["LTX-2.3 distilled (Lightricks) · sora-2"]
    assert offered([tiny, real], "always") == ["LTX-2.3 distilled (Lightricks) · sora-2",
                                               "Test model (makes noise) · tiny-ltx2"]
    assert offered([tiny, real], "never", plan="free") == ["LTX-2.3 distilled (Lightricks) · sora-2"]
    assert offered([tiny], "always", plan="free") == []  # the free plan names sora-2 only

    # What the pages and `serve` say: nothing real installed names the model to pull and its size.
    from mutoscope.web.setup import model_setup

    empty = model_setup(Catalog([tiny, replace(real, installed=False, download_gb=70)]))
    assert not empty.ready and empty.pull == "mutoscope models pull sora-2" and empty.download == "about 70 GB"
    assert empty.noise == {"tiny-ltx2"} and "HF_ENDPOINT" in " ".join(empty.lines())
    assert model_setup(Catalog([tiny, real])).ready and model_setup(Catalog([tiny, real])).lines() == []
    assert model_setup(Catalog([tiny, replace(real, installed=None)])).ready  # the workers hold the weights
    assert model_setup(Catalog([tiny])).suggest is None


def test_create_form_offers_what_is_installed_and_what_the_plan_allows(srv, bob):
    owner, _ = signed_in_http(srv.base_url, srv.api_key)
    labels = option_labels(owner.get("/videos/new").text)
    # Installed models only; fixtures under their friendly label (the operator switched them on here).
    assert "Test model (makes noise) · sora-2" in labels and PARTIAL_MODEL in labels
    assert not any("not installed" in x or x.startswith(("ltx-2", "wan2.2")) for x in labels), labels
    c, _ = signed_in_http(srv.base_url, bob)
    page = c.get("/videos/new").text
    assert option_labels(page) == ["Test model (makes noise) · sora-2"]  # the free plan has sora-2 only
    twelve = re.search(r'<input type="radio" name="seconds" value="12"[^>]*>', page).group(0)
    assert "disabled" in twelve and "(your plan allows up to 8 s)" in page
    assert re.search(r'name="seconds" value="4"\s+checked', page)
    assert "up to 8 s per video" in page and "120 seconds left" in page


def test_create_with_a_dropped_image_and_watch_it_in_place(srv, browser, cameo):
    sign_in(browser, srv.base_url, srv.api_key)
    browser.goto(srv.base_url + "/videos/new")
    check_both_widths(browser)
    files = browser.eval("""(async () => {
      const c = document.createElement('canvas'); c.width = 320; c.height = 180;
      const g = c.getContext('2d'), grad = g.createLinearGradient(0, 0, 320, 0);
      grad.addColorStop(0, '#1e3a8a'); grad.addColorStop(1, '#f59e0b'); g.fillStyle = grad; g.fillRect(0, 0, 320, 180);
      const blob = await new Promise(r => c.toBlob(r, 'image/png'));
      const dt = new DataTransfer(); dt.items.add(new File([blob], 'frame.png', {type: 'image/png'}));
      const zone = document.getElementById('dropzone');
      zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
      zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
      return document.getElementById('input_reference').files.length;
    })()""")
    assert files == 1
    browser.wait("!document.getElementById('drop-preview').hidden && "
                 "document.getElementById('drop-preview-img').naturalWidth === 320")
    assert "frame.png" in browser.text("#drop-message")
    # A choice the plan does not offer can still be forged; the service refuses it like the API would.
    browser.eval("document.querySelector('[data-choices=size]').insertAdjacentHTML('beforeend', "
                 "'<input type=radio name=size value=640x480>')")
    browser.submit("#create-form", {"prompt": "@eileen walks past a lighthouse at dusk", "size": "640x480"})
    error_page(browser, 400)
    assert "invalid_size" in browser.text("#form-error")
    browser.eval("""(async () => {  // the file input does not survive a re-rendered form: drop it again
      const c = document.createElement('canvas'); c.width = 320; c.height = 180;
      const blob = await new Promise(r => c.toBlob(r, 'image/png'));
      const dt = new DataTransfer(); dt.items.add(new File([blob], 'frame.png', {type: 'image/png'}));
      document.getElementById('dropzone').dispatchEvent(
        new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    })()""")
    browser.submit("#create-form", {"size": SMALL, "seconds": "4"})
    path = browser.eval("location.pathname")
    assert path.startswith("/videos/video_"), browser.text()
    state["v1"] = path.rsplit("/", 1)[1]
    assert browser.eval(WATCH) in ("queued", "in_progress"), "the job finished before it could be watched"

    # Listen as a screen reader would; a stand-in for the browser's Notification records what it shows.
    browser.eval("""(() => {
      window.__said = []; window.__notes = [];
      new MutationObserver(() => __said.push(document.getElementById('live-status').textContent))
        .observe(document.getElementById('live-status'), {childList: true, characterData: true, subtree: true});
      window.Notification = class { constructor(t, o) { __notes.push(t + ': ' + o.body); }
        static get permission() { return 'granted'; } static requestPermission() { return Promise.resolve('granted'); } };
    })()""")
    browser.eval("document.getElementById('notify-button').click()")
    browser.wait("document.getElementById('notify-button').textContent === 'You will be notified'")
    browser.eval("window.__focused = document.getElementById('delete-button'); __focused.focus()")
    assert browser.text("#delete-button") == "Cancel"
    browser.wait("document.title.startsWith('(')", timeout=30)  # progress in the tab's title
    browser.wait(f"{WATCH} === 'completed' && !!document.getElementById('player')", timeout=240, interval=0.3)
    # The focused button is the same node, now saying what it does for a finished video.
    assert browser.eval("document.activeElement === window.__focused")
    assert browser.text("#delete-button") == "Delete"
    said = browser.eval("window.__said")
    assert said and said[-1].startswith("Ready: @eileen walks past a lighthouse"), said
    assert browser.eval("document.title").startswith("✓ ")
    assert browser.eval("window.__notes") == ["Video ready: @eileen walks past a lighthouse at dusk"]
    browser.wait("document.getElementById('player').readyState >= 1", timeout=20)
    assert abs(browser.eval("document.getElementById('player').duration") - 4.0) < 0.2
    check_both_widths(browser)


def test_remix_extend_edit_and_the_lineage(srv, browser):
    v1 = state["v1"]
    api = srv.client()
    browser.goto(f"{srv.base_url}/videos/{v1}")
    browser.submit("#remix-form", {"prompt": "the lighthouse in snow"})
    state["v2"] = v2 = browser.eval("location.pathname").rsplit("/", 1)[1]
    browser.goto(f"{srv.base_url}/videos/{v1}")
    browser.submit("#extend-form", {"prompt": "the waves rise", "seconds": "4"})
    v3 = browser.eval("location.pathname").rsplit("/", 1)[1]
    browser.goto(f"{srv.base_url}/videos/edit?video={v1}")
    browser.check_page()
    browser.submit("#edit-form", {"prompt": "as a watercolour"})
    v4 = browser.eval("location.pathname").rsplit("/", 1)[1]
    got = {v.id: v for v in (api.videos.retrieve(x) for x in (v2, v3, v4))}
    assert got[v2].remixed_from_video_id == v1
    assert got[v3].model_extra["extended_from_video_id"] == v1 and got[v3].seconds == "8"
    assert got[v4].model_extra["edited_from_video_id"] == v1
    browser.goto(f"{srv.base_url}/videos/{v1}")
    derived = browser.text("#lineage-derived")
    assert "Remix: the lighthouse in snow" in derived and "Extension: the waves rise" in derived
    assert "Edit: as a watercolour" in derived
    for v in (v3, v4):  # only the remix needs to render here
        api.videos.delete(v)
    wait_for(lambda: api.videos.retrieve(v2).status == "completed", timeout=240, interval=0.5)
    browser.goto(f"{srv.base_url}/videos/{v1}")
    assert "Extension:" not in browser.text("#lineage-derived")
    img = f"document.querySelector('#lineage-derived li[data-id=\"{v2}\"] img')"
    browser.wait(f"{img} && {img}.complete && {img}.naturalWidth > 0")
    browser.goto(f"{srv.base_url}/videos/{v2}")
    assert "lighthouse at dusk" in browser.text("#lineage-source")


def test_reuse_prompt_prefills_the_form(srv, browser):
    browser.goto(f"{srv.base_url}/videos/{state['v1']}")
    browser.eval("document.getElementById('reuse').click()")
    browser.wait("location.pathname === '/videos/new' && document.readyState === 'complete'")
    assert browser.eval("document.getElementById('prompt').value") == "@eileen walks past a lighthouse at dusk"
    assert browser.eval("document.getElementById('model').value") == "sora-2"
    assert browser.eval("document.querySelector('input[name=size]:checked').value") == SMALL
    assert browser.eval("document.querySelector('input[name=seconds]:checked').value") == "4"
    assert browser.eval("document.getElementById('seed').value") == ""  # a new take unless asked
    assert "its seed was" in browser.text("#reuse-note")
    # The dropped first frame comes along, unless the person unticks it or chooses another file.
    assert browser.eval("document.querySelector('#first-frame-again input').checked")
    browser.check_page()
    browser.submit("#create-form")
    again = browser.eval("location.pathname").rsplit("/", 1)[1]
    assert again.startswith("video_") and again != state["v1"], browser.text()
    from mutoscope.db.models import Video
    from mutoscope.db.session import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{srv.data_dir / 'mutoscope.db'}")
    with make_sessionmaker(engine)() as s:
        keys = {v.id: v.input_key for v in s.scalars(select(Video).where(Video.id.in_([state["v1"], again])))}
    engine.dispose()
    assets = srv.data_dir / "assets"
    assert keys[again] != keys[state["v1"]]
    assert (assets / keys[again]).read_bytes() == (assets / keys[state["v1"]]).read_bytes()
    srv.client().videos.delete(again)  # what was submitted is the point, not another render
    # Someone else's video, or an id that does not exist, gives no image: the form says so by the field.
    browser.goto(f"{srv.base_url}/videos/new")
    browser.eval("document.getElementById('create-form').insertAdjacentHTML('beforeend', "
                 "'<input type=hidden name=first_frame_of value=video_nope>')")
    browser.submit("#create-form", {"prompt": "a new take", "size": SMALL, "seconds": "4"})
    error_page(browser, 404)


def test_a_failed_video_shows_its_code_never_a_path_and_can_be_retried(srv, browser):
    browser.goto(srv.base_url + "/videos/new")
    browser.eval(f"document.getElementById('model').value = '{PARTIAL_MODEL}'; "
                 "document.getElementById('model').dispatchEvent(new Event('change'))")
    browser.submit("#create-form", {"prompt": "no weights here", "size": "1280x720", "seconds": "4"})
    failed = browser.eval("location.pathname").rsplit("/", 1)[1]
    browser.wait(f"{WATCH} === 'failed' && !!document.getElementById('job-error')", timeout=240, interval=0.3)
    assert browser.text("#job-error-code") == "model_not_available"
    assert "/" not in browser.text("#job-error-message")
    assert browser.eval("document.title").startswith("✕ ")
    # Even a message that names a file on the server (an older engine's, say) is shown without it.
    from mutoscope.db.models import Video
    from mutoscope.db.session import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{srv.data_dir / 'mutoscope.db'}")
    with make_sessionmaker(engine)() as s:
        s.get(Video, s.scalar(select(Video.seq).where(Video.id == failed))).error_message = \
            f"weights at {srv.data_dir}/weights/half-pulled are incomplete"
        s.commit()
    engine.dispose()
    browser.goto(f"{srv.base_url}/videos/{failed}")
    assert str(srv.data_dir) not in browser.eval("document.documentElement.outerHTML")
    assert "not installed on this server" in browser.text("#job-error-message")
    assert str(srv.data_dir) not in srv.client().videos.retrieve(failed).error.message
    browser.check_page()
    seed = srv.client().videos.retrieve(failed).model_extra["seed"]
    browser.submit("#retry-form")
    retried = browser.eval("location.pathname").rsplit("/", 1)[1]
    assert retried != failed
    again = srv.client().videos.retrieve(retried)
    assert (again.prompt, again.model, again.size, again.seconds) == ("no weights here", PARTIAL_MODEL, "1280x720", "4")
    assert again.model_extra["seed"] == seed  # a failed video is tried again as it was asked for
    state["failed"], state["retried"] = failed, retried
    wait_for(lambda: srv.client().videos.retrieve(retried).status == "failed", timeout=120)


def test_search_filter_preview_and_bulk_actions(srv, browser):
    v1, v2 = state["v1"], state["v2"]
    tiles = "Array.from(document.querySelectorAll('#videos .tile')).map(t => t.dataset.id)"
    browser.goto(srv.base_url + "/?q=LIGHTHOUSE")
    assert browser.eval(tiles) == [v2, v1]
    browser.goto(f"{srv.base_url}/?q=lighthouse&after={v2}")  # the cursor pages within the search
    assert browser.eval(tiles) == [v1]
    browser.goto(srv.base_url + "/?status=failed")
    assert browser.eval(tiles) == [state["retried"], state["failed"]]
    browser.goto(f"{srv.base_url}/?model={PARTIAL_MODEL}&q=weights")
    assert browser.eval(tiles) == [state["retried"], state["failed"]]
    browser.goto(srv.base_url + "/?q=100%25")  # LIKE's wildcards are text here
    assert browser.eval(tiles) == [] and browser.text("#no-matches") == "No videos match."
    day = browser.eval("new Date().toISOString().slice(0, 10)")
    browser.goto(f"{srv.base_url}/?from={day}&to={day}&q=lighthouse")
    assert browser.eval(tiles) == [v2, v1]
    browser.goto(f"{srv.base_url}/?from=2000-01-01&to=2000-01-02")
    assert browser.eval(tiles) == []
    browser.goto(f"{srv.base_url}/?from=yesterday")
    error_page(browser, 400)
    assert "from" in browser.text("#form-error")

    browser.goto(srv.base_url + "/")
    check_both_widths(browser)
    # Hovering (or focusing) a finished tile steps through its spritesheet.
    link = f"document.querySelector('.tile[data-id=\"{v1}\"] .tile-link')"
    browser.eval(f"{link}.dispatchEvent(new MouseEvent('mouseover', {{bubbles: true}}))")
    browser.wait(f"{link}.querySelector('.thumb').classList.contains('previewing')")
    assert "spritesheet" in browser.eval(f"{link}.querySelector('.sprite').style.backgroundImage")
    browser.eval(f"{link}.dispatchEvent(new MouseEvent('mouseout', {{bubbles: true}}))")
    assert not browser.eval(f"{link}.querySelector('.thumb').classList.contains('previewing')")
    # A headless window never has the system's focus, so focus events fire only when emulated.
    browser.send("Emulation.setFocusEmulationEnabled", enabled=True)
    browser.eval(f"{link}.focus()")
    browser.wait(f"{link}.querySelector('.thumb').classList.contains('previewing')")

    # Bulk: export the two failed videos, then delete them.
    browser.goto(srv.base_url + "/?status=failed")
    browser.eval("document.querySelectorAll('input.select-video').forEach(b => b.checked = true)")
    browser.eval("window.__page = 'bulk1'; document.getElementById('bulk-export').click()")
    browser.wait("window.__page !== 'bulk1' && document.readyState === 'complete'")
    assert "Exporting the selected videos" in browser.text("#notice")
    assert browser.eval("location.search").startswith("?status=failed")
    with srv.http() as h:
        wait_for(lambda: h.get("/v1/exports").json()["data"][0]["status"] == "completed", timeout=60)
        assert h.get("/v1/exports").json()["data"][0]["video_count"] == 2
    browser.eval("document.querySelectorAll('input.select-video').forEach(b => b.checked = true); "
                 "window.confirm = () => true; window.__page = 'bulk2'; document.getElementById('bulk-delete').click()")
    browser.wait("window.__page !== 'bulk2' && document.readyState === 'complete'")
    assert "Deleted the selected videos." in browser.text("#notice")
    assert browser.eval(tiles) == []
    assert {v.id for v in srv.client().videos.list().data} >= {v1, v2}


def _main_html(browser) -> str:
    return browser.eval("document.querySelector('main').innerHTML")


def test_share_to_the_feed_and_another_person_remixes_under_consent(srv, browser, bob, cameo):
    v1, v2 = state["v1"], state["v2"]
    browser.goto(f"{srv.base_url}/videos/{v1}")
    browser.submit("#share-form", {"visibility": "everyone"})
    link1 = browser.eval("document.getElementById('share-link').getAttribute('href')")
    browser.goto(f"{srv.base_url}/videos/{v2}")
    browser.submit("#share-form", {"visibility": "unlisted"})
    link2 = browser.eval("document.getElementById('share-link').getAttribute('href')")
    assert link1.startswith("/s/") and link2.startswith("/s/") and link1 != link2
    owner_api = srv.client()
    assert owner_api.videos.retrieve(v1).model_extra["visibility"] == "everyone"

    with srv.http() as h:  # the free plan has Sora's sizes only; on pro, Bob pays 10 credits a second
        bob_id = next(u["id"] for u in h.get("/v1/admin/users").json()["data"] if u["name"] == "bob")
        assert h.post(f"/v1/admin/users/{bob_id}", json={"plan": "pro"}).status_code == 200
    sign_in(browser, srv.base_url, bob)
    browser.goto(srv.base_url + "/feed")
    check_both_widths(browser)
    feed = browser.eval("Array.from(document.querySelectorAll('#feed .tile')).map(t => t.dataset.id)")
    assert feed == [v1]  # the unlisted one is not listed
    assert "by owner" in browser.text("#feed")
    browser.eval("document.querySelector('#feed .tile-link').click()")
    browser.wait(f"location.pathname === {json.dumps(link1)} && document.readyState === 'complete'")
    browser.wait("document.getElementById('player').readyState >= 1", timeout=20)
    assert browser.text("#made-by") == "by owner"
    assert not browser.eval("!!document.getElementById('share-form') || !!document.getElementById('delete-button')")
    check_both_widths(browser)

    # Bob may not use @eileen, whom the source shows: his remix is refused, as a create would be.
    browser.submit("#remix-form", {"prompt": "the lighthouse at night"})
    error_page(browser, 403)
    assert "cameo_permission_denied" in browser.text("#form-error")
    bob_api = srv.client(bob)
    assert bob_api.videos.list().data == []
    with srv.http() as h:  # the cameo's owner approves Bob
        assert h.post(f"/v1/cameos/{cameo}/grants", json={"user": "bob"}).status_code == 200
    browser.goto(srv.base_url + link1)
    browser.submit("#remix-form", {"prompt": "the lighthouse at night"})
    mine = browser.eval("location.pathname").rsplit("/", 1)[1]
    remix = bob_api.videos.retrieve(mine)  # Bob's own video, charged to Bob's plan
    assert remix.remixed_from_video_id == v1 and remix.model_extra["visibility"] == "private"
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {bob}"}) as h:
        usage = h.get("/v1/usage").json()
        assert usage["plan"] == "pro" and usage["reserved"] + usage["spent"] == 40
        assert h.get(f"/v1/videos/{v1}").json().get("share_url") is None  # only the owner sees the link
    with srv.http() as h:
        assert h.get(f"/v1/videos/{mine}").status_code == 404  # the owner of the source does not own it
    bob_api.videos.delete(mine)

    # The unlisted link works for someone signed in who has it.
    browser.goto(srv.base_url + link2)
    assert nav_status(browser) == 200 and "the lighthouse in snow" in browser.text(".prompt-title")

    # Private again: the old link and the video's id answer exactly like ones that never existed.
    with srv.http() as h:
        assert h.post(f"/v1/videos/{v2}", json={"visibility": "private"}).json()["share_url"] is None
        assert h.post(f"/v1/videos/{v2}", json={"visibility": "public"}).status_code == 400
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {bob}"}) as h:
        assert h.post(f"/v1/videos/{v1}", json={"visibility": "private"}).status_code == 404
        gone, missing = h.get(f"/v1/videos/{v2}"), h.get("/v1/videos/video_000000000000000000000000")
        assert gone.status_code == missing.status_code == 404
        assert gone.json()["error"]["code"] == missing.json()["error"]["code"] == "video_not_found"
    browser.goto(srv.base_url + link2)
    error_page(browser, 404)
    old_link = _main_html(browser)
    browser.goto(srv.base_url + "/s/" + "x" * 24)
    assert _main_html(browser) == old_link
    browser.goto(f"{srv.base_url}/videos/{v2}")
    error_page(browser, 404)
    assert browser.text("#error-code") == "video_not_found"
    private = _main_html(browser).replace(v2, "ID")
    browser.goto(f"{srv.base_url}/videos/video_000000000000000000000000")
    assert _main_html(browser).replace("video_000000000000000000000000", "ID") == private
    error_page(browser, 404)
    browser.check_page()
    assert browser.eval(f"fetch('/videos/{v2}/content?variant=thumbnail').then(r => r.status)") == 404
