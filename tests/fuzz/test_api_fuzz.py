"""Every input is hostile: property-style fuzzing of every JSON and multipart route against a live server.

OpenAI's own routes are generated from the shared spec by schemathesis (positive and negative cases, the
negative ones also mangling the Authorization header); Mutoscope's extension routes, which the spec does
not have, by hypothesis strategies built from the protocol models' field names. Whatever comes in, the
answer must be below 500, and every 4xx must be OpenAI's envelope without a server path or a traceback.

The server maps every sora alias to a real model whose weights are not in its fresh data folder, so
creates are admitted (plan, consent, admission all run) and their jobs fail at once with
`model_not_available` instead of rendering. Seeds are fixed (`@seed`) so CI replays the same cases; a
summary (cases, status histogram) is printed at the end of the module.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from mutoscope.protocol.accounts import (
    CreateKeyRequest,
    CreateUserRequest,
    DeprecateModelRequest,
    SunsetRequest,
    UpdateUserRequest,
)
from mutoscope.protocol.batches import CreateBatchRequest
from mutoscope.protocol.cameos import GrantRequest, TakedownRequest, UpdateCameoRequest
from mutoscope.protocol.videos import (
    CreateVideoRequest,
    EditVideoRequest,
    ExtendVideoRequest,
    RemixVideoRequest,
    UpdateVideoRequest,
)
from mutoscope.protocol import webhooks as webhook_protocol  # a module: pytest would collect Test* classes
from tests.conftest import PARTIAL_MODEL, LiveServer, fresh_pg_database, free_port, partial_weights_models_file, wait_for

SEED = 20261201
REPO = Path(__file__).resolve().parents[2]
# Next to the repository, as in CI; MUTOSCOPE_SPEC points elsewhere (a git worktree has no ../shared).
SPEC = Path(os.environ.get("MUTOSCOPE_SPEC", REPO.parent / "shared" / "spec" / "openai-videos-openapi.yaml"))
# Half-pulled (tests/conftest.py): admitted, and every job then fails at once in the worker's load,
# without touching a GPU or much CPU.
MISSING_MODEL = PARTIAL_MODEL
ALIASES = {a: MISSING_MODEL for a in ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-2025-12-08",
                                      "sora-2-pro-2025-10-06")}
# The owner starts on "unlimited"; limits high enough that 429 never masks the rest of a run.
PLANS = """
[plans.unlimited]
models = ["*"]
concurrent_jobs = 1000000
requests_per_minute = 1000000

[plans.fuzz]
models = ["*"]
concurrent_jobs = 1000000
requests_per_minute = 1000000
"""
LEAKS = ("Traceback", 'File "', "/tmp/", "/work/", "/home/", "site-packages")
SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


class Tally:
    """Every answer the fuzzers got, and the first request that broke each rule."""

    def __init__(self) -> None:
        self.statuses: Counter[int | str] = Counter()
        self.routes: Counter[tuple[str, int | str]] = Counter()
        self.failures: dict[tuple[str, str], str] = {}
        self.tests_run: set[str] = set()

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def check(self, route: str, status: int | str, text: str, reproduce, extra_leaks: tuple[str, ...] = ()) -> None:
        self.statuses[status] += 1
        self.routes[(route, status)] += 1
        problem = None
        if not isinstance(status, int):
            problem = f"no answer ({status})"
        elif status >= 500:
            problem = f"{status}"
        elif status >= 400:
            problem = _envelope_problem(text, extra_leaks)
        elif any(leak in text for leak in ("Traceback",)):
            problem = "traceback in a success body"
        if problem is not None and (route, problem) not in self.failures:
            self.failures[(route, problem)] = f"{route} -> {status} [{problem}]\n  {reproduce()}\n  answer: {text[:300]}"

    def failures_since(self, before: set) -> list[str]:
        return [v for k, v in self.failures.items() if k not in before]

    def summary(self) -> list[str]:
        lines = [f"fuzz: {self.cases} cases, statuses {dict(sorted(self.statuses.items(), key=str))}"]
        width = max((len(r) for r, _ in self.routes), default=0)
        for (route, status), n in sorted(self.routes.items(), key=str):
            lines.append(f"  {route:<{width}}  {status}  {n}")
        return lines


def _envelope_problem(text: str, extra_leaks: tuple[str, ...]) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return "4xx body is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) \
            or not isinstance(error.get("type"), str) or not {"param", "code"} <= error.keys():
        return "4xx body is not the error envelope"
    for leak in LEAKS + extra_leaks:
        if leak in text:
            return f"4xx body leaks {leak!r}"
    return None


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    if TALLY.cases:
        # Printed past pytest's capture: the histogram is the point of a run, pass or fail.
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            print("\n" + "\n".join(TALLY.summary()))


# The server and what it holds .

def _png(width: int = 8, height: int = 8) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def _mp4(frames: int = 8, size: int = 32) -> bytes:
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), i * 20, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


class World:
    """The live server plus real ids of each kind, so generated requests reach past the 404s."""

    def __init__(self, srv: LiveServer, closed_port: int):
        self.srv, self.closed_port = srv, closed_port
        self.owner = srv.api_key
        self.ids: dict[str, list[str]] = {}
        self.png, self.mp4 = _png(), _mp4()
        # Batch input files: a request that is admitted (and fails at once on the half-pulled model), and hostile ones.
        line = {"custom_id": "a", "method": "POST", "url": "/v1/videos", "body": {"prompt": "x", "model": MISSING_MODEL}}
        self.jsonl = [json.dumps(line).encode() + b"\n", (json.dumps(line) + "\n" + json.dumps(line)).encode(),
                      b"[" * 3000 + b"\n", b"\n\n", json.dumps({**line, "url": "/v1/files"}).encode(),
                      (json.dumps(line) + "\n") .encode() * 50]
        self.archive: bytes | None = None

    def seed_objects(self) -> None:
        with self.srv.http() as h:
            member = h.post("/v1/admin/users", json={"name": "fuzz-member", "plan": "fuzz"}).json()
            victim = h.post("/v1/admin/users", json={"name": "fuzz-victim", "plan": "fuzz"}).json()
            self.member = member["api_key"]
            keys = h.get("/v1/admin/keys").json()["data"]
            video = h.post("/v1/videos", json={"prompt": "a fuzzed cat"}).json()["id"]
            file_id = h.post("/v1/files", files={"file": ("x.png", self.png, "image/png")},
                             data={"purpose": "vision"}).json()["id"]
            batch_file = h.post("/v1/files", files={"file": ("b.jsonl", self.jsonl[0], "application/jsonl")},
                                data={"purpose": "batch"}).json()["id"]
            batch = h.post("/v1/batches", json={"input_file_id": batch_file, "endpoint": "/v1/videos",
                                                "completion_window": "24h"}).json()["id"]
            hook = h.post("/v1/webhook_endpoints", json={
                "name": "fuzz", "url": f"https://127.0.0.1:{self.closed_port}/hook",
                "event_types": ["video.completed"]}).json()["id"]
            challenge = h.post("/v1/cameos/challenges")
            export = h.post("/v1/exports").json()["id"]
            wait_for(lambda: h.get(f"/v1/exports/{export}").json()["status"] in ("completed", "failed"), timeout=60)
            content = h.get(f"/v1/exports/{export}/content")
            self.archive = content.content if content.status_code == 200 else None
        # The victim, not the member, is the one whose key and account the fuzzer may revoke or disable.
        self.ids = {
            "video": [video, "video_" + "0" * 24],
            "file": [file_id, batch_file, "file-" + "0" * 24],
            "batch": [batch, "batch_" + "0" * 24],
            "hook": [hook],
            "export": [export],
            "import": ["imp_" + "0" * 24],
            "user": [victim["id"], "fuzz-victim"],
            "key": [k["id"] for k in keys if k.get("user") == "fuzz-victim"],
            "cameo": ["cameo_" + "0" * 24, "@nobody"],
            "challenge": [challenge.json()["id"]] if challenge.status_code == 200 else [],
            "character": ["char_" + "0" * 24],
            "model": ["sora-2", MISSING_MODEL, "tiny-ltx2", "no-such-model"],
        }


@pytest.fixture(scope="module")
def database_url():
    """PostgreSQL, as deployed, when reachable (required in CI): it refuses values SQLite stores (a NUL in
    text, an over-long varchar), so hostile input must be stopped before it gets there. Else SQLite."""
    with fresh_pg_database(optional=True) as url:
        yield url


@pytest.fixture(scope="module")
def world(tmp_path_factory, database_url) -> World:
    d = tmp_path_factory.mktemp("fuzz")
    (d / "plans.toml").write_text(PLANS)
    closed_port = free_port()  # nothing listens there: webhook deliveries fail at once
    env = {"MUTOSCOPE_DATABASE_URL": database_url} if database_url else {}
    srv = LiveServer(d / "data", MUTOSCOPE_PLANS_FILE=str(d / "plans.toml"), MUTOSCOPE_DEFAULT_PLAN="fuzz",
                     MUTOSCOPE_MODEL_ALIASES=json.dumps(ALIASES),
                     MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(d)),
                     MUTOSCOPE_OUTBOUND_ALLOW=json.dumps([f"127.0.0.1:{closed_port}"]), **env).start()
    w = World(srv, closed_port)
    try:
        w.seed_objects()
        yield w
    finally:
        srv.stop()


# Hostile values .

# NUL and the other control characters, alone and inside text: refused where storage cannot hold them, kept
# out of every header (CR/LF), and never a 5xx.
CONTROL_STRINGS = ["\x01", "a\x07b", "\x1b[31mred", "a\r\nX-Injected: 1", "\r\n\r\n", "a\tb", "\x7f", "\x85",
                   "a\u2028b", "a\x00", "\x00\x00\x00", "".join(map(chr, range(32)))]

HOSTILE_STRINGS = [
    "", " ", "\x00", "a\x00b", "\ud800", "\udfff", "\u202e", "😀" * 8, "a" * 40_000, "m" * 201, "m" * 256, "../../../../etc/passwd",
    "..", "%00", "%s%n%x", "{{7*7}}", "${jndi:x}", "<script>alert(1)</script>", "' OR 1=1 --", "null", "true",
    "-1", "0", "1e309", "NaN", "Infinity", "99999999999999999999999999", "-9223372036854775809", "0x10",
    "https://127.0.0.1/", "https://[::1]:1/", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
    "https://", "https://a b/", "data:image/png;base64,AAAA", "data:image/png;base64,!!!", "data:,", "data:",
    "sora-2", "sora-2-pro", "720x1280", "4", "8", "12", "@owner", "@fuzz-member", "video.completed",
    *CONTROL_STRINGS,
]
EXTREME_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30)]


def id_values(world: World, *kinds: str) -> st.SearchStrategy[str]:
    pool = [i for k in kinds for i in world.ids.get(k, [])]
    return st.sampled_from(pool) if pool else st.nothing()


def scalars(world: World) -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.sampled_from(EXTREME_INTS),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.sampled_from(HOSTILE_STRINGS),
        id_values(world, "video", "file", "hook", "export", "user", "cameo", "challenge", "model"))


def json_values(world: World) -> st.SearchStrategy:
    return st.recursive(scalars(world), lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def hints(world: World) -> dict[str, st.SearchStrategy]:
    """Plausible values per field name, so a share of the cases gets past validation into the services."""
    ref = st.fixed_dictionaries({}, optional={"id": id_values(world, "video", "character", "cameo")
                                              | st.sampled_from(HOSTILE_STRINGS)})
    return {
        "prompt": st.text(min_size=1, max_size=60) | st.sampled_from(["a cat @owner", "@nobody dances", "ok"]),
        "model": id_values(world, "model") | st.sampled_from(HOSTILE_STRINGS),
        "size": st.sampled_from(["720x1280", "1280x720", "1024x1792", "1792x1024", "0x0", "x", "-8x-8",
                                 "99999999999999999999x2", "720X1280", " 720x1280"]),
        "seconds": st.sampled_from(["4", "8", "12", "16", "0", "-4", "4.0", "1e9", "nan", "inf", ""]),
        "input_reference": st.fixed_dictionaries({}, optional={
            "image_url": st.sampled_from([s for s in HOSTILE_STRINGS if s.startswith(("data:", "http", "file"))]
                                         + ["data:image/png;base64,iVBORw0KGgo=", "https://nonexistent.invalid/x.png"]),
            "file_id": id_values(world, "file") | st.text(max_size=10)}),
        "video": ref,
        "characters": st.lists(ref, max_size=3),
        "seed": st.sampled_from(EXTREME_INTS) | st.integers(min_value=0, max_value=2**32),
        "num_inference_steps": st.integers(min_value=-2, max_value=600),
        "guidance_scale": st.floats(allow_nan=True, allow_infinity=True),
        "name": st.text(min_size=1, max_size=30) | st.sampled_from(HOSTILE_STRINGS),
        "url": st.sampled_from([f"https://127.0.0.1:{world.closed_port}/x", f"http://127.0.0.1:{world.closed_port}/",
                                "https://10.0.0.1/", "https://nonexistent.invalid/", "ftp://x/", "https://user:pw@"
                                "127.0.0.1/", "https://127.0.0.1:99999/", "https://%31%32%37.0.0.1/"]),
        "event_types": st.lists(st.sampled_from(["video.completed", "video.failed", "*", ""]) | st.text(max_size=8),
                                max_size=4),
        "event_type": st.sampled_from(["video.completed", "video.failed", "nope"]),
        "role": st.sampled_from(["owner", "admin", "member", "root", ""]),
        "plan": st.sampled_from(["fuzz", "unlimited", "missing", ""]),
        "disabled": st.booleans(),
        "purpose": st.sampled_from(["vision", "user_data", "assistants", "fine-tune", "batch", "batch_output", ""]),
        "input_file_id": id_values(world, "file") | st.sampled_from(HOSTILE_STRINGS),
        "endpoint": st.sampled_from(["/v1/videos", "/v1/chat/completions", "/v1/videos/edits", "", "/v1/videos/"]),
        "completion_window": st.sampled_from(["24h", "1h", "24H", ""]),
        "metadata": st.dictionaries(st.text(max_size=70), st.text(max_size=20), max_size=18),
        "policy": st.sampled_from(["only_me", "approved", "everyone", "nobody"]),
        "preferences": st.text(max_size=30),
        "blocked_terms": st.lists(st.text(max_size=10), max_size=60),
        "user": id_values(world, "user") | st.text(max_size=20),
        "reason": st.text(max_size=40),
        "handle": st.text(max_size=20) | st.sampled_from(["@me", "owner", "a" * 300]),
        "challenge_id": id_values(world, "challenge") | st.text(max_size=20),
        "keep_upload": st.sampled_from(["1", "true", "no", ""]),
        "unfinished": st.sampled_from(["not_run", "resubmit", "later", ""]),
        **{f: st.sampled_from(EXTREME_INTS) | st.integers() | st.just(int(time.time()) + 86400 * 365)
           for f in ("shutdown_date", "deprecation_date", "notice_at", "no_new_generations_at", "export_only_at",
                     "deletion_at")},
        "replacement": id_values(world, "model") | st.text(max_size=10),
        "message": st.text(max_size=40),
    }


@st.composite
def field_values(draw, world: World, fields: list[str]) -> dict:
    """Half the time every field plausible but one made hostile or dropped (to reach the services), else any
    subset of the fields, each plausible or hostile, among junk keys."""
    h, anything = hints(world), json_values(world)
    if fields and draw(st.booleans()):
        values = draw(st.fixed_dictionaries({f: h.get(f, anything) for f in fields}))
        victim = draw(st.sampled_from(fields))
        change = draw(st.sampled_from(["keep", "hostile", "drop"]))
        if change == "hostile":
            values[victim] = draw(anything)
        elif change == "drop":
            del values[victim]
        return values
    known = draw(st.fixed_dictionaries({}, optional={f: h.get(f, anything) | anything for f in fields}))
    junk = draw(st.dictionaries(st.text(max_size=12) | st.sampled_from(["__proto__", "constructor", "a[b]", "a[][c]"]),
                                anything, max_size=3))
    return {**junk, **known}


def fields(model, *more: str) -> list[str]:
    """A request model's fields, so a field added to protocol/ is fuzzed without touching this file."""
    return [*model.model_fields, *more]


# Mutoscope's own routes (the spec's are fuzzed from the spec as well): path parameters name an id pool.
ROUTES: list[tuple[str, str, list[str], list[str]]] = [
    # method, path, body fields, file fields
    ("POST", "/v1/videos", fields(CreateVideoRequest, "characters"), ["input_reference"]),
    ("GET", "/v1/videos", [], []),
    ("POST", "/v1/videos/{video}/remix", fields(RemixVideoRequest, "characters"), []),
    ("POST", "/v1/videos/extensions", fields(ExtendVideoRequest, "characters"), ["video"]),
    ("POST", "/v1/videos/edits", fields(EditVideoRequest, "characters"), ["video"]),
    ("POST", "/v1/videos/characters", ["name"], ["video"]),
    ("GET", "/v1/videos/characters", [], []),
    ("GET", "/v1/videos/characters/{character}", [], []),
    ("DELETE", "/v1/videos/characters/{character}", [], []),
    ("GET", "/v1/videos/{video}", [], []),
    ("POST", "/v1/videos/{video}", fields(UpdateVideoRequest), []),
    ("DELETE", "/v1/videos/{video}", [], []),
    ("POST", "/v1/files", ["purpose"], ["file"]),
    ("GET", "/v1/files", [], []),
    ("GET", "/v1/files/{file}", [], []),
    ("DELETE", "/v1/files/{file}", [], []),
    ("GET", "/v1/files/{file}/content", [], []),
    ("POST", "/v1/batches", fields(CreateBatchRequest), []),
    ("GET", "/v1/batches", [], []),
    ("GET", "/v1/batches/{batch}", [], []),
    ("POST", "/v1/batches/{batch}/cancel", [], []),
    ("GET", "/v1/models", [], []),
    ("GET", "/v1/models/{model}", [], []),
    ("POST", "/v1/cameos/challenges", [], []),
    ("POST", "/v1/cameos", ["handle", "challenge_id", "keep_upload"], ["video"]),
    ("GET", "/v1/cameos", [], []),
    ("GET", "/v1/cameos/audit", [], []),
    ("GET", "/v1/cameos/audit/verify", [], []),
    ("GET", "/v1/cameos/{cameo}", [], []),
    ("POST", "/v1/cameos/{cameo}", fields(UpdateCameoRequest), []),
    ("DELETE", "/v1/cameos/{cameo}", [], []),
    ("GET", "/v1/cameos/{cameo}/grants", [], []),
    ("POST", "/v1/cameos/{cameo}/grants", fields(GrantRequest), []),
    ("DELETE", "/v1/cameos/{cameo}/grants/{user}", [], []),
    ("GET", "/v1/cameos/{cameo}/videos", [], []),
    ("POST", "/v1/cameos/{cameo}/videos/{video}/takedown", fields(TakedownRequest), []),
    ("POST", "/v1/webhook_endpoints", fields(webhook_protocol.CreateWebhookEndpoint), []),
    ("GET", "/v1/webhook_endpoints", [], []),
    ("GET", "/v1/webhook_endpoints/{hook}", [], []),
    ("POST", "/v1/webhook_endpoints/{hook}", fields(webhook_protocol.UpdateWebhookEndpoint), []),
    ("GET", "/v1/webhook_endpoints/{hook}/deliveries", [], []),
    ("POST", "/v1/webhook_endpoints/{hook}/rotate_secret", [], []),
    ("POST", "/v1/webhook_endpoints/{hook}/test", fields(webhook_protocol.TestWebhookEndpoint), []),
    ("DELETE", "/v1/webhook_endpoints/{hook}", [], []),
    ("POST", "/v1/exports", [], []),
    ("GET", "/v1/exports", [], []),
    ("GET", "/v1/exports/{export}", [], []),
    ("DELETE", "/v1/exports/{export}", [], []),
    ("GET", "/v1/exports/{export}/content", [], []),
    ("POST", "/v1/imports", ["unfinished"], ["file"]),
    ("GET", "/v1/imports/{import}", [], []),
    ("POST", "/v1/verify", [], ["file"]),
    ("GET", "/v1/usage", [], []),
    ("GET", "/v1/service", [], []),
    ("GET", "/v1/admin/users", [], []),
    ("POST", "/v1/admin/users", fields(CreateUserRequest), []),
    ("POST", "/v1/admin/users/{user}", fields(UpdateUserRequest), []),
    ("POST", "/v1/admin/users/{user}/keys", fields(CreateKeyRequest), []),
    ("GET", "/v1/admin/keys", [], []),
    ("DELETE", "/v1/admin/keys/{key}", [], []),
]
# Last, on their own: a valid sunset or shutdown date would close admission for every case after it.
LIFECYCLE_ROUTES = [
    ("POST", "/v1/admin/models/{model}/deprecation", fields(DeprecateModelRequest), []),
    ("POST", "/v1/admin/service/sunset", fields(SunsetRequest), []),
]
QUERY = {"after": st.sampled_from(HOSTILE_STRINGS) | st.sampled_from([str(i) for i in EXTREME_INTS]),
         "limit": st.sampled_from([str(i) for i in EXTREME_INTS] + ["20", "1000", "1.5", "", "x"]),
         "order": st.sampled_from(["asc", "desc", "ASC", "", "random"]),
         "variant": st.sampled_from(["video", "thumbnail", "spritesheet", "../../etc", ""]),
         "unfinished": st.sampled_from(["not_run", "resubmit", "x"]),
         "purpose": st.sampled_from(["batch", "batch_output", "vision", "", "x" * 50])}


def path_value(world: World, kind: str) -> st.SearchStrategy[str]:
    raw = id_values(world, kind) | st.sampled_from([s for s in HOSTILE_STRINGS if s]) | st.text(min_size=1, max_size=30)
    return raw.map(_q)


def auth_headers(world: World) -> st.SearchStrategy[dict[str, str]]:
    owner = f"Bearer {world.owner}"
    return st.sampled_from([owner] * 30 + [
        f"Bearer {world.member}", None, "Bearer", "Bearer wrong-key", f"Bearer\t{world.owner}", f"Basic {world.owner}",
        f"bearer {world.owner}", f"Bearer {world.owner}x", f"Bearer {world.owner[:-1]}", "Bearer " + "k" * 8000,
        "Bearer sk-mutoscope-", f"Bearer  {world.owner} extra",
    ]).map(lambda v: {} if v is None else {"Authorization": v})


def _text(value) -> str | bytes:
    """A multipart field's value: strings as sent (lone surrogates as the invalid UTF-8 they become), others as JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value)


def file_parts(world: World) -> st.SearchStrategy[tuple]:
    payload = st.sampled_from([world.png, world.mp4, world.png[:20], world.mp4[: len(world.mp4) // 2], b"",
                               b"PK\x03\x04" + b"\x00" * 40, b"\x00" * 64, b"GIF89a" + b"\xff" * 32]
                              + ([world.archive, world.archive[:-30]] if world.archive else []) + world.jsonl) \
        | st.binary(max_size=200)
    name = st.sampled_from(["x.png", "clip.mp4", "../../../etc/passwd", "", "a" * 300, "é.mp4", "x\\y.zip", "b.jsonl"])
    ctype = st.sampled_from(["image/png", "video/mp4", "application/octet-stream", "application/zip", "text/plain",
                             "", "image/png; charset=utf-8", "image/" + "x" * 120, "video/mp4;" + "p" * 120])
    return st.tuples(name, payload, ctype)


SUNSET_TIMES = ["notice_at", "no_new_generations_at", "export_only_at", "deletion_at"]


def whole_bodies(world: World) -> dict[str, st.SearchStrategy[dict]]:
    """Bodies whose fields must agree with each other, which field-by-field generation rarely hits."""
    times = st.lists(st.sampled_from(EXTREME_INTS) | st.integers(min_value=0), min_size=4, max_size=4).map(sorted)
    return {"/v1/admin/service/sunset": st.tuples(times, st.text(max_size=20)).map(
        lambda t: {**dict(zip(SUNSET_TIMES, t[0])), "message": t[1]})}


@st.composite
def requests_for(draw, world: World, routes: list) -> tuple[str, str, dict, dict, dict]:
    method, template, body_fields, file_fields = draw(st.sampled_from(routes))
    path = template
    for kind in ("video", "character", "file", "model", "cameo", "user", "hook", "export", "import", "key", "batch"):
        if "{" + kind + "}" in path:
            path = path.replace("{" + kind + "}", draw(path_value(world, kind)))
    query = draw(st.fixed_dictionaries({}, optional=QUERY | {"x": st.text(max_size=5)}))
    headers = draw(auth_headers(world))
    kwargs: dict = {}
    if method == "POST" or draw(st.integers(0, 9)) == 0:
        kind = draw(st.sampled_from(["json"] * 4 + ["multipart"] * 3 + ["form", "raw", "none", "not-an-object"]))
        whole = whole_bodies(world).get(template)
        values = draw(whole if whole is not None and draw(st.booleans()) else field_values(world, body_fields))
        if kind == "json":
            kwargs["content"] = json.dumps(values).encode()
            headers["Content-Type"] = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                            "text/plain", "application/x-json"]))
        elif kind == "not-an-object":
            kwargs["content"] = json.dumps(draw(json_values(world))).encode()
            headers["Content-Type"] = "application/json"
        elif kind in ("multipart", "form"):
            data = {k: _text(v) for k, v in values.items() if v is not None}
            if kind == "multipart":
                files = {f: draw(file_parts(world)) for f in file_fields if draw(st.booleans())}
                kwargs["files"] = files or {"junk": ("j.bin", b"\x00", "application/octet-stream")}
            kwargs["data"] = data
        elif kind == "raw":
            kwargs["content"] = draw(st.binary(max_size=300) | st.sampled_from([
                b"{", b'{"prompt": "x"', b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe{}", b'{"prompt": "\\ud800"}',
                b"--boundary\r\n", b"a=b&c", b'{"prompt": 1e999999}']))
            headers["Content-Type"] = draw(st.sampled_from(["application/json", "multipart/form-data",
                                                            "multipart/form-data; boundary=boundary",
                                                            "application/x-www-form-urlencoded", "text/plain", ""]))
    return method, path, query, headers, kwargs


def _send(world: World, client: httpx.Client, route: str, request: tuple, extra_leaks: tuple[str, ...]) -> None:
    method, path, query, headers, kwargs = request

    def reproduce() -> str:
        shown = {k: ("<owner key>" if world.owner in v else v[:80]) for k, v in headers.items()}
        body = kwargs.get("content", kwargs.get("data"))
        files = {k: (n[:40], len(b), t) for k, (n, b, t) in kwargs.get("files", {}).items()}
        return f"{method} {path} params={query!r} headers={shown} body={repr(body)[:400]} files={files}"

    try:
        url = path + ("?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in query.items()) if query else "")
        r = client.request(method, url, headers=headers, **kwargs)
        status, text = r.status_code, r.text
    except httpx.TimeoutException:
        status, text = "timeout", ""
    except httpx.TransportError as e:
        status, text = f"transport error {type(e).__name__}", ""
    TALLY.check(route, status, text, reproduce, extra_leaks)


def _q(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _run(world: World, routes: list, examples: int, name: str) -> None:
    before = set(TALLY.failures)
    leaks = (str(world.srv.data_dir),)
    with httpx.Client(base_url=world.srv.base_url, timeout=30) as client:
        @seed(SEED)
        @settings(max_examples=examples, **SETTINGS)
        @given(request=requests_for(world, routes))
        def fuzz(request):
            _send(world, client, f"{request[0]} {_route_of(request[1], routes)}", request, leaks)

        fuzz()
    TALLY.tests_run.add(name)
    failures = TALLY.failures_since(before)
    assert not failures, "\n".join(failures)


def _route_of(path: str, routes: list) -> str:
    """The template a concrete path came from, so the histogram groups by route."""
    parts = path.split("?")[0].strip("/").split("/")
    for _, template, _, _ in routes:
        t = template.strip("/").split("/")
        if len(t) == len(parts) and all(a.startswith("{") or a == b for a, b in zip(t, parts)):
            return template
    return path


# The tests .

@pytest.fixture(scope="module")
def spec() -> Path:
    if not SPEC.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the shared spec is missing at {SPEC}")
        pytest.skip(f"the shared spec is not checked out next to the repository ({SPEC}; set MUTOSCOPE_SPEC)")
    return SPEC


def test_spec_operations(spec: Path, world: World):
    """OpenAI's /videos operations from the shared spec, positive and negative, JSON and multipart."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_path(str(spec))
    cases = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE)
    real = {"video_id": id_values(world, "video"), "character_id": id_values(world, "character")}
    before = set(TALLY.failures)
    leaks = (str(world.srv.data_dir),)
    base_url = world.srv.base_url + "/v1"  # the spec's server is https://api.openai.com/v1
    session = requests.Session()

    @seed(SEED)
    @settings(max_examples=600, **SETTINGS)
    @given(case=cases, data=st.data())
    def fuzz(case, data):
        for name, ids in real.items():  # half the time a real id, so remix & co. get past the 404
            if name in (case.path_parameters or {}) and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(ids)
        try:
            r = case.call(base_url=base_url, session=session, headers={"Authorization": f"Bearer {world.owner}"},
                          timeout=30)
            status, text = r.status_code, r.text
        except Exception as e:  # noqa: BLE001 - a connection the server dropped is a failure, not a crash here
            status, text = f"no answer {type(e).__name__}", ""
        TALLY.check(f"{case.operation.label} [spec {case.media_type or '-'}]", status, text,
                    lambda: case.as_curl_command(), leaks)

    fuzz()
    session.close()
    TALLY.tests_run.add("spec")
    failures = TALLY.failures_since(before)
    assert not failures, "\n".join(failures)


def test_extension_routes(world: World):
    """Every route, ours included, with hostile JSON, multipart, form and raw bodies, ids and keys."""
    _run(world, ROUTES, 1200, "routes")


@pytest.mark.parametrize("method, path, body, param", [
    ("POST", "/v1/videos", {"prompt": "a\x00b"}, "prompt"),
    ("POST", "/v1/videos", {"prompt": "ok", "input_reference": {"file_id": "file-\x00"}}, "input_reference.file_id"),
    ("POST", "/v1/webhook_endpoints", {"name": "\x00", "url": "https://127.0.0.1/", "event_types": []}, "name"),
    ("POST", "/v1/admin/users", {"name": "nul\x00"}, "name"),
    ("POST", "/v1/admin/users/fuzz-victim/keys", {"name": "nul\x00"}, "name"),
    ("GET", "/v1/videos/video_%00", None, "path"),
    ("GET", "/v1/videos?after=%00", None, "after"),
    ("DELETE", "/v1/cameos/a%00b", None, "path"),
    ("GET", "/v1/webhook_endpoints/%00", None, "path"),
    ("POST", "/v1/videos/characters", {"name": "a\x00b"}, "name"),
])
def test_nul_characters_are_refused(world: World, method, path, body, param):
    """PostgreSQL cannot store or even compare text holding a NUL: each of these was a 500 there."""
    with world.srv.http() as h:
        r = h.request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_values_longer_than_their_columns_are_refused(world: World):
    """SQLite stores an over-long varchar, PostgreSQL refuses it: each of these was a 500 there."""
    with world.srv.http() as h:
        r = h.post(f"/v1/admin/models/{'m' * 201}/deprecation", json={"shutdown_date": 2_000_000_000})
        assert (r.status_code, r.json()["error"]["param"]) == (400, "model"), r.text
        r = h.post("/v1/admin/models/m/deprecation", json={"shutdown_date": 2_000_000_000, "replacement": "m" * 201})
        assert (r.status_code, r.json()["error"]["param"]) == (400, "replacement"), r.text
        r = h.post("/v1/files", files={"file": ("x.png", world.png, "image/" + "x" * 120)})
        assert (r.status_code, r.json()["error"]["param"]) == (400, "file"), r.text
        r = h.post("/v1/files", files={"file": ("x.png", world.png, "image/png; " + "p" * 120)})
        assert r.status_code == 200, r.text


def test_control_characters_leave_an_uploaded_file_name(world: World):
    # By hand: httpx would percent-encode the control characters of a file name.
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b\x1f/c.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + world.png + b"\r\n--b--\r\n")
    with world.srv.http() as h:
        r = h.post("/v1/files", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == "a_b__c.png"


@pytest.mark.parametrize("path, body, param", [
    ("/v1/admin/models/no-such-model/deprecation", {"shutdown_date": 10**24}, "shutdown_date"),
    ("/v1/admin/models/sora-2/deprecation", {"shutdown_date": 2**63, "deprecation_date": 0}, "shutdown_date"),
    ("/v1/admin/models/sora-2/deprecation", {"shutdown_date": 1, "deprecation_date": -1}, "deprecation_date"),
    # A notice phase whose deletion date no HTTP date can carry: every answer's Sunset header failed.
    ("/v1/admin/service/sunset", {"notice_at": 0, "no_new_generations_at": 10**16, "export_only_at": 10**16,
                                  "deletion_at": 10**16}, "no_new_generations_at"),
    ("/v1/admin/service/sunset", {"notice_at": 10**20, "no_new_generations_at": 10**20 + 1,
                                  "export_only_at": 10**20 + 2, "deletion_at": 10**20 + 3}, "notice_at"),
])
def test_times_beyond_year_9999_are_refused(world: World, path, body, param):
    with world.srv.http() as h:
        r = h.post(path, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
        assert h.get("/health").status_code == 200
        assert h.get("/v1/service").json()["phase"] == "active"


def test_admin_lifecycle_routes(world: World):
    """Deprecation and sunset, run last: any valid case closes admission for whatever follows."""
    _run(world, LIFECYCLE_ROUTES, 120, "lifecycle")


def test_enough_cases():
    if TALLY.tests_run != {"spec", "routes", "lifecycle"}:
        pytest.skip("counts only when the whole module ran")
    assert TALLY.cases >= 1000, TALLY.summary()[0]
    assert not [s for s in TALLY.statuses if not isinstance(s, int) or s >= 500], TALLY.summary()[0]
