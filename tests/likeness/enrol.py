"""Enrol a cameo through a live server's real verification (challenge, clip, verification job)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import wait_for
from tests.likeness.clips import build_clip


def enrol(h: httpx.Client, clip_dir: Path, handle: str, attempts: int = 2) -> dict:
    """The verified cameo object. A second attempt (new challenge) only when the sole failed check is
    `voice_consistent`: espeak-ng's synthetic voice scores 0.70-0.80 between the halves of some digit
    strings, at the 0.7 pass mark (seen: 0.6956 for "769"); every other check must pass first time."""
    for attempt in range(attempts):
        ch = h.post("/v1/cameos/challenges").json()
        clip = build_clip(clip_dir / f"{handle}-{attempt}.mp4", digits=ch["digits"], turns=tuple(ch["turns"]))
        r = h.post("/v1/cameos", data={"handle": handle if attempt == 0 else f"{handle}{attempt}",
                                       "challenge_id": ch["id"]},
                   files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")})
        assert r.status_code == 200, r.text
        done = wait_for(lambda: (c := h.get(f"/v1/cameos/{r.json()['id']}").json())["status"] != "verifying" and c,
                        timeout=300, interval=1)
        if done["status"] == "active":
            return done
        failed = [c["name"] for c in done["verification"]["checks"] if not c["passed"]]
        if failed != ["voice_consistent"]:
            break
        h.delete(f"/v1/cameos/{done['id']}")
    raise AssertionError(f"cameo verification failed: {done['verification']}")
