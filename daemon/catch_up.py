"""Which projects a daemon looks at again when it starts: files may have changed while no
daemon watched them (a ``git pull`` while it was stopped), and the hooks' fast path answers
from snippets without asking it, so it would not hear of them otherwise."""

from __future__ import annotations

import os
import time
from pathlib import Path

from venvd.daemon.store import Store
from venvd.shell import ready

#: A project visited this recently is looked at again after a start.
RECENT_SECONDS = 7 * 24 * 3600.0


def projects(ready_dir: Path, store: Store, limit: int) -> tuple[list[str], list[str]]:
    """The *limit* projects used last (visited lately, or with a snippet: a shell entered
    them), the most recent last (the watcher keeps the last watched); and the others that
    have a snippet, which must go (they will not be watched: the fast path must not answer
    for them). Bounded work at a start, however many projects the runtime folder knows."""
    when = dict(store.recent(time.time() - RECENT_SECONDS, limit))
    snippets = with_snippets(ready_dir)
    for project, written in snippets.items():
        when[project] = max(when.get(project, 0.0), written)
    ordered = sorted(when, key=lambda p: when[p])
    cut = max(0, len(ordered) - limit)
    return ordered[cut:], [p for p in ordered[:cut] if p in snippets]


def with_snippets(ready_dir: Path) -> dict[str, float]:
    """The projects the hooks have a snippet for (``ready.snippet_path`` mirrors the
    project's path under *ready_dir*), and when it was written."""
    name = f"{ready.READY_NAME}.{ready.SUFFIXES[0]}"
    root = str(ready_dir)
    found = {}
    for folder, _dirs, files in os.walk(root):
        if name in files and folder != root:
            try:
                found[folder[len(root):]] = os.stat(os.path.join(folder, name)).st_mtime
            except OSError:
                continue
    return found
