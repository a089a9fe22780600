"""likeness/: cameos — consent-gated use of a real person's face and voice.

PUT HERE:
- Verification of a cameo clip against a challenge (`verify.py`): exactly one face,
  the same identity throughout, the head turns in the asked order, speech present,
  the spoken digits match, the voice is consistent. Each check returns a named score.
- The offline analyzers it uses (`face.py`: dlib; `voice.py`: silero-vad, faster-whisper,
  resemblyzer), loaded lazily from files that ship inside their packages. dlib and its models are
  core dependencies; the voice analyzers are the optional `likeness` extra. `LikenessUnavailable`
  says how to install what is missing.
- The likeness guard (`guard.py`): faces in input images, uploaded edit videos and results must
  match a cameo the requester may use (`likeness_not_permitted`, `likeness_blocked`); when faces
  cannot be looked for it refuses (`likeness_guard_unavailable`) unless the operator turned it off.
- Characters (`characters.py`, OpenAI's `/v1/videos/characters`): a faceless clip, or one showing
  the creator's own cameo, which then binds the character to that cameo's consent.
- Challenges (`challenge.py`), prompt/body mention parsing and the consent rules
  (`consent.py`), the hash-chained audit log (`audit.py`), the cameo records over the
  database (`records.py`), and `CameoService` (`service.py`): the cameo and character use
  cases that `/v1` and the web pages both call, shaping wire objects from `protocol/`.

DO NOT PUT HERE:
- HTTP (fastapi), reading request bodies (the front ends do), wire type definitions
  (`protocol/cameos.py`).
- The video job's state machine: `jobs/generation.py` calls `consent.recheck_video()` at start
  and before publishing (with `guard.check_frames()`), and fails the job with the code returned.
- Biometrics in logs or in the audit chain: it holds ids and hashes only.

This package's import is light: numpy, dlib, torch and friends load on first use.
"""

from mutoscope.likeness.challenge import Challenge, new_challenge
from mutoscope.likeness.report import CheckResult, VerificationReport
from mutoscope.likeness.runtime import LikenessUnavailable

__all__ = ["Challenge", "CheckResult", "LikenessUnavailable", "VerificationReport", "new_challenge"]
