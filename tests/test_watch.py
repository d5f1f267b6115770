"""Environments follow their files on their own: real edits, real git, real events."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from venvd.daemon.watch import Watcher

from conftest import Py, Sandbox, wait_for


def syncs(box: Sandbox, project: Path) -> list[dict[str, Any]]:
    reply = box.request({"op": "logs", "dir": str(project), "limit": 50})
    assert reply["ok"], reply
    found: list[dict[str, Any]] = reply["syncs"]
    return found


def installed(project: Path, module: str) -> str:
    out = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c",
                          f"import {module}; print({module}.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else f"missing: {out.stderr[-200:]}"


def synced_to(box: Sandbox, project: Path, count: int) -> dict[str, Any] | None:
    """The status once at least *count* syncs are recorded and none is running."""
    status = box.status(project)
    if status["state"] in ("synced", "failed") and len(syncs(box, project)) >= count:
        return status
    return None


def allow(box: Sandbox, project: Path) -> None:
    box.venvd("allow", str(project))
    assert box.wait_state(project)["state"] == "synced"


def start_with_config(box: Sandbox, config: str) -> None:
    """Start the daemon with *config* as the user's config.toml."""
    path = Path(box.env["XDG_CONFIG_HOME"]) / "venvd" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(config)
    box.venvd("daemon", "start")


def test_requirements_edit_is_followed_without_any_shell(daemon: Sandbox) -> None:
    project = daemon.project("follow", requirements="alpha==1.0\n")
    allow(daemon, project)
    assert installed(project, "alpha") == "1.0"
    (project / "requirements.txt").write_text("alpha==2.0\ngamma\n")
    wait_for(lambda: installed(project, "gamma") == "1.0", 60, "gamma to be installed")
    assert installed(project, "alpha") == "2.0"
    (project / "requirements.txt").write_text("gamma\n")
    wait_for(lambda: installed(project, "alpha").startswith("missing"), 60,
             "alpha to be removed (exact sync)")
    status = wait_for(lambda: synced_to(daemon, project, 3), 60, "three syncs")
    assert status["watch"] in ("inotify", "polling")


def test_burst_of_edits_makes_one_or_two_syncs(daemon: Sandbox) -> None:
    project = daemon.project("burst", requirements="alpha==1.0\n")
    allow(daemon, project)
    before = len(syncs(daemon, project))
    for i in range(10):
        pins = "alpha==2.0\n" if i % 2 else "alpha==1.0\n"
        (project / "requirements.txt").write_text(pins + f"# edit {i}\n")
    (project / "requirements.txt").write_text("alpha==2.0\n# final\n")
    wait_for(lambda: installed(project, "alpha") == "2.0", 60, "the final pins")
    status = wait_for(lambda: synced_to(daemon, project, before + 1), 60, "the burst's sync")
    after = len(syncs(daemon, project)) - before
    assert 1 <= after <= 2, f"{after} syncs for one burst"
    assert status["state"] == "synced"


def test_python_version_change_rebuilds_on_the_new_interpreter(
        daemon: Sandbox, two_pythons: tuple[Py, Py]) -> None:
    py_a, py_b = two_pythons
    project = daemon.project("repin", py_a.minor, "gamma\n")
    allow(daemon, project)
    assert daemon.status(project)["python"]["version"] == py_a.version
    (project / ".python-version").write_text(py_b.minor + "\n")
    wait_for(lambda: daemon.status(project)["python"]["version"] == py_b.version, 120,
             f"a rebuild on {py_b.version}")
    out = subprocess.run([str(project / ".venv/bin/python"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"Python {py_b.version}"
    assert installed(project, "gamma") == "1.0"


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
                   cwd=project, check=True, capture_output=True)


def test_git_checkout_syncs_once_and_switching_back_reuses_the_built_env(
        daemon: Sandbox) -> None:
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    project = daemon.project("branches", requirements="alpha==1.0\n")
    (project / ".gitignore").write_text(".venv\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-qm", "one")
    git(project, "checkout", "-qb", "two")
    (project / "requirements.txt").write_text("alpha==2.0\nbeta\n")
    git(project, "commit", "-qam", "two")
    git(project, "checkout", "-q", "main")
    allow(daemon, project)
    assert installed(project, "alpha") == "1.0"
    first = len(syncs(daemon, project))

    git(project, "checkout", "-q", "two")
    wait_for(lambda: installed(project, "beta") == "1.0", 60, "branch two's packages")
    wait_for(lambda: synced_to(daemon, project, first + 1), 60, "branch two's sync")
    assert installed(project, "alpha") == "2.0"
    assert len(syncs(daemon, project)) == first + 1

    git(project, "checkout", "-q", "main")
    wait_for(lambda: installed(project, "alpha") == "1.0", 60, "main's packages again")
    wait_for(lambda: synced_to(daemon, project, first + 2), 60, "the switch back")
    records = syncs(daemon, project)
    assert len(records) == first + 2
    assert installed(project, "beta").startswith("missing")
    # the switch back reused the env built for main: no uv command ran
    assert "uv" not in records[0]["output"], records[0]["output"]


@contextlib.contextmanager
def written_but_open(path: Path, text: str) -> Iterator[None]:
    """*path* holds *text*, and stays open for writing until the block ends: the watcher has
    seen it modified, not closed, so the change waits out the whole debounce."""
    with path.open("w") as f:
        f.write(text)
        f.flush()
        yield


def test_sync_wait_streams_progress_plain_and_as_a_bar(sandbox: Sandbox) -> None:
    # a long debounce, and each edit held open: the sync is the one `sync --wait` asks for
    start_with_config(sandbox, "debounce_seconds = 600\n")
    project = sandbox.project("progress", requirements="gamma\n")
    allow(sandbox, project)
    with written_but_open(project / "requirements.txt", "gamma\nalpha\n"):
        plain = sandbox.venvd("sync", str(project), "--wait")
    assert "$ " in plain.stdout and "pip sync" in plain.stdout and "\r" not in plain.stdout
    assert "venvd: synced" in plain.stdout
    with written_but_open(project / "requirements.txt", "alpha\n"):
        child = pexpect.spawn(str(sandbox.root / "bin" / "venvd"),
                              ["sync", str(project), "--wait"], env=sandbox.env,
                              encoding="utf-8", timeout=60, dimensions=(24, 120))
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 0
    out = str(child.before)
    assert re.search(r"\r\[#*-*\] \d/\d ", out), out
    assert "venvd: synced" in out
    # a failing sync exits non-zero
    with written_but_open(project / "requirements.txt", "no-such-package-anywhere\n"):
        failed = sandbox.venvd("sync", str(project), "--wait", check=False)
    assert failed.returncode == 1
    assert "no-such-package-anywhere" in failed.stderr


def test_background_sync_is_announced_once_at_the_next_prompt(daemon: Sandbox,
                                                              shell_kind: str) -> None:
    project = daemon.project("announce", requirements="gamma\n")
    allow(daemon, project)
    sh = daemon.shell(shell_kind, cwd=project)
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 60, "activation")
    (project / "requirements.txt").write_text("gamma\nalpha==1.0\n")
    seen = []

    def announced() -> bool:
        seen.append(sh.prompt_output + sh.run("true"))
        return "venvd: synced announce in" in "".join(seen)

    wait_for(announced, 60, "the sync message at a prompt")
    assert "(+1 -0 ~0)" in "".join(seen)
    for _ in range(3):
        seen.append(sh.prompt_output + sh.run("true"))
    assert "".join(seen).count("venvd: synced announce") == 1
    (project / "requirements.txt").write_text("no-such-package-anywhere\n")
    failure = []

    def failed() -> bool:
        failure.append(sh.prompt_output + sh.run("true"))
        return "venvd: sync failed for announce:" in "".join(failure)

    wait_for(failed, 60, "the failure message at a prompt")
    assert "venvd logs" in "".join(failure)
    # the old env stays active and importable
    assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"
    assert sh.run("python -c 'import alpha; print(alpha.__version__)'").strip() == "1.0"


def test_status_all_lists_every_project(daemon: Sandbox) -> None:
    one = daemon.project("one", requirements="gamma\n")
    two = daemon.project("two", requirements="alpha\n")
    allow(daemon, one)
    allow(daemon, two)
    table = daemon.venvd("status", "--all").stdout.splitlines()
    assert table[0].split()[:2] == ["STATE", "PYTHON"]
    rows = {line.split()[-1]: line.split()[0] for line in table[1:]}
    assert rows == {str(one): "synced", str(two): "synced"}
    as_json = json.loads(daemon.venvd("status", "--all", "--json").stdout)
    assert sorted(p["project"] for p in as_json) == [str(one), str(two)]


def test_polling_observer_follows_changes_and_says_so(sandbox: Sandbox) -> None:
    sandbox.env["VENVD_FORCE_POLLING"] = "1"
    sandbox.venvd("daemon", "start")
    project = sandbox.project("polled", requirements="alpha==1.0\n")
    allow(sandbox, project)
    assert sandbox.status(project)["watch"] == "polling"
    (project / "requirements.txt").write_text("alpha==2.0\n")
    wait_for(lambda: installed(project, "alpha") == "2.0", 60, "the polled change")


def test_inotify_failure_falls_back_to_polling(tmp_path: Path) -> None:
    """Mocked: inotify refusing a watch (the watch limit cannot be reached safely here)."""
    changes: list[str] = []
    watcher = Watcher(changes.append, debounce=0.05)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    watcher._observer.schedule = refuse  # type: ignore[method-assign]
    watcher.start()
    try:
        project = tmp_path / "p"
        project.mkdir()
        watcher.watch(str(project))
        assert watcher.mode() == "polling" and "inotify" in (watcher.problem or "")
        (project / "requirements.txt").write_text("x\n")
        wait_for(lambda: changes == [str(project)], 30, "the polling observer to see it")
    finally:
        watcher.stop()


def test_watches_are_bounded_least_recently_used_first(tmp_path: Path) -> None:
    folders = []
    for name in "abcd":
        (tmp_path / name).mkdir()
        folders.append(str(tmp_path / name))
    a, b, _c, d = folders
    watcher = Watcher(lambda project: None, debounce=0.05, capacity=2,
                      pinned=lambda project: project == a)
    watcher.start()
    try:
        for project in folders:
            watcher.watch(project)
        assert watcher.watched() == sorted([a, d])  # a has a shell; d is the newest
        assert watcher.folders() == sorted([a, d])
        watcher.watch(b)
        assert watcher.watched() == sorted([a, b])
    finally:
        watcher.stop()


def test_a_full_watcher_takes_only_projects_a_shell_is_in(tmp_path: Path) -> None:
    """With every watch taken, a visit whose shell has moved on since does not take one
    (200 shells in a burst, or a script cd-ing through folders, used to evict and watch
    for every visit); one a shell is still in does, and with room any does."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for folder in (a, b):
        os.mkdir(folder)
    watcher = Watcher(lambda project: None, debounce=0.05, capacity=1)
    watcher.start()
    try:
        assert watcher.worth_a_watch(shell_there=False)  # room left
        watcher.watch(a)
        assert not watcher.worth_a_watch(shell_there=False)
        assert watcher.worth_a_watch(shell_there=True)
        watcher.unwatch(a)
        assert watcher.worth_a_watch(shell_there=False)
    finally:
        watcher.stop()


def test_a_project_no_longer_watched_is_checked_at_its_next_visit(sandbox: Sandbox) -> None:
    start_with_config(sandbox, "max_watched = 1\n")
    first = sandbox.project("first", requirements="alpha==1.0\n")
    second = sandbox.project("second", requirements="gamma\n")
    allow(sandbox, first)
    allow(sandbox, second)
    wait_for(lambda: sandbox.status(first)["watch"] is None, 20, "first to be dropped")
    (first / "requirements.txt").write_text("alpha==2.0\n")
    # a prompt there answers at once with the env as it is, and has the project checked
    reply = sandbox.request({"op": "export", "dir": str(first), "pid": os.getpid()})
    assert reply["exports"]["VIRTUAL_ENV"] == str(first.resolve() / ".venv")
    wait_for(lambda: installed(first, "alpha") == "2.0", 60, "the visit to sync the edit")
    assert wait_for(lambda: sandbox.status(first)["watch"], 20, "first to be watched again")


def test_watching_and_events_at_once_never_deadlock(tmp_path: Path) -> None:
    """Projects are watched and dropped (capacity 3) while their files keep changing: watchdog
    holds its lock while it hands us events, so we must never call it holding ours."""
    folders = [tmp_path / f"p{i}" for i in range(8)]
    for folder in folders:
        folder.mkdir()
    seen: list[str] = []
    watcher = Watcher(seen.append, debounce=0.001, capacity=3)
    watcher.start()
    stop = threading.Event()

    def churn_files() -> None:
        i = 0
        while not stop.is_set():
            (folders[i % len(folders)] / "requirements.txt").write_text(str(i))
            i += 1

    def churn_watches() -> None:
        for i in range(300):
            watcher.watch(str(folders[i % len(folders)]))
            if i % 7 == 0:
                watcher.unwatch(str(folders[(i + 3) % len(folders)]))

    writer = threading.Thread(target=churn_files, daemon=True)
    worker = threading.Thread(target=churn_watches, daemon=True)
    writer.start()
    worker.start()
    worker.join(timeout=60)
    try:
        assert not worker.is_alive(), "watch()/unwatch() deadlocked against watchdog's events"
        # and the watcher still works: a folder watched from now on reports the writes
        watcher.watch(str(folders[0]))
        wait_for(lambda: str(folders[0]) in seen, 20, "a change after the churn")
    finally:
        stop.set()
        writer.join(timeout=10)
        if not worker.is_alive():
            watcher.stop()


def test_lock_states_are_bounded_and_prune_removes_unused_ones(sandbox: Sandbox) -> None:
    start_with_config(sandbox, "keep_states = 2\n")
    project = sandbox.project("states", requirements="alpha==1.0\n")
    gone = sandbox.project("gone", requirements="gamma\n")
    allow(sandbox, project)
    allow(sandbox, gone)
    envs = Path(sandbox.env["XDG_DATA_HOME"]) / "venvd" / "envs"
    store = (project / ".venv").resolve().parent
    steps = (("alpha==2.0\n", "alpha", "2.0"), ("alpha==1.0\nbeta\n", "beta", "1.0"),
             ("gamma\n", "gamma", "1.0"))
    for pins, module, version in steps:
        (project / "requirements.txt").write_text(pins)
        wait_for(lambda m=module, v=version: installed(project, m) == v, 60, pins)
        wait_for(lambda: sandbox.status(project)["state"] == "synced", 60, "synced")
    # the live one and the one before (the others go once the sync is reported), and at
    # most one spare clone, the next state's start (not a lock state: no completion mark)
    states = wait_for(lambda: (lambda found: found if len(found) == 2 else None)(
        [p for p in store.iterdir() if (p / ".venvd-complete").is_file()]), 30,
        "two lock states")
    assert (project / ".venv").resolve() in states
    others = [p for p in store.iterdir() if p.is_dir() and p not in states]
    assert len(others) <= 1 and all(p.name.startswith("spare-") for p in others), others
    gone_store = (gone / ".venv").resolve().parent
    shutil.rmtree(gone)
    (envs / ".trash" / "a-pruned-state").mkdir(parents=True, exist_ok=True)
    out = sandbox.venvd("prune").stdout
    assert str(gone_store) in out
    assert ".trash" not in out  # pruned states waiting for removal are no project's store
    assert not gone_store.exists() and store.exists()
    assert sorted(p.name for p in envs.iterdir() if p.name != ".trash") == [store.name]
    assert installed(project, "gamma") == "1.0"  # the live env is untouched
