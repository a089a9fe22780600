"""The columns of `mutoscope models list`: one entry per column, so a column is added in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.table import Column


@dataclass(frozen=True)
class ModelColumn:
    title: str
    value: Callable[[Any], str]
    # A name is never cut or folded: it is what people type (`models pull NAME`).
    whole: bool = False

    @property
    def header(self) -> Column:
        return Column(self.title, no_wrap=self.whole, min_width=len(self.title))

    def cell(self, model: Any) -> str:
        return self.value(model)


def _download(m: Any) -> str:
    if m.test_model:
        return "built in"
    return f"~{m.download_gb:g} GB" if getattr(m, "download_gb", None) else "-"


def _installed(m: Any) -> str:
    return {True: "yes", False: "no", None: "on the workers"}[m.installed]


def model_columns() -> list[ModelColumn]:
    return [
        ModelColumn("model", lambda m: m.name, whole=True),
        ModelColumn("family", lambda m: m.family, whole=True),
        ModelColumn("aliases", lambda m: ", ".join(m.aliases) or "-"),
        ModelColumn("audio", lambda m: "yes" if m.has_audio else "no", whole=True),
        ModelColumn("download", _download, whole=True),
        ModelColumn("installed", _installed, whole=True),
        ModelColumn("licence", lambda m: m.license or "-"),
        ModelColumn("note", lambda m: "test model: random weights, makes noise" if m.test_model else m.description),
    ]


def when(ts: float | int | None, empty: str = "-") -> str:
    """A stored Unix time as people read it: the date and minute in this machine's time zone."""
    if not ts:
        return empty
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def amount(x: float | int | None, none: str = "unlimited") -> str:
    """A number, or what None means where it is shown (an unlimited budget, no schedule): never "None"."""
    return none if x is None else f"{x:g}"
