"""Persistent state (projects, trust, sync history) in SQLite, so a restart loses nothing."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from venvd.daemon import statedb, trust
from venvd.daemon.statedb import SCHEMA_VERSION, StoreError

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "SyncRecord"]

log = logging.getLogger("venvd")

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


class Store:
    """One connection shared by the daemon's threads, serialised by a lock.

    The folder is 0700 and the files 0600 (they hold every trust decision, project path and
    sync output), fixed on start for older installs. A corrupt database is moved aside and
    rebuilt; ``notice`` then says so once (trust is lost with it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db, self.notice = statedb.open_state(path)

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

    def forget(self, path: str) -> None:
        """Drop a project's row and its sync history (its folder is gone: ``venvd prune``);
        its trust stays, tied to the folder's identity, which a new folder does not share."""
        with self._tx() as db:
            db.execute("DELETE FROM projects WHERE path=?", (path,))
            db.execute("DELETE FROM syncs WHERE project=?", (path,))

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
