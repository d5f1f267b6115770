"""Environments follow their files on their own: real edits, real git, real events."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

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
