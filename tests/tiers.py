"""The two tiers of the suite: `live` tests start subprocess servers, every other test runs in-process.

A test lands in the `live` tier by itself: `mark_live` reads the source of the test function, of every
fixture it uses (its whole fixture closure) and of the functions its module defines that those call, and
marks the test `live` when any of them starts a server process (a `LiveServer`, a `python -m mutoscope`
subprocess, SeaweedFS, the browser, the MCP stdio server). `python -m pytest -m "not live"` is then the
fast tier. A parametrized fixture with one live backend among in-process ones marks that param instead,
`params=["local", pytest.param("s3", marks=pytest.mark.live)]`, and is not read. What reading source
cannot see (a helper in another module that spawns) is caught while the test runs: `guard_spawns`
refuses such a process in a test that is not marked `live`, naming the marker.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

# What starting a server process looks like in this suite's source.
SPAWNS = re.compile(r"LiveServer\(|\bserve_live\(|\bstart_s3_server\(|\bs3_server\b|sys\.executable|\bPopen\(|\.cli\(|"
                    r"\bstdio_params\(|\bBrowser\(")

_current_is_live = False


def _source(obj) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return ""


@cache
def _spawning_functions(path: str) -> frozenset[str]:
    """The names of the module-level functions and classes in one file that start a server, directly or
    through another function of the same file."""
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError):
        return frozenset()
    # Fixtures are left out: a test meets them through its fixture closure, where their params count.
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not any("fixture" in ast.unparse(d) for d in n.decorator_list)}
    source = Path(path).read_text()
    calls = {name: {c.id for c in ast.walk(node) if isinstance(c, ast.Name)} for name, node in defs.items()}
    spawning = {name for name, node in defs.items() if SPAWNS.search(ast.get_source_segment(source, node) or "")}
    grew = True
    while grew:
        more = {name for name, used in calls.items() if name not in spawning and used & spawning}
        spawning |= more
        grew = bool(more)
    return frozenset(spawning)


@cache
def _starts_a_server(func) -> bool:
    text = _source(func)
    if SPAWNS.search(text):
        return True
    path = inspect.getsourcefile(func) if callable(func) else None
    if not path or not text:
        return False
    spawning = _spawning_functions(path)
    return any(isinstance(n, ast.Name) and n.id in spawning for n in ast.walk(ast.parse(text)))


def _marks_its_live_params(fixturedef) -> bool:
    return any(any(m.name == "live" for m in getattr(p, "marks", ())) for p in fixturedef.params or ())


def _asked_by_name(item) -> set[str]:
    text = _source(getattr(item, "function", None))
    if "getfixturevalue" not in text:
        return set()
    return {n.value for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.isidentifier()}


def is_live(item) -> bool:
    if item.get_closest_marker("live"):
        return True
    if _starts_a_server(getattr(item, "function", None)):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for name in _asked_by_name(item):  # request.getfixturevalue("srv"): not in the closure pytest computed
        if any(_starts_a_server(d.func) for d in item.session._fixturemanager.getfixturedefs(name, item) or ()):
            return True
    for name in info.names_closure if info else ():
        # The closest definition wins; one it overrides counts only when it asks for it by its own name.
        for fixturedef in reversed(info.name2fixturedefs.get(name, ())):
            if _marks_its_live_params(fixturedef):
                break  # a fixture whose params say which of them are live: pytest put the mark on those
            if _starts_a_server(fixturedef.func):
                return True
            if name not in fixturedef.argnames:
                break
    return False


def mark_live(items) -> None:
    import pytest

    for item in items:
        if is_live(item) and not item.get_closest_marker("live"):
            item.add_marker(pytest.mark.live)


def _server_argv(args) -> bool:
    argv = [str(a) for a in (args if isinstance(args, (list, tuple)) else [args])]
    if not argv:
        return False
    if argv[0] == sys.executable and argv[1:3] == ["-m", "mutoscope"]:
        return True
    return Path(argv[0]).name in ("weed", "chromium", "chromium-browser", "google-chrome")


_real_init = subprocess.Popen.__init__


def _guarded_init(self, args, *rest, **kwargs):
    if not _current_is_live and _server_argv(args):
        import pytest

        pytest.fail(f"this test starts a server process ({' '.join(map(str, args[:4]))} …) but is not in "
                    "the live tier: mark it @pytest.mark.live (tests/tiers.py did not see the spawn)",
                    pytrace=False)
    _real_init(self, args, *rest, **kwargs)


def guard_spawns() -> None:
    subprocess.Popen.__init__ = _guarded_init


def entering(item) -> None:
    global _current_is_live
    _current_is_live = bool(item.get_closest_marker("live"))
