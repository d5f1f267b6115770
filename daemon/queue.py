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
        self._cancels: dict[str, threading.Event] = {}  # the running syncs' own cancels
        self._gate = threading.Lock()  # held by ``hold``: no sync starts meanwhile
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

    def cancel_project(self, project: str) -> bool:
        """Cancel *project*'s running sync, and the one more asked for (e.g. it is no longer
        allowed); whether one was running. A queued one still starts: its runner looks."""
        with self._lock:
            self._again.discard(project)
            cancel = self._cancels.get(project)
        if cancel is None:
            return False
        cancel.set()
        return True

    @contextmanager
    def hold(self) -> Iterator[dict[str, str]]:
        """The queued and running syncs, none starting until the block ends (``venvd prune``
        must not delete the env a first sync is about to build: its project has no row)."""
        with self._gate:
            yield self.busy()

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
            cancel = _Either(self.cancel)
            with self._gate, self._lock:
                self._state[project] = "syncing"
                self._sofar[project] = []
                self._cancels[project] = cancel
            try:
                self._runner(project, lambda line: self._tell(project, line), cancel)
            except Exception:
                log.exception("the sync of %s failed outside its own record", project)
            finally:
                with self._lock:
                    again = project in self._again and not cancel.is_set()
                    self._again.discard(project)
                    self._cancels.pop(project, None)
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


class _Either(threading.Event):
    """One sync's cancel: set on its own (its project is no longer allowed) or when the
    daemon cancels every sync (*parent*). Waits poll it (see ``turns``)."""

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self._parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self._parent.is_set()
