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


def projects(ready_dir: Path, store: Store, limit: int) -> list[str]:
    """The projects with a snippet (a shell entered them) and the *limit* most recently
    visited ones, each once, the most recent last (the watcher keeps the last watched)."""
    recent = store.recent(time.time() - RECENT_SECONDS, limit)
    found = dict.fromkeys(reversed(recent))
    for project in with_snippets(ready_dir):
        found.setdefault(project, None)
        found[project] = found.pop(project)  # after the visited ones: a shell may be there
    return list(found)


def with_snippets(ready_dir: Path) -> list[str]:
    """The projects the hooks have a snippet for (``ready.snippet_path`` mirrors the
    project's path under *ready_dir*)."""
    name = f"{ready.READY_NAME}.{ready.SUFFIXES[0]}"
    root = str(ready_dir)
    found = []
    for folder, _dirs, files in os.walk(root):
        if name in files and folder != root:
            found.append(folder[len(root):])
    return sorted(found)
