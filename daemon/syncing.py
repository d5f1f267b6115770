"""Deciding when a project syncs, running the sync and recording how it went."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from venvd.daemon import projects, sync, turns
from venvd.daemon.config import UserConfig
from venvd.daemon.engines.base import Cancelled
from venvd.daemon.errors import CommandFailed, VenvdError, first_error_line
from venvd.daemon.paths import Paths
from venvd.daemon.queue import SyncQueue
from venvd.daemon.shells import ShellInfo, ShellRegistry
from venvd.daemon.store import Store, SyncRecord
from venvd.daemon.syncstate import SyncState
from venvd.daemon.view import View

log = logging.getLogger("venvd")


class Syncer:
    """Owns the sync queue; its runner records every outcome (ok, failed, cancelled)."""

    def __init__(self, paths: Paths, uv: str, config: UserConfig, store: Store,
                 shells: ShellRegistry, view: View,
                 track: Callable[[str, Optional[sync.Plan]], None]) -> None:
        self.paths = paths
        self.uv = uv
        self.config = config
        self.store = store
        self.shells = shells
        self.view = view
        self._track = track
        self.state = SyncState()
        self.queue = SyncQueue(self.run, config.parallel_syncs)

    def ensure_synced(self, project: str, shell: Optional[ShellInfo] = None) -> None:
        """Queue a sync when the env is missing, broken or behind its inputs."""
        if self.queue.state(project) is not None:
            return
        plan = self._plan_or_tell(project, shell)
        if plan is None or not self.needs_sync(project, plan):
            return
        if shell is not None and not projects.env_is_usable(projects.env_path(project)):
            self.shells.tell(shell, f"creating the environment for {name(project)} "
                                    f"(Python {plan.interpreter.version_str}) in the background")
        self.queue.request(project)

    def needs_sync(self, project: str, plan: sync.Plan) -> bool:
        """Whether *plan* is neither in place nor known to fail or to wait (no side effect)."""
        if self.state.failed(project) == plan.fingerprint:
            return False
        if self.state.waiting_on(project) == plan.fingerprint:
            return False  # nothing to do until the lockfile changes
        record = self.store.project(project) or {}
        usable = projects.env_is_usable(projects.env_path(project))
        return not (record.get("fingerprint") == plan.fingerprint and usable)

    def _plan_or_tell(self, project: str, shell: Optional[ShellInfo]) -> Optional[sync.Plan]:
        try:
            return sync.cached_plan(Path(project))
        except VenvdError as exc:
            if shell is not None:
                self.shells.tell_once(shell, f"plan:{project}:{exc}", f"{name(project)}: {exc}")
            return None

    def run(self, project: str, progress: Callable[[str], None],
            cancel: threading.Event) -> None:
        """The queue's runner: one sync of *project*, whatever happens recorded; a failure
        to record it (the state database gone) reaches the log and ``venvd logs``."""
        try:
            self._sync(project, progress, cancel)
        except Exception as exc:
            log.exception("recording the sync of %s failed", project)
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.state.add_problem(project, f"{when} recording a sync failed: {exc!r}")

    def _sync(self, project: str, progress: Callable[[str], None],
              cancel: threading.Event) -> None:
        asked = self.state.take_asked(project)
        # the project's own tool (uv add, poetry lock, ...) first: it may be halfway through
        # rewriting the manifest and lockfile, and installing into the env
        turns.wait_turn(project, projects.env_path(project), cancel,
                        lambda what: self._waiting_for(project, what, progress))
        if cancel.is_set():
            return  # the daemon is stopping: nothing was touched
        started = time.time()
        plan: Optional[sync.Plan] = None
        try:
            plan = sync.make_plan(Path(project))
            if not asked and self._in_step(project, plan):
                return  # a second event of a change already followed: nothing to say
            outcome = (sync.adopt(plan, self.paths.envs, self.uv, progress, cancel)
                       or sync.run(plan, self.paths.envs, self.uv, progress, cancel,
                                   self.config.keep_states))
        except sync.Superseded:
            self.queue.request(project)  # one more sync, of what the files say now
        except Cancelled as exc:
            self._record(project, started, "cancelled", str(exc), str(exc))
        except CommandFailed as exc:
            if cancel.is_set():  # killed by the shutdown: not the command's own failure
                self._record(project, started, "cancelled", "sync cancelled", exc.output)
                return
            stale = plan.engine.stale_lock if plan else None
            if plan is not None and stale is not None and stale.search(exc.output):
                self._lock_is_stale(project, plan)
                return
            self._failed(project, started, first_error_line(exc.output), exc.output, plan)
        except VenvdError as exc:
            self._failed(project, started, str(exc), str(exc), plan)
        except Exception as exc:  # a bug must not kill the worker; it is recorded and logged
            log.exception("sync of %s crashed", project)
            self._failed(project, started, f"internal error: {exc!r}", repr(exc), plan)
        else:
            self._done(project, plan, outcome, started)

    def _waiting_for(self, project: str, what: Optional[str],
                     progress: Callable[[str], None]) -> None:
        self.state.set_turn(project, what)
        if what is not None:
            progress(f"venvd: waiting for {what} to finish")

    def _in_step(self, project: str, plan: sync.Plan) -> bool:
        record = self.store.project(project) or {}
        return record.get("fingerprint") == plan.fingerprint and sync.up_to_date(plan)

    def _lock_is_stale(self, project: str, plan: sync.Plan) -> None:
        """The manifest is newer than its lockfile: not a failure (the user edits, then
        locks); the last good env stays, and the lockfile's next change syncs."""
        hint = plan.engine.lock_hint
        log.info("%s: %s", project, hint)
        self.state.set_waiting(project, plan.fingerprint, hint)
        self.view.bump()

    def _done(self, project: str, plan: sync.Plan, outcome: sync.Outcome,
              started: float) -> None:
        self.state.clear(project)
        self.store.record_env(
            project, fingerprint=plan.fingerprint, engine=plan.engine.name,
            lockfile=plan.lockfile, python=plan.interpreter.path,
            python_version=plan.interpreter.version_str,
            env_target=str(os.readlink(projects.env_path(project))),
        )
        self.store.add_sync(SyncRecord(
            project, plan.engine.name, started, outcome.seconds, "ok", outcome.added,
            outcome.removed, outcome.changed, None, "\n".join(outcome.output)))
        sync.remember_plan(plan)
        env = projects.env_path(project)
        self.view.keep_ready(project, self.view.activation(project, env) or {}, replace=True)
        if outcome.moved_aside:
            self.shells.tell_project(project, f"{name(project)}: "
                                              f"{sync.aside_note(outcome.moved_aside)}")
        if not outcome.adopted:  # the tool that synced it has said so already
            note = "switched" if outcome.switched_only else "synced"
            self.shells.tell_project(
                project, f"{note} {name(project)} in {outcome.seconds:.1f} s "
                         f"(+{outcome.added} \u2212{outcome.removed} ~{outcome.changed})")
        self.view.bump(ask=False)  # the snippet and the news file say it all
        # after the shells heard: neither changes what they activate (the sync is not over
        # until these are done: `venvd status` says "syncing" until then)
        self._track(project, plan)
        sync.keep_out_of_git(Path(project), (projects.ENV_NAME, *sync.moved_aside(Path(project))))

    def _failed(self, project: str, started: float, error: str, output: str,
                plan: Optional[sync.Plan]) -> None:
        # the fingerprint of what was tried: files that changed since (uv writes uv.lock
        # after pyproject.toml) are a new state, to be tried in turn
        self.state.set_failed(project, plan.fingerprint if plan is not None else "")
        self._record(project, started, "failed", error, output)
        self.shells.tell_project(project, f"sync failed for {name(project)}: {error} — "
                                          "venvd logs")
        self.view.bump(ask=False)

    def _record(self, project: str, started: float, result: str, error: str,
                output: str) -> None:
        self.store.add_sync(SyncRecord(project, None, started, time.time() - started,
                                       result, error=error, output=output))


def name(project: str) -> str:
    return os.path.basename(project) or project
