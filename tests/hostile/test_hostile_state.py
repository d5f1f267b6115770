"""The state database: private to its user, a corrupt one moved aside and rebuilt (the user
told once that trust was lost), a read-only one one clear line."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from venvd.daemon.store import Store

import memlimit
from conftest import Sandbox, wait_for

limited_daemon = memlimit.limited_daemon  # the fixture


def _state(box: Sandbox) -> Path:
    return box.home / ".local" / "state" / "venvd"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_folder_and_database_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "state.sqlite3")
    store.set_trust("/p", True, "")
    assert _mode(tmp_path / "state") == 0o700
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        assert _mode(tmp_path / "state" / name) == 0o600, name
    store.close()


def test_an_old_install_is_made_private_on_start(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    db = folder / "state.sqlite3"
    old = sqlite3.connect(db)  # what an old venvd left: 0755 and 0644 (umask 022)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t(x)")
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        (folder / name).chmod(0o644)
    Store(db).close()
    old.close()
    assert _mode(folder) == 0o700
    assert _mode(db) == 0o600
    for name in ("state.sqlite3-wal", "state.sqlite3-shm"):
        if (folder / name).exists():
            assert _mode(folder / name) == 0o600, name


def test_a_corrupt_database_is_moved_aside_and_the_user_told_once(
        sandbox: Sandbox, request: pytest.FixtureRequest) -> None:
    project = sandbox.project("kept", requirements="")
    state = _state(sandbox)
    state.mkdir(parents=True)
    db = state / "state.sqlite3"
    db.write_bytes(b"this is not a database, it was cut short by a crash" * 200)
    box, _proc = request.getfixturevalue("limited_daemon")

    asides = list(state.glob("state.sqlite3.corrupt-*"))
    assert [p.name for p in asides if not p.name.endswith(("-wal", "-shm"))], list(state.iterdir())
    assert asides[0].read_bytes().startswith(b"this is not a database")
    assert "corrupt" in memlimit.daemon_output(box)
    # the new database works: trust can be given again
    box.venvd("allow", str(project))
    assert box.status(project)["trusted"] is True
    assert "every 'venvd allow'" in str(box.request({"v": 1, "op": "daemon-status"})["notice"])
    told = [box.request({"v": 1, "op": "export", "dir": str(project), "pid": os.getpid()})
            for _ in range(3)]
    notices = [m for reply in told for m in reply["messages"] if "corrupt" in m]
    assert len(notices) == 1, told
    assert "moved to" in notices[0] and "allow" in notices[0]


def test_a_read_only_database_is_one_clear_line(sandbox: Sandbox) -> None:
    state = _state(sandbox)
    db = state / "state.sqlite3"
    Store(db).close()
    db.chmod(0o644)  # a mode the daemon would fix, if it could write the file at all
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file immutable here (chattr +i needs root and ext4)")
    try:
        result = subprocess.run([sys.executable, "-m", "venvd.daemon", "run"],
                                env=sandbox.env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("venvd:")]
    assert len(said) == 1, result.stderr
    assert "read-only" in said[0] and str(db) in said[0], said


def test_the_daemon_keeps_its_state_private(limited_daemon: tuple[Sandbox, psutil.Process]
                                            ) -> None:
    box, _proc = limited_daemon
    project = box.project("p", requirements="")
    box.venvd("allow", str(project))
    state = _state(box)
    wait_for(lambda: (state / "state.sqlite3-wal").exists(), 10, "the write-ahead log")
    assert _mode(state) == 0o700
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        assert _mode(state / name) == 0o600, name
