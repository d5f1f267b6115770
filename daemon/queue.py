"""The sync queue: one sync per project at a time, changes during a sync coalesce into one
more, and a global limit bounds parallel syncs."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Optional

log = logging.getLogger("venvd")

#: Runs one sync of a project, reporting progress lines; should not raise (what it raises
#: is logged: a pool would keep it in a future nobody reads).
Runner = Callable[[str, Callable[[str], None], threading.Event], None]


#: Lines of a running sync a listener that comes late still gets.
SOFAR_KEPT = 1000


class SyncQueue:
    def __init__(self, runner: Runner, workers: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="venvd-sync")
        self._lock = threading.Lock()
        self._state: dict[str, str] = {}  # project -> "queued" | "syncing"
        self._again: set[str] = set()
        self._listeners: dict[str, list[queue.Queue[Optional[str]]]] = {}
        self._sofar: dict[str, list[str]] = {}  # the running sync's lines, for late listeners
        self.cancel = threading.Event()

    def request(self, project: str) -> None:
        """Queue a sync of *project*; during a running one, ask for exactly one more."""
        with self._lock:
            current = self._state.get(project)
            if current == "syncing":
                self._again.add(project)
                return
            if current == "queued" or self.cancel.is_set():
                return
            self._state[project] = "queued"
        self._pool.submit(self._work, project)

    def state(self, project: str) -> Optional[str]:
        with self._lock:
            return self._state.get(project)

    def busy(self) -> dict[str, str]:
        with self._lock:
            return dict(self._state)

    @contextmanager
    def listen(self, project: str) -> Iterator[queue.Queue[Optional[str]]]:
        """Progress lines of *project*'s running sync (from its start) or of the next one;
        ``None`` marks the end of each."""
        inbox: queue.Queue[Optional[str]] = queue.Queue()
        with self._lock:
            for line in self._sofar.get(project, ()):
                inbox.put(line)
            self._listeners.setdefault(project, []).append(inbox)
        try:
            yield inbox
        finally:
            with self._lock:
                self._listeners[project].remove(inbox)

    def _work(self, project: str) -> None:
        while True:
            with self._lock:
                self._state[project] = "syncing"
                self._sofar[project] = []
            try:
                self._runner(project, lambda line: self._tell(project, line), self.cancel)
            except Exception:
                log.exception("the sync of %s failed outside its own record", project)
            finally:
                with self._lock:
                    again = project in self._again and not self.cancel.is_set()
                    self._again.discard(project)
                    if not again:
                        del self._state[project]
                    self._sofar.pop(project, None)
                    listeners = list(self._listeners.get(project, ()))
                for inbox in listeners:
                    inbox.put(None)
            if not again:
                return

    def _tell(self, project: str, line: str) -> None:
        with self._lock:
            sofar = self._sofar.get(project)
            if sofar is not None and len(sofar) < SOFAR_KEPT:
                sofar.append(line)
            listeners = list(self._listeners.get(project, ()))
        for inbox in listeners:
            inbox.put(line)

    def shutdown(self) -> None:
        """Cancel running syncs (they roll back) and wait for the workers to finish."""
        self.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
