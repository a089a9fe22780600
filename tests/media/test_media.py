"""media/: real encodes on tiny clips (64-160 px, <= 2 s), no fakes.

Each encode takes tens of milliseconds at these sizes, so the whole file runs
in a few seconds on 2 cores.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mutoscope.media import (
    MediaError,
    concat,
    decode_data_url,
    encode_mp4,
    fit_image,
    load_image,
    probe,
    read_audio,
    read_frame,
    read_frames,
    spritesheet_jpeg,
    thumbnail_webp,
)
from mutoscope.media.previews import sprite_indices


def make_frames(t: int = 24, h: int = 96, w: int = 128) -> np.ndarray:
    """Smooth moving gradients: realistic for H.264, unlike noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = 127 + 100 * np.sin((xx + 4 * i) / 20)
        out[i, ..., 1] = 127 + 100 * np.cos((yy - 3 * i) / 17)
        out[i, ..., 2] = 127 + 100 * np.sin((xx + yy + 2 * i) / 30)
    return out


def solid_frames(values: list[int], h: int = 32, w: int = 48) -> np.ndarray:
    """Frame i is a flat grey of values[i]: lets tests see which frame went where."""
    return np.stack([np.full((h, w, 3), v, np.uint8) for v in values])


def make_audio(seconds: float, sr: int, channels: int = 2, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    # Bursts, not a steady tone, so a time shift would show up in the correlation.
    env = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    mono = (0.4 * env * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([mono] * channels)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()



@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    frames = make_frames(t=36, h=96, w=160)
    audio = make_audio(1.5, 48000)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    encode_mp4(path, frames, 24, audio, 48000)
    return path, frames, audio


def test_encode_then_probe(clip):
    path, frames, _ = clip
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (160, 96)
    assert info.fps == 24.0
    assert info.frame_count == 36
    assert info.duration == pytest.approx(36 / 24, abs=1 / 24)
    assert info.audio_sample_rate == 48000
    assert info.audio_channels == 2
    assert info.audio_duration == pytest.approx(36 / 24, abs=1e-3)


def test_h264_is_browser_playable(clip):
    path, _, _ = clip
    data = path.read_bytes()
    # faststart: moov before mdat, so playback can start before the download ends.
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    with av.open(str(path)) as c:
        v = c.streams.video[0].codec_context
        assert v.pix_fmt == "yuv420p"
        assert v.colorspace == 1  # tagged BT.709, matching the conversion used


def test_read_frames_round_trip(clip):
    path, frames, _ = clip
    back = read_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    diff = back.astype(np.int16) - frames
    assert np.abs(diff).mean() < 3  # crf 18 on smooth content
    # No systematic colour drift (matters when extensions chain clips).
    assert np.abs(diff.reshape(-1, 3).mean(axis=0)).max() < 0.75

    tail = read_frames(path, last_n=4)
    assert np.array_equal(tail, back[-4:])
    assert np.array_equal(read_frame(path, 35), back[35])
    with pytest.raises(MediaError):
        read_frame(path, 36)


def test_read_audio_round_trip(clip):
    path, _, audio = clip
    result = read_audio(path)
    assert result is not None
    back, sr = result
    assert sr == 48000 and back.dtype == np.float32
    assert back.shape == audio.shape  # priming dropped and tail padding trimmed
    # Aligned: the best correlation lag is 0 samples (AAC priming hidden by the edit list).
    a, b = audio[0, 2000:-2000], back[0]
    lags = range(-40, 41)
    best = max(lags, key=lambda k: float(np.dot(a, b[2000 + k : 2000 + k + len(a)])))
    assert best == 0
    assert np.abs(back - audio).mean() < 0.02


def test_audio_is_trimmed_and_padded_to_video_length(tmp_path):
    frames = make_frames(t=12, h=32, w=32)  # 0.5 s at 24 fps
    for seconds in (0.2, 0.9):
        path = tmp_path / f"a{seconds}.mp4"
        encode_mp4(path, frames, 24, make_audio(seconds, 16000, channels=1), 16000)
        info = probe(path)
        assert info.audio_duration == pytest.approx(0.5, abs=1e-3)
        assert info.audio_channels == 1
        back, sr = read_audio(path)
        assert back.shape == (1, 8000) and sr == 16000


def test_encode_without_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    encode_mp4(path, make_frames(t=10, h=32, w=64), 24, None, None)
    info = probe(path)
    assert info.audio_codec is None and info.audio_duration is None
    assert read_audio(path) is None


def test_ntsc_rate_and_odd_sample_rate(tmp_path):
    path = tmp_path / "ntsc.mp4"
    # 22000 Hz is not an AAC rate: resampled to 48 kHz rather than failing.
    encode_mp4(path, make_frames(t=30, h=32, w=32), 30000 / 1001, make_audio(1.0, 22000), 22000)
    info = probe(path)
    assert Fraction(info.fps).limit_denominator(1001) == Fraction(30000, 1001)
    assert info.frame_count == 30
    assert info.audio_sample_rate == 48000
    assert info.audio_duration == pytest.approx(30 * 1001 / 30000, abs=1e-3)


def test_encode_to_file_object():
    buf = io.BytesIO()
    encode_mp4(buf, make_frames(t=6, h=32, w=32), 24)
    data = buf.getvalue()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    buf.seek(0)
    assert probe(buf).frame_count == 6


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((4, 33, 32, 3), np.uint8), "even"),
        (np.zeros((4, 32, 31, 3), np.uint8), "even"),
        (np.zeros((4, 32, 32), np.uint8), "shape"),
        (np.zeros((4, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((0, 32, 32, 3), np.uint8), "empty"),
    ],
)
def test_encode_rejects_bad_frames(tmp_path, frames, message):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=message):
        encode_mp4(path, frames, 24)
    assert list(tmp_path.iterdir()) == []


def test_audio_needs_sample_rate(tmp_path):
    with pytest.raises(MediaError, match="sample_rate"):
        encode_mp4(tmp_path / "x.mp4", make_frames(t=2, h=16, w=16), 24, make_audio(0.1, 16000), None)


def test_atomic_write(tmp_path, monkeypatch):
    path = tmp_path / "video.mp4"
    encode_mp4(path, make_frames(t=4, h=32, w=32), 24)
    before = path.read_bytes()

    calls = 0
    real = av.VideoFrame.from_numpy_buffer

    def flaky(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:  # fail mid-encode, after the file was opened and written to
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_numpy_buffer", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        encode_mp4(path, make_frames(t=8, h=32, w=32), 24)
    # The old file is untouched and no temp file is left behind.
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]

    fresh = tmp_path / "fresh.mp4"
    calls = 0
    with pytest.raises(RuntimeError):
        encode_mp4(fresh, make_frames(t=8, h=32, w=32), 24)
    assert not fresh.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_probe_rejects_non_video(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError, match="not a readable video") as exc:
        probe(junk)
    assert str(tmp_path) not in str(exc.value)



def test_thumbnail_webp_middle_frame_and_aspect(clip):
    frames = solid_frames([10, 20, 200, 30, 40], h=160, w=90)  # portrait, like 720x1280
    data = thumbnail_webp(frames, max_side=64)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    img = Image.open(io.BytesIO(data))
    assert img.format == "WEBP" and img.size == (36, 64)
    assert abs(int(np.asarray(img.convert("L")).mean()) - 200) <= 3  # frames[5 // 2]

    # From a file: same policy, decoding only up to the middle frame.
    path, clip_frames, _ = clip
    img = Image.open(io.BytesIO(thumbnail_webp(path, max_side=80)))
    assert img.size == (80, 48)
    # Never upscales.
    assert Image.open(io.BytesIO(thumbnail_webp(clip_frames, max_side=4000))).size == (160, 96)


def test_spritesheet_grid(clip):
    frames = solid_frames(list(range(0, 250, 5)), h=96, w=160)  # 50 frames
    data = spritesheet_jpeg(frames, columns=5, count=25, tile_width=40)
    assert data[:3] == b"\xff\xd8\xff"
    sheet = Image.open(io.BytesIO(data))
    assert sheet.format == "JPEG"
    assert sheet.size == (5 * 40, 5 * 24)  # tile height follows the clip's aspect
    picks = sprite_indices(50, 25)
    assert picks[0] == 1 and picks[-1] == 49 and len(set(picks)) == 25
    grey = np.asarray(sheet.convert("L")).astype(int)
    for n, idx in enumerate(picks):
        cx, cy = (n % 5) * 40 + 20, (n // 5) * 24 + 12
        assert abs(grey[cy, cx] - frames[idx, 0, 0, 0]) <= 4

    # Fewer frames than cells: each frame once, the last row partly empty.
    short = spritesheet_jpeg(solid_frames([50] * 7, h=96, w=160), columns=5, count=25, tile_width=40)
    assert Image.open(io.BytesIO(short)).size == (5 * 40, 2 * 24)

    # Defaults: 5x5 grid of 160 px tiles.
    _, clip_frames, _ = clip
    assert Image.open(io.BytesIO(spritesheet_jpeg(clip_frames))).size == (800, 5 * 96)



def three_bands(w: int, h: int) -> Image.Image:
    """Left third red, middle green, right third blue."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 3, 0] = 255
    arr[:, w // 3 : 2 * w // 3, 1] = 255
    arr[:, 2 * w // 3 :, 2] = 255
    return Image.fromarray(arr)


def test_fit_image_covers_and_centre_crops():
    out = fit_image(three_bands(300, 100), 100, 100)
    assert out.size == (100, 100) and out.mode == "RGB"
    arr = np.asarray(out)
    # Only the green middle survives a square centre crop of a 3:1 image.
    assert (arr[:, 5:95, 1] > 200).all() and (arr[:, 5:95, 0] < 50).all()

    # Upscaling a small image to cover a larger portrait target.
    tall = fit_image(three_bands(30, 10), 90, 160)
    assert tall.size == (90, 160)
    assert (np.asarray(tall)[:, 10:80, 1] > 200).all()

    # Portrait source into landscape target: crops top and bottom equally.
    arr = np.zeros((300, 100, 3), np.uint8)
    arr[:100, :, 0] = 255
    arr[100:200, :, 1] = 255
    arr[200:, :, 2] = 255
    wide = np.asarray(fit_image(Image.fromarray(arr), 160, 90))
    assert wide.shape == (90, 160, 3)
    assert (wide[5:85, :, 1] > 200).all()

    assert fit_image(Image.new("RGBA", (10, 10)), 8, 6).mode == "RGB"


def test_load_image_good_inputs():
    img = load_image(png_bytes(three_bands(60, 30)))
    assert img.size == (60, 30) and img.mode == "RGB"

    # Transparent pixels become white, not black.
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(png_bytes(rgba)).getpixel((0, 0)) == (255, 255, 255)

    # JPEG with EXIF orientation 6 (rotate 90 deg): comes back upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (20, 40)

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buf, format="WEBP")
    assert load_image(buf.getvalue()).size == (8, 8)


def test_load_image_rejects_garbage():
    with pytest.raises(MediaError, match="not a decodable image"):
        load_image(b"hello, this is not an image")
    with pytest.raises(MediaError, match="empty"):
        load_image(b"")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="BMP")  # decodable, but not an accepted format
    with pytest.raises(MediaError, match="png, jpeg, webp"):
        load_image(buf.getvalue())


def test_load_image_rejects_truncated_and_corrupt():
    rng = np.random.default_rng(0)
    data = png_bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    for cut in (len(data) // 2, len(data) - 20):
        with pytest.raises(MediaError, match="corrupt or truncated"):
            load_image(data[:cut])
    # Cut inside the header: Pillow cannot even identify it.
    with pytest.raises(MediaError, match="not a decodable image"):
        load_image(data[:40])
    # Flip a byte inside the IDAT payload: the CRC check in verify() catches it.
    idat = data.index(b"IDAT")
    bad = bytearray(data)
    bad[idat + 10] ^= 0xFF
    with pytest.raises(MediaError, match="corrupt or truncated"):
        load_image(bytes(bad))

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    with pytest.raises(MediaError, match="corrupt or truncated"):
        load_image(buf.getvalue()[: len(buf.getvalue()) // 2])


def decompression_bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height; the pixel data is tiny and bogus."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_load_image_guards_pixel_count():
    with pytest.raises(MediaError, match="too large"):
        load_image(decompression_bomb_png(50_000, 50_000))  # 2.5 GP: Pillow's own bomb error
    with pytest.raises(MediaError, match="too large"):
        load_image(decompression_bomb_png(8000, 8000))  # 64 MP: over our 40 MP default
    with pytest.raises(MediaError, match="too large"):
        load_image(png_bytes(Image.new("RGB", (100, 100))), max_pixels=5000)



def test_decode_data_url():
    payload = png_bytes(Image.new("RGB", (3, 3), "green"))
    b64 = base64.b64encode(payload).decode()
    assert decode_data_url(f"data:image/png;base64,{b64}") == payload
    # Copy-paste damage we tolerate: line breaks and missing padding.
    messy = "\n".join(b64[i : i + 60] for i in range(0, len(b64), 60)).rstrip("=")
    assert decode_data_url(f"DATA:image/PNG;base64,{messy}") == payload
    assert load_image(decode_data_url(f"data:image/png;base64,{b64}")).size == (3, 3)


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://example.com/a.png", "starting with 'data:'"),
        ("data:image/png;base64", "malformed"),
        ("data:text/plain;base64,aGVsbG8=", "must hold an image"),
        ("data:;base64,aGVsbG8=", "must hold an image"),
        ("data:image/png,%89PNG", "base64-encoded"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64,@@@not*base64", "not valid base64"),
    ],
)
def test_decode_data_url_errors(url, message):
    with pytest.raises(MediaError, match=message):
        decode_data_url(url)


def test_decode_data_url_size_limit():
    with pytest.raises(MediaError, match="too long"):
        decode_data_url("data:image/png;base64," + "A" * 100, max_chars=50)



def test_concat_frames_and_audio():
    a, b = solid_frames([1, 2, 3, 4]), solid_frames([5, 6, 7, 8, 9, 10])
    sr, fps = 8000, 8.0  # 1000 samples per frame keeps the arithmetic readable
    audio_a = np.full((1, 3700), 0.1, np.float32)  # short: padded to 4000
    audio_b = np.full((2, 6500), 0.2, np.float32)  # long: trimmed to 6000; stereo
    frames, audio = concat(a, audio_a, b, audio_b, fps=fps, sample_rate=sr)
    assert frames[:, 0, 0, 0].tolist() == list(range(1, 11))
    assert audio.shape == (2, 10_000)
    assert (audio[:, :3700] == 0.1).all() and (audio[:, 3700:4000] == 0).all()
    assert (audio[:, 4000:] == 0.2).all()

    # B repeats A's last 2 frames: drop them and their sound.
    frames, audio = concat(a, audio_a, b, audio_b, fps=fps, sample_rate=sr, skip_b=2)
    assert frames[:, 0, 0, 0].tolist() == [1, 2, 3, 4, 7, 8, 9, 10]
    assert audio.shape == (2, 8000)

    # One side silent: the other's audio stays in sync, the gap is silence.
    frames, audio = concat(a, None, b, audio_b, fps=fps, sample_rate=sr)
    assert audio.shape == (2, 10_000) and (audio[:, :4000] == 0).all()

    frames, audio = concat(a, None, b, None, fps=fps)
    assert audio is None and len(frames) == 10


def test_concat_rejects_mismatch():
    with pytest.raises(MediaError, match="sizes differ"):
        concat(solid_frames([1], h=32), None, solid_frames([1], h=34), None, fps=24)
    with pytest.raises(MediaError, match="sample_rate"):
        concat(solid_frames([1]), np.zeros((1, 10), np.float32), solid_frames([1]), None, fps=24)


def test_extension_round_trip(tmp_path):
    """What an extension does: read the tail of a clip, stitch, re-encode."""
    first = tmp_path / "first.mp4"
    encode_mp4(first, make_frames(t=12, h=32, w=48), 24, make_audio(0.5, 24000), 24000)
    tail = read_frames(first, last_n=2)
    audio, sr = read_audio(first)
    frames, joined = concat(
        read_frames(first), audio, np.concatenate([tail, make_frames(t=10, h=32, w=48)]),
        make_audio(12 / 24, sr), fps=24, sample_rate=sr, skip_b=2,
    )
    out = tmp_path / "extended.mp4"
    encode_mp4(out, frames, 24, joined, sr)
    info = probe(out)
    assert info.frame_count == 22
    assert info.audio_duration == pytest.approx(22 / 24, abs=1e-3)
    assert os.path.getsize(out) > 0
