"""Cameos in archives, in process: what leaves in whose export, what an import makes of them, and every
bad cameo line refused before anything is written. The same through a live server (with a real
verification) is tests/likeness/test_cameo_export.py; hostile archives over HTTP are in
test_hostile_imports.py."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from mutoscope.accounts.service import create_user
from mutoscope.db.models import Cameo, CameoAudit, CameoGrant, CameoUse, Import, new_id
from mutoscope.errors import InvalidRequest
from mutoscope.exports.importer import Limits, import_archive
from mutoscope.likeness import audit
from mutoscope.likeness.consent import may_use
from mutoscope.storage.keys import cameo_frame_key, voice_sample_key
from tests.exports.conftest import CATALOG, build_archive, cameo_record, export_now, jpeg, png, record, wav


def add_cameo(site, handle: str, *, owner_id: str | None = None, voice: bool = False, status: str = "active",
              policy: str = "only_me") -> str:
    """A verified cameo as verification leaves one: embeddings on the row, three frames, a voice sample only
    with voice consent."""
    cid = new_id("cameo_")
    with site.sessions() as s:
        s.add(Cameo(id=cid, owner_id=owner_id or site.owner_id, handle=handle, status=status, policy=policy,
                    challenge_id="challenge_x", face_embedding=[0.1] * 128, voice_embedding=[0.2] * 256,
                    verification={"passed": True, "checks": []}, voice_consent=voice,
                    voice_sample_key=voice_sample_key(cid) if voice else None, verified_at=1_700_000_010,
                    preferences="no hats", blocked_terms=["hat"]))
        s.commit()
    for i in range(3):
        site.storage.put_bytes(cameo_frame_key(cid, i), jpeg(i))
    if voice:
        site.storage.put_bytes(voice_sample_key(cid), wav())
    return cid


def use(site, cameo_id: str, video_id: str, user_id: str | None = None, taken_down: bool = False) -> None:
    with site.sessions() as s:
        s.add(CameoUse(cameo_id=cameo_id, video_id=video_id, user_id=user_id or site.owner_id,
                       taken_down_at=1_700_000_500 if taken_down else None,
                       takedown_reason="not that one" if taken_down else None))
        s.commit()


def _archive(path):
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        cameos = [json.loads(x) for x in zf.read("cameos.jsonl").decode().splitlines()]
        videos = {json.loads(x)["video"]["id"]: json.loads(x) for x in zf.read("videos.jsonl").decode().splitlines()}
        files = {n: zf.read(n) for n in zf.namelist() if n.startswith("cameos/")}
    return manifest, cameos, videos, files


def test_export_holds_the_owners_cameos_and_no_one_elses(site_a):
    with site_a.sessions() as s:
        bob = create_user(s, "bob").id
    ada = add_cameo(site_a, "ada", voice=True, policy="approved")
    quiet = add_cameo(site_a, "quiet")  # no voice consent: its frames leave, no voice
    theirs = add_cameo(site_a, "bobby", owner_id=bob, voice=True, policy="everyone")
    gone = add_cameo(site_a, "gone")
    with site_a.sessions() as s:
        s.query(Cameo).filter(Cameo.id == gone).update({"deleted_at": 1_700_000_100, "status": "deleted"})
        s.add(CameoGrant(cameo_id=ada, grantee_id=bob, created_at=1_700_000_200))
        s.commit()
    with_both = site_a.add_video(prompt="@ada and @bobby")
    use(site_a, ada, with_both)
    use(site_a, theirs, with_both)  # bob's cameo, used under his policy
    bobs_video = site_a.add_video(owner_id=bob, prompt="@ada waves")
    use(site_a, ada, bobs_video, user_id=bob, taken_down=True)
    bobs_other = site_a.add_video(owner_id=bob, prompt="@ada bows")
    use(site_a, ada, bobs_other, user_id=bob)

    manifest, cameos, videos, files = _archive(export_now(site_a))
    assert manifest["counts"]["cameos"] == 2 and [c["handle"] for c in cameos] == ["ada", "quiet"]
    by = {c["handle"]: c for c in cameos}
    assert by["ada"]["files"] == {"references": [f"cameos/{ada}/reference-{i}.jpg" for i in range(3)],
                                  "voice": f"cameos/{ada}/voice.wav"}
    assert by["quiet"]["files"]["voice"] is None and f"cameos/{quiet}/voice.wav" not in files
    assert set(files) == {*by["ada"]["files"]["references"], by["ada"]["files"]["voice"],
                          *by["quiet"]["files"]["references"]}
    for name, data in files.items():  # checksummed like every other entry
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert files[f"cameos/{ada}/reference-0.jpg"] == jpeg(0)
    # Consent settings, grant history and every use the owner sees (bob's video and its takedown too).
    assert by["ada"]["policy"] == "approved" and by["ada"]["blocked_terms"] == ["hat"]
    assert by["ada"]["preferences"] == "no hats" and by["ada"]["voice_consent"] is True
    assert [(g["user_id"], g["user_name"]) for g in by["ada"]["grants"]] == [(bob, "bob")]
    assert [(u["video_id"], u["takedown_reason"]) for u in by["ada"]["uses"]] == [
        (with_both, None), (bobs_video, "not that one"), (bobs_other, None)]
    # Biometrics and the verification never leave.
    text = json.dumps(cameos)
    assert "embedding" not in text and "verification" not in text and "challenge" not in text
    assert theirs not in text and gone not in text and theirs not in json.dumps(list(files))
    # A video names only the exporter's own cameos.
    assert videos[with_both]["mutoscope"]["cameo_ids"] == [ada]

    # Bob's export: his own cameo, never Ada's, though his video shows her.
    with site_a.sessions() as s:
        jobs = site_a.jobs()
        e = jobs.create(bob, claimed=True)
    jobs.run(e.id)
    manifest, cameos, videos, files = _archive(jobs.archive_path(e.id))
    assert [c["id"] for c in cameos] == [theirs] and ada not in json.dumps(cameos)
    assert videos[bobs_other]["mutoscope"]["cameo_ids"] == []
    # The video Ada took down is not his to take away: its link to her cameo could not travel with it, and
    # a copy brought back would answer 200 where the original answers 410.
    assert bobs_video not in videos and not any(bobs_video in name for name in zipfile.ZipFile(
        jobs.archive_path(e.id)).namelist())
    assert all(name.startswith(f"cameos/{theirs}/") for name in files)


def test_brought_back_to_its_server_a_video_keeps_the_uses_of_other_peoples_cameos(site_a):
    """Bob exports a video made with Ada's cameo and imports it again here: the copy is one more use of her
    likeness, which she sees and can take down, and a takedown made since holds for it."""
    with site_a.sessions() as s:
        bob = create_user(s, "bob").id
    ada = add_cameo(site_a, "ada", policy="everyone")
    shown = site_a.add_video(owner_id=bob, prompt="@ada bows")
    use(site_a, ada, shown, user_id=bob)
    jobs = site_a.jobs()
    e = jobs.create(bob, claimed=True)
    jobs.run(e.id)
    with site_a.sessions() as s:  # taken down after the export was made
        s.query(CameoUse).filter(CameoUse.video_id == shown).update({"taken_down_at": 1_700_000_600,
                                                                     "takedown_reason": "not this"})
        s.commit()
    imp, _ = import_archive(site_a.sessions, site_a.storage, bob, jobs.archive_path(e.id), catalog=CATALOG)
    copy = imp.id_map[shown]
    assert copy != shown
    with site_a.sessions() as s:
        [u] = s.query(CameoUse).filter(CameoUse.video_id == copy).all()
        assert (u.cameo_id, u.user_id, u.takedown_reason) == (ada, bob, "not this") and u.taken_down_at
        assert s.query(CameoAudit).filter(CameoAudit.cameo_id == ada, CameoAudit.subject_id == copy,
                                          CameoAudit.owner_id == site_a.owner_id).count() == 1
        assert audit.verify_chain(s).valid


def test_round_trip_brings_cameos_back_unusable_until_verified(site_a, site_b):
    with site_a.sessions() as s:
        bob = create_user(s, "bob").id
    ada = add_cameo(site_a, "ada", voice=True, policy="everyone")
    with site_a.sessions() as s:
        s.add(CameoGrant(cameo_id=ada, grantee_id=bob, created_at=1_700_000_200))
        s.commit()
    mine = site_a.add_video(prompt="@ada waves")
    use(site_a, ada, mine, taken_down=True)
    use(site_a, ada, site_a.add_video(owner_id=bob, prompt="@ada"), user_id=bob)
    archive = export_now(site_a)

    # Site B already has an @ada of someone else: the imported one gets another handle, and B's stays B's.
    with site_b.sessions() as s:
        other = create_user(s, "stranger").id
    theirs = add_cameo(site_b, "ada", owner_id=other)
    imp, already = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    assert not already
    [report] = imp.cameos
    assert report["archive_id"] == ada and report["id"] != ada and report["status"] == "unverified"
    assert report["handle"] == "ada_2" and report["archive_handle"] == "ada"
    assert report["grants_dropped"] == ["bob"] and report["grants_dropped_count"] == 1
    assert report["uses_dropped"] == 1
    with site_b.sessions() as s:
        c = s.query(Cameo).filter(Cameo.id == report["id"]).one()
        assert c.owner_id == site_b.owner_id and c.status == "unverified" and c.imported_at
        assert (c.policy, c.preferences, c.blocked_terms, c.voice_consent) == ("everyone", "no hats", ["hat"], True)
        assert c.face_embedding is None and c.voice_embedding is None and c.voice_sample_key is None
        assert c.verification is None and c.verified_at is None
        assert s.query(CameoGrant).filter(CameoGrant.cameo_id == c.id).count() == 0
        # Nobody may use it, not even its owner, until a live verification here.
        assert not may_use(s, c, site_b.owner_id) and not may_use(s, c, other)
        assert s.query(Cameo).filter(Cameo.id == theirs).one().handle == "ada"
        # The imported video shows the imported cameo, its takedown still in force.
        [u] = s.query(CameoUse).filter(CameoUse.cameo_id == c.id).all()
        assert u.video_id == imp.id_map[mine] and u.taken_down_at and u.takedown_reason == "not that one"
        assert s.query(CameoAudit).filter(CameoAudit.cameo_id == c.id, CameoAudit.action == "import").count() == 1
        assert audit.verify_chain(s).valid
    # The archive's frames and voice were checked, then not kept.
    assert not (site_b.storage.root / "cameos" / report["id"]).exists()
    assert site_b.leftovers() == []
    # A second import of the same archive changes nothing.
    again, already = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    assert already and again.cameos == imp.cameos
    with site_b.sessions() as s:
        assert s.query(Cameo).filter(Cameo.owner_id == site_b.owner_id).count() == 1

    # Exported again from B, it is what B knows: unverified, no frames.
    _, cameos, videos, files = _archive(export_now(site_b))
    assert [(c["id"], c["status"], c["files"]) for c in cameos] == [
        (report["id"], "unverified", {"references": [], "voice": None})]
    assert videos[imp.id_map[mine]]["mutoscope"]["cameo_ids"] == [report["id"]] and files == {}


def _refused(site, archive, code, limits=Limits(), words=()):
    with site.sessions() as s:
        before = (s.query(Cameo).count(), s.query(CameoUse).count(), s.query(CameoAudit).count(),
                  s.query(Import).count())
    videos, stored = site.video_ids(), _stored(site)
    with pytest.raises(InvalidRequest) as e:
        import_archive(site.sessions, site.storage, site.owner_id, archive, limits, catalog=CATALOG)
    assert e.value.code == code and e.value.param == "file", e.value.message
    for w in words:
        assert w in e.value.message, e.value.message
    with site.sessions() as s:
        assert (s.query(Cameo).count(), s.query(CameoUse).count(), s.query(CameoAudit).count(),
                s.query(Import).count()) == before
    assert site.video_ids() == videos and site.leftovers() == [] and _stored(site) == stored
    return e.value


def _stored(site) -> set[str]:
    return {str(p) for p in site.storage.root.rglob("*") if ".tmp" not in p.parts}


def _one(tmp_path, rec, files, video_cameos=None):
    v = record("video_with_cameo", cameo_ids=video_cameos) if video_cameos is not None else None
    return build_archive(tmp_path / "c.zip", *([v] if v else []), cameos=[(rec, files)])


def test_a_good_archive_cameo_imports(site_b, tmp_path):
    rec, files = cameo_record("cameo_a1", "ada", references=3, voice=True)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id,
                            _one(tmp_path, rec, files, ["cameo_a1"]), catalog=CATALOG)
    [report] = imp.cameos
    with site_b.sessions() as s:
        [u] = s.query(CameoUse).all()
    assert u.cameo_id == report["id"] and u.video_id == imp.id_map["video_with_cameo"]


@pytest.mark.parametrize("change,code,words", [
    ({"verification": {"passed": True, "checks": []}}, "invalid_cameo", ["verification", "live"]),
    ({"face_embedding": [0.1] * 128}, "invalid_cameo", ["face_embedding"]),
    ({"verified": True}, "invalid_cameo", ["verified"]),
    ({"status": "trusted"}, "invalid_cameo", ["status"]),
    ({"handle": "A B"}, "invalid_cameo", ["handle"]),
    ({"policy": "anyone"}, "invalid_cameo", ["policy"]),
    ({"id": "../x"}, "invalid_cameo", ["id"]),
])
def test_a_cameo_line_outside_the_schema_is_refused(site_b, tmp_path, change, code, words):
    rec, files = cameo_record("cameo_a1", "ada", references=1)
    _refused(site_b, _one(tmp_path, {**rec, **change}, files), code, words=["cameos.jsonl line 1", *words])


def test_a_cameos_files_are_bounded_and_decoded(site_b, tmp_path):
    rec, files = cameo_record("cameo_a1", "ada", references=2, voice=True)
    ref0, voice = "cameos/cameo_a1/reference-0.jpg", "cameos/cameo_a1/voice.wav"
    missing = {k: v for k, v in files.items() if k != ref0}
    _refused(site_b, _one(tmp_path, rec, missing), "archive_incomplete", words=[ref0])
    _refused(site_b, _one(tmp_path, rec, {**files, ref0: png()}), "invalid_image", words=[ref0, "JPEG"])
    _refused(site_b, _one(tmp_path, rec, {**files, ref0: b"\xff\xd8 not really"}), "invalid_image")
    _refused(site_b, _one(tmp_path, rec, {**files, ref0: jpeg(size=(300, 300))}), "invalid_image",
             limits=Limits(max_cameo_pixels=200 * 200), words=["too large"])
    _refused(site_b, _one(tmp_path, rec, files), "invalid_cameo", limits=Limits(max_cameo_file_bytes=1000),
             words=["at most 1000 bytes"])
    _refused(site_b, _one(tmp_path, rec, {**files, voice: jpeg()}), "invalid_audio", words=[voice])
    # Only a WAV reaches the decoder: a playlist (or any other format it would follow) is refused unread.
    playlist = b"#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/secret.wav\n"
    _refused(site_b, _one(tmp_path, rec, {**files, voice: playlist}), "invalid_audio", words=["not a WAV"])
    _refused(site_b, _one(tmp_path, rec, {**files, voice: wav(seconds=3)}), "invalid_audio",
             limits=Limits(max_voice_seconds=2), words=["2 s"])
    # Paths other than its own, a voice without consent, frames of a cameo never verified.
    moved = {**rec, "files": {**rec["files"], "references": ["videos/x/input.png"]}}
    _refused(site_b, _one(tmp_path, moved, files), "invalid_cameo", words=["videos/x/input.png"])
    _refused(site_b, _one(tmp_path, {**rec, "voice_consent": False}, files), "invalid_cameo", words=["voice consent"])
    _refused(site_b, _one(tmp_path, {**rec, "status": "failed"}, files), "invalid_cameo", words=["verified"])


def test_too_many_or_repeated_cameos_are_refused(site_b, tmp_path):
    many = [cameo_record(f"cameo_{i}", f"person{i}") for i in range(4)]
    err = _refused(site_b, build_archive(tmp_path / "m.zip", cameos=many), "too_many_cameos",
                   limits=Limits(max_cameos=3))
    assert "at most 3" in err.message
    same = [cameo_record("cameo_1", "ada"), cameo_record("cameo_1", "bea")]
    _refused(site_b, build_archive(tmp_path / "s.zip", cameos=same), "invalid_cameo", words=["twice"])
    handles = [cameo_record("cameo_1", "ada"), cameo_record("cameo_2", "ada")]
    _refused(site_b, build_archive(tmp_path / "h.zip", cameos=handles), "invalid_cameo", words=["handle"])
    # All of cameos.jsonl has a budget of its own, however its bytes are spread over lines.
    _refused(site_b, build_archive(tmp_path / "b.zip", cameos=many[:2]), "invalid_cameo",
             limits=Limits(max_cameos_bytes=100), words=["at most 100"])


def test_a_video_may_name_only_the_archives_or_the_importers_cameos(site_a, site_b, tmp_path):
    rec, files = cameo_record("cameo_a1", "ada")
    with site_b.sessions() as s:
        other = create_user(s, "stranger").id
    theirs = add_cameo(site_b, "someone", owner_id=other)
    for named in (["cameo_nowhere"], [theirs], ["cameo_a1", "cameo_a1"]):
        _refused(site_b, _one(tmp_path, rec, files, named), "invalid_reference", words=["cameo_ids"])
    mine = add_cameo(site_b, "me")
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id,
                            _one(tmp_path, rec, files, [mine, "cameo_a1"]), catalog=CATALOG)
    with site_b.sessions() as s:
        uses = {u.cameo_id for u in s.query(CameoUse).all()}
    assert uses == {imp.cameos[0]["id"]}  # an archive adds no use to a cameo that was already here


def test_an_import_that_loses_the_audit_chains_tail_tries_again(site_b, tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from mutoscope.exports import importer

    real, calls = importer.restore, []

    def raced(s, owner_id, incoming):
        calls.append(owner_id)
        if len(calls) == 1:  # what PostgreSQL says when another audited change took the tail meanwhile
            raise IntegrityError("INSERT INTO cameo_audit", {}, Exception("duplicate key value: prev_hash"))
        return real(s, owner_id, incoming)

    monkeypatch.setattr(importer, "restore", raced)
    rec, files = cameo_record("cameo_a1", "ada", references=1)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, _one(tmp_path, rec, files, ["cameo_a1"]),
                            catalog=CATALOG)
    assert len(calls) == 2 and imp.video_count == 1 and len(imp.cameos) == 1
    with site_b.sessions() as s:
        assert s.query(Cameo).count() == 1 and s.query(CameoUse).count() == 1 and audit.verify_chain(s).valid


def test_an_account_has_only_so_many_cameos_waiting(site_b, tmp_path):
    limits = Limits(max_cameos=3)
    first = build_archive(tmp_path / "1.zip", cameos=[cameo_record(f"cameo_{i}", f"person{i}") for i in range(2)])
    import_archive(site_b.sessions, site_b.storage, site_b.owner_id, first, limits, catalog=CATALOG)
    second = build_archive(tmp_path / "2.zip", cameos=[cameo_record(f"cameo_{i}", f"other{i}") for i in range(2)])
    err = _refused(site_b, second, "too_many_cameos", limits=limits, words=["2 waiting"])
    assert "a day later" in err.message
    # Deleting them does not free the bound within the day: importing and deleting in a loop would otherwise
    # hold handles without end (a deleted cameo keeps its handle).
    with site_b.sessions() as s:
        s.query(Cameo).filter(Cameo.owner_id == site_b.owner_id).update({"deleted_at": 1_700_000_100,
                                                                          "status": "deleted"})
        s.commit()
    _refused(site_b, second, "too_many_cameos", limits=limits, words=["2 waiting"])


def test_a_taken_handle_gets_the_first_free_number_and_never_a_long_search(site_b, tmp_path):
    with site_b.sessions() as s:
        other = create_user(s, "stranger").id
    for h in ["ada", *(f"ada_{n}" for n in range(2, 21))]:
        add_cameo(site_b, h, owner_id=other)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id,
                            build_archive(tmp_path / "a.zip", cameos=[cameo_record("cameo_1", "ada")]),
                            catalog=CATALOG)
    handle = imp.cameos[0]["handle"]
    assert handle.startswith("ada_") and len(handle) == len("ada_") + 8
    long = "a" * 28 + ".b"  # 30 characters, the longest a handle may be
    add_cameo(site_b, long, owner_id=other)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id,
                            build_archive(tmp_path / "b.zip", cameos=[cameo_record("cameo_2", long)]),
                            catalog=CATALOG)
    from mutoscope.likeness.portable import valid_handle

    assert imp.cameos[0]["handle"] == "a" * 28 + "_2" and valid_handle(imp.cameos[0]["handle"])
