"""The rest of the project files venvd reads (``.python-version``, requirement files and their
includes, ``Pipfile.lock``, the lockfile it fingerprints, ``pyvenv.cfg``, ``.venv/.lock``): a
FIFO, ``/dev/zero`` or a file over the cap is a clear status problem, never a hung request or
sync thread nor a daemon that eats memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from venvd.daemon import gitexclude, projectfile, projects, turns

import memlimit
from conftest import Sandbox, wait_for

limited_daemon = memlimit.limited_daemon  # the fixture

#: The daemon's resident memory stays under this (it needs ~60 MB).
RSS_BOUND = 400 * 1024 * 1024


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _python_version(make: Callable[[Path], None]) -> Callable[[Sandbox], Path]:
    def build(box: Sandbox) -> Path:
        project = box.project("hostile", requirements="")
        make(project / ".python-version")
        return project
    return build


def _requirements(make: Callable[[Path], None]) -> Callable[[Sandbox], Path]:
    def build(box: Sandbox) -> Path:
        project = box.project("hostile", requirements=None)
        make(project / "requirements.txt")
        return project
    return build


def _included(make: Callable[[Path], None]) -> Callable[[Sandbox], Path]:
    def build(box: Sandbox) -> Path:
        project = box.project("hostile", requirements="-r more.txt\n")
        make(project / "more.txt")
        return project
    return build


def _pipfile_lock(box: Sandbox) -> Path:
    project = box.project("hostile", requirements=None, files={"Pipfile": "[packages]\n"})
    _zero(project / "Pipfile.lock")
    return project


def _huge_uv_lock(box: Sandbox) -> Path:
    project = box.project("hostile", requirements=None, files={
        "pyproject.toml": '[project]\nname = "hostile"\nversion = "0"\n'})
    # sparse: over the cap without taking the disk (hashing it whole would take seconds)
    subprocess.run(["truncate", "-s", str(projectfile.MAX_HASHED + 1),
                    str(project / "uv.lock")], check=True)
    return project


CASES = [
    pytest.param(_python_version(os.mkfifo), ".python-version", "FIFO",
                 id="python-version-fifo"),
    pytest.param(_python_version(_zero), ".python-version", "character device",
                 id="python-version-dev-zero"),
    pytest.param(_requirements(os.mkfifo), "requirements.txt", "FIFO",
                 id="requirements-fifo"),
    pytest.param(_requirements(_zero), "requirements.txt", "character device",
                 id="requirements-dev-zero"),
    pytest.param(_included(os.mkfifo), "more.txt", "FIFO", id="included-fifo"),
    pytest.param(_included(_zero), "more.txt", "character device", id="included-dev-zero"),
    pytest.param(_pipfile_lock, "Pipfile.lock", "character device", id="pipfile-lock-dev-zero"),
    pytest.param(_huge_uv_lock, "uv.lock", "larger than 64 MiB", id="uv-lock-over-cap"),
]


def _trusted_restart(box: Sandbox) -> psutil.Process:
    """Trust the projects folder (so the daemon plans and syncs them) and restart."""
    config = box.home / ".config" / "venvd" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'trusted_roots = ["{box.root / "projects"}"]\n')
    box.venvd("daemon", "restart")
    wait_for(box.alive, 30, "the restarted daemon")
    return psutil.Process(int(box.pid_file.read_text()))


def _stop(box: Sandbox, proc: psutil.Process) -> None:
    box.venvd("daemon", "stop")
    wait_for(lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, 30,
             "the daemon to stop")


@pytest.mark.parametrize(("build", "name", "why"), CASES)
def test_a_hostile_read_is_a_status_problem(
        limited_daemon: tuple[Sandbox, psutil.Process], build: Callable[[Sandbox], Path],
        name: str, why: str) -> None:
    box, _ = limited_daemon
    proc = _trusted_restart(box)
    hostile = build(box)
    good = box.project("good", requirements="")

    # more requests than the daemon has request threads: none may be held
    for _ in range(10):
        status = box.status(hostile)
        assert why in str(status["problem"]), status
        assert name in str(status["problem"]), status
    # a sync asked for fails saying why; another project still syncs
    refused = box.venvd("sync", str(hostile), "--wait", check=False)
    assert refused.returncode != 0
    assert why in refused.stdout + refused.stderr and name in refused.stdout + refused.stderr
    assert box.status(good)["problem"] is None
    box.venvd("sync", str(good), "--wait")
    assert box.status(good)["state"] == "synced"
    assert proc.memory_info().rss < RSS_BOUND
    _stop(box, proc)


def test_a_fifo_at_venv_lock_does_not_hold_the_sync(
        limited_daemon: tuple[Sandbox, psutil.Process]) -> None:
    box, _ = limited_daemon
    proc = _trusted_restart(box)
    hostile = box.project("hostile", requirements="")
    (hostile / ".venv").mkdir()
    os.mkfifo(hostile / ".venv" / ".lock")  # opening it for reading would wait for a writer
    good = box.project("good", requirements="")

    # the sync gets past the turn check (which probes .venv/.lock) and ends
    box.venvd("sync", str(hostile), "--wait")
    assert box.status(hostile)["state"] == "synced"
    box.venvd("sync", str(good), "--wait")
    assert box.status(good)["state"] == "synced"
    assert proc.memory_info().rss < RSS_BOUND
    _stop(box, proc)


def _finishes(call: Callable[[], object]) -> object:
    """*call*'s result (or its exception), run in a thread so that a blocking open fails the
    test instead of hanging it."""
    result: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "blocked"
    if errors:
        raise errors[0]
    return result[0]


def test_prompt_and_turn_probes_never_block_nor_raise(tmp_path: Path) -> None:
    env = tmp_path / "proj" / ".venv"
    env.mkdir(parents=True)
    os.mkfifo(env / "pyvenv.cfg")
    os.mkfifo(env / ".lock")
    assert _finishes(lambda: projects.env_prompt(str(env), str(tmp_path / "proj"))) == "proj"
    assert _finishes(lambda: turns.env_lock_held(str(env))) is False
    (env / "pyvenv.cfg").unlink()
    _zero(env / "pyvenv.cfg")
    assert _finishes(lambda: projects.env_prompt(str(env), str(tmp_path / "proj"))) == "proj"
    (env / "pyvenv.cfg").unlink()
    (env / "pyvenv.cfg").write_text("home = /usr\nprompt = mine\n")
    assert projects.env_prompt(str(env), str(tmp_path / "proj")) == "mine"


def test_hash_project_file_hashes_in_chunks_under_its_cap(tmp_path: Path) -> None:
    data = os.urandom(300 * 1024)  # several chunks
    (tmp_path / "lock").write_bytes(data)
    digest = hashlib.sha256()
    projectfile.hash_project_file(tmp_path / "lock", digest)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    with pytest.raises(projectfile.UnsafeFile, match="larger than 256 KiB"):
        projectfile.hash_project_file(tmp_path / "lock", hashlib.sha256(), 256 * 1024)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(projectfile.UnsafeFile, match="FIFO"):
        _finishes(lambda: projectfile.hash_project_file(tmp_path / "fifo", hashlib.sha256()))


def test_a_dev_zero_git_exclude_is_left_alone(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    exclude = project / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.unlink(missing_ok=True)
    # git reads it as empty (its size is 0); reading it to the end would never stop
    _zero(exclude)
    assert _finishes(lambda: gitexclude.keep_out_of_git(project)) is None
    # a regular one is written as before
    exclude.unlink()
    assert _finishes(lambda: gitexclude.keep_out_of_git(project)) == str(exclude)
    assert "/.venv" in exclude.read_text().splitlines()
