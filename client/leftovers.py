"""venvd's own data on disk (envs, state, logs, runtime files, config): each piece with what
it is and its size, removed by ``--purge`` or listed with the command that removes it."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple, Optional

from venvd.daemon.display import printable
from venvd.daemon.paths import Paths


class Piece(NamedTuple):
    path: Path
    what: str
    #: inside *path*, what is not venvd's data (install.sh's venv, which it removes itself)
    besides: frozenset[Path] = frozenset()


def pieces(paths: Paths, keep: Collection[Path]) -> list[Piece]:
    """What venvd left on disk that exists, but *keep* (install.sh's own venv, which it
    removes itself)."""
    named = [
        (paths.runtime, "runtime folder: socket, pid, activation snippets"),
        (paths.state, "state folder: trust, projects, sync history, logs"),
        (paths.log, "logs"),
        (paths.config, "settings"),
        (paths.cache, "cache"),
    ]
    found: list[Piece] = []
    for path, what in named:
        if os.path.lexists(path) and not any(_within(path, p.path) for p in found):
            found.append(Piece(path, what))
    kept = frozenset(Path(os.path.abspath(k)) for k in keep)
    if any(child not in kept for child in _children(paths.data)):
        found.append(Piece(paths.data, "data folder: the projects' envs", kept))
    return found


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def size(piece: Piece) -> int:
    """Bytes on disk under the piece, each file once (envs hard-link files from uv's cache
    and from each other, as ``du`` counts them)."""
    seen: set[tuple[int, int]] = set()
    total = _blocks(str(piece.path), seen)
    for root, dirs, files in os.walk(piece.path, onerror=lambda _: None):
        dirs[:] = [d for d in dirs if Path(root, d) not in piece.besides]
        for name in (*dirs, *files):
            if Path(root, name) not in piece.besides:
                total += _blocks(os.path.join(root, name), seen)
    return total


def _blocks(path: str, seen: set[tuple[int, int]]) -> int:
    try:
        info = os.lstat(path)
    except OSError:
        return 0
    if (info.st_dev, info.st_ino) in seen:
        return 0
    seen.add((info.st_dev, info.st_ino))
    return info.st_blocks * 512


def human(n: int) -> str:
    """*n* bytes as a person reads it (decimal units, as ``venvd daemon status``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # unreachable: GB is the last unit


def remove(piece: Piece) -> Optional[str]:
    """Delete *piece*; why not, if it could not be."""
    targets = ([c for c in _children(piece.path) if c not in piece.besides] if piece.besides
               else [piece.path])
    for path in targets:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            return f"could not remove {printable(str(path))}: {exc.strerror}"
    return None


def report(found: list[Piece]) -> list[str]:
    """A line per piece: its size, the path and what it is, and the command removing it."""
    lines = []
    for piece in found:
        quoted = shlex.quote(str(piece.path))
        lines.append(f"  {human(size(piece)):>9}  {printable(str(piece.path))}"
                     f"  ({piece.what}); remove with: rm -rf -- {printable(quoted)}")
    return lines
