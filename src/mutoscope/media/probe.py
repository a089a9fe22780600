"""MP4 -> facts and arrays: probe, read frames back, read audio back."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np
from av.video.reformatter import Interpolation

from mutoscope.media.arrays import MediaError

Source = str | os.PathLike[str] | BinaryIO


@dataclass(frozen=True)
class MediaInfo:
    """What a video file holds. Durations are in seconds."""

    width: int
    height: int
    fps: float
    duration: float
    frame_count: int
    video_codec: str
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_duration: float | None = None
    audio_channels: int | None = None


def _open(source: Source) -> av.container.InputContainer:
    try:
        return av.open(source if not isinstance(source, os.PathLike) else os.fspath(source))
    except av.FFmpegError as exc:
        # FFmpeg's message carries the path; keep only the reason.
        raise MediaError(f"not a readable video file ({type(exc).__name__})") from exc


def probe(source: Source) -> MediaInfo:
    """Read the container headers; decodes nothing unless the frame count is missing."""
    with _open(source) as c:
        if not c.streams.video:
            raise MediaError("file has no video stream")
        v = c.streams.video[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate else 0.0
        frame_count = v.frames
        if not frame_count:
            # Some containers (e.g. fragmented MP4, webm) do not store it: count packets.
            frame_count = sum(1 for p in c.demux(v) if p.size)
        if c.duration is not None:
            duration = c.duration / av.time_base
        elif v.duration is not None:
            duration = float(v.duration * v.time_base)
        else:
            duration = frame_count / fps if fps else 0.0
        a = c.streams.audio[0] if c.streams.audio else None
        return MediaInfo(
            width=v.codec_context.width,
            height=v.codec_context.height,
            fps=fps,
            duration=duration,
            frame_count=frame_count,
            video_codec=v.codec_context.name,
            audio_codec=a.codec_context.name if a else None,
            audio_sample_rate=a.codec_context.sample_rate if a else None,
            audio_duration=float(a.duration * a.time_base) if a and a.duration is not None else None,
            audio_channels=a.codec_context.channels if a else None,
        )


# swscale's default yuv->rgb path darkens by ~1-1.5 levels per round trip;
# accurate rounding + full chroma interpolation brings the bias to ~0, which
# matters when an extension continues from frames we read back (3x slower,
# so read_frames converts only the frames it returns).
_ACCURATE = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    # Decode with the matrix the file is tagged with (encode_mp4 tags BT.709)
    # so colours match what players show. Untagged: swscale default (BT.601).
    space = "itu709" if frame.colorspace == 1 else None
    return frame.to_ndarray(format="rgb24", src_colorspace=space, interpolation=_ACCURATE)


def read_frames(source: Source, *, last_n: int | None = None) -> np.ndarray:
    """Decode the video to a (T, H, W, 3) uint8 RGB array; `last_n` keeps only the tail.

    `last_n` still decodes from the start (H.264 needs the preceding keyframe
    and our clips are seconds long) but holds only `last_n` frames in memory.
    """
    if last_n is not None and last_n <= 0:
        raise MediaError(f"last_n must be positive, got {last_n}")
    with _open(source) as c:
        if not c.streams.video:
            raise MediaError("file has no video stream")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        # Hold decoded YUV frames (half the size of RGB) and convert at the end.
        kept: collections.deque[av.VideoFrame] = collections.deque(maxlen=last_n)
        kept.extend(c.decode(v))
    if not kept:
        raise MediaError("video has no frames")
    return np.stack([_to_rgb(f) for f in kept])


def read_frame(source: Source, index: int) -> np.ndarray:
    """Decode one frame (H, W, 3) uint8 by index; converts only that frame."""
    with _open(source) as c:
        if not c.streams.video:
            raise MediaError("file has no video stream")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(v)):
            if i == index:
                return _to_rgb(frame)
    raise MediaError(f"frame {index} is past the end of the video")


def read_audio(source: Source) -> tuple[np.ndarray, int] | None:
    """Decode the first audio stream to ((channels, samples) float32, sample_rate), or None.

    The MP4 edit list (AAC priming samples) is applied by FFmpeg, so sample 0
    lines up with frame 0.
    """
    with _open(source) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        rate = a.codec_context.sample_rate
        layout = "mono" if a.codec_context.channels == 1 else "stereo"
        # Normalize whatever the decoder emits (fltp for AAC, s16 elsewhere)
        # to planar float; >2 channels are downmixed to stereo.
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        parts = []
        for frame in c.decode(a):
            parts.extend(f.to_ndarray() for f in resampler.resample(frame))
        parts.extend(f.to_ndarray() for f in resampler.resample(None))
        # FFmpeg drops the leading priming samples but not the encoder's
        # padding of the last AAC frame; the stream duration says where it ends.
        end = round(a.duration * a.time_base * rate) if a.duration else None
    channels = 1 if layout == "mono" else 2
    audio = np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), np.float32)
    return np.ascontiguousarray(audio[:, :end], dtype=np.float32), rate
