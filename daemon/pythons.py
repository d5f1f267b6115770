"""Finding interpreters and choosing the one a project asks for.

Where they come from: ``$PYENV_ROOT/versions``, uv-managed Pythons, and ``python3.X`` on
``PATH`` (pyenv shims and virtualenvs are skipped: they are not interpreters of their own).
What a project asks for is read the way pyenv reads it: the nearest ``.python-version`` at or
above the project, several names allowed, ``#`` comments, ``3.12`` meaning the newest 3.12.x
installed, full versions, ``pypy3.10-7.3.12`` and ``system``.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from venvd.daemon import projectfile
from venvd.daemon.errors import VenvdError

VERSION_FILE = ".python-version"
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_PATH_NAME = re.compile(r"^python(3(?:\.\d+)?)?$")
_PROBE = "import sys, platform; print(platform.python_implementation(), *sys.version_info[:3])"


class InterpreterNotFound(VenvdError, LookupError):
    """No installed interpreter matches what the project wants."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]
    implementation: str  # "cpython", "pypy", ...
    source: str  # "pyenv", "uv", "PATH"
    name: str = ""  # pyenv's or uv's folder name, e.g. "3.12.1" or "pypy3.10-7.3.12"

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))

    def describe(self) -> str:
        impl = "" if self.implementation == "cpython" else f"{self.implementation} "
        return f"{impl}{self.version_str} ({self.source})"


@dataclass(frozen=True)
class PythonRequest:
    spec: str  # what was asked for, as written
    source: str  # where it was asked for: a file path, "requires-python", "config", "default"


def read_python_version_file(start: Path, stop_at: Optional[Path] = None
                             ) -> Optional[tuple[list[str], Path]]:
    """The names in the nearest ``.python-version`` at or above *start*, as pyenv finds it."""
    here = start
    while True:
        candidate = here / VERSION_FILE
        # not is_file(): a FIFO or a device there is refused (a status problem naming it),
        # not passed over for a parent's file the project did not mean
        if projectfile.present(candidate):
            try:
                text = projectfile.read_project_text(candidate, projectfile.MAX_SMALL)
            except FileNotFoundError:  # removed since
                text = ""
            return parse_version_file(text), candidate
        if stop_at is not None and here == stop_at:
            return None
        if here.parent == here:
            return None
        here = here.parent


def parse_version_file(text: str) -> list[str]:
    specs: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        specs.extend(word for word in line.split() if word)
    return specs


def default_pyenv_root() -> Optional[Path]:
    root = os.environ.get("PYENV_ROOT")
    path = Path(root) if root else Path.home() / ".pyenv"
    return path if (path / "versions").is_dir() else None


def default_uv_python_dir() -> Optional[Path]:
    env = os.environ.get("UV_PYTHON_INSTALL_DIR")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "uv" / "python"


_probe_cache: dict[tuple[str, int], Optional[tuple[str, tuple[int, int, int]]]] = {}


def probe(path: str) -> Optional[tuple[str, tuple[int, int, int]]]:
    """Ask an interpreter its implementation and version (cached by real path and mtime)."""
    try:
        real = os.path.realpath(path)
        key = (real, os.stat(real).st_mtime_ns)
    except OSError:
        return None
    if key not in _probe_cache:
        try:
            out = subprocess.run([path, "-I", "-S", "-c", _PROBE], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.split()
            _probe_cache[key] = (out[0].lower(), (int(out[1]), int(out[2]), int(out[3])))
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            _probe_cache[key] = None
    return _probe_cache[key]


def _from_folder(folder: Path, source: str) -> Optional[Interpreter]:
    """An interpreter installed in its own folder (pyenv's versions/X, uv's python/X)."""
    if (folder / "pyvenv.cfg").exists():
        return None  # a pyenv-virtualenv env, not an interpreter of its own
    for exe in ("python3", "python", "pypy3", "pypy"):
        path = folder / "bin" / exe
        if os.access(path, os.X_OK):
            break
    else:
        return None
    name = folder.name
    impl = "pypy" if "pypy" in name else "cpython"
    match = _VERSION.search(name)
    if match and impl == "cpython" and re.fullmatch(r"(cpython-)?[\d.]+(-.*)?", name):
        major, minor, micro = (int(g or 0) for g in match.groups())
        version = (major, minor, micro)
    else:
        probed = probe(str(path))
        if probed is None:
            return None
        impl, version = probed
    return Interpreter(str(path), version, impl, source, name)


def discover(pyenv_root: Optional[Path], uv_python_dir: Optional[Path],
             path_env: str) -> list[Interpreter]:
    """Every interpreter found, pyenv's first, then uv's, then those on PATH."""
    found: list[Interpreter] = []
    seen: set[str] = set()

    def add(interp: Optional[Interpreter]) -> None:
        if interp is None:
            return
        real = os.path.realpath(interp.path)
        if real not in seen:
            seen.add(real)
            found.append(interp)

    for root, source in ((pyenv_root and pyenv_root / "versions", "pyenv"),
                         (uv_python_dir, "uv")):
        if root is None or not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.is_symlink():
                add(_from_folder(folder, source))
    for directory in path_env.split(os.pathsep):
        if (not directory or directory.rstrip("/").endswith("/shims")
                or (Path(directory).parent / "pyvenv.cfg").exists()):
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not _PATH_NAME.match(name):
                continue
            path = os.path.join(directory, name)
            if not os.access(path, os.X_OK) or os.path.realpath(path) in seen:
                continue
            probed = probe(path)
            if probed is not None and probed[1] >= (3, 0, 0):
                add(Interpreter(path, probed[1], probed[0], "PATH", name))
    return found


def _matches(spec: str, interp: Interpreter) -> bool:
    if spec == interp.name:
        return True
    impl = "cpython"
    rest = spec
    for prefix in ("cpython-", "cpython", "python"):
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    else:
        if rest.startswith("pypy"):
            impl, rest = "pypy", rest[4:].split("-", 1)[0]
    if impl != interp.implementation or not re.fullmatch(r"\d+(\.\d+){0,2}", rest):
        return False
    wanted = tuple(int(p) for p in rest.split("."))
    return interp.version[: len(wanted)] == wanted


def _system(found: list[Interpreter]) -> Optional[Interpreter]:
    on_path = [i for i in found if i.source == "PATH"]
    for name in ("python3", "python"):
        for interp in on_path:
            if interp.name == name:
                return interp
    return max(on_path, key=lambda i: i.version, default=None)


def _summary(found: list[Interpreter]) -> str:
    ordered = sorted(found, key=lambda i: i.version)
    return ", ".join(i.describe() for i in ordered) or "no interpreters at all"


def choose(specs: list[str], found: list[Interpreter], source: str = "") -> Interpreter:
    """The first spec that some installed interpreter satisfies, newest match first."""
    for spec in specs:
        if spec == "system":
            system = _system(found)
            if system is not None:
                return system
            continue
        matching = [i for i in found if _matches(spec, i)]
        if matching:
            exact = [i for i in matching if i.name == spec]
            return exact[0] if exact else max(matching, key=lambda i: i.version)
    origin = f" (from {source})" if source else ""
    raise InterpreterNotFound(f"wanted Python {' or '.join(specs)}{origin}; "
                              f"found {_summary(found)}")


def _specifier(spec: str) -> SpecifierSet:
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier:
        raise InterpreterNotFound(f"requires-python = {spec!r} is not a valid specifier") from None


def satisfies(spec: str, interp: Interpreter) -> bool:
    """Whether *interp*'s version is within the ``requires-python`` specifier *spec*."""
    try:
        return Version(interp.version_str) in _specifier(spec)
    except InvalidVersion:
        return False


def choose_for_requires_python(spec: str, found: list[Interpreter]) -> Interpreter:
    """The newest CPython satisfying a PEP 440 ``requires-python`` specifier."""
    _specifier(spec)  # an invalid one is reported as such, even with nothing installed
    matching = [i for i in found if i.implementation == "cpython" and satisfies(spec, i)]
    if not matching:
        raise InterpreterNotFound(f"wanted Python {spec} (from requires-python); "
                                  f"found {_summary(found)}")
    return max(matching, key=lambda i: i.version)


#: The oldest Python uv resolves for (it refuses a lower ``--python-version``).
OLDEST_TARGET = (3, 6)


def lowest_allowed(spec: Optional[str]) -> Optional[str]:
    """The lowest Python 3 version (``3.9``, ``3.9.2``) a ``requires-python`` specifier allows:
    the lower bound ``uv lock`` resolves from. None when there is none to tell."""
    if not spec:
        return None
    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    candidates = {Version(f"3.{minor}") for minor in range(OLDEST_TARGET[1], 40)}
    for item in wanted:
        try:
            candidates.add(Version(item.version))
        except InvalidVersion:  # "3.11.*"
            continue
    allowed = sorted(v for v in candidates
                     if v.release[:2] >= OLDEST_TARGET and v.major == 3
                     and wanted.contains(v, prereleases=True))
    return str(allowed[0]) if allowed else None
