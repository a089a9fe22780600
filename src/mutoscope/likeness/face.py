"""Faces with dlib: detection (HOG, built into dlib), 5-point landmarks, 128-d identity embeddings.

Model files come from the `face_recognition_models` package, loaded by path. We use the
5-point landmark model (CC0) and never the 68-point one, whose training data (iBUG 300-W)
forbids commercial use. The HOG detector is compiled into dlib and needs no file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from mutoscope.likeness.runtime import model_file, require

_MODELS_PKG = ("face_recognition_models", "face-recognition-models")
# dlib's own guidance for dlib_face_recognition_resnet_model_v1: same person below 0.6.
SAME_PERSON_DISTANCE = 0.6


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom
    landmarks: np.ndarray  # (5, 2) float: two corners of each eye, then the base of the nose
    embedding: np.ndarray | None  # (128,) float32
    score: float | None = None  # the HOG detector's confidence (set by FaceAnalyzer.scan)

    @property
    def eye_distance(self) -> float:
        left, right = self.eye_centers
        return float(np.linalg.norm(right - left))

    @property
    def eye_centers(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.landmarks[0:2].mean(axis=0), self.landmarks[2:4].mean(axis=0)
        return (a, b) if a[0] <= b[0] else (b, a)  # image-left eye first

    @property
    def yaw(self) -> float:
        """Where the nose sits between the eyes, along the eye line, in eye distances.

        0 facing the camera; positive when the nose moves to the image's right, i.e. the
        person turned to *their* left in an unmirrored recording. Measured along the eye
        axis, so a tilted (rolled) head does not read as a turn.
        """
        left, right = self.eye_centers
        axis = right - left
        d = float(np.linalg.norm(axis))
        if d == 0:
            return 0.0
        nose = self.landmarks[4]
        return float(np.dot(nose - (left + right) / 2, axis / d) / d)


_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
_ENCODER = "dlib_face_recognition_resnet_model_v1.dat"


def check_available() -> None:
    """Raise LikenessUnavailable unless dlib imports and both model files are on disk (cheap: loads neither)."""
    require("dlib", "dlib-bin")
    model_file(*_MODELS_PKG, "models", _LANDMARKS)
    model_file(*_MODELS_PKG, "models", _ENCODER)


class FaceAnalyzer:
    """Loads dlib's models once (thread-safe); `faces(frame)` returns every face in an RGB frame."""

    def __init__(self, upsample: int = 0):
        dlib = require("dlib", "dlib-bin")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(
            str(model_file(*_MODELS_PKG, "models", _LANDMARKS)))
        self._encoder = dlib.face_recognition_model_v1(
            str(model_file(*_MODELS_PKG, "models", _ENCODER)))
        self._upsample = upsample
        # dlib's objects are not documented as thread-safe; verification runs one clip at a time.
        self._lock = threading.Lock()

    def faces(self, frame: np.ndarray, embed: bool = True) -> list[Face]:
        img = np.ascontiguousarray(frame, dtype=np.uint8)
        upsample = self._upsample if min(img.shape[:2]) >= 240 else max(1, self._upsample)
        out = []
        with self._lock:
            for rect in self._detector(img, upsample):
                shape = self._landmarks(img, rect)
                pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)
                emb = np.asarray(self._encoder.compute_face_descriptor(img, shape), np.float32) if embed else None
                out.append(Face(box=(rect.left(), rect.top(), rect.right(), rect.bottom()), landmarks=pts,
                                embedding=emb))
        return out

    def scan(self, frame: np.ndarray, upsample: int = 1) -> list[Face]:
        """Every face with its detector score and embedding; for the likeness guard (downscale first)."""
        img = np.ascontiguousarray(frame, dtype=np.uint8)
        out = []
        with self._lock:
            rects, scores, _ = self._detector.run(img, upsample, 0.0)
            for rect, score in zip(rects, scores):
                shape = self._landmarks(img, rect)
                pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)
                emb = np.asarray(self._encoder.compute_face_descriptor(img, shape), np.float32)
                out.append(Face(box=(rect.left(), rect.top(), rect.right(), rect.bottom()), landmarks=pts,
                                embedding=emb, score=float(score)))
        return out


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def crop(frame: np.ndarray, face: Face, margin: float = 0.35) -> np.ndarray:
    l, t, r, b = face.box
    mw, mh = int((r - l) * margin), int((b - t) * margin)
    h, w = frame.shape[:2]
    return np.ascontiguousarray(frame[max(0, t - mh):min(h, b + mh), max(0, l - mw):min(w, r + mw)])


_shared: FaceAnalyzer | None = None
_shared_lock = threading.Lock()


def shared_analyzer() -> FaceAnalyzer:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceAnalyzer()
        return _shared
