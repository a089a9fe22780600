"""The likeness guard's face matching on its own, over a real migrated SQLite database and real dlib:
the output check (`likeness_blocked`) a tiny noise-making test model can never trigger through the API."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from mutoscope.db.migrate import upgrade
from mutoscope.db.models import Cameo, CameoAudit, User
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.errors import InvalidRequest
from mutoscope.likeness import audit, guard
from tests.likeness.conftest import need


@pytest.fixture
def world(tmp_path):
    need("dlib")
    import skimage.data

    from mutoscope.likeness.face import shared_analyzer

    astronaut = skimage.data.astronaut()
    emb = shared_analyzer().scan(astronaut)[0].embedding
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as s:
        owner, other = User(name="eileen"), User(name="mallory")
        s.add_all([owner, other])
        s.flush()
        c = Cameo(owner_id=owner.id, handle="eileen", challenge_id="challenge_x", status="active", policy="only_me",
                  face_embedding=emb.astype(float).tolist(), keep_upload=False)
        s.add(c)
        s.commit()
        ids = owner.id, other.id, c.id
    return sessions, astronaut, ids


def _png(a: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_output_guard_blocks_a_cameo_the_owner_may_not_use(world):
    sessions, astronaut, (owner, other, cameo_id) = world
    frames = np.stack([astronaut] * 6)
    noise = np.random.default_rng(0).integers(0, 255, (6, 256, 256, 3), dtype=np.uint8)
    with sessions() as s:
        assert guard.check_frames(s, owner, "video_a", frames) is None  # her own face
        assert guard.check_frames(s, other, "video_b", noise) is None  # nobody in it
        denial = guard.check_frames(s, other, "video_c", frames)
        assert denial is not None and denial.code == "likeness_blocked"
        assert audit.verify_chain(s).valid
        last = s.scalars(select(CameoAudit).order_by(CameoAudit.seq.desc())).first()
        assert (last.action, last.subject_id, last.detail["at"]) == ("deny", "video_c", "publish")


def test_input_guard_matches_and_binds(world):
    sessions, astronaut, (owner, other, cameo_id) = world
    with sessions() as s:
        assert guard.check_image(s, owner, _png(astronaut), "input_reference", "a portrait", []) == [cameo_id]
        with pytest.raises(InvalidRequest) as e:
            guard.check_image(s, other, _png(astronaut), "input_reference", "a portrait", [])
        assert e.value.code == "likeness_not_permitted" and e.value.param == "input_reference"
        s.scalar(select(Cameo).where(Cameo.id == cameo_id)).blocked_terms = ["smoking"]
        s.commit()
        with pytest.raises(InvalidRequest) as e:
            guard.check_image(s, owner, _png(astronaut), "input_reference", "smoking a pipe", [])
        assert e.value.code == "cameo_preferences_violated"
