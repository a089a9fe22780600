"""Whether this server can make a real video yet, and what to tell people while it cannot.

A fresh server has only the test fixtures (random weights: they make noise). Every creator page then shows one
panel naming the model to pull, its download size and the ways to get it onto a machine without the hub, and
`serve` says the same at start. Reads the catalog only (names, flags, installed or not): no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The public name a new operator is told to pull: the one OpenAI's clients ask for by default.
FIRST_MODEL = "sora-2"


@dataclass(frozen=True)
class Setup:
    """ready: a real model is installed (or this process cannot see the weights: the workers hold them).
    suggest: the public name to pull; model: its catalog entry (None when the models file has no real model).
    noise: every name and alias of the test models, for the "makes noise" label wherever a video shows its model.
    """

    ready: bool
    suggest: str | None
    model: Any
    noise: frozenset[str]

    @property
    def pull(self) -> str:
        return f"mutoscope models pull {self.suggest}" if self.suggest else ""

    @property
    def download(self) -> str:
        """The download size the models file records for the suggested model ("" when it records none)."""
        gb = getattr(self.model, "download_gb", None)
        return f"about {gb:g} GB" if gb else ""

    def lines(self) -> list[str]:
        """The same advice as plain text, for `serve`'s start-up output."""
        if self.ready:
            return []
        if self.suggest is None:
            return ["No real model is configured: add one to the models file (docs/models.md); until then "
                    "only the test models run, and they make noise."]
        size = f" ({self.download})" if self.download else ""
        return [f"No real model is installed: videos would be noise. Install one with `{self.pull}`{size}.",
                "  Offline or behind a firewall: set HF_ENDPOINT to a Hugging Face mirror, or copy the weights "
                "into a folder and name it as the model's `weights` in the models file (docs/models.md)."]


def model_setup(catalog: Any) -> Setup:
    entries = list(getattr(catalog, "list_models", lambda: [])())
    noise = frozenset(n for e in entries if e.test_model for n in (e.name, *e.aliases))
    real = [e for e in entries if not e.test_model]
    ready = any(e.installed is not False for e in real)
    pick = next((e for e in real if FIRST_MODEL in e.aliases), real[0] if real else None)
    suggest = None if pick is None else (FIRST_MODEL if FIRST_MODEL in pick.aliases else pick.name)
    return Setup(ready=ready, suggest=suggest, model=pick, noise=noise)
