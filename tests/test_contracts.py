"""The daemon's contracts with its clients and itself: a client never shows a traceback
when the daemon goes away, failures outside a sync's own record reach the log and
``venvd logs``, a sync cut short by SIGTERM is recorded as cancelled and leaves no process
behind, and ``venvd status`` changes nothing."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import psutil

from conftest import Sandbox, _pid_alive, wait_for

#: A build backend that says when it starts and then waits (for at most two minutes) for
#: the test to let it go: a sync that is slow for exactly as long as the test needs.
BACKEND = '''
import os, time, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED = {started!r}
RELEASE = {release!r}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    open(STARTED, "a").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.05)
    name = "slowpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        whl.writestr("slowpkg.py", "VERSION = '1.0'\\n")
        info = "slowpkg-1.0.dist-info/"
        whl.writestr(info + "METADATA", "Metadata-Version: 2.1\\nName: slowpkg\\nVersion: 1.0\\n")
        whl.writestr(info + "WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\n"
                     "Root-Is-Purelib: true\\nTag: py3-none-any\\n")
        whl.writestr(info + "RECORD", "")
    return name
'''


class Slow:
    """A project whose only requirement is built by ``BACKEND``."""

    def __init__(self, box: Sandbox, name: str = "slow") -> None:
        pkg = box.root / f"{name}-pkg"
        pkg.mkdir()
        self.started = box.root / f"{name}.started"
        self.release = box.root / f"{name}.release"
        (pkg / "backend.py").write_text(BACKEND.format(started=str(self.started),
                                                       release=str(self.release)))
        (pkg / "pyproject.toml").write_text(textwrap.dedent('''\
            [build-system]
            requires = []
            build-backend = "backend"
            backend-path = ["."]
            [project]
            name = "slowpkg"
            version = "1.0"
            '''))
        self.project = box.project(name, requirements=f"slowpkg @ {pkg.as_uri()}\n")

    def wait_started(self) -> None:
        wait_for(self.started.exists, 120, "the slow build to start")

    def let_go(self) -> None:
        self.release.touch()


def _daemon_pid(box: Sandbox) -> int:
    return int(box.request({"op": "ping"})["pid"])


def _sandbox_processes(box: Sandbox) -> list[psutil.Process]:
    return [p for p in box._processes_of_sandbox() if p.status() != psutil.STATUS_ZOMBIE]


def test_sync_wait_when_the_daemon_dies_midstream_prints_one_line(daemon: Sandbox) -> None:
    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()  # the sync that allow started: sync --wait follows it
    waiting = subprocess.Popen(
        [str(daemon.root / "bin" / "venvd"), "sync", str(slow.project), "--wait"],
        env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        assert waiting.stdout is not None
        # its first line comes once it streams from the daemon (before, a client that
        # finds no daemon starts one)
        first = waiting.stdout.readline()
        assert first.startswith("syncing slow"), first
        daemon.kill_daemon()
        out, err = waiting.communicate(timeout=60)
    finally:
        slow.let_go()
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("venvd: "), err
    assert "daemon" in lines[0]


def test_a_failure_recording_a_sync_reaches_the_log_and_venvd_logs(sandbox: Sandbox) -> None:
    """The sync itself succeeds; writing down its result does not (another process holds
    the state database's write lock for longer than the daemon waits for it)."""
    slow = Slow(sandbox)
    sandbox.venvd("allow", str(slow.project))  # starts the daemon, with its log file
    slow.wait_started()
    state = Path(sandbox.env["XDG_STATE_HOME"]) / "venvd"
    log = state / "log" / "daemon.log"
    holder = sqlite3.connect(str(state / "state.sqlite3"), isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        slow.let_go()
        wait_for(lambda: "recording the sync of" in log.read_text(), 120,
                 "the failure to reach the daemon log")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    text = log.read_text()
    assert "database is locked" in text and str(slow.project) in text
    shown = sandbox.venvd("logs", str(slow.project)).stdout
    assert "daemon problem" in shown and "database is locked" in shown


def test_sigterm_during_a_slow_sync_records_it_cancelled_and_leaves_no_process(
        sandbox: Sandbox) -> None:
    slow = Slow(sandbox)
    sandbox.venvd("allow", str(slow.project))  # starts the daemon, with its log file
    slow.wait_started()
    pid = _daemon_pid(sandbox)
    builders = psutil.Process(pid).children(recursive=True)
    assert builders, "the sync runs no command"
    try:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not _pid_alive(pid), 60, "the daemon to stop")
        # its syncs' commands (uv, the build backend) ended with it
        assert not [p for p in builders if p.is_running()
                    and p.status() != psutil.STATUS_ZOMBIE]
        assert not _sandbox_processes(sandbox)
    finally:
        slow.let_go()
    log = (Path(sandbox.env["XDG_STATE_HOME"]) / "venvd" / "log" / "daemon.log").read_text()
    assert log.rstrip().endswith("stopped") and "Traceback" not in log, log
    shown = sandbox.venvd("logs", str(slow.project)).stdout  # a new daemon answers
    assert "=== cancelled at" in shown, shown
    assert "=== failed" not in shown


def test_status_of_a_project_that_needs_a_sync_queues_nothing(daemon: Sandbox) -> None:
    project = daemon.project("behind", requirements="")
    daemon.venvd("allow", str(project))
    daemon.wait_state(project, ("synced",))
    daemon.venvd("daemon", "stop")
    (project / "requirements.txt").write_text("alpha==1.0\n")  # changed while nobody watched
    # last visited long ago, and no shell entered it since a reboot (the runtime folder is
    # new): a start does not look at it again (it does so for recent ones)
    db = sqlite3.connect(Path(daemon.env["XDG_STATE_HOME"]) / "venvd" / "state.sqlite3")
    with db:
        db.execute("UPDATE projects SET last_seen=0")
    db.close()
    shutil.rmtree(Path(daemon.env["XDG_RUNTIME_DIR"]) / "venvd" / "ready")
    daemon.venvd("daemon", "start")
    for _ in range(3):
        status: dict[str, Any] = daemon.status(project)
        assert status["state"] == "outdated"
        assert daemon.request({"op": "daemon-status"})["queue"] == {}
    assert daemon.request({"op": "logs", "dir": str(project)})["syncs"][0]["result"] == "ok"
    assert len(daemon.request({"op": "logs", "dir": str(project)})["syncs"]) == 1


def test_every_reply_has_the_shape_its_op_declares(daemon: Sandbox) -> None:
    from venvd.daemon.protocol import TABLE

    project = daemon.project("shapes", requirements="alpha==1.0\n")
    daemon.venvd("allow", str(project))
    daemon.wait_state(project, ("synced",))
    fields = {"dir": str(project)}
    last = ("deny", "stop")  # deny makes sync refuse; stop ends the daemon
    for op in sorted(TABLE, key=lambda op: last.index(op.name) + 1 if op.name in last else 0):
        reply = daemon.request({"op": op.name, **fields}, timeout=60)
        assert reply["ok"], (op.name, reply)
        assert set(reply) - {"ok"} <= set(op.reply), (op.name, sorted(reply))


def test_uv_killed_mid_sync_is_a_failure_naming_the_signal(daemon: Sandbox) -> None:
    """A command of the sync killed from outside (the OOM killer, a user's kill -9): one
    line that says so, not "no output"; the next sync works."""
    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()
    uvs = [p for p in psutil.Process(_daemon_pid(daemon)).children(recursive=True)
           if p.name() == "uv"]
    assert uvs, "no uv process in the sync"
    try:
        for proc in uvs:
            proc.kill()
        status = daemon.wait_state(slow.project, ("failed",))
        assert status["last_sync"]["error"] == "uv was killed by signal 9", status
    finally:
        slow.let_go()
    daemon.venvd("sync", str(slow.project), "--wait")
    assert daemon.status(slow.project)["state"] == "synced"
