"""Spare clones: after a sync, the live lock state is cloned once more, in the background, so
that the next lockfile edit starts from a clone already made (issue 14).

Cloning an env costs a link per file (about 25 ms for 11 packages and their pip, 90 ms for 200
packages here), and uv's first command in a new env folder asks its interpreter about itself
(about 40 ms; uv keeps the answer in its cache, per path). Both are paid while nobody waits:
a spare is a complete clone, named for good (a state keeps the folder it was built in, since
its scripts and ``pyvenv.cfg`` name it), and uv has already looked at it. The next sync that
needs a new state takes it and lets the engine apply the difference, as it would to a clone
made then.

A spare has no completion mark, so nothing takes it for a lock state; pruning leaves alone a
folder named ``spare-*`` that is not complete (one being made, or waiting). There is at most one
per project: a new one replaces the one before.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from venvd.daemon import clone, drift, projects, pythons, turns
from venvd.daemon.errors import VenvdError
from venvd.daemon.plans import Plan
from venvd.daemon.states import SPARE, env_store, is_complete, is_spare

log = logging.getLogger("venvd.sync")

#: How long a spare waits for uv to let go of the env it clones (then none is made).
LOCK_WAIT = 2.0
#: In a spare: the state it was cloned from (its folder name), for the log.
ORIGIN = ".venvd-spare"


class Spares:
    """Makes and hands out the spare clones; one short-lived thread per project store."""

    def __init__(self, uv: str) -> None:
        self.uv = uv
        self._lock = threading.Lock()
        self._making: dict[Path, threading.Thread] = {}
        #: A state to clone once the spare being made is done (the live one changed since).
        self._next: dict[Path, Path] = {}
        self._stopping = threading.Event()

    def after_sync(self, plan: Plan, envs: Path) -> None:
        """The next new lock state's start, cloned now while nobody waits: for an engine
        whose states start as hard-linked clones, of the live state."""
        if plan.engine.creates_env:
            return
        live = Path(projects.env_path(str(plan.project)))
        try:
            if plan.engine.clone_mode(plan.project, plan.config) != clone.LINKS \
                    or not live.is_symlink() or not is_complete(live.resolve()):
                return
        except VenvdError:  # the files changed meanwhile: the sync that follows looks again
            return
        self.prepare(env_store(envs, plan.project), live.resolve())

    def prepare(self, store: Path, source: Path) -> None:
        """Make a spare clone of *source* (a complete state in *store*) in the background,
        replacing the project's spare that is waiting (nothing when it is of *source*)."""
        with self._lock:
            if store in self._making:  # another sync's: this one follows it
                self._next[store] = source
                return
            thread = threading.Thread(target=self._make, args=(store, source),
                                      name="venvd-spare", daemon=True)
            self._making[store] = thread
            thread.start()

    def take(self, store: Path, interpreter: pythons.Interpreter) -> Optional[tuple[Path, str]]:
        """The project's spare for a new state of *interpreter*, and the state it was cloned
        from (waiting for one being made: it is further along than a clone started now);
        ``None`` when there is none."""
        self._wait(store)
        for folder in _spares(store):
            if clone.same_interpreter(folder, interpreter):
                try:
                    origin = (folder / ORIGIN).read_text()
                    (folder / ORIGIN).unlink()  # taken: a state being built from now on
                except OSError:
                    continue
                return folder, origin
        return None

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._making.values())
        for thread in threads:
            thread.join()

    def _wait(self, store: Path) -> None:
        with self._lock:
            thread = self._making.get(store)
        if thread is not None:
            thread.join()

    def _make(self, store: Path, source: Optional[Path]) -> None:
        while source is not None:
            try:
                self._make_one(store, source)
            except Exception:  # a bug must not leave the store marked as being worked on
                log.exception("making a spare clone of %s failed", source)
            with self._lock:
                source = self._next.pop(store, None)
                if source is None:
                    self._making.pop(store, None)

    def _make_one(self, store: Path, source: Path) -> None:
        try:
            # the syncs of a project run one at a time, and take waits for this: every spare
            # here is waiting, or left by a daemon that stopped while making it
            found = _spares(store)
            if any(_origin(f) == source.name for f in found):
                return
            for old in found:
                shutil.rmtree(old, ignore_errors=True)
            target = store / f"{SPARE}{time.time_ns():x}"
            if not self._clone(source, target):
                shutil.rmtree(target, ignore_errors=True)
                return
            self._warm(target)
            (target / ORIGIN).write_text(source.name)
        except OSError as exc:  # the store removed meanwhile (prune, forget)
            log.info("no spare clone in %s: %s", store, exc)

    def _clone(self, source: Path, target: Path) -> bool:
        """Clone *source* while nothing changes it: uv (``uv add`` in the shell, right after
        the sync) waits on the env's lock meanwhile, and a change by anything else (pip)
        shows in its packages' metadata folders, then the clone is dropped."""
        with turns.env_lock(str(source), self._stopping, LOCK_WAIT) as locked:
            if not locked:
                log.info("no spare clone of %s: uv kept it locked", source)
                return False
            before = drift.stamp(source)
            try:
                clone.clone(source, target)
            except OSError as exc:
                log.info("no spare clone of %s: %s", source, exc)
                return False
            if drift.stamp(source) != before:
                log.info("no spare clone of %s: it changed while it was cloned", source)
                return False
        return True

    def _warm(self, env: Path) -> None:
        """Let uv look at the spare's interpreter now (it keeps the answer for that path)."""
        try:
            subprocess.run([self.uv, "pip", "list", "--quiet", "--python",
                            str(env / "bin" / "python")], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                           check=False, env=dict(os.environ))
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("uv could not look at %s: %s", env, exc)


def _origin(spare: Path) -> Optional[str]:
    try:
        return (spare / ORIGIN).read_text()
    except OSError:
        return None


def _spares(store: Path) -> list[Path]:
    try:
        return sorted(f for f in store.iterdir() if f.is_dir() and is_spare(f))
    except OSError:
        return []
