"""Real shells (every one of the registry) in a pty: cd into, out of and between projects."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Py, Sandbox, wait_for
from support.newshells import NEW_FAMILY
from support.newsteps import (
    activate_by_hand,
    exits_with_3,
    nested_shell,
    no_client,
    other_prompt_hook,
    prepend_path,
    prints_yes_if,
    prints_yes_if_found,
)
from support.shells import Shell


def allow_and_sync(box: Sandbox, project: Path) -> None:
    box.venvd("allow", str(project))
    status = box.wait_state(project)
    assert status["state"] == "synced", status


def wait_active(sh: Shell, project: Path) -> None:
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 120,
                     f"VIRTUAL_ENV={project}/.venv")


def path_entries(sh: Shell) -> list[str]:
    if sh.kind == "fish":
        return sh.run("printf '%s\\n' $PATH").splitlines()
    return sh.var("PATH").split(":")


def test_cd_activates_switches_and_reverts(daemon: Sandbox, shell_kind: str,
                                           two_pythons: tuple[Py, Py]) -> None:
    py_a, py_b = two_pythons
    a = daemon.project("alpha-proj", py_a.minor, "beta\n")
    b = daemon.project("bravo-proj", py_b.minor, "gamma==1.0\n")
    allow_and_sync(daemon, a)
    allow_and_sync(daemon, b)

    sh = daemon.shell(shell_kind, cwd=daemon.root)
    before = path_entries(sh)
    assert sh.var("VIRTUAL_ENV") == ""

    sh.run(f"cd {a}")
    wait_active(sh, a)
    assert sh.run("python --version").strip() == f"Python {py_a.version}"
    assert path_entries(sh)[0] == f"{a}/.venv/bin"
    # beta's dependency was resolved and installed too
    assert sh.run("python -c 'import alpha, beta; print(alpha.__version__)'").strip() == "2.0"

    sh.run(f"cd {b}")  # straight from one project into the other
    wait_active(sh, b)
    assert sh.run("python --version").strip() == f"Python {py_b.version}"
    entries = path_entries(sh)
    assert f"{a}/.venv/bin" not in entries and entries[0] == f"{b}/.venv/bin"

    # a PATH entry the user adds meanwhile survives leaving
    extra = str(daemon.root / "user-bin")
    if shell_kind == "fish":
        sh.run(f"set -gx PATH {extra} $PATH")
    elif shell_kind in NEW_FAMILY:
        sh.run(prepend_path(shell_kind, extra))
    else:
        sh.run(f"export PATH={extra}:$PATH")
    sh.run(f"cd {daemon.root}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == "", 30, "VIRTUAL_ENV unset")
    assert path_entries(sh) == [extra, *before]
    assert sh.var("VIRTUAL_ENV_PROMPT") == ""


def test_exit_status_and_other_prompt_hooks_survive(daemon: Sandbox, shell_kind: str) -> None:
    if shell_kind == "bash":
        before = "other_hook() { OTHER_RAN=$((OTHER_RAN+1)); }\nPROMPT_COMMAND=(other_hook)"
    elif shell_kind == "zsh":
        before = ("autoload -Uz add-zsh-hook\nother_hook() { OTHER_RAN=$((OTHER_RAN+1)); }\n"
                  "add-zsh-hook precmd other_hook")
    elif shell_kind in NEW_FAMILY:
        before = other_prompt_hook(shell_kind)
    else:
        before = ("set -g OTHER_RAN 0\nfunction other_hook --on-event fish_prompt\n"
                  "  set -g OTHER_RAN (math $OTHER_RAN + 1)\nend")
    sh = daemon.shell(shell_kind, rc_before=before)
    first = int(sh.var("OTHER_RAN") or 0)
    sh.run("true")
    assert int(sh.var("OTHER_RAN")) > first
    if shell_kind == "elvish":
        pytest.skip("elvish has no exit status to keep: a failing command raises an "
                    "exception, which the hook never sees")
    assert sh.status_of("false") == 1
    assert sh.status_of("true") == 0
    # PWD changes on the same line, so the hook runs an export at that prompt
    assert sh.status_of(f"cd /; {exits_with_3(shell_kind)}") == 3


@pytest.mark.parametrize("kind", ["bash", "zsh"])
def test_a_user_interrupt_trap_survives_the_hook(daemon: Sandbox, kind: str) -> None:
    # the hook ignores Ctrl-C while the client runs; the user's own trap must come back
    sh = daemon.shell(kind, rc_before="trap 'INT_TRAPPED=1' INT\nVENVD_NO_FAST=1")
    sh.run("cd /")
    sh.run("cd /tmp")
    sh.run("kill -INT $$")
    assert sh.var("INT_TRAPPED") == "1"


def test_bash_prompt_command_string_form_keeps_other_commands(daemon: Sandbox) -> None:
    sh = daemon.shell("bash", rc_before="PROMPT_COMMAND='OTHER_RAN=yes'")
    sh.run("unset OTHER_RAN")
    assert sh.var("OTHER_RAN") == "yes"
    assert "_venvd_hook" in sh.var("PROMPT_COMMAND")
    # sourcing the hook twice registers it once
    sh.run('eval "$(venvd hook bash)"')
    assert sh.var("PROMPT_COMMAND").count("_venvd_hook") == 1


HOSTILE = "we ird 'sq' \"dq\" $(touch pwned1) `touch pwned2` ; touch pwned3 * ü\nnext"


def test_hostile_directory_name_activates_and_executes_nothing(daemon: Sandbox,
                                                                shell_kind: str) -> None:
    project = daemon.project(HOSTILE, requirements="gamma\n")
    allow_and_sync(daemon, project)
    daemon.env["HOSTILE"] = str(project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.cd_var("HOSTILE")
    expected = f"{project}/.venv"
    same = prints_yes_if(shell_kind, "VIRTUAL_ENV", "HOSTILE", "/.venv")
    sh.prompts_until(lambda: sh.run(same) == "yes",
        60, f"VIRTUAL_ENV={expected!r}")
    assert sh.run(prints_yes_if_found(shell_kind, "python", "HOSTILE", "/.venv/bin/python")) \
        == "yes"
    assert sh.run("python -c 'import gamma; print(gamma.__version__)'").strip() == "1.0"
    sh.run("cd /")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == "", 30, "VIRTUAL_ENV unset")
    # again through the hook's own path, with the daemon's snippet (no client at all)
    sh.run(no_client(shell_kind))
    sh.cd_var("HOSTILE")
    assert sh.run(same) == "yes"
    assert sh.run("python -c 'import gamma; print(gamma.__version__)'").strip() == "1.0"
    sh.run("cd /")
    assert sh.var("VIRTUAL_ENV") == ""
    pwned = [p for p in daemon.root.rglob("pwned*")] + list(Path("/").glob("pwned*"))
    assert pwned == [], f"a directory name was executed: {pwned}"


def test_untrusted_project_stays_inactive_with_one_message(daemon: Sandbox,
                                                           shell_kind: str) -> None:
    project = daemon.project("stranger", requirements="gamma\n")
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    messages = sh.run(f"cd {project}")  # zsh and fish run the hook on the cd itself
    for _ in range(4):
        sh.run("true")
        messages += sh.prompt_output
    assert messages.count("venvd allow") == 1, messages
    assert sh.var("VIRTUAL_ENV") == ""
    assert not (project / ".venv").exists() and not (project / ".venv").is_symlink()
    assert daemon.status(project)["state"] == "untrusted"
    # allowing it from inside the shell activates it at a later prompt
    sh.run("venvd allow")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 120,
                     "activation after allow")


def test_daemon_killed_prompt_still_activates_and_daemon_restarts(
        daemon: Sandbox, shell_kind: str) -> None:
    project = daemon.project("sturdy", requirements="gamma\n")
    allow_and_sync(daemon, project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    old_pid = daemon.kill_daemon()
    assert not daemon.alive()
    sh.run(f"cd {project}")
    # the prompt that follows the cd works from what is on disk
    assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"
    assert sh.run("python -c 'import gamma; print(gamma.__name__)'").strip() == "gamma"
    new_pid = wait_for(lambda: daemon.alive() and int(daemon.pid_file.read_text()), 30,
                       "the hook to restart the daemon")
    assert new_pid != old_pid
    sh.run("cd /")
    assert sh.var("VIRTUAL_ENV") == ""


def test_a_killed_daemon_left_a_zombie_is_restarted_by_the_next_cd(
        daemon: Sandbox, shell_kind: str) -> None:
    """Where init does not reap orphans, a killed daemon keeps its /proc entry as a zombie:
    the hook must not take that for a live daemon (and so never run the client that starts
    a new one)."""
    project = daemon.project("undead", requirements="gamma\n")
    allow_and_sync(daemon, project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.run(f"cd {project}")  # the daemon keeps a snippet: the no-process path could take it
    wait_active(sh, project)
    sh.run(f"cd {daemon.root}")
    sh.run("true")
    old_pid = daemon.kill_daemon(reap=False)
    try:
        assert Path(f"/proc/{old_pid}").is_dir()  # a zombie, as the hook sees it
        sh.run(f"cd {project}")
        assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"
        new_pid = wait_for(lambda: daemon.alive() and int(daemon.pid_file.read_text()), 30,
                           "the hook to start a new daemon")
        assert new_pid != old_pid
    finally:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(old_pid, 0)


def test_nested_shell_is_not_doubled_and_hand_activated_venv_is_left_alone(
        daemon: Sandbox, shell_kind: str) -> None:
    project = daemon.project("nested", requirements="gamma\n")
    allow_and_sync(daemon, project)
    other = daemon.root / "other-venv"
    daemon.venvd("status", str(project))  # the daemon is up; make a venv by hand with uv
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "venv", "--quiet", str(other)], env=daemon.env, check=True)
    sh = daemon.shell(shell_kind, cwd=project)
    wait_active(sh, project)
    own_bin = f"{project}/.venv/bin"

    sh.send(nested_shell(shell_kind))
    sh.run("true")
    assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"
    assert path_entries(sh).count(own_bin) == 1
    sh.send("exit")
    sh.run("true")
    assert path_entries(sh).count(own_bin) == 1

    activate = activate_by_hand(shell_kind, str(other))
    if activate is None:
        pytest.skip("virtualenv has no activate script for elvish: no venv is activated by "
                    "hand there")
    sh.run(activate)
    sh.run("true")
    assert sh.var("VIRTUAL_ENV") == str(other)
    entries = path_entries(sh)
    assert entries[0] == f"{other}/bin" and own_bin not in entries
    sh.run(f"cd {daemon.root}")  # leaving the project keeps the hand-made venv
    assert sh.var("VIRTUAL_ENV") == str(other)


def test_cd_takes_no_process_once_the_daemon_has_snippets_ready(
        daemon: Sandbox, shell_kind: str, two_pythons: tuple[Py, Py]) -> None:
    """With the export client made unreachable, cd still activates, switches and reverts:
    the hook did it with builtins and the daemon's snippets alone."""
    py_a, py_b = two_pythons
    a = daemon.project("fast-a", py_a.minor, "gamma\n")
    b = daemon.project("fast-b", py_b.minor, "alpha\n")
    stranger = daemon.project("fast-stranger", requirements="")
    allow_and_sync(daemon, a)
    allow_and_sync(daemon, b)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    for project in (a, b, stranger):  # the daemon sees each once and keeps a snippet
        sh.run(f"cd {project}")
        sh.run("true")
    sh.run(f"cd {daemon.root}")
    sh.run("true")
    before = path_entries(sh)
    sh.run(no_client(shell_kind))
    sh.run(f"cd {a}")
    assert sh.var("VIRTUAL_ENV") == f"{a}/.venv"
    assert sh.run("python --version").strip() == f"Python {py_a.version}"
    sh.run(f"cd {b}/")
    assert sh.var("VIRTUAL_ENV") == f"{b}/.venv"
    assert sh.var("VIRTUAL_ENV_PROMPT") == "fast-b"
    assert sh.run("python --version").strip() == f"Python {py_b.version}"
    assert path_entries(sh) == [f"{b}/.venv/bin", *before]
    sh.run(f"cd {stranger}")  # known and not allowed: stays inactive
    assert sh.var("VIRTUAL_ENV") == ""
    assert path_entries(sh) == before
    sh.run(f"cd {a}")
    sh.run(f"cd {daemon.root}")
    assert sh.var("VIRTUAL_ENV") == "" and sh.var("VENVD_STATE") == ""
    assert path_entries(sh) == before
