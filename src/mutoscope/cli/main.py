"""`mutoscope`: serve, generate, keys, users, models, worker."""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mutoscope import __version__
from mutoscope.cli.common import DataDir, console, err, storage_or_fail
from mutoscope.cli.common import log_setup as _log_setup
from mutoscope.cli.common import registry_or_fail as _registry_or_fail
from mutoscope.cli.common import fail as _fail
from mutoscope.cli.common import open_sessions as _sessions
from mutoscope.cli.common import settings_for as _settings
from mutoscope.config import Settings

app = typer.Typer(help="Mutoscope: open, self-hosted video generation with an OpenAI-compatible Videos API.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
keys_app = typer.Typer(help="Manage API keys (stored hashed; shown once).", no_args_is_help=False)
users_app = typer.Typer(help="Manage users.", no_args_is_help=False)
models_app = typer.Typer(help="List, pull and remove models.", no_args_is_help=False)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")

@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(data_dir: DataDir = None,
          host: Annotated[Optional[str], typer.Option(
              envvar="MUTOSCOPE_HOST", show_default=False,
              help="Address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 for every "
                   "interface, e.g. behind a proxy or in a container.")] = None,
          port: Annotated[Optional[int], typer.Option(
              envvar="MUTOSCOPE_PORT", show_default=False, help="Port to listen on. Default 8000.")] = None,
          log_level: Annotated[str, typer.Option(
              help="debug, info, warning or error: how much the server logs.")] = "info",
          no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API only; jobs run in "
                                                   "`mutoscope worker` processes. Never imports torch.")] = False,
          forwarded_allow_ips: Annotated[str, typer.Option(
              envvar="FORWARDED_ALLOW_IPS", help="Proxies trusted to say the client's address and scheme "
              "(X-Forwarded-For, X-Forwarded-Proto): comma-separated addresses or networks, '*' for any.")
          ] = "127.0.0.1",
          ) -> None:
    """Run the API and a worker in one process (SQLite + a local data folder)."""
    import uvicorn

    from mutoscope.wiring import build_server

    _log_setup(log_level)
    from mutoscope.accounts.plans import PlansError
    from mutoscope.engine import RegistryError
    from mutoscope.storage import StorageUnavailable

    settings = _settings(data_dir, host=host, port=port)
    try:
        app_, owner_key, services, loader = build_server(settings, worker=not no_worker)
    except (RegistryError, PlansError, ValueError, StorageUnavailable) as e:  # bad config or storage: one line
        _fail(str(e))
    if owner_key:
        console.print("[bold]Created the owner account.[/bold] Its API key (shown once; also saved with mode "
                      f"0600 in {settings.owner_key_file}):\n\n    {owner_key}\n")
    console.print(f"Mutoscope {__version__}: web app http://{settings.host}:{settings.port}/ , API "
                  f"http://{settings.host}:{settings.port}/v1  (data: {settings.data_dir})", markup=False)
    from mutoscope.web.setup import model_setup

    for line in model_setup(services.catalog).lines():
        console.print(line, markup=False, highlight=False)
    # Only a trusted proxy's X-Forwarded-* are read: the client address the sign-in limit counts and the
    # scheme that makes cookies Secure and turns HSTS on come from it, never from the client itself.
    server = uvicorn.Server(uvicorn.Config(app_, host=settings.host, port=settings.port, log_level=log_level,
                                           proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips))
    if loader is not None:
        _start_when_listening(server, loader)
    server.run()


def _start_when_listening(server, loader) -> None:
    """Load the engine in the background once the server answers: torch and diffusers then never delay
    /health, and the first job usually finds them loaded."""
    import threading
    import time

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not server.started and not server.should_exit and time.monotonic() < deadline:
            time.sleep(0.05)
        loader.start()

    threading.Thread(target=watch, name="engine-start", daemon=True).start()


@app.command()
def worker(data_dir: DataDir = None, concurrency: int = 1, log_level: str = "info",
           gpus: Annotated[Optional[str], typer.Option(
               help="GPUs for this worker, e.g. 0,1: one process per GPU; a job whose model has context_parallel "
                    "runs on all of them, any other on the first.")] = None) -> None:
    """Run a GPU worker beside `serve --no-worker` or a Celery-mode API (same database and storage).

    With MUTOSCOPE_RUNNER=celery it is a Celery worker woken by messages; otherwise it polls the
    database queue. Either way SIGTERM finishes or hands back the running job."""

    if data_dir is not None:  # the Celery app reads Settings from the environment
        os.environ["MUTOSCOPE_DATA_DIR"] = str(data_dir)
    settings = _settings(data_dir)
    storage_or_fail(settings)  # a dead or wrong bucket stops the worker now, as one line, not its first job
    if gpus is not None:
        from mutoscope.cli import gpus as gpus_mod

        try:
            ids = gpus_mod.parse(gpus)
        except ValueError as e:
            _fail(str(e))
        if len(ids) > 1:
            if settings.runner == "celery":
                _fail("--gpus with more than one GPU runs the database-queue worker; in Celery mode run one "
                      "worker per GPU")
            if concurrency != 1:
                _fail("--gpus with more than one GPU runs one job at a time across them; leave --concurrency at 1")
            if os.environ.get(gpus_mod.RANK_ENV) is None:
                sys.exit(gpus_mod.launch(ids, sys.argv[1:]))
            gpus_mod.run_rank(settings, log_level,
                              lambda s, engine: _poll_worker(s, 1, log_level, engine=engine))
            return
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[0]
    if settings.runner != "celery":
        _poll_worker(settings, concurrency, log_level)
        return
    from mutoscope.wiring import celery_worker_app

    celery_app = celery_worker_app()
    # solo pool: the worker process itself runs jobs, so its loaded pipelines stay warm on its GPU and
    # nothing forks after torch has started. Run one worker per GPU.
    argv = ["worker", "--pool=solo" if concurrency == 1 else f"--concurrency={concurrency}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle"]
    celery_app.worker_main(argv)


def _poll_worker(settings: Settings, workers: int, log_level: str, engine=None) -> None:
    import signal
    import threading

    from mutoscope.jobs.runner import InProcessRunner
    from mutoscope.wiring import build_job_context

    _log_setup(log_level)
    runner = InProcessRunner(build_job_context(settings, migrate=False, engine=engine), workers=workers)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    runner.start()
    err.print(f"Mutoscope worker: {workers} job(s) at a time from {settings.db_url.split('@')[-1]}")
    done.wait()
    runner.stop()


@app.command()
def generate(prompt: Annotated[Optional[str], typer.Argument(help="What to generate (not with --storyboard).")] = None,
             output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")] = Path("clip.mp4"),
             model: Annotated[str, typer.Option(envvar="MUTOSCOPE_MODEL")] = "sora-2",
             seconds: str = "4",
             size: Annotated[Optional[str], typer.Option(help="WxH; default: the model's default size.")] = None,
             image: Annotated[Optional[Path], typer.Option(help="First-frame image.")] = None,
             audio: Annotated[Optional[Path], typer.Option(
                 help="A soundtrack (at most 60 s) the video is generated to; the video's sound is exactly it.")] = None,
             storyboard: Annotated[Optional[Path], typer.Option(
                 help="A TOML file of [[shots]] (docs/storyboards.md) rendered into one video.")] = None,
             seed: Optional[int] = None, steps: Optional[int] = None, guidance: Optional[float] = None,
             negative_prompt: Optional[str] = None,
             camera: Annotated[Optional[str], typer.Option(help="A camera move the model offers (`mutoscope models "
                                                                "list` shows them), e.g. dolly_in.")] = None,
             data_dir: DataDir = None) -> None:
    """Generate one video in this process, with a progress bar, and write the MP4."""
    from PIL import Image

    if (prompt is None) == (storyboard is None):
        _fail("give either a prompt or --storyboard FILE")
    if storyboard is not None:
        from mutoscope.cli.storyboard import render_file

        video_id, seed = render_file(storyboard, output, model=model, size=size, seed=seed, steps=steps,
                                     guidance=guidance, negative_prompt=negative_prompt,
                                     settings=_settings(data_dir), fail=_fail, err=err)
        console.print(f"Wrote {output} (id {video_id}, seed {seed})")
        return

    from mutoscope.db.models import new_id
    from mutoscope.engine import EngineError, GenerationSpec
    from mutoscope.provenance import Stamp
    from mutoscope.jobs.render import parse_size, render
    from mutoscope.media import fit_image
    from mutoscope.wiring import build_engine

    # A failure is told once, as the Error line below; the engine's log of the same failure stays quiet here.
    logging.basicConfig(level=logging.ERROR)
    settings = _settings(data_dir)
    engine = build_engine(settings)
    try:
        info = engine.resolve(model)
    except LookupError as e:
        _fail(str(e))
    size = size or info.default_size
    if size not in info.sizes:
        _fail(f"size {size} is not supported by {model}; supported: {', '.join(info.sizes)}")
    if seconds not in info.seconds:
        _fail(f"seconds {seconds} is not supported by {model}; supported: {', '.join(info.seconds)}")
    if camera is not None:
        from mutoscope.engine.camera import check_move
        from mutoscope.errors import MutoscopeError

        try:
            check_move(info, camera, name=model, param="--camera")
        except MutoscopeError as e:
            _fail(e.message)
    if info.test_model:
        err.print(f"[yellow]Note:[/yellow] {info.name} is a random-weight test model: it makes noise, not video.")
    w, h = parse_size(size)
    first = fit_image(Image.open(image).convert("RGB"), w, h) if image else None
    sound = rate = None
    if audio is not None:
        from mutoscope.media import MediaError
        from mutoscope.media.sound import SoundLimits, decode_sound
        from mutoscope.videos.conditioning import MAX_AUDIO_SECONDS

        if not info.has_audio:
            _fail(f"{model} makes no sound, so it cannot take --audio")
        try:
            sound, rate = decode_sound(audio, SoundLimits(max_seconds=MAX_AUDIO_SECONDS))
        except (MediaError, OSError) as e:
            _fail(f"--audio {audio} is not usable audio: {e}")
    spec = GenerationSpec(prompt=prompt, width=w, height=h, seconds=float(seconds),
                          seed=seed if seed is not None else random.randrange(2**31), image=first,
                          num_inference_steps=steps, guidance_scale=guidance, negative_prompt=negative_prompt,
                          camera=camera, audio=sound, audio_sample_rate=rate)
    from mutoscope.cli.bars import job_bar, reporter

    with job_bar(err) as bar, tempfile.TemporaryDirectory() as tmp:
        task = bar.add_task(f"{model} ({info.name})", total=100, detail="")
        try:
            # Made here or by the server, a video carries the same provenance: watermark + signed manifest.
            stamp = Stamp(data_dir=settings.data_dir, video_id=new_id("video_"), model=model,
                          generator_version=__version__)
            _, files = render(engine, model, spec, Path(tmp), reporter(bar, task), lambda: False,
                              provenance=stamp)
        except EngineError as e:
            bar.stop()  # the error is the last thing printed, not a bar drawn after it
            _fail(str(e))
        bar.update(task, completed=100)
        output.parent.mkdir(parents=True, exist_ok=True)
        files["video"].replace(output) if output.parent.stat().st_dev == Path(tmp).stat().st_dev \
            else output.write_bytes(files["video"].read_bytes())
    console.print(f"Wrote {output} (id {stamp.video_id}, seed {spec.seed})")


@keys_app.callback(invoke_without_command=True)
def keys_default(ctx: typer.Context, data_dir: DataDir = None) -> None:
    ctx.obj = data_dir
    if ctx.invoked_subcommand is None:
        keys_list(data_dir)


@keys_app.command("create")
def keys_create(user: str = "owner", name: str = "", data_dir: DataDir = None,
                expires_days: Annotated[Optional[int], typer.Option(help="Expire after N days.")] = None) -> None:
    """Create an API key for a user and print it once."""
    from mutoscope.accounts.service import create_key, get_user
    from mutoscope.db.models import now
    from mutoscope.errors import MutoscopeError

    with _sessions(_settings(data_dir))() as s:
        try:
            u = get_user(s, user)
        except MutoscopeError as e:
            _fail(e.message)
        key, plaintext = create_key(s, u, name=name, expires_at=now() + expires_days * 86400 if expires_days else None)
    err.print(f"Created key {key.id} ({key.prefix}…) for {u.name}. It is shown only once:")
    print(plaintext)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List API keys (prefixes only)."""
    from mutoscope.accounts.service import list_keys
    from mutoscope.cli.listing import when

    table = Table("id", "prefix", "user", "name", "created", "last used", "state")
    with _sessions(_settings(data_dir))() as s:
        for k, u in list_keys(s):
            state = "revoked" if k.revoked_at else "active"
            table.add_row(k.id, k.prefix + "…", u.name, k.name or "-", when(k.created_at), when(k.last_used_at, "never"),
                          state)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: str, data_dir: DataDir = None) -> None:
    """Revoke a key by id or prefix."""
    from mutoscope.accounts.service import revoke_key
    from mutoscope.errors import MutoscopeError

    with _sessions(_settings(data_dir))() as s:
        try:
            k = revoke_key(s, key)
        except MutoscopeError as e:
            _fail(e.message)
    console.print(f"Revoked {k.id}")


@users_app.callback(invoke_without_command=True)
def users_default(ctx: typer.Context, data_dir: DataDir = None) -> None:
    if ctx.invoked_subcommand is None:
        users_list(data_dir)


@users_app.command("create")
def users_create(name: str, role: str = "member", data_dir: DataDir = None,
                 with_key: Annotated[bool, typer.Option("--with-key/--no-key")] = True) -> None:
    """Create a user (and an API key, printed once)."""
    from mutoscope.accounts.service import create_key, create_user
    from mutoscope.errors import MutoscopeError

    with _sessions(_settings(data_dir))() as s:
        try:
            u = create_user(s, name, role)
        except (MutoscopeError, ValueError) as e:
            _fail(getattr(e, "message", str(e)))
        err.print(f"Created user {u.name} ({u.id}, {u.role})")
        if with_key:
            _, plaintext = create_key(s, u, name="created with user")
            print(plaintext)


def _operator(s):
    """Whoever runs the CLI is the operator, with the owner's powers; what they make is recorded as the owner's."""
    from sqlalchemy import select

    from mutoscope.accounts.service import Principal
    from mutoscope.db.models import User

    owner = s.scalar(select(User).where(User.role == "owner", User.disabled.is_(False)).order_by(User.created_at))
    if owner is None:
        _fail("there is no owner account yet: run `mutoscope serve` once first")
    return Principal(user_id=owner.id, user_name=owner.name, role="owner", key_id=None, plan=owner.plan)


def _link(settings, token: str) -> str:
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    return f"{base}/invite/{token}"


@users_app.command("invite")
def users_invite(email: Annotated[Optional[str], typer.Option(help="The account gets this address.")] = None,
                 name: Annotated[Optional[str], typer.Option(help="A suggested name they can change.")] = None,
                 role: str = "member", plan: Optional[str] = None,
                 days: Annotated[Optional[float], typer.Option(help="Valid for N days (default "
                                                                     "MUTOSCOPE_INVITE_DAYS, 7).")] = None,
                 data_dir: DataDir = None) -> None:
    """Make a one-time sign-up link for the web app and print it (shown once; stored hashed)."""
    from mutoscope.accounts import people
    from mutoscope.accounts.plans import PlansError, load_plans
    from mutoscope.errors import MutoscopeError

    settings = _settings(data_dir)
    try:
        plans = load_plans(settings.plans_file)
    except PlansError as e:
        _fail(str(e))
    with _sessions(settings)() as s:
        try:
            inv, token = people.create_invite(s, _operator(s), email=email, name=name, role=role, plan=plan, plans=plans,
                                              days=days if days is not None else settings.invite_days)
        except MutoscopeError as e:
            _fail(e.message)
    from mutoscope.cli.listing import when

    err.print(f"Created invite {inv.id} ({inv.role}), usable once until {when(inv.expires_at)}. "
              "The link is shown only once:")
    print(_link(settings, token))


@users_app.command("reset-link")
def users_reset_link(user: Annotated[str, typer.Argument(help="Their email, name or id.")],
                     days: Annotated[float, typer.Option(help="Valid for N days (at most 7).")] = 1.0,
                     data_dir: DataDir = None) -> None:
    """Make a one-time link that sets a new password for someone who forgot theirs, and print it (shown once).
    Mutoscope sends no mail: hand the link over yourself."""
    from mutoscope.accounts import people
    from mutoscope.errors import MutoscopeError

    settings = _settings(data_dir)
    with _sessions(settings)() as s:
        try:
            inv, person, token = people.create_reset_link(s, _operator(s), user, days=days)
        except MutoscopeError as e:
            _fail(e.message)
        name = person.name
    err.print(f"Password reset link for {name}, usable once until {inv.expires_at}. It is shown only once:")
    print(_link(settings, token))


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """List users."""
    from sqlalchemy import select

    from mutoscope.cli.listing import when
    from mutoscope.db.models import User

    table = Table("id", "name", "role", "created")
    with _sessions(_settings(data_dir))() as s:
        for u in s.scalars(select(User).order_by(User.created_at)):
            table.add_row(u.id, u.name, u.role, when(u.created_at))
    console.print(table)


@models_app.callback(invoke_without_command=True)
def models_default(ctx: typer.Context, data_dir: DataDir = None) -> None:
    if ctx.invoked_subcommand is None:
        models_list(data_dir)


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """List configured models: family, aliases, audio, download size, installed; then each model's camera moves."""
    from mutoscope.cli.listing import model_columns
    from mutoscope.engine.camera import summary
    from mutoscope.engine.catalog import Catalog

    # The registry and the weights folder answer this: no engine (torch, diffusers), no database.
    settings = _settings(data_dir)
    registry = _registry_or_fail(settings)
    models = Catalog(registry, settings.resolved_weights_dir).list_models()
    columns = model_columns()
    table = Table(*(c.header for c in columns))
    for m in models:
        table.add_row(*(c.cell(m) for c in columns))
    console.print(table)
    from mutoscope.engine import memory

    plans = Table(*memory.COLUMNS, title="Memory plan (estimates from the checkpoints' parameter counts; docs/models.md)")
    here = memory.machine(settings.engine_host_ram_budget_bytes, settings.engine_vram_budget_bytes)
    for row in memory.rows(registry.entries(), settings.resolved_weights_dir, here):
        plans.add_row(*row)
    console.print(plans)
    cameras = Table("model", "camera moves: LoRA adapter", "folded into the prompt", "LoRA not pulled",
                    title="Camera moves (extension field `camera`)")
    for m in models:
        moves = summary(m)
        if any(moves.values()):
            cameras.add_row(m.name, ", ".join(moves["adapter"]) or "-", ", ".join(moves["prompt"]) or "-",
                            ", ".join(moves["not_installed"]) or "-")
    console.print(cameras)


@models_app.command("pull")
def models_pull(name: str, data_dir: DataDir = None) -> None:
    """Download a model's weights (only the files its pipeline needs; resumable)."""
    from mutoscope.engine import weights
    from mutoscope.engine.registry import load_registry

    settings = _settings(data_dir)
    try:
        entry = load_registry(settings.models_file, settings.model_aliases or None,
                              settings.engine_overrides or None).resolve(name)
    except LookupError as e:
        _fail(str(e))
    plan = None
    if not entry.is_builtin and not weights.is_local_path(entry.weights):
        if (why := _hub_unreachable()) is not None:
            _fail(f"cannot reach the Hugging Face hub ({why}). Set HF_ENDPOINT to a mirror you can reach and run "
                  f"this again, or copy {entry.weights} into a folder here and register it: "
                  f"mutoscope models add PATH --model {name}")
        try:
            plan = weights.plan_pull(entry, settings.resolved_weights_dir)
        except Exception as e:  # network errors: one line, no traceback
            _fail(f"could not read {entry.weights} on the hub: {e}")
        adapter_bytes = sum(a.size for a in plan.adapters)
        err.print(f"{entry.name}: {len(plan.files) + len(plan.adapters)} files, "
                  f"{weights.format_bytes(plan.total_bytes)} ({weights.format_bytes(plan.to_download_bytes)} to "
                  f"download); {weights.format_bytes(plan.free_bytes)} free at {plan.target}")
        if plan.adapters:
            err.print(f"  of which camera LoRAs: {len(plan.adapters)} files, {weights.format_bytes(adapter_bytes)}")
        if not plan.fits:
            _fail(f"not enough disk space for {entry.name}: {weights.format_bytes(plan.to_download_bytes)} "
                  f"to download, {weights.format_bytes(plan.free_bytes)} free at {plan.target}")
    elif any(m.lora and not m.is_local for m in entry.camera.values()):
        try:
            adapters = weights.plan_adapters(entry, settings.resolved_weights_dir)
        except Exception as e:  # network errors: one line, no traceback
            _fail(f"could not read {entry.name}'s camera LoRAs on the hub: {e}")
        missing = sum(a.size for a in adapters if not a.present)
        err.print(f"{entry.name}: camera LoRAs: {len(adapters)} files, "
                  f"{weights.format_bytes(sum(a.size for a in adapters))} ({weights.format_bytes(missing)} to download)")
        plan = weights.PullPlan(target=weights.model_dir(entry, settings.resolved_weights_dir), patterns=[], files={},
                                present_bytes=0, free_bytes=0, adapters=adapters)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(f"{entry.name} ({entry.weights})", total=1.0)
        try:
            path = weights.pull(entry, settings.resolved_weights_dir,
                                lambda frac, msg: bar.update(task, completed=frac, description=msg or entry.name),
                                plan=plan)
        except Exception as e:  # network errors and failed verification: one line, no traceback
            _fail(f"could not install {entry.name}: {e}")
    if plan is not None and plan.files:
        console.print(f"{entry.name}: verified (every component present, configs load, "
                      f"{len(plan.files)} file sizes match)")
    if plan is not None and plan.adapters:
        console.print(f"{entry.name}: {len(plan.adapters)} camera LoRA(s) verified (sizes match, LoRA tensors)")
    console.print(f"{entry.name} is installed at {path}")


def _hub_unreachable() -> str | None:
    """Why the hub cannot be asked now, in a few words; None when it answers. One quick request, so an
    unreachable hub is one line instead of huggingface_hub's retries."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        httpx.head(constants.ENDPOINT, timeout=8)
    except httpx.HTTPError as e:
        return f"{constants.ENDPOINT} does not answer: {type(e).__name__}"
    return None


@models_app.command("add")
def models_add(path: Annotated[Path, typer.Argument(help="A folder holding a model's diffusers weights "
                                                          "(model_index.json and one folder per component).")],
               model: Annotated[Optional[str], typer.Option(
                   help="Which configured model the folder holds (a name or alias); found from the folder's "
                        "name or hub-cache path when left out.")] = None,
               data_dir: DataDir = None) -> None:
    """Register weights copied here by hand (no network): check the folder, then link it as the model's."""
    from mutoscope.engine import folders

    settings = _settings(data_dir)
    registry = _registry_or_fail(settings)
    folder = path.expanduser()
    if not (folder / "model_index.json").is_file():
        _fail(f"{folder} has no model_index.json: give the folder that holds the model's components")
    if model is not None:
        try:
            entry = registry.resolve(model)
        except LookupError as e:
            _fail(str(e))
    elif (entry := folders.detect(registry, folder)) is None:
        _fail(f"cannot tell which model {folder} holds; name it with --model (mutoscope models list)")
    if entry.is_builtin:
        _fail(f"{entry.name} is built in; it needs no weights")
    found = folders.problems(entry, folder)
    if found:
        _fail(f"{folder} is not a complete copy of {entry.weights}: {'; '.join(found[:5])}"
              + (f" (and {len(found) - 5} more)" if len(found) > 5 else ""))
    try:
        target = folders.register(entry, folder, settings.resolved_weights_dir)
    except (ValueError, OSError) as e:
        _fail(str(e))
    console.print(f"{entry.name} is installed: {target} -> {folder.resolve()}", markup=False, highlight=False)


@models_app.command("rm")
def models_rm(name: str, data_dir: DataDir = None) -> None:
    """Remove a model's downloaded weights."""
    from mutoscope.engine import weights
    from mutoscope.engine.registry import load_registry

    settings = _settings(data_dir)
    try:
        registry = load_registry(settings.models_file, settings.model_aliases or None,
                                 settings.engine_overrides or None)
        entry = registry.resolve(name)
    except LookupError as e:
        _fail(str(e))
    if weights.remove(entry, settings.resolved_weights_dir):
        console.print(f"Removed the weights of {entry.name}")
    else:
        console.print(f"{entry.name} has no downloaded weights to remove")
    removed = weights.remove_adapters(entry, settings.resolved_weights_dir, registry.entries())
    if removed:
        console.print(f"Removed {len(removed)} camera LoRA(s) of {entry.name}: {', '.join(removed)}")


def main() -> None:  # pragma: no cover
    sys.exit(app())


from mutoscope.cli import exports as _exports  # noqa: E402  (export, import, migrate)

_exports.register(app)

from mutoscope.cli import verify as _verify  # noqa: E402  (provenance)

_verify.register(app)


# Feature groups register their commands here (one line each).
from mutoscope.cli import lifecycle as _lifecycle  # noqa: E402

_lifecycle.register(app, users_app, models_app)
from mutoscope.cli import assistants as _assistants  # noqa: E402

_assistants.register(app)
from mutoscope.cli import batches as _batches  # noqa: E402  (mutoscope batch …)

_batches.register(app)
