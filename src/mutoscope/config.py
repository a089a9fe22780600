"""One `Settings` object for the whole process, read from MUTOSCOPE_* env vars and `.env`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUTOSCOPE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("mutoscope-data")
    # Default: SQLite inside data_dir. Scale-out: postgresql+psycopg://...
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # The address users reach this server at (behind a proxy, or from `mutoscope mcp`), for the links
    # in MCP tool results; unset, /mcp uses the address of each request and stdio http://host:port.
    public_url: str | None = None

    # Operator's models file (TOML); None uses the defaults shipped in engine/models.toml.
    models_file: Path | None = None
    # Extra alias overrides, e.g. {"sora-2": "tiny-ltx2"} (JSON in the env var).
    model_aliases: dict[str, str] = Field(default_factory=dict)
    weights_dir: Path | None = None
    device: str | None = None
    # Memory/speed modes over the models file, for every model ("cache") or one ("ltx-2.cache"),
    # e.g. {"memory": "group_offload", "wan2.2-ti2v-5b.cache": "first_block"} (JSON in the env var).
    engine_overrides: dict[str, str | bool | float] = Field(default_factory=dict)
    # Bytes a worker's loaded models may hold in host RAM and in GPU memory before the least recently used
    # is unloaded (engine/residency.py); unset: 80 % of this machine's RAM and 95 % of its GPU's memory.
    engine_host_ram_budget_bytes: int | None = Field(default=None, gt=0)
    engine_vram_budget_bytes: int | None = Field(default=None, gt=0)

    # Where artifacts live: unset keeps them in <data_dir>/assets; `file:///path` is another folder;
    # `s3://bucket/prefix` an S3-compatible bucket, so API and workers on different machines share them.
    storage_url: str | None = None
    # S3 connection; each unset one falls back to boto3's own lookup (AWS_ENDPOINT_URL, AWS_REGION,
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles).
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # "path" suits MinIO, SeaweedFS and most self-hosted servers; "auto" lets boto3 choose (AWS).
    s3_addressing_style: Literal["auto", "path", "virtual"] = "path"

    max_upload_bytes: int = 50 * 1024 * 1024
    # A batch's input file (POST /v1/batches): at most this many lines and bytes, refused at create otherwise.
    max_batch_lines: int = Field(1000, gt=0)
    max_batch_bytes: int = Field(50 * 1024 * 1024, gt=0)
    # An uploaded clip (edit source, character, cameo) is refused at create when its headers say it is longer,
    # larger or has more frames than this; a few KB of static video can otherwise claim hours of 4K.
    max_input_seconds: float = 60.0
    max_input_pixels: int = 3840 * 2160
    max_input_frames: int = 3600
    # RAM one job may spend on decoded frames, counted in RGB bytes (width x height x 3 per frame): the source
    # frames it decodes plus three times its output (the stitched or generated frames, their watermarked copy,
    # and the stitch's inputs while it concatenates). An edit or extension over it is refused at create.
    # The default fits the default lineage (120 s at 720x1280, 24 fps: 3 x 7.9 GB) with room to spare.
    job_memory_budget_bytes: int = 32 * 1024**3
    # Export archives brought back in (POST /v1/imports, `mutoscope import`).
    max_import_bytes: int = 50 * 1024**3
    # Everything in one archive, uncompressed (None: twice max_import_bytes; media is stored, not deflated).
    max_import_expanded_bytes: int | None = None
    max_import_entries: int = 200_000
    max_import_manifest_bytes: int = 64 * 1024 * 1024
    # Assets never expire unless the operator sets a retention.
    retention_days: float | None = None
    poll_after_ms: int = 1000
    # Draw "@owner" on every frame of a job that carries no plan's decision (each plan sets its own).
    visible_watermark_default: bool = False

    # Whether the web app offers the test fixtures (random weights: they make noise) to creators: "never" (the
    # default: a creator never makes noise by mistake) or "always" (labelled as noise wherever they appear; for
    # trying the app out without a GPU, and the test suite). The API accepts them either way.
    web_test_models: Literal["always", "never"] = "never"

    # The prompt examples the create form offers to start from (a click puts one in the prompt box); [] for none.
    prompt_examples: list[str] = Field(default_factory=lambda: [
        "A lighthouse on a cliff at dusk, waves breaking below, the beam sweeping through sea mist",
        "A calico cat plays a grand piano on a small stage; the audience laughs and applauds",
        "Close-up of hands kneading dough on a floury wooden table, morning light from a window",
        "A red kite dances over a green hill on a windy day, long grass rippling below",
    ], max_length=20)

    # Public links: owners may make a link to a finished video that anyone can watch without signing in
    # (signed, revocable, optionally expiring; the page leads nowhere else). Off: links need an account here.
    public_links: bool = False
    # Requests per minute one client address may make to public links (a view is a few range requests).
    public_link_requests_per_minute: int = Field(default=120, ge=1, le=100_000)

    # Plans (TOML; None = the shipped examples) and the plan of users who have none set.
    plans_file: Path | None = None
    default_plan: str = "free"

    # Extensions: a lineage is a video and the chain of extensions built on it.
    max_extensions_per_lineage: int = 6
    max_lineage_seconds: float = 120.0
    # Storyboards: the most shots one video may have (each is a generation inside the one job); at most
    # 100, the most a request's storyboard is read for.
    max_storyboard_shots: int = Field(default=8, ge=1, le=100)

    # faster-whisper model folder for cameo verification (None: <weights_dir>/faster-whisper).
    likeness_whisper_model: str | None = None
    # A deleted cameo is disabled at once; its biometrics are purged after this grace period.
    cameo_purge_grace_days: float = 30
    # The likeness guard scans input images and clips for faces of people who have not consented. "on"
    # fails closed: when face detection is unavailable, anything that could show a person is refused.
    # "off" accepts every face unchecked; only an operator who has another safeguard should set it.
    likeness_guard: Literal["on", "off"] = "on"

    # Outbound requests to user-supplied URLs (webhooks, input_reference.image_url) reach public
    # addresses only. Entries opened anyway, e.g. ["10.1.2.0/24", "[::1]:9000", "hooks.internal"]
    # (JSON in the env var); metadata addresses open only when an entry names that exact address.
    outbound_allow: list[str] = Field(default_factory=list)
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # The key that seals secrets stored in the database (webhook signing secrets): 32 bytes, urlsafe
    # base64. Unset: a key file made on first start in data_dir (mode 0600), never in the database.
    secret_key: SecretStr | None = None

    # People in the web app. Off: accounts come only from invites (the owner's or an admin's link, or
    # `mutoscope users invite`); on: anyone who can reach /signup makes a member account on the default plan.
    open_signup: bool = False
    # Failed password sign-ins tolerated per account and per client address within the window; past
    # either, sign-in answers 429 with Retry-After until the oldest failure leaves the window.
    signin_failures_per_account: int = Field(default=5, ge=1, le=1000)
    signin_failures_per_ip: int = Field(default=20, ge=1, le=10000)
    signin_window_s: float = Field(default=900.0, gt=0, le=86400)
    # How long an invite link stays usable unless its maker picks another expiry.
    invite_days: float = Field(default=7.0, gt=0, le=90)

    runner: Literal["inprocess", "celery"] = "inprocess"
    broker_url: str = "redis://127.0.0.1:6379/0"
    # How many times a job interrupted by a crash is re-run before it is failed.
    max_attempts: int = 3
    # A running job's lease: its worker renews it every quarter of this; another runner takes the job back
    # once it has not been renewed for this long. Long enough to ride out a database failover or a slow
    # checkpoint load between renewals, short enough that a dead GPU worker's job restarts within a minute.
    lease_seconds: float = Field(60.0, gt=0)
    # The wall-clock backstop: a job running longer than this stops renewing its lease (a hung GPU kernel
    # renews on a timer forever otherwise), so it is taken back like a dead worker's.
    max_job_seconds: float = Field(6 * 3600.0, gt=0)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("outbound_allow", mode="after")
    @classmethod
    def _allow_entries(cls, v: list[str]) -> list[str]:
        from mutoscope.outbound import parse_allow_entry  # raises ValueError naming a bad entry

        for entry in v:
            parse_allow_entry(entry)
        return v

    @field_validator("storage_url", mode="after")
    @classmethod
    def _storage_scheme(cls, v: str | None) -> str | None:
        if v and not v.startswith(("s3://", "file://")):
            raise ValueError("MUTOSCOPE_STORAGE_URL must be s3://bucket[/prefix] or file:///path")
        return v or None

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'mutoscope.db'}"

    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets"

    @property
    def resolved_weights_dir(self) -> Path:
        return self.weights_dir or self.data_dir / "weights"

    @property
    def owner_key_file(self) -> Path:
        return self.data_dir / "owner-api-key"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret-key"
