"""Planning and running one sync: which interpreter, which engine, which inputs, and an env
built beside the live one and switched in atomically only when it is complete.

``<project>/.venv`` is a symlink to one folder per lock state under the user data dir, so a
switch is one ``rename`` and a lock state built before (the other branch) is switched back to
without reinstalling.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from venvd.daemon import clone, drift, projects, seedstage, turns
from venvd.daemon.config import read_toml
from venvd.daemon.engines import pyproject
from venvd.daemon.engines.base import Job, Progress
from venvd.daemon.errors import CommandFailed, VenvdError
from venvd.daemon.plans import Plan, fingerprint
from venvd.daemon.seeding import has_pip, seed
from venvd.daemon.spares import Spares
from venvd.daemon.states import (
    COMPLETE,
    KEEP_STATES,
    env_store,
    find_built,
    is_complete,
    prune_states,
    switch,
)

#: The clone mode of a build whose target is already a clone (a spare, see ``spares``).
READY = "ready"


class Superseded(VenvdError):
    """The project changed while it was being synced: a sync of the new state follows."""


@dataclass
class Outcome:
    plan: Optional[Plan]
    result: str
    seconds: float
    added: int = 0
    removed: int = 0
    changed: int = 0
    error: Optional[str] = None
    output: list[str] = field(default_factory=list)
    switched_only: bool = False
    #: The live env was already what the lock asks for (the project's tool synced it).
    adopted: bool = False
    #: Where a ``.venv`` folder venvd did not make was moved to (relative to the project).
    moved_aside: Optional[str] = None


def run(plan: Plan, envs: Path, uv: str, progress: Progress,
        cancel: threading.Event, spares: Optional[Spares] = None) -> Outcome:
    """Bring the project's env to *plan*: switch to a built lock state, or build and switch.

    A built state that drifted (packages changed by hand) is not reused: a fresh one is built
    beside it, switched in, and the drifted one removed. The states beyond those kept are
    left for ``tidy``, once the sync is reported.
    """
    start = time.monotonic()
    store = env_store(envs, plan.project)
    built = find_built(store, plan.fingerprint)
    if built is not None and not drift.drift(built):
        if not plan.engine.creates_env and not has_pip(built):
            # a state built before envs had their own pip
            seed(Job(plan.project, built, plan.interpreter.path, plan.config, uv, plan.inputs,
                     progress, cancel), envs)
        before = _live_packages(plan)
        aside = switch(plan.project, built)
        counts = drift.changes(before, drift.recorded(built))  # what the switch changed
        return Outcome(plan, "ok", time.monotonic() - start, counts.added, counts.removed,
                       counts.changed, switched_only=True, moved_aside=aside)
    target = store / plan.fingerprint[:16]
    live = Path(projects.env_path(str(plan.project)))
    # a fresh name also when .venv points at the name (its folder deleted by hand): built
    # there, the env would be live, and half-installed, from its first file on
    if built is not None or target.exists() or (
            live.is_symlink() and os.readlink(live) == str(target)):
        target = store / f"{plan.fingerprint[:16]}-{time.time_ns():x}"
    store.mkdir(parents=True, exist_ok=True)
    mode = "never" if plan.engine.creates_env else plan.engine.clone_mode(plan.project,
                                                                           plan.config)
    source: Optional[Path] = None
    spare = spares.take(store, plan.interpreter) if spares and mode == clone.LINKS else None
    if spare is not None:  # a clone made beforehand (its origin's name, for the output)
        target, source, mode = spare[0], store / spare[1], READY
    elif mode != "never":
        source = clone.nearest(store, live, plan.interpreter)
    job = build(plan, target, uv, progress, cancel, offline=False, envs=envs, source=source,
                mode=mode)
    now = drift.record(target, base=source)
    (target / COMPLETE).write_text(plan.fingerprint + "\n")
    before = _live_packages(plan)
    aside = switch(plan.project, target)
    if built is not None:
        shutil.rmtree(built, ignore_errors=True)
    counts = drift.changes(before, now)  # what was recorded: nothing changed it since
    return Outcome(plan, "ok", time.monotonic() - start, counts.added, counts.removed,
                   counts.changed, output=job.output, moved_aside=aside)


def _live_packages(plan: Plan) -> dict[str, str]:
    """What the live env has installed (nothing when there is none)."""
    live = projects.env_path(str(plan.project))
    return drift.current(Path(live).resolve()) if projects.env_is_usable(live) else {}


def tidy(plan: Plan, envs: Path, keep: int = KEEP_STATES) -> None:
    """Remove the project's lock states beyond the *keep* most recently used (never the live
    one). Removing an env takes as long as cloning it: they are moved aside, out of every
    project's store, and removed by a thread of their own, so the sync ends without waiting."""
    live = Path(projects.env_path(str(plan.project)))
    current = live.resolve() if live.is_symlink() else None
    trash = envs / TRASH
    if prune_states(env_store(envs, plan.project), keep=keep, current=current, trash=trash):
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True},
                         name="venvd-tidy", daemon=True).start()


#: Where pruned lock states wait to be removed (a leftover goes with the next one).
TRASH = ".trash"


def up_to_date(plan: Plan) -> bool:
    """Whether the live env is the complete state of *plan*'s lock, as synced (no drift)."""
    live = Path(projects.env_path(str(plan.project)))
    if not live.is_symlink() or not projects.env_is_usable(str(live)):
        return False
    target = live.resolve()
    try:
        done = (target / COMPLETE).read_text().strip() == plan.fingerprint
    except OSError:
        return False
    return done and not drift.drift(target)


def adopt(plan: Plan, envs: Path, uv: str, progress: Progress,
          cancel: threading.Event) -> Optional[Outcome]:
    """When the project's own tool already brought the live env to *plan*'s lock (``uv add``
    and ``uv sync`` install into ``.venv`` themselves), make that env this lock's state
    instead of building the same thing again beside it; ``None`` when it is not so.

    The state keeps its folder: ``find_built`` finds it by the fingerprint it now records.
    """
    live = Path(projects.env_path(str(plan.project)))
    if not live.is_symlink() or not projects.env_is_usable(str(live)):
        return None
    start = time.monotonic()
    target = live.resolve()
    if target.parent != env_store(envs, plan.project) or not is_complete(target):
        return None  # not one of venvd's states
    if not clone.same_interpreter(target, plan.interpreter):
        return None
    job = Job(plan.project, target, plan.interpreter.path, plan.config, uv, plan.inputs,
              progress, cancel)
    matched = plan.engine.matches(job)
    if matched is False and _moved_on(plan, str(live)):
        # the tool (uv remove after uv add) was at work while its env was checked
        raise Superseded("the project changed while its env was checked")
    if not matched:  # None: cannot tell
        return None
    checked = drift.installed(target)
    with turns.env_lock(str(target), cancel) as locked:
        # the tool may have started again since the check: then its own change of the files
        # makes another sync, which looks again
        if not locked or drift.installed(target) != checked or fingerprint(
                plan.project, plan.engine.name, plan.interpreter, plan.inputs,
                plan.config) != plan.fingerprint:
            raise Superseded("the project changed while its env was checked")
        before = drift.recorded(target)
        now = drift.record(target)
        (target / COMPLETE).write_text(plan.fingerprint + "\n")
    counts = drift.changes(before, now)
    job.output.append(f"venvd: .venv already matches {plan.lockfile}; "
                      "adopted it as this lock state (nothing to install)")
    return Outcome(plan, "ok", time.monotonic() - start, counts.added, counts.removed,
                   counts.changed, output=job.output, adopted=True)


def _moved_on(plan: Plan, live: str) -> bool:
    """Whether the project's files changed since *plan*, or its tool is at work on it."""
    changed = fingerprint(plan.project, plan.engine.name, plan.interpreter, plan.inputs,
                          plan.config) != plan.fingerprint
    return changed or turns.busy(str(plan.project), live) is not None


#: What uv prints when it cannot reach an index (then the cache may still have everything).
_NETWORK = re.compile(r"(?i)(failed to fetch|error sending request|dns error|connection refused|"
                      r"network is unreachable|timed out|could not connect|tcp connect)")


def make_venv(job: Job, plan: Plan) -> None:
    job.run([job.uv, "venv", "--quiet", "--python", plan.interpreter.path,
             f"--prompt={projects.safe_prompt(plan.project.name)}", str(job.env)])


def _prompt_is_safe(project: Path) -> bool:
    """Whether the prompt uv gives an env it creates for *project* (its ``[project]`` name)
    is one ``safe_prompt`` keeps as it is (uv writes it unescaped into ``bin/activate``)."""
    table = read_toml(project / pyproject.MANIFEST).get("project")
    name = table.get("name") if isinstance(table, dict) else None
    return isinstance(name, str) and bool(name) and projects.safe_prompt(name) == name


def build(plan: Plan, target: Path, uv: str, progress: Progress, cancel: threading.Event,
          offline: bool, envs: Optional[Path] = None, source: Optional[Path] = None,
          mode: str = "links") -> Job:
    """Create the env in *target* and install into it; on any failure nothing is left.

    With a *source* (a complete state of the same interpreter), *target* starts as its clone
    (*mode*: ``links`` or ``copies``) and the engine's exact sync applies only the difference;
    a clone that cannot be made falls back to a fresh env. When the index cannot be reached,
    the build is tried once more offline, from uv's cache.
    """
    environ = dict(os.environ, UV_OFFLINE="1") if offline else dict(os.environ)
    job = Job(plan.project, target, plan.interpreter.path, plan.config, uv, plan.inputs,
              progress, cancel, environ, origin=source)
    seeded = False
    try:
        if plan.engine.creates_env:
            plan.engine.resolve(job)
        elif plan.engine.makes_venv and source is None and _prompt_is_safe(plan.project):
            # the tool creates the env as it would by hand (one process less), while pip is
            # linked from the interpreter's seed folder into a staging folder; then moved in
            with ThreadPoolExecutor(max_workers=1) as meanwhile:
                staged = meanwhile.submit(seedstage.stage, job, plan.interpreter.version_str,
                                          envs)
                plan.engine.resolve(job)
                plan.engine.install(job)
            seedstage.seed_staged(job, envs, staged.result())
            return job
        else:
            # the engine's resolution needs only the interpreter: it runs meanwhile
            with ThreadPoolExecutor(max_workers=1) as meanwhile:
                resolved = meanwhile.submit(plan.engine.resolve, job)
                try:
                    seeded = _from(job, source, mode)
                    if not seeded:
                        make_venv(job, plan)
                        seeded = seed(job, envs)
                    plan.engine.install_early(job)
                finally:
                    resolved.result()
        plan.engine.install(job)
        if seeded and not has_pip(target):
            seed(job, envs)  # the engine's exact sync removed it (its tool ignores ``seed = true``)
    except CommandFailed as exc:
        shutil.rmtree(target, ignore_errors=True)
        if offline or not _NETWORK.search(exc.output) or os.environ.get("UV_OFFLINE"):
            raise
        progress("venvd: the package index is unreachable; trying again offline from the cache")
        try:
            retry = build(plan, target, uv, progress, cancel, offline=True, envs=envs,
                          source=None if mode == READY else source, mode=mode)
        except CommandFailed:
            raise exc from None  # what could not be reached, not what the cache lacks
        retry.output[:0] = [*job.output, "venvd: index unreachable; retried offline"]
        return retry
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)
    return job


def _from(job: Job, source: Optional[Path], mode: str) -> bool:
    """Start *job.env* as a clone of *source*; whether it did (else nothing is left of it)."""
    if source is None:
        return False
    if mode == READY:
        job.output.append(f"venvd: started from a clone of the lock state {source.name} "
                          "made beforehand (its files hard-linked)")
        return True
    try:
        clone.clone(source, job.env, mode)
    except OSError as exc:
        shutil.rmtree(job.env, ignore_errors=True)
        job.output.append(f"venvd: could not start from {source.name} ({exc}); "
                          "building a fresh env")
        return False
    how = "its files hard-linked" if mode == "links" else "its files copied"
    job.output.append(f"venvd: started from the lock state {source.name} ({how})")
    return True
