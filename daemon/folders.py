"""What a folder holds of the names that decide a project's boundary, remembered while the
folder's names stay the same. Standard library only (the export client imports it).

Every prompt walks the folder it is in and its ancestors, and looked for each marker file in
each of them: about sixty ``stat`` calls five levels deep, on the thread that answers every
prompt. Adding, removing or renaming a name in a folder changes the folder's times, so one
``stat`` of the folder tells whether what was found there still holds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Optional

from venvd.daemon.projectfile import present

#: A folder changed this recently is looked at afresh: file systems keep change times in
#: clock ticks, so a second change within the same tick would look like none.
SETTLE_NS = 2_000_000_000
#: Folders remembered; beyond that the memory starts again (a prompt's walk refills it).
KEPT = 4096

_Stamp = tuple[int, int, int]
_memo: dict[str, tuple[_Stamp, tuple[str, ...], bool]] = {}
_lock = threading.Lock()


def look(path: str, names: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """Which of *names* are present in folder *path* (see ``projectfile.present``), and
    whether it holds ``.git`` (a repository's root)."""
    stamp = _stamp(path)
    key = path + "\0" + "\0".join(names)
    if stamp is not None:
        with _lock:
            hit = _memo.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1], hit[2]
    found = tuple(name for name in names if present(os.path.join(path, name)))
    git = os.path.exists(os.path.join(path, ".git"))
    if stamp is not None and _settled(stamp) and not _links(path, found):
        with _lock:
            if len(_memo) >= KEPT:
                _memo.clear()
            _memo[key] = (stamp, found, git)
    return found, git


def _stamp(path: str) -> Optional[_Stamp]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    # the ctime too: no one can set it back (``touch -d`` can the mtime)
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def _settled(stamp: _Stamp) -> bool:
    return time.time_ns() - max(stamp[1], stamp[2]) >= SETTLE_NS


def _links(path: str, found: tuple[str, ...]) -> bool:
    """Whether a marker found is a symbolic link: its target can go without the folder
    changing, so such a folder is looked at afresh every time."""
    return any(os.path.islink(os.path.join(path, name)) for name in found)
