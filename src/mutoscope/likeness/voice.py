"""Voices: speech activity (silero-vad), speech-to-text (faster-whisper), speaker embeddings (resemblyzer).

All offline. silero-vad and resemblyzer ship their weights inside their wheels; faster-whisper
needs a CTranslate2 model directory, found like any other weights (see `whisper_model_path`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from mutoscope.likeness.runtime import LikenessUnavailable, import_with_pkg_resources_shim, require

RATE = 16000
WHISPER_ENV = "MUTOSCOPE_LIKENESS_WHISPER_MODEL"


# Whisper primed with the vocabulary it is about to hear. Unprimed, whisper tiny.en wrote "nine" as "I" and
# "seven" as "Sam" in 13 of 52 synthetic readings, 1 in 52 primed. The prompt names no challenge's digits, so
# it cannot make a wrong reading pass; on silence it may invent digits, which fail `speech_present` anyway.
DIGITS_PROMPT = "Digits read one by one: one, two, three, four, five, six, seven, eight, nine, zero."


def to_mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """(channels, n) or (n,) float audio at any rate -> (n,) float32 mono at 16 kHz (PyAV's swresample)."""
    import av

    audio = np.asarray(audio, np.float32)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if rate == RATE:
        return np.ascontiguousarray(mono)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=RATE)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono[None, :]), format="fltp", layout="mono")
    frame.sample_rate = rate
    parts = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def whisper_model_path(explicit: str | os.PathLike[str] | None = None,
                       weights_dir: Path | None = None) -> Path:
    """The faster-whisper model directory: explicit, then $MUTOSCOPE_LIKENESS_WHISPER_MODEL, then
    `<weights>/faster-whisper` (a CTranslate2 conversion, e.g. Systran/faster-whisper-small.en)."""
    candidates = [explicit, os.environ.get(WHISPER_ENV)]
    if weights_dir is not None:
        candidates.append(weights_dir / "faster-whisper")
    for c in candidates:
        if c and (Path(c) / "model.bin").is_file():
            return Path(c)
    raise LikenessUnavailable(
        "Cameo verification needs a speech-to-text model and none is installed. Put a faster-whisper "
        f"(CTranslate2) model directory at <weights dir>/faster-whisper or set {WHISPER_ENV} to one.")


class SpeechAnalyzer:
    """Args:
        whisper_model: a faster-whisper model directory (see `whisper_model_path`).
        cpu_threads: threads for speech-to-text; small by default, verification shares the machine.
    """

    def __init__(self, whisper_model: str | os.PathLike[str], cpu_threads: int = 2):
        self._whisper_path = str(whisper_model)
        self._threads = cpu_threads
        self._lock = threading.Lock()
        self._vad = self._whisper = self._speaker = None

    # Models, loaded on first use.
    def _vad_model(self):
        if self._vad is None:
            torch = require("torch", "torch")
            threads = torch.get_num_threads()
            silero = require("silero_vad", "silero-vad")
            self._vad = (silero, silero.load_silero_vad(onnx=False))
            # importing silero_vad calls torch.set_num_threads(1) for the whole process; the
            # video engine in the same process must keep its threads.
            torch.set_num_threads(threads)
        return self._vad

    def _whisper_model(self):
        if self._whisper is None:
            fw = require("faster_whisper", "faster-whisper")
            self._whisper = fw.WhisperModel(self._whisper_path, device="cpu", compute_type="int8",
                                            cpu_threads=self._threads, local_files_only=True)
        return self._whisper

    def _speaker_model(self):
        if self._speaker is None:
            resemblyzer = import_with_pkg_resources_shim("resemblyzer", "resemblyzer")
            self._speaker = (resemblyzer, resemblyzer.VoiceEncoder(device="cpu", verbose=False))
        return self._speaker

    # Analysis.
    def speech_segments(self, wav: np.ndarray) -> list[tuple[int, int]]:
        """(start, end) sample ranges of speech in 16 kHz mono audio."""
        if len(wav) < RATE // 10:
            return []
        torch = require("torch", "torch")
        with self._lock:
            silero, model = self._vad_model()
            stamps = silero.get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(wav)), model,
                                                  sampling_rate=RATE)
        return [(int(s["start"]), int(s["end"])) for s in stamps]

    def transcribe(self, wav: np.ndarray) -> str:
        with self._lock:
            model = self._whisper_model()
            segments, _ = model.transcribe(wav, language="en", beam_size=1, temperature=0.0,
                                           condition_on_previous_text=False, without_timestamps=True,
                                           vad_filter=False, initial_prompt=DIGITS_PROMPT)
            return " ".join(s.text.strip() for s in segments).strip()

    def speaker_embedding(self, wav: np.ndarray) -> np.ndarray:
        with self._lock:
            resemblyzer, encoder = self._speaker_model()
            wav = resemblyzer.audio.normalize_volume(wav, -30, increase_only=True)
            return np.asarray(encoder.embed_utterance(wav.astype(np.float32)), np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom else 0.0


_shared: dict[str, SpeechAnalyzer] = {}
_shared_lock = threading.Lock()


def shared_analyzer(whisper_model: str | os.PathLike[str]) -> SpeechAnalyzer:
    with _shared_lock:
        key = str(whisper_model)
        if key not in _shared:
            _shared[key] = SpeechAnalyzer(key)
        return _shared[key]
