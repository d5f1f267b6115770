"""The op table: one handler per op of ``protocol.TABLE``, and nothing else answers.

A request reaches a handler only through ``HANDLERS`` (keyed by the protocol's op names,
checked to match them when this module loads), so an op without a handler, or a handler
the protocol does not know, cannot be called."""

from __future__ import annotations

import os
import queue
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from venvd.daemon import describe, plans, projects, states, trust
from venvd.daemon.errors import VenvdError
from venvd.daemon.outcomes import name
from venvd.daemon.protocol import TABLE, Message
from venvd.daemon.shells import plan_key, untrusted_key
from venvd.daemon.status import record_json

#: How often a ``sync --wait`` request looks whether the daemon is stopping.
STOP_CHECK = 0.5

if TYPE_CHECKING:
    from venvd.daemon.service import Daemon

Emit = Callable[[Message], None]
Handler = Callable[["Daemon", Message, Emit], Message]


def ping(d: Daemon, request: Message, emit: Emit) -> Message:
    return {"ok": True, "pid": os.getpid()}


def stop(d: Daemon, request: Message, emit: Emit) -> Message:
    d.stop_requested.set()
    return {"ok": True}


def export(d: Daemon, request: Message, emit: Emit) -> Message:
    return d.prompts.export(directory(request), request.get("pid"), request.get("seen"))


def allow(d: Daemon, request: Message, emit: Emit) -> Message:
    project = d.project_of(directory(request))
    found = trust.identity(project)
    if found is None:
        raise VenvdError(f"{project}: cannot look at the folder")
    if found[2] != os.getuid() and not request.get("force"):
        raise VenvdError(f"{project} belongs to {_user(found[2])}, not you: allowing it lets "
                         "its owner run code as you; 'venvd allow --force' if you mean it")
    d.store.set_trust(project, True, trust.config_digest(project), found)
    d.store.touch_project(project)  # tracked (in `status --all`), even if it cannot sync
    d.trust.forget(project)
    d.syncer.state.clear(project)
    d.view.forget(project)  # its snippet may say "stay inactive"
    d.syncer.ensure_synced(project)  # first: the user waits for this sync
    d.track(project)
    if d.syncer.queue.state(project) is None or projects.env_is_usable(
            projects.env_path(project)):
        d.view.bump()  # an env to activate now, or a reason why none comes (said at a prompt)
    # else nothing changes for the shells until the env is there: the sync's outcome bumps
    # (a prompt in the project meanwhile would only start a client to stay inactive)
    problem = describe.plan_problem(project)
    if problem is not None:  # said by `venvd allow` itself: not again at its shell's prompt
        d.shells.heard(request.get("pid"), plan_key(project, problem))
    return {"ok": True, "project": project, "problem": problem}


def deny(d: Daemon, request: Message, emit: Emit) -> Message:
    project = d.project_of(directory(request))
    try:
        digest = trust.config_digest(project)
    except VenvdError:  # a .venvd.toml venvd will not read: denied all the same
        digest = ""
    d.store.set_trust(project, False, digest)
    d.trust.forget(project)
    d.syncer.cancel(project)  # its build scripts stop now, not when the sync is done
    d.syncer.kernels.forget(project)
    d.watcher.unwatch(project)
    d.view.keep_ready(project, None, replace=True)
    d.shells.heard(request.get("pid"), untrusted_key(project))  # `venvd deny` said so
    d.view.bump()
    return {"ok": True, "project": project}


def sync_op(d: Daemon, request: Message, emit: Emit) -> Message:
    project = d.project_of(directory(request))
    if not d.trust.is_trusted(project):
        raise VenvdError(f"{project} is not allowed; run 'venvd allow' first")
    syncer = d.syncer
    syncer.state.clear(project)
    if not request.get("wait"):
        syncer.state.ask(project)
        syncer.queue.request(project)
        return {"ok": True, "project": project, "state": syncer.queue.state(project)}
    _announce(project, emit)
    since = time.monotonic()
    with syncer.queue.listen(project) as inbox:
        # a sync already queued or running (the one `venvd allow` started) is the one
        # this request waits for and reports: one more after it would find nothing to do
        if syncer.queue.state(project) is None:
            syncer.state.ask(project)
            syncer.queue.request(project)
        while True:
            try:
                line = inbox.get(timeout=STOP_CHECK)
            except queue.Empty:
                # a sync queued behind a cancelled one never starts once the daemon stops:
                # then this request ends (its client hears the daemon went away)
                if d.stop_requested.is_set():
                    raise VenvdError("the daemon is stopping") from None
                continue
            if line is not None:
                emit({"ok": True, "progress": line})
            elif syncer.queue.state(project) is None:
                break
    # the client says how it went: the shell it runs in does not hear it again as news
    d.shells.heard_news(request.get("pid"), project, since)
    last = d.store.syncs(project, 1)
    record = last[0] if last else None
    waiting = syncer.state.waiting(project)
    ok = record is not None and record.result == "ok" and waiting is None
    reply: Message = {"ok": ok, "project": project, "last_sync": record_json(record)}
    if waiting is not None:
        reply["error"] = waiting[1]
    elif not ok:
        reply["error"] = record.error if record and record.error else "sync failed"
    return reply


def _announce(project: str, emit: Emit) -> None:
    """The first progress line of ``sync --wait``: the engine, and how many steps."""
    try:
        plan = plans.cached_plan(Path(project))
    except VenvdError:
        return  # the sync itself records and reports the problem
    # uv venv and the seeding of pip, unless the engine makes the env itself
    # the commands the sync runs besides the engine's: "uv venv" unless the engine makes the
    # env, and the pip seeding (linked from a seeded env, not a command, once that exists)
    steps = plan.engine.steps + (0 if plan.engine.creates_env or plan.engine.makes_venv else 1)
    emit({"ok": True, "progress": f"syncing {name(project)} with {plan.engine.name}",
          "steps": steps})


def logs(d: Daemon, request: Message, emit: Emit) -> Message:
    project = d.project_of(directory(request))
    limit = int(request.get("limit") or 5)
    records = d.store.syncs(project, max(1, min(limit, 50)))
    return {"ok": True, "project": project,
            "syncs": [{**(record_json(r) or {}), "output": r.output} for r in records],
            "problems": d.syncer.state.problems(project)}


def status(d: Daemon, request: Message, emit: Emit) -> Message:
    found = d.store.projects() if request.get("all") else [d.project_of(directory(request))]
    return {"ok": True, "projects": [d.status.project(p) for p in found]}


def daemon_status(d: Daemon, request: Message, emit: Emit) -> Message:
    return d.status.daemon(d.started, d.shells.count(), d.keeper.pending(),
                           str(d.paths.socket))


def prune(d: Daemon, request: Message, emit: Emit) -> Message:
    """Remove lock states no project uses: those of projects that are gone or denied,
    and each project's states beyond ``keep_states``."""
    with d.syncer.queue.hold() as busy:  # no sync starts meanwhile
        removed = _prune(d, busy)
        kernels = d.syncer.kernels.sweep()
    # a project whose folder is gone (renamed, deleted) is forgotten with its states
    gone = [p for p in d.store.projects() if p not in busy and not os.path.isdir(p)]
    for project in gone:
        d.store.forget(project)
    return {"ok": True, "removed": removed, "kernels": kernels, "forgotten": gone}


def _prune(d: Daemon, busy: dict[str, str]) -> list[str]:
    in_use: dict[str, str] = {}
    # a project's first sync builds before it has a row: its store is in use all the same
    for project in [*d.store.projects(), *busy]:
        if os.path.isdir(project):
            in_use[str(states.env_store(d.paths.envs, Path(project)))] = project
    removed: list[str] = []
    envs = d.paths.envs
    for store in sorted(envs.iterdir()) if envs.is_dir() else []:
        if store.name.startswith("."):
            continue  # the trash of pruned states (removed by a thread of its own), not a store
        owner = in_use.get(str(store))
        if owner is None:
            shutil.rmtree(store, ignore_errors=True)
            removed.append(str(store))
        elif owner not in busy:
            link = Path(projects.env_path(owner))
            current = link.resolve() if link.is_symlink() else None
            removed += map(str, states.prune_states(store, d.config.keep_states, current))
    return removed


def _user(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def directory(request: Message) -> str:
    found = request.get("dir")
    if not isinstance(found, str) or not os.path.isabs(found):
        raise VenvdError("request needs 'dir', an absolute path")
    return found


HANDLERS: dict[str, Handler] = {
    "ping": ping, "export": export, "status": status, "allow": allow, "deny": deny,
    "sync": sync_op, "logs": logs, "daemon-status": daemon_status, "stop": stop,
    "prune": prune,
}
_MISMATCH = set(HANDLERS) ^ {op.name for op in TABLE}
if _MISMATCH:  # pragma: no cover - any test run loads this module
    raise ImportError(f"the op table and protocol.TABLE disagree on {sorted(_MISMATCH)}")
