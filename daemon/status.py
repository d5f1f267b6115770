"""What ``venvd status`` shows: read from the store, the queue and the files, changing
nothing (asking for the status of a project never queues a sync)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

from venvd.daemon import describe, drift, kernels, plans, projects, pythons, states
from venvd.daemon.protocol import Message
from venvd.daemon.store import SyncRecord
from venvd.daemon.syncing import Syncer
from venvd.daemon.watch import Watcher


class StatusBuilder:
    def __init__(self, syncer: Syncer, watcher: Watcher,
                 is_trusted: Callable[[str], bool]) -> None:
        self.syncer = syncer
        self.store = syncer.store
        self.watcher = watcher
        self.is_trusted = is_trusted

    def project(self, project: str) -> Message:
        trusted = self.is_trusted(project)
        record = self.store.project(project) or {}
        last = self.store.syncs(project, 1)
        env = projects.env_path(project)
        usable = projects.env_is_usable(env)
        found = describe.parts(Path(project))
        plan, error = found.plan, found.problem
        drifted = drift.drift(Path(env).resolve()) if usable and trusted else []
        state = self._state(project, trusted, usable, plan, record, last)
        if state == "synced" and drifted:
            state = "drifted"
        turn = self.syncer.state.turn(project)
        if state == "syncing" and turn is not None:
            # what the tool has installed so far is not drift: it is the next lock state
            state, error, drifted = "waiting", f"waiting for {turn} to finish", []
        elif state == "waiting":
            error = (self.syncer.state.waiting(project) or ("", error))[1]
        return {
            "project": project, "trusted": trusted,
            "python": {"wanted": found.wanted, "source": found.source,
                       "actual": record.get("python") if usable else None,
                       "version": record.get("python_version") if usable else None,
                       "resolved": _interpreter(found.interpreter)},
            "env": env, "env_exists": usable, "lockfile": found.lockfile,
            "engine": found.engine, "state": state,
            "last_sync": record_json(last[0] if last else None),
            "drift": drifted, "problem": error,
            "notes": [states.aside_note(name) for name in states.moved_aside(Path(project))],
            "watch": self.watcher.mode() if self.watcher.is_watched(project) else None,
            "exports": projects.activation(project, env) if usable and trusted else {},
            "kernel": kernels.kernel_of(project),
        }

    def _state(self, project: str, trusted: bool, usable: bool, plan: Optional[plans.Plan],
               record: dict[str, Any], last: list[SyncRecord]) -> str:
        if not trusted:
            return "untrusted"
        queued = self.syncer.queue.state(project)
        if queued is not None:
            return queued
        fingerprint = plan.fingerprint if plan is not None else None
        if fingerprint is None or (last and last[0].result == "failed"
                                   and self.syncer.state.failed(project) == fingerprint):
            return "failed"
        if self.syncer.state.waiting_on(project) == fingerprint:
            return "waiting"
        if not usable:
            return "missing"
        if record.get("fingerprint") == fingerprint:
            return "synced"
        # its files changed while nobody watched: the next visit or change syncs it
        return "outdated"

    def daemon(self, started: float, shells: int, visits_pending: int, socket: str) -> Message:
        me = psutil.Process()
        with me.oneshot():
            memory = me.memory_info().rss
            threads = me.num_threads()
            cpu = me.cpu_times()
        watcher = self.watcher
        return {
            "ok": True, "pid": os.getpid(), "uptime": time.time() - started,
            "rss": memory, "threads": threads, "cpu_seconds": cpu.user + cpu.system,
            "socket": socket, "projects": len(self.store.projects()),
            "shells": shells, "queue": self.syncer.queue.busy(),
            "visits_pending": visits_pending,
            "watch": {"mode": watcher.mode(), "projects": len(watcher.watched()),
                      "folders": len(watcher.folders()), "problem": watcher.problem},
        }


def record_json(record: Optional[SyncRecord]) -> Optional[Message]:
    if record is None:
        return None
    return {
        "result": record.result, "engine": record.engine,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.started)),
        "seconds": None if record.seconds is None else round(record.seconds, 3),
        "added": record.added, "removed": record.removed, "changed": record.changed,
        "error": record.error,
    }


def _interpreter(found: Optional[pythons.Interpreter]) -> Optional[Message]:
    """The interpreter a sync would use now (``None`` when none is found)."""
    return None if found is None else {"path": found.path, "version": found.version_str}
