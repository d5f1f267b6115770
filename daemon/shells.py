"""The shells that ask for exports and the news waiting for them. One lock guards both: an
inbox is only ever changed under it, so no message is lost between two threads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import psutil

from venvd.daemon.display import printable

#: How often shells that exited are forgotten.
SHELL_CHECK_SECONDS = 30.0
#: News kept per project, for shells that come in later.
NEWS_KEPT = 5


@dataclass
class ShellInfo:
    """A shell that asked for exports: where it is and what it has yet to be told."""

    project: Optional[str] = None
    told: set[str] = field(default_factory=set)
    inbox: list[str] = field(default_factory=list)
    last: float = 0.0  # when it last asked (monotonic): news older than that is not for it


#: Receives every project's recent news, (id, project, text), each time some is added.
Publish = Callable[[list[tuple[int, str, str]]], None]


class ShellRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[int, ShellInfo] = {}
        # project -> (when, id, message); the id (ns) is what the hooks compare with the
        # generation (see venvd.shell.news)
        self._news: dict[str, list[tuple[float, int, str]]] = {}
        self._checked = time.monotonic()
        self._publish: Optional[Publish] = None
        self._next_id: Callable[[], int] = time.time_ns

    def publish_with(self, next_id: Callable[[], int], publish: Publish) -> None:
        """Number the news with *next_id* (the view's generation counter) and hand it all
        to *publish* whenever some is added."""
        self._next_id, self._publish = next_id, publish

    def shell(self, pid: Any) -> ShellInfo:
        """The shell with process id *pid* (0 for a client that gave none)."""
        key = pid if isinstance(pid, int) and pid > 0 else 0
        with self._lock:
            self._forget_dead()
            return self._shells.setdefault(key, ShellInfo())

    def enter(self, shell: ShellInfo, project: Optional[str], seen: int = 0) -> None:
        """*shell* asks from *project*: what happened there since it last asked is for it
        (it may have come in by the hook's fast path, which the daemon does not see), but
        for the news up to *seen*, which its hook has taken from the news file."""
        with self._lock:
            shell.project = project
            for when, ident, text in self._news.get(project or "", ()):
                if when > shell.last and ident > seen:
                    shell.inbox.append(text)
            shell.last = time.monotonic()

    def tell(self, shell: ShellInfo, text: str) -> None:
        with self._lock:
            shell.inbox.append(printable(text))

    def tell_once(self, shell: ShellInfo, key: str, text: str) -> None:
        with self._lock:
            if key not in shell.told:
                shell.told.add(key)
                shell.inbox.append(printable(text))

    def tell_project(self, project: str, text: str) -> None:
        """News for the shells in *project*, given at their next prompt (the generation
        bump that follows makes every shell ask)."""
        with self._lock:
            news = self._news.setdefault(project, [])
            # names and tool output in news are shown on a terminal: never raw controls
            news.append((time.monotonic(), self._next_id(), printable(text)))
            del news[:-NEWS_KEPT]
            if self._publish is not None:  # under the lock: the files follow in order
                self._publish([(ident, p, text) for p, items in self._news.items()
                               for _, ident, text in items])

    def take(self, shell: ShellInfo) -> list[str]:
        """*shell*'s messages, now given to it."""
        with self._lock:
            messages, shell.inbox = shell.inbox, []
        return messages

    def pending(self, shell: ShellInfo) -> int:
        with self._lock:
            return len(shell.inbox)

    def has_shell(self, project: str) -> bool:
        """Whether a shell (with a pid) was last in *project* (its watch is pinned)."""
        with self._lock:
            return any(s.project == project for pid, s in self._shells.items() if pid)

    def count(self) -> int:
        with self._lock:
            return len(self._shells)

    def _forget_dead(self) -> None:
        now = time.monotonic()
        if now - self._checked < SHELL_CHECK_SECONDS:
            return
        self._checked = now
        for pid in [p for p in self._shells if p and not psutil.pid_exists(p)]:
            del self._shells[pid]
