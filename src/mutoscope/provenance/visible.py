"""Visible watermark: the creator's handle in a corner of every frame, as Sora did."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def overlay(width: int, height: int, text: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The mark rendered once: (RGB patch, alpha 0..1, top-left corner), bottom right, ~1/28 of the short side."""
    size = max(10, min(width, height) // 28)
    font = ImageFont.load_default(size=size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=max(1, size // 12))
    pad = max(2, size // 3)
    w, h = min(width, right - left + 2 * pad), min(height, bottom - top + 2 * pad)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    # White text with a dark outline reads on any background; 75 % opaque keeps the picture visible.
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 190),
                             stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0, 150))
    rgba = np.asarray(img, dtype=np.float32)
    margin = max(4, min(width, height) // 40)
    return rgba[..., :3], rgba[..., 3:] / 255.0, (max(0, width - w - margin), max(0, height - h - margin))


def stamp(frames: np.ndarray, handle: str) -> np.ndarray:
    """Draw `handle` (e.g. "@ada") onto frames (T, H, W, 3) uint8 in place; returns frames."""
    t, h, w, _ = frames.shape
    rgb, alpha, (x, y) = overlay(w, h, handle)
    ph, pw = alpha.shape[:2]
    region = frames[:, y:y + ph, x:x + pw].astype(np.float32)
    frames[:, y:y + ph, x:x + pw] = np.rint(region * (1 - alpha) + rgb * alpha).astype(np.uint8)
    return frames
