"""Models API (OpenAI's Model object) plus Mutoscope's capability fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelCameraMove(BaseModel):
    move: str
    applied: Literal["adapter", "prompt"]
    # adapter moves: its LoRA is on this server (null: an API-only process cannot see the workers' files)
    installed: bool | None = True


class ModelObject(BaseModel):
    # OpenAI standard fields
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    # Mutoscope extensions
    family: str
    alias_of: str | None = None
    has_audio: bool
    sizes: list[str]
    seconds: list[str]
    fps: float
    license: str
    installed: bool | None  # null: the API process cannot see its workers' weights
    test_model: bool
    status: Literal["active", "deprecated", "shutdown"] = "active"
    shutdown_date: int | None = None
    replacement: str | None = None
    camera: list[ModelCameraMove] = []
    # What an edit or remix without `edit_strength` gets.
    edit_strength: float | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
