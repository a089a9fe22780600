"""Verify a cameo clip against its challenge, offline. Every requirement is a named, scored check.

What passing proves: the clip shows one live-looking person, the same face throughout, who
turned their head in the order asked and read the digits asked, in one consistent voice,
after the challenge was issued. It is the same person as in later checks against the stored
embeddings, not a legal identity, and it does not stop a real-time face swap (docs/likeness.md).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mutoscope.likeness.challenge import Challenge
from mutoscope.likeness.digits import digits_in, similarity
from mutoscope.likeness.face import SAME_PERSON_DISTANCE, Face, FaceAnalyzer, crop, distance
from mutoscope.likeness.report import CheckResult, VerificationReport
from mutoscope.likeness.voice import RATE, SpeechAnalyzer, cosine, to_mono_16k

MIN_SECONDS, MAX_SECONDS = 2.5, 12.0


@dataclass(frozen=True)
class Thresholds:
    """Pass marks. Defaults are calibrated on the synthetic clips in tests/likeness and dlib's
    published 0.6 same-person distance; an operator may tighten them."""

    sample_fps: float = 4.0
    max_samples: int = 48
    max_side: int = 480  # frames are downscaled to this shorter side before detection
    min_single_face_share: float = 0.6
    same_person_distance: float = SAME_PERSON_DISTANCE
    min_motion: float = 0.01  # landmark spread, in eye distances
    turn_yaw: float = 0.08  # nose offset from the clip's resting pose, in eye distances
    min_speech_s: float = 0.6
    min_voice_similarity: float = 0.7


Source = str | os.PathLike[str] | BinaryIO


def sample_frames(source: Source, fps: float, max_samples: int, max_side: int) -> Iterator[tuple[float, np.ndarray]]:
    """Decode only the frames we look at, downscaled: (time in s, (H, W, 3) uint8).

    media/read_frames keeps every frame as RGB, which for a 10 s 1080p phone clip is ~2 GB;
    this belongs in media/ as a sampled reader once it is needed elsewhere.
    """
    import av

    with av.open(source if not isinstance(source, os.PathLike) else os.fspath(source)) as c:
        if not c.streams.video:
            return
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        next_t, taken = 0.0, 0
        for frame in c.decode(v):
            t = float(frame.time) if frame.time is not None else taken / fps
            if t + 1e-6 < next_t:
                continue
            w, h = frame.width, frame.height
            scale = min(1.0, max_side / min(w, h))
            sw, sh = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
            yield t, frame.to_ndarray(format="rgb24", width=sw, height=sh)
            taken += 1
            next_t = t + 1.0 / fps
            if taken >= max_samples:
                return


def _turn_label(dev: float, threshold: float) -> str | None:
    # Nose toward the image's right is the person's left in an unmirrored recording.
    if dev > threshold:
        return "left"
    if dev < -threshold:
        return "right"
    return None


def _ordered_turns(yaws: list[float], threshold: float) -> tuple[list[str], float]:
    if not yaws:
        return [], 0.0
    rest = float(np.median(yaws))
    labels = [_turn_label(y - rest, threshold) for y in yaws]
    seq = [k for k, _ in itertools.groupby(x for x in labels if x)]
    return seq, float(max(abs(y - rest) for y in yaws))


def _edit_similarity(want: list[str], got: list[str]) -> float:
    letters = {"left": "L", "right": "R"}
    return similarity("".join(letters[x] for x in want), "".join(letters[x] for x in got))


def face_checks(samples: list[tuple[float, np.ndarray]], faces: list[list[Face]], challenge: Challenge,
                th: Thresholds) -> tuple[list[CheckResult], list[Face], list[int]]:
    n = len(samples)
    counts = [len(f) for f in faces]
    multi = sum(c >= 2 for c in counts)
    singles = [i for i, c in enumerate(counts) if c == 1]
    share = len(singles) / n if n else 0.0
    ok = n > 0 and multi == 0 and share >= th.min_single_face_share
    if multi:
        redo = f"Record alone: {multi} of {n} sampled frames show more than one face."
    elif not ok:
        redo = "Keep your whole face in view and well lit for the whole clip."
    else:
        redo = ""
    checks = [CheckResult("one_face", ok, share, th.min_single_face_share,
                          detail=f"{len(singles)} of {n} sampled frames show exactly one face, {multi} show more.",
                          redo=redo)]

    solo = [faces[i][0] for i in singles]
    embs = [f.embedding for f in solo if f.embedding is not None]
    if len(embs) >= 2:
        worst = max(distance(a, b) for a, b in itertools.combinations(embs, 2))
    else:
        worst = float("inf")
    ok = len(embs) >= 3 and worst < th.same_person_distance
    checks.append(CheckResult(
        "same_identity", ok, worst if np.isfinite(worst) else 99.0, th.same_person_distance, higher_is_better=False,
        detail=f"largest identity distance between {len(embs)} sampled faces: {worst:.3f}" if embs
        else "no face to compare",
        redo="" if ok else "The face must be the same person, alone, in every part of the clip."))

    if solo:
        # Both the face's shape (turns, expressions) and its place in the frame: a clip made from
        # one still picture has neither, though its compression noise jitters a landmark a little.
        eye = float(np.mean([max(f.eye_distance, 1.0) for f in solo]))
        shape = np.stack([(f.landmarks - f.landmarks.mean(axis=0)) / max(f.eye_distance, 1.0) for f in solo])
        centres = np.stack([f.landmarks.mean(axis=0) for f in solo]) / eye
        motion = float(max(shape.std(axis=0).max(), centres.std(axis=0).max()))
    else:
        motion = 0.0
    ok = motion >= th.min_motion
    checks.append(CheckResult("face_motion", ok, motion, th.min_motion,
                              detail=f"face landmarks moved {motion:.3f} eye distances (std) over the clip",
                              redo="" if ok else "Record yourself live: the clip looks like a still picture."))

    seq, peak = _ordered_turns([f.yaw for f in solo], th.turn_yaw)
    want = list(challenge.turns)
    ok = seq == want
    checks.append(CheckResult(
        "head_turns", ok, _edit_similarity(want, seq), 1.0,
        detail=f"asked: {', '.join(want)}; seen: {', '.join(seq) or 'no turn'} (largest turn {peak:.2f})",
        redo="" if ok else f"Turn your head clearly to your {' then your '.join(want)}, once each, coming back to "
                           "face the camera in between."))
    return checks, solo, singles


def voice_checks(audio: tuple[np.ndarray, int] | None, challenge: Challenge, speech: SpeechAnalyzer,
                 th: Thresholds) -> tuple[list[CheckResult], np.ndarray | None]:
    wav = to_mono_16k(*audio) if audio is not None else np.zeros(0, np.float32)
    segments = speech.speech_segments(wav) if len(wav) else []
    spoken = np.concatenate([wav[s:e] for s, e in segments]) if segments else np.zeros(0, np.float32)
    secs = len(spoken) / RATE
    ok = secs >= th.min_speech_s
    checks = [CheckResult("speech_present", ok, secs, th.min_speech_s,
                          detail=f"{secs:.1f} s of speech heard" if audio is not None else "the clip has no sound",
                          redo="" if ok else "Read the digits aloud, clearly, with the microphone on.")]

    if ok:
        heard = digits_in(speech.transcribe(wav))
        score = similarity(challenge.digits, heard)
        ok_digits = heard == challenge.digits
        detail = f"asked for {len(challenge.digits)} digits; heard {len(heard)} digits, {score:.0%} matching"
    else:
        score, ok_digits, detail = 0.0, False, "no speech to transcribe"
    checks.append(CheckResult("spoken_digits", ok_digits, score, 1.0, detail=detail,
                              redo="" if ok_digits else "Read exactly the digits of this challenge, one by one."))

    embedding = None
    if secs >= 2 * 0.5:
        half = len(spoken) // 2
        sim = cosine(speech.speaker_embedding(spoken[:half]), speech.speaker_embedding(spoken[half:]))
        ok_voice = sim >= th.min_voice_similarity
        detail = f"voice similarity between the two halves of the speech: {sim:.2f}"
        if ok_voice:
            embedding = speech.speaker_embedding(spoken)
    else:
        sim, ok_voice, detail = 0.0, False, "too little speech to compare the voice"
    checks.append(CheckResult("voice_consistent", ok_voice, sim, th.min_voice_similarity, detail=detail,
                              redo="" if ok_voice else "Only you should speak, for at least a second or two."))
    return checks, embedding


def verify_clip(source: Source | Path, challenge: Challenge, *, faces: FaceAnalyzer, speech: SpeechAnalyzer,
                thresholds: Thresholds | None = None) -> VerificationReport:
    """Run every check on a clip; never raises for a bad clip (an unreadable one fails every check)."""
    from mutoscope.media import MediaError, probe, read_audio

    th = thresholds or Thresholds()
    try:
        info = probe(source)
        if hasattr(source, "seek"):
            source.seek(0)  # type: ignore[union-attr]
        samples = list(sample_frames(source, th.sample_fps, th.max_samples, th.max_side))
        if hasattr(source, "seek"):
            source.seek(0)  # type: ignore[union-attr]
        audio = read_audio(source)
    except MediaError as e:
        return VerificationReport(checks=[CheckResult("one_face", False, 0.0, 1.0, detail=str(e),
                                                      redo="Upload an MP4, MOV or WebM video with sound.")])
    del info
    found = [faces.faces(frame) for _, frame in samples]
    checks, solo, singles = face_checks(samples, found, challenge, th)
    vchecks, voice_emb = voice_checks(audio, challenge, speech, th)
    report = VerificationReport(checks=checks + vchecks)
    if report.passed:
        rest = float(np.median([f.yaw for f in solo]))
        frontal = [(i, f) for i, f in zip(singles, solo) if abs(f.yaw - rest) <= th.turn_yaw]
        frontal = frontal or list(zip(singles, solo))
        report.face_embedding = np.mean([f.embedding for _, f in frontal], axis=0).astype(float).tolist()
        report.voice_embedding = voice_emb.astype(float).tolist() if voice_emb is not None else None
        picks = [frontal[k] for k in sorted({0, len(frontal) // 2, len(frontal) - 1})]
        report.reference_frames = [crop(samples[i][1], f) for i, f in picks]
    return report


def clip_duration_ok(seconds: float) -> bool:
    return MIN_SECONDS <= seconds <= MAX_SECONDS
