"""Taking turns with the project's own tool: a sync waits while ``uv add``, ``poetry lock``,
``pdm sync`` and the like run in the project, so that venvd never reads a manifest the tool is
halfway through rewriting, nor writes into an env the tool is installing into.

uv holds an exclusive ``flock`` on ``<env>/.lock`` for the whole of ``uv add``/``uv remove``/
``uv sync`` (from before it rewrites ``pyproject.toml`` until its install is done): that lock is
respected as it is. Poetry and PDM hold no lock: a sync waits until no such command of theirs
(nor of uv's) runs with its working directory in the project.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Callable, Optional

import psutil

#: Subcommands that write a project's manifest, lockfile or env, per tool (``uv run`` and the
#: like may run for hours and write nothing: they are not waited for).
WRITERS = {
    "uv": frozenset({"add", "remove", "lock", "sync", "pip", "venv", "init"}),
    "poetry": frozenset({"add", "remove", "lock", "install", "sync", "update", "init"}),
    "pdm": frozenset({"add", "remove", "lock", "install", "sync", "update", "init"}),
}
#: The longest a sync waits for a tool (a stuck one must not stop the project for good).
TURN_TIMEOUT = 600.0
POLL = 0.1


def env_lock_held(env: str) -> bool:
    """Whether someone (uv) holds ``<env>/.lock``; probed with a shared lock let go at once.
    Not when venvd holds it itself (``env_lock``: a spare clone being made, which the sync
    waits for as it takes it)."""
    with _HELD_LOCK:
        if env in _HELD:
            return False
    try:
        # O_NONBLOCK: a FIFO there (the project's folder is not venvd's) must not hold the
        # sync thread in open() for good
        fd = os.open(os.path.join(env, ".lock"),
                     os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # not uv's lock file: nobody holds it
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def env_lock(env: str, cancel: threading.Event,
             timeout: float = TURN_TIMEOUT) -> Iterator[bool]:
    """uv's own lock on *env* (uv then waits for venvd, as it waits for another uv), waited
    for while uv holds it; yields whether it was had (not when cancelled or timed out)."""
    try:
        fd = os.open(os.path.join(env, ".lock"),
                     os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    except OSError:
        yield False
        return
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancel.is_set() or time.monotonic() > deadline:
                    yield False
                    return
                cancel.wait(POLL / 2)
            except OSError:
                yield False
                return
        with _HELD_LOCK:
            _HELD.add(env)
        try:
            yield True
        finally:
            with _HELD_LOCK:
                _HELD.discard(env)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


#: The envs whose lock this process holds (``env_lock``).
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()


def tool_command(cmdline: list[str]) -> Optional[str]:
    """``"uv add"`` for ``uv add x`` (or ``python …/bin/poetry lock``); ``None`` otherwise."""
    for i, arg in enumerate(cmdline[:2]):
        tool = os.path.basename(arg)
        if tool in WRITERS:
            sub = next((a for a in cmdline[i + 1:] if not a.startswith("-")), None)
            return f"{tool} {sub}" if sub in WRITERS[tool] else None
    return None


def running_tools(project: str) -> list[str]:
    """The tool commands running with their working directory in *project* (not venvd's own)."""
    mine: Optional[set[int]] = None
    found = []
    inside = project.rstrip(os.sep) + os.sep
    for proc in psutil.process_iter(["cmdline"]):
        what = tool_command(proc.info.get("cmdline") or [])
        if what is None:
            continue
        try:
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if cwd != project and not cwd.startswith(inside):
            continue
        if mine is None:  # the daemon's own syncs run these tools in the project too
            mine = {p.pid for p in psutil.Process().children(recursive=True)}
        if proc.pid not in mine:
            found.append(f"{what} (pid {proc.pid})")
    return found


def busy(project: str, env: str) -> Optional[str]:
    """What venvd must wait for before syncing *project*, or ``None``."""
    live = os.path.realpath(env)
    if os.path.isdir(live) and env_lock_held(live):
        return "uv (it holds the env's lock)"
    tools = running_tools(project)
    return ", ".join(tools) if tools else None


def wait_turn(project: str, env: str, cancel: threading.Event,
              waiting: Callable[[Optional[str]], None],
              timeout: float = TURN_TIMEOUT) -> None:
    """Return once no tool works on *project* (or after *timeout*, or when cancelled);
    ``waiting(what)`` hears what it waits for, then ``waiting(None)``."""
    deadline = time.monotonic() + timeout
    told: Optional[str] = None
    try:
        while not cancel.is_set() and time.monotonic() < deadline:
            what = busy(project, env)
            if what is None:
                return
            if what != told:
                waiting(what)
                told = what
            cancel.wait(POLL)
    finally:
        if told is not None:
            waiting(None)
