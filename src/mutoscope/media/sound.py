"""Sound on its own: an uploaded clip decoded within bounds, and a waveform stored as a float WAV.

PUT HERE: decoding an audio (or video-with-sound) upload to a waveform, checked on its headers before
decoding and again while decoding; writing a waveform as WAV without loss (32-bit float), so what a job
reads back is sample for sample what was stored.
DO NOT PUT HERE: resampling for a model (engine/audio.py), encoding a video's soundtrack (encode.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from mutoscope.media.arrays import MediaError
from mutoscope.media.probe import Source, _decoding, _open, decode_audio_stream


@dataclass(frozen=True)
class SoundLimits:
    """The longest clip and the rates accepted; anything longer is refused before it is decoded whole."""

    max_seconds: float
    min_seconds: float = 0.1
    max_rate: int = 192_000


def decode_sound(source: Source, limits: SoundLimits) -> tuple[np.ndarray, int]:
    """The first audio stream as ((channels, samples) float32 in [-1, 1], sample_rate); one or two channels
    (more are downmixed to stereo). MediaError when there is no readable sound, it is too long (by its
    header or, when the header lies, while decoding) or too short."""
    with _open(source) as c, _decoding():
        if not c.streams.audio or c.streams.audio[0].codec_context is None:
            raise MediaError("it has no audio stream")
        a = c.streams.audio[0]
        rate = int(a.codec_context.sample_rate or 0)
        if rate <= 0 or rate > limits.max_rate:
            raise MediaError(f"its sample rate ({rate} Hz) is not one that is accepted")
        declared = float(a.duration * a.time_base) if a.duration and a.time_base else None
        if declared is None and c.duration:
            declared = c.duration / av.time_base
        if declared is not None and declared > limits.max_seconds:
            raise MediaError(f"it lasts {declared:.1f} s; at most {limits.max_seconds:g} s are accepted")
        cap = int(limits.max_seconds * rate)
        audio, _ = decode_audio_stream(c, a, cap, f"it lasts more than {limits.max_seconds:g} s")
    if audio.shape[1] > cap:
        raise MediaError(f"it lasts more than {limits.max_seconds:g} s")
    if audio.shape[1] < limits.min_seconds * rate:
        raise MediaError(f"it is shorter than {limits.min_seconds:g} s")
    if not np.isfinite(audio).all():
        raise MediaError("its samples are not finite numbers")
    return np.clip(np.ascontiguousarray(audio, dtype=np.float32), -1.0, 1.0), rate


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """(channels, samples) float32 -> a WAV file of 32-bit float samples (lossless)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=int(rate), layout=layout)
        step = 4096
        for start in range(0, audio.shape[1], step):
            frame = av.AudioFrame.from_ndarray(audio[:, start:start + step], format="fltp", layout=layout)
            frame.sample_rate = int(rate)
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
