"""The docs name only what exists: every `mutoscope …` command (and its options) and every repository path
that README.md and docs/*.md mention."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer.main

from mutoscope.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SRC = ROOT / "src" / "mutoscope"
# Where a doc's relative path may start: the repository, the package (docs say `videos/queries.py`), the
# docs folder, and the folder beside the checkout that holds the shared spec and style guide.
# A checkout elsewhere (a worktree, a scratch clone) names the spec with MUTOSCOPE_SPEC, as the fuzz tests do.
SPEC = os.environ.get("MUTOSCOPE_SPEC")
BASES = (ROOT, SRC, ROOT / "docs", ROOT.parent, *((Path(SPEC).resolve().parents[2],) if SPEC else ()))
SUFFIXES = (".py", ".md", ".toml", ".yaml", ".yml", ".json", ".html", ".css", ".js", ".txt", ".lock", ".sh")
# Files the docs name that live on a user's machine, not here.
NOT_IN_THE_REPOSITORY = {"claude_desktop_config.json"}
INLINE = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def _commands(text: str) -> list[str]:
    found = [c for c in INLINE.findall(text) if c.startswith("mutoscope ")]
    for block in FENCE.findall(text):
        for line in block.splitlines():
            found += [m.group(0) for m in re.finditer(r"(?<![\w./-])mutoscope [^#;&|\n]*", line)
                      if not line.lstrip().startswith(("from ", "import "))]
    return found


def _alternatives(token: str) -> list[str]:
    return [t for t in token.strip("[]").replace("\\|", "|").split("|") if t]


def command_problems(line: str, root) -> list[str]:
    """What in one `mutoscope …` line names no command or option."""
    tokens = line.replace("\\|", "|").replace("\\", " ").split()[1:]
    command, problems = root, []
    for i, token in enumerate(tokens):
        if hasattr(command, "commands"):  # a group (typer may ship its own click)
            if token.startswith(("-", "<", "…", '"', "(")) or token[:1].isupper():
                break
            names = _alternatives(token)
            missing = [n for n in names if n not in command.commands]
            if missing:
                problems += [f"{line}: no command {' '.join(tokens[:i])} {n}".replace("  ", " ") for n in missing]
                return problems
            if len(names) > 1:
                return problems
            command = command.commands[names[0]]
            continue
        for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", token):
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
            if option not in known:
                problems.append(f"{line}: `{command.name}` has no option {option}")
    return problems


def _paths(text: str) -> list[str]:
    """Inline names that are paths in this repository: a known file type, or a path whose first folder is one
    of the repository's or the package's (`tests/…`, `videos/…`). MIME types, MCP methods and model ids
    (`video/mp4`, `tools/call`, `Lightricks/LTX-2`) are none of these."""
    out = []
    for token in INLINE.findall(text):
        token = token.strip()
        if not re.fullmatch(r"\.?[\w\-][\w.\-/]*", token) or token in NOT_IN_THE_REPOSITORY:
            continue
        first = token.split("/", 1)[0]
        if token.endswith(SUFFIXES) or ("/" in token and any((base / first).is_dir() for base in (ROOT, SRC))):
            out.append(token)
    return out


def path_exists(token: str) -> bool:
    rooms = [p for p in SRC.iterdir() if p.is_dir()]
    if any((base / token).exists() for base in (*BASES, *rooms)):
        return True
    if "/" not in token:  # a bare file name: somewhere in the repository
        return any(ROOT.glob(f"**/{token}"))
    return False


def test_every_command_the_docs_name_exists():
    root = typer.main.get_command(app)
    problems = []
    for doc in DOCS:
        for line in _commands(doc.read_text()):
            problems += [f"{doc.name}: {p}" for p in command_problems(line, root)]
    assert problems == []


def test_every_path_the_docs_name_exists():
    missing = sorted({f"{doc.relative_to(ROOT)}: {t}" for doc in DOCS for t in _paths(doc.read_text())
                      if not path_exists(t)})
    assert missing == []


def test_the_docs_checks_find_what_is_missing():
    root = typer.main.get_command(app)
    assert command_problems("mutoscope users create bob", root) == []
    assert command_problems("mutoscope keys [list\\|create\\|revoke]", root) == []
    assert command_problems("mutoscope userz create", root)
    assert command_problems("mutoscope users [list\\|nope]", root)
    assert command_problems("mutoscope serve --no-such-flag", root)
    assert _paths("`videos/queries.py`, `docs/nothing-here.md`, `video/mp4`, `tools/call`") == [
        "videos/queries.py", "docs/nothing-here.md"]
    assert path_exists("videos/queries.py") and not path_exists("docs/nothing-here.md")
