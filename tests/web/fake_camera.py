"""What Chromium's fake camera and microphone play: a Y4M video and a WAV built from the cameo test clips.

`--use-file-for-fake-video-capture` takes a raw Y4M (4:2:0) file and `--use-file-for-fake-audio-capture`
a WAV; Chromium opens both when a capture starts (each getUserMedia), so a test can write them after
reading the page's challenge and before the page asks for the camera. Chromium loops both files (the
audio not when its path ends in `%noloop`): the video here ends on a long stretch of the person facing
the camera, so a recording that runs past the turns shows them once, and the audio is one reading
padded with quiet room noise.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from tests.likeness.clips import FPS, H, W, background, paste, photo, say_digits, speech, turn, yaw_track


def write_y4m(path: Path, frames: np.ndarray, fps: int) -> Path:
    """(T, H, W, 3) uint8 RGB as YUV4MPEG2, C420 (BT.601 limited range, what Chromium's reader assumes)."""
    t, h, w, _ = frames.shape
    rgb = frames.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b

    def sub(p):  # 2x2 average: 4:2:0 chroma
        return p.reshape(t, h // 2, 2, w // 2, 2).mean(axis=(2, 4))

    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, sub(u), sub(v))]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(t):
            f.write(b"FRAME\n")
            for p in planes:
                f.write(p[i].tobytes())
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(pcm.tobytes())
    return path


def person_frames(turns: tuple[str, ...], act_seconds: float, rest_seconds: float,
                  face: str = "astronaut") -> np.ndarray:
    """The cameo clip's person: the turns over `act_seconds`, then facing the camera for `rest_seconds`."""
    n_act, n = int(act_seconds * FPS), int((act_seconds + rest_seconds) * FPS)
    yaws = np.concatenate([yaw_track(turns, n_act), np.zeros(n - n_act)])
    frames = np.empty((n, H, W, 3), np.uint8)
    bg = background()
    for i in range(n):
        canvas = bg.copy()
        dx, dy = int(round(6 * math.sin(i / 5))), int(round(3 * math.cos(i / 7)))
        paste(canvas, turn(photo(face), yaws[i]), W // 2 + dx, H // 2 + dy)
        frames[i] = canvas
    return frames


def write_fake_media(folder: Path, digits: str, turns: tuple[str, ...], *, act_seconds: float = 4.0,
                     rest_seconds: float = 6.0) -> tuple[Path, Path]:
    """(video.y4m, audio.wav) of one person reading `digits` and turning their head as asked."""
    video = write_y4m(folder / "camera.y4m", person_frames(turns, act_seconds, rest_seconds), FPS)
    voice, rate = speech(say_digits(digits))
    total = int((act_seconds + rest_seconds) * rate)
    track = np.random.default_rng(0).normal(0, 0.002, total).astype(np.float32)
    at = int(0.3 * rate)
    track[at:at + len(voice)] += voice[: total - at]
    return video, write_wav(folder / "microphone.wav", track, rate)
