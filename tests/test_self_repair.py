"""An env removed or broken underneath a shell is noticed at the next prompt and rebuilt in
the background, without leaving the project; meanwhile no prompt points at a missing python."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileDeletedEvent,
    FileSystemEvent,
)

from venvd.daemon.watch import env_gone

from conftest import Sandbox
from support.shells import Shell

# How the env goes: the command typed at the prompt, in bash/zsh and in fish.
BREAKS = {
    "rm -rf .venv": ("rm -rf .venv", "rm -rf .venv"),
    "rm .venv": ("rm .venv", "rm .venv"),
    "env folder deleted": ('rm -rf "$(readlink .venv)"', "rm -rf (readlink .venv)"),
    "env folder broken": ('rm -rf "$(readlink .venv)/bin"', "rm -rf (readlink .venv)/bin"),
    "base python gone": ("ln -sf /nonexistent/python3 .venv/bin/python",
                         "ln -sf /nonexistent/python3 .venv/bin/python"),
}
CASES = [(kind, "rm -rf .venv") for kind in ("bash", "zsh", "fish")] + [
    ("bash", "rm .venv"), ("zsh", "env folder deleted"), ("fish", "env folder broken"),
    ("bash", "base python gone"), ("zsh", "base python gone"),
    ("nu", "base python gone"), ("xonsh", "rm -rf .venv"),  # (their lines: as bash's)
]


def path_entries(sh: Shell) -> list[str]:
    if sh.kind == "fish":
        return sh.run("printf '%s\\n' $PATH").splitlines()
    return sh.var("PATH").split(":")


def repaired(sh: Shell, project: Path) -> bool:
    """One prompt's look: never a PATH entry to a python that is not there; True once the
    env is back and active."""
    bin_dir = f"{project}/.venv/bin"
    python = f"{bin_dir}/python"
    entries = path_entries(sh)
    if bin_dir in entries:
        # checked after PATH was read: a rebuild may only make the python appear meanwhile
        assert os.access(python, os.X_OK), f"{sh.kind}: PATH has {bin_dir}, its python is gone"
    return (entries[0] == bin_dir and sh.var("VIRTUAL_ENV") == f"{project}/.venv"
            and os.access(python, os.X_OK))


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_broken_env_is_rebuilt_without_leaving(daemon: Sandbox, kind: str, how: str) -> None:
    project = daemon.project("repair me", requirements="gamma\n")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    sh = daemon.shell(kind, cwd=project)
    sh.prompts_until(lambda: repaired(sh, project), 60, "activation")
    assert sh.run("python -c 'import gamma; print(gamma.__name__)'").strip() == "gamma"

    sh.run(BREAKS[how][1 if kind == "fish" else 0])
    # not checked here that the python is gone: a shell returns at its next prompt, whose
    # hook (or the daemon, which watches .venv) may have had the env back already, a switch
    # to the lock state still on disk taking some 40 ms; "in the background" below says it
    # broke and was rebuilt
    sh.prompts_until(lambda: repaired(sh, project), 120, f"the env back after {how!r}")
    assert sh.run("python -c 'import gamma; print(gamma.__name__)'").strip() == "gamma"
    said = "".join(sh.transcript)
    assert "in the background" in said, said[-2000:]
    assert path_entries(sh).count(f"{project}/.venv/bin") == 1
    # the shells hear of a rebuild before its bookkeeping ends (watching, git's exclude
    # file): status says "syncing" until then, and "synced" after
    assert daemon.wait_state(project)["state"] == "synced"


def test_removed_env_is_rebuilt_with_no_shell_asking(daemon: Sandbox) -> None:
    """The daemon watches the project root: ``.venv`` removed is rebuilt even before any
    prompt asks (an editor's terminal-less use), and shells there are told."""
    project = daemon.project("watched", requirements="gamma\n")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    sh = daemon.shell("bash", cwd=project)  # a live shell keeps the project watched
    sh.prompts_until(lambda: repaired(sh, project), 60, "activation")
    (project / ".venv").unlink()
    daemon.wait_state(project, ("synced",), timeout=60)
    assert os.access(project / ".venv/bin/python", os.X_OK)


@pytest.mark.parametrize(("event", "gone"), [
    (DirDeletedEvent("/p/.venv"), True),  # rm -rf .venv, a real folder
    (FileDeletedEvent("/p/.venv"), True),  # rm .venv, the link
    (DirMovedEvent("/p/.venv", "/p/.venv.old"), True),  # mv .venv away
    (DirMovedEvent("/p/.venv.venvd-1-2", "/p/.venv"), False),  # the daemon's own switch
    (DirCreatedEvent("/p/.venv"), False),  # a venv being made there by hand: not raced
])
def test_only_env_going_away_counts(event: FileSystemEvent, gone: bool) -> None:
    assert env_gone(event, "/p/.venv") is gone


def test_a_deleted_env_is_rebuilt_out_of_sight(daemon: Sandbox) -> None:
    """Its folder deleted by hand, an env is rebuilt under a new name and switched in when
    complete: ``.venv`` never shows an env that is half installed (uv makes ``python``
    before a single package is in)."""
    from test_contracts import Slow

    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()
    slow.let_go()
    assert daemon.wait_state(slow.project)["state"] == "synced"
    target = Path(os.readlink(slow.project / ".venv"))
    slow.release.unlink()
    slow.started.unlink()
    pyproject = slow.project.parent.parent / "slow-pkg" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# built again: uv's cache must not do\n")
    shutil.rmtree(target)
    try:
        daemon.venvd("sync", str(slow.project))
        slow.wait_started()  # the rebuild is under way, held in the build backend
        assert not (slow.project / ".venv" / "bin" / "python").exists()
    finally:
        slow.let_go()
    assert daemon.wait_state(slow.project)["state"] == "synced"
    assert os.readlink(slow.project / ".venv") != str(target)
    python = slow.project / ".venv" / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import slowpkg"]).returncode == 0
