"""Opening the state database: private files, an integrity check, the schema and its
migrations, and a corrupt database moved aside for a new one."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, Optional

from venvd.daemon import trust
from venvd.daemon.errors import VenvdError

log = logging.getLogger("venvd")

#: 2: the trust table records the folder an allow was given to (dev, ino, uid).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trust (
    path TEXT PRIMARY KEY,
    allowed INTEGER NOT NULL,
    config_digest TEXT NOT NULL,
    changed REAL NOT NULL,
    dev INTEGER,
    ino INTEGER,
    uid INTEGER
);
CREATE TABLE IF NOT EXISTS projects (
    path TEXT PRIMARY KEY,
    fingerprint TEXT,
    env_target TEXT,
    python TEXT,
    python_version TEXT,
    engine TEXT,
    lockfile TEXT,
    last_seen REAL
);
CREATE TABLE IF NOT EXISTS syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    engine TEXT,
    started REAL NOT NULL,
    seconds REAL,
    result TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS syncs_project ON syncs(project, id);
"""


class StoreError(VenvdError):
    """The state database cannot be used (read-only, not ours)."""


#: SQLite's companions of a WAL database; they carry the same rows, so the same mode.
_COMPANIONS = ("", "-wal", "-shm", "-journal")


#: SQLite's companions of a WAL database; they carry the same rows, so the same mode.
_COMPANIONS = ("", "-wal", "-shm", "-journal")


class _Connection(sqlite3.Connection):
    """Texts that are not UTF-8 (paths with undecodable bytes) kept as ``trust.db_text``
    says, both ways, so that every query of the store takes them as they are."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, tuple(trust.db_text(v) for v in parameters))


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> sqlite3.Row:
    return sqlite3.Row(cursor, tuple(trust.from_db_text(v) for v in values))


def open_state(path: Path) -> tuple[sqlite3.Connection, Optional[str]]:
    """The state database at *path*, private, checked and at the current schema; and a
    notice when a corrupt one was moved aside for it (said once to the user)."""
    try:
        _private(path)
    except OSError as exc:
        raise StoreError(f"the state folder {path.parent} cannot be used: {exc.strerror}"
                         ) from None
    notice: Optional[str] = None
    try:
        db = _open(path)
    except sqlite3.DatabaseError as exc:
        if _read_only(exc):
            raise StoreError(f"the state database {path} is read-only ({exc}"
                             f"{_owner_note(path)}); make it writable, or move it away "
                             "to start afresh") from None
        aside = _move_aside(path)
        notice = (f"the state database was corrupt ({exc}): moved to {aside}, "
                  "starting afresh; every 'venvd allow' must be given again")
        log.error("%s", notice)
        try:
            db = _open(path)
        except sqlite3.DatabaseError as again:
            raise StoreError(f"the state database {path} cannot be rebuilt: {again}"
                             ) from None
    with contextlib.suppress(OSError):
        _private(path)  # the -wal and -shm files the open made
    return db, notice


def _open(path: Path) -> sqlite3.Connection:
    # check_same_thread off: the Store shares this one connection under its own lock
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                         factory=_Connection)
    try:
        db.row_factory = _row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=2000")
        # WAL with NORMAL sync: a crash of the machine may lose the last few records
        # (visits, sync results the daemon recomputes anyway), never corrupt the
        # database; no fsync per record on the sync path.
        db.execute("PRAGMA synchronous=NORMAL")
        # a damaged page is found now, not in the middle of an allow
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else '?'}")
        # executescript commits on its own; the schema is idempotent (IF NOT EXISTS).
        db.executescript(_SCHEMA)
        _migrate(db)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database of an older schema up to date, keeping its rows working: the trust
    rows of version 1 get the identity of the folder at their path now (the folder they
    have been trusting), so a folder put there later is not trusted."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= 2:
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(trust)")}
    for name in ("dev", "ino", "uid"):
        if name not in columns:
            db.execute(f"ALTER TABLE trust ADD COLUMN {name} INTEGER")
    rows = db.execute("SELECT path FROM trust WHERE allowed=1 AND dev IS NULL").fetchall()
    for (path,) in rows:
        found = trust.identity(path)
        if found is not None:
            db.execute("UPDATE trust SET dev=?, ino=?, uid=? WHERE path=?", (*found, path))


def _private(path: Path) -> None:
    """The database's folder 0700 and its files 0600, created so or fixed."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.lstat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        folder.chmod(0o700)
    with contextlib.suppress(FileExistsError):  # created 0600 before SQLite makes it 0644
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    for suffix in _COMPANIONS:
        name = Path(f"{path}{suffix}")
        try:
            info = name.lstat()
        except FileNotFoundError:
            continue
        if (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
                and stat.S_IMODE(info.st_mode) != 0o600):
            with contextlib.suppress(PermissionError):  # immutable: opening it says why
                name.chmod(0o600)


def _owner_note(path: Path) -> str:
    try:
        owner = path.stat().st_uid
    except OSError:
        return ""
    return "" if owner == os.getuid() else f"; it belongs to uid {owner}"


def _read_only(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


def _move_aside(path: Path) -> Path:
    """Move a corrupt database (and its companions) to ``<name>.corrupt-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in _COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    _private(path)
    return aside
