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


def test_models_list_needs_no_torch_keeps_names_whole_and_shows_download_size(tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from mutoscope.cli.main import app; "
            "r = CliRunner().invoke(app, ['models', 'list'], terminal_width=70); "
            "assert r.exit_code == 0, r.output; print(r.output); "
            "print('IMPORTED', [m for m in ('torch', 'diffusers', 'transformers', 'alembic') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], env=server_env(tmp_path / "data"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "IMPORTED []" in r.stdout
    # A 70-column terminal still shows every name whole, on one line.
    for name in ("ltx-2.3-distilled", "wan2.2-ti2v-5b", "tiny-ltx2-pro"):
        assert any(name in line for line in r.stdout.splitlines()), name
    assert "~71 GB" in r.stdout and "built in" in r.stdout


def test_models_pull_with_the_hub_out_of_reach_is_one_line_naming_the_ways_around(tmp_path):
    r = run(tmp_path, "models", "pull", "ltx-2.3-distilled", HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr  # no retry lines
    assert "HF_ENDPOINT" in lines[0] and "mutoscope models add PATH --model ltx-2.3-distilled" in lines[0]
    offline = run(tmp_path, "models", "pull", "ltx-2.3-distilled")  # the suite's HF_HUB_OFFLINE=1
    assert offline.returncode == 1 and "HF_HUB_OFFLINE is set" in offline.stderr and "HF_ENDPOINT" in offline.stderr


def _safetensors(path, data_bytes: int = 8, cut: int = 0) -> None:
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [data_bytes // 4], "data_offsets": [0, data_bytes]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * (data_bytes - cut))


def test_models_add_registers_a_copied_folder_without_network(tmp_path):
    import shutil

    from tests.conftest import _FIXTURES

    folder = tmp_path / "copies" / "LTX-2.3-Distilled-Diffusers"  # named as the repo: found without --model
    shutil.copytree(_FIXTURES / "diffusers" / "LTX-2.3-Distilled-Diffusers", folder)
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    _safetensors(folder / "transformer" / "diffusion_pytorch_model.safetensors", cut=4)  # an interrupted copy
    r = run(tmp_path, "models", "add", str(folder))
    assert r.returncode == 1 and "cut short" in r.stderr and "Traceback" not in r.stderr, r.stderr
    _safetensors(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    r = run(tmp_path, "models", "add", str(folder))
    assert r.returncode == 0, r.stderr
    assert "ltx-2.3-distilled is installed" in r.stdout
    listed = run(tmp_path, "models", "list").stdout
    assert next(ln for ln in listed.splitlines() if "ltx-2.3-distilled" in ln).count("yes") == 2  # audio, installed
    assert run(tmp_path, "models", "rm", "ltx-2.3-distilled").returncode == 0
    assert (folder / "model_index.json").is_file()  # the operator's copy is never deleted
    nameless = tmp_path / "elsewhere"
    shutil.copytree(folder, nameless)
    r = run(tmp_path, "models", "add", str(nameless))
    assert r.returncode == 1 and "--model" in r.stderr
    assert run(tmp_path, "models", "add", str(nameless), "--model", "ltx-2.3-distilled").returncode == 0


def test_help_is_literal_flags_look_like_flags_and_serve_says_its_defaults(tmp_path):
    gen = run(tmp_path, "generate", "--help", COLUMNS="120")
    assert gen.returncode == 0 and "[[shots]]" in gen.stdout  # not eaten as markup
    assert "<bool>" not in gen.stdout
    serve = run(tmp_path, "serve", "--help", COLUMNS="120")
    text = " ".join(serve.stdout.split())
    assert "--no-worker " in text and "<bool>" not in text
    assert "Default 127.0.0.1" in text and "Default 8000" in text and "0.0.0.0" in text


def test_listings_show_local_dates_and_never_none(tmp_path):
    import re

    assert run(tmp_path, "users", "create", "bob").returncode == 0
    assert run(tmp_path, "keys", "create", "--user", "bob", "--name", "laptop").returncode == 0
    date = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
    for args in (("users", "list"), ("keys", "list"), ("usage", "--user", "bob"), ("service", "status")):
        r = run(tmp_path, *args)
        assert r.returncode == 0, r.stderr
        assert "None" not in r.stdout, (args, r.stdout)
        assert not re.search(r"\b1[6-9]\d{8}\b", r.stdout), (args, r.stdout)  # no Unix timestamps
        if args[0] in ("users", "keys"):
            assert date.search(r.stdout), (args, r.stdout)
    assert "not scheduled" in run(tmp_path, "service", "status").stdout
    assert run(tmp_path, "users", "set-plan", "bob", "unlimited").returncode == 0
    unlimited = run(tmp_path, "usage", "--user", "bob").stdout
    assert "unlimited" in unlimited and "None" not in unlimited, unlimited


def test_a_failed_generate_says_one_thing_once(tmp_path):
    r = run(tmp_path, "generate", "x", "--model", "ltx-2.3-distilled", "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "models pull ltx-2.3-distilled" in lines[0], r.stderr
    assert "torchvision" not in r.stderr
