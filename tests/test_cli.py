"""The command line as a user runs it: generate, models list, serve with a broken models file."""

from __future__ import annotations

import subprocess
import sys

import av

from tests.conftest import server_env


def run(tmp_path, *args, **env):
    return subprocess.run([sys.executable, "-m", "mutoscope", *args], env=server_env(tmp_path / "data", **env),
                          capture_output=True, text=True, timeout=600)


def test_generate_writes_a_signed_mp4(tmp_path):
    out = tmp_path / "clip.mp4"
    r = run(tmp_path, "generate", "a quiet harbour at night", "--seconds", "4", "--size", "512x288",
            "--steps", "2", "--seed", "3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "random-weight test model" in r.stderr  # never presented as a generator
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, v.codec_context.name) == (512, 288, "h264")
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
        assert abs(c.duration / av.time_base - 4.0) < 0.1
    video_id = r.stdout.split("(id ")[1].split(",")[0]
    verified = run(tmp_path, "verify", str(out))
    assert "trusted" in verified.stdout and video_id in verified.stdout


def test_generate_refuses_unknown_size(tmp_path):
    r = run(tmp_path, "generate", "x", "--size", "640x480", "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 1 and "640x480" in r.stderr and "Traceback" not in r.stderr


def test_generate_refuses_audio_it_cannot_use(tmp_path):
    silent = run(tmp_path, "generate", "x", "--model", "tiny-wan", "--size", "512x288", "--audio", __file__,
                 "-o", str(tmp_path / "x.mp4"))
    assert silent.returncode == 1 and "makes no sound" in silent.stderr and "Traceback" not in silent.stderr
    unreadable = run(tmp_path, "generate", "x", "--size", "512x288", "--audio", __file__, "-o", str(tmp_path / "x.mp4"))
    assert unreadable.returncode == 1 and "not usable audio" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


def test_models_list_shows_minimax_h3_and_its_licence(tmp_path):
    r = run(tmp_path, "models", "list")
    assert r.returncode == 0, r.stderr
    assert "minimax-h3" in r.stdout and "MiniMax H3 Community License" in r.stdout


def test_models_list_marks_test_models(tmp_path):
    r = run(tmp_path, "models", "list")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "tiny-ltx2" in ln)
    assert "test model" in line
    assert "ltx-2" in r.stdout and "LTX-2 Community License" in r.stdout
