"""Preview images made from a clip: WebP thumbnail and JPEG spritesheet.

Both work on the in-memory frames the job already has, so finishing a job
never decodes its own MP4 again. `thumbnail_webp` also takes a path for
backfilling previews of videos that only exist as files.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image

from mutoscope.media.arrays import check_frames
from mutoscope.media.probe import probe, read_frame

# OpenAI's spritesheet variant is a JPEG grid of frames. 5 x 5 tiles 160 px
# wide stays small (a 720x1280 clip gives 800x1420, ~100 KB) while giving the
# web player's hover-scrub 25 distinct positions.
SPRITE_COLUMNS = 5
SPRITE_COUNT = 25
SPRITE_TILE_WIDTH = 160


def _middle_frame(source: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(source, (str, os.PathLike)):
        return read_frame(source, probe(source).frame_count // 2)
    frames = check_frames(source)
    return frames[len(frames) // 2]


def thumbnail_webp(
    source: np.ndarray | str | os.PathLike[str], *, max_side: int = 640, quality: int = 80
) -> bytes:
    """WebP of the middle frame, longest side at most `max_side`, aspect kept.

    The middle frame, not the first: generated clips often open on a dim or
    still conditioning frame, and the middle is what the clip is "about".
    Never upscales.
    """
    img = Image.fromarray(_middle_frame(source), "RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


def sprite_indices(frame_count: int, count: int) -> list[int]:
    """`count` frame indices spread evenly, each the centre of its slice of the clip.

    Clips shorter than `count` give every frame once.
    """
    count = min(count, frame_count)
    return [min(frame_count - 1, int((i + 0.5) * frame_count / count)) for i in range(count)]


def spritesheet_jpeg(
    frames: np.ndarray,
    *,
    columns: int = SPRITE_COLUMNS,
    count: int = SPRITE_COUNT,
    tile_width: int = SPRITE_TILE_WIDTH,
    quality: int = 80,
) -> bytes:
    """JPEG grid of `count` evenly sampled frames, row-major, `columns` wide.

    Tiles are `tile_width` x round(tile_width * H / W); the sheet is
    columns*tile_w x ceil(n/columns)*tile_h, where n = min(count, T). Unused
    cells in the last row are black. Consumers locate tile i at
    ((i % columns) * tile_w, (i // columns) * tile_h).
    """
    frames = check_frames(frames)
    t, h, w, _ = frames.shape
    tile_w = tile_width
    tile_h = max(1, round(tile_width * h / w))
    picks = sprite_indices(t, count)
    cols = min(columns, len(picks))
    rows = math.ceil(len(picks) / cols)
    sheet = Image.new("RGB", (cols * tile_w, rows * tile_h))
    for n, idx in enumerate(picks):
        # reducing_gap: Pillow first shrinks by an integer factor (cheap box
        # reduce), then LANCZOS for the rest; same look, less work from 720p.
        tile = Image.fromarray(frames[idx], "RGB").resize(
            (tile_w, tile_h), Image.Resampling.LANCZOS, reducing_gap=2.0
        )
        sheet.paste(tile, ((n % cols) * tile_w, (n // cols) * tile_h))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
