"""The keeper thread: the work a prompt starts but does not wait for (recording the visit,
watching the project, checking whether its env is behind), done in a lull between prompts."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Generic, Optional, TypeVar

log = logging.getLogger("venvd")

#: The keeper's work waits for this long a pause between prompts...
KEEPER_LULL = 0.02
#: ...but never longer than this.
KEEPER_MAX_WAIT = 1.0

T = TypeVar("T")


class Keeper(Generic[T]):
    """Runs ``work(project, extra)`` once per project visited (visits of a project already
    waiting are merged), on a thread of its own."""

    def __init__(self, work: Callable[[str, T], None]) -> None:
        self._work = work
        self._visits: queue.SimpleQueue[Optional[tuple[str, T]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._visiting: set[str] = set()
        self._last_prompt = 0.0
        self._thread = threading.Thread(target=self._run, name="venvd-visits", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def visit(self, project: str, extra: T) -> None:
        with self._lock:
            self._last_prompt = time.monotonic()
            if project in self._visiting:
                return
            self._visiting.add(project)
        self._visits.put((project, extra))

    def pending(self) -> int:
        with self._lock:
            return len(self._visiting)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the visit in hand, drop the rest and join the thread."""
        self._visits.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._visits.get()
            if item is None:
                return
            self._wait_for_lull()
            project, extra = item
            with self._lock:
                self._visiting.discard(project)
            try:
                self._work(project, extra)
            except Exception:  # the keeper must outlive one odd project
                log.exception("while recording a visit to %s", project)

    def _wait_for_lull(self) -> None:
        """Prompts first: during a burst of them, this work waits (a little) for a lull."""
        deadline = time.monotonic() + KEEPER_MAX_WAIT
        while True:
            with self._lock:
                lull = time.monotonic() - self._last_prompt
            if lull >= KEEPER_LULL or time.monotonic() >= deadline:
                return
            time.sleep(KEEPER_LULL - lull)
