"""Turn a transcript into the digits it says: "Seven, one-four." -> "714"."""

from __future__ import annotations

import re

from mutoscope.likeness.challenge import DIGIT_WORDS

_WORDS = {w: str(i) for i, w in enumerate(DIGIT_WORDS)}
# Speech-to-text writes homophones of digits when there is no context; in a reading of
# digits these are the digits. ("oh" is how many people say 0.)
_WORDS.update({"oh": "0", "o": "0", "won": "1", "to": "2", "too": "2", "tu": "2", "for": "4", "fore": "4",
               "ate": "8", "sex": "6", "niner": "9", "free": "3", "tree": "3"})
_TOKEN = re.compile(r"[a-z]+|\d")


def digits_in(text: str) -> str:
    """Digits in reading order; numerals are read digit by digit ("714" or "7 1 4")."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok.isdigit():
            out.append(tok)
        elif tok in _WORDS:
            out.append(_WORDS[tok])
    return "".join(out)


def similarity(expected: str, heard: str) -> float:
    """1 - (edit distance / len(expected)), floored at 0: 1.0 is an exact match."""
    if not expected:
        return 1.0 if not heard else 0.0
    prev = list(range(len(heard) + 1))
    for i, a in enumerate(expected, 1):
        cur = [i]
        for j, b in enumerate(heard, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return max(0.0, 1.0 - prev[-1] / len(expected))
