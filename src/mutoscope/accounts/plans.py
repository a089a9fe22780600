"""Plans: what a user may generate, how much, how fast, and how urgently. Loaded from TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mutoscope.errors import InvalidRequest

SHIPPED = Path(__file__).with_name("plans.toml")


class PlansError(ValueError):
    """A plans file that can't be used; the message names the file (and line when TOML is malformed)."""


@dataclass(frozen=True)
class Plan:
    name: str
    models: tuple[str, ...] = ("*",)
    sizes: tuple[str, ...] = ("*",)
    max_seconds: float | None = None
    monthly_seconds: float | None = None
    credits: float | None = None
    prices: dict[str, float] = field(default_factory=dict)
    concurrent_jobs: int = 1
    requests_per_minute: int = 60
    priority: int = 0
    extensions: bool = True
    retention_days: float | None = None
    visible_watermark: bool = False
    # A job conditioned on references (cameos' faces and voices, characters) or a supplied soundtrack is
    # charged this many times its seconds: the model and its references cost more GPU time.
    reference_cost: float = 1.0

    @property
    def unit(self) -> str:
        return "credits" if self.credits is not None else "seconds"

    @property
    def budget(self) -> float | None:
        return self.credits if self.credits is not None else self.monthly_seconds

    def allows_model(self, model: str) -> bool:
        return "*" in self.models or model in self.models

    def allows_size(self, size: str) -> bool:
        return "*" in self.sizes or size in self.sizes

    def cost(self, model: str, seconds: float) -> float:
        """Budget units one generation of `seconds` costs."""
        if self.credits is None:
            return seconds
        price = self.prices.get(model, self.prices.get("*", 1.0))
        return seconds * price


_FIELDS = set(Plan.__dataclass_fields__) - {"name"}


def load_plans(path: Path | None = None) -> dict[str, Plan]:
    path = path or SHIPPED
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise PlansError(f"{path}: {e}") from None  # the message carries "(at line N, column M)"
    except OSError as e:
        raise PlansError(f"{path}: {e.strerror}") from None
    plans: dict[str, Plan] = {}
    for name, raw in (data.get("plans") or {}).items():
        unknown = set(raw) - _FIELDS
        if unknown:
            raise PlansError(f"{path}: plan {name!r} has unknown settings: {', '.join(sorted(unknown))}")
        kw = dict(raw)
        for key in ("models", "sizes"):
            if key in kw:
                kw[key] = tuple(kw[key])
        plans[name] = Plan(name=name, **kw)
    if not plans:
        raise PlansError(f"{path}: defines no [plans.NAME] tables")
    return plans


def server_plans(path: Path | None, default_plan: str) -> dict[str, Plan]:
    """The plans a server runs with: the file's, refused at start when the default plan is not one of them
    (every new account would otherwise get a plan that does not exist)."""
    plans = load_plans(path)
    if default_plan not in plans:
        raise ValueError(f"MUTOSCOPE_DEFAULT_PLAN={default_plan!r} is not a plan in the plans file "
                         f"({', '.join(plans)})")
    return plans


def plan_for(plans: dict[str, Plan], name: str | None, default: str) -> Plan:
    """An account's plan (`name`, or the default plan); a plan since removed from the plans file is a clear 400
    for that account, not a failure of every page that shows its usage."""
    name = name or default
    if name not in plans:
        raise InvalidRequest(f"Your account's plan '{name}' is not configured on this server; ask the operator.",
                             code="plan_not_configured")
    return plans[name]
