"""A bad models file stops `mutoscope serve` at start, with one message naming the file and line.

The server is started the way an operator starts it (a subprocess with MUTOSCOPE_* variables); it must
exit non-zero before listening, never come up half-configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.conftest import server_env as server_env

GOOD_ENTRY = '''[[models]]
name = "tiny-ltx2"
family = "ltx2"
weights = "builtin:tiny-ltx2"
sizes = ["1280x720"]
seconds = ["4"]
'''


def serve(tmp_path: Path, models_toml: str | None, **env: str) -> subprocess.CompletedProcess:
    extra = dict(env)
    if models_toml is not None:
        path = tmp_path / "models.toml"
        path.write_text(models_toml)
        extra["MUTOSCOPE_MODELS_FILE"] = str(path)
    extra.setdefault("MUTOSCOPE_MODEL_ALIASES", "{}")
    return subprocess.run([sys.executable, "-m", "mutoscope", "serve", "--port", str(free_port())],
                          env=server_env(tmp_path / "data", **extra), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("toml", "line", "words"),
    [
        # TOML syntax error on line 4: the parser's line number comes through.
        (GOOD_ENTRY.replace('weights = "builtin:tiny-ltx2"', 'weights = "builtin:tiny-ltx2'), 4, "invalid TOML"),
        # Valid TOML, unknown family: the entry's `name = ...` line is named.
        ("# operator file\n\n" + GOOD_ENTRY.replace('"ltx2"', '"sora"'), 4, "unknown family 'sora'"),
        # A field of the wrong type.
        (GOOD_ENTRY + "steps = -2\n", 2, "'steps' must be a positive integer"),
        # A backend LTX-2 cannot use (it passes a mask to every cross-attention).
        (GOOD_ENTRY + 'attention_backend = "flash"\n', 2, "attention_backend 'flash' cannot take an attention mask"),
        # A duration beyond what LTX-2's positional embedding covers.
        (GOOD_ENTRY.replace('seconds = ["4"]', 'seconds = ["4", "30"]'), 2, "seconds: '30' cannot be made"),
    ],
    ids=["toml-syntax", "unknown-family", "bad-field", "mask-free-backend", "too-long"],
)
def test_serve_refuses_a_bad_models_file(tmp_path, toml, line, words):
    proc = serve(tmp_path, toml)
    assert proc.returncode != 0
    assert f"models.toml:{line}:" in proc.stderr, proc.stderr[-2000:]
    assert words in proc.stderr


def test_serve_refuses_an_alias_to_an_unknown_model(tmp_path):
    proc = serve(tmp_path, GOOD_ENTRY, MUTOSCOPE_MODEL_ALIASES=json.dumps({"sora-2": "tiny-wan"}))
    assert proc.returncode != 0
    assert "alias 'sora-2' points to unknown model 'tiny-wan'" in proc.stderr, proc.stderr[-2000:]


def test_serve_refuses_an_unknown_pipeline_argument(tmp_path):
    proc = serve(tmp_path, GOOD_ENTRY + "\n[models.pipeline_kwargs]\nstg_scal = 0.0\n")
    assert proc.returncode != 0
    # The console wraps long lines; the message is one line before that.
    stderr = " ".join(proc.stderr.split())
    assert "model tiny-ltx2: pipeline_kwargs key 'stg_scal' is not an argument of LTX2Pipeline" in stderr, stderr[-2000:]
    assert "Traceback" not in proc.stderr
