"""The create and edit forms' choices: the models a person may pick, each size and length labelled, with
what their plan allows and why not.

PUT HERE: how a form shows the catalog under a plan (labels, the reason a choice is greyed out).
DO NOT PUT HERE: the rules themselves; they are `videos.admission.Admission`'s, which refuses the same
request from any front end.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutoscope.accounts import quota
from mutoscope.accounts.service import Principal
from mutoscope.videos import conditioning
from mutoscope.videos.admission import Admission


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class ModelChoice:
    """One model a person may pick, under the name their plan knows it by, with what the plan allows."""

    name: str
    label: str
    test_model: bool
    sizes: list[Choice]
    seconds: list[Choice]
    default_size: str | None = None
    takes_audio: bool = False  # an `audio_reference` the picture is generated to


def _size_label(size: str) -> str:
    w, h = (int(x) for x in size.split("x"))
    shape = "Portrait" if w < h else "Landscape" if w > h else "Square"
    return f"{shape} {w}×{h}"


def model_choices(admission: Admission, who: Principal, test_models: str = "never") -> list[ModelChoice]:
    """The models a person may pick, each under the first of its names the caller's plan allows, with the
    sizes and durations it offers and, for each, whether the plan allows it and why not.

    Only installed models (or, on an API-only process, models whose weights it cannot see). Test fixtures
    (`test_model`, random weights that make noise) only with `test_models="always"`, the operator's choice:
    a creator on a server with no real model gets the page that says so, not a form that makes noise."""
    plan = admission.plan_of(who)
    with admission.sessions() as s:
        left = quota.usage(s, plan, who.user_id)["left"]
    entries = [e for e in getattr(admission.catalog, "list_models", lambda: [])() if e.installed is not False]
    named = [(e, n) for e in entries
             if (n := next((x for x in (*e.aliases, e.name) if plan.allows_model(x)), None)) is not None]
    real = [(e, n) for e, n in named if not e.test_model]
    show_tests = test_models == "always"
    out = []
    for e, name in real + ([(e, n) for e, n in named if e.test_model] if show_tests else []):
        title = "Test model (makes noise)" if e.test_model else \
            (e.description.split(":", 1)[0].strip() if e.description else e.name)
        sizes = [Choice(sz, _size_label(sz), plan.allows_size(sz),
                        "" if plan.allows_size(sz) else f"not on your plan ({plan.name})") for sz in e.sizes]
        seconds = []
        for sec in e.seconds:
            cost = plan.cost(name, float(sec))
            if plan.max_seconds is not None and float(sec) > plan.max_seconds:
                seconds.append(Choice(sec, f"{sec} s", False, f"your plan allows up to {plan.max_seconds:g} s"))
            elif left is not None and cost > left + 1e-9:
                seconds.append(Choice(sec, f"{sec} s", False, f"costs {cost:g} {plan.unit}, {left:g} left"))
            else:
                seconds.append(Choice(sec, f"{sec} s", True))
        out.append(ModelChoice(name, f"{title} · {name}" if e.test_model or title != name else name,
                               e.test_model, sizes, seconds, admission.default_size(name, e),
                               conditioning.takes_audio_reference(e)))
    return out

def edit_strength_of(admission: Admission, model: str) -> float | None:
    """What an edit on `model` gets without `edit_strength` (None: no such model here)."""
    try:
        strength = getattr(admission.catalog.resolve(model), "edit_strength", None)
    except LookupError:
        return None
    return float(strength) if strength is not None else None
