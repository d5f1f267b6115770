"""A project's lock states on disk: one folder per state under the user data dir, the
``<project>/.venv`` symlink switched between them in one rename, the oldest pruned, and a
``.venv`` folder venvd did not make moved aside, never deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Optional

from venvd.daemon import projects

COMPLETE = ".venvd-complete"
#: The names of spare clones (``venvd.daemon.spares``; it imports this module).
SPARE = "spare-"
#: Lock states kept per project (the live one included), so a branch switch back is instant.
KEEP_STATES = 3


def env_store(envs: Path, project: Path) -> Path:
    """The folder holding a project's lock states, named so a person can tell whose it is."""
    key = hashlib.sha256(os.fsencode(project)).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", project.name)[:40].strip("._") or "project"
    return envs / f"{readable}-{key}"


def find_built(store: Path, fingerprint: str) -> Optional[Path]:
    """A complete env already built for *fingerprint* (the other branch's lock state).

    Every state is looked at, not only those named after *fingerprint*: a state the project's
    own tool brought to a new lock was adopted under that lock's fingerprint (``adopt``)."""
    folders = store.iterdir() if store.is_dir() else iter(())
    for folder in sorted(folders, key=lambda f: not f.name.startswith(fingerprint[:16])):
        try:
            if (folder / COMPLETE).read_text().strip() == fingerprint and is_complete(folder):
                return folder
        except OSError:
            continue
    return None


def prune_states(store: Path, keep: int, current: Optional[Path],
                 trash: Optional[Path] = None) -> list[Path]:
    """Remove all but the *keep* most recently used lock states (never *current*); with
    *trash*, move them into it instead (one rename each), for a slower removal later."""
    states = [f for f in store.iterdir() if f.is_dir()] if store.is_dir() else []
    states.sort(key=lambda f: _last_used(f), reverse=True)
    removed = []
    kept = 1 if current is not None else 0
    for folder in states:
        if folder == current or is_spare(folder):
            continue  # a spare clone is the next state's start (see spares)
        if kept < keep and is_complete(folder):
            kept += 1
            continue
        _discard(folder, trash)
        removed.append(folder)
    return removed


def _discard(folder: Path, trash: Optional[Path]) -> None:
    if trash is not None:
        try:
            trash.mkdir(exist_ok=True)
            os.rename(folder, trash / f"{folder.parent.name}-{folder.name}-{time.time_ns():x}")
            return
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def _last_used(folder: Path) -> float:
    try:
        return (folder / COMPLETE).stat().st_mtime
    except OSError:
        return 0.0


def is_spare(folder: Path) -> bool:
    """A spare clone being made, waiting, or being built into a state (not complete yet)."""
    return folder.name.startswith(SPARE) and not is_complete(folder)


def is_complete(target: Path) -> bool:
    return (target / COMPLETE).is_file() and projects.env_is_usable(str(target))


def switch(project: Path, target: Path) -> Optional[str]:
    """Point ``<project>/.venv`` at *target* in one atomic rename.

    A real ``.venv`` folder made by someone else is kept, renamed aside, never deleted: its
    new name is returned, for the news and ``venvd status`` to say where it went.
    """
    link = Path(projects.env_path(str(project)))
    with contextlib.suppress(OSError):
        os.utime(target / COMPLETE)  # most recently used: kept longest by prune_states
    if link.is_symlink() and os.readlink(link) == str(target):
        return None
    moved = None
    if link.exists() and not link.is_symlink():
        aside = _free_name(link.with_name(ASIDE))
        link.rename(aside)
        moved = aside.name
    tmp = link.with_name(f".venv.venvd-{os.getpid()}-{threading.get_ident()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    return moved


#: What a ``.venv`` folder venvd did not make is renamed to (``.venv.before-venvd.2``, ...).
ASIDE = ".venv.before-venvd"


def moved_aside(project: Path) -> list[str]:
    """The ``.venv`` folders venvd moved aside in *project* and that are still there."""
    found = [p.name for p in project.glob(ASIDE + "*")
             if p.name == ASIDE or p.name[len(ASIDE) + 1:].isdigit()]
    return sorted(found)


def aside_note(name: str) -> str:
    return (f"moved your existing .venv to {name}; venvd now manages .venv "
            f"(to undo: 'venvd deny', then rm .venv and mv {name} .venv)")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
