"""What verification says: one named, scored check per requirement, each with what to redo."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CHECKS = ("one_face", "same_identity", "face_motion", "head_turns", "speech_present", "spoken_digits",
          "voice_consistent")


@dataclass
class CheckResult:
    """Args:
        name: one of CHECKS.
        passed: whether this requirement is met.
        score: the measured value (see `threshold` and `higher_is_better` for how it is judged).
        threshold: the pass mark.
        detail: what was measured, in words a person can act on (never biometrics).
        redo: what to do differently next time; empty when passed.
    """

    name: str
    passed: bool
    score: float
    threshold: float
    higher_is_better: bool = True
    detail: str = ""
    redo: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(d["score"]), 4)
        return d


@dataclass
class VerificationReport:
    checks: list[CheckResult]
    # Kept on success only, then stored by the service; never logged.
    face_embedding: list[float] | None = None
    voice_embedding: list[float] | None = None
    reference_frames: list[Any] = field(default_factory=list, repr=False)  # (H, W, 3) uint8 face crops

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def summary(self) -> str:
        if self.passed:
            return "All checks passed."
        return " ".join(c.redo for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.as_dict() for c in self.checks]}
