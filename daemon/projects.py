"""Finding the project a directory belongs to. Standard library only: the ``venvd export``
client imports it and runs with ``python -I -S``."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from venvd.daemon.display import printable
from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import (
    MAX_SMALL,
    MAX_TOML,
    present,
    read_project_file,
    read_project_text,
)

#: Files that make a directory a project, most specific first: ``.venvd.toml`` and every
#: engine's ``markers`` (this module stays stdlib-only, for the export client under ``-I -S``,
#: so it cannot import the engines; tests/test_engine_protocol.py checks the two agree).
MARKERS = (
    ".venvd.toml",
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "Pipfile",
    "requirements.txt",
    "environment.yml",
    "environment.yaml",
    "pyproject.toml",
)

ENV_NAME = ".venv"


#: Markers that make a folder a project only when no project encloses it: a requirement
#: file beside docs or examples is for building those, in the outer project's env.
REQUIREMENT_MARKERS = frozenset({"requirements.txt", "environment.yml", "environment.yaml"})


def find_project(start: str, home: Optional[str] = None) -> Optional[str]:
    """The project *start* belongs to, or ``None``: see :func:`owner`.

    ``$HOME`` and ``/`` only count when they hold a ``.venvd.toml`` (a stray
    ``requirements.txt`` in your home folder should not turn every folder into a project).
    """
    home = home if home is not None else os.path.expanduser("~")
    inner = innermost(start, home)
    return None if inner is None else owner(inner, home)


def innermost(start: str, home: Optional[str] = None) -> Optional[str]:
    """The nearest directory at or above *start* holding a marker file, or ``None``: the
    folder the hooks find with file tests (``HOOK_FUNCTION`` in the shell modules)."""
    home = home if home is not None else os.path.expanduser("~")
    path = os.path.abspath(start)
    while True:
        if _markers(path, home):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def owner(folder: str, home: Optional[str] = None) -> str:
    """The project a marker *folder* belongs to, by the rule its own tool uses.

    A folder whose only markers are requirement files belongs to the project around it (up
    to the repository root: the folder holding ``.git``); a uv workspace member belongs to
    its workspace root. Any other marker folder is a project of its own.
    """
    home = home if home is not None else os.path.expanduser("~")
    while True:
        outer = _outer(folder, home)
        if outer is None:
            return folder
        folder = outer  # always an ancestor: the walk ends


def _markers(path: str, home: str) -> list[str]:
    names = MARKERS[:1] if path in (home, "/") else MARKERS
    # present(), not isfile(): a FIFO or device marker still makes a project, which then
    # says why venvd will not read it
    return [name for name in names if present(os.path.join(path, name))]


def _outer(folder: str, home: str) -> Optional[str]:
    """The folder *folder* defers to, or ``None`` when it is a project of its own."""
    markers = _markers(folder, home)
    if markers and set(markers) <= REQUIREMENT_MARKERS:
        return _enclosing(folder, home)
    if "pyproject.toml" in markers:
        return workspace_root(folder)
    return None


def _enclosing(folder: str, home: str) -> Optional[str]:
    """The nearest marker folder above *folder*, not beyond its repository's root."""
    path = folder
    while not os.path.exists(os.path.join(path, ".git")):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
        if _markers(path, home):
            return path
    return None


def workspace_root(member: str) -> Optional[str]:
    """The uv workspace root *member* (a folder with a ``pyproject.toml``) belongs to, or
    ``None`` when it is not a member.

    uv's rule: the nearest ancestor holding a ``pyproject.toml`` decides. When it has a
    ``[tool.uv.workspace]`` whose ``members`` globs match *member* and whose ``exclude``
    globs do not, that is the root; anything else (a plain project around an example, no
    ``pyproject.toml`` above) leaves *member* a project of its own. So does a member that
    is a workspace root itself, or is marked ``[tool.uv] managed = false``, or is no project.
    """
    above = os.path.dirname(member)
    while not os.path.isfile(os.path.join(above, "pyproject.toml")):
        parent = os.path.dirname(above)
        if parent == above:
            return None
        above = parent
    if above == member:
        return None
    root = _read_pyproject(os.path.join(above, "pyproject.toml"))
    if root.workspace is None:
        return None
    members, exclude = root.workspace
    if not _matches(member, above, members) or _matches(member, above, exclude):
        return None
    own = _read_pyproject(os.path.join(member, "pyproject.toml"))
    if own.workspace is not None or own.unmanaged or not own.project:
        return None
    return above


def _matches(path: str, root: str, patterns: tuple[str, ...]) -> bool:
    """Whether *path* matches one of the workspace globs, taken relative to *root*.

    As uv matches them: ``*`` may cross ``/`` here (it tests a path against a pattern, it
    does not list folders), and the root's own name is literal.
    """
    literal_root = re.sub(r"([*?[])", r"[\1]", root)
    for pattern in patterns:
        full = os.path.normpath(os.path.join(literal_root, pattern))
        if fnmatch.fnmatchcase(path, full):
            return True
    return False


def workspace_members(root: str) -> list[str]:
    """The member folders of the uv workspace rooted at *root* (relative to it, sorted), as
    uv collects them: each ``members`` glob expanded, folders with a ``pyproject.toml``, not
    matched by ``exclude``; ``[]`` when *root* is no workspace root."""
    import glob

    spec = _read_pyproject(os.path.join(root, "pyproject.toml")).workspace
    if spec is None:
        return []
    members, exclude = spec
    found: set[str] = set()
    for pattern in members:
        for path in glob.glob(os.path.join(glob.escape(root), pattern)):
            path = os.path.normpath(path)
            if (path != root and os.path.isfile(os.path.join(path, "pyproject.toml"))
                    and not _matches(path, root, exclude)):
                found.add(os.path.relpath(path, root))
    return sorted(found)


@dataclass(frozen=True)
class _Pyproject:
    """What the boundary rule needs from a ``pyproject.toml``."""

    project: bool = False  # has a [project] table
    workspace: Optional[tuple[tuple[str, ...], tuple[str, ...]]] = None  # (members, exclude)
    unmanaged: bool = False  # [tool.uv] managed = false


#: path -> (its stat signature, what it says); a prompt asks for the same few files again.
_pyprojects: dict[str, tuple[object, _Pyproject]] = {}
_pyprojects_lock = threading.Lock()  # the daemon answers prompts from several threads
_PYPROJECTS_KEPT = 256


def _read_pyproject(path: str) -> _Pyproject:
    try:
        st = os.stat(path)
    except OSError:
        return _Pyproject()
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _pyprojects_lock:
        cached = _pyprojects.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        # a regular file of sane size only: a symlink to /dev/zero or a FIFO here must not
        # eat memory or block the thread that answers prompts
        text = read_project_file(path, MAX_TOML).decode("utf-8", "replace")
    except (OSError, VenvdError):
        return _Pyproject()
    found = _parse_pyproject(text)
    with _pyprojects_lock:
        if len(_pyprojects) >= _PYPROJECTS_KEPT:
            _pyprojects.pop(next(iter(_pyprojects)))
        _pyprojects[path] = (key, found)
    return found


def _parse_pyproject(text: str) -> _Pyproject:
    if "workspace" not in text and "managed" not in text:  # most files: no parse needed
        return _Pyproject(project=_has_project_table(text))
    try:
        import tomllib
    except ImportError:  # below Python 3.11, or run with -S (no tomli): the small reader
        return _parse_pyproject_roughly(text)
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError):  # not TOML (or nested thousands deep): uv would
        return _Pyproject()               # refuse it, so it is no workspace of uv's
    return _from_tables(data)


def _from_tables(data: dict[str, Any]) -> _Pyproject:
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    uv = uv if isinstance(uv, dict) else {}
    spec = uv.get("workspace")
    workspace = None
    if isinstance(spec, dict):
        workspace = (_strings(spec.get("members")), _strings(spec.get("exclude")))
    return _Pyproject(isinstance(data.get("project"), dict), workspace,
                      uv.get("managed") is False)


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=\s*(.*)$", re.DOTALL)


def _has_project_table(text: str) -> bool:
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header and header.group(1).replace(" ", "") in ("project", '"project"'):
            return True
    return False


def _parse_pyproject_roughly(text: str) -> _Pyproject:
    """Without a TOML library: the ``[project]``, ``[tool.uv]`` and ``[tool.uv.workspace]``
    tables written the usual way (headers, ``key = value``, arrays over several lines)."""
    table = ""
    values: dict[tuple[str, str], str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("[["):
            table = header.group(1).replace(" ", "").replace('"', "").replace("'", "")
            values.setdefault((table, ""), "")
            continue
        key = _KEY.match(line)
        if key is None or table not in ("tool.uv", "tool.uv.workspace"):
            continue
        value = key.group(2)
        while value.lstrip().startswith("[") and not _closed(value):
            more = next(lines, None)
            if more is None:
                break
            value += "\n" + more
        values[(table, key.group(1))] = value
    workspace = None
    if ("tool.uv.workspace", "") in values:
        workspace = (_rough_strings(values.get(("tool.uv.workspace", "members"), "")),
                     _rough_strings(values.get(("tool.uv.workspace", "exclude"), "")))
    managed = values.get(("tool.uv", "managed"), "").split("#")[0].strip()
    return _Pyproject(("project", "") in values, workspace, managed == "false")


#: The parts of a TOML value the small reader tells apart: strings, comments, brackets.
_TOKEN = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'([^\'\n]*)\'|#[^\n]*|[\[\]]')


def _closed(value: str) -> bool:
    """Whether the array starting *value* ends in it (brackets outside strings balance)."""
    depth = 0
    for match in _TOKEN.finditer(value):
        depth += {"[": 1, "]": -1}.get(match.group(0), 0)
        if depth == 0 and match.group(0) == "]":
            return True
    return False


def _rough_strings(value: str) -> tuple[str, ...]:
    out = []
    for match in _TOKEN.finditer(value):
        basic, literal = match.groups()
        if literal is not None:
            out.append(literal)
        elif basic is not None:
            try:
                out.append(json.loads(f'"{basic}"'))  # TOML's escapes are JSON's, nearly
            except ValueError:
                out.append(basic)
    return tuple(out)


def env_path(project: str) -> str:
    """The environment users and IDEs see: ``<project>/.venv``, as uv, Poetry and PDM use."""
    return os.path.join(project, ENV_NAME)


def env_python(env: str) -> str:
    return os.path.join(env, "bin", "python")


def env_is_usable(env: str) -> bool:
    """True when *env*'s python exists and its interpreter has not vanished underneath it."""
    python = env_python(env)
    return os.path.isfile(python) and os.access(python, os.X_OK)


def real(path: str) -> str:
    """The path trust is keyed by: symlinks resolved.

    On Linux the kernel resolves it in one go (open with ``O_PATH``, read the descriptor's
    link in ``/proc``): every prompt asks, and that is a tenth of the cost of
    ``os.path.realpath``'s walk.
    """
    o_path = getattr(os, "O_PATH", None)
    if o_path is not None:
        try:
            fd = os.open(path, o_path | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                resolved = os.readlink(f"/proc/self/fd/{fd}")
                if resolved.startswith("/") and not resolved.endswith(" (deleted)"):
                    return resolved
            except OSError:
                pass
            finally:
                os.close(fd)
    return str(Path(path).resolve())


def safe_prompt(name: str) -> str:
    """*name* made fit for ``uv venv --prompt``: uv writes the prompt unescaped into the env's
    ``bin/activate*`` scripts, so a folder named ``$(cmd)`` would run ``cmd`` when a user
    sources one by hand. Letters and digits (any script), space and ``._+@=,-`` are kept,
    everything else becomes ``_``; a leading ``-`` would read as an option."""
    kept = "".join(c if (c.isalnum() and c.isprintable()) or c in " ._+@=,-" else "_"
                   for c in name)
    return kept.lstrip("- ") or "venv"


def env_prompt(env: str, project: str) -> str:
    """The prompt name virtualenv and uv would show: ``prompt =`` in pyvenv.cfg, else the folder."""
    try:  # bounded and never blocking: this runs on every prompt
        text = read_project_text(os.path.join(env, "pyvenv.cfg"), MAX_SMALL)
    except (OSError, VenvdError):  # missing, or a FIFO, device or huge file: the folder
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "prompt":
            return value.strip()
    return os.path.basename(project)


def activation(project: str, env: str) -> dict[str, object]:
    """The exports that activate *env*, in the form ``status --json`` documents."""
    if os.path.isdir(os.path.join(env, "conda-meta")):
        return {
            "CONDA_PREFIX": env,
            "CONDA_DEFAULT_ENV": printable(os.path.basename(project)),  # shown in prompts
            "PYTHONHOME": None,
            "PATH": "prepend " + os.path.join(env, "bin"),
        }
    return {
        "VIRTUAL_ENV": env,
        "VIRTUAL_ENV_PROMPT": printable(env_prompt(env, project)),  # shown in prompts
        "PYTHONHOME": None,
        "PATH": "prepend " + os.path.join(env, "bin"),
    }
