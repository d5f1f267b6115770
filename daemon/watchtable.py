"""Which folders are watched, for which projects: each project's root and the folders its
requirement files live in, the least recently used projects beyond capacity dropped."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from watchdog.observers.api import ObservedWatch


class WatchTable:
    """Plain data: the ``Watcher`` holds its lock around every call, and makes the observer
    match what a call returns (the watches to unschedule, the folders to schedule)."""

    def __init__(self, capacity: int, pinned: Callable[[str], bool],
                 forgotten: Callable[[str], None]) -> None:
        self.capacity = capacity  # watchdog runs a thread per watched folder: keep them few
        self.pinned = pinned  # projects never dropped (a live shell is there)
        self.forgotten = forgotten  # told of each project no longer watched
        # folder -> [its watch (None while being scheduled), the projects it is watched for]
        self.folders: dict[str, list[Any]] = {}
        self.names: dict[str, set[str]] = {}  # project -> extra file names to care about

    def want(self, project: str, wanted: set[str], names: Iterable[str]
             ) -> tuple[list[ObservedWatch], list[str]]:
        """*project* is watched in *wanted* (and nowhere else), caring about *names* too."""
        self.names.pop(project, None)
        self.names[project] = set(names)  # most recently used last
        drops = self.evict()
        for folder, (_, owners) in list(self.folders.items()):
            if project in owners and folder not in wanted:
                drops += self.drop(folder, project)
        adds = []
        for folder in wanted:
            if folder in self.folders:
                self.folders[folder][1].add(project)
            elif os.path.isdir(folder):
                self.folders[folder] = [None, {project}]
                adds.append(folder)
        return drops, adds

    def evict(self) -> list[ObservedWatch]:
        """Stop watching the least recently used projects beyond capacity; they are checked
        again when next visited (the daemon compares their files' fingerprint then)."""
        over = len(self.names) - self.capacity
        drops: list[ObservedWatch] = []
        for project in list(self.names):
            if over <= 0:
                break
            if not self.pinned(project):
                drops += self.forget(project)
                over -= 1
        return drops

    def forget(self, project: str) -> list[ObservedWatch]:
        self.names.pop(project, None)
        self.forgotten(project)
        drops: list[ObservedWatch] = []
        for folder, (_, owners) in list(self.folders.items()):
            if project in owners:
                drops += self.drop(folder, project)
        return drops

    def drop(self, folder: str, project: str) -> list[ObservedWatch]:
        """Forget *project* as an owner of *folder*; the watch to unschedule, if it was the
        last owner."""
        handle, owners = self.folders[folder]
        owners.discard(project)
        if owners:
            return []
        del self.folders[folder]
        return [handle] if handle is not None else []
