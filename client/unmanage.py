"""Giving each project back as it was before venvd: its ``.venv`` link into venvd's envs
removed, the ``.venv`` folder venvd moved aside put back, venvd's lines taken out of the
repository's ``info/exclude``. What ``venvd forget --all`` (and so ``install.sh
--uninstall``) does to every project the state database knows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from venvd.daemon import gitexclude, states
from venvd.daemon.display import printable
from venvd.daemon.paths import Paths
from venvd.daemon.projects import ENV_NAME

EXCLUDE_NOTE = gitexclude.NOTE


def known_projects(paths: Paths) -> list[str]:
    """Every project in the state database (none when there is no database: nothing was
    ever synced, and opening one would create it)."""
    if not paths.db.exists():
        return []
    from venvd.daemon.store import Store

    store = Store(paths.db)
    try:
        return store.projects()
    finally:
        store.close()


def give_back(project: Path, envs: Path) -> Iterator[str]:
    """Undo venvd in *project*; yield a line for each change and each thing left."""
    link = project / ENV_NAME
    if link.is_symlink() and _inside(os.readlink(link), envs):
        link.unlink()
        yield f"removed the {ENV_NAME} link in {printable(str(project))}"
    aside = states.moved_aside(project)
    if aside and not os.path.lexists(link):
        newest = max(aside, key=_aside_number)  # the .venv the user had last
        (project / newest).rename(link)
        aside.remove(newest)
        yield f"restored {printable(str(link))} (from {newest})"
    for name in aside:
        yield f"left {printable(str(project / name))} (a .venv venvd moved aside)"
    exclude = drop_exclude(project)
    if exclude is not None:
        yield f"removed venvd's lines from {printable(exclude)}"


def drop_kernels() -> Iterator[str]:
    """Remove every Jupyter kernel venvd wrote (each points at a project's ``.venv``, which is
    going); the kernels folder too when nothing else is left in it."""
    from venvd.daemon import kernels

    folder = kernels.data_dir() / "kernels"
    for kernel in sorted(folder.glob(kernels.PREFIX + "*")):
        if kernels.project_of(kernel) is not None:
            shutil.rmtree(kernel, ignore_errors=True)
            yield f"removed the Jupyter kernel {printable(str(kernel))}"
    for empty in (folder, folder.parent):
        with contextlib.suppress(OSError):
            empty.rmdir()


def _inside(target: str, folder: Path) -> bool:
    return Path(target).is_absolute() and Path(target).is_relative_to(folder)


def _aside_number(name: str) -> int:
    suffix = name[len(states.ASIDE) + 1:]
    return int(suffix) if suffix.isdigit() else 1


def drop_exclude(project: Path) -> Optional[str]:
    """Take venvd's block (the note and the patterns under it) out of the ``info/exclude``
    of *project*'s repository; returns the file changed, if any."""
    exclude = _exclude_file(project)
    if exclude is None:
        return None
    try:
        lines = exclude.read_text().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return None
    kept: list[str] = []
    ours = False
    for line in lines:
        if line.rstrip("\n") == EXCLUDE_NOTE:
            ours = True
            continue
        # the patterns venvd writes: anchored, ending in .venv or a moved-aside name
        if ours and line.startswith("/") and _our_pattern(line.rstrip("\n")):
            continue
        ours = False
        kept.append(line)
    if kept == lines:
        return None
    with contextlib.suppress(OSError):
        exclude.write_text("".join(kept))
        return str(exclude)
    return None


def _our_pattern(line: str) -> bool:
    name = line.rsplit("/", 1)[-1]
    return name == ENV_NAME or name.startswith(states.ASIDE)


def _exclude_file(project: Path) -> Optional[Path]:
    git = shutil.which("git")
    if git is None or not project.is_dir():
        return None
    try:
        found = subprocess.run([git, "rev-parse", "--git-path", "info/exclude"], cwd=project,
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode != 0 or not found.stdout.strip():
        return None
    path = project / found.stdout.strip()
    return path if path.is_file() else None
