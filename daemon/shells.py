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
    pid: int = 0
    told: set[str] = field(default_factory=set)
    inbox: list[str] = field(default_factory=list)
    last: float = 0.0  # when it last asked (monotonic): news older than that is not for it


@dataclass
class News:
    """One item of a project's news: when it was posted (monotonic), its id (ns, see
    venvd.shell.news), its text, and the shells that heard it from the command they ran
    (``venvd sync --wait`` says how its sync went: their prompt does not say it again)."""

    when: float
    ident: int
    text: str
    heard: set[int] = field(default_factory=set)


#: Receives every project's recent news, (id, project, text, pids that heard it), each
#: time it changes.
Publish = Callable[[list[tuple[int, str, str, tuple[int, ...]]]], None]


class ShellRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[int, ShellInfo] = {}
        # project -> its recent news; the id (ns) is what the hooks compare with the
        # generation (see venvd.shell.news)
        self._news: dict[str, list[News]] = {}
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
            return self._shells.setdefault(key, ShellInfo(pid=key))

    def enter(self, shell: ShellInfo, project: Optional[str], seen: int = 0) -> None:
        """*shell* asks from *project*: what happened there since it last asked is for it
        (it may have come in by the hook's fast path, which the daemon does not see), but
        for the news up to *seen*, which its hook has taken from the news file."""
        with self._lock:
            shell.project = project
            for item in self._news.get(project or "", ()):
                if item.when > shell.last and item.ident > seen and shell.pid not in item.heard:
                    shell.inbox.append(item.text)
            shell.last = time.monotonic()

    def tell(self, shell: ShellInfo, text: str) -> None:
        with self._lock:
            shell.inbox.append(printable(text))

    def tell_once(self, shell: ShellInfo, key: str, text: str) -> bool:
        """Tell *shell* *text* unless it heard the one under *key*; whether it is told."""
        with self._lock:
            if key in shell.told:
                return False
            shell.told.add(key)
            shell.inbox.append(printable(text))
            return True

    def heard(self, pid: Any, key: str) -> None:
        """The shell *pid* heard what *key* stands for from a command it ran (``venvd deny``
        says the project is denied): its prompt does not say it again."""
        if isinstance(pid, int) and pid > 0:
            shell = self.shell(pid)
            with self._lock:
                shell.told.add(key)

    def tell_project(self, project: str, text: str, key: Optional[str] = None) -> None:
        """News for the shells in *project*, given at their next prompt (the generation
        bump that follows makes every shell ask). With *key* (see ``tell_once``), the shells
        told that already do not hear it again, nor the others later."""
        with self._lock:
            heard: set[int] = set()
            if key is not None:
                heard = {pid for pid, s in self._shells.items() if pid and key in s.told}
                for shell in self._shells.values():
                    if shell.project == project:
                        shell.told.add(key)
            news = self._news.setdefault(project, [])
            # names and tool output in news are shown on a terminal: never raw controls
            news.append(News(time.monotonic(), self._next_id(), printable(text), heard))
            del news[:-NEWS_KEPT]
            self._published()

    def heard_news(self, pid: Any, project: str, since: float) -> None:
        """The shell *pid* ran a command that told it how *project*'s sync went: the news
        posted since *since* (monotonic) is not for its prompt."""
        if not (isinstance(pid, int) and pid > 0):
            return
        with self._lock:
            items = [i for i in self._news.get(project, ()) if i.when >= since]
            for item in items:
                item.heard.add(pid)
            if items:
                self._published()

    def _published(self) -> None:
        """Hand every project's news to the files (under the lock: they follow in order)."""
        if self._publish is not None:
            self._publish([(i.ident, p, i.text, tuple(sorted(i.heard)))
                           for p, items in self._news.items() for i in items])

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


def untrusted_key(project: str) -> str:
    """What a shell is told once per project: that it is not allowed."""
    return f"untrusted:{project}"


def plan_key(project: str, problem: str) -> str:
    """What a shell is told once per project and problem: why its env cannot be made."""
    return f"plan:{project}:{problem}"
