"""Long, nearly empty clips: one encoded stretch of a still image, its packets repeated with later timestamps.

Encoding ten minutes of 1080p would take minutes on a small machine; remuxing one twenty-second GOP thirty
times takes a fraction of a second and gives the same file a client could upload: a valid H.264 MP4
whose headers and packets all say ten minutes, at a few hundred KB.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np


def static_clip(path: Path, *, seconds: float, width: int, height: int, fps: int = 24, gop_seconds: int = 20,
                crf: int = 51) -> Path:
    n = int(gop_seconds * fps)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 255 // width), (y * 255 // height), np.full_like(x, 96)], -1).astype(np.uint8)
    segment = io.BytesIO()
    with av.open(segment, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": str(crf), "g": str(n), "preset": "ultrafast", "bf": "0"}
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        for _ in range(n):
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    segment.seek(0)
    with av.open(segment) as src:
        packets = [p for p in src.demux(src.streams.video[0]) if p.size]
        template = src.streams.video[0]
        step = round(gop_seconds / template.time_base)
        with av.open(str(path), "w", format="mp4") as out:
            s = out.add_stream_from_template(template)
            for r in range(int(np.ceil(seconds / gop_seconds))):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + r * step, p.dts + r * step
                    q.time_base, q.is_keyframe, q.stream = template.time_base, p.is_keyframe, s
                    out.mux(q)
    return path
