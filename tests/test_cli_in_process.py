"""The command line in this process (fast tier): typer's runner calls the same `mutoscope` app a shell does.

The commands that start servers or render (`serve`, `worker`, `generate`, `mcp`) are run as a user runs
them in tests/test_cli.py and the live tests; these are the operator's bookkeeping commands.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mutoscope.cli.main import app


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"MUTOSCOPE_DATA_DIR": str(tmp_path / "data")})

    return run


def test_users_and_keys(cli):
    made = cli("users", "create", "carol")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("msk-")
    listed = cli("users", "list")
    assert "carol" in listed.stdout
    second = cli("keys", "create", "--user", "carol", "--name", "laptop")
    assert second.exit_code == 0, second.output
    keys = cli("keys", "list")
    assert "laptop" in keys.stdout and key not in keys.stdout  # a key is shown once, stored hashed


def test_a_refusal_is_one_line_and_exit_1(cli):
    assert cli("users", "create", "dave").exit_code == 0
    again = cli("users", "create", "dave")
    assert again.exit_code == 1 and "Traceback" not in again.output and "dave" in again.output
    gone = cli("keys", "revoke", "key_does_not_exist")
    assert gone.exit_code == 1


def test_models_list_names_the_shipped_models(cli):
    r = cli("models", "list")
    assert r.exit_code == 0, r.output
    assert "tiny-ltx2" in r.stdout and "ltx-2" in r.stdout
