"""A storage that cannot be reached stops `serve` and `worker` at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import free_port, server_env


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_unreachable_storage_is_one_line_at_start(tmp_path, command):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = server_env(tmp_path / "data", MUTOSCOPE_STORAGE_URL="s3://videos-bucket/prod",
                     MUTOSCOPE_S3_ENDPOINT_URL=endpoint, MUTOSCOPE_S3_ACCESS_KEY_ID="AKIDEXAMPLE",
                     MUTOSCOPE_S3_SECRET_ACCESS_KEY="wJalrXUtnFEMI-not-shown", MUTOSCOPE_S3_REGION="us-east-1")
    out = subprocess.run([sys.executable, "-m", "mutoscope", command, "--port", str(free_port())]
                         if command == "serve" else [sys.executable, "-m", "mutoscope", command],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "s3://videos-bucket/prod" in lines[0] and endpoint in lines[0] and "unreachable" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout and "wJalrXUtnFEMI" not in out.stderr + out.stdout
