"""The engine room: turns a generation spec into frames and sound.

PUT HERE: the narrow `VideoEngine` interface, one module per model family
(built on the real diffusers pipeline classes), the model registry (TOML),
weights resolution and download.
DO NOT PUT HERE: HTTP, database rows, job state, wire types (protocol/),
MP4 encoding (media/). Nothing here imports fastapi, sqlalchemy, protocol or jobs.
"""

from mutoscope.engine.base import (
    EngineError,
    GenerationCancelled,
    GenerationOutput,
    GenerationSpec,
    ModelNotAvailable,
    StepHooks,
    VideoEngine,
)

__all__ = [
    "EngineError",
    "GenerationCancelled",
    "GenerationOutput",
    "GenerationSpec",
    "ModelNotAvailable",
    "StepHooks",
    "VideoEngine",
]
