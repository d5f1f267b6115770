"""Every env gets its own pip, linked from one seeded env per interpreter (made once), and a
``uv.lock`` env is created by ``uv sync`` itself. Real daemon, real uv, offline."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from test_alongside import UV, activated, pip_of, run, synced, uv_project

from venvd.daemon import gitexclude, seeding, seedstage, sync
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines.base import Job

from conftest import Sandbox
from support.wheels import build_wheel


def seed_folders(box: Sandbox) -> list[Path]:
    return sorted((box.home / ".local/share/venvd/seeds").iterdir())


def pip_files(env: Path) -> dict[str, int]:
    """pip's own files in *env* (relative path -> inode)."""
    site = next(env.glob("lib/python*/site-packages"))
    return {str(p.relative_to(site)): p.stat().st_ino
            for p in (site / "pip").rglob("*.py") if "__pycache__" not in p.parts}


def test_envs_share_pip_files_but_each_has_its_own_pip(daemon: Sandbox) -> None:
    one = daemon.project("seedone", requirements="alpha==1.0\n")
    two = daemon.project("seedtwo", requirements="alpha==1.0\n")
    for project in (one, two):
        daemon.venvd("allow", str(project))
        synced(daemon, project)
    [seeds] = seed_folders(daemon)  # one interpreter: one seed folder, made once
    envs = [Path(os.path.realpath(p / ".venv")) for p in (one, two)]
    reference = pip_files(seeds)
    for env in envs:
        assert pip_files(env) == reference  # hard links of the seed folder's files
    for project, env in zip((one, two), envs):
        assert pip_of(project).startswith(str(env) + "/")
        # the script was written for this env: it runs, with this env's python
        out = run([str(project / ".venv/bin/pip"), "--version"], project, daemon.env)
        assert f"{env}/lib/" in out
        assert "seed = true" in (env / "pyvenv.cfg").read_text()
    # pip removed from one env is still in the other, and in the seed folder
    run([UV, "pip", "uninstall", "--quiet", "pip"], one, activated(daemon, one))
    assert not (one / ".venv/bin/pip").exists()
    assert pip_files(envs[1]) == reference == pip_files(seeds)
    run([str(two / ".venv/bin/pip"), "--version"], two, daemon.env)


def test_uv_sync_creates_a_uv_lock_env_that_keeps_its_pip(daemon: Sandbox) -> None:
    project = uv_project(daemon, "madebyuv", ["alpha==1.0"])
    output = daemon.request({"op": "logs", "dir": str(project), "limit": 1})["syncs"][0]["output"]
    commands = [line for line in output.splitlines() if line.startswith("$ ")]
    assert " sync --locked " in commands[0], output  # first, and it made the env
    # the only ``uv venv`` is the seed folder's (the first env of this interpreter)
    assert all("/venvd/seeds/" in c for c in commands if " venv " in c), output
    env = Path(os.path.realpath(project / ".venv"))
    assert pip_of(project).startswith(str(env) + "/")
    assert "prompt = madebyuv" in (env / "pyvenv.cfg").read_text()
    # the user's own uv sync into the live env keeps pip (seed = true)
    run([UV, "sync", "--locked", "--quiet"], project, activated(daemon, project))
    assert pip_of(project).startswith(str(env) + "/")


def test_a_hostile_project_name_gets_uv_venv_and_a_safe_prompt(tmp_path: Path) -> None:
    """uv sync names the env after ``[project] name``; one that would not be kept by
    ``safe_prompt`` (uv writes it unescaped) makes venvd create the env with ``uv venv``."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ok-name_1.x"\n')
    assert sync._prompt_is_safe(tmp_path)
    for bad in ("$(touch PWNED)", "-x"):
        (tmp_path / "pyproject.toml").write_text(f"[project]\nname = '{bad}'\n")
        assert not sync._prompt_is_safe(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.uv.workspace]\nmembers = []\n")
    assert not sync._prompt_is_safe(tmp_path)  # no name: uv would use the folder's


def test_a_script_for_a_long_env_path_runs(tmp_path: Path) -> None:
    """The kernel reads at most 127 bytes of ``#!``: a longer python path gets the
    ``/bin/sh`` form pip and uv write, and runs."""
    reference = tmp_path / "ref"
    (reference / "bin").mkdir(parents=True)
    script = reference / "bin" / "hello"
    script.write_text(f"#!{reference}/bin/python\nimport sys\nprint('hi from', sys.argv[0])\n")
    for env in (tmp_path / "short", tmp_path / ("long" * 40) / "env"):
        (env / "bin").mkdir(parents=True)
        (env / "bin" / "python").symlink_to(sys.executable)
        seeding._rewrite_script(script, env / "bin" / "hello", reference, env)
        out = subprocess.run([str(env / "bin" / "hello")], capture_output=True, text=True,
                             check=True).stdout
        assert out.startswith("hi from ") and out.strip().endswith("/bin/hello")


def test_a_repository_is_found_from_any_folder_in_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``keep_out_of_git`` asks git only where git could see a repository."""
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    assert not gitexclude._in_a_repository(plain)
    assert gitexclude.keep_out_of_git(plain) is None
    repo, worktree = tmp_path / "repo", tmp_path / "wt"
    (repo / ".git").mkdir(parents=True)
    (repo / "deep" / "er").mkdir(parents=True)
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /somewhere\n")  # a worktree's .git is a file
    assert gitexclude._in_a_repository(repo / "deep" / "er")
    assert gitexclude._in_a_repository(worktree)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert gitexclude._in_a_repository(plain)


def _environ(tmp_path: Path) -> dict[str, str]:
    """Offline, with a cache of the test's own (the seeds come with the interpreter)."""
    return dict(os.environ, UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_OFFLINE="1",
                UV_PYTHON_DOWNLOADS="never")


def _job(env: Path, python: str) -> Job:
    return Job(env.parent, env, python, ProjectConfig(), UV, (), lambda line: None,
               threading.Event(), _environ(env.parents[1]))


def test_pip_staged_while_the_env_is_made_moves_in_whole(tmp_path: Path,
                                                         pythons: list[Any]) -> None:
    """While ``uv sync`` makes the env, pip is linked into a staging folder from the seed
    folder, then moved in by renames: the same files (links of the seed folder's), scripts
    naming the env's python; a package the env has already (the lock's own setuptools) stays
    as it was installed."""
    older = [p for p in pythons if p.minor in ("3.9", "3.10", "3.11")]  # seeds with setuptools
    python = (older or pythons)[0].path
    envs = tmp_path / "data" / "envs"
    first = tmp_path / "data" / "first"
    run([UV, "venv", "--quiet", "--python", python, str(first)], tmp_path, _environ(tmp_path))
    reference = seeding.seed_folder(_job(first, python), envs)  # as the first sync makes it
    assert reference is not None
    env = tmp_path / "data" / "second"
    job = _job(env, python)
    staging = seedstage.stage(job, seeding.pyvenv_cfg(first)["version_info"], envs)
    assert staging is not None and not env.exists()  # staged before the env exists
    run([UV, "venv", "--quiet", "--python", python, str(env)], tmp_path, _environ(tmp_path))
    seeded_setuptools = any(reference.glob("lib/*/site-packages/setuptools-*.dist-info"))
    if seeded_setuptools:  # the lock's own setuptools, installed by the engine
        (tmp_path / "wheels").mkdir()
        build_wheel(tmp_path / "wheels", "setuptools", "99.0")
        run([UV, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"),
             "--no-index", "--find-links", str(tmp_path / "wheels"), "setuptools==99.0"],
            tmp_path, _environ(tmp_path))
    assert seedstage.seed_staged(job, envs, staging)
    assert job.output == []  # moved in, not linked again
    assert pip_files(env) == pip_files(reference)  # the seed folder's files, linked
    out = run([str(env / "bin" / "pip"), "--version"], tmp_path, _environ(tmp_path))
    assert f"{env}/lib/" in out
    assert "seed = true" in (env / "pyvenv.cfg").read_text()
    site = next(env.glob("lib/python*/site-packages"))
    if seeded_setuptools:
        assert [p.name for p in site.glob("setuptools-*.dist-info")] == [
            "setuptools-99.0.dist-info"]


def test_a_staging_that_does_not_fit_is_linked_as_before(tmp_path: Path,
                                                         pythons: list[Any]) -> None:
    if len(pythons) < 2:
        pytest.skip("needs two interpreters of different minor versions")
    one, two = pythons[0].path, pythons[-1].path
    envs = tmp_path / "data" / "envs"
    made = {}
    for python in (one, two):
        env = tmp_path / "data" / f"made-{Path(python).parents[1].name}"
        run([UV, "venv", "--quiet", "--python", python, str(env)], tmp_path, _environ(tmp_path))
        assert seeding.seed_folder(_job(env, python), envs) is not None
        made[python] = env
    # staged for one interpreter, the env made with the other (a .python-version edited
    # meanwhile): linked from the right seed folder instead
    env = tmp_path / "data" / "switched"
    staging = seedstage.stage(_job(env, one), seeding.pyvenv_cfg(made[one])["version_info"],
                              envs)
    assert staging is not None
    run([UV, "venv", "--quiet", "--python", two, str(env)], tmp_path, _environ(tmp_path))
    job = _job(env, two)
    assert seedstage.seed_staged(job, envs, staging)
    assert any("could not move pip in" in line for line in job.output), job.output
    out = run([str(env / "bin" / "pip"), "--version"], tmp_path, _environ(tmp_path))
    assert f"{env}/lib/" in out
