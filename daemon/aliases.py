"""Ready snippets for folders that belong to an enclosing project.

The hooks look for a snippet in the innermost folder holding a marker file. When that folder
is not a project of its own (``docs/`` with a ``requirements.txt`` for the docs build, a uv
workspace member), the daemon keeps a snippet there too, holding the enclosing project's
activation: the next ``cd docs`` costs no process, and the shell's state is the same as at
the project's root. Each such alias is marked with the project it stands for (a file beside
its snippet, written before the snippet and removed after it), so that the project's changes
reach its aliases. An alias is kept only while its project is watched: the hooks check a
project's own ``.venvd.toml`` against its snippet, but cannot know the project an alias
stands for, so the daemon must see that file change (trust revoked) to rewrite the alias.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from venvd.shell import ready

MARK = ".venvd-alias"


def _mark(ready_dir: Path, folder: str) -> Path:
    return ready.snippet_path(ready_dir, folder, ready.SUFFIXES[0]).with_name(MARK)


def stands_for(ready_dir: Path, folder: str) -> Optional[str]:
    """The project *folder*'s snippet stands for, or ``None`` when it is no alias."""
    try:
        return _mark(ready_dir, folder).read_bytes().decode()
    except (OSError, ValueError):
        return None


def write(ready_dir: Path, folder: str, project: str) -> None:
    """Make *folder*'s snippet a copy of *project*'s (the same activation, down to the state
    blob, which names *project*); without one for *project*, *folder* has none either."""
    texts = {}
    for suffix in ready.SUFFIXES:  # one per syntax, from the shell registry
        try:
            texts[suffix] = ready.snippet_path(ready_dir, project, suffix).read_bytes()
        except OSError:
            forget(ready_dir, folder)
            return
    mark = _mark(ready_dir, folder)
    try:
        mark.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _replace(mark, os.fsencode(project))  # first: an unmarked alias would never be updated
        for suffix, text in texts.items():
            _replace(ready.snippet_path(ready_dir, folder, suffix), text)
    except OSError:
        forget(ready_dir, folder)


def _replace(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def forget(ready_dir: Path, folder: str) -> None:
    ready.remove(ready_dir, folder)
    with contextlib.suppress(OSError):
        _mark(ready_dir, folder).unlink()


def of(ready_dir: Path, project: Optional[str]) -> list[str]:
    """The folders whose snippet stands for *project* (all below it); every alias when
    *project* is ``None``."""
    top = ready.snippet_path(ready_dir, project or "", ready.SUFFIXES[0]).parent
    prefix = len(str(ready_dir))
    found = []
    for folder, _dirs, files in os.walk(top):
        if folder != str(top) and MARK in files:
            path = folder[prefix:]
            if project is None or stands_for(ready_dir, path) == project:
                found.append(path)
    return found
