"""The uv workspace rule (which folder a member's env belongs to) and the little of a
``pyproject.toml`` it reads, with or without a TOML library. Standard library only: the
``venvd export`` client reaches it through project finding, under ``python -I -S``."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Optional

from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import MAX_TOML, read_project_file


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
