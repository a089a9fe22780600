"""The start-time check of `pipeline_kwargs` reads the pipelines' arguments once per diffusers version and
family code, then from a cache, so a server's start imports neither torch nor diffusers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHECK = ("import sys; from mutoscope.engine.registry import load_registry; "
         "from mutoscope.engine.diffusers_engine import check_registry; check_registry(load_registry()); "
         "print('IMPORTED', [m for m in ('torch', 'diffusers') if m in sys.modules])")


def run(tmp_path, code):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_the_first_check_reads_diffusers_and_every_later_one_the_cache(tmp_path):
    first = run(tmp_path, CHECK)
    assert first.returncode == 0, first.stderr
    assert "'diffusers'" in first.stdout  # computed: the pipeline classes were imported
    [cached] = (tmp_path / "cache" / "mutoscope").glob("pipeline-signatures-diffusers-*.json")
    table = json.loads(cached.read_text())
    ltx = next(v for k, v in table.items() if k.startswith("ltx2:"))
    assert "LTX2Pipeline" in ltx["classes"] and "sigmas" in ltx["accepted"]
    second = run(tmp_path, CHECK)
    assert second.returncode == 0 and "IMPORTED []" in second.stdout, second.stdout + second.stderr


def test_a_cached_check_still_refuses_an_unknown_argument_and_survives_a_broken_cache(tmp_path):
    refuse = ("from dataclasses import replace; from mutoscope.engine.registry import load_registry, RegistryError; "
              "from mutoscope.engine.diffusers_engine import check_pipeline_kwargs; "
              "from mutoscope.engine.families import FAMILIES; from mutoscope.engine import EngineError\n"
              "e = replace(load_registry().resolve('tiny-ltx2'), pipeline_kwargs={'stg_scal': 0.0})\n"
              "try:\n    check_pipeline_kwargs(e, FAMILIES['ltx2'])\nexcept EngineError as x:\n    print(x)")
    assert run(tmp_path, CHECK).returncode == 0
    out = run(tmp_path, refuse).stdout
    assert "'stg_scal' is not an argument of LTX2Pipeline" in out, out
    [cached] = (tmp_path / "cache" / "mutoscope").glob("pipeline-signatures-diffusers-*.json")
    cached.write_text("{not json")
    assert "'stg_scal' is not an argument" in run(tmp_path, refuse).stdout  # recomputed, not trusted
