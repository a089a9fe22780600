"""Consent rules over a real (SQLite, migrated) database, without the analyzers: revoke while queued,
the job-start/publish re-check, purge after the grace period, the audit chain."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mutoscope.db.migrate import upgrade
from mutoscope.db.models import Cameo, CameoAudit, User, Video
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.errors import PermissionDenied
from mutoscope.likeness import audit, consent
from mutoscope.likeness.records import CameoRecords, LikenessOptions
from mutoscope.storage import LocalStorage
from mutoscope.videos import transitions


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    refunded: list[str] = []

    def fail_video(s, vid, code, message):
        refunded.append(vid)
        return transitions.fail(s, vid, code, message, only_queued=True)

    svc = CameoRecords(sessions, LocalStorage(tmp_path / "assets"), LikenessOptions(purge_grace_days=30),
                       fail_video=fail_video)
    with sessions() as s:
        owner, other = User(name="owner"), User(name="mallory")
        s.add_all([owner, other])
        s.flush()
        c = Cameo(owner_id=owner.id, handle="eileen", challenge_id="challenge_x", status="active",
                  policy="approved", face_embedding=[0.1] * 128, voice_embedding=[0.2] * 256, keep_upload=False)
        s.add(c)
        audit.append(s, "create", actor_id=owner.id, owner_id=owner.id, cameo_id=c.id)
        s.commit()
        ids = owner.id, other.id, c.id
    yield svc, sessions, refunded, ids
    svc.close()


def _queue(sessions, user_id, prompt):
    with sessions() as s:
        used = consent.check_create(s, user_id, prompt, None)
        v = Video(owner_id=user_id, model="m", prompt=prompt, size="64x64", seconds="1", params={})
        s.add(v)
        s.commit()
        consent.record_use(s, user_id, v.id, used)
        return v.id


def test_revoke_while_queued_fails_and_refunds(world):
    svc, sessions, refunded, (owner, other, cameo_id) = world
    with sessions() as s, pytest.raises(PermissionDenied):
        consent.check_create(s, other, "@eileen sings", None)
    svc.grant(owner, cameo_id, "mallory")
    queued = _queue(sessions, other, "@eileen sings")
    running = _queue(sessions, other, "@eileen dances")
    with sessions() as s:
        s.get(Video, 2).status = "in_progress"
        s.commit()
        assert consent.recheck_video(s, running) is None
    _, failed = svc.revoke(owner, cameo_id, "mallory")
    assert failed == [queued] and refunded == [queued]
    with sessions() as s:
        v = s.scalar(select(Video).where(Video.id == queued))
        assert (v.status, v.error_code) == ("failed", "cameo_permission_denied")
        # the running one is caught by the re-check jobs/ does before publishing
        denial = consent.recheck_video(s, running)
        assert denial is not None and denial.code == "cameo_permission_denied"


def test_owner_always_may_and_everyone_policy(world):
    svc, sessions, _, (owner, other, cameo_id) = world
    with sessions() as s:
        assert consent.check_create(s, owner, "@eileen", None) == [cameo_id]
    svc.update(owner, cameo_id, policy="everyone")
    with sessions() as s:
        assert consent.check_create(s, other, "hello", [{"id": cameo_id}]) == [cameo_id]


def test_delete_then_purge_after_grace(world):
    svc, sessions, _, (owner, other, cameo_id) = world
    c = svc.delete(owner, cameo_id)
    with sessions() as s, pytest.raises(PermissionDenied):
        consent.check_create(s, owner, "@eileen", None)
    assert svc.purge_due(at=c.purge_after - 1) == []
    assert svc.purge_due(at=c.purge_after) == [cameo_id]
    with sessions() as s:
        row = s.scalar(select(Cameo).where(Cameo.id == cameo_id))
        assert row.face_embedding is None and row.voice_embedding is None and row.purged_at
        actions = [r.action for r in s.scalars(select(CameoAudit).order_by(CameoAudit.seq))]
        assert actions == ["create", "delete", "deny", "purge"]
        assert audit.verify_chain(s).valid


def test_audit_chain_detects_edit_and_removal(world):
    svc, sessions, _, (owner, other, cameo_id) = world
    svc.update(owner, cameo_id, policy="only_me")
    svc.grant(owner, cameo_id, "mallory")
    with sessions() as s:
        assert audit.verify_chain(s).valid and audit.verify_chain(s).checked == 3
        row = s.get(CameoAudit, 2)
        row.subject_id = "someone-else"
        s.commit()
        check = audit.verify_chain(s)
        assert not check.valid and check.first_bad_seq == 2 and check.reason == "this row was edited"
        s.delete(s.get(CameoAudit, 2))
        s.commit()
        check = audit.verify_chain(s)
        assert not check.valid and check.first_bad_seq == 3


def test_reverifying_an_imported_cameo_takes_voice_consent_from_the_recording(world, whisper_dir, monkeypatch):
    """An archive's `voice_consent: true` is a wish written into a file anyone could write: the live recording
    under the cameo's handle answers for itself, and its "no" holds."""
    svc, sessions, _, (owner, _, _) = world
    monkeypatch.setenv("MUTOSCOPE_LIKENESS_WHISPER_MODEL", str(whisper_dir))  # create checks the analyzers first
    with sessions() as s:
        imported = Cameo(owner_id=owner, handle="migrated", challenge_id="", status="unverified", policy="everyone",
                         voice_consent=True, imported_at=1_700_000_000)
        s.add(imported)
        s.commit()
        cameo_id = imported.id
    challenge = svc.new_challenge(owner)
    made = svc.create(owner, "migrated", challenge.id, b"not a recording", voice_consent=False)
    assert made.id == cameo_id and made.voice_consent is False
