"""Who may be activated and synced. Standard library only: the client's fallback reads it too.

Trust is keyed by the project's real path. Editing lockfiles or ``.python-version`` keeps it;
changing ``.venvd.toml`` (which can name commands) revokes it, as direnv does for ``.envrc``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable

from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import MAX_TOML, read_project_file

PROJECT_CONFIG = ".venvd.toml"


def config_digest(project: str) -> str:
    """A digest of the project's ``.venvd.toml`` ("" when there is none).

    One that is not a regular file of a sane size (a symlink to ``/dev/zero``, a FIFO)
    raises ``UnsafeFile``: it can never be trusted.
    """
    try:
        return hashlib.sha256(
            read_project_file(os.path.join(project, PROJECT_CONFIG), MAX_TOML)).hexdigest()
    except FileNotFoundError:
        return ""


def under_roots(project: str, roots: Iterable[str]) -> bool:
    """True when *project* (a real path) is at or below one of the trusted roots."""
    for root in roots:
        base = os.path.realpath(os.path.expanduser(root))
        if project == base or project.startswith(base.rstrip("/") + "/"):
            return True
    return False


def decide(record: tuple[bool, str] | None, project: str, roots: Iterable[str]) -> bool:
    """Whether *project* (real path) is trusted, given its trust record and the roots."""
    if record is not None:
        allowed, digest = record
        if not allowed:
            return False
        try:
            return digest == config_digest(project)
        except VenvdError:  # a .venvd.toml venvd will not read is never trusted
            return False
    return under_roots(project, roots)


def read_record(db_path: str, project: str) -> tuple[bool, str] | None:
    """The trust record of *project*, read straight from the daemon's database (read-only)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return None
    try:
        row = db.execute(
            "SELECT allowed, config_digest FROM trust WHERE path=?", (project,)
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return None if row is None else (bool(row[0]), str(row[1]))
