"""Who may be activated and synced. Standard library only: the client's fallback reads it too.

Trust is keyed by the project's real path. Editing lockfiles or ``.python-version`` keeps it;
changing ``.venvd.toml`` or the ``[tool.venvd]`` table of ``pyproject.toml`` (they can name
what is installed) revokes it, as direnv does for ``.envrc``: the rule is a digest of their
content, never a file's mtime. An allow also records which folder it was given to (device,
inode, owner): another folder put at the same path later is not trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from typing import NamedTuple, Optional, Union

from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import MAX_TOML, read_project_file

try:  # Python 3.11 and later; below (or under -S) the digest takes the whole file instead
    import tomllib
except ImportError:  # pragma: no cover - exercised on older Pythons only
    tomllib = None  # type: ignore[assignment]

PROJECT_CONFIG = ".venvd.toml"
PYPROJECT = "pyproject.toml"

#: (st_dev, st_ino, st_uid) of a project folder.
Identity = tuple[int, int, int]


class Record(NamedTuple):
    """A project's trust row: allowed or denied, the digest then, the folder's identity then
    (``None`` in rows written before venvd recorded it: not checked)."""

    allowed: bool
    digest: str
    identity: Optional[Identity] = None


#: What ``decide`` accepts: a ``Record`` or a bare ``(allowed, digest)`` pair.
RecordLike = Union[Record, tuple[bool, str]]


def config_digest(project: str) -> str:
    """A digest of what configures the project: its ``.venvd.toml`` ("" when there is none),
    and the ``[tool.venvd]`` table of its ``pyproject.toml`` when it has one (canonicalised:
    editing other parts of ``pyproject.toml`` keeps it). Rows written before the table was
    part of it stay valid for projects without one.

    A ``.venvd.toml`` that is not a regular file of a sane size (a symlink to ``/dev/zero``,
    a FIFO) raises ``UnsafeFile``: it can never be trusted.
    """
    try:
        own = hashlib.sha256(
            read_project_file(os.path.join(project, PROJECT_CONFIG), MAX_TOML)).hexdigest()
    except FileNotFoundError:
        own = ""
    table = tool_table(project)
    if table is None:
        return own
    return hashlib.sha256(f"{own}\0[tool.venvd]\0{table}".encode()).hexdigest()


def tool_table(project: str) -> Optional[str]:
    """The ``[tool.venvd]`` table of *project*'s ``pyproject.toml`` in a canonical form, or
    ``None`` when there is none. A file venvd will not read or parse is a fixed marker (no
    table of it can be used while it is so: making it readable changes the digest)."""
    try:
        data = read_project_file(os.path.join(project, PYPROJECT), MAX_TOML)
    except FileNotFoundError:
        return None
    except VenvdError:
        return "<unreadable>"
    if b"venvd" not in data and b"\\u" not in data and b"\\U" not in data:
        return None  # most files: no parse needed (a key spelled with escapes is parsed)
    return _cached(hashlib.sha256(data).hexdigest(), data)


#: content digest -> canonical table: a prompt asks for the same few files again.
_tables: dict[str, Optional[str]] = {}
_TABLES_KEPT = 256
_tables_lock = threading.Lock()  # the daemon answers prompts from several threads


def _cached(key: str, data: bytes) -> Optional[str]:
    with _tables_lock:
        if key in _tables:
            return _tables[key]
    found = _canonical(data)
    with _tables_lock:
        if len(_tables) >= _TABLES_KEPT:
            _tables.pop(next(iter(_tables)), None)
        _tables[key] = found
    return found


def _canonical(data: bytes) -> Optional[str]:
    if tomllib is None:  # no TOML reader: the whole file stands for the table
        return "<file>" + hashlib.sha256(data).hexdigest()
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "<invalid>"
    tool = parsed.get("tool")
    if not isinstance(tool, dict) or "venvd" not in tool:
        return None
    return json.dumps(tool["venvd"], sort_keys=True, separators=(",", ":"), default=str)


def identity(project: str) -> Optional[Identity]:
    """The folder's (device, inode, owner), or ``None`` when it cannot be looked at."""
    try:
        st = os.stat(project)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_uid)


def under_roots(project: str, roots: Iterable[str]) -> bool:
    """True when *project* (a real path) is at or below one of the trusted roots."""
    for root in roots:
        base = os.path.realpath(os.path.expanduser(root))
        if project == base or project.startswith(base.rstrip("/") + "/"):
            return True
    return False


def decide(record: Optional[RecordLike], project: str, roots: Iterable[str]) -> bool:
    """Whether *project* (real path) is trusted, given its trust record and the roots."""
    if record is None:
        return under_roots(project, roots)
    try:
        digest = config_digest(project)
    except VenvdError:  # a .venvd.toml venvd will not read is never trusted
        return False
    return judge(record, digest, identity(project))


def judge(record: RecordLike, digest: str, found: Optional[Identity]) -> bool:
    """Whether a project with trust *record*, whose config has *digest* now and whose folder
    is *found*, is trusted."""
    allowed, recorded = record[0], record[1]
    kept = record[2] if len(record) > 2 else None
    if not allowed or recorded != digest:
        return False
    return kept is None or kept == found


#: How a text that is not UTF-8 (a path's undecodable bytes, held as lone surrogates) is
#: kept in the state database, whose texts are UTF-8: this mark, then the bytes in hex.
_BYTES = "\ufffevenvd-bytes:"


def db_text(value: object) -> object:
    """*value* as the database keeps it (unchanged unless a text that is not UTF-8)."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
        return _BYTES + raw.hex()


def from_db_text(value: object) -> object:
    """The inverse of ``db_text``."""
    if isinstance(value, str) and value.startswith(_BYTES):
        try:
            return bytes.fromhex(value[len(_BYTES):]).decode("utf-8", "surrogateescape")
        except ValueError:
            return value
    return value


def read_record(db_path: str, project: str) -> Optional[Record]:
    """The trust record of *project*, read straight from the daemon's database (read-only)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return None
    try:
        try:
            row = db.execute("SELECT allowed, config_digest, dev, ino, uid FROM trust "
                             "WHERE path=?", (db_text(project),)).fetchone()
        except sqlite3.OperationalError:  # a database no daemon of this version opened yet
            row = db.execute("SELECT allowed, config_digest, NULL, NULL, NULL FROM trust "
                             "WHERE path=?", (db_text(project),)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return None if row is None else record_of(row)


def record_of(row: tuple[object, ...] | sqlite3.Row) -> Record:
    """A ``Record`` from a row of (allowed, config_digest, dev, ino, uid)."""
    allowed, digest, dev, ino, uid = tuple(row)
    found = None
    if isinstance(dev, int) and isinstance(ino, int) and isinstance(uid, int):
        found = (dev, ino, uid)
    return Record(bool(allowed), str(digest), found)
