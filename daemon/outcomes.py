"""Recording how a sync went (ok, failed, cancelled, waiting for a lock) and telling the
shells; an edit made during the sync leads to one more."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Optional

from venvd.daemon import gitexclude, plans, projects, states, sync
from venvd.daemon.display import counts
from venvd.daemon.errors import VenvdError
from venvd.daemon.queue import SyncQueue
from venvd.daemon.shells import ShellRegistry, plan_key
from venvd.daemon.store import Store, SyncRecord
from venvd.daemon.syncstate import SyncState
from venvd.daemon.view import View

log = logging.getLogger("venvd")


class Outcomes:
    def __init__(self, store: Store, state: SyncState, shells: ShellRegistry, view: View,
                 queue: SyncQueue, track: Callable[[str, Optional[plans.Plan]], None],
                 is_trusted: Callable[[str], bool]) -> None:
        self.store = store
        self.state = state
        self.shells = shells
        self.view = view
        self.queue = queue
        self._track = track
        self._is_trusted = is_trusted

    def done(self, project: str, plan: plans.Plan, outcome: sync.Outcome,
             started: float) -> None:
        """Record the env *plan* made (the fingerprint of the files as the sync read them),
        and activate it, unless the project is no longer allowed."""
        self.state.clear(project)
        before = (self.store.project(project) or {}).get("env_target")
        target = str(os.readlink(projects.env_path(project)))
        self.store.record_env(
            project, fingerprint=plan.fingerprint, engine=plan.engine.name,
            lockfile=plan.lockfile, python=plan.interpreter.path,
            python_version=plan.interpreter.version_str, env_target=target,
        )
        self.store.add_sync(SyncRecord(
            project, plan.engine.name, started, outcome.seconds, "ok", outcome.added,
            outcome.removed, outcome.changed, None, "\n".join(outcome.output)))
        self._follow_up(project, plan)
        if not self._is_trusted(project):  # denied (or its config edited) at the last moment
            self.view.keep_ready(project, None, replace=True)
            self.view.bump()
            return
        env = projects.env_path(project)
        self.view.keep_ready(project, self.view.activation(project, env) or {}, replace=True)
        if outcome.moved_aside:
            self.shells.tell_project(project, f"{name(project)}: "
                                              f"{states.aside_note(outcome.moved_aside)}")
        if not outcome.adopted:  # the tool that synced it has said so already
            self.shells.tell_project(project, done_news(project, outcome, before == target))
        self.view.bump(ask=False)  # the snippet and the news file say it all
        # after the shells heard: neither changes what they activate (the sync is not over
        # until these are done: `venvd status` says "syncing" until then)
        self._track(project, plan)
        gitexclude.keep_out_of_git(Path(project),
                                   (projects.ENV_NAME, *states.moved_aside(Path(project))))

    def _follow_up(self, project: str, plan: plans.Plan) -> None:
        """Files edited during the sync (its plan was made from them before): one more sync.
        The plan is not cached with the files as they are now: they may be newer than it."""
        try:
            now: Optional[plans.Plan] = plans.cached_plan(Path(project))
        except VenvdError:
            now = None
        if now is None or now.fingerprint != plan.fingerprint:
            self.queue.request(project)

    def back_in_step(self, project: str, plan: plans.Plan) -> None:
        """*plan* is in place and needs no sync: if a sync of other files failed last (a
        broken requirement, reverted), recorded as a sync with nothing to do, and told, so
        that the failure is not the last word (in the shells, and in ``venvd status``)."""
        failed = self.state.failed(project)
        if failed is None or failed == plan.fingerprint:
            return
        self.state.clear(project)
        said = f"{name(project)} is back in step with {plan.lockfile} (nothing to install)"
        self.store.add_sync(SyncRecord(project, plan.engine.name, time.time(), 0.0, "ok",
                                       output=f"venvd: {said}"))
        self.shells.tell_project(project, said)
        self.view.bump(ask=False)

    def lock_is_stale(self, project: str, plan: plans.Plan) -> None:
        """The manifest is newer than its lockfile: not a failure (the user edits, then
        locks); the last good env stays, and the lockfile's next change syncs."""
        hint = plan.engine.lock_hint
        log.info("%s: %s", project, hint)
        self.state.set_waiting(project, plan.fingerprint, hint)
        self.view.bump()

    def failed(self, project: str, started: float, error: str, output: str,
               plan: Optional[plans.Plan]) -> None:
        # the fingerprint of what was tried: files that changed since (uv writes uv.lock
        # after pyproject.toml) are a new state, to be tried in turn
        self.state.set_failed(project, plan.fingerprint if plan is not None else failed_plan(error))
        self.record(project, started, "failed", error, output)
        # no plan: the error is why the env cannot be made, which a visit tells once
        self.shells.tell_project(project, f"sync failed for {name(project)}: {error} "
                                          "(see 'venvd logs')",
                                 plan_key(project, error) if plan is None else None)
        self.view.bump(ask=False)

    def cancelled(self, project: str, started: float, output: str = "") -> None:
        """Record a cancelled sync (after *output*, what its commands printed), saying why
        when the project is no longer allowed."""
        said = "sync cancelled"
        if not self._is_trusted(project):
            said += f": {name(project)} is no longer allowed"
        self.record(project, started, "cancelled", said, f"{output}\n{said}" if output else said)

    def record(self, project: str, started: float, result: str, error: str,
               output: str) -> None:
        self.store.add_sync(SyncRecord(project, None, started, time.time() - started,
                                       result, error=error, output=output))


def name(project: str) -> str:
    return os.path.basename(project) or project


def done_news(project: str, outcome: sync.Outcome, same_state: bool = False) -> str:
    """The line the shells get about a finished sync: built, switched to a lock state built
    before, or (*same_state*) found in place, with the package changes it made."""
    changes = counts(outcome.added, outcome.removed, outcome.changed)
    if outcome.switched_only and same_state:
        return f"{name(project)} is up to date with {outcome_lockfile(outcome)} (nothing to do)"
    if outcome.switched_only:
        return f"switched {name(project)} to a lock state built before ({changes})"
    return f"synced {name(project)} in {outcome.seconds:.1f} s ({changes})"


def outcome_lockfile(outcome: sync.Outcome) -> str:
    return outcome.plan.lockfile if outcome.plan is not None else "its lockfile"


def failed_plan(error: object) -> str:
    """What ``SyncState.failed`` holds for a sync that failed before it had a plan: no
    fingerprint, but why (the same files, unchanged, fail the same way)."""
    return f"plan: {error}"
