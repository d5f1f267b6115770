"""The daemon's brain: answers requests, decides when to sync, and tells shells what changed."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

from venvd.daemon import aliases, drift, projects, sync, trust, turns
from venvd.daemon.config import UserConfig, load_user_config
from venvd.daemon.errors import CommandFailed, VenvdError, first_error_line
from venvd.daemon.paths import Paths
from venvd.daemon.protocol import Message
from venvd.daemon.queue import SyncQueue
from venvd.daemon.store import Store, SyncRecord
from venvd.daemon.watch import Watcher
from venvd.shell import ready

log = logging.getLogger("venvd")

SHELL_CHECK_SECONDS = 30.0
#: The keeper thread's work waits for this long a pause between prompts...
KEEPER_LULL = 0.02
#: ...but never longer than this.
KEEPER_MAX_WAIT = 1.0
#: Activations remembered (one per project and lock state; a few hundred bytes each).
ACTIVATIONS_KEPT = 2048


@dataclass
class ShellInfo:
    """A shell that asked for exports: where it is and what it has yet to be told."""

    project: Optional[str] = None
    told: set[str] = field(default_factory=set)
    inbox: list[str] = field(default_factory=list)
    last: float = 0.0  # when it last asked (monotonic): news older than that is not for it


class Daemon:
    def __init__(self, paths: Paths, uv: str) -> None:
        self.paths = paths
        self.uv = uv
        self.store = Store(paths.db)
        self.config = self._load_config()
        self.started = time.time()
        self.shells: dict[int, ShellInfo] = {}
        self.failed: dict[str, str] = {}  # project -> fingerprint whose sync failed
        # project -> (fingerprint, why): its lockfile is older than its manifest; the next
        # change syncs (the user runs 'uv lock'), meanwhile the last good env stays
        self.waiting: dict[str, tuple[str, str]] = {}
        self._turn: dict[str, str] = {}  # project -> the tool its sync waits for
        self._asked: set[str] = set()  # projects whose sync the user asked for
        self.news: dict[str, list[tuple[float, str]]] = {}  # project -> (when, message)
        self._trust: dict[str, tuple[object, bool]] = {}
        self._bump_lock = threading.Lock()
        self._generation = 0
        self._touched: dict[str, float] = {}
        # visits to record and projects to start watching, done off the prompt path
        self._visits: queue.SimpleQueue[Optional[tuple[str, Optional[ShellInfo]]]] = (
            queue.SimpleQueue())
        self._visiting: set[str] = set()
        self._last_prompt = 0.0
        self._activations: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._ready_lock = threading.Lock()
        self._aliased: set[str] = set()  # projects whose aliases may activate (_keep_ready)
        self._shells_checked = time.monotonic()
        self.queue = SyncQueue(self._run_sync, self.config.parallel_syncs)
        self.stop_requested = threading.Event()
        self.watcher = Watcher(self._changed, self.config.debounce_seconds,
                               force_polling=os.environ.get("VENVD_FORCE_POLLING") == "1",
                               capacity=self.config.max_watched, pinned=self._has_shell)
        self.watcher.start()
        # aliases a past run left: their projects are not watched yet (see _keep_ready)
        for folder in aliases.of(paths.ready, None):
            aliases.forget(paths.ready, folder)
        self._keeper = threading.Thread(target=self._keep_up, name="venvd-visits", daemon=True)
        self._keeper.start()
        self.bump()

    def _load_config(self) -> UserConfig:
        try:
            return load_user_config(self.paths.config_file)
        except VenvdError as exc:
            log.error("%s; using defaults", exc)
            return UserConfig()

    # generation: shells look again when this changes
    def bump(self) -> None:
        """Tell every shell to look again at its next prompt (called from many threads)."""
        gen = self.paths.generation
        with self._bump_lock:
            self._generation = max(self._generation + 1, time.time_ns())
            tmp = gen.with_name(f".generation.{os.getpid()}")
            tmp.write_text(f"{self._generation}\n")
            os.replace(tmp, gen)

    # requests
    def handle(self, request: Message, emit: Callable[[Message], None]) -> Message:
        op = str(request["op"]).replace("-", "_")
        handler: Callable[[Message, Callable[[Message], None]], Message] = getattr(
            self, "op_" + op
        )
        try:
            return handler(request, emit)
        except VenvdError as exc:
            return {"ok": False, "error": str(exc)}
        except (TypeError, ValueError, KeyError) as exc:  # a request with odd field values
            log.warning("bad %s request: %r", op, exc)
            return {"ok": False, "error": f"bad request: {exc}"}

    def op_ping(self, request: Message, emit: Callable[[Message], None]) -> Message:
        return {"ok": True, "pid": os.getpid()}

    def op_stop(self, request: Message, emit: Callable[[Message], None]) -> Message:
        self.stop_requested.set()
        return {"ok": True}

    def op_export(self, request: Message, emit: Callable[[Message], None]) -> Message:
        directory = _directory(request)
        shell = self._shell(request.get("pid"))
        inner = projects.innermost(directory)
        root = projects.owner(inner) if inner else None
        project = projects.real(root) if root else None
        alias = _alias(inner, root, project)
        reply: Message = {"ok": True, "project": project, "exports": {}}
        with self._lock:
            shell.project = project
            # what happened here since this shell last asked (it may have come in by the
            # hook's fast path, which the daemon does not see)
            for when, text in self.news.get(project or "", ()):
                if when > shell.last:
                    shell.inbox.append(text)
            shell.last = time.monotonic()
        if project is not None:
            if self.is_trusted(project):
                reply["exports"] = self._exports_for(project, shell)
                self._keep_ready(project, reply["exports"], alias=alias)
            else:
                self._tell_once(shell, "untrusted:" + project,
                                f"{project} is not allowed; run 'venvd allow' to trust it")
                self._keep_ready(project, None, alias=alias)
        with self._lock:
            reply["messages"], shell.inbox = shell.inbox, []
        return reply

    def _keep_ready(self, project: str, exports: Optional[dict[str, Any]],
                    replace: bool = False, alias: Optional[str] = None) -> None:
        """The hooks' snippet for *project*: written when missing (or *replace*, and then
        its aliases too); and *alias*'s, a folder inside it the hooks would look in."""
        with self._ready_lock:  # a deny that rewrites the aliases is never undone
            if exports and not self.is_trusted(project):
                exports = None  # never an activation of a project not allowed (any more)
            if aliases.stands_for(self.paths.ready, project) is not None:
                aliases.forget(self.paths.ready, project)  # it was an alias: now its own
                replace = True
            if exports == {}:
                ready.remove(self.paths.ready, project)
            elif replace or not ready.snippet_path(self.paths.ready, project, "sh").exists():
                ready.write(self.paths.ready, project, exports)
            if alias is not None and (
                    aliases.stands_for(self.paths.ready, alias) != project
                    or not ready.snippet_path(self.paths.ready, alias, "sh").exists()):
                if exports:  # "stay inactive" is safe unwatched: only activations expire
                    self._aliased.add(project)
                aliases.write(self.paths.ready, alias, project)
            if replace:
                self._keep_aliases(project)

    def _keep_aliases(self, project: str) -> None:
        """Rewrite *project*'s aliases after its snippet changed; forget those that no
        longer belong to it."""
        for folder in aliases.of(self.paths.ready, project):
            inner = projects.innermost(folder)
            if inner == folder and projects.real(projects.owner(folder)) == project:
                aliases.write(self.paths.ready, folder, project)
            else:
                aliases.forget(self.paths.ready, folder)

    def _exports_for(self, project: str, shell: ShellInfo) -> dict[str, Any]:
        """The activation of *project*'s env, answered from what is on disk now.

        Whether the env is behind its files is checked right after, by the keeper thread
        (see ``_visit``): a prompt never waits for that, and a sync it starts tells the
        shells when done. Only a project without a usable env is checked on the spot, so
        that this very prompt hears that its env is being created.
        """
        env = projects.env_path(project)
        exports = self._activation(project, env)
        if exports is None:
            self.ensure_synced(project, shell)
        self._visit(project, shell)
        return exports or {}

    def _activation(self, project: str, env: str) -> Optional[dict[str, Any]]:
        """``projects.activation`` of a usable env, or ``None``; remembered per lock state
        (``.venv`` links to a state that never changes once built)."""
        if not projects.env_is_usable(env):
            return None
        try:
            key: Optional[tuple[str, str]] = (project, os.readlink(env))
        except OSError:  # not a link of ours (made by hand): read it each time
            key = None
        with self._lock:
            cached = self._activations.get(key) if key else None
        if cached is None:
            cached = projects.activation(project, env)
            if key:
                with self._lock:
                    if len(self._activations) >= ACTIVATIONS_KEPT:
                        self._activations.pop(next(iter(self._activations)))
                    self._activations[key] = cached
        return dict(cached)

    def op_allow(self, request: Message, emit: Callable[[Message], None]) -> Message:
        project = self._project_of(request)
        self.store.set_trust(project, True, trust.config_digest(project))
        with self._lock:
            self._trust.pop(project, None)
        self.failed.pop(project, None)
        self.waiting.pop(project, None)
        with self._ready_lock:  # they may say "stay inactive"
            ready.remove(self.paths.ready, project)
            for folder in aliases.of(self.paths.ready, project):
                aliases.forget(self.paths.ready, folder)
        self.track(project)
        self.ensure_synced(project)
        self.bump()
        return {"ok": True, "project": project}

    def op_deny(self, request: Message, emit: Callable[[Message], None]) -> Message:
        project = self._project_of(request)
        self.store.set_trust(project, False, trust.config_digest(project))
        with self._lock:
            self._trust.pop(project, None)
        self.watcher.unwatch(project)
        self._keep_ready(project, None, replace=True)
        self.bump()
        return {"ok": True, "project": project}

    def op_sync(self, request: Message, emit: Callable[[Message], None]) -> Message:
        project = self._project_of(request)
        if not self.is_trusted(project):
            raise VenvdError(f"{project} is not allowed; run 'venvd allow' first")
        self.failed.pop(project, None)
        self.waiting.pop(project, None)
        with self._lock:
            self._asked.add(project)
        if not request.get("wait"):
            self.queue.request(project)
            return {"ok": True, "project": project, "state": self.queue.state(project)}
        try:
            plan = sync.cached_plan(Path(project))
            # uv venv and the seeding of pip, unless the engine makes the env itself
            steps = plan.engine.steps + (0 if getattr(plan.engine, "creates_env", False) else 2)
            emit({"ok": True, "progress": f"syncing {_name(project)} with {plan.engine.name}",
                  "steps": steps})
        except VenvdError:
            pass  # the sync itself records and reports the problem
        with self.queue.listen(project) as inbox:
            self.queue.request(project)
            while True:
                line = inbox.get()
                if line is not None:
                    emit({"ok": True, "progress": line})
                elif self.queue.state(project) is None:
                    break
        last = self.store.syncs(project, 1)
        record = last[0] if last else None
        waiting = self.waiting.get(project)
        ok = record is not None and record.result == "ok" and waiting is None
        reply: Message = {"ok": ok, "project": project, "last_sync": _record_json(record)}
        if waiting is not None:
            reply["error"] = waiting[1]
        elif not ok:
            reply["error"] = record.error if record and record.error else "sync failed"
        return reply

    def op_logs(self, request: Message, emit: Callable[[Message], None]) -> Message:
        project = self._project_of(request)
        limit = int(request.get("limit") or 5)
        records = self.store.syncs(project, max(1, min(limit, 50)))
        return {"ok": True, "project": project,
                "syncs": [{**(_record_json(r) or {}), "output": r.output} for r in records]}

    def op_status(self, request: Message, emit: Callable[[Message], None]) -> Message:
        if request.get("all"):
            return {"ok": True, "projects": [self.status(p) for p in self.store.projects()]}
        return {"ok": True, "projects": [self.status(self._project_of(request))]}

    def op_daemon_status(self, request: Message, emit: Callable[[Message], None]) -> Message:
        me = psutil.Process()
        with me.oneshot():
            memory = me.memory_info().rss
            threads = me.num_threads()
            cpu = me.cpu_times()
        return {
            "ok": True, "pid": os.getpid(), "uptime": time.time() - self.started,
            "rss": memory, "threads": threads, "cpu_seconds": cpu.user + cpu.system,
            "socket": str(self.paths.socket), "projects": len(self.store.projects()),
            "shells": len(self.shells), "queue": self.queue.busy(),
            "visits_pending": len(self._visiting),
            "watch": {"mode": self.watcher.mode(), "projects": len(self.watcher.watched()),
                      "folders": len(self.watcher.folders()), "problem": self.watcher.problem},
        }

    def op_prune(self, request: Message, emit: Callable[[Message], None]) -> Message:
        """Remove lock states no project uses: those of projects that are gone or denied,
        and each project's states beyond ``keep_states``."""
        in_use: dict[str, str] = {}
        for project in self.store.projects():
            if os.path.isdir(project):
                in_use[str(sync.env_store(self.paths.envs, Path(project)))] = project
        removed: list[str] = []
        busy = self.queue.busy()
        envs = self.paths.envs
        for store in sorted(envs.iterdir()) if envs.is_dir() else []:
            owner = in_use.get(str(store))
            if owner is None:
                shutil.rmtree(store, ignore_errors=True)
                removed.append(str(store))
            elif owner not in busy:
                link = Path(projects.env_path(owner))
                current = link.resolve() if link.is_symlink() else None
                removed += map(str, sync.prune_states(store, self.config.keep_states, current))
        return {"ok": True, "removed": removed}

    # watching
    def _has_shell(self, project: str) -> bool:
        with self._lock:
            return any(s.project == project for pid, s in self.shells.items() if pid)
    def track(self, project: str, plan: Optional[sync.Plan] = None) -> None:
        """Watch *project*'s root and the folders its requirement files live in."""
        try:
            plan = plan or sync.cached_plan(Path(project))
        except VenvdError:
            self.watcher.watch(project)
        else:
            files = [Path(project) / name for name in plan.inputs]
            folders = {str(f.parent) for f in files} - {project}
            self.watcher.watch(project, folders, {f.name for f in files})
        self._forget_unwatched_aliases()

    def _forget_unwatched_aliases(self) -> None:
        """Aliases only live while their project is watched (see ``venvd.daemon.aliases``);
        watching one project may have stopped watching another."""
        with self._ready_lock:
            for project in [p for p in self._aliased if not self.watcher.is_watched(p)]:
                self._aliased.discard(project)
                for folder in aliases.of(self.paths.ready, project):
                    aliases.forget(self.paths.ready, folder)

    def _changed(self, project: str) -> None:
        """A watched file changed (debounced): follow it if the project is allowed."""
        log.info("change in %s", project)
        if self.is_trusted(project):
            with self._ready_lock:  # e.g. the workspace's members changed: even when the
                self._keep_aliases(project)  # sync that follows fails, they are right
            self._repair_or_sync(project)
        else:  # e.g. an edited .venvd.toml revoked the trust: shells must look again
            self._keep_ready(project, None, replace=True)
            self.bump()

    def _repair_or_sync(self, project: str) -> None:
        """Follow a change; an env removed or broken underneath (``rm -rf .venv``) is rebuilt,
        and the shells there hear it at their next prompt (their hook drops the env at once,
        seeing its python gone, and takes it back when the rebuild bumps the generation)."""
        broken = not projects.env_is_usable(projects.env_path(project))
        idle = self.queue.state(project) is None
        self.ensure_synced(project)
        if broken and idle and self.queue.state(project) is not None:
            self._tell_project(project, f"the environment of {_name(project)} is missing or "
                                        "broken; rebuilding it in the background")
            self.bump()

    # trust, syncing, state
    def is_trusted(self, project: str) -> bool:
        """Trust, remembered while the project's ``.venvd.toml`` is unchanged (allow and deny
        forget it), so a burst of prompts does not read the database for each."""
        try:
            st = os.stat(os.path.join(project, trust.PROJECT_CONFIG))
            key: object = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            key = None
        with self._lock:
            cached = self._trust.get(project)
        if cached is not None and cached[0] == key:
            return cached[1]
        decided = trust.decide(self.store.trust(project), project, self.config.trusted_roots)
        with self._lock:
            self._trust[project] = (key, decided)
        return decided

    def _visit(self, project: str, shell: Optional[ShellInfo] = None) -> None:
        """A shell is in *project*. The keeper thread records the visit, watches the project
        if it is not watched and queues a sync if its files changed meanwhile: each is
        slow next to the answer to a prompt (a database write, a thread started for the
        watch, a dozen ``stat`` calls), and the answer does not depend on them."""
        with self._lock:
            self._last_prompt = time.monotonic()
            if project in self._visiting:
                return
            self._visiting.add(project)
        self._visits.put((project, shell))

    def _keep_up(self) -> None:
        while True:
            item = self._visits.get()
            if item is None:
                return
            # Prompts first: during a burst of them, this work waits (a little) for a lull.
            deadline = time.monotonic() + KEEPER_MAX_WAIT
            while True:
                lull = time.monotonic() - self._last_prompt
                if lull >= KEEPER_LULL or time.monotonic() >= deadline:
                    break
                time.sleep(KEEPER_LULL - lull)
            project, shell = item
            with self._lock:
                self._visiting.discard(project)
            try:
                self._keep_up_with(project, shell)
            except Exception:  # the keeper must outlive one odd project
                log.exception("while recording a visit to %s", project)

    def _keep_up_with(self, project: str, shell: Optional[ShellInfo]) -> None:
        now = time.monotonic()
        if now - self._touched.get(project, -1e9) >= 60:  # a database write: once a minute
            self._touched[project] = now
            self.store.touch_project(project)
        if not self.watcher.is_watched(project):
            self.track(project)
        told = len(shell.inbox) if shell else 0
        self.ensure_synced(project, shell)
        if shell and len(shell.inbox) > told:  # news for a shell that may not ask again
            self.bump()

    def ensure_synced(self, project: str, shell: Optional[ShellInfo] = None) -> None:
        """Queue a sync when the env is missing, broken or behind its inputs."""
        if self.queue.state(project) is not None:
            return
        try:
            plan = sync.cached_plan(Path(project))
        except VenvdError as exc:
            if shell is not None:
                self._tell_once(shell, f"plan:{project}:{exc}", f"{_name(project)}: {exc}")
            return
        if self.failed.get(project) == plan.fingerprint:
            return
        if self.waiting.get(project, ("",))[0] == plan.fingerprint:
            return  # nothing to do until the lockfile changes
        record = self.store.project(project) or {}
        env = projects.env_path(project)
        if record.get("fingerprint") == plan.fingerprint and projects.env_is_usable(env):
            return
        if shell is not None and not projects.env_is_usable(env):
            shell.inbox.append(
                f"creating the environment for {_name(project)} "
                f"(Python {plan.interpreter.version_str}) in the background"
            )
        self.queue.request(project)

    def _run_sync(self, project: str, progress: Callable[[str], None],
                  cancel: threading.Event) -> None:
        with self._lock:
            asked = project in self._asked
            self._asked.discard(project)
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
            return
        except CommandFailed as exc:
            stale = getattr(plan.engine, "stale_lock", None) if plan else None
            if plan is not None and stale is not None and stale.search(exc.output):
                self._lock_is_stale(project, plan)
                return
            self._sync_failed(project, started, first_error_line(exc.output), exc.output, plan)
            return
        except VenvdError as exc:
            self._sync_failed(project, started, str(exc), str(exc), plan)
            return
        except Exception as exc:  # a bug must not kill the worker; it is recorded and logged
            log.exception("sync of %s crashed", project)
            self._sync_failed(project, started, f"internal error: {exc!r}", repr(exc), plan)
            return
        self._sync_done(project, plan, outcome, started)

    def _waiting_for(self, project: str, what: Optional[str],
                     progress: Callable[[str], None]) -> None:
        with self._lock:
            if what is None:
                self._turn.pop(project, None)
                return
            self._turn[project] = what
        progress(f"venvd: waiting for {what} to finish")

    def _in_step(self, project: str, plan: sync.Plan) -> bool:
        record = self.store.project(project) or {}
        return record.get("fingerprint") == plan.fingerprint and sync.up_to_date(plan)

    def _lock_is_stale(self, project: str, plan: sync.Plan) -> None:
        """The manifest is newer than its lockfile: not a failure (the user edits, then
        locks); the last good env stays, and the lockfile's next change syncs."""
        hint = getattr(plan.engine, "lock_hint", f"{plan.lockfile} is out of date")
        log.info("%s: %s", project, hint)
        self.failed.pop(project, None)
        self.waiting[project] = (plan.fingerprint, hint)
        self.bump()

    def _sync_done(self, project: str, plan: sync.Plan, outcome: sync.Outcome,
                   started: float) -> None:
        self.failed.pop(project, None)
        self.waiting.pop(project, None)
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
        self.track(project, plan)
        sync.keep_out_of_git(Path(project), (projects.ENV_NAME, *sync.moved_aside(Path(project))))
        env = projects.env_path(project)
        self._keep_ready(project, self._activation(project, env) or {}, replace=True)
        if outcome.moved_aside:
            self._tell_project(project, f"{_name(project)}: "
                                        f"{sync.aside_note(outcome.moved_aside)}")
        if not outcome.adopted:  # the tool that synced it has said so already
            note = "switched" if outcome.switched_only else "synced"
            self._tell_project(project, f"{note} {_name(project)} in {outcome.seconds:.1f} s "
                                        f"(+{outcome.added} \u2212{outcome.removed} "
                                        f"~{outcome.changed})")
        self.bump()

    def _sync_failed(self, project: str, started: float, error: str, output: str,
                     plan: Optional[sync.Plan]) -> None:
        # the fingerprint of what was tried: files that changed since (uv writes uv.lock
        # after pyproject.toml) are a new state, to be tried in turn
        self.failed[project] = plan.fingerprint if plan is not None else ""
        self.store.add_sync(SyncRecord(project, None, started, time.time() - started,
                                       "failed", error=error, output=output))
        self._tell_project(project, f"sync failed for {_name(project)}: {error} — venvd logs")
        self.bump()

    def status(self, project: str) -> Message:
        trusted = self.is_trusted(project)
        record = self.store.project(project) or {}
        last = self.store.syncs(project, 1)
        env = projects.env_path(project)
        usable = projects.env_is_usable(env)
        wanted: Optional[str] = None
        source: Optional[str] = None
        error: Optional[str] = None
        engine = record.get("engine")
        lockfile = record.get("lockfile")
        fingerprint: Optional[str] = None
        try:
            plan = sync.cached_plan(Path(project))
            wanted, source = plan.request.spec, plan.request.source
            engine, lockfile, fingerprint = plan.engine.name, plan.lockfile, plan.fingerprint
        except VenvdError as exc:
            error = str(exc)
        drifted = drift.drift(Path(env).resolve()) if usable and trusted else []
        state = self._state(project, trusted, usable, fingerprint, record, last)
        if state == "synced" and drifted:
            state = "drifted"
        with self._lock:
            turn = self._turn.get(project)
        if state == "syncing" and turn is not None:
            # what the tool has installed so far is not drift: it is the next lock state
            state, error, drifted = "waiting", f"waiting for {turn} to finish", []
        elif state == "waiting":
            error = self.waiting.get(project, ("", error))[1]
        return {
            "project": project, "trusted": trusted,
            "python": {"wanted": wanted, "source": source,
                       "actual": record.get("python") if usable else None,
                       "version": record.get("python_version") if usable else None},
            "env": env, "lockfile": lockfile, "engine": engine, "state": state,
            "last_sync": _record_json(last[0] if last else None),
            "drift": drifted, "problem": error,
            "notes": [sync.aside_note(name) for name in sync.moved_aside(Path(project))],
            "watch": self.watcher.mode() if self.watcher.is_watched(project) else None,
            "exports": projects.activation(project, env) if usable and trusted else {},
        }

    def _state(self, project: str, trusted: bool, usable: bool, fingerprint: Optional[str],
               record: dict[str, Any], last: list[SyncRecord]) -> str:
        if not trusted:
            return "untrusted"
        queued = self.queue.state(project)
        if queued is not None:
            return queued
        if fingerprint is None or (last and last[0].result == "failed"
                                   and self.failed.get(project) == fingerprint):
            return "failed"
        if self.waiting.get(project, ("",))[0] == fingerprint:
            return "waiting"
        if not usable:
            return "missing"
        if record.get("fingerprint") == fingerprint:
            return "synced"
        # its files changed while nobody watched (no shell there since the daemon started)
        self.ensure_synced(project)
        return self.queue.state(project) or "queued"

    # shells
    def _shell(self, pid: Any) -> ShellInfo:
        key = pid if isinstance(pid, int) and pid > 0 else 0
        with self._lock:
            self._forget_dead_shells()
            return self.shells.setdefault(key, ShellInfo())

    def _forget_dead_shells(self) -> None:
        now = time.monotonic()
        if now - self._shells_checked < SHELL_CHECK_SECONDS:
            return
        self._shells_checked = now
        for pid in [p for p in self.shells if p and not psutil.pid_exists(p)]:
            del self.shells[pid]

    def _tell_once(self, shell: ShellInfo, key: str, text: str) -> None:
        with self._lock:
            if key not in shell.told:
                shell.told.add(key)
                shell.inbox.append(text)

    def _tell_project(self, project: str, text: str) -> None:
        """News for the shells in *project*, given at their next prompt (the generation
        bump that follows makes every shell ask)."""
        with self._lock:
            news = self.news.setdefault(project, [])
            news.append((time.monotonic(), text))
            del news[:-5]

    def _project_of(self, request: Message) -> str:
        """The project a request's directory belongs to (see ``projects.owner``)."""
        directory = _directory(request)
        root = projects.find_project(directory)
        if root is None:
            raise VenvdError(f"no project at or above {directory}")
        return projects.real(root)

    def close(self) -> None:
        self._visits.put(None)
        self.watcher.stop()
        self.queue.shutdown()
        self.store.close()


def _directory(request: Message) -> str:
    directory = request.get("dir")
    if not isinstance(directory, str) or not os.path.isabs(directory):
        raise VenvdError("request needs 'dir', an absolute path")
    return directory


def _alias(inner: Optional[str], root: Optional[str], project: Optional[str]) -> Optional[str]:
    """The folder (real path) the hooks would look in for *inner*, when it is not *project*
    itself but a folder inside it (``docs/``, a workspace member); else ``None``."""
    if inner is None or root is None or project is None or inner == root:
        return None
    folder = projects.real(inner)
    return folder if folder.startswith(project.rstrip("/") + "/") else None


def _name(project: str) -> str:
    return os.path.basename(project) or project


def _record_json(record: Optional[SyncRecord]) -> Optional[Message]:
    if record is None:
        return None
    return {
        "result": record.result, "engine": record.engine,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.started)),
        "seconds": None if record.seconds is None else round(record.seconds, 3),
        "added": record.added, "removed": record.removed, "changed": record.changed,
        "error": record.error,
    }
