"""Loading the analyzers: clear errors when a package or model file is missing, model files by path.

dlib and face-recognition-models are core dependencies (the likeness guard needs them on every
server); the speech and voice analyzers are the optional `likeness` extra. The hint names which.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from importlib import metadata
from pathlib import Path

from mutoscope.errors import MutoscopeError

CORE_PACKAGES = ("dlib-bin", "face-recognition-models")


def extra_install_command() -> str:
    """The command that installs the `likeness` extra into this environment, from a checkout or an install.

    `mutoscope[likeness]` from an index cannot work (the package is not published there), and `-e .[likeness]`
    only from a checkout's root; the extra's own requirements, read from the installed metadata, work in both."""
    try:
        requires = metadata.requires("mutoscope") or []
    except metadata.PackageNotFoundError:
        requires = []
    wanted = [r.split(";", 1)[0].strip() for r in requires if 'extra == "likeness"' in r.replace("'", '"')]
    return "pip install " + " ".join(f"'{r}'" for r in wanted) if wanted else "pip install -e '.[likeness]'"


def install_hint(package: str) -> str:
    return f"pip install --force-reinstall '{package}'" if package in CORE_PACKAGES else extra_install_command()


class LikenessUnavailable(MutoscopeError):
    """The likeness analyzers (or a model file they need) are not installed on this server."""

    status_code = 501
    type = "invalid_request_error"
    code = "likeness_not_installed"


def require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise LikenessUnavailable(f"Cameo verification needs the '{package}' package, which is not installed on "
                                  f"this server. The operator can add it with: {install_hint(package)}") from None


def package_dir(module: str, package: str) -> Path:
    """Where a package's files are, without importing it.

    `face_recognition_models` finds its files through `pkg_resources` at import, and new
    setuptools no longer ships `pkg_resources`; its `.dat` files are all we need.
    """
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LikenessUnavailable(f"Cameo verification needs the '{package}' package, which is not installed on "
                                  f"this server. The operator can add it with: {install_hint(package)}")
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(module: str, package: str, *parts: str) -> Path:
    path = package_dir(module, package).joinpath(*parts)
    if not path.is_file():
        raise LikenessUnavailable(f"The model file {parts[-1]} is missing from the '{package}' package; "
                                  f"reinstall it: {install_hint(package)}")
    return path


def import_with_pkg_resources_shim(module: str, package: str):
    """Import a module whose dependency still does `import pkg_resources` only to read its own version.

    resemblyzer imports webrtcvad, whose first line is `import pkg_resources` (removed from
    setuptools 81+). The shim answers `get_distribution(name).version` from importlib.metadata
    and is taken out of sys.modules again at once, so nothing else sees it.
    """
    if module in sys.modules:
        return sys.modules[module]
    have = importlib.util.find_spec("pkg_resources") is not None
    if not have:
        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    try:
        return require(module, package)
    finally:
        if not have:
            sys.modules.pop("pkg_resources", None)
