"""Build cameo verification clips offline from real photos that ship in packages.

Faces: scikit-image's `astronaut` (Eileen Collins, NASA, public domain) and matplotlib's
`grace_hopper.jpg` (US Navy, public domain). A head turn is a warp of the photo onto a
cylinder with a protruding nose, so the nose moves across the face the way it does when a
real head turns. The challenge is spoken by `espeak-ng` (Debian package `espeak-ng`) as the
audio track. Everything is deterministic and takes well under a second per clip.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from mutoscope.likeness.challenge import DIGIT_WORDS
from mutoscope.media import encode_mp4

W, H, FPS = 384, 288, 12
SPRITE = 176


@functools.cache
def photo(name: str) -> np.ndarray:
    """A square crop around the face, SPRITE x SPRITE RGB."""
    if name == "astronaut":
        import skimage.data

        img, box = skimage.data.astronaut(), (140, 40, 310, 210)
    elif name == "hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            img = np.asarray(Image.open(f).convert("RGB"))
        box = (120, 95, 420, 395)
    else:
        raise KeyError(name)
    l, t, r, b = box
    return np.asarray(Image.fromarray(img[t:b, l:r]).resize((SPRITE, SPRITE), Image.BICUBIC))


def turn(sprite: np.ndarray, theta: float, nose: float = 0.16) -> np.ndarray:
    """Rotate the face about a vertical axis by `theta` radians (positive: nose to the image's right).

    Texture on a cylinder (radius 1.3 half-widths) plus a Gaussian bump for the nose, projected
    orthographically: the near side widens, the far side narrows, the nose swings past the eyes.
    """
    if theta == 0:
        return sprite
    n = sprite.shape[1]
    half = n / 2
    u = np.linspace(-1, 1, 4 * n)  # source columns, in half-widths
    r = 1.3
    x = r * np.sin(np.arcsin(u / r) + theta) + nose * math.sin(theta) * np.exp(-(u / 0.18) ** 2)
    x = np.maximum.accumulate(x)  # hidden (folded) parts stay hidden
    out_x = (np.arange(n) + 0.5 - half) / half
    src = np.interp(out_x, x, u, left=-1, right=1)
    cols = np.clip(((src + 1) * half).astype(int), 0, n - 1)
    return sprite[:, cols]


def background(seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([90 + 40 * xx / W, 100 + 30 * yy / H, 120 + 0 * xx], axis=-1)
    return base.astype(np.uint8)


def paste(canvas: np.ndarray, sprite: np.ndarray, cx: int, cy: int) -> None:
    h, w = sprite.shape[:2]
    canvas[cy - h // 2:cy - h // 2 + h, cx - w // 2:cx - w // 2 + w] = sprite


def yaw_track(turns: tuple[str, ...], n_frames: int, peak: float = 0.5) -> np.ndarray:
    """Front, then each turn (out and back), front again. 'left' is the person's left: image right."""
    track = np.zeros(n_frames)
    lead = n_frames // 5
    span = (n_frames - 2 * lead) // max(1, len(turns))
    for i, t in enumerate(turns):
        sign = 1.0 if t == "left" else -1.0
        start = lead + i * span
        k = np.arange(span)
        track[start:start + span] = sign * peak * np.sin(np.pi * k / (span - 1)) ** 0.5
    return track


@functools.cache
def speech(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "135", "-w", str(out), text], check=True,
                       capture_output=True, timeout=60)
        with wave.open(str(out)) as w:
            rate, n = w.getframerate(), w.getnframes()
            pcm = np.frombuffer(w.readframes(n), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0, rate


def say_digits(digits: str) -> str:
    return ", ".join(DIGIT_WORDS[int(d)] for d in digits)


def build_clip(path: Path, *, digits: str | None, turns: tuple[str, ...] = ("left", "right"),
               faces: tuple[str, ...] = ("astronaut",), swap_to: str | None = None, still: bool = False,
               seconds: float = 4.0) -> Path:
    """Write an MP4 cameo clip.

    Args:
        digits: digits spoken on the audio track; None for a silent (faint noise) track.
        turns: head turns to perform, in the person's frame.
        faces: one photo name, or two for a clip with two people side by side.
        swap_to: switch the (single) face to this photo halfway through.
        still: one unmoving frame for the whole clip (a photo held up to the camera).
    """
    n = int(seconds * FPS)
    yaws = np.zeros(n) if still else yaw_track(turns, n)
    frames = np.empty((n, H, W, 3), np.uint8)
    bg = background()
    for i in range(n):
        canvas = bg.copy()
        # A live person drifts a little; a held photo does not.
        dx = 0 if still else int(round(6 * math.sin(i / 5)))
        dy = 0 if still else int(round(3 * math.cos(i / 7)))
        if len(faces) == 1:
            name = swap_to if swap_to and i >= n // 2 else faces[0]
            paste(canvas, turn(photo(name), yaws[i]), W // 2 + dx, H // 2 + dy)
        else:
            for k, name in enumerate(faces):
                small = np.asarray(Image.fromarray(photo(name)).resize((SPRITE * 9 // 10,) * 2))
                paste(canvas, turn(small, yaws[i]), W // 4 + k * W // 2 + dx, H // 2 + dy)
        frames[i] = canvas
    rate = 22050
    track = np.random.default_rng(0).normal(0, 0.002, int(seconds * rate)).astype(np.float32)
    if digits is not None:
        voice, rate = speech(say_digits(digits))
        track = np.random.default_rng(0).normal(0, 0.002, int(seconds * rate)).astype(np.float32)
        at = int(0.3 * rate)
        voice = voice[: len(track) - at]
        track[at:at + len(voice)] += voice
    encode_mp4(path, frames, FPS, track[None, :], rate)
    return path
