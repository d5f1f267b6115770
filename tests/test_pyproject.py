"""``pyproject.toml`` without a lock: the env holds exactly what a real ``uv sync`` installs in a
copy of the project, no file appears in the project, and what cannot work is named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from venvd.daemon import pythons
from venvd.daemon.config import ConfigError, ProjectConfig
from venvd.daemon.engines.pyproject import install_requests, requested
from venvd.daemon.errors import first_error_line

from conftest import Py, Sandbox, wait_for
from support.index import SEEDS, restart_daemon_with, serve
from support.wheels import build_simple_index, build_wheel, build_wheelhouse

UV = str(Path(sys.executable).with_name("uv"))
BACKEND = (Path(__file__).parent / "support" / "backend.py").read_text()
BUILD_SYSTEM = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["_backend"]
"""


@dataclass(frozen=True)
class Indexes:
    default: str  # every test wheel, as the default index
    pinned: str  # alpha 1.0 only: an explicit index that a source names


@pytest.fixture
def indexes(daemon: Sandbox, wheelhouse: Path, tmp_path: Path) -> Iterator[Indexes]:
    """The test wheels (plus delta, epsilon, zeta) as the default index over HTTP, and a second,
    explicit index holding only alpha 1.0; the daemon restarted to use them."""
    wheels = build_wheelhouse(tmp_path / "all-wheels")
    for name in ("delta", "epsilon", "zeta"):
        build_wheel(wheels, name, "1.0")
    (tmp_path / "pinned-wheels").mkdir()
    shutil.copy(wheelhouse / "alpha-1.0-py3-none-any.whl", tmp_path / "pinned-wheels")
    servers = [serve(build_simple_index(wheels, tmp_path / "index")),
               serve(build_simple_index(tmp_path / "pinned-wheels", tmp_path / "pinned"))]
    default, pinned = (f"http://127.0.0.1:{s.server_address[1]}/simple/" for s in servers)
    uv_toml = daemon.root / "uv-index.toml"
    uv_toml.write_text(f'index-url = "{default}"\npython-downloads = "never"\n')
    daemon.env.update(UV_CONFIG_FILE=str(uv_toml))
    restart_daemon_with(daemon)
    yield Indexes(default, pinned)
    for server in servers:
        server.shutdown()
        server.server_close()


def package(folder: Path, pyproject: str, module: Optional[str] = None) -> Path:
    """A package built by the in-tree backend (editable builds offline)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(pyproject)
    (folder / "_backend").mkdir(exist_ok=True)
    (folder / "_backend" / "backend.py").write_text(BACKEND)
    if module:
        (folder / module).mkdir(exist_ok=True)
        (folder / module / "__init__.py").write_text("")
    return folder


def git_repo(folder: Path, env: dict[str, str]) -> str:
    """A package in a local git repository; its ``file://`` URL."""
    package(folder, f'[project]\nname = "gitpkg"\nversion = "0.5"\n'
                    f'dependencies = ["zeta"]\n{BUILD_SYSTEM}', "gitpkg")
    for argv in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "gitpkg"]):
        subprocess.run(["git", *argv], cwd=folder, env=env, check=True)
    return folder.as_uri()


def files_in(project: Path) -> list[str]:
    """Every path under *project* but ``.venv`` (os.walk does not follow the link)."""
    found = []
    for folder, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if not (folder == str(project) and d == ".venv")]
        found += [os.path.relpath(os.path.join(folder, f), project) for f in dirs + files]
    return sorted(found)


def freeze(python: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run([UV, "pip", "freeze", "--python", str(python)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line.split("==")[0] not in SEEDS)


def uv_sync_reference(box: Sandbox, project: Path, python: str, args: list[str]) -> list[str]:
    """What a real ``uv sync`` installs in a copy of *project* beside it (so relative path
    sources reach the same folders), with the copy's path written as the project's."""
    copy = project.with_name(project.name + "-uv-sync")
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv"))
    env = {k: v for k, v in box.env.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run([UV, "sync", "--python", python, *args], cwd=copy, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return sorted(line.replace(str(copy), str(project))
                  for line in freeze(copy / ".venv" / "bin" / "python", env))


def workspace_root(root: Path) -> str:
    package(root / "packages" / "member", '[project]\nname = "member"\nversion = "0.2"\n'
                                          f'dependencies = ["beta"]\n{BUILD_SYSTEM}', "member")
    package(root / "packages" / "unused", '[project]\nname = "unused"\nversion = "0.3"\n'
                                          f'dependencies = ["delta"]\n{BUILD_SYSTEM}', "unused")
    return f"""\
[project]
name = "root"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["member"]
[dependency-groups]
dev = ["gamma"]
[tool.uv.sources]
member = {{ workspace = true }}
[tool.uv.workspace]
members = ["packages/*"]
{BUILD_SYSTEM}"""


#: name -> (pyproject.toml, what ``uv sync`` is told for the same [tool.venvd] additions)
SCENARIOS = {
    # editable project, its deps with path, git and index sources, the dev group (not lint),
    # plus the extra and group [tool.venvd] adds
    "sources": ("""\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["beta", "alpha", "lib", "gitpkg"]
[project.optional-dependencies]
docs = ["epsilon"]
[dependency-groups]
dev = ["gamma"]
lint = ["delta"]
extra = ["zeta"]
[tool.uv.sources]
lib = {{ path = "../lib", editable = true }}
gitpkg = {{ git = "{git}" }}
alpha = {{ index = "pinned" }}
[[tool.uv.index]]
name = "pinned"
url = "{pinned}"
explicit = true
[tool.venvd]
extras = ["docs"]
groups = ["extra"]
""" + BUILD_SYSTEM, ["--extra", "docs", "--group", "extra"]),
    # a build system, but [tool.uv] package = false: not installed; every group, the legacy
    # dev-dependencies among them; an override applies
    "all-groups": ("""\
[project]
name = "plain"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["gamma"]
[dependency-groups]
lint = ["delta"]
test = ["epsilon"]
[tool.uv]
package = false
default-groups = "all"
dev-dependencies = ["zeta"]
override-dependencies = ["epsilon; sys_platform == 'win32'"]
""" + BUILD_SYSTEM, []),
    # no build system: not installed; default-groups replaces dev; a constraint applies
    "listed-groups": ("""\
[project]
name = "script-like"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["beta"]
[dependency-groups]
dev = ["gamma"]
lint = ["delta"]
[tool.uv]
default-groups = ["lint"]
constraint-dependencies = ["alpha<2"]
""", []),
    # resolved for every Python requires-python allows, as uv lock does: alpha stays below 2
    # (for Python 3.9) although the env's newer Python would take alpha 2.0 on its own
    "universal": ("""\
[project]
name = "everywhere"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["alpha<2; python_version < '3.10'", "beta"]
""", []),
    # no [project] table at all: the dev group only
    "groups-only": ("""\
[dependency-groups]
dev = ["beta"]
lint = ["gamma"]
""", []),
    # a workspace root: the member it depends on editable, not the other one
    "workspace": ("{workspace}", []),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_pyproject_alone_installs_what_uv_sync_does(daemon: Sandbox, indexes: Indexes,
                                                    scenario: str) -> None:
    projects = daemon.root / "projects"
    package(projects / "lib", '[project]\nname = "lib"\nversion = "0.3"\n'
                              f'dependencies = ["alpha"]\n{BUILD_SYSTEM}', "lib")
    git = git_repo(daemon.root / "repos" / "gitpkg", daemon.env)
    text, uv_args = SCENARIOS[scenario]
    project = projects / scenario
    workspace = workspace_root(project) if scenario == "workspace" else ""
    package(project, text.format(git=git, pinned=indexes.pinned, workspace=workspace), "app")
    before = files_in(project)
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project)
    assert status["state"] == "synced", status
    assert status["engine"] == "uv-pyproject"
    # venvd wrote nothing into the project (no uv.lock): only the .venv link appeared
    assert files_in(project) == before
    assert (project / ".venv").is_symlink()
    got = freeze(project / ".venv" / "bin" / "python", daemon.env)
    want = uv_sync_reference(daemon, project, status["python"]["actual"], uv_args)
    assert got == want
    assert len(got) >= 2  # the comparison compared something


def test_sources_scenario_installs_the_pinned_index_and_the_sources(
        daemon: Sandbox, indexes: Indexes) -> None:
    """The comparison above holds because both got it right, not because both got it wrong."""
    projects = daemon.root / "projects"
    package(projects / "lib", '[project]\nname = "lib"\nversion = "0.3"\n'
                              f'dependencies = ["alpha"]\n{BUILD_SYSTEM}', "lib")
    git = git_repo(daemon.root / "repos" / "gitpkg", daemon.env)
    project = package(projects / "sources", SCENARIOS["sources"][0].format(
        git=git, pinned=indexes.pinned, workspace=""), "app")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    got = freeze(project / ".venv" / "bin" / "python", daemon.env)
    assert "alpha==1.0" in got  # from the explicit index, though the default has 2.0
    assert f"-e {project.as_uri()}" in got and f"-e {(projects / 'lib').as_uri()}" in got
    assert any(line.startswith(f"gitpkg @ git+{git}@") for line in got), got
    assert {"gamma==1.0", "epsilon==1.0", "zeta==1.0"} <= set(got)
    assert not any(line.startswith("delta") for line in got)


def test_an_edit_to_a_workspace_member_is_followed(daemon: Sandbox) -> None:
    project = daemon.root / "projects" / "ws"
    package(project, workspace_root(project), "root")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    python = project / ".venv" / "bin" / "python"
    assert "beta==1.0" in freeze(python, daemon.env)
    member = project / "packages" / "member" / "pyproject.toml"
    member.write_text(member.read_text().replace('["beta"]', '["alpha==1.0"]'))

    def followed() -> list[str]:
        got = freeze(python, daemon.env)
        return got if "alpha==1.0" in got and daemon.status(project)["state"] == "synced" else []

    got = wait_for(followed, 120, "the member's new dependency")
    assert not any(line.startswith("beta") for line in got), got


# ---------------------------------------------------------------------------------------------
# what cannot work is named: in `venvd status` and in the line a shell in the project sees


def failure_named(box: Sandbox, project: Path, *parts: str) -> dict[str, Any]:
    """Wait for the project to fail; what status reports (the failed sync's error, or the
    problem that keeps it from syncing) and the line a shell there gets (``venvd export``, as
    the hook runs it) both carry every one of *parts*."""
    status: dict[str, Any] = box.wait_state(project, ("failed",))
    last = status["last_sync"] or {}
    reported = last.get("error") or status["problem"] or ""
    for part in parts:
        assert part in reported, status
    lines: list[str] = []

    def told() -> bool:
        out = subprocess.run([str(box.root / "bin" / "venvd"), "export", "bash"], cwd=project,
                             env={**box.env, "PWD": str(project)}, capture_output=True,
                             text=True, timeout=60)
        lines.extend(ln for ln in out.stderr.splitlines() if f"{project.name}:" in ln)
        return bool(lines)

    wait_for(told, 60, "the failure at a prompt in the project")
    for part in parts:
        assert part in lines[0], lines
    return status


def test_a_git_dependency_that_cannot_be_fetched_is_named(daemon: Sandbox) -> None:
    url = (daemon.root / "repos" / "no-such-repo").as_uri()
    project = package(daemon.root / "projects" / "gitless", f"""\
[project]
name = "gitless"
version = "0.1"
dependencies = ["gitpkg"]
[tool.uv.sources]
gitpkg = {{ git = "{url}" }}
""")
    daemon.venvd("allow", str(project))
    status = failure_named(daemon, project, url, "does not appear to be a git repository")
    assert not (project / ".venv").exists(), status


@pytest.mark.parametrize(("where", "why"), [("file", "not found"),
                                            ("http", "Connection refused")])
def test_a_url_dependency_that_cannot_be_fetched_is_named(daemon: Sandbox, where: str,
                                                          why: str) -> None:
    # http: nothing listens on port 9 of this machine (refused at once, no network needed);
    # the retry offline fails too, and the refusal, not the empty cache, is what is named
    url = ("http://127.0.0.1:9/thing-1.0-py3-none-any.whl" if where == "http"
           else (daemon.root / "gone" / "thing-1.0-py3-none-any.whl").as_uri())
    project = package(daemon.root / "projects" / "urlless",
                      f'[project]\nname = "urlless"\nversion = "0.1"\n'
                      f'dependencies = ["thing @ {url}"]\n')
    daemon.venvd("allow", str(project))
    failure_named(daemon, project, url, why)


def test_a_failing_build_backend_is_named_by_its_error_not_a_traceback(
        daemon: Sandbox) -> None:
    project = package(daemon.root / "projects" / "unbuildable",
                      f'[project]\nname = "unbuildable"\nversion = "0.1"\n{BUILD_SYSTEM}')
    (project / "_backend" / "backend.py").write_text(BACKEND + """
def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    print("compiling...")
    raise RuntimeError("no C compiler found: install gcc")
""")
    daemon.venvd("allow", str(project))
    status = failure_named(daemon, project, "RuntimeError: no C compiler found: install gcc",
                           "unbuildable")
    assert "Traceback" not in status["last_sync"]["error"], status


def test_python_version_outside_requires_python_names_both(daemon: Sandbox,
                                                           pythons: list[Py]) -> None:
    if len(pythons) < 2:
        pytest.skip(f"two Python versions are needed, found {[p.version for p in pythons]}")
    old, new = pythons[0], pythons[-1]
    project = daemon.project("too-old", python=old.minor, requirements=None, files={
        "pyproject.toml": f'[project]\nname = "too-old"\nversion = "0.1"\n'
                          f'requires-python = ">={new.minor}"\ndependencies = ["gamma"]\n'})
    # allowed from a shell of its own: `venvd allow` says the problem there, and that
    # shell's prompt does not repeat it (the shell the test is, below, has not heard it)
    allowed = subprocess.run(["sh", "-c", '"$0" allow "$1"; :', str(daemon.root / "bin" / "venvd"),
                              str(project)], env=daemon.env, capture_output=True, text=True,
                             timeout=120, check=True)
    message = f".python-version asks for {old.minor} but requires-python is >={new.minor}"
    assert message in allowed.stdout, allowed
    status = failure_named(daemon, project, message)
    assert status["problem"] == message
    assert message in daemon.venvd("status", str(project)).stdout
    # fixed: the same project syncs
    (project / ".python-version").write_text(new.minor + "\n")
    wait_for(lambda: daemon.status(project)["state"] == "synced", 120, "the fixed project")


def test_first_error_line_finds_the_exception_of_a_traceback() -> None:
    chained = """\
error: Failed to build `x @ file:///p`
  cause: Call to `setuptools.build_meta.build_editable` failed (exit status: 1)

         [stderr]
         Traceback (most recent call last):
           File "<string>", line 1, in <module>
         KeyError: 'version'

         During handling of the above exception, another exception occurred:

         Traceback (most recent call last):
           File "setup.py", line 3, in <module>
             raise ValueError("version missing from setup.cfg")
         ValueError: version missing from setup.cfg

hint: This usually indicates a problem with the package or the build environment.
"""
    assert first_error_line(chained) == (
        "Failed to build `x @ file:///p`: ValueError: version missing from setup.cfg")
    compiler = ("error: Failed to build `x`\n  cause: The build backend returned an error\n"
                "         [stderr]\n         x.c:1:10: fatal error: Python.h: No such file\n"
                "         error: command '/usr/bin/gcc' failed with exit code 1\n")
    assert first_error_line(compiler) == (
        "Failed to build `x`: x.c:1:10: fatal error: Python.h: No such file")
    assert first_error_line("Traceback (most recent call last):\n  File x\nOSError: gone") == (
        "OSError: gone")


@pytest.mark.parametrize(("spec", "lowest"), [
    (">=3.9", "3.9"), ("~=3.10", "3.10"), (">=3.9.2,<4", "3.9.2"), ("==3.11.*", "3.11"),
    (">3.8", "3.9"), (">=2.7", "3.6"), ("<3.6", None), ("not a specifier", None), (None, None)])
def test_the_lower_bound_uv_lock_resolves_from(spec: Optional[str],
                                               lowest: Optional[str]) -> None:
    assert pythons.lowest_allowed(spec) == lowest


def test_what_is_requested_follows_uv_sync_and_the_config() -> None:
    data = {"project": {"name": "x", "optional-dependencies": {"Docs_Extra": []}},
            "dependency-groups": {"dev": [], "lint": []}, "build-system": {}}
    config = ProjectConfig(extras=("docs-extra",), groups=("lint", "dev"), source=".venvd.toml")
    assert requested(data, config) == (True, ["--group", "pyproject.toml:dev",
                                              "--group", "pyproject.toml:lint"])
    assert install_requests(data, config) == ["--editable", ".[docs-extra]"]
    data["tool"] = {"uv": {"package": False, "default-groups": []}}
    assert install_requests(data, config) == [
        "--requirements", "pyproject.toml", "--extra", "docs-extra"]
    assert requested(data, ProjectConfig()) == (True, [])
    with pytest.raises(ConfigError, match="extra 'nope' is not defined"):
        requested(data, ProjectConfig(extras=("nope",), source=".venvd.toml"))
    # no [project] table: groups only (a virtual workspace root)
    assert requested({"dependency-groups": {"dev": []}}, ProjectConfig()) == (
        False, ["--group", "pyproject.toml:dev"])
