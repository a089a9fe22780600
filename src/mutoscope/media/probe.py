"""MP4 -> facts and arrays: probe, check an upload's limits, read frames (bounded) and audio back."""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


@dataclass(frozen=True)
class InputLimits:
    """The most an uploaded clip may hold, checked on its headers before any frame is decoded."""

    max_seconds: float
    max_pixels: int
    max_frames: int


def _open(source: Source) -> av.container.InputContainer:
    try:
        return av.open(source if not isinstance(source, os.PathLike) else os.fspath(source))
    except av.FFmpegError as exc:
        # FFmpeg's message carries the path; keep only the reason.
        raise MediaError(f"not a readable video file ({type(exc).__name__})") from exc


@contextmanager
def _decoding() -> Iterator[None]:
    """FFmpeg failures past the headers (a truncated or corrupt file) as MediaError, without FFmpeg's text."""
    try:
        yield
    except MediaError:
        raise
    except av.FFmpegError as exc:
        raise MediaError(f"the file is corrupt or truncated ({type(exc).__name__})") from exc


def _video_stream(c: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not c.streams.video:
        raise MediaError("file has no video stream")
    v = c.streams.video[0]
    # A stream whose codec FFmpeg cannot open (or whose header was cut off) has no codec context.
    if v.codec_context is None or not v.codec_context.width or not v.codec_context.height:
        raise MediaError("the video stream cannot be decoded (unknown codec or damaged header)")
    return v


def _rate(v: av.video.stream.VideoStream) -> float:
    rate = v.average_rate or v.guessed_rate or v.base_rate
    return float(rate) if rate else 0.0


def probe(source: Source) -> MediaInfo:
    """Read the container headers; decodes nothing (counts packets only if the frame count is missing)."""
    with _open(source) as c, _decoding():
        v = _video_stream(c)
        fps = _rate(v)
        frame_count = v.frames
        if not frame_count:
            # Some containers (e.g. fragmented MP4, webm) do not store it: count packets, decoding none.
            frame_count = sum(1 for p in c.demux(v) if p.size)
        if c.duration is not None:
            duration = c.duration / av.time_base
        elif v.duration is not None:
            duration = float(v.duration * v.time_base)
        else:
            duration = frame_count / fps if fps else 0.0
        a = c.streams.audio[0] if c.streams.audio else None
        if a is not None and a.codec_context is None:
            a = None  # an audio track we cannot decode is ignored, like no audio at all
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


def check_input(info: MediaInfo, limits: InputLimits) -> None:
    """MediaError naming the limit an upload's headers exceed (its duration, resolution or frame count)."""
    if info.duration > limits.max_seconds + 1e-6:
        raise MediaError(f"it lasts {info.duration:.1f} s; this server accepts clips of at most "
                         f"{limits.max_seconds:g} s (max_input_seconds)")
    if info.width * info.height > limits.max_pixels:
        raise MediaError(f"it is {info.width}x{info.height}; this server accepts at most {limits.max_pixels} "
                         "pixels per frame (max_input_pixels)")
    if info.frame_count > limits.max_frames:
        raise MediaError(f"it has {info.frame_count} frames; this server accepts at most {limits.max_frames} "
                         "(max_input_frames)")


def inspect_upload(source: Source, limits: InputLimits) -> MediaInfo:
    """probe() plus what a job will need of an uploaded clip, checked at create so bad input never becomes a
    failed job: within `limits` (headers only), every packet the header promises is there (a truncated file
    is short of them), and the first frame decodes. Demuxing reads packets without decoding them."""
    info = probe(source)
    if info.frame_count < 1:
        raise MediaError("it has no frames")
    check_input(info, limits)
    if hasattr(source, "seek"):
        source.seek(0)  # type: ignore[union-attr]
    with _open(source) as c, _decoding():
        v = _video_stream(c)
        packets = 0
        for packet in c.demux(v):
            packets += 1 if packet.size else 0
            if packets > limits.max_frames:
                raise MediaError(f"it has more than {limits.max_frames} frames; this server accepts at most "
                                 f"{limits.max_frames} (max_input_frames)")
        if packets < info.frame_count:
            raise MediaError(f"it is truncated: its header promises {info.frame_count} frames, the file holds "
                             f"{packets}")
    if hasattr(source, "seek"):
        source.seek(0)  # type: ignore[union-attr]
    read_frames(source, count=1)
    return info


def frame_bytes(width: int, height: int, frames: int) -> int:
    """RAM for `frames` decoded RGB frames (uint8), the unit the job memory budget is counted in."""
    return width * height * 3 * frames


# swscale's default yuv->rgb path darkens by ~1-1.5 levels per round trip;
# accurate rounding + full chroma interpolation brings the bias to ~0, which
# matters when an extension continues from frames we read back (3x slower,
# so the readers convert only the frames they return).
_ACCURATE = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> np.ndarray:
    # Decode with the matrix the file is tagged with (encode_mp4 tags BT.709)
    # so colours match what players show. Untagged: swscale default (BT.601).
    space = "itu709" if frame.colorspace == 1 else None
    width, height = size if size is not None else (None, None)
    return frame.to_ndarray(format="rgb24", src_colorspace=space, interpolation=_ACCURATE, width=width, height=height)


def _out_size(frame: av.VideoFrame, max_pixels: int | None) -> tuple[int, int]:
    """The first frame's size, scaled down (aspect kept, even sides) to at most `max_pixels`."""
    w, h = frame.width, frame.height
    if max_pixels is None or w * h <= max_pixels:
        return w, h
    scale = math.sqrt(max_pixels / (w * h))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def _frames_from(c: av.container.InputContainer, v: av.video.stream.VideoStream, start: int,
                 fps: float) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) from frame `start` on. Seeks to the keyframe before it, then decodes forward,
    skipping frames before `start`; frames are numbered from their timestamps. Without usable
    timestamps (or if the seek landed past `start`) it decodes from the beginning and counts."""
    origin = float(v.start_time * v.time_base) if v.start_time is not None else 0.0
    if start > 0 and fps > 0:
        c.seek(int((origin + start / fps) / v.time_base), stream=v, backward=True, any_frame=False)
        index = None
        for frame in c.decode(v):
            if index is None:
                if frame.time is None or round((frame.time - origin) * fps) > start:
                    break  # no timestamps, or the seek overshot: start over from frame 0
                index = round((frame.time - origin) * fps)
            else:
                index = round((frame.time - origin) * fps) if frame.time is not None else index + 1
            if index >= start:
                yield index, frame
        else:
            return
        c.seek(0, stream=v, backward=True, any_frame=False)
    for index, frame in enumerate(c.decode(v)):
        if index >= start:
            yield index, frame


def read_frames(source: Source, *, start: int = 0, count: int | None = None, last_n: int | None = None,
                fps: float | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Decode frames to a (T, H, W, 3) uint8 RGB array, only as many as asked for.

    - `start`, `count`: frames [start, start + count); decoding seeks to the keyframe before `start`
      and stops after the last frame asked for. Without `count`: to the end.
    - `last_n`: the clip's last `last_n` frames (seeks near the end using the header's frame count).
    - `fps`: `count` frames sampled at this rate (nearest source frame) from `start` on; when the source
      ends first, its last frame repeats. Frames that are not sampled are decoded but never kept.
    - `max_pixels`: frames larger than this are scaled down (aspect kept) as they are converted.

    Memory is the returned array plus one decoded frame (the tail keeps `last_n` YUV frames).
    """
    if last_n is not None and last_n <= 0:
        raise MediaError(f"last_n must be positive, got {last_n}")
    if count is not None and count <= 0:
        raise MediaError(f"count must be positive, got {count}")
    if start < 0:
        raise MediaError(f"start must not be negative, got {start}")
    with _open(source) as c, _decoding():
        v = _video_stream(c)
        v.thread_type = "AUTO"
        src_fps = _rate(v)
        if last_n is not None:
            return _tail(c, v, last_n, src_fps, max_pixels)
        if fps is not None:
            if count is None or fps <= 0:
                raise MediaError("resampling to fps needs a positive fps and a count")
            wanted = [start + round(j * src_fps / fps) if src_fps else start + j for j in range(count)]
        else:
            wanted = None
        out: np.ndarray | None = None
        chunks: list[np.ndarray] = []
        size = None
        j = 0  # next output slot
        for index, frame in _frames_from(c, v, start, src_fps):
            if size is None:
                size = _out_size(frame, max_pixels)
                # One allocation for the whole answer, not a list of frames and then a stacked copy (which
                # doubles the peak). Without a count the header's frame count is the guess; a guess too
                # large to allocate, or too small, falls back to a list for the rest.
                slots = count if count is not None else max(0, (v.frames or 0) - start)
                try:
                    out = np.empty((slots, size[1], size[0], 3), np.uint8) if slots else None
                except MemoryError:
                    out = None
            if wanted is None:
                rgb = _to_rgb(frame, size)
                if out is not None and j < len(out):
                    out[j] = rgb
                else:
                    chunks.append(rgb)
                j += 1
            else:
                rgb = None
                while j < count and wanted[j] <= index:
                    rgb = _to_rgb(frame, size) if rgb is None else rgb
                    out[j] = rgb
                    j += 1
            if count is not None and j >= count:
                break
        if j == 0:
            raise MediaError("video has no frames" if start == 0 else f"video has no frame {start}")
        if out is None:
            return np.stack(chunks)
        if chunks:
            return np.concatenate([out, np.stack(chunks)])
        if wanted is not None and j < count:
            out[j:] = out[j - 1]  # the source ended early: hold its last frame, like a player would
            return out
        return out[:j]


def _tail(c: av.container.InputContainer, v: av.video.stream.VideoStream, n: int, fps: float,
          max_pixels: int | None) -> np.ndarray:
    total = v.frames or 0
    start = max(0, total - n)
    kept: collections.deque[av.VideoFrame] = collections.deque(maxlen=n)
    kept.extend(frame for _, frame in _frames_from(c, v, start, fps))
    if len(kept) < n and start > 0:
        # The header's count overshoots what decodes: read the whole clip, still holding only n frames.
        c.seek(0, stream=v, backward=True, any_frame=False)
        kept = collections.deque(c.decode(v), maxlen=n)
    if not kept:
        raise MediaError("video has no frames")
    size = _out_size(kept[0], max_pixels)
    out = np.empty((len(kept), size[1], size[0], 3), np.uint8)
    for i, frame in enumerate(kept):
        out[i] = _to_rgb(frame, size)
    return out


def read_frames_at(source: Source, indices: list[int], *, max_pixels: int | None = None) -> list[np.ndarray]:
    """The frames at these indices, in one forward pass that stops after the last; indices past the end
    are left out (a header's frame count can overshoot what decodes)."""
    wanted = {i for i in indices if i >= 0}
    if not wanted:
        return []
    last = max(wanted)
    picked: dict[int, np.ndarray] = {}
    with _open(source) as c, _decoding():
        v = _video_stream(c)
        v.thread_type = "AUTO"
        size = None
        for index, frame in enumerate(c.decode(v)):
            if index in wanted:
                size = size or _out_size(frame, max_pixels)
                picked[index] = _to_rgb(frame, size)
            if index >= last:
                break
    return [picked[i] for i in indices if i in picked]


def read_frame(source: Source, index: int) -> np.ndarray:
    """Decode one frame (H, W, 3) uint8 by index; converts only that frame."""
    frames = read_frames_at(source, [index])
    if not frames:
        raise MediaError(f"frame {index} is past the end of the video")
    return frames[0]


def read_audio(source: Source) -> tuple[np.ndarray, int] | None:
    """Decode the first audio stream to ((channels, samples) float32, sample_rate), or None.

    The MP4 edit list (AAC priming samples) is applied by FFmpeg, so sample 0
    lines up with frame 0.
    """
    with _open(source) as c, _decoding():
        if not c.streams.audio or c.streams.audio[0].codec_context is None:
            return None
        a = c.streams.audio[0]
        audio, rate = decode_audio_stream(c, a)
        # FFmpeg drops the leading priming samples but not the encoder's
        # padding of the last AAC frame; the stream duration says where it ends.
        end = round(a.duration * a.time_base * rate) if a.duration else None
    return np.ascontiguousarray(audio[:, :end], dtype=np.float32), rate


def decode_audio_stream(c: av.container.InputContainer, a: av.audio.stream.AudioStream,
                        cap_samples: int | None = None, too_long: str = "") -> tuple[np.ndarray, int]:
    """Stream `a` of the open container `c` as ((channels, samples) planar float32, sample_rate): whatever
    the decoder emits (fltp for AAC, s16 elsewhere) normalized, more than two channels downmixed to stereo.
    `cap_samples`: MediaError(`too_long`) as soon as decoding passes that many samples."""
    rate = a.codec_context.sample_rate
    layout = "mono" if a.codec_context.channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    parts: list[np.ndarray] = []
    total = 0
    for frame in c.decode(a):
        for f in resampler.resample(frame):
            parts.append(f.to_ndarray())
            total += parts[-1].shape[1]
        if cap_samples is not None and total > cap_samples:
            raise MediaError(too_long)
    parts.extend(f.to_ndarray() for f in resampler.resample(None))
    channels = 1 if layout == "mono" else 2
    return (np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), np.float32)), rate
