"""What shells see: the generation file (shells look again when it changes), the activation
of each project's env, and the hooks' snippets and aliases in the ready folder."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Optional

from venvd.daemon import aliases, projects
from venvd.daemon.paths import Paths
from venvd.shell import news, ready

#: Activations remembered (one per project and lock state; a few hundred bytes each).
ACTIVATIONS_KEPT = 2048
#: A snippet ``keep_ready`` found or wrote is taken as still there for this long: during a
#: burst of prompts, the files are not looked at again for each (a snippet removed behind
#: the daemon's back only sends the hooks to the client meanwhile).
KEPT_SECONDS = 5.0


class View:
    def __init__(self, paths: Paths, is_trusted: Callable[[str], bool],
                 is_watched: Callable[[str], bool]) -> None:
        self.paths = paths
        self._is_trusted = is_trusted
        self._is_watched = is_watched
        self._bump_lock = threading.Lock()
        self._generation = 0
        self._asked = 0  # the last bump every shell must ask the daemon about
        self._cache_lock = threading.Lock()
        self._activations: dict[tuple[str, str], dict[str, Any]] = {}
        self._ready_lock = threading.Lock()  # a deny that rewrites the aliases is never undone
        self._aliased: set[str] = set()  # projects whose aliases may activate (keep_ready)
        # (project, alias, what was kept) -> when: see KEPT_SECONDS; emptied by every change
        # to the ready folder other than keep_ready's own
        self._kept: dict[tuple[str, Optional[str], str], float] = {}
        # aliases a past run left: their projects are not watched yet
        for folder in aliases.of(paths.ready, None):
            aliases.forget(paths.ready, folder)

    def bump(self, ask: bool = True) -> None:
        """Tell every shell to look again at its next prompt (called from many threads).

        The file holds the last bump that needs the export client, then this one. A sync's
        outcome needs none (``ask=False``): its snippets and news file are written first,
        so the hooks take them with builtins (see venvd.shell.news)."""
        gen = self.paths.generation
        with self._bump_lock:
            self._generation = max(self._generation + 1, time.time_ns())
            if ask:
                self._asked = self._generation
            tmp = gen.with_name(f".generation.{os.getpid()}")
            tmp.write_text(f"{self._asked} {self._generation}\n")
            os.replace(tmp, gen)

    def news_id(self) -> int:
        """An id for a news item: from the generation counter, so below the next bump."""
        with self._bump_lock:
            self._generation = max(self._generation + 1, time.time_ns())
            return self._generation

    def publish_news(self, items: list[news.Item]) -> None:
        news.write(str(self.paths.runtime), items)

    def activation(self, project: str, env: str) -> Optional[dict[str, Any]]:
        """``projects.activation`` of a usable env, or ``None``; remembered per lock state
        (``.venv`` links to a state that never changes once built)."""
        if not projects.env_is_usable(env):
            return None
        try:
            key: Optional[tuple[str, str]] = (project, os.readlink(env))
        except OSError:  # not a link of ours (made by hand): read it each time
            key = None
        with self._cache_lock:
            cached = self._activations.get(key) if key else None
        if cached is None:
            cached = projects.activation(project, env)
            if key:
                with self._cache_lock:
                    if len(self._activations) >= ACTIVATIONS_KEPT:
                        self._activations.pop(next(iter(self._activations)))
                    self._activations[key] = cached
        return dict(cached)

    def keep_ready(self, project: str, exports: Optional[dict[str, Any]],
                   replace: bool = False, alias: Optional[str] = None) -> None:
        """The hooks' snippet for *project*: written when missing (or *replace*, and then
        its aliases too); and *alias*'s, a folder inside it the hooks would look in."""
        kind = "none" if exports is None else "set" if exports else "empty"
        now = time.monotonic()
        with self._ready_lock:
            if not replace and now - self._kept.get((project, alias, kind), -1e9) < KEPT_SECONDS:
                return  # looked at (and written if needed) moments ago
            if replace or len(self._kept) >= ACTIVATIONS_KEPT:
                self._kept.clear()
            self._keep_ready(project, exports, replace, alias)
            self._kept[(project, alias, kind)] = now

    def _keep_ready(self, project: str, exports: Optional[dict[str, Any]], replace: bool,
                    alias: Optional[str]) -> None:
        if exports and not self._is_trusted(project):
            exports = None  # never an activation of a project not allowed (any more)
        if aliases.stands_for(self.paths.ready, project) is not None:
            aliases.forget(self.paths.ready, project)  # it was an alias: now its own
            replace = True
        if exports == {}:
            ready.remove(self.paths.ready, project)
        elif replace or not self._has_snippet(project):
            ready.write(self.paths.ready, project, exports)
        if alias is not None and (
                aliases.stands_for(self.paths.ready, alias) != project
                or not self._has_snippet(alias)):
            if exports:  # "stay inactive" is safe unwatched: only activations expire
                self._aliased.add(project)
            aliases.write(self.paths.ready, alias, project)
        if replace:
            self._rewrite_aliases(project)

    def _has_snippet(self, folder: str) -> bool:
        """Whether *folder* has its snippets (written together: the first syntax's tells)."""
        return ready.snippet_path(self.paths.ready, folder, ready.SUFFIXES[0]).exists()

    def refresh_aliases(self, project: str) -> None:
        """*project*'s files changed (e.g. a workspace's members): its aliases follow."""
        with self._ready_lock:
            self._kept.clear()
            self._rewrite_aliases(project)

    def forget(self, project: str) -> None:
        """Remove *project*'s snippet and aliases (they may say "stay inactive")."""
        with self._ready_lock:
            self._kept.clear()
            ready.remove(self.paths.ready, project)
            for folder in aliases.of(self.paths.ready, project):
                aliases.forget(self.paths.ready, folder)

    def forget_unwatched_aliases(self) -> None:
        """Aliases only live while their project is watched (see ``venvd.daemon.aliases``);
        watching one project may have stopped watching another."""
        with self._ready_lock:
            self._kept.clear()
            for project in [p for p in self._aliased if not self._is_watched(p)]:
                self._aliased.discard(project)
                for folder in aliases.of(self.paths.ready, project):
                    aliases.forget(self.paths.ready, folder)

    def _rewrite_aliases(self, project: str) -> None:
        """Rewrite *project*'s aliases after its snippet changed; forget those that no
        longer belong to it."""
        for folder in aliases.of(self.paths.ready, project):
            inner = projects.innermost(folder)
            if inner == folder and projects.real(projects.owner(folder)) == project:
                aliases.write(self.paths.ready, folder, project)
            else:
                aliases.forget(self.paths.ready, folder)
