"""What the daemon knows about each project's syncs besides the queue, under one lock: it
is read by prompts and status, and written by the sync workers and requests."""

from __future__ import annotations

import threading
from typing import Optional


class SyncState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}  # project -> fingerprint whose sync failed
        # project -> (fingerprint, why): its lockfile is older than its manifest; the next
        # change syncs (the user runs 'uv lock'), meanwhile the last good env stays
        self._waiting: dict[str, tuple[str, str]] = {}
        self._turn: dict[str, str] = {}  # project -> the tool its sync waits for
        self._asked: set[str] = set()  # projects whose sync the user asked for
        #: project -> what went wrong outside a sync's own record (its bookkeeping)
        self._problems: dict[str, list[str]] = {}

    def clear(self, project: str) -> None:
        """Forget a failure or a wait: the user asked again, or a sync succeeded."""
        with self._lock:
            self._failed.pop(project, None)
            self._waiting.pop(project, None)

    def failed(self, project: str) -> Optional[str]:
        with self._lock:
            return self._failed.get(project)

    def set_failed(self, project: str, fingerprint: str) -> None:
        with self._lock:
            self._failed[project] = fingerprint

    def waiting(self, project: str) -> Optional[tuple[str, str]]:
        with self._lock:
            return self._waiting.get(project)

    def waiting_on(self, project: str) -> Optional[str]:
        """The fingerprint whose sync waits for the lockfile, if any."""
        waiting = self.waiting(project)
        return waiting[0] if waiting else None

    def set_waiting(self, project: str, fingerprint: str, why: str) -> None:
        with self._lock:
            self._failed.pop(project, None)
            self._waiting[project] = (fingerprint, why)

    def turn(self, project: str) -> Optional[str]:
        with self._lock:
            return self._turn.get(project)

    def set_turn(self, project: str, what: Optional[str]) -> None:
        with self._lock:
            if what is None:
                self._turn.pop(project, None)
            else:
                self._turn[project] = what

    def ask(self, project: str) -> None:
        with self._lock:
            self._asked.add(project)

    def take_asked(self, project: str) -> bool:
        with self._lock:
            asked = project in self._asked
            self._asked.discard(project)
            return asked

    def add_problem(self, project: str, text: str) -> None:
        with self._lock:
            found = self._problems.setdefault(project, [])
            found.append(text)
            del found[:-5]

    def problems(self, project: str) -> list[str]:
        with self._lock:
            return list(self._problems.get(project, ()))
