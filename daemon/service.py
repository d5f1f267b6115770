"""The daemon: puts its parts together and answers requests through the op table.

Its parts, one job each: ``ops`` (one handler per op), ``shells`` (the shells and their
news), ``view`` (what shells see: generation, activations, snippets), ``keeper`` (work a
prompt starts but does not wait for), ``syncing`` (when to sync, and recording it),
``status`` (what ``venvd status`` shows, changing nothing)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import psutil

from venvd.daemon import catch_up, ops, plans, projects, trust
from venvd.daemon.config import UserConfig, load_user_config
from venvd.daemon.errors import VenvdError
from venvd.daemon.keeper import Keeper
from venvd.daemon.outcomes import name
from venvd.daemon.paths import Paths
from venvd.daemon.prompts import Prompts
from venvd.daemon.protocol import Message
from venvd.daemon.shells import ShellInfo, ShellRegistry
from venvd.daemon.status import StatusBuilder
from venvd.daemon.store import Store
from venvd.daemon.syncing import Syncer, end_processes
from venvd.daemon.view import View
from venvd.daemon.watch import Watcher

log = logging.getLogger("venvd")

#: A visit is written to the database at most this often per project.
TOUCH_SECONDS = 60.0


class TrustCache:
    """Trust, remembered while the project's config digest and folder are unchanged (allow
    and deny forget it), so a burst of prompts does not read the database for each. Keyed by
    content, never by mtime: an edit that keeps the mtime is still seen."""

    def __init__(self, store: Store, config: UserConfig) -> None:
        self._store = store
        self._config = config
        self._lock = threading.Lock()
        self._known: dict[str, tuple[object, bool]] = {}
        self._forgets = 0  # a decision made across a forget is not kept

    def is_trusted(self, project: str) -> bool:
        try:
            digest: Optional[str] = trust.config_digest(project)
        except VenvdError:  # a .venvd.toml venvd will not read: never trusted if allowed
            digest = None
        key = (digest, trust.identity(project))
        with self._lock:
            cached = self._known.get(project)
            forgets = self._forgets
        if cached is not None and cached[0] == key:
            return cached[1]
        record = self._store.trust(project)
        if record is None:
            decided = trust.under_roots(project, self._config.trusted_roots)
        else:
            decided = digest is not None and trust.judge(record, digest, key[1])
        with self._lock:
            if forgets == self._forgets:
                self._known[project] = (key, decided)
        return decided

    def forget(self, project: str) -> None:
        with self._lock:
            self._known.pop(project, None)
            self._forgets += 1


class Daemon:
    def __init__(self, paths: Paths, uv: str) -> None:
        self.paths = paths
        self.store = Store(paths.db)
        self.config = self._load_config()
        self.started = time.time()
        self.stop_requested = threading.Event()
        self.trust = TrustCache(self.store, self.config)
        self.shells = ShellRegistry()
        self.watcher = Watcher(self._changed, self.config.debounce_seconds,
                               force_polling=os.environ.get("VENVD_FORCE_POLLING") == "1",
                               capacity=self.config.max_watched, pinned=self.shells.has_shell)
        self.view = View(paths, self.trust.is_trusted, self.watcher.is_watched)
        self.shells.publish_with(self.view.news_id, self.view.publish_news)
        self.view.publish_news([])  # a past run's news is not this run's
        self.syncer = Syncer(paths, uv, self.config, self.store, self.shells, self.view,
                             self.track, self.trust.is_trusted)
        self.status = StatusBuilder(self.syncer, self.watcher, self.trust.is_trusted)
        self._touched: dict[str, float] = {}  # only the keeper thread uses it
        self.keeper: Keeper[Optional[ShellInfo]] = Keeper(self._keep_up_with)
        self.prompts = Prompts(self.shells, self.trust.is_trusted, self.view, self.watcher,
                               self.keeper, self._on_prompt)
        self.watcher.start()
        self.keeper.start()
        self._catch_up()
        self.view.bump()

    def _catch_up(self) -> None:
        """After a (re)start: the projects shells were in (their snippets) and those visited
        lately are looked at again, as files may have changed while no daemon watched. One
        not allowed (any more) loses its snippet now (the hooks' fast path reads snippets
        without asking: the next ``cd`` there asks the daemon); the others are watched and
        synced when behind, by the keeper."""
        again, dropped = catch_up.projects(self.paths.ready, self.store,
                                           self.config.max_watched)
        self.syncer.kernels.sweep()  # the config may have changed while no daemon ran
        for project in dropped:
            self.view.forget(project)
        for project in again:
            if os.path.isdir(project) and self.trust.is_trusted(project):
                self.keeper.visit(project, None)
            else:
                self.view.forget(project)

    def _load_config(self) -> UserConfig:
        try:
            return load_user_config(self.paths.config_file)
        except VenvdError as exc:
            log.error("%s; using defaults", exc)
            return UserConfig()

    def handle(self, request: Message, emit: Callable[[Message], None]) -> Message:
        """Answer *request* (checked by ``protocol.decode_request``) with its op's handler."""
        op = str(request["op"])
        handler = ops.HANDLERS.get(op)
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            return handler(self, request, emit)
        except VenvdError as exc:
            return {"ok": False, "error": str(exc)}
        except (TypeError, ValueError, KeyError) as exc:  # a request with odd field values
            log.warning("bad %s request: %r", op, exc)
            return {"ok": False, "error": f"bad request: {exc}"}

    def _on_prompt(self, project: str, shell: ShellInfo) -> None:
        """A prompt in *project*, which has no usable env: a sync, if the plan is known."""
        self.syncer.ensure_synced(project, shell, planned_only=True)

    def _keep_up_with(self, project: str, shell: Optional[ShellInfo]) -> None:
        """The keeper's work for a visit: record it, watch the project, sync if behind.
        Without a shell it is the check after a start (``_catch_up``): not a visit."""
        now = time.monotonic()
        if shell is not None and now - self._touched.get(project, -1e9) >= TOUCH_SECONDS:
            self._touched[project] = now
            self.store.touch_project(project)
        if not self.watcher.is_watched(project) and self.watcher.worth_a_watch(
                shell is None or shell.project == project):
            self.track(project)
        told = self.shells.pending(shell) if shell else 0
        self.syncer.ensure_synced(project, shell)
        if shell and self.shells.pending(shell) > told:  # news for a shell that may not ask
            self.view.bump()

    def track(self, project: str, plan: Optional[plans.Plan] = None) -> None:
        """Watch *project*'s root and the folders its requirement files live in.

        A project this stops watching (the watcher keeps ``max_watched``) loses its snippet:
        the hooks' fast path answers without asking the daemon, so it must only answer for
        projects whose changes the daemon sees; a shell that enters it again asks."""
        before = set(self.watcher.watched())
        try:
            plan = plan or plans.cached_plan(Path(project))
        except VenvdError:
            self.watcher.watch(project)
        else:
            files = [Path(project) / name for name in plan.inputs]
            folders = {str(f.parent) for f in files} - {project}
            self.watcher.watch(project, folders, {f.name for f in files})
        for gone in before - set(self.watcher.watched()):
            self.view.forget(gone)
        self.view.forget_unwatched_aliases()

    def _changed(self, project: str) -> None:
        """A watched file changed (debounced): follow it if the project is allowed."""
        log.info("change in %s", project)
        if self.trust.is_trusted(project):
            self.view.refresh_aliases(project)  # right even when the sync that follows fails
            self._repair_or_sync(project)
        else:  # e.g. an edited .venvd.toml revoked the trust: shells must look again
            self.syncer.cancel(project)
            self.view.keep_ready(project, None, replace=True)
            self.view.bump()

    def _repair_or_sync(self, project: str) -> None:
        """Follow a change; an env removed or broken underneath (``rm -rf .venv``) is rebuilt,
        and the shells there hear it at their next prompt (their hook drops the env at once,
        seeing its python gone, and takes it back when the rebuild bumps the generation)."""
        broken = not projects.env_is_usable(projects.env_path(project))
        queue = self.syncer.queue
        idle = queue.state(project) is None
        self.syncer.follow(project)
        if broken and idle and queue.state(project) is not None:
            self.shells.tell_project(project, f"the environment of {name(project)} is missing "
                                              "or broken; rebuilding it in the background")
            self.view.bump()

    def project_of(self, directory: str) -> str:
        """The project *directory* belongs to (see ``projects.owner``)."""
        root = projects.find_project(directory)
        if root is None:
            raise VenvdError(f"no project at or above {directory}")
        return projects.real(root)

    def cancel_syncs(self) -> None:
        """Tell the running syncs to stop, and end the commands they run: one that prints
        nothing (a build backend at work) would not see the cancel until it is done."""
        self.syncer.queue.cancel.set()
        _end_children()

    def close(self) -> None:
        """The daemon's half of the ordered shutdown (the server has stopped accepting and
        drained its requests): cancel the syncs and wait for them to record it, join the
        keeper and the watcher, then close the store no thread uses any more."""
        self.cancel_syncs()
        self.syncer.queue.shutdown()
        self.syncer.spares.close()
        self.keeper.stop()
        self.watcher.stop()
        self.store.close()


def _end_children() -> None:
    """Terminate this process's children (the syncs' commands and theirs), killing those
    still there after ``CHILDREN_GRACE``."""
    end_processes(psutil.Process().children(recursive=True), wait=True)
