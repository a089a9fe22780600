"""The archive format, the resumable writer and verified import, in process (see conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest

from mutoscope.videos.objects import to_video_object
from mutoscope.db.models import Export, Import
from mutoscope.errors import InvalidRequest, PayloadTooLarge
from mutoscope.exports.importer import Limits, import_archive
from mutoscope.exports.writer import ExportState
from mutoscope.storage.keys import input_key, published_key, variant_key
from tests.exports.conftest import CATALOG, build_archive, export_now, png, record


def _bytes(site, key):
    with site.storage.open(key) as f:
        return f.read()


def test_round_trip_keeps_every_field_and_byte(site_a, site_b):
    first = site_a.add_video(prompt="a lighthouse", with_input=True)
    remix = site_a.add_video(prompt="the lighthouse at dawn", remix_of=first)
    failed = site_a.add_video(prompt="never made", status="failed")
    archive = export_now(site_a)

    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "mutoscope-export" and manifest["format_version"] == 1
        assert manifest["counts"] == {"videos": 3, "cameos": 0, "files": len(names) - 1}
        for name, meta in manifest["files"].items():  # every file but the manifest has its checksum
            assert hashlib.sha256(zf.read(name)).hexdigest() == meta["sha256"]
        assert names - set(manifest["files"]) == {"manifest.json"}
        assert zf.getinfo(f"videos/{first}/video.mp4").compress_type == zipfile.ZIP_STORED
        lines = [json.loads(x) for x in zf.read("videos.jsonl").decode().splitlines()]
        assert "README.txt" in names and zf.read("cameos.jsonl") == b""
    by_id = {r["video"]["id"]: r for r in lines}
    assert by_id[remix]["mutoscope"]["lineage"]["remixed_from_video_id"] == first
    assert by_id[first]["mutoscope"]["resolved"]["revision"] == "abc123"
    assert by_id[first]["mutoscope"]["input_reference"] == f"videos/{first}/input.png"
    assert by_id[failed]["video"]["error"] == {"code": "cancelled", "message": "The job was cancelled."}

    imp, already = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    assert not already and imp.video_count == 3 and imp.id_map == {first: first, remix: remix, failed: failed}
    for vid in (first, remix, failed):
        a, b = site_a.video(vid), site_b.video(vid)
        assert to_video_object(b).model_dump() == to_video_object(a).model_dump()
        for col in ("kind", "params", "resolved", "started_at", "error_code", "error_message"):
            assert getattr(b, col) == getattr(a, col), col
        assert (b.input_key is None) == (a.input_key is None)  # the import's own folder, same bytes below
    for variant in ("video", "thumbnail", "spritesheet"):
        assert _bytes(site_b, published_key(site_b.video(first), variant)) == _bytes(site_a, variant_key(first, variant))
    assert _bytes(site_b, site_b.video(first).input_key) == _bytes(site_a, input_key(first))
    assert site_b.leftovers() == []


def test_a_storyboard_travels_with_its_shots_and_their_images(site_a, site_b):
    board = site_a.add_storyboard()
    archive = export_now(site_a)
    with zipfile.ZipFile(archive) as zf:
        [line] = [json.loads(x) for x in zf.read("videos.jsonl").decode().splitlines()]
        shots = line["mutoscope"]["params"]["storyboard"]["shots"]
        assert [s.get("image") for s in shots] == [None, f"videos/{board}/shot-1.png", None]
        assert not any("image_key" in s or "characters" in s for s in shots)  # storage keys stay home
        assert zf.read(f"videos/{board}/shot-1.png") == png(1)
        assert [s["prompt"] for s in line["video"]["shots"]] == ["a boat", "a lighthouse", "the beam sweeps"]

    import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    a, b = site_a.video(board), site_b.video(board)
    assert to_video_object(b).model_dump() == to_video_object(a).model_dump()  # shots, seconds, camera moves
    got = b.params["storyboard"]["shots"]
    assert [s["image_key"] is not None for s in got] == [False, True, False]
    assert _bytes(site_b, got[1]["image_key"]) == png(1)
    assert got[1]["image_key"].startswith(f"videos/{board}/a{b.assets_attempt}/")  # the import's own folder
    assert all(s["characters"] == [] for s in got)
    for k in ("fps", "from_shot"):
        assert b.params["storyboard"][k] == a.params["storyboard"][k]


def _storyboard_record(vid: str, **changes) -> tuple[dict, dict[str, bytes]]:
    shots = [{"prompt": "a", "seconds": "4", "frames": 96, "seed": 1, "transition": None},
             {"prompt": "b", "seconds": "4", "frames": 96, "seed": 2, "transition": "cut",
              "image": f"videos/{vid}/shot-1.png"}]
    board = {"fps": 24.0, "from_shot": 0, "shots": shots}
    for path, value in changes.items():  # "shots.1.frames" = 95
        *parents, last = path.split(".")
        target = board
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[int(last) if isinstance(target, list) else last] = value
    rec, files = record(vid, seconds="8", params={"storyboard": board})
    files[f"videos/{vid}/shot-1.png"] = png(2)
    return rec, files


@pytest.mark.parametrize("change, code", [
    ({"shots.1.frames": 95}, "invalid_storyboard"),          # off the frame boundaries the shots claim
    ({"shots.1.seconds": "5"}, "invalid_seconds"),           # a shot length the model does not make
    ({"fps": 25.0}, "invalid_storyboard"),                   # not the model's frame rate
    ({"shots.0.transition": "cut"}, "invalid_storyboard"),
    ({"shots.1.transition": "continuous"}, "invalid_storyboard"),  # a continuous shot with its own image
    ({"shots.1.camera": "barrel_roll"}, "invalid_camera"),
    ({"from_shot": 2}, "invalid_storyboard"),
    ({"shots.1.image": "videos/video_someone_else/shot-1.png"}, None),  # only its own folder
    ({"shots.1.image": "../../etc/passwd"}, None),
])
def test_a_storyboard_record_is_held_to_the_storyboard_rules(site_b, tmp_path, change, code):
    vid = "video_board1"
    rec, files = _storyboard_record(vid, **change)
    archive = build_archive(tmp_path / "in.zip", (rec, files))
    err = _refused(site_b, archive, code=code)
    assert "storyboard" in err.message or "shot" in err.message, err.message


def test_a_storyboard_whose_length_is_not_its_shots_or_whose_image_is_not_a_png_is_refused(site_b, tmp_path):
    vid = "video_board2"
    rec, files = _storyboard_record(vid)
    rec["video"]["seconds"] = "12"
    _refused(site_b, build_archive(tmp_path / "a.zip", (rec, files)), code="invalid_seconds")
    rec, files = _storyboard_record(vid)
    files[f"videos/{vid}/shot-1.png"] = b"\x89PNG\r\n\x1a\n" + os.urandom(200)
    _refused(site_b, build_archive(tmp_path / "b.zip", (rec, files)), code="invalid_image")
    rec, files = _storyboard_record(vid)
    rec["mutoscope"]["kind"] = "extend"
    _refused(site_b, build_archive(tmp_path / "c.zip", (rec, files)), code="invalid_storyboard")
    assert site_b.video_ids() == [] and site_b.leftovers() == []
    rec, files = _storyboard_record(vid)  # and the same record, unchanged, is welcome
    import_archive(site_b.sessions, site_b.storage, site_b.owner_id, build_archive(tmp_path / "d.zip", (rec, files)),
                   catalog=CATALOG)
    assert site_b.video(vid).seconds == "8"


def test_second_import_changes_nothing(site_a, site_b):
    site_a.add_video()
    archive = export_now(site_a)
    one, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    before = site_b.video_ids()
    two, already = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    assert already and two.id == one.id and site_b.video_ids() == before


def test_taken_ids_are_remapped_with_lineage(site_a, site_b):
    first = site_a.add_video(prompt="source")
    remix = site_a.add_video(prompt="remix", remix_of=first)
    site_b.add_video(video_id=first, prompt="someone else's video with the same id")
    archive = export_now(site_a)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    new_first = imp.id_map[first]
    assert new_first != first and imp.id_map[remix] == remix
    assert site_b.video(remix).remixed_from_video_id == new_first
    assert site_b.video(new_first).prompt == "source"
    assert site_b.video(first).prompt.startswith("someone else")
    assert _bytes(site_b, published_key(site_b.video(new_first), "video")) == _bytes(site_a, variant_key(first, "video"))


def test_export_resumes_from_its_checkpoint_after_a_crash(site_a, site_b):
    ids = [site_a.add_video(prompt=f"v{i}") for i in range(4)]
    jobs = site_a.jobs(checkpoint_every=0)  # a checkpoint after every video
    e = jobs.create(site_a.owner_id, claimed=True)
    calls = {"n": 0}
    real_item = jobs._item

    def crashing_item(owner_id, vid):  # the "power cut": the process dies while writing the third video
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")
        return real_item(owner_id, vid)

    jobs._item = crashing_item
    with pytest.raises(SystemExit):
        jobs.run(e.id)
    with site_a.sessions() as s:
        row = s.query(Export).filter(Export.id == e.id).one()
        state = ExportState.from_json(row.state)
        assert row.status == "in_progress" and state.done == 2 and state.offset > 0
    jobs.part_path(e.id).open("ab").write(b"half-written garbage after the checkpoint")

    again = site_a.jobs(checkpoint_every=0)
    again.recover()
    assert again.claim(e.id)
    seen = []
    again.run(e.id, on_progress=lambda done, total: seen.append(done))
    assert seen == [3, 4], "the first two videos are not written again"
    archive = again.archive_path(e.id)
    imp, _ = import_archive(site_b.sessions, site_b.storage, site_b.owner_id, archive, catalog=CATALOG)
    assert sorted(imp.id_map) == sorted(ids)
    for vid in ids:
        assert _bytes(site_b, published_key(site_b.video(vid), "video")) == _bytes(site_a, variant_key(vid, "video"))


def test_export_is_scoped_to_its_owner(site_a):
    from mutoscope.accounts.service import create_user

    with site_a.sessions() as s:
        other = create_user(s, "mallory").id
    mine = site_a.add_video()
    site_a.add_video(owner_id=other, prompt="not yours")
    with zipfile.ZipFile(export_now(site_a)) as zf:
        ids = [json.loads(x)["video"]["id"] for x in zf.read("videos.jsonl").decode().splitlines()]
    assert ids == [mine]


def _rebuild(src, dest, *, drop=(), replace=None, add=(), manifest_edit=None, compression=zipfile.ZIP_STORED):
    """Copy an archive entry by entry, with changes; `replace` keeps the manifest's (now wrong) checksum."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", compression) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info.filename))
            if info.filename == "manifest.json" and manifest_edit:
                m = json.loads(data)
                manifest_edit(m)
                data = json.dumps(m).encode()
            zout.writestr(info.filename, data)
        for name, data in add:
            zout.writestr(name, data)
    return dest


@pytest.fixture
def good(site_a, tmp_path):
    site_a.vid = site_a.add_video()
    return export_now(site_a)


def _refused(site, archive, exc=InvalidRequest, code=None, limits=Limits()):
    before = site.video_ids()
    with pytest.raises(exc) as e:
        import_archive(site.sessions, site.storage, site.owner_id, archive, limits, catalog=CATALOG)
    assert site.video_ids() == before
    with site.sessions() as s:
        assert s.query(Import).count() == 0
    assert site.leftovers() == [], "staging must be removed"
    assert not (site.storage.root / "videos").exists() or not any((site.storage.root / "videos").iterdir())
    if code:
        assert e.value.code == code, e.value.message
    assert e.value.param == "file" and e.value.message
    return e.value


def test_wrong_checksum(site_a, site_b, good, tmp_path):
    bad = _rebuild(good, tmp_path / "bad.zip", replace={f"videos/{site_a.vid}/video.mp4": b"x" * 3000})
    err = _refused(site_b, bad, code="checksum_mismatch")
    assert f"videos/{site_a.vid}/video.mp4" in err.message


def test_truncated(site_b, good, tmp_path):
    bad = tmp_path / "cut.zip"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(site_b, bad, code="archive_truncated")


def test_missing_file(site_a, site_b, good, tmp_path):
    bad = _rebuild(good, tmp_path / "bad.zip", drop={f"videos/{site_a.vid}/thumbnail.webp"})
    _refused(site_b, bad, code="archive_incomplete")


def test_unknown_format_version(site_b, good, tmp_path):
    bad = _rebuild(good, tmp_path / "v9.zip", manifest_edit=lambda m: m.update(format_version=9))
    err = _refused(site_b, bad, code="unsupported_format_version")
    assert "9" in err.message


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "videos/../../evil", "C:/evil", "a\\..\\evil"])
def test_zip_slip(site_b, good, tmp_path, name):
    bad = _rebuild(good, tmp_path / "slip.zip", add=[(name, b"pwned")])
    _refused(site_b, bad, code="unsafe_path")
    assert not (tmp_path / "evil.txt").exists()


def test_zip_bomb(site_b, good, tmp_path):
    bomb = b"\0" * (20 * 1024 * 1024)
    bad = _rebuild(good, tmp_path / "bomb.zip", add=[("provenance/bomb.bin", bomb)],
                   compression=zipfile.ZIP_DEFLATED)
    _refused(site_b, bad, code="suspicious_compression")


def test_over_size_limit(site_b, good):
    _refused(site_b, good, PayloadTooLarge, code="archive_too_large", limits=Limits(max_archive_bytes=1000))


def test_not_a_zip(site_b, tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"this is not a zip at all" * 100)
    _refused(site_b, bad, code="archive_truncated")


def test_a_cameo_line_that_is_not_a_cameo_is_refused(site_b, good, tmp_path):
    line = b'{"id": "cameo_1"}\n'

    def edit(m):
        m["files"]["cameos.jsonl"] = {"sha256": hashlib.sha256(line).hexdigest(), "bytes": len(line)}

    bad = _rebuild(good, tmp_path / "cameo.zip", replace={"cameos.jsonl": line}, manifest_edit=edit)
    err = _refused(site_b, bad, code="invalid_cameo")
    assert "cameos.jsonl line 1" in err.message


def test_file_missing_midway_rolls_back_moved_files(site_a, site_b, good, tmp_path):
    """A record naming a file the archive lacks fails after checks of earlier records: still nothing written."""
    with zipfile.ZipFile(good) as zf:
        rec = json.loads(zf.read("videos.jsonl"))
    second = dict(rec, video=dict(rec["video"], id="video_second"))
    jsonl = (json.dumps(rec) + "\n" + json.dumps(second) + "\n").encode()

    def edit(m):
        m["files"]["videos.jsonl"] = {"sha256": hashlib.sha256(jsonl).hexdigest(), "bytes": len(jsonl)}

    bad = _rebuild(good, tmp_path / "bad.zip", replace={"videos.jsonl": jsonl}, manifest_edit=edit)
    _refused(site_b, bad, code="invalid_archive")


def test_migrated_links_never_point_into_another_account(site_b):
    """`place` (what migration uses) drops a lineage link it cannot resolve to the batch or the owner's
    own videos, instead of keeping an id that is, or may become, another account's video."""
    from mutoscope.accounts.service import create_user
    from mutoscope.exports.format import Lineage, Reproduce, VideoFields, VideoRecord
    from mutoscope.exports.importer import Staged, place

    with site_b.sessions() as s:
        other = create_user(s, "someone-else").id
    theirs = site_b.add_video(owner_id=other, prompt="not yours")
    mine = site_b.add_video(prompt="mine")
    records = [VideoRecord(video=VideoFields(id=f"video_src{i}", model="sora-2", status="completed",
                                             created_at=1_700_000_000, size="720x1280", seconds="4"),
                           mutoscope=Reproduce(kind="remix", lineage=Lineage(remixed_from_video_id=ref)))
               for i, ref in enumerate((theirs, mine, "video_gone"))]
    id_map = place(site_b.sessions, site_b.storage, site_b.owner_id, [Staged(r, source_id=r.video.id) for r in records],
                   "https://example.test/v1")
    links = [site_b.video(id_map[r.video.id]).remixed_from_video_id for r in records]
    assert links == [None, mine, None]


def test_an_edits_strength_travels_and_one_out_of_range_is_refused(site_b, tmp_path):
    rec, files = record("video_edit2", kind="edit", params={"edit_strength": 1.5})
    err = _refused(site_b, build_archive(tmp_path / "b.zip", (rec, files)))
    assert "edit_strength" in err.message, err.message
    rec, files = record("video_edit1", kind="edit", params={"edit_strength": 0.4})
    import_archive(site_b.sessions, site_b.storage, site_b.owner_id, build_archive(tmp_path / "a.zip", (rec, files)),
                   catalog=CATALOG)
    assert site_b.video("video_edit1").params["edit_strength"] == 0.4
