"""In-process fixtures for the exports room: a real SQLite database and a real local store in tmp_path.

The videos here are rows and files put in place directly (no engine), so the format, the writer's
checkpoints and every bad-archive case run in milliseconds; test_live.py does the same against live servers.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mutoscope.accounts.service import create_user
from mutoscope.videos.objects import to_video_object
from mutoscope.db.migrate import upgrade
from mutoscope.db.models import Video, new_id
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.engine.registry import load_registry
from mutoscope.exports.queue import ExportQueue
from mutoscope.storage.keys import input_key, shot_input_key, variant_key
from mutoscope.storage import LocalStorage
from tests.conftest import TEST_ALIASES

def png(seed: int = 0, size: tuple[int, int] = (16, 9)) -> bytes:
    """A small real PNG: the importer decodes every image an archive brings."""
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        out, format="PNG")
    return out.getvalue()


# The catalog a test server has (the shipped models file with the test aliases): imported records are
# checked against it. Reading it loads no weights.
CATALOG = load_registry(None, TEST_ALIASES)


@dataclass
class Site:
    """One server's data folder, without the server."""

    root: Path
    sessions: object
    storage: LocalStorage
    owner_id: str

    def jobs(self, **kw) -> ExportQueue:
        return ExportQueue(self.sessions, self.storage, to_video_object, exporter="mutoscope test", **kw)

    def add_video(self, *, prompt: str = "a cat", remix_of: str | None = None, status: str = "completed",
                  video_id: str | None = None, with_input: bool = False, owner_id: str | None = None) -> str:
        vid = video_id or new_id("video_")
        with self.sessions() as s:
            s.add(Video(id=vid, owner_id=owner_id or self.owner_id, kind="remix" if remix_of else "generate",
                        model="sora-2", status=status, progress=100 if status == "completed" else 0,
                        prompt=prompt, size="720x1280", seconds="4",
                        params={"seed": 7, "num_inference_steps": 2, "guidance_scale": None, "negative_prompt": None},
                        resolved={"model": "tiny-ltx2", "revision": "abc123", "seed": 7, "steps": 2}
                        if status == "completed" else None,
                        input_key=input_key(vid) if with_input else None, remixed_from_video_id=remix_of,
                        error_code="cancelled" if status == "failed" else None,
                        error_message="The job was cancelled." if status == "failed" else None,
                        created_at=1_700_000_000, started_at=1_700_000_001.5 if status == "completed" else None,
                        completed_at=1_700_000_030 if status != "queued" else None))
            s.commit()
        if status == "completed":
            for variant, size in (("video", 3000), ("thumbnail", 200), ("spritesheet", 500)):
                self.storage.put_bytes(variant_key(vid, variant), os.urandom(size))
        if with_input:
            self.storage.put_bytes(input_key(vid), png(len(vid)))
        return vid

    def add_storyboard(self) -> str:
        """A finished three-shot storyboard (4 s + 4 s + 4 s: a cut with its own first frame, then a
        continuous shot), stored as the service stores one (videos/storyboard.py)."""
        vid = new_id("video_")
        shots = [{"prompt": p, "seconds": "4", "frames": 96, "seed": 7 + i, "transition": t, "camera": c,
                  "image_key": shot_input_key(vid, i) if i == 1 else None, "characters": ["char_x"] if i == 2 else []}
                 for i, (p, t, c) in enumerate([("a boat", None, "static"), ("a lighthouse", "cut", "dolly_in"),
                                                 ("the beam sweeps", "continuous", None)])]
        with self.sessions() as s:
            s.add(Video(id=vid, owner_id=self.owner_id, kind="generate", model="sora-2", status="completed",
                        progress=100, prompt="a short film", size="288x512", seconds="12",
                        params={"seed": 7, "num_inference_steps": 2, "storyboard": {"fps": 24.0, "from_shot": 0,
                                                                                    "shots": shots}},
                        resolved={"model": "tiny-ltx2", "seed": 7, "steps": 2}, created_at=1_700_000_000,
                        started_at=1_700_000_001.5, completed_at=1_700_000_030))
            s.commit()
        for variant, size in (("video", 3000), ("thumbnail", 200), ("spritesheet", 500)):
            self.storage.put_bytes(variant_key(vid, variant), os.urandom(size))
        self.storage.put_bytes(shot_input_key(vid, 1), png(1))
        return vid

    def video(self, vid: str) -> Video | None:
        with self.sessions() as s:
            return s.query(Video).filter(Video.id == vid).one_or_none()

    def video_ids(self) -> list[str]:
        with self.sessions() as s:
            return [v for (v,) in s.query(Video.id).order_by(Video.seq)]

    def leftovers(self) -> list[Path]:
        """Anything an import may have left in scratch space."""
        return [p for p in self.storage.scratch_dir().iterdir()]


def make_site(root: Path) -> Site:
    root.mkdir(parents=True)
    url = f"sqlite:///{root / 'db.sqlite'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as s:
        owner = create_user(s, "owner", "owner")
    return Site(root, sessions, LocalStorage(root / "assets"), owner.id)


@pytest.fixture
def site_a(tmp_path) -> Site:
    return make_site(tmp_path / "a")


@pytest.fixture
def site_b(tmp_path) -> Site:
    return make_site(tmp_path / "b")


def export_now(site: Site, **kw) -> Path:
    jobs = site.jobs(**kw)
    e = jobs.create(site.owner_id, claimed=True)
    jobs.run(e.id)
    path = jobs.archive_path(e.id)
    assert path.exists(), "export did not complete"
    return path


def record(vid: str, *, status: str = "completed", kind: str = "generate", model: str = "sora-2",
           size: str = "720x1280", seconds: str = "4", prompt: str = "a cat", params: dict | None = None,
           lineage: dict | None = None, cameo_ids: list | None = None, with_file: bool | None = None
           ) -> tuple[dict, dict[str, bytes]]:
    """One videos.jsonl record as an exporter writes it, and its files (random bytes stand in for media)."""
    with_file = status == "completed" if with_file is None else with_file
    files = {f"videos/{vid}/video.mp4": os.urandom(2000)} if with_file else {}
    rec = {
        "video": {"id": vid, "object": "video", "model": model, "status": status,
                  "progress": 100 if status == "completed" else 0, "created_at": 1_700_000_000,
                  "completed_at": 1_700_000_030 if status == "completed" else None, "expires_at": None,
                  "prompt": prompt, "size": size, "seconds": seconds, "remixed_from_video_id": None, "error": None},
        "mutoscope": {"kind": kind, "params": {"seed": 7, "num_inference_steps": 2, **(params or {})},
                      "resolved": None, "lineage": lineage or {}, "cameo_ids": cameo_ids or [],
                      "input_reference": None, "files": {"video": p for p in files}, "started_at": None,
                      "error": None},
    }
    return rec, files


def jpeg(seed: int = 0, size: tuple[int, int] = (64, 64)) -> bytes:
    """A small real JPEG, as a cameo's reference frame is stored."""
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        out, format="JPEG")
    return out.getvalue()


def wav(seconds: float = 2.0, seed: int = 0) -> bytes:
    """A voice sample as the server keeps one: 16 kHz mono float WAV."""
    import numpy as np

    from mutoscope.media.sound import wav_bytes

    return wav_bytes((np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32),
                     16000)


def cameo_record(cid: str, handle: str, *, references: int = 0, voice: bool = False, **fields
                 ) -> tuple[dict, dict[str, bytes]]:
    """One cameos.jsonl line as an exporter writes it, with its files (real JPEGs and a real WAV)."""
    files = {f"cameos/{cid}/reference-{i}.jpg": jpeg(i) for i in range(references)}
    if voice:
        files[f"cameos/{cid}/voice.wav"] = wav()
    rec = {"id": cid, "object": "cameo", "handle": handle, "status": "active", "policy": "only_me",
           "preferences": None, "blocked_terms": [], "voice_consent": voice, "created_at": 1_700_000_000,
           "verified_at": 1_700_000_010, "grants": [], "uses": [],
           "files": {"references": [p for p in files if p.endswith(".jpg")],
                     "voice": f"cameos/{cid}/voice.wav" if voice else None}, **fields}
    return rec, files


def build_archive(path: Path, *recs: tuple[dict, dict[str, bytes]], manifest: bytes | None = None,
                  jsonl: bytes | None = None, cameos: list[tuple[dict, dict[str, bytes]]] = ()) -> Path:
    """A well-formed archive of the given records (manifest with every checksum) unless told otherwise."""
    entries = {"videos.jsonl": jsonl if jsonl is not None else
               "".join(json.dumps(r) + "\n" for r, _ in recs).encode(),
               "cameos.jsonl": "".join(json.dumps(c) + "\n" for c, _ in cameos).encode()}
    for _, files in [*recs, *cameos]:
        entries.update(files)
    if manifest is None:
        manifest = json.dumps({"format": "mutoscope-export", "format_version": 1, "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in entries.items()}}).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", manifest)
    return path
