"""Every lock format synced for real and exactly, offline from the wheels the tests build."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from venvd.daemon import projects
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import conda
from venvd.daemon.engines.base import Job
from venvd.daemon.engines.pdm import Pdm
from venvd.daemon.engines.pipfile import requirement_lines
from venvd.daemon.engines.poetry import Poetry

from conftest import Sandbox, wait_for
from support.index import installed, restart_daemon_with, serve
from support.wheels import build_simple_index


def synced(box: Sandbox, project: Path) -> dict[str, object]:
    status = box.wait_state(project)
    assert status["state"] == "synced", status
    return status


def wheel_hash(wheelhouse: Path, name: str, version: str) -> str:
    data = (wheelhouse / f"{name}-{version}-py3-none-any.whl").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_pipfile_lock_pins_and_hashes(daemon: Sandbox, wheelhouse: Path) -> None:
    lock = {"_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6, "requires": {},
                      "sources": []},
            "default": {"alpha": {"version": "==1.0",
                                  "hashes": [wheel_hash(wheelhouse, "alpha", "1.0")]},
                        "beta": {"version": "==1.0",
                                 "hashes": [wheel_hash(wheelhouse, "beta", "1.0")]}},
            "develop": {"gamma": {"version": "==1.0",
                                  "hashes": [wheel_hash(wheelhouse, "gamma", "1.0")]}}}
    project = daemon.project("pipenv-style", requirements=None,
                             files={"Pipfile.lock": json.dumps(lock)})
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["engine"] == "pipfile-lock" and status["lockfile"] == "Pipfile.lock"
    assert installed(project) == {"alpha": "1.0", "beta": "1.0"}

    # a hash that does not match: the sync fails and the previous env stays, importable
    lock["default"]["alpha"]["hashes"] = ["sha256:" + "0" * 64]
    lock["default"]["alpha"]["version"] = "==2.0"
    (project / "Pipfile.lock").write_text(json.dumps(lock))
    failed = daemon.wait_state(project, ("failed",))
    assert failed["last_sync"]["result"] == "failed"
    assert "hash" in failed["last_sync"]["error"].lower(), failed["last_sync"]
    assert installed(project) == {"alpha": "1.0", "beta": "1.0"}
    logs = daemon.venvd("logs", str(project)).stdout
    assert "pip sync" in logs


def test_pipfile_lock_lines() -> None:
    lock = {"default": {"a": {"version": "==1", "hashes": ["sha256:ab"], "markers":
                              "python_version >= '3.8'", "extras": ["x"]}},
            "develop": {"d": {"path": ".", "editable": True},
                        "g": {"git": "https://example.invalid/g.git", "ref": "abc"}}}
    assert requirement_lines(lock, dev=False) == [
        "a[x]==1 ; python_version >= '3.8' --hash=sha256:ab"]
    # a path or git entry has no hash; the others keep theirs (uv checks them either way)
    assert requirement_lines(lock, dev=True) == [
        "a[x]==1 ; python_version >= '3.8' --hash=sha256:ab", "-e .",
        "g @ git+https://example.invalid/g.git@abc"]


def test_requirements_with_includes_in_a_folder(daemon: Sandbox) -> None:
    project = daemon.project("layered", requirements=None, files={
        "requirements/base.txt": "alpha==1.0\n",
        "requirements/dev.txt": "-r base.txt\ngamma\n",
        ".venvd.toml": 'requirements = ["requirements/dev.txt"]\n',
        "setup.cfg": "",
    })
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["lockfile"] == "requirements/dev.txt"
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    # the included file lives in a watched folder: editing it is followed
    (project / "requirements/base.txt").write_text("alpha==2.0\nbeta\n")
    wait_for(lambda: installed(project).get("beta") == "1.0", 60, "base.txt's edit")
    assert installed(project) == {"alpha": "2.0", "beta": "1.0", "gamma": "1.0"}


def test_compiled_requirements_are_installed_exactly_as_pinned(daemon: Sandbox) -> None:
    # beta needs alpha>=1.0; a compiled file pins alpha 1.0 although 2.0 exists
    project = daemon.project("frozen", requirements="alpha==1.0\nbeta==1.0\n")
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "beta": "1.0"}


def test_pyproject_alone_installs_the_project_editable_with_extras(daemon: Sandbox) -> None:
    pyproject = """\
[project]
name = "myapp"
version = "0.1"
dependencies = ["beta"]
[project.optional-dependencies]
dev = ["gamma"]
[build-system]
requires = []
build-backend = "backend"
backend-path = ["_backend"]
[tool.venvd]
extras = ["dev"]
"""
    project = daemon.project("myapp", requirements=None, files={
        "pyproject.toml": pyproject, "myapp/__init__.py": "VALUE = 1\n",
        "_backend/backend.py": (Path(__file__).parent / "support/backend.py").read_text()})
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["engine"] == "uv-pyproject"
    pins = installed(project)
    assert pins["alpha"] == "2.0" and pins["beta"] == "1.0" and pins["gamma"] == "1.0"
    out = subprocess.run([str(project / ".venv/bin/python"), "-c",
                          "import myapp; print(myapp.__file__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(project / "myapp" / "__init__.py")


def test_uv_lock(daemon: Sandbox) -> None:
    project = daemon.project("uvproj", requirements=None, files={"pyproject.toml": """\
[project]
name = "uvproj"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["alpha==1.0", "gamma"]
"""})
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "lock", "--quiet"], cwd=project, env=daemon.env, check=True)
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["engine"] == "uv-sync"
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    # uv itself agrees that this is the project's environment
    check = subprocess.run([str(uv), "sync", "--locked", "--check"], cwd=project,
                           env={**daemon.env, "VIRTUAL_ENV": str(project / ".venv")},
                           capture_output=True, text=True)
    assert "does not match the project environment" not in check.stderr, check.stderr


def test_drift_is_reported_and_a_sync_removes_it(daemon: Sandbox) -> None:
    project = daemon.project("drifty", requirements="alpha==1.0\n")
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "pip", "install", "--quiet", "--python",
                    str(project / ".venv/bin/python"), "gamma", "alpha==2.0"],
                   env=daemon.env, check=True)
    status = daemon.status(project)
    assert status["state"] == "drifted"
    assert status["drift"] == ["~ alpha 2.0 (lock: 1.0)", "+ gamma 1.0 (not in the lock)"]
    result = daemon.venvd("sync", str(project), "--wait")
    assert "synced" in result.stdout
    assert installed(project) == {"alpha": "1.0"}
    assert daemon.status(project)["state"] == "synced"


def test_missing_tool_is_named_with_how_to_get_it(daemon: Sandbox) -> None:
    if shutil.which("poetry", path=daemon.env["PATH"]):
        pytest.skip("poetry is installed here")
    project = daemon.project("poetic", requirements=None, files={
        "pyproject.toml": "[tool.poetry]\nname = 'p'\n", "poetry.lock": "# empty\n"})
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project, ("failed",))
    assert "poetry.lock needs Poetry" in status["problem"]
    assert "uv tool install poetry" in status["problem"]


def job_for(tmp_path: Path, **config: tuple[str, ...]) -> Job:
    return Job(tmp_path, tmp_path / "env", "python3", ProjectConfig(**config), "uv", (),
               lambda _: None, threading.Event())


def test_poetry_and_pdm_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mocked: which Poetry version is installed (neither tool runs offline here)."""
    job = job_for(tmp_path, extras=("x",), groups=("dev", "test"))
    poetry = Poetry()
    monkeypatch.setattr("venvd.daemon.engines.tools.tool_version", lambda _: (2, 1, 0))
    assert poetry.command(job, "poetry") == [
        "poetry", "sync", "--no-interaction", "--no-ansi", "--extras", "x", "--with", "dev,test"]
    monkeypatch.setattr("venvd.daemon.engines.tools.tool_version", lambda _: (1, 8, 3))
    assert poetry.command(job, "poetry")[:3] == ["poetry", "install", "--sync"]
    assert Pdm().command(job, "pdm") == [
        "pdm", "sync", "--clean", "--group", "x", "--group", "dev",
        "--group", "test"]


def test_poetry_lock_through_poetry(daemon: Sandbox, tool_path: Callable[[str], None],
                                    simple_index: str) -> None:
    tool_path("poetry")
    restart_daemon_with(daemon)
    project = daemon.project("poetic", requirements=None, files={"pyproject.toml": f"""\
[project]
name = "poetic"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["beta", "gamma"]

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "local"
url = "{simple_index}"
priority = "primary"
"""})
    env = {**daemon.env, "POETRY_CACHE_DIR": str(daemon.root / "poetry-cache"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    subprocess.run(["poetry", "lock", "--no-interaction"], cwd=project, env=env, check=True,
                   capture_output=True)
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["engine"] == "poetry"
    assert installed(project) == {"alpha": "2.0", "beta": "1.0", "gamma": "1.0"}
    assert status["last_sync"]["added"] == 3


def test_pdm_lock_through_pdm(daemon: Sandbox, tool_path: Callable[[str], None],
                              wheelhouse: Path) -> None:
    tool_path("pdm")
    restart_daemon_with(daemon)
    project = daemon.project("pdmish", requirements=None, files={"pyproject.toml": f"""\
[project]
name = "pdmish"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["beta"]

[tool.pdm]
distribution = false

[[tool.pdm.source]]
name = "pypi"
url = "{wheelhouse.as_uri()}"
type = "find_links"
"""})
    env = {**daemon.env, "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"}
    subprocess.run(["pdm", "lock"], cwd=project, env=env, check=True, capture_output=True)
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert status["engine"] == "pdm"
    assert installed(project) == {"alpha": "2.0", "beta": "1.0"}


def test_conda_command_and_missing_tool(daemon: Sandbox, tmp_path: Path) -> None:
    """No conda, mamba or micromamba can run offline here: the real path is skipped; the
    command line, the missing-tool message and the conda exports are checked."""
    assert conda.command("/x/micromamba", Path("/e"), Path("/p/environment.yml")) == [
        "/x/micromamba", "create", "--yes", "--prefix", "/e", "--file", "/p/environment.yml"]
    assert conda.command("/x/conda", Path("/e"), Path("/p/environment.yml"))[:3] == [
        "/x/conda", "env", "create"]
    if any(shutil.which(t, path=daemon.env["PATH"]) for t in conda.TOOLS):
        pytest.skip("a conda tool is installed here")
    project = daemon.project("condaish", requirements=None, files={
        "environment.yml": "name: x\ndependencies:\n  - python=3.12\n"})
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project, ("failed",))
    assert "needs conda, mamba or micromamba" in status["problem"]
    # a conda prefix is activated with conda's variables, not VIRTUAL_ENV
    prefix = tmp_path / "prefix"
    (prefix / "conda-meta").mkdir(parents=True)
    exports = projects.activation(str(project), str(prefix))
    assert exports["CONDA_PREFIX"] == str(prefix) and "VIRTUAL_ENV" not in exports
    assert exports["PATH"] == f"prepend {prefix}/bin"


def test_unreachable_index_syncs_offline_from_the_cache(daemon: Sandbox,
                                                        wheelhouse: Path, tmp_path: Path) -> None:
    root = build_simple_index(wheelhouse, tmp_path / "index")
    server = serve(root)
    url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    uv_toml = daemon.root / "uv-index.toml"
    uv_toml.write_text(f'index-url = "{url}"\npython-downloads = "never"\n')
    daemon.env.update(UV_CONFIG_FILE=str(uv_toml), UV_CACHE_DIR=str(daemon.root / "uv-cache"))
    restart_daemon_with(daemon)
    first = daemon.project("online", requirements="beta\n")
    daemon.venvd("allow", str(first))
    synced(daemon, first)
    assert installed(first) == {"alpha": "2.0", "beta": "1.0"}

    server.shutdown()
    server.server_close()
    second = daemon.project("offline", requirements="beta\n")
    daemon.venvd("allow", str(second))
    status = synced(daemon, second)
    assert installed(second) == {"alpha": "2.0", "beta": "1.0"}
    assert "retried offline" in daemon.venvd("logs", str(second)).stdout, status
