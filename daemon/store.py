"""Persistent state (projects, trust, sync history) in SQLite, so a restart loses nothing."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SyncRecord:
    project: str
    engine: Optional[str]
    started: float
    seconds: Optional[float]
    result: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    error: Optional[str] = None
    output: str = ""


class StoreError(VenvdError):
    """The state database cannot be used (read-only, not ours)."""


#: SQLite's companions of a WAL database; they carry the same rows, so the same mode.
_COMPANIONS = ("", "-wal", "-shm", "-journal")


class Store:
    """One connection shared by the daemon's threads, serialised by a lock.

    The folder is 0700 and the files 0600 (they hold every trust decision, project path and
    sync output), fixed on start for older installs. A corrupt database is moved aside and
    rebuilt; ``notice`` then says so once (trust is lost with it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notice: Optional[str] = None
        self._lock = threading.Lock()
        try:
            _private(path)
        except OSError as exc:
            raise StoreError(f"the state folder {path.parent} cannot be used: {exc.strerror}"
                             ) from None
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            if _read_only(exc):
                raise StoreError(f"the state database {path} is read-only ({exc}"
                                 f"{_owner_note(path)}); make it writable, or move it away "
                                 "to start afresh") from None
            aside = _move_aside(path)
            self.notice = (f"the state database was corrupt ({exc}): moved to {aside}, "
                           "starting afresh; every 'venvd allow' must be given again")
            log.error("%s", self.notice)
            try:
                self._db = self._open(path)
            except sqlite3.DatabaseError as again:
                raise StoreError(f"the state database {path} cannot be rebuilt: {again}"
                                 ) from None
        with contextlib.suppress(OSError):
            _private(path)  # the -wal and -shm files the open made

    def _open(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
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
            with self._lock:
                # executescript commits on its own; the schema is idempotent (IF NOT EXISTS).
                db.executescript(_SCHEMA)
                _migrate(db)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> Optional[sqlite3.Row]:
        with self._lock:
            row: Optional[sqlite3.Row] = self._db.execute(sql, args).fetchone()
            return row

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # trust
    def set_trust(self, path: str, allowed: bool, digest: str,
                  identity: Optional[trust.Identity] = None) -> None:
        dev, ino, uid = identity if identity is not None else (None, None, None)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO trust(path, allowed, config_digest, changed, dev, ino,"
                " uid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path, int(allowed), digest, time.time(), dev, ino, uid),
            )

    def trust(self, path: str) -> Optional[trust.Record]:
        row = self._one("SELECT allowed, config_digest, dev, ino, uid FROM trust WHERE path=?",
                        path)
        return None if row is None else trust.record_of(row)

    # projects
    def project(self, path: str) -> Optional[dict[str, Any]]:
        row = self._one("SELECT * FROM projects WHERE path=?", path)
        return None if row is None else dict(row)

    def projects(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT path FROM projects ORDER BY path")]

    def recent(self, since: float, limit: int) -> list[tuple[str, float]]:
        """The projects visited since *since* (a time) and when, the most recent first."""
        with self._lock:
            return [(r[0], float(r[1])) for r in self._db.execute(
                "SELECT path, last_seen FROM projects WHERE last_seen >= ? "
                "ORDER BY last_seen DESC LIMIT ?", (since, limit))]

    def touch_project(self, path: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO projects(path, last_seen) VALUES (?, ?) "
                "ON CONFLICT(path) DO UPDATE SET last_seen=excluded.last_seen",
                (path, time.time()),
            )

    def record_env(self, path: str, **fields: Optional[str]) -> None:
        allowed = {"fingerprint", "env_target", "python", "python_version", "engine", "lockfile"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"bad project fields {sorted(fields)}")
        self.touch_project(path)
        assignments = ", ".join(f"{name}=?" for name in sorted(fields))
        with self._tx() as db:
            db.execute(
                f"UPDATE projects SET {assignments} WHERE path=?",
                (*(fields[n] for n in sorted(fields)), path),
            )

    # sync history
    def add_sync(self, record: SyncRecord) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO syncs(project, engine, started, seconds, result, added, removed,"
                " changed, error, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.project, record.engine, record.started, record.seconds, record.result,
                 record.added, record.removed, record.changed, record.error, record.output),
            )
            return int(cursor.lastrowid or 0)

    def syncs(self, path: str, limit: int = 5) -> list[SyncRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM syncs WHERE project=? ORDER BY id DESC LIMIT ?", (path, limit)
            ).fetchall()
        return [SyncRecord(**{k: v for k, v in dict(r).items() if k != "id"}) for r in rows]

    def sync_count(self, path: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM syncs WHERE project=?", path)
        return int(row["n"]) if row else 0


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
