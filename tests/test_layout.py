"""The room table keeps itself: every import between rooms is one docs/architecture.md allows.

The rules are read from the two tables under "Which room may import which" in docs/architecture.md, and
every module under src/mutoscope is walked with `ast`: imports inside functions and `TYPE_CHECKING`
blocks count as much as those at the top, since they are arrows all the same.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "mutoscope"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
HEADING = "## Which room may import which"
# Every room may import these: the errors, the settings and the package itself (its `__version__`).
EVERYONE = {("errors",), ("config",), ()}

Name = tuple[str, ...]  # a module under mutoscope: ("api", "body") is mutoscope.api.body, () the package


@dataclass(frozen=True)
class Arrow:
    source: Name
    target: Name
    where: str  # path:line, for the message


@dataclass
class Rules:
    allowed: dict[Name, set[Name]]  # a room (or module) and what it may import
    exceptions: list[tuple[Name, Name]]  # named, explained arrows that break the room order


def _name(cell: str) -> Name:
    """`api/` -> ("api",), `api/body.py` -> ("api", "body"), `config.py` -> ("config",)."""
    text = cell.strip().strip("`").rstrip("/")
    return tuple(p for p in text.removesuffix(".py").split("/") if p)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read_rules(markdown: str) -> Rules:
    section = markdown.split(HEADING, 1)[1].split("\n## ", 1)[0]
    tables: list[list[list[str]]] = []
    for block in re.split(r"\n\s*\n", section):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if len(rows) > 2:
            tables.append([_cells(r) for r in rows[2:]])
    assert len(tables) == 2, f"{HEADING} needs its rules table and its exceptions table"
    allowed: dict[Name, set[Name]] = {}
    for room, may in tables[0]:
        names = re.findall(r"`([^`]+)`", may)
        allowed[_name(room)] = {("*",)} if may.strip() == "everything" else {_name(n) for n in names}
    exceptions = [(_name(source), _name(target)) for source, target, *_ in tables[1]]
    return Rules(allowed, exceptions)


def _module_name(path: Path, src: Path) -> Name:
    parts = path.relative_to(src).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_module(name: Name, src: Path) -> bool:
    base = src.joinpath(*name)
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def arrows_of(path: Path, src: Path) -> list[Arrow]:
    """Every import of another mutoscope module in one file, lazy and type-only ones included."""
    me = _module_name(path, src)
    package = me if path.name == "__init__.py" else me[:-1]
    found: list[Arrow] = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[Name] = []
        if isinstance(node, ast.Import):
            targets = [tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "mutoscope"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] + tuple((node.module or "").split(".") if node.module else ())
            elif (node.module or "").split(".")[0] == "mutoscope":
                base = tuple(node.module.split(".")[1:])
            else:
                continue
            # `from mutoscope.engine import camera` imports the module engine/camera.py, not engine/.
            targets = [base + (a.name,) if _is_module(base + (a.name,), src) else base for a in node.names]
        for target in dict.fromkeys(targets):  # `from m import a, b` is one arrow
            if target[:1] != me[:1]:
                found.append(Arrow(me, target, f"{path.relative_to(src.parent.parent)}:{node.lineno}"))
    return found


def _covers(entry: Name, name: Name) -> bool:
    return entry == ("*",) or name[:len(entry)] == entry


def broken(arrows: list[Arrow], rules: Rules) -> tuple[list[Arrow], list[tuple[Name, Name]]]:
    """The arrows no rule allows, and the exceptions no arrow uses any more."""
    used: set[tuple[Name, Name]] = set()
    bad = []
    for a in arrows:
        if a.target in EVERYONE or a.target[:1] in EVERYONE:
            continue
        rows = [may for room, may in rules.allowed.items() if _covers(room, a.source)]
        if any(_covers(entry, a.target) for may in rows for entry in may):
            continue
        matched = [(s, t) for s, t in rules.exceptions if _covers(s, a.source) and _covers(t, a.target)]
        if matched:
            used.update(matched)
            continue
        bad.append(a)
    return bad, [e for e in rules.exceptions if e not in used]


def all_arrows(src: Path = SRC) -> list[Arrow]:
    return [a for path in sorted(src.rglob("*.py")) for a in arrows_of(path, src)]


def test_every_import_between_rooms_is_one_the_table_allows():
    rules = read_rules(ARCHITECTURE.read_text())
    bad, stale = broken(all_arrows(), rules)
    assert bad == [], "imports docs/architecture.md does not allow:\n" + "\n".join(
        f"  {a.where}: {'/'.join(a.source)} -> {'/'.join(a.target)}" for a in bad)
    assert stale == [], f"exceptions in docs/architecture.md that no code uses any more: {stale}"


def test_every_room_has_a_row():
    rules = read_rules(ARCHITECTURE.read_text())
    rooms = {(p.name,) for p in SRC.iterdir() if (p / "__init__.py").exists()}
    rooms |= {(p.stem,) for p in SRC.glob("*.py") if p.stem not in ("__init__", "errors", "config")}
    assert rooms - set(rules.allowed) == set()


def test_the_rule_check_finds_a_wrong_arrow_and_a_stale_exception(tmp_path):
    src = tmp_path / "mutoscope"
    for name in ("engine", "api", "web"):
        (src / name).mkdir(parents=True)
        (src / name / "__init__.py").write_text("")
    (src / "api" / "body.py").write_text("")
    (src / "engine" / "bad.py").write_text("def f():\n    from mutoscope.api import body\n")
    (src / "web" / "ok.py").write_text("import mutoscope.api.body\nfrom mutoscope import errors\n")
    rules = read_rules(f"""{HEADING}

| room | may import |
|---|---|
| `engine/` | — |
| `api/` | `engine/` |
| `web/` | — |

| from | to | why |
|---|---|---|
| `web/` | `api/body.py` | shared plumbing |
| `web/` | `engine/` | never used |
""")
    bad, stale = broken(all_arrows(src), rules)
    assert [(a.source, a.target) for a in bad] == [(("engine", "bad"), ("api", "body"))]
    assert stale == [(("web",), ("engine",))]
