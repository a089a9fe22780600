"""Verification for every front end (`POST /v1/verify`, `mutoscope verify`): read a file's provenance and
say whether it points to a video made here."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Video
from mutoscope.errors import InvalidRequest
from mutoscope.likeness import consent as cameo_consent
from mutoscope.protocol.base import Upload
from mutoscope.protocol.verify import C2paResult, VerifyResponse, VideoOrigin, WatermarkResult
from mutoscope.provenance import Verification, verify


class VerifyService:
    def __init__(self, sessions: sessionmaker[Session] | None, data_dir: Path):
        """`sessions` None (the CLI with no server in its data folder): every id is "unknown"."""
        self.sessions, self.data_dir = sessions, data_dir

    def verify_upload(self, upload: Upload | None) -> VerifyResponse:
        if upload is None or not upload.data:
            raise InvalidRequest("Send the file to verify as multipart field 'file'.", param="file",
                                 code="missing_file")
        fd, tmp = tempfile.mkstemp(prefix=".verify-", suffix=".mp4")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(upload.data)
            result = verify(Path(tmp), self.data_dir)
        finally:
            os.unlink(tmp)
        return self.to_response(result)

    def to_response(self, result: Verification) -> VerifyResponse:
        wm = result.watermark
        return VerifyResponse(
            c2pa=C2paResult(**dataclasses.asdict(result.c2pa)),
            watermark=WatermarkResult(found=wm.video_id is not None, video_id=wm.video_id,
                                      frames_checked=wm.frames_checked, agreement=wm.agreement, margin=wm.margin),
            video=self.origin(result.video_id))

    def origin(self, video_id: str | None) -> VideoOrigin:
        """Whether the id is a video made here, whoever owns it: existence, status and takedown only."""
        if not video_id or self.sessions is None:
            return VideoOrigin(origin="unknown", id=video_id)
        with self.sessions() as s:
            v = s.scalar(select(Video).where(Video.id == video_id))
            if v is None:
                return VideoOrigin(origin="unknown", id=video_id)
            # A takedown is recorded on the cameo use (one per cameo in the video), not on the video row.
            taken_down = cameo_consent.takedown_reason(s, v.id) is not None
            return VideoOrigin(origin="this_server", id=v.id, status=v.status, deleted=v.deleted_at is not None,
                               taken_down=taken_down)
