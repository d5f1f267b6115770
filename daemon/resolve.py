"""Which project a folder belongs to, remembered between prompts.

Finding it walks every ancestor and looks for each marker file there (about sixty ``stat``
calls for a folder five levels deep), on the thread that answers every prompt. The answer
depends only on which names each ancestor holds and on the ``pyproject.toml`` files the uv
workspace rule reads, so it is remembered with the ancestors' identity and change times
(a name added, removed or renamed changes its folder's) and those files': one ``stat`` per
ancestor and one per ``pyproject.toml`` tell whether the walk would still find the same.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import NamedTuple, Optional

from venvd.daemon import projects

#: Something changed this recently is not remembered: file systems keep change times in
#: clock ticks, so a second change within the same tick would look like none.
SETTLE_NS = 2_000_000_000
#: Folders remembered (the least recently asked about go first).
SIZE = 1024

_Stamp = tuple[int, int, int, int]


class Found(NamedTuple):
    inner: Optional[str]  # the nearest folder with a marker, at or above the one asked about
    root: Optional[str]  # the project it belongs to (its workspace, its repository's project)
    project: Optional[str]  # that project's real path (what trust is keyed by)


class Resolver:
    """``find`` answers what ``projects.innermost``, ``owner`` and ``real`` would."""

    def __init__(self, size: int = SIZE, settle_ns: int = SETTLE_NS) -> None:
        self._size = size
        self._settle_ns = settle_ns
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, tuple[tuple[Optional[_Stamp], ...], Found]] = (
            OrderedDict())

    def find(self, directory: str) -> Found:
        signature = self._signature(directory)
        with self._lock:
            hit = self._memo.get(directory)
            if hit is not None and signature is not None and hit[0] == signature:
                self._memo.move_to_end(directory)
                return hit[1]
        found = walk(directory)
        if signature is not None:
            with self._lock:
                self._memo[directory] = (signature, found)
                self._memo.move_to_end(directory)
                while len(self._memo) > self._size:
                    self._memo.popitem(last=False)
        return found

    def _signature(self, directory: str) -> Optional[tuple[Optional[_Stamp], ...]]:
        """Every ancestor's stamp and its ``pyproject.toml``'s; ``None``: not to be
        remembered (a folder gone, or something changed too recently to tell)."""
        path = os.path.abspath(directory)
        now = time.time_ns()
        parts: list[Optional[_Stamp]] = []
        while True:
            folder = _stamp(path)
            if folder is None or now - folder[2] < self._settle_ns:
                return None
            pyproject = _stamp(os.path.join(path, "pyproject.toml"))
            if pyproject is not None and now - pyproject[2] < self._settle_ns:
                return None
            parts += (folder, pyproject)
            parent = os.path.dirname(path)
            if parent == path:
                return tuple(parts)
            path = parent


def walk(directory: str) -> Found:
    """The answer found afresh."""
    inner = projects.innermost(directory)
    root = projects.owner(inner) if inner else None
    return Found(inner, root, projects.real(root) if root else None)


def _stamp(path: str) -> Optional[_Stamp]:
    """Identity, change times and size of *path* (followed), or ``None`` when missing.
    The ctime, which no one can set back, catches a ``touch -d`` of the mtime."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, max(info.st_ctime_ns, info.st_mtime_ns),
            info.st_size)
