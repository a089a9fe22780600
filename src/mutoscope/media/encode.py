"""Arrays -> MP4 (H.264 yuv420p + AAC, moov atom first)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from mutoscope.media.arrays import MediaError, audio_samples_for, check_audio, check_frames, fit_audio

# Rates the native AAC encoder accepts; anything else is resampled to 48 kHz.
_AAC_RATES = frozenset(av.codec.Codec("aac", "w").audio_rates or ())
_AAC_FRAME = 1024  # samples per AAC frame


def as_rate(fps: float | Fraction) -> Fraction:
    """fps as an exact fraction: 24000/1001 passed as a float comes back as 24000/1001."""
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise MediaError(f"fps must be positive, got {fps}")
    return rate


def encode_mp4(
    path_or_file: str | os.PathLike[str] | BinaryIO,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    *,
    crf: int = 18,
    preset: str = "veryfast",
) -> None:
    """Encode `frames` (T, H, W, 3) uint8 RGB and optional `audio` to an MP4.

    Duration is exactly T / fps: audio is trimmed or zero-padded to match.
    A path is written atomically (temp file in the same folder, then
    os.replace), so readers never see a half-written video. A binary file
    object gets the finished bytes copied in; nothing is written to it if
    encoding fails.
    """
    frames = check_frames(frames, even=True)
    rate = as_rate(fps)
    if audio is not None:
        if not sample_rate or sample_rate <= 0:
            raise MediaError("sample_rate is required with audio")
        audio = check_audio(audio)

    is_path = isinstance(path_or_file, (str, os.PathLike))
    # Always encode to a real file: faststart moves the moov atom by reopening
    # the output by name, which FFmpeg cannot do for a Python file object.
    # Same folder as the target so os.replace stays a same-filesystem rename.
    if is_path:
        target: Path | None = Path(path_or_file)  # type: ignore[arg-type]
        tmp = str(target.parent / f".{target.name}.{uuid.uuid4().hex}.part")
        # Not mkstemp: its 0600 mode would survive os.replace and hide the
        # video from a web server running as another user; 0666 & umask does not.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    else:
        target = None
        fd, tmp = tempfile.mkstemp(prefix=".mutoscope-", suffix=".part")
        os.close(fd)
    try:
        _encode(tmp, frames, rate, audio, sample_rate, crf, preset)
        if target is not None:
            os.replace(tmp, target)
        else:
            with open(tmp, "rb") as src:
                shutil.copyfileobj(src, path_or_file)  # type: ignore[arg-type]
    finally:
        # Also on KeyboardInterrupt/cancellation: never leave a .part behind.
        Path(tmp).unlink(missing_ok=True)


def _encode(
    dest: str | BinaryIO,
    frames: np.ndarray,
    rate: Fraction,
    audio: np.ndarray | None,
    sample_rate: int | None,
    crf: int,
    preset: str,
) -> None:
    t, h, w, _ = frames.shape
    # container_options, not options: `options` would also be handed to every
    # stream, where movflags is meaningless.
    with av.open(dest, mode="w", format="mp4", container_options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height = w, h
        video.pix_fmt = "yuv420p"
        video.time_base = 1 / rate  # pts == frame index
        cc = video.codec_context
        cc.options = {
            "crf": str(crf),
            "preset": preset,
            # A keyframe every ~2 s keeps browser scrubbing snappy on long clips
            # at a small size cost (x264's default is 250 frames).
            "g": str(max(1, round(float(rate) * 2))),
        }
        # Tag BT.709 (HD) and convert with the same matrix below; untagged
        # streams get 601 or 709 depending on the player, shifting colours.
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # AVCOL_*_BT709
        cc.color_range = 1  # AVCOL_RANGE_MPEG (limited), what players expect
        # Frame threads only: with SLICE in the mix ("AUTO") libx264 switches to
        # sliced threading, which is ~10% slower for whole-file throughput.
        cc.thread_type = "FRAME"
        cc.thread_count = 0  # one per core

        astream = None
        if audio is not None:
            assert sample_rate is not None
            audio = fit_audio(audio, audio_samples_for(t, float(rate), sample_rate))
            if sample_rate not in _AAC_RATES:
                audio, sample_rate = _resample(audio, sample_rate, 48000), 48000
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "mono" if audio.shape[0] == 1 else "stereo"
            astream.time_base = Fraction(1, sample_rate)
            astream.bit_rate = 96_000 * audio.shape[0]

        for i in range(t):
            # from_numpy_buffer wraps the array without a copy (~2 ms/frame at 720p).
            frame = av.VideoFrame.from_numpy_buffer(frames[i], format="rgb24")
            frame = frame.reformat(
                format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG"
            )
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))

        if astream is not None:
            assert audio is not None
            # Feed whole AAC frames with explicit pts so the muxer's edit list
            # (which hides the encoder's priming samples) lines up exactly.
            layout = astream.layout.name
            for start in range(0, audio.shape[1], _AAC_FRAME):
                chunk = np.ascontiguousarray(audio[:, start : start + _AAC_FRAME])
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                aframe.sample_rate = sample_rate
                aframe.pts = start
                out.mux(astream.encode(aframe))
            out.mux(astream.encode(None))


def _resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample with swresample (rare path: models emit standard AAC rates)."""
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=dst_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp", layout=layout)
    frame.sample_rate = src_rate
    parts = [f.to_ndarray() for f in resampler.resample(frame)]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    out = np.concatenate(parts, axis=1) if parts else np.zeros((audio.shape[0], 0), np.float32)
    return fit_audio(out, int(round(audio.shape[1] * dst_rate / src_rate)))
