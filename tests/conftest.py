"""Shared fixtures: a real `mutoscope serve` on a free loopback port, driven by the official openai SDK."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests import tiers

# Tiny random-weight models only: no hub access, ever.
os.environ["HF_HUB_OFFLINE"] = "1"
TEST_ALIASES = {"sora-2": "tiny-ltx2", "sora-2-pro": "tiny-ltx2", "sora-2-2025-10-06": "tiny-ltx2",
                "sora-2-2025-12-08": "tiny-ltx2", "sora-2-pro-2025-10-06": "tiny-ltx2"}
PG_URL = os.environ.get("MUTOSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# The files that take longest (multi-process runs, live servers rendering several jobs, browser journeys)
# go first. pytest-xdist (`--dist loadfile`) hands whole files to its workers in collection order, so a
# long file collected last would run alone on one worker while the other waits. The sort is stable:
# tests inside a file keep their order.
SLOW_FIRST = ("tests/scale/", "tests/api/test_kills.py", "tests/api/test_scale_out.py", "tests/batches/test_workers.py",
              "tests/exports/test_live.py", "tests/exports/test_hostile_imports.py",
              "tests/fuzz/", "tests/engine/test_device_proof.py", "tests/engine/test_out_of_memory.py",
              "tests/api/test_batches.py", "tests/web/test_studio.py", "tests/api/test_webhooks.py", "tests/api/test_durability.py", "tests/likeness/",
              "tests/api/test_gpu_worker.py", "tests/api/test_lean_api.py", "tests/mcp/", "tests/engine/test_two_stage.py",
              "tests/api/test_videos.py", "tests/api/test_plans.py", "tests/api/test_storyboards.py",
              "tests/web/test_cameos.py", "tests/api/test_extensions_edits.py", "tests/web/test_library.py", "tests/web/",
              "tests/engine/test_parallel.py", "tests/engine/test_memory.py", "tests/engine/test_minimax_h3.py",
              "tests/api/test_trust.py", "tests/api/test_idempotency.py", "tests/test_cli.py")


def pytest_configure(config):
    tiers.guard_spawns()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    tiers.entering(item)


def pytest_collection_modifyitems(config, items):
    tiers.mark_live(items)

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "MUTOSCOPE_DATA_DIR": str(data_dir),
                "MUTOSCOPE_MODEL_ALIASES": json.dumps(TEST_ALIASES), "MUTOSCOPE_POLL_AFTER_MS": "200",
                # The suite's servers have only the test models; creators see them only when this is on.
                "MUTOSCOPE_WEB_TEST_MODELS": "always",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class LiveServer:
    """`python -m mutoscope serve` in a subprocess, like a user would run it."""

    def __init__(self, data_dir: Path, *args: str, **env: str):
        self.data_dir = data_dir
        self.args = args  # extra `serve` options, e.g. --no-worker
        self.env = server_env(data_dir, **env)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> "LiveServer":
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mutoscope", "serve", "--port", str(self.port), "--log-level", "warning",
             *self.args],
            env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-4000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def api_key(self) -> str:
        return (self.data_dir / "owner-api-key").read_text().strip()

    def client(self, api_key: str | None = None):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url + "/v1", api_key=api_key or self.api_key, max_retries=0, timeout=120)

    def http(self, api_key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60,
                            headers={"Authorization": f"Bearer {api_key or self.api_key}"})

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mutoscope", *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=300)


class InProcessServer:
    """The app `mutoscope serve --no-worker` serves, built by the same wiring and run in this process behind
    Starlette's TestClient: the fast tier's server. Same interface as `LiveServer` (`client()`, `http()`,
    `api_key`), so a test's subject decides which it uses, not its plumbing. Nothing renders here; a test
    that needs a finished video is a live one."""

    base_url = "http://testserver"

    def __init__(self, data_dir: Path, **settings):
        from mutoscope.config import Settings

        self.data_dir = data_dir
        self.settings = Settings(data_dir=data_dir, model_aliases=TEST_ALIASES, poll_after_ms=200, **settings)
        self.app = None
        self._lifespan = None

    def start(self) -> "InProcessServer":
        from starlette.testclient import TestClient

        from mutoscope.wiring import build_server

        self.app = build_server(self.settings, worker=False).app
        self._lifespan = TestClient(self.app, base_url=self.base_url)
        self._lifespan.__enter__()  # runs the lifespan: runner, webhook deliverer, the MCP session manager
        return self

    def stop(self) -> None:
        if self._lifespan is not None:
            self._lifespan.__exit__(None, None, None)
            self._lifespan = None

    @property
    def api_key(self) -> str:
        return (self.data_dir / "owner-api-key").read_text().strip()

    def http(self, api_key: str | None = None, **headers: str):
        from starlette.testclient import TestClient

        return TestClient(self.app, base_url=self.base_url, follow_redirects=False,
                          headers={"Authorization": f"Bearer {api_key or self.api_key}", **headers})

    def client(self, api_key: str | None = None):
        from openai import OpenAI
        from starlette.testclient import TestClient

        return OpenAI(base_url=self.base_url + "/v1", api_key=api_key or self.api_key, max_retries=0,
                      http_client=TestClient(self.app, base_url=self.base_url))


def serve_live(tmp_path_factory, name: str, *args: str, root: Path | None = None, timeout: float = 90,
               **env: str):
    """The body of every fixture that shares one `LiveServer` (per module, package or session): started on
    `data` in a fresh folder (or in `root`, where the fixture wrote a models or plans file first), stopped
    after the last test. Use as `yield from serve_live(tmp_path_factory, "web", "--no-worker", **env)`."""
    srv = LiveServer((root or tmp_path_factory.mktemp(name)) / "data", *args, **env)
    try:
        yield srv.start(timeout=timeout)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """An in-process server for one module (fast tier)."""
    srv = InProcessServer(tmp_path_factory.mktemp("inproc") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    yield from serve_live(tmp_path_factory, "srv")


@pytest.fixture(scope="session")
def client(server):
    return server.client()


@pytest.fixture(scope="session")
def other_user_key(server) -> str:
    out = server.cli("users", "create", "mallory")
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def fresh_pg_database(*, optional: bool = False):
    """A PostgreSQL database of its own, dropped afterwards. Where PostgreSQL cannot be reached the test is
    skipped (or, `optional`, gets None and runs on SQLite), except in CI, where that is a failure."""
    import psycopg

    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"mutoscope_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise
        if not optional:
            pytest.skip(f"PostgreSQL not reachable: {e}")
        yield None
        return
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_url():
    """A fresh PostgreSQL database shared by one module's tests (its live server), dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def broker_url():
    """A Redis database of its own for one test, emptied before and after.

    Each pytest-xdist worker owns one numbered database (gw0 -> 1, gw1 -> 2, ...), so tests running side
    by side never flush each other's queues; database 0 is left to anything a developer runs by hand."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    url = f"redis://127.0.0.1:6379/{1 + int(worker.removeprefix('gw')) % 15}"
    try:
        r = redis.Redis.from_url(url)
        r.ping()
    except redis.ConnectionError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable: {e}")
    r.flushdb()
    yield url
    r.flushdb()


def stop_process(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time: a test never leaves a worker behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float = 120, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


# A models file's `[models.pipeline_kwargs]` lines for builtin:tiny-ltx2 with every extra guidance pass off
# (one transformer call per step) and short prompts: what tests that register their own tiny entry use.
TINY_LTX2_QUIET_KWARGS = """stg_scale = 0.0
modality_scale = 1.0
guidance_rescale = 0.0
audio_guidance_scale = 1.0
audio_stg_scale = 0.0
audio_modality_scale = 1.0
audio_guidance_rescale = 0.0
max_sequence_length = 64
"""

PARTIAL_MODEL = "half-pulled"
_FIXTURES = Path(__file__).parent / "engine" / "fixtures"


def partial_weights_models_file(root: Path) -> Path:
    """The shipped models file plus `half-pulled`: an LTX-2 whose local weights folder holds only the real
    checkpoint's model_index.json, the state an interrupted copy leaves. The catalog counts a local folder
    with a model_index.json as installed, so a job for it is admitted, and the worker's load then fails
    with model_not_available at once: a real failed job (and its video.failed event) without rendering."""
    from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH

    folder = root / "half-pulled-weights"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text((_FIXTURES / "Lightricks" / "LTX-2" / "model_index.json").read_text())
    path = root / "models.toml"
    path.write_text(DEFAULT_REGISTRY_PATH.read_text() + f"""
[[models]]
name = "{PARTIAL_MODEL}"
family = "ltx2"
weights = "{folder}"
sizes = ["1280x720", "720x1280"]
seconds = ["4", "8"]
steps = 2
guidance = 1.0
has_audio = true
memory = "full"
dtype = "float32"
""")
    return path


# A SeaweedFS S3 server for the whole session, started on first use (tests/s3.py).
from tests.s3 import s3_server  # noqa: E402,F401
