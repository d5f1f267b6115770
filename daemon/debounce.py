"""One timer thread serves every project's debounce, so threads stay bounded: a burst of
events (a ``git checkout`` that rewrites ten files) makes one call to ``on_change``."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("venvd.watch")


#: The quiet time after a file was closed by its writer, or renamed into place: the file is
#: whole, so only the other files of the same burst (a ``git checkout`` writes them
#: microseconds apart) are waited for, not the whole debounce.
SETTLE = 0.005


class Debouncer:
    """Calls ``on_change(project)`` *delay* seconds after the last ``poke`` of a burst
    (``SETTLE`` seconds when that poke saw a file written whole)."""

    def __init__(self, on_change: Callable[[str], None], delay: float) -> None:
        self.on_change = on_change
        self.delay = delay
        self._lock = threading.Condition()
        self._due: list[tuple[float, str]] = []
        self._pending: dict[str, float] = {}
        self._stopped = False
        self._timer = threading.Thread(target=self._fire, name="venvd-debounce", daemon=True)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def poke(self, project: str, whole: bool = False) -> None:
        """An event of *project*'s; *whole*: its file was closed after writing or renamed
        into place (a write still under way shows as a modification)."""
        with self._lock:
            due = time.monotonic() + (min(self.delay, SETTLE) if whole else self.delay)
            self._pending[project] = due
            heapq.heappush(self._due, (due, project))
            self._lock.notify_all()

    def forget(self, project: str) -> None:
        """Drop *project*'s pending call (it is no longer watched)."""
        with self._lock:
            self._pending.pop(project, None)

    def _fire(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and not self._ready():
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._lock.wait(timeout)
                if self._stopped:
                    return
                due, project = heapq.heappop(self._due)
                if self._pending.get(project) != due:
                    continue  # superseded by a later event of the same burst
                del self._pending[project]
            try:
                self.on_change(project)
            except Exception:
                log.exception("handling a change in %s failed", project)

    def _ready(self) -> bool:
        return bool(self._due) and self._due[0][0] <= time.monotonic()
