"""venvd beside the tools people already use: pip in the env, uv/Poetry/PDM run by hand in an
activated project, git, and a ``.venv`` venvd did not make. Real daemon, real tools, offline."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Sandbox, wait_for
from support.index import installed, restart_daemon_with

UV = str(Path(sys.executable).with_name("uv"))

UV_PROJECT = """\
[project]
name = "{name}"
version = "0.1"
requires-python = ">=3.9"
dependencies = {deps}
"""


def activated(box: Sandbox, project: Path) -> dict[str, str]:
    """The environment of a shell in which venvd activated *project*."""
    env = str(project / ".venv")
    return {**box.env, "VIRTUAL_ENV": env,
            "PATH": os.pathsep.join([env + "/bin", box.env["PATH"]])}


def run(argv: list[str], project: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def uv_project(box: Sandbox, name: str, deps: list[str]) -> Path:
    project = box.project(name, requirements=None, files={
        "pyproject.toml": UV_PROJECT.format(name=name, deps=deps)})
    run([UV, "lock", "--quiet"], project, box.env)
    box.venvd("allow", str(project))
    synced(box, project)
    return project


def settled(box: Sandbox, project: Path) -> dict[str, Any]:
    """The project's status once it has stopped moving (a sync that waits for a tool to
    finish is ``waiting`` too, but on its way)."""
    def check() -> dict[str, Any] | None:
        status = box.status(project)
        if status["state"] == "waiting":
            return None if status["problem"].startswith("waiting for ") else status
        return status if status["state"] in ("synced", "failed", "drifted") else None

    found: dict[str, Any] = wait_for(check, 120, f"{project.name} to settle")
    return found


def synced(box: Sandbox, project: Path) -> dict[str, Any]:
    status = settled(box, project)
    assert status["state"] == "synced", status
    return status


def syncs(box: Sandbox, project: Path) -> list[dict[str, Any]]:
    reply = box.request({"op": "logs", "dir": str(project), "limit": 50})
    found: list[dict[str, Any]] = reply["syncs"]
    return found


def news(box: Sandbox, project: Path) -> list[str]:
    """What a shell arriving in *project* now is told (the project's recent news)."""
    reply = box.request({"op": "export", "dir": str(project), "shell": "bash",
                         "pid": os.getpid()})
    found: list[str] = reply.get("messages", [])
    return found


def pip_of(project: Path) -> str:
    """Where the pip that ``python -m pip`` runs in the env lives (symlinks resolved)."""
    out = subprocess.run([str(project / ".venv/bin/python"), "-m", "pip", "--version"],
                         capture_output=True, text=True, check=True).stdout
    return os.path.realpath(out.split(" from ", 1)[1].split(" (python", 1)[0])


# ---------------------------------------------------------------------------------------------
# pip in the env


def test_the_env_has_its_own_pip_and_what_it_installs_is_drift(daemon: Sandbox,
                                                               wheelhouse: Path) -> None:
    project = uv_project(daemon, "pipped", ["alpha==1.0"])
    target = os.path.realpath(project / ".venv")
    assert (project / ".venv/bin/pip").is_file()
    assert pip_of(project).startswith(target + "/")  # python -m pip is the env's own
    assert daemon.status(project)["drift"] == []  # pip itself is no drift
    env = {**activated(daemon, project), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(["pip", "install", "--quiet", "gamma"], project, env)  # the activated shell's pip
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    status = daemon.status(project)
    assert status["state"] == "drifted"
    assert status["drift"] == ["+ gamma 1.0 (not in the lock)"]
    daemon.venvd("sync", str(project), "--wait")
    assert installed(project) == {"alpha": "1.0"}
    assert daemon.status(project)["state"] == "synced"
    # pip survived the sync, into the new state
    assert pip_of(project).startswith(os.path.realpath(project / ".venv") + "/")


def test_uv_pip_install_is_drift_and_a_sync_keeps_pip(daemon: Sandbox) -> None:
    project = daemon.project("uvpipped", requirements="alpha==1.0\n")
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    run([UV, "pip", "install", "--quiet", "alpha==2.0"], project, activated(daemon, project))
    status = daemon.status(project)
    assert status["state"] == "drifted"
    assert status["drift"] == ["~ alpha 2.0 (lock: 1.0)"]
    daemon.venvd("sync", str(project), "--wait")
    assert installed(project) == {"alpha": "1.0"}
    assert pip_of(project).startswith(os.path.realpath(project / ".venv") + "/")


def test_an_env_without_pip_gets_it_at_the_next_sync(daemon: Sandbox) -> None:
    """States built before envs had their own pip get it without a rebuild."""
    project = daemon.project("nopip", requirements="alpha==1.0\n")
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    state_folder = os.readlink(project / ".venv")
    run([UV, "pip", "uninstall", "--quiet", "pip"], project, activated(daemon, project))
    assert not (project / ".venv/bin/pip").exists()
    assert daemon.status(project)["state"] == "synced"  # pip is never drift
    daemon.venvd("sync", str(project), "--wait")
    assert os.readlink(project / ".venv") == state_folder
    assert pip_of(project).startswith(os.path.realpath(project / ".venv") + "/")


# ---------------------------------------------------------------------------------------------
# the project's own tool and venvd take turns


def test_uv_add_and_remove_ten_times_never_fail_and_adopt_uvs_env(daemon: Sandbox) -> None:
    project = uv_project(daemon, "uvturns", ["alpha==1.0"])
    state_folder = os.readlink(project / ".venv")
    before = len(syncs(daemon, project))
    env = activated(daemon, project)
    for i in range(10):
        if i % 2 == 0:
            run([UV, "add", "--quiet", "gamma"], project, env)
        else:
            run([UV, "remove", "--quiet", "gamma"], project, env)
    run([UV, "add", "--quiet", "beta"], project, env)
    status = synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "beta": "1.0"}
    records = syncs(daemon, project)
    assert [r for r in records if r["result"] != "ok"] == []
    assert status["last_sync"]["result"] == "ok"
    assert len(records) > before  # the new lock states were recorded...
    # ...by adopting the env uv had synced: no env was built beside it
    assert os.readlink(project / ".venv") == state_folder
    assert all("adopted" in r["output"] for r in records[:len(records) - before])
    assert not [m for m in news(daemon, project) if "failed" in m]
    # uv agrees that venvd's env is the project's env, in sync
    run([UV, "sync", "--locked", "--check"], project, env)


def test_uv_add_at_a_real_bash_prompt(daemon: Sandbox) -> None:
    """As a user would: bash with the hook, in the project, pip and uv at its prompt."""
    project = uv_project(daemon, "uvbash", ["alpha==1.0"])
    sh = daemon.shell("bash", cwd=daemon.root)
    sh.run(f"cd {project}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 60, "activation")
    assert sh.run("command -v pip").strip() == f"{project}/.venv/bin/pip"
    assert sh.run("python -m pip --version").startswith("pip ")
    for _ in range(3):
        sh.run(f"{UV} add --quiet gamma")
        sh.run(f"{UV} remove --quiet gamma")
    sh.run(f"{UV} add --quiet beta")
    synced(daemon, project)
    sh.run("true")  # one more prompt: any news is told by now
    said = "".join(sh.transcript)
    # news of a finished sync, or of a switch back to a lock state built before (gamma added
    # then removed brings the first lock back), is fine; no other line (no failure) is
    told = said.replace(f"venvd: synced {project.name}", "").replace(
        f"venvd: switched {project.name}", "")
    assert "venvd:" not in told, said
    assert installed(project) == {"alpha": "1.0", "beta": "1.0"}


def test_a_manifest_edited_without_locking_waits_for_the_lock(daemon: Sandbox) -> None:
    project = uv_project(daemon, "uvwait", ["alpha==1.0"])
    (project / "pyproject.toml").write_text(
        UV_PROJECT.format(name="uvwait", deps=["alpha==1.0", "gamma"]))
    status = settled(daemon, project)
    assert status["state"] == "waiting", status
    assert status["problem"] == "uv.lock is out of date with pyproject.toml; run 'uv lock'"
    assert status["last_sync"]["result"] == "ok"  # no failure recorded
    assert installed(project) == {"alpha": "1.0"}  # the last good env stays
    assert daemon.venvd("status", str(project)).stdout.count("run 'uv lock'") == 1
    run([UV, "lock", "--quiet"], project, daemon.env)
    synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    assert [r for r in syncs(daemon, project) if r["result"] != "ok"] == []
    assert not [m for m in news(daemon, project) if "failed" in m]


def test_a_sync_waits_while_uv_holds_the_envs_lock(daemon: Sandbox) -> None:
    """uv holds ``<env>/.lock`` through ``uv add``/``uv sync``; holding it here, as uv does,
    must keep venvd from syncing until it is let go."""
    project = uv_project(daemon, "uvlocked", ["alpha==1.0"])
    count = len(syncs(daemon, project))
    fd = os.open(project / ".venv" / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        (project / "pyproject.toml").write_text(
            UV_PROJECT.format(name="uvlocked", deps=["alpha==2.0"]))
        run([UV, "lock", "--quiet"], project, daemon.env)
        status = wait_for(lambda: _waiting_for(daemon.status(project)), 60, "venvd to wait")
        assert status["problem"] == "waiting for uv (it holds the env's lock) to finish"
        assert len(syncs(daemon, project)) == count  # nothing done meanwhile
        assert installed(project) == {"alpha": "1.0"}
    finally:
        os.close(fd)
    synced(daemon, project)
    assert installed(project) == {"alpha": "2.0"}


def _waiting_for(status: dict[str, Any]) -> dict[str, Any] | None:
    return status if status["state"] == "waiting" and status["problem"] else None


def test_a_sync_waits_for_a_tool_running_in_the_project(daemon: Sandbox) -> None:
    """A stand-in for ``pdm lock`` (a real one finishes before it can be watched): a program
    named ``pdm``, run as ``pdm lock`` in the project, that runs until told to stop."""
    project = uv_project(daemon, "busytool", ["alpha==1.0"])
    tools = daemon.root / "fake-tools"
    tools.mkdir()
    fake = tools / "pdm"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with subprocess.Popen([str(fake), "lock"], cwd=project, stdin=subprocess.PIPE) as tool:
        try:
            (project / "pyproject.toml").write_text(
                UV_PROJECT.format(name="busytool", deps=["alpha==2.0"]))
            run([UV, "lock", "--quiet"], project, daemon.env)
            problem = f"waiting for pdm lock (pid {tool.pid}) to finish"
            wait_for(lambda: daemon.status(project)["problem"] == problem, 60, problem)
            assert daemon.status(project)["state"] == "waiting"
            assert installed(project) == {"alpha": "1.0"}
        finally:
            assert tool.stdin is not None
            tool.stdin.close()
    synced(daemon, project)
    assert installed(project) == {"alpha": "2.0"}


POETRY_PROJECT = """\
[project]
name = "poetic"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["alpha==1.0"]

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "local"
url = "{index}"
priority = "primary"
"""


def adopted_after_add(daemon: Sandbox, project: Path, state_folder: str) -> None:
    """After the tool's own ``add gamma`` into the activated env: synced on its lock with no
    failure, and that env adopted (none built beside it), pip still the env's."""
    synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    assert [r for r in syncs(daemon, project) if r["result"] != "ok"] == []
    assert not [m for m in news(daemon, project) if "failed" in m]
    assert pip_of(project).startswith(os.path.realpath(project / ".venv") + "/")
    assert os.readlink(project / ".venv") == state_folder
    assert "adopted" in syncs(daemon, project)[0]["output"]


def test_poetry_add_in_an_activated_project(daemon: Sandbox, tool_path: Callable[[str], None],
                                            simple_index: str) -> None:
    tool_path("poetry")
    restart_daemon_with(daemon)
    project = daemon.project("poetic", requirements=None, files={
        "pyproject.toml": POETRY_PROJECT.format(index=simple_index)})
    env = {**daemon.env, "POETRY_CACHE_DIR": str(daemon.root / "poetry-cache"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    run(["poetry", "lock", "--no-interaction"], project, env)
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    state_folder = os.readlink(project / ".venv")
    run(["poetry", "add", "--no-interaction", "gamma"], project,
        {**activated(daemon, project), **{k: env[k] for k in ("POETRY_CACHE_DIR",
                                                                "PYTHON_KEYRING_BACKEND")}})
    adopted_after_add(daemon, project, state_folder)
    # edited, not locked: waiting, not failed; then locked: synced
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"gamma', '"beta", "gamma'))
    status = settled(daemon, project)
    assert status["state"] == "waiting", status
    assert status["problem"] == (
        "poetry.lock is out of date with pyproject.toml; run 'poetry lock'")
    run(["poetry", "lock", "--no-interaction"], project, env)
    synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
    assert [r for r in syncs(daemon, project) if r["result"] != "ok"] == []


PDM_PROJECT = """\
[project]
name = "pdmish"
version = "0.1"
requires-python = ">=3.9"
dependencies = ["alpha==1.0"]

[tool.pdm]
distribution = false

[[tool.pdm.source]]
name = "pypi"
url = "{links}"
type = "find_links"
"""


def test_pdm_add_in_an_activated_project(daemon: Sandbox, tool_path: Callable[[str], None],
                                         wheelhouse: Path) -> None:
    tool_path("pdm")
    restart_daemon_with(daemon)
    project = daemon.project("pdmish", requirements=None, files={
        "pyproject.toml": PDM_PROJECT.format(links=wheelhouse.as_uri())})
    env = {**daemon.env, "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"}
    run(["pdm", "lock"], project, env)
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    state_folder = os.readlink(project / ".venv")
    run(["pdm", "add", "gamma"], project,
        {**activated(daemon, project), "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"})
    adopted_after_add(daemon, project, state_folder)
    # edited, not locked: PDM would sync the old lock with a warning; venvd waits instead
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"gamma', '"beta", "gamma'))
    status = settled(daemon, project)
    assert status["state"] == "waiting", status
    assert status["problem"] == "pdm.lock is out of date with pyproject.toml; run 'pdm lock'"
    assert installed(project) == {"alpha": "1.0", "gamma": "1.0"}
    run(["pdm", "lock"], project, env)
    synced(daemon, project)
    assert installed(project) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
    assert [r for r in syncs(daemon, project) if r["result"] != "ok"] == []


# ---------------------------------------------------------------------------------------------
# git


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def committed_project(box: Sandbox, name: str) -> Path:
    project = box.project(name, requirements="alpha==1.0\n")
    git("init", "--quiet", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "--quiet", "-m", "first", cwd=project)
    return project


def test_git_status_stays_clean_without_a_gitignore(daemon: Sandbox) -> None:
    project = committed_project(daemon, "gitproj")
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    assert git("status", "--porcelain", cwd=project) == ""
    assert not (project / ".gitignore").exists()
    exclude = (project / ".git/info/exclude").read_text()
    assert exclude.splitlines().count("/.venv") == 1
    (project / "requirements.txt").write_text("alpha==2.0\n")
    wait_for(lambda: installed(project) == {"alpha": "2.0"}, 60, "the second sync")
    synced(daemon, project)
    assert (project / ".git/info/exclude").read_text() == exclude  # written once


def test_git_status_stays_clean_in_a_worktree_and_a_subfolder(daemon: Sandbox) -> None:
    main = committed_project(daemon, "gitmain")
    worktree = daemon.root / "projects" / "gitwt"
    git("worktree", "add", "--quiet", str(worktree), cwd=main)
    daemon.venvd("allow", str(worktree))
    synced(daemon, worktree)
    assert git("status", "--porcelain", cwd=worktree) == ""
    assert "/.venv" in (main / ".git/info/exclude").read_text().splitlines()
    assert not (worktree / ".gitignore").exists()
    sub = main / "sub [1]"
    sub.mkdir()
    (sub / "requirements.txt").write_text("gamma\n")
    # a project of its own (a requirement file alone would make it part of gitmain)
    (sub / ".venvd.toml").write_text("")
    git("add", "-A", cwd=main)
    git("commit", "--quiet", "-m", "sub", cwd=main)
    daemon.venvd("allow", str(sub))
    synced(daemon, sub)
    assert git("status", "--porcelain", cwd=main) == ""
    assert git("check-ignore", "sub [1]/.venv", cwd=main).strip() == "sub [1]/.venv"


def test_a_project_that_ignores_venv_gets_no_exclude_line(daemon: Sandbox) -> None:
    project = daemon.project("ignoring", requirements="alpha==1.0\n",
                             files={".gitignore": ".venv\n"})
    git("init", "--quiet", cwd=project)
    before = (project / ".git/info/exclude").read_text()
    daemon.venvd("allow", str(project))
    synced(daemon, project)
    assert (project / ".git/info/exclude").read_text() == before


# ---------------------------------------------------------------------------------------------
# a .venv venvd did not make


def test_an_existing_venv_folder_is_moved_aside_with_a_word(daemon: Sandbox) -> None:
    project = committed_project(daemon, "hadvenv")
    run([UV, "venv", "--quiet", str(project / ".venv")], project, daemon.env)
    (project / ".venv" / ".gitignore").unlink()  # as python -m venv made them before 3.13
    (project / ".venv" / "mine.txt").write_text("keep me\n")
    daemon.venvd("allow", str(project))
    status = synced(daemon, project)
    assert git("status", "--porcelain", cwd=project) == ""  # the folder moved aside too
    assert (project / ".venv").is_symlink()
    assert (project / ".venv.before-venvd" / "mine.txt").read_text() == "keep me\n"
    note = ("moved your existing .venv to .venv.before-venvd; venvd now manages .venv "
            "(to undo: 'venvd deny', then rm .venv and mv .venv.before-venvd .venv)")
    assert status["notes"] == [note]
    assert f"note       {note}" in daemon.venvd("status", str(project)).stdout
    assert [m for m in news(daemon, project) if "moved your existing .venv" in m] == [
        f"hadvenv: {note}"]
