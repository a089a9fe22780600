"""Characters (OpenAI's `POST /v1/videos/characters`): a named clip that videos can name in `characters`.

A clip is scanned on a few evenly spaced frames with the likeness guard's detector and matcher:
- no confident face: a faceless character (a mascot, an object, a place) that its owner may use;
- faces that all match the caller's **own** active cameo: the character is bound to that cameo, and
  every use of it is a use of the cameo (consent at create, at job start and before publishing, the
  owner's list of uses, takedowns; deleting the cameo disables the character);
- any other face (someone else's cameo, even one shared with the caller, or a person who never
  enrolled): refused with 400 `likeness_not_permitted`, param `video`.

One frame (the middle sampled one) is kept as the character's reference: a video that names the
character and gives no `input_reference` starts from it (image-to-video, the only way the model
families we run take an identity: docs/likeness.md). A bound character's frame is stored under its
cameo's prefix, so the cameo's purge erases it with the rest of the biometrics. The clip is not kept.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Cameo, Character, new_id
from mutoscope.errors import InvalidRequest, NotFound
from mutoscope.likeness import audit, guard
from mutoscope.media import MediaError, probe, read_frames_at
from mutoscope.storage import Storage
from mutoscope.storage.keys import reference_key

PREFIX = "char_"
MAX_NAME = 200


def is_character_id(ref: str) -> bool:
    return ref.startswith(PREFIX)




def sample_frames(data: bytes) -> list[np.ndarray]:
    """A few evenly spaced RGB frames of an uploaded clip; a 400 naming `video` when it is not one."""
    try:
        info = probe(io.BytesIO(data))
        if info.frame_count < 1:
            raise MediaError("it has no frames")
        # One pass that stops at the last sampled frame; probe's count can overshoot what decodes.
        frames = read_frames_at(io.BytesIO(data), guard.sample_indices(info.frame_count))
        if not frames:
            raise MediaError("no frame could be decoded")
    except MediaError as e:
        raise InvalidRequest(f"video is not a decodable video: {e}", param="video", code="invalid_video") from None
    return frames


class CharacterService:
    def __init__(self, sessions: sessionmaker[Session], storage: Storage):
        self.sessions, self.storage = sessions, storage

    def create(self, user_id: str, name: str, video: bytes) -> Character:
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidRequest(f"name is required (at most {MAX_NAME} characters).", param="name")
        frames = sample_frames(video)
        with self.sessions() as s:
            cameo_id = self._bound_cameo(s, user_id, frames)
        char_id = new_id(PREFIX)
        key = reference_key(char_id, cameo_id)
        self.storage.put_bytes(key, _png(frames[len(frames) // 2]))
        for attempt in range(5):  # another audit writer may take the chain's tail (prev_hash is unique): retry
            with self.sessions() as s:
                row = Character(id=char_id, owner_id=user_id, name=name, cameo_id=cameo_id, reference_key=key)
                s.add(row)
                if cameo_id is not None:
                    audit.append(s, "character", actor_id=user_id, owner_id=user_id, cameo_id=cameo_id,
                                 subject_id=char_id, detail={"upload_sha256": hashlib.sha256(video).hexdigest()})
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    if attempt < 4:
                        continue
                    self.storage.delete_prefix(key)
                    raise
                s.refresh(row)
                s.expunge(row)
                return row
        raise AssertionError("unreachable")

    @staticmethod
    def _bound_cameo(s: Session, user_id: str, frames: list[np.ndarray]) -> str | None:
        """None for a faceless clip; the caller's own cameo that every face matches; else a 400."""
        if not guard.enabled():
            return None  # the operator turned the guard off: nothing is scanned (docs/likeness.md, Likeness guard)
        found: set[str] = set()
        for m in guard.faces_in(s, user_id, frames):
            if m.cameo_id is None and m.score < guard.MIN_SCORE:
                continue  # a weak detection that matches nobody: most likely not a face
            c = s.scalar(select(Cameo).where(Cameo.id == m.cameo_id)) if m.cameo_id else None
            if c is None or c.owner_id != user_id:
                if c is not None:
                    audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                                 detail={"at": "character", "reason": "input_face", "param": "video"})
                    s.commit()
                raise InvalidRequest("video shows a person's face that is not your own verified cameo. A character "
                                     "may show only its creator's own face (enrol it with POST /v1/cameos), or no "
                                     "face at all.", param="video", code=guard.NOT_PERMITTED)
            found.add(c.id)
        if len(found) > 1:
            raise InvalidRequest("video shows more than one of your cameos; a character shows one person.",
                                 param="video", code=guard.NOT_PERMITTED)
        return found.pop() if found else None

    def get(self, user_id: str, character_id: str) -> Character:
        with self.sessions() as s:
            row = self._own(s, user_id, character_id)
            s.expunge(row)
            return row

    def list(self, user_id: str, after: str | None = None, limit: int = 20, order: str = "desc"
             ) -> tuple[list[Character], bool]:
        """The caller's characters, a page at a time like the video list: (rows, has_more). `after` is the
        id of the last row of the previous page; someone else's id (or an unknown one) is an empty page."""
        with self.sessions() as s:
            q = select(Character).where(Character.owner_id == user_id)
            if after:
                anchor = s.scalar(select(Character.seq).where(Character.id == after, Character.owner_id == user_id))
                if anchor is None:
                    return [], False
                q = q.where(Character.seq < anchor if order == "desc" else Character.seq > anchor)
            q = q.order_by(Character.seq.desc() if order == "desc" else Character.seq.asc()).limit(limit + 1)
            rows = list(s.scalars(q))
            for r in rows:
                s.expunge(r)
        return rows[:limit], len(rows) > limit

    def delete(self, user_id: str, character_id: str) -> str:
        """Remove the character and its kept frame; returns its id. Videos already made from it keep their own
        copy of the frame and their cameo uses (consent, the owner's list, takedowns are the cameo's, not the
        character's); new videos naming it get `character_not_found`."""
        for attempt in range(5):  # the audit chain's tail may be taken by another writer: retry
            with self.sessions() as s:
                row = self._own(s, user_id, character_id)
                key = row.reference_key
                if row.cameo_id is not None:
                    audit.append(s, "character_delete", actor_id=user_id, owner_id=user_id, cameo_id=row.cameo_id,
                                 subject_id=row.id)
                s.delete(row)
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    if attempt < 4:
                        continue
                    raise
                break
        if key:
            self.storage.delete_prefix(key)
        return character_id

    @staticmethod
    def _own(s: Session, user_id: str, character_id: str) -> Character:
        row = s.scalar(select(Character).where(Character.id == character_id, Character.owner_id == user_id))
        if row is None:  # someone else's is "not found" too: ids are not a way to probe other accounts
            raise NotFound(f"No character found with id '{character_id}'.", param="character_id",
                           code="character_not_found")
        return row

    def first_frame(self, user_id: str, character_ids: list[str]) -> bytes | None:
        """The reference frame of the first named character that has one (the caller's own)."""
        with self.sessions() as s:
            for cid in character_ids:
                row = s.scalar(select(Character).where(Character.id == cid, Character.owner_id == user_id))
                if row is not None and row.reference_key:
                    try:
                        with self.storage.open(row.reference_key) as f:
                            return f.read()
                    except FileNotFoundError:  # purged with its cameo
                        continue
        return None


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(frame, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
