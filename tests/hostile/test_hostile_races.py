"""Races with a running sync or a stopped daemon (issue 15, items 4, 6, 7, 9), with the real
daemon and a sync that is slow for exactly as long as the test needs (``Slow``):

- a deny, or a ``.venvd.toml`` that revokes the trust, cancels the running sync (its build
  backend ends, the sync is recorded cancelled) and no snippet activates the project;
- an edit during a sync always leads to one more sync, and the status then says synced;
- an edit while the daemon was down is synced once it starts, with no ``venvd sync``;
- ``venvd prune`` during a first sync leaves the env being built alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from test_contracts import Slow

from venvd.daemon import catch_up
from venvd.daemon.store import Store
from venvd.shell import ready

from conftest import Sandbox, wait_for
from support.index import installed


def _daemon_process(box: Sandbox) -> psutil.Process:
    return psutil.Process(int(box.request({"op": "ping"})["pid"]))


def _builders(box: Sandbox) -> list[psutil.Process]:
    """The commands the daemon runs (uv, the build backend), zombies left out."""
    return [p for p in _daemon_process(box).children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE]


def _snippet(box: Sandbox, project: Path) -> str:
    folder = Path(box.env["XDG_RUNTIME_DIR"]) / "venvd" / "ready"
    path = ready.snippet_path(folder, os.path.realpath(project), "sh")
    return path.read_text() if path.exists() else ""


def _activates(box: Sandbox, project: Path) -> bool:
    """Whether the hooks' snippet for *project* names its env (not "stay inactive")."""
    return os.path.join(os.path.realpath(project), ".venv") in _snippet(box, project)


def _last_sync(box: Sandbox, project: Path) -> str:
    return box.venvd("logs", str(project)).stdout


def _revoked_during_a_sync(box: Sandbox, revoke: str) -> None:
    slow = Slow(box)
    box.venvd("allow", str(slow.project))
    slow.wait_started()
    builders = _builders(box)
    assert builders, "the sync runs no command"
    try:
        if revoke == "deny":
            box.venvd("deny", str(slow.project))
        else:  # an edit of .venvd.toml after the allow: it names what is installed
            (slow.project / ".venvd.toml").write_text('requirements = ["requirements.txt"]\n')
        # the build backend is still waiting to be let go: only a cancel ends it
        wait_for(lambda: not [p for p in builders if p.is_running()
                              and p.status() != psutil.STATUS_ZOMBIE], 60,
                 "the sync's commands to be ended")
        wait_for(lambda: "=== cancelled at" in _last_sync(box, slow.project), 60,
                 "the sync to be recorded cancelled")
    finally:
        slow.let_go()
    shown = _last_sync(box, slow.project)
    assert "no longer allowed" in shown, shown
    assert "=== ok" not in shown, shown
    assert not (slow.project / ".venv").exists()
    assert box.status(slow.project)["trusted"] is False
    assert not _activates(box, slow.project), _snippet(box, slow.project)


def test_deny_during_a_sync_cancels_it_and_nothing_activates(daemon: Sandbox) -> None:
    _revoked_during_a_sync(daemon, "deny")


def test_a_venvd_toml_written_during_a_sync_cancels_it(daemon: Sandbox) -> None:
    _revoked_during_a_sync(daemon, "venvd.toml")


def test_an_edit_during_a_sync_leads_to_one_more_sync(daemon: Sandbox) -> None:
    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()
    requirements = slow.project / "requirements.txt"
    try:
        requirements.write_text(requirements.read_text() + "gamma\n")
        # the change is seen while the first sync still runs (its backend waits)
        wait_for(lambda: daemon.status(slow.project)["state"] == "syncing", 30, "syncing")
    finally:
        slow.let_go()
    wait_for(lambda: (slow.project / ".venv/bin/python").exists()
             and "gamma" in installed(slow.project), 120, "gamma to arrive")
    status = daemon.wait_state(slow.project)
    assert status["state"] == "synced", status
    assert "slowpkg" in installed(slow.project)


def test_an_edit_while_the_daemon_was_down_is_synced_when_it_starts(sandbox: Sandbox) -> None:
    project = sandbox.project("offline-edit", requirements="alpha==1.0\n")
    sandbox.venvd("allow", str(project))  # starts the daemon
    sandbox.wait_state(project, ("synced",))
    assert installed(project) == {"alpha": "1.0"}
    sandbox.venvd("daemon", "stop")
    wait_for(lambda: not sandbox.alive(), 30, "the daemon to stop")
    (project / "requirements.txt").write_text("alpha==1.0\ngamma\n")
    sandbox.venvd("daemon", "start")
    wait_for(lambda: "gamma" in installed(project), 120, "gamma to arrive with no 'venvd sync'")
    assert sandbox.wait_state(project, ("synced",))["state"] == "synced"
    shown = _last_sync(sandbox, project)
    assert shown.count("=== ok") == 2, shown


def test_prune_during_a_first_sync_keeps_the_env_being_built(daemon: Sandbox) -> None:
    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()
    try:
        removed = daemon.request({"op": "prune"})["removed"]
    finally:
        slow.let_go()
    assert removed == [], removed
    status = daemon.wait_state(slow.project)
    assert status["state"] == "synced", status
    assert "slowpkg" in installed(slow.project)


def test_a_project_no_longer_watched_is_not_answered_by_the_fast_path(
        sandbox: Sandbox) -> None:
    """The watcher keeps ``max_watched`` projects. A shell that enters one it dropped must
    not be answered from a snippet (without the daemon hearing of it): an edit made
    meanwhile would never be synced."""
    from test_watch import start_with_config

    start_with_config(sandbox, "max_watched = 1\n")
    first = sandbox.project("first", requirements="alpha==1.0\n")
    second = sandbox.project("second", requirements="gamma\n")
    sh = sandbox.shell("bash", cwd=sandbox.root)
    for project in (first, second):
        sandbox.venvd("allow", str(project))
        sandbox.wait_state(project, ("synced",))
        sh.run(f"cd {project}")
        sh.prompts_until(lambda p=project: sh.var("VIRTUAL_ENV") == f"{p}/.venv", 60,
                         f"{project.name} to be active")
    wait_for(lambda: sandbox.status(first)["watch"] is None, 30, "first to be dropped")
    assert not _activates(sandbox, first), _snippet(sandbox, first)
    (first / "requirements.txt").write_text("alpha==1.0\ngamma\n")  # nobody watches it
    sh.run(f"cd {first}")
    assert sh.var("VIRTUAL_ENV") == f"{first}/.venv"  # the env it has, at once
    wait_for(lambda: "gamma" in installed(first), 120, "the edit to be synced")


def test_an_edit_while_the_daemon_was_dead_is_synced_when_the_hook_starts_it(
        daemon: Sandbox) -> None:
    project = daemon.project("hooked", requirements="alpha==1.0\n")
    daemon.venvd("allow", str(project))
    daemon.wait_state(project, ("synced",))
    sh = daemon.shell("bash", cwd=project)
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 60, "activation")
    old_pid = daemon.kill_daemon()
    (project / "requirements.txt").write_text("alpha==1.0\ngamma\n")
    sh.run("cd ..")  # the hook looks again: it finds no daemon and starts one
    sh.run(f"cd {project}")
    wait_for(lambda: daemon.alive() and int(daemon.pid_file.read_text()) != old_pid, 30,
             "the hook to start a daemon")
    wait_for(lambda: "gamma" in installed(project), 120, "gamma to arrive with no 'venvd sync'")
    assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"


def test_a_start_looks_again_at_the_projects_used_last_and_no_more(tmp_path: Path) -> None:
    """However many projects the runtime folder has snippets for, a start looks again at
    ``max_watched`` of them (the most recently used, visited or entered); the snippets of
    the others go, as they will not be watched."""
    ready_dir = tmp_path / "ready"
    store = Store(tmp_path / "state" / "state.sqlite3")
    try:
        for age, project in enumerate(("/p/newest", "/p/new", "/p/old", "/p/oldest")):
            ready.write(ready_dir, project, None)
            when = 1_000_000.0 - age
            os.utime(ready.snippet_path(ready_dir, project, "sh"), (when, when))
        store.touch_project("/p/visited")  # now: more recent than every snippet
        again, dropped = catch_up.projects(ready_dir, store, 3)
    finally:
        store.close()
    assert again == ["/p/new", "/p/newest", "/p/visited"]  # the most recent last
    assert sorted(dropped) == ["/p/old", "/p/oldest"]
