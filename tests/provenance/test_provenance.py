"""Provenance on real files: C2PA signing and reading, the invisible and visible watermarks.

One 720p clip is made and signed per module: 720p because that is what the
watermark must survive at, 12 frames because the vote needs a few and the
machine is shared.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from mutoscope.media import encode_mp4, read_frames
from mutoscope.provenance import Stamp, generated_by, mark_frames, sign_video, verify, visible, watermark
from mutoscope.provenance.manifest import read_manifest

VIDEO_ID = "video_0123456789abcdef01234567"
W, H, T = 720, 1280, 12


def scene(t: int = T, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Moving colour gradients with grain: enough texture for the encoder to work on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        rgb = np.stack([127 + 100 * np.sin(xx / 90 + i / 5), 127 + 100 * np.cos(yy / 70 - i / 7),
                        127 + 80 * np.sin((xx + yy) / 150 + i / 3)], -1)
        out[i] = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    return out


def reencode(src, dst, *, crf: int, size: tuple[int, int] | None = None):
    frames = read_frames(src)
    if size is not None:
        frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in frames])
    encode_mp4(dst, frames, 24, crf=crf)
    return dst


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("prov-data")


@pytest.fixture(scope="module")
def signed(tmp_path_factory, data_dir):
    """A marked clip encoded at our default quality, then signed."""
    path = tmp_path_factory.mktemp("prov") / "clip.mp4"
    stamp = Stamp(data_dir=data_dir, video_id=VIDEO_ID, model="sora-2", generator_version="0.1.0",
                  generated_by=generated_by({"model": "tiny-ltx2", "weights": "builtin:tiny-ltx2",
                                             "revision": "0123abc", "steps": 2}))
    encode_mp4(path, mark_frames(scene(), VIDEO_ID), 24)
    sign_video(path, stamp)
    return path


def test_signed_file_is_trusted_here_and_valid_elsewhere(signed, data_dir):
    here = verify(signed, data_dir)
    assert here.c2pa.state == "trusted", here.c2pa.failures
    # The name it was asked by, and the model and checkpoint behind it that made it.
    assert here.c2pa.video_id == VIDEO_ID and here.c2pa.model == "sora-2"
    assert here.c2pa.generated_by == {"name": "tiny-ltx2", "weights": "builtin:tiny-ltx2", "revision": "0123abc"}
    assert here.c2pa.digital_source_type.endswith("/trainedAlgorithmicMedia")
    assert here.c2pa.generator == "Mutoscope 0.1.0" and here.c2pa.created_at
    assert here.watermark.video_id == VIDEO_ID and here.video_id == VIDEO_ID
    # Without our CA among the anchors the signature still checks out, it just isn't trusted.
    assert read_manifest(signed, None).state == "valid"


def test_keys_are_private(signed, data_dir):
    folder = data_dir / "provenance"
    for name in ("signer.key", "ca.key"):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600


@pytest.mark.parametrize("where", [0.5, 0.9])
def test_one_changed_byte_is_tampered(signed, tmp_path, data_dir, where):
    data = bytearray(signed.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    assert verify(bad, data_dir).c2pa.state == "tampered"


def test_watermark_survives_lower_quality_reencode(signed, tmp_path):
    found = watermark.detect(read_frames(reencode(signed, tmp_path / "crf28.mp4", crf=28)))
    assert found.video_id == VIDEO_ID, found


def test_watermark_survives_downscale_to_480p(signed, tmp_path):
    small = reencode(signed, tmp_path / "480p.mp4", crf=23, size=(480, 854))
    result = verify(small)
    # Re-encoding dropped the manifest; the pixels still say which video this is.
    assert result.c2pa.state == "absent"
    assert result.watermark.video_id == VIDEO_ID and result.video_id == VIDEO_ID


def test_file_from_elsewhere_is_absent_and_unmarked(tmp_path, data_dir):
    plain = tmp_path / "plain.mp4"
    encode_mp4(plain, scene(t=6, seed=1), 24)
    result = verify(plain, data_dir)
    assert result.c2pa.state == "absent" and result.watermark.video_id is None and result.video_id is None


def test_not_a_video_is_absent_not_an_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    result = verify(junk)
    assert result.c2pa.state == "absent" and result.watermark.video_id is None


def test_visible_mark_only_when_requested():
    frames = scene(t=2, h=256, w=448)
    plain = mark_frames(frames.copy(), None)
    marked = mark_frames(frames.copy(), None, "@ada")
    assert np.array_equal(plain, frames)  # no id, no handle: untouched
    _, alpha, (x, y) = visible.overlay(448, 256, "@ada")
    changed = np.abs(marked.astype(int) - frames).sum(-1) > 0
    assert changed[:, y:y + alpha.shape[0], x:x + alpha.shape[1]].mean() > 0.05
    outside = changed.copy()
    outside[:, y:y + alpha.shape[0], x:x + alpha.shape[1]] = False
    assert not outside.any()  # bottom-right corner only


def test_invisible_mark_is_quiet():
    frames = scene(t=1)
    marked = watermark.embed(frames.copy(), VIDEO_ID)
    mse = np.mean((marked.astype(float) - frames) ** 2)
    assert 10 * np.log10(255**2 / mse) > 38  # PSNR: well below what anyone notices in a moving clip


def test_payload_check_rejects_noise():
    rng = np.random.default_rng(3)
    assert all(watermark.bits_to_id(rng.integers(0, 2, watermark.BITS)) is None for _ in range(200))
