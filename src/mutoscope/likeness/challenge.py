"""Challenges: what a person must say and do in their cameo clip.

Three random digits read aloud and a head-turn order. A challenge is single-use and
short-lived, so a clip recorded for one challenge (or an old video of the person)
does not pass another.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

TURNS = ("left", "right")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DEFAULT_TTL_S = 600


@dataclass(frozen=True)
class Challenge:
    """Args:
        digits: the digits to read aloud, e.g. "371".
        turns: head turns in order, in the person's own frame ("left" = their left).
    """

    digits: str
    turns: tuple[str, ...] = field(default=("left", "right"))

    def __post_init__(self):
        if not self.digits.isdigit():
            raise ValueError("digits must be 0-9 only")
        bad = [t for t in self.turns if t not in TURNS]
        if bad or not self.turns:
            raise ValueError(f"turns must be a non-empty sequence of {TURNS}")

    @property
    def instructions(self) -> str:
        said = ", ".join(DIGIT_WORDS[int(d)] for d in self.digits)
        turned = ", then ".join(f"your {t}" for t in self.turns)
        return (f"Record 3 to 10 seconds, alone, facing the camera in good light. Say \"{said}\" aloud, "
                f"then turn your head to {turned}, coming back to face the camera after each turn.")


def new_challenge(n_digits: int = 3, n_turns: int = 2) -> Challenge:
    digits = "".join(str(secrets.randbelow(10)) for _ in range(n_digits))
    # Alternate directions: "left, left" is one long turn on camera, not two.
    first = secrets.choice(TURNS)
    turns = tuple(TURNS[(TURNS.index(first) + i) % 2] for i in range(n_turns))
    return Challenge(digits=digits, turns=turns)
