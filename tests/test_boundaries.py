"""Project boundaries: the project a folder belongs to is the one its own tool would use.

A folder whose only marker is a requirement file (``docs/requirements.txt``) belongs to the
project around it; a uv workspace member belongs to its workspace root; any other marker
folder is a project of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from venvd.daemon import projects
from venvd.daemon import workspace as uv_workspace

from conftest import Sandbox, wait_for
from support.index import SEEDS
from support.newsteps import no_client
from support.shells import Shell

UV = Path(sys.executable).with_name("uv")
BACKEND = (Path(__file__).parent / "support" / "backend.py").read_text()


# ---------------------------------------------------------------------------------------------
# the rule, on plain folders


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(text)
    return root


@pytest.fixture(params=["tomllib", "small reader"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every rule test runs with tomllib and with the reader the client falls back on when
    it runs without site-packages below Python 3.11."""
    monkeypatch.setattr(uv_workspace, "_pyprojects", {})
    if request.param == "small reader":
        monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib -> ImportError
    kind: str = request.param
    return kind


def owner_of(root: Path, rel: str, home: Path | None = None) -> str:
    found = projects.find_project(str(root / rel), home=str(home or root / "no-home"))
    assert found is not None, f"{rel}: no project"
    return str(Path(found).relative_to(root)) if found != str(root) else "."


PROJECT = '[project]\nname = "{name}"\nversion = "1"\n'


def test_requirement_only_folders_belong_to_the_project_around_them(
        tmp_path: Path, reader: str) -> None:
    repo = tree(tmp_path / "repo", {
        ".git/": "", "pyproject.toml": PROJECT.format(name="app"),
        "docs/requirements.txt": "sphinx\n", "docs/source/conf.py": "",
        "examples/one/requirements.txt": "", "examples/two/environment.yml": "",
        ".github/workflows/requirements.txt": "", "tests/requirements.txt": "",
        # projects of their own: a manifest, a lockfile, a Pipfile, a venvd config
        "tools/pyproject.toml": PROJECT.format(name="tools"), "locked/poetry.lock": "",
        "piped/Pipfile": "", "configured/.venvd.toml": "", "configured/requirements.txt": "",
        "tools/docs/requirements.txt": "",
    })
    for rel in ("docs", "docs/source", "examples/one", "examples/two", ".github/workflows",
                "tests"):
        assert owner_of(repo, rel) == ".", rel
    for rel in ("tools", "locked", "piped", "configured"):
        assert owner_of(repo, rel) == rel
    assert owner_of(repo, "tools/docs") == "tools"


def test_a_requirement_only_folder_alone_is_a_project(tmp_path: Path, reader: str) -> None:
    tree(tmp_path, {"lone/requirements.txt": "", "lone/sub/x.py": "",
                    # the repository root bounds the search: a clone inside another project
                    "outer/pyproject.toml": PROJECT.format(name="outer"),
                    "outer/clone/.git/": "", "outer/clone/requirements.txt": "",
                    "outer/clone/docs/requirements.txt": "",
                    # outside git, any enclosing project counts
                    "plain/requirements.txt": "", "plain/docs/requirements.txt": ""})
    assert owner_of(tmp_path, "lone/sub") == "lone"
    assert owner_of(tmp_path, "outer/clone") == "outer/clone"
    assert owner_of(tmp_path, "outer/clone/docs") == "outer/clone"
    assert owner_of(tmp_path, "plain/docs") == "plain"
    # $HOME is never a project by accident, nor the folder that encloses one below it
    home = tree(tmp_path / "home", {"requirements.txt": "", "notes/requirements.txt": ""})
    assert owner_of(home, "notes", home=home) == "notes"


WORKSPACE = """\
[project]
name = "root"
version = "1"
[tool.uv.workspace]
# members, written over several lines as people do
members = [
    "packages/*",  # every package
    'libs/core',
    "nested",
]
exclude = ["packages/legacy"]
"""


def test_uv_workspace_members_belong_to_the_workspace_root(tmp_path: Path, reader: str) -> None:
    ws = tree(tmp_path / "ws", {
        ".git/": "", "pyproject.toml": WORKSPACE, "uv.lock": "",
        "packages/a/pyproject.toml": PROJECT.format(name="a"),
        "packages/a/src/a/__init__.py": "",
        "packages/a/docs/requirements.txt": "",
        "packages/b/pyproject.toml": PROJECT.format(name="b"),
        "packages/legacy/pyproject.toml": PROJECT.format(name="legacy"),  # excluded
        "libs/core/pyproject.toml": PROJECT.format(name="core"),
        "libs/other/pyproject.toml": PROJECT.format(name="other"),  # not in members
        "packages/opted-out/pyproject.toml":
            PROJECT.format(name="o") + "[tool.uv]\nmanaged = false\n",
        "packages/no-project/pyproject.toml": "[tool.ruff]\nline-length = 99\n",
        # a member that is a workspace root itself: its own project, and its members' root
        "nested/pyproject.toml":
            PROJECT.format(name="nested") + '[tool.uv.workspace]\nmembers = ["inner"]\n',
        "nested/inner/pyproject.toml": PROJECT.format(name="inner"),
        # an example inside a member (a project, not a workspace): uv stops there
        "packages/b/examples/demo/pyproject.toml": PROJECT.format(name="demo"),
    })
    for rel in ("packages/a", "packages/a/src/a", "packages/a/docs", "packages/b",
                "libs/core"):
        assert owner_of(ws, rel) == ".", rel
    for rel in ("packages/legacy", "libs/other", "packages/opted-out", "packages/no-project",
                "nested", "packages/b/examples/demo"):
        assert owner_of(ws, rel) == rel, rel
    assert owner_of(ws, "nested/inner") == "nested"
    assert uv_workspace.workspace_members(str(ws)) == [
        "libs/core", "nested", "packages/a", "packages/b", "packages/no-project",
        "packages/opted-out"]


def test_workspace_globs_match_as_uv_matches_them(tmp_path: Path, reader: str) -> None:
    root = tmp_path / "we[ir]d *root"  # the root's own name is literal, never a pattern
    tree(root, {"pyproject.toml": '[project]\nname = "r"\nversion = "1"\n'
                                  '[tool.uv.workspace]\nmembers = ["./pkgs/p?", "deep/**"]\n'
                                  'exclude = ["pkgs/p[0-4]"]\n',
                "pkgs/p7/pyproject.toml": PROJECT.format(name="p7"),
                "pkgs/p3/pyproject.toml": PROJECT.format(name="p3"),
                "pkgs/p10/pyproject.toml": PROJECT.format(name="p10"),
                "deep/x/y/pyproject.toml": PROJECT.format(name="y")})
    assert owner_of(root, "pkgs/p7") == "."
    assert owner_of(root, "pkgs/p3") == "pkgs/p3"  # excluded
    assert owner_of(root, "pkgs/p10") == "pkgs/p10"  # ? is one character
    assert owner_of(root, "deep/x/y") == "."


def test_a_broken_pyproject_leaves_a_folder_its_own_project(tmp_path: Path,
                                                            reader: str) -> None:
    tree(tmp_path, {"ws/pyproject.toml": "[tool.uv.workspace\nmembers = [\"a\"",
                    "ws/a/pyproject.toml": PROJECT.format(name="a")})
    assert owner_of(tmp_path, "ws/a") == "ws/a"


# ---------------------------------------------------------------------------------------------
# a real uv workspace, synced by the daemon


def member(name: str, deps: list[str]) -> dict[str, str]:
    pyproject = (f'[project]\nname = "{name}"\nversion = "0.1"\nrequires-python = ">=3.9"\n'
                 f"dependencies = {json.dumps(deps)}\n"
                 '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                 'backend-path = ["_backend"]\n')
    module = name.replace("-", "_")
    return {"pyproject.toml": pyproject, f"{module}/__init__.py": f"NAME = {name!r}\n",
            "_backend/backend.py": BACKEND}


def make_workspace(box: Sandbox) -> Path:
    """A uv workspace: a root package that needs member ``lib-a``; ``lib-b``, a member
    nothing needs; an excluded folder and a vendored lock (projects of their own); docs
    with a requirement file for the docs build. Locked for real, offline."""
    files: dict[str, str] = {}
    root = member("wsroot", ["alpha==1.0", "lib-a"])
    root["pyproject.toml"] += ('[tool.uv.sources]\nlib-a = { workspace = true }\n'
                               '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
                               'exclude = ["packages/excluded"]\n')
    files.update(root)
    for name, deps in (("lib-a", ["beta"]), ("lib-b", ["gamma"])):
        files.update({f"packages/{name}/{rel}": text for rel, text in member(name, deps).items()})
    files.update({f"packages/excluded/{rel}": text
                  for rel, text in member("excluded", []).items()})
    files["vendored/poetry.lock"] = "# a separate project\n"
    files["docs/requirements.txt"] = "gamma\n"
    ws = box.project("ws", requirements=None, files=files)
    subprocess.run(["git", "init", "--quiet", str(ws)], check=True)
    subprocess.run([str(UV), "lock", "--quiet"], cwd=ws, env=box.env, check=True)
    return ws


def pip_list(python: Path, root: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (version, editable location relative to *root*)."""
    out = subprocess.run([str(UV), "pip", "list", "--format", "json", "--python", str(python)],
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for item in json.loads(out):
        if item["name"] in SEEDS:
            continue
        where = item.get("editable_project_location")
        found[item["name"]] = (item["version"], str(Path(where).relative_to(root))
                               if where else None)
    return found


def syncs(box: Sandbox, project: Path) -> list[dict[str, Any]]:
    reply = box.request({"op": "logs", "dir": str(project), "limit": 10})
    result: list[dict[str, Any]] = reply["syncs"]
    return result


def test_a_workspace_syncs_as_uv_sync_at_its_root(daemon: Sandbox) -> None:
    ws = make_workspace(daemon)
    member_a = ws / "packages" / "lib-a"
    daemon.venvd("allow", str(member_a))  # allowing from a member allows the root
    status = daemon.wait_state(ws)
    assert status["state"] == "synced", status
    assert status["engine"] == "uv-sync" and status["project"] == str(ws)
    assert daemon.status(member_a)["project"] == str(ws)
    assert not (member_a / ".venv").exists()

    # what uv itself installs, run at the root of a copy, into an env of its own
    copy = daemon.root / "ws-copy"
    shutil.copytree(ws, copy, ignore=shutil.ignore_patterns(".venv"), symlinks=True)
    ref_env = daemon.root / "ref-env"
    subprocess.run([str(UV), "sync", "--locked", "--quiet"], cwd=copy,
                   env={**daemon.env, "UV_PROJECT_ENVIRONMENT": str(ref_env)}, check=True)
    ours = pip_list(ws / ".venv" / "bin" / "python", ws)
    assert ours == pip_list(ref_env / "bin" / "python", copy)
    assert ours["lib-a"] == ("0.1", "packages/lib-a") and "lib-b" not in ours
    assert ours["wsroot"] == ("0.1", ".") and ours["alpha"] == ("1.0", None)

    # a member's manifest is watched: changing it makes the root sync again
    before = len(syncs(daemon, ws))
    pyproject = member_a / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# edited\n")
    # (asking for the logs queues nothing, unlike a status that finds the inputs changed)
    wait_for(lambda: len(syncs(daemon, ws)) > before, 120,
             "the workspace root to sync after a member's pyproject.toml changed")
    assert syncs(daemon, ws)[0]["result"] == "ok"
    assert daemon.wait_state(ws)["state"] == "synced"  # its bookkeeping may be ending


# ---------------------------------------------------------------------------------------------
# in real shells


def ready_snippet(box: Sandbox, folder: Path) -> Path:
    return Path(f"{box.env['XDG_RUNTIME_DIR']}/venvd/ready{folder}/.venvd-ready.sh")


@pytest.fixture
def workspace(daemon: Sandbox) -> Iterator[Path]:
    ws = make_workspace(daemon)
    daemon.venvd("allow", str(ws))
    status = daemon.wait_state(ws)
    assert status["state"] == "synced", status
    yield ws


def state(sh: Shell) -> tuple[str, str, str]:
    """What an activation changes: the env, venvd's state blob and PATH."""
    return sh.var("VIRTUAL_ENV"), sh.var("VENVD_STATE"), sh.var("PATH")


def test_cd_into_members_docs_and_nested_projects(daemon: Sandbox, workspace: Path,
                                                  shell_kind: str) -> None:
    ws = workspace
    env = f"{ws}/.venv"
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.run(f"cd {ws}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == env, 60, f"VIRTUAL_ENV={env}")
    at_root = state(sh)
    said = ""
    for folder in ("packages/lib-a", "docs", "packages/lib-b", "packages/lib-a/lib_a", "."):
        said += sh.run(f"cd {ws / folder}") + sh.prompt_output
        sh.run("true")
        said += sh.prompt_output
        assert state(sh) == at_root, folder  # nothing changes: the same env, the same state
    assert "not allowed" not in said, said

    # uv, run in a member of the activated workspace, finds the env it expects
    sh.run(f"cd {ws / 'packages' / 'lib-a'}")
    out = sh.run(f"{UV} run --frozen python -c 'import sys, lib_a; print(sys.prefix)'")
    assert "does not match" not in out, out
    assert Path(out.strip().splitlines()[-1]).resolve() == (ws / ".venv").resolve()

    # separate projects inside the workspace: not allowed, so the env goes and one line says so
    for folder in ("packages/excluded", "vendored"):
        said = sh.run(f"cd {ws / folder}") + sh.prompt_output
        sh.run("true")
        said += sh.prompt_output
        sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == "", 30, f"{folder}: no env")
        assert said.count(f"{ws / folder} is not allowed") == 1, said
    sh.run(f"cd {ws}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == env, 30, "back at the root")
    assert sh.var("VIRTUAL_ENV") == env


def test_docs_and_members_activate_from_snippets_alone(daemon: Sandbox, workspace: Path,
                                                       shell_kind: str) -> None:
    """The daemon keeps a snippet for docs/ and each member it has seen, a copy of the
    root's; with the export client made unreachable, cd into them from outside still
    activates, and after a deny it keeps them inactive."""
    ws = workspace
    inner = (ws / "docs", ws / "packages" / "lib-a")
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    for folder in (ws, *inner):
        sh.run(f"cd {folder}")
        sh.run("true")
    for folder in inner:
        assert ready_snippet(daemon, folder).read_text() == ready_snippet(daemon, ws).read_text()
    sh.run(f"cd {daemon.root}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == "", 30, "no env outside")
    sh.run(no_client(shell_kind))
    states = set()
    for folder in (ws, *inner):
        sh.run(f"cd {folder}")  # from outside: only the (alias) snippet can activate
        assert sh.var("VIRTUAL_ENV") == f"{ws}/.venv", folder
        states.add(sh.var("VENVD_STATE"))
        sh.run(f"cd {daemon.root}")
        assert sh.var("VIRTUAL_ENV") == "" and sh.var("VENVD_STATE") == ""
    assert len(states) == 1  # the very same activation, wherever it was entered

    daemon.venvd("deny", str(ws))  # the root's snippet and its aliases say "stay inactive"
    sh.run("true")  # the generation changed: this prompt goes (in vain) for the client
    for folder in inner:
        sh.run(f"cd {folder}")
        assert sh.var("VIRTUAL_ENV") == "", folder
        alias = ready_snippet(daemon, folder)  # (gone, once the root is no longer watched)
        assert not alias.exists() or alias.read_text() == ready_snippet(daemon, ws).read_text()


def test_an_alias_that_activates_goes_when_its_project_is_no_longer_watched(
        sandbox: Sandbox) -> None:
    """The hooks cannot check the .venvd.toml of the project an alias stands for: only a
    watched project (whose trust the daemon follows) keeps aliases that activate."""
    from test_watch import start_with_config

    ws = make_workspace(sandbox)
    other = sandbox.project("other", requirements="gamma\n")
    start_with_config(sandbox, "max_watched = 1\n")
    for project in (ws, other):
        sandbox.venvd("allow", str(project))
        assert sandbox.wait_state(project)["state"] == "synced"
    docs = ready_snippet(sandbox, ws / "docs")

    def export(folder: Path) -> None:  # as a hook would ask (pid 0: no live shell pins it)
        assert sandbox.request({"op": "export", "dir": str(folder), "pid": 0})["ok"]

    export(ws / "docs")  # the visit has the workspace watched again...
    wait_for(lambda: sandbox.status(ws)["watch"], 30, "the workspace to be watched")
    export(ws / "docs")  # ...and the next prompt has its snippets written
    assert docs.read_text() == ready_snippet(sandbox, ws).read_text()
    export(other)  # watching it, the daemon stops watching the workspace (max_watched = 1)
    wait_for(lambda: not docs.exists(), 30, "the alias to go with the workspace's watch")
    # nor does the root's own snippet stay: the hooks' fast path answers without the daemon,
    # so only for projects whose changes it sees (a shell that enters it asks again)
    assert not ready_snippet(sandbox, ws).exists()


def test_without_the_daemon_a_member_gets_its_workspace_env(daemon: Sandbox) -> None:
    """The client's own fallback applies the same rule; a daemon started anew forgets the
    aliases of the one before (its projects are not watched yet)."""
    ws = make_workspace(daemon)
    daemon.venvd("allow", str(ws))
    assert daemon.wait_state(ws)["state"] == "synced"
    assert daemon.request({"op": "export", "dir": str(ws / "docs"), "pid": 0})["ok"]
    alias = ready_snippet(daemon, ws / "docs")
    assert alias.exists()
    daemon.kill_daemon()
    member_a = ws / "packages" / "lib-a"
    out = subprocess.run([str(daemon.root / "bin" / "venvd"), "export", "bash"], cwd=member_a,
                         env={**daemon.env, "PWD": str(member_a)}, capture_output=True,
                         text=True, check=True)
    assert f"export VIRTUAL_ENV='{ws}/.venv';" in out.stdout.splitlines(), out
    assert "not allowed" not in out.stderr
    wait_for(daemon.alive, 30, "the client to start the daemon again")
    assert not alias.exists()


def test_a_folder_that_leaves_the_workspace_loses_its_alias(daemon: Sandbox) -> None:
    ws = make_workspace(daemon)
    daemon.venvd("allow", str(ws))
    assert daemon.wait_state(ws)["state"] == "synced"
    lib_b = ws / "packages" / "lib-b"
    assert daemon.request({"op": "export", "dir": str(lib_b), "pid": 0})["project"] == str(ws)
    alias = ready_snippet(daemon, lib_b)
    assert alias.read_text() == ready_snippet(daemon, ws).read_text()
    pyproject = ws / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'exclude = ["packages/excluded"]', 'exclude = ["packages/excluded", "packages/lib-b"]'))
    # (the lock is now out of date, so the sync fails, as uv sync --locked would)
    wait_for(lambda: not alias.exists(), 60, "lib-b's alias to go")
    assert daemon.status(lib_b)["project"] == str(lib_b)
    assert daemon.request({"op": "export", "dir": str(lib_b), "pid": 0})["project"] == str(lib_b)
