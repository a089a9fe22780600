"""Read a file's provenance: the C2PA manifest and the invisible watermark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from mutoscope.provenance import keys
from mutoscope.provenance.manifest import C2paReport, read_manifest
from mutoscope.provenance.watermark import Detection, detect

# Frames read for the watermark: evenly spread, enough for a clean vote, few enough to stay fast.
SAMPLE_FRAMES = 24


@dataclass
class Verification:
    c2pa: C2paReport
    watermark: Detection

    @property
    def video_id(self) -> str | None:
        """The id this file points to: the signed manifest's when it checks out, else the watermark's."""
        if self.c2pa.state in ("trusted", "valid") and self.c2pa.video_id:
            return self.c2pa.video_id
        return self.watermark.video_id


def sample_frames(path: Path, n: int = SAMPLE_FRAMES) -> list[np.ndarray]:
    """Up to `n` RGB frames spread over the video; converts only those it keeps.

    Unreadable or audio-only files give no frames (verify reports "no watermark", not an error).
    """
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return []
            v = c.streams.video[0]
            v.thread_type = "AUTO"
            total = v.frames or 0
            step = max(1, total // n) if total else 1
            out = []
            for i, frame in enumerate(c.decode(v)):
                if i % step == 0:
                    out.append(frame.to_ndarray(format="rgb24", src_colorspace="itu709"
                                                if frame.colorspace == 1 else None))
                    if len(out) >= n:
                        break
            return out
    except (av.FFmpegError, ValueError):
        return []


def verify(path: Path, data_dir: Path | None = None) -> Verification:
    """C2PA state (trusted needs this server's anchors from `data_dir`) and the watermark payload."""
    trust = keys.trust_anchors(data_dir) if data_dir is not None else None
    return Verification(c2pa=read_manifest(Path(path), trust), watermark=detect(sample_frames(Path(path))))
