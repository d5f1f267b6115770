"""The engine protocol on plain data (no daemon, no tool runs): every engine declares what
the sync reads of it, the project markers agree with the engines', and each engine's argv."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from venvd.daemon import projects
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import ENGINES, Engine, markers
from venvd.daemon.engines.base import Job
from venvd.daemon.engines.conda import Conda
from venvd.daemon.engines.pdm import Pdm
from venvd.daemon.engines.poetry import Poetry
from venvd.daemon.engines.pyproject import install_requests
from venvd.daemon.engines.requirements import Requirements
from venvd.daemon.engines.uvlock import UvLock


def job_for(tmp_path: Path, **config: tuple[str, ...]) -> Job:
    return Job(tmp_path, tmp_path / "env", "python3", ProjectConfig(**config), "uv", (),
               lambda _: None, threading.Event())


def test_every_engine_declares_its_name_and_markers() -> None:
    names = [engine.name for engine in ENGINES]
    assert all(names) and len(set(names)) == len(names)
    for engine in ENGINES:
        assert isinstance(engine, Engine)
        assert engine.markers, f"{engine.name} declares no marker files"
        assert engine.steps >= 1


def test_project_markers_are_the_engines_markers() -> None:
    """``projects.MARKERS`` (stdlib-only, so written out by hand) holds exactly the engines'
    markers and ``.venvd.toml`` first (the only marker that counts in $HOME)."""
    assert projects.MARKERS[0] == ".venvd.toml"
    assert len(set(projects.MARKERS)) == len(projects.MARKERS)
    assert set(projects.MARKERS) == {".venvd.toml", *markers()}
    # a conda or requirement file beside docs belongs to the enclosing project
    assert {*Requirements.markers, *Conda.markers} == projects.REQUIREMENT_MARKERS


def test_environment_yaml_makes_a_project(tmp_path: Path) -> None:
    inner = tmp_path / "home" / "proj"
    inner.mkdir(parents=True)
    (inner / "environment.yaml").write_text("name: x\n")
    assert projects.find_project(str(inner), home=str(tmp_path / "home")) == str(inner)


def test_defaults_of_the_protocol(tmp_path: Path) -> None:
    """What the sync reads of an engine that does not say: it installs into an env venvd
    made, resolves nothing first, cannot tell whether a live env matches, and never waits
    for a relock."""
    engine = Requirements()
    assert not engine.creates_env and engine.stale_lock is None
    assert Engine().matches(job_for(tmp_path)) is None
    assert Engine().resolve(job_for(tmp_path)) is None
    with pytest.raises(NotImplementedError):
        Engine().install(job_for(tmp_path))
    assert Conda.creates_env
    for engine in (UvLock(), Poetry(), Pdm()):
        assert engine.stale_lock is not None and engine.lock_hint.startswith(engine.markers[0])


def test_job_argv_helpers(tmp_path: Path) -> None:
    job = job_for(tmp_path, extras=("a", "b"), groups=("dev",))
    assert job.python_args == ["--python", str(tmp_path / "env" / "bin" / "python")]
    assert job.extra_args() == ["--extra", "a", "--extra", "b"]
    assert job.extra_args("--extras") == ["--extras", "a", "--extras", "b"]
    assert job.group_args() == ["--group", "dev"]
    assert job_for(tmp_path).extra_args() == [] and job_for(tmp_path).group_args() == []
    # every ``uv pip sync`` (requirements, Pipfile.lock) allows an empty pin set
    assert job.pip_sync("--require-hashes", "pins.txt") == [
        "uv", "pip", "sync", "--allow-empty-requirements", "--require-hashes", "pins.txt"]


def test_uv_lock_argv(tmp_path: Path) -> None:
    """uv creates the env from the interpreter, and later syncs it with the env's own."""
    job = job_for(tmp_path, extras=("x",), groups=("dev", "docs"))
    wanted = ["--extra", "x", "--group", "dev", "--group", "docs"]
    assert UvLock.makes_venv
    assert UvLock()._sync(job) == ["uv", "sync", "--locked", "--python", "python3", *wanted]
    job.env.mkdir()
    assert UvLock()._sync(job) == [
        "uv", "sync", "--locked", "--python", job.env_python, *wanted]


def test_pyproject_install_requests_name_each_extra(tmp_path: Path) -> None:
    config = ProjectConfig(extras=("x", "y"))
    assert install_requests({"project": {"name": "p"}}, config)[-4:] == [
        "--extra", "x", "--extra", "y"]


def test_pdm_extras_are_groups(tmp_path: Path) -> None:
    job = job_for(tmp_path, extras=("x",), groups=("dev",))
    assert Pdm().command(job, "pdm") == ["pdm", "sync", "--clean", "--group", "x",
                                         "--group", "dev"]
