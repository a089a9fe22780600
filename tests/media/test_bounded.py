"""The bounded readers decode only what they are asked for: proven by the bytes PyAV pulls from the file
and by the memory the answer takes, on a real H.264 clip with a keyframe every second."""

from __future__ import annotations

import io
import tracemalloc

import av
import numpy as np
import pytest

from mutoscope.protocol.base import nesting_within
from mutoscope.media import (
    InputLimits,
    MediaError,
    inspect_upload,
    read_frames,
    read_frames_at,
)

W, H, FPS, N = 320, 240, 24, 480  # 20 s


class CountingFile(io.BytesIO):
    """A real file object that remembers how many bytes were read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        out = super().read(n)
        self.bytes_read += len(out)
        return out


@pytest.fixture(scope="module")
def clip() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"g": str(FPS), "preset": "ultrafast", "crf": "30", "bf": "0"}
        noise = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        for i in range(N):
            img = np.roll(noise, i * 3, axis=1)  # every frame differs, so every frame costs bytes
            img[:16, :16] = i % 256
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def full(clip) -> np.ndarray:
    return read_frames(io.BytesIO(clip))


def test_a_range_reads_only_its_part_of_the_file(clip, full):
    f = CountingFile(clip)
    got = read_frames(f, start=300, count=5)
    assert np.array_equal(got, full[300:305])
    assert f.bytes_read < len(clip) * 0.15, (f.bytes_read, len(clip))


def test_the_tail_seeks_instead_of_decoding_the_clip(clip, full):
    f = CountingFile(clip)
    got = read_frames(f, last_n=25)
    assert np.array_equal(got, full[-25:])
    assert f.bytes_read < len(clip) * 0.15, (f.bytes_read, len(clip))


def test_the_first_frames_stop_early(clip, full):
    f = CountingFile(clip)
    assert np.array_equal(read_frames(f, count=10), full[:10])
    assert f.bytes_read < len(clip) * 0.15


def test_resampling_keeps_only_the_sampled_frames(clip, full):
    tracemalloc.start()
    got = read_frames(io.BytesIO(clip), count=40, fps=12)  # every other frame of the first 80
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(got, full[0:80:2])
    frame = W * H * 3
    assert peak < 40 * frame + 8 * frame, peak / frame  # the answer plus a few frames in flight, not 80


def test_the_whole_clip_is_one_array_not_a_list_and_a_copy(clip):
    tracemalloc.start()
    got = read_frames(io.BytesIO(clip))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got.shape == (N, H, W, 3)
    assert peak < got.nbytes * 1.2, peak / got.nbytes


def test_resampling_past_the_end_holds_the_last_frame(clip, full):
    got = read_frames(io.BytesIO(clip), start=470, count=20, fps=FPS)
    assert np.array_equal(got[:10], full[470:]) and all(np.array_equal(g, full[-1]) for g in got[10:])


def test_max_pixels_scales_as_it_converts(clip):
    got = read_frames(io.BytesIO(clip), count=3, max_pixels=W * H // 4)
    assert got.shape == (3, H // 2, W // 2, 3)


def test_frames_at_indices_in_one_pass(clip, full):
    f = CountingFile(clip)
    got = read_frames_at(f, [40, 2])
    assert np.array_equal(got[0], full[40]) and np.array_equal(got[1], full[2])
    assert f.bytes_read < len(clip) * 0.2
    assert len(read_frames_at(io.BytesIO(clip), [2, 9999])) == 1  # past the end: left out, not an error


def test_truncated_and_garbage_files_are_media_errors(clip):
    limits = InputLimits(max_seconds=60, max_pixels=W * H, max_frames=N)
    for cut in (0, 40, 400, len(clip) // 3, len(clip) - 100):
        with pytest.raises(MediaError):
            inspect_upload(io.BytesIO(clip[:cut]), limits)
    with pytest.raises(MediaError, match="max_input_frames"):
        inspect_upload(io.BytesIO(clip), InputLimits(max_seconds=60, max_pixels=W * H, max_frames=100))
    with pytest.raises(MediaError, match="max_input_pixels"):
        inspect_upload(io.BytesIO(clip), InputLimits(max_seconds=60, max_pixels=1000, max_frames=N))
    assert inspect_upload(io.BytesIO(clip), limits).frame_count == N


def test_json_nesting_is_measured_without_recursion():
    assert nesting_within(b"[" * 64 + b"]" * 64, 64)
    assert not nesting_within(b"[" * 65 + b"]" * 65, 64)
    assert not nesting_within(b"[" * 100000, 64)
    doc = b'{"a": "[[[[[[[[\\"[[[[", "b": [{"c": []}]}'  # brackets inside a string do not count
    assert nesting_within(doc, 4) and not nesting_within(doc, 3)
    assert not nesting_within(b"[}", 64)  # brackets that do not pair are not JSON at any depth
