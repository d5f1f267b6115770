"""Deciding when a project syncs, running the sync and recording how it went."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import psutil

from venvd.daemon import describe, plans, projects, sync, turns
from venvd.daemon.config import UserConfig
from venvd.daemon.engines.base import Cancelled
from venvd.daemon.errors import CommandFailed, VenvdError
from venvd.daemon.kernels import Kernels
from venvd.daemon.outcomes import Outcomes, failed_plan, name
from venvd.daemon.paths import Paths
from venvd.daemon.queue import SyncQueue
from venvd.daemon.shells import ShellInfo, ShellRegistry, plan_key
from venvd.daemon.spares import Spares
from venvd.daemon.store import Store
from venvd.daemon.syncstate import SyncState
from venvd.daemon.view import View

log = logging.getLogger("venvd")

#: How long the commands of a cancelled sync get to end before they are killed.
CHILDREN_GRACE = 5.0


class Syncer:
    """Owns the sync queue; its runner records every outcome (ok, failed, cancelled)."""

    def __init__(self, paths: Paths, uv: str, config: UserConfig, store: Store,
                 shells: ShellRegistry, view: View,
                 track: Callable[[str, Optional[plans.Plan]], None],
                 is_trusted: Callable[[str], bool]) -> None:
        self.paths = paths
        self.uv = uv
        self.config = config
        self.store = store
        self.shells = shells
        self._is_trusted = is_trusted
        self.state = SyncState()
        self.queue = SyncQueue(self.run, config.parallel_syncs)
        self.outcomes = Outcomes(store, self.state, shells, view, self.queue, track,
                                 is_trusted)
        self.kernels = Kernels(config.jupyter, is_trusted)
        self.spares = Spares(uv)

    def ensure_synced(self, project: str, shell: Optional[ShellInfo] = None,
                      planned_only: bool = False) -> None:
        """Queue a sync when the env is missing, broken or behind its inputs. Without a
        *shell* (an allow, a change, the check after a start), a project that needs none gets
        its Jupyter kernel as its config says now (``jupyter`` turned on or off).

        *planned_only* (the thread that answers prompts): only with the plan made before,
        if the files are unchanged; planning afresh can start an interpreter to ask its
        version, which is the keeper's to do."""
        if self.queue.state(project) is not None:
            return
        if planned_only:
            plan = plans.known_plan(Path(project))
        else:
            plan = self._plan_or_tell(project, shell)
        if plan is None:
            return
        if not self.needs_sync(project, plan):
            if shell is None:
                self.kernels.refresh(project, plan)
            if not planned_only:
                self.outcomes.back_in_step(project, plan)
            return
        if shell is not None and not projects.env_is_usable(projects.env_path(project)):
            self.shells.tell(shell, f"creating the environment for {name(project)} "
                                    f"(Python {plan.interpreter.version_str}) in the background")
        self.queue.request(project)

    def follow(self, project: str) -> None:
        """A watched file of *project* changed: during its sync, one more follows (what the
        running one read may be old); else as ``ensure_synced``, but a plan that fails."""
        if self.queue.state(project) == "syncing" or describe.plan_problem(project):
            # a plan that fails is a sync that fails: recorded, and said in the shells there
            self.queue.request(project)
        else:
            self.ensure_synced(project)

    def cancel(self, project: str) -> None:
        """*project* is no longer allowed: its running sync stops now (its commands are
        ended, a build backend that prints nothing too) and is recorded cancelled."""
        if self.queue.cancel_project(project):
            end_commands_in(project)

    def needs_sync(self, project: str, plan: plans.Plan) -> bool:
        """Whether *plan* is neither in place nor known to fail or to wait (no side effect)."""
        if self.state.failed(project) == plan.fingerprint:
            return False
        if self.state.waiting_on(project) == plan.fingerprint:
            return False  # nothing to do until the lockfile changes
        record = self.store.project(project) or {}
        usable = projects.env_is_usable(projects.env_path(project))
        return not (record.get("fingerprint") == plan.fingerprint and usable)

    def _plan_or_tell(self, project: str, shell: Optional[ShellInfo]) -> Optional[plans.Plan]:
        try:
            return plans.cached_plan(Path(project))
        except VenvdError as exc:
            if shell is not None:  # said at its next prompt (the keeper bumps for it)
                self.shells.tell_once(shell, plan_key(project, str(exc)), f"{name(project)}: {exc}")
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
        if cancel.is_set() or not self._is_trusted(project):
            return  # the daemon is stopping, or the project was denied: nothing was touched
        started = time.time()
        plan: Optional[plans.Plan] = None
        try:
            plan = plans.make_plan(Path(project))
            if not asked and (self._in_step(project, plan)
                              or self.state.failed(project) == plan.fingerprint):
                # a second event of a change already followed, or of one whose sync just
                # failed (the same files would fail the same way): nothing new to say
                return
            outcome = (sync.adopt(plan, self.paths.envs, self.uv, progress, cancel)
                       or sync.run(plan, self.paths.envs, self.uv, progress, cancel,
                                   self.spares))
        except sync.Superseded:
            self.queue.request(project)  # one more sync, of what the files say now
        except Cancelled:
            self.outcomes.cancelled(project, started)
        except CommandFailed as exc:
            if cancel.is_set():  # killed by the cancel: not the command's own failure
                self.outcomes.cancelled(project, started, exc.output)
                return
            stale = plan.engine.stale_lock if plan else None
            if plan is not None and stale is not None and stale.search(exc.output):
                self.outcomes.lock_is_stale(project, plan)
                return
            self.outcomes.failed(project, started, exc.summary, exc.output, plan)
        except VenvdError as exc:
            if plan is None and not asked and self.state.failed(project) == failed_plan(exc):
                return  # the plan fails as it did: nothing new to say
            self.outcomes.failed(project, started, str(exc), str(exc), plan)
        except Exception as exc:  # a bug must not kill the worker; it is recorded and logged
            log.exception("sync of %s crashed", project)
            self.outcomes.failed(project, started, f"internal error: {exc!r}", repr(exc), plan)
        else:
            self.outcomes.done(project, plan, outcome, started)
            self.kernels.refresh(project, plan)  # before the sync is over (status says so)
            with contextlib.suppress(OSError):  # a state left over goes at the next sync
                sync.tidy(plan, self.paths.envs, self.config.keep_states)
            self.spares.after_sync(plan, self.paths.envs)

    def _waiting_for(self, project: str, what: Optional[str],
                     progress: Callable[[str], None]) -> None:
        self.state.set_turn(project, what)
        if what is not None:
            progress(f"venvd: waiting for {what} to finish")

    def _in_step(self, project: str, plan: plans.Plan) -> bool:
        record = self.store.project(project) or {}
        return record.get("fingerprint") == plan.fingerprint and sync.up_to_date(plan)


def end_commands_in(project: str) -> None:
    """Terminate the commands a sync of *project* runs (this process's children working in
    it, and theirs); those still there after ``CHILDREN_GRACE`` are killed, by a thread of
    its own (a deny does not wait for them)."""
    found: list[psutil.Process] = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            cwd = child.cwd()
            if cwd == project or cwd.startswith(project.rstrip("/") + "/"):
                found += [child, *child.children(recursive=True)]
    if found:
        end_processes(found)


def end_processes(found: list[psutil.Process], wait: bool = False) -> None:
    """SIGTERM *found*, then SIGKILL those left after ``CHILDREN_GRACE`` (in the background
    unless *wait*)."""
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.terminate()

    def reap() -> None:
        _gone, alive = psutil.wait_procs(found, timeout=CHILDREN_GRACE)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    if wait:
        reap()
    else:
        threading.Thread(target=reap, name="venvd-end-commands", daemon=True).start()
