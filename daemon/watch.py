"""Watching projects: each tracked project's root, non-recursively, plus the folders its
requirement files live in; never whole trees.

Events are filtered to the files that matter (``.python-version``, manifests, lockfiles,
requirement files) and debounced per project, so a ``git checkout`` that rewrites ten files
makes one call to ``on_change``. Where inotify cannot be used (the watch limit is reached, a
filesystem without it), a polling observer takes over and :attr:`Watcher.polling` says so.
One timer thread serves every project's debounce (``debounce``), so threads stay bounded;
``watchtable`` keeps which folder is watched for which project.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Optional

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from venvd.daemon.debounce import Debouncer
from venvd.daemon.projects import ENV_NAME, MARKERS
from venvd.daemon.watchtable import WatchTable

log = logging.getLogger("venvd.watch")

#: Names in a project root whose change means the env may have to follow.
WATCHED_NAMES = frozenset({*MARKERS, ".python-version", ".venvd.toml", "pyproject.toml"})


def interesting(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a change to the file *name* (a base name) can change the wanted env."""
    if name in WATCHED_NAMES or name in extra:
        return True
    return name.startswith("requirements") and name.endswith((".txt", ".in"))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, folder: str) -> None:
        self.watcher = watcher
        self.folder = folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for path in paths:
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path and os.path.dirname(path) == self.folder:
                name = os.path.basename(path)
                if name == ENV_NAME:
                    if env_gone(event, path):
                        self.watcher.sawenv_gone(self.folder)
                else:
                    whole = event.event_type == "closed" or (
                        event.event_type == "moved" and path != os.fsdecode(event.src_path))
                    self.watcher.saw(self.folder, name, whole)


def env_gone(event: FileSystemEvent, path: str) -> bool:
    """``.venv`` removed or moved away (``rm -rf .venv``): the env must be rebuilt. Its other
    events are left alone: the daemon's own switch renames a new link onto the name, and a
    venv someone is creating there by hand must not be raced."""
    return event.event_type == "deleted" or (event.event_type == "moved"
                                             and path == os.fsdecode(event.src_path))


class Watcher:
    """Watches folders for projects and calls ``on_change(project)`` once per burst."""

    def __init__(self, on_change: Callable[[str], None], debounce: float,
                 force_polling: bool = False, capacity: int = 64,
                 pinned: Callable[[str], bool] = lambda project: False) -> None:
        self.polling = force_polling
        self.problem: Optional[str] = None
        self._observer: BaseObserver = PollingObserver() if force_polling else Observer()
        self._lock = threading.Lock()
        self._ops = threading.Lock()
        self._debouncer = Debouncer(on_change, debounce)
        self._table = WatchTable(capacity, pinned, self._debouncer.forget)
        self._folders = self._table.folders  # the same dicts, read under ``_lock``
        self._names = self._table.names

    def start(self) -> None:
        self._observer.start()
        self._debouncer.start()

    def stop(self) -> None:
        self._debouncer.stop()
        with self._ops:
            self._observer.stop()
            self._observer.join(timeout=5)

    # what is watched. Lock order: ``_ops`` (observer calls) before ``_lock`` (state) before
    # the debouncer's. No watchdog call is made while ``_lock`` is held: watchdog's dispatch
    # thread holds its own lock while it hands us events, and our handler takes ``_lock``.
    def watch(self, project: str, folders: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        """Watch *project*'s root and *folders* (those holding its requirement files)."""
        wanted = {project, *(os.path.realpath(f) for f in folders)}
        with self._ops:
            with self._lock:
                drops, adds = self._table.want(project, wanted, names)
            self._apply(drops, adds)

    def unwatch(self, project: str) -> None:
        with self._ops:
            with self._lock:
                drops = self._table.forget(project)
            self._apply(drops, [])

    def _apply(self, drops: list[ObservedWatch], adds: list[str]) -> None:
        """Make the observer match (called with ``_ops`` held, ``_lock`` not held)."""
        for handle in drops:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(handle)
        for folder in adds:
            new = self._schedule(folder)
            with self._lock:
                entry = self._folders.get(folder)
                if entry is not None and entry[0] is None:
                    entry[0], new = new, None
            if new is not None:  # dropped meanwhile
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(new)

    def _schedule(self, folder: str) -> Optional[ObservedWatch]:
        try:
            return self._observer.schedule(_Handler(self, folder), folder, recursive=False)
        except OSError as exc:
            if self.polling:
                log.warning("cannot watch %s: %s", folder, exc)
                return None
            self._fall_back_to_polling(exc)
            try:
                return self._observer.schedule(_Handler(self, folder), folder, recursive=False)
            except OSError as again:
                log.warning("cannot watch %s: %s", folder, again)
                return None

    def _fall_back_to_polling(self, exc: OSError) -> None:
        """inotify failed (e.g. the watch limit): move every watch to a polling observer."""
        self.problem = (f"inotify unavailable ({exc.strerror or exc}); polling for changes "
                        "instead (raise fs.inotify.max_user_watches to fix)")
        log.warning("%s", self.problem)
        old = self._observer
        self.polling = True
        self._observer = PollingObserver()
        with self._lock:
            folders = [f for f, entry in self._folders.items() if entry[0] is not None]
        for folder in folders:
            handle = self._observer.schedule(_Handler(self, folder), folder, recursive=False)
            with self._lock:
                if folder in self._folders:
                    self._folders[folder][0] = handle
        self._observer.start()
        old.stop()

    def is_watched(self, project: str) -> bool:
        with self._lock:
            return project in self._names

    def worth_a_watch(self, shell_there: bool) -> bool:
        """Whether a visited project is to be watched. With every watch taken, a new one
        stops another: only for a project a shell is still in (one that has moved on since,
        as a script cd-ing through folders or a burst of shells does, would cost a watch and
        an eviction for nothing; its next prompt there asks the daemon, which checks the
        files then)."""
        with self._lock:
            return shell_there or len(self._names) < self._table.capacity

    def mode(self) -> str:
        return "polling" if self.polling else "inotify"

    def watched(self) -> list[str]:
        with self._lock:
            return sorted(self._names)

    def folders(self) -> list[str]:
        with self._lock:
            return sorted(self._folders)

    # events and debounce
    def saw(self, folder: str, name: str, whole: bool = False) -> None:
        """*name* in *folder* changed; *whole*: it was closed after writing or renamed into
        place (the writer is done with it: the debounce is cut short)."""
        with self._lock:
            entry = self._folders.get(folder)
            if entry is None:
                return
            for project in entry[1]:
                extra = self._names.get(project, set())
                if folder == project:
                    relevant = interesting(name, extra)
                else:  # a folder holding requirement files (and maybe their includes)
                    relevant = name in extra or name.endswith((".txt", ".in"))
                if relevant:
                    self._debouncer.poke(project, whole)

    def sawenv_gone(self, folder: str) -> None:
        """The env of the project at *folder* went away: handled like a change to its files."""
        with self._lock:
            entry = self._folders.get(folder)
            projects = [p for p in entry[1] if p == folder] if entry else []
            for project in projects:
                self._debouncer.poke(project)
