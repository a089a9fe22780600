"""One module per model family, each wrapping the real diffusers pipelines.

PUT HERE: a module per family (`ltx2.py`, `wan.py`) implementing `base.Family`,
and the `FAMILIES` table the registry validates against.
DO NOT PUT HERE: the registry, weights download, or the engine's fitting logic.
"""

from mutoscope.engine.families.base import Family, LoadedPipelines, RawOutput
from mutoscope.engine.families.ltx2 import LTX2Family
from mutoscope.engine.families.minimax_h3 import MiniMaxH3Family
from mutoscope.engine.families.wan import WanFamily

FAMILIES: dict[str, Family] = {f.name: f for f in (LTX2Family(), MiniMaxH3Family(), WanFamily())}

__all__ = ["FAMILIES", "Family", "LoadedPipelines", "RawOutput"]
