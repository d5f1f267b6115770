"""Non-interactive use: ``venvd exec``, ``venvd env`` and ``venvd python``, against the real
daemon, real offline installs and real shells."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest

from venvd.client import run

from conftest import Sandbox
from support.shells import shell_path

#: Folder names that must reach every shell as one literal word and run nothing.
HOSTILE = ["it's \"q\" $(touch PWNED) `touch PWNED`", "-x ; touch PWNED", "sp ace\\n ü"]


def venvd(box: Sandbox, *args: str, cwd: Optional[Path] = None, stdin: Optional[str] = None,
          env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    """The real ``venvd`` command, its exit status as it is (no check)."""
    return subprocess.run([str(box.root / "bin" / "venvd"), *args], env=env or box.env,
                          cwd=str(cwd or box.root), input=stdin, capture_output=True,
                          text=True, timeout=180)


def synced(box: Sandbox, name: str, requirements: str = "gamma\n") -> Path:
    project = box.project(name, requirements=requirements)
    box.venvd("allow", str(project))
    status = box.wait_state(project)
    assert status["state"] == "synced", status
    return project


def env_json(box: Sandbox, project: Path) -> dict[str, Any]:
    out = venvd(box, "env", str(project), "--json")
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


# ---------------------------------------------------------------------------------------------
# venvd exec


def test_exec_runs_the_envs_python_with_its_stdin_and_exit_status(daemon: Sandbox) -> None:
    project = synced(daemon, "app")
    code = ("import sys, gamma; print(sys.prefix); print(sys.stdin.read().upper()); "
            "sys.exit(7)")
    # from outside the project, naming it: the command runs where it was started
    out = venvd(daemon, "exec", str(project), "--", "python", "-c", code, stdin="piped in")
    assert out.returncode == 7, out.stderr
    prefix, echoed = out.stdout.splitlines()
    assert Path(prefix).resolve() == (project / ".venv").resolve()
    assert echoed == "PIPED IN"
    assert out.stderr == ""
    # in the project, without DIR and without '--': the activation a hook would make
    shown = venvd(daemon, "exec", "sh", "-c", 'printf "%s\\n" "$VIRTUAL_ENV" "${PATH%%:*}"',
                  cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [str(project / ".venv"), str(project / ".venv/bin")]


def test_exec_waits_for_the_first_sync_of_a_project_just_allowed(daemon: Sandbox) -> None:
    project = daemon.project("fresh", requirements="gamma\n")
    daemon.venvd("allow", str(project))
    out = venvd(daemon, "exec", str(project), "--", "python", "-c",
                "import sys, gamma; print(sys.prefix)")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (project / ".venv").resolve()
    assert daemon.wait_state(project)["state"] == "synced"  # its bookkeeping may be ending


def test_exec_in_an_untrusted_project_refuses_and_runs_nothing(daemon: Sandbox) -> None:
    project = daemon.project("stranger", requirements="gamma\n")
    marker = daemon.root / "ran"
    out = venvd(daemon, "exec", str(project), "--", "touch", str(marker))
    assert out.returncode == 1
    assert not marker.exists()
    assert one_line(out.stderr) == (f"venvd: {project} is not allowed; run: venvd allow "
                                    f"{project}")
    assert not (project / ".venv").exists()  # and nothing was synced for it
    assert daemon.status(project)["state"] == "untrusted"


def test_exec_after_a_failed_sync_says_why_and_runs_nothing(daemon: Sandbox) -> None:
    project = daemon.project("broken", requirements="no-such-package-anywhere\n")
    daemon.venvd("allow", str(project))
    daemon.wait_state(project, ("failed",))
    marker = daemon.root / "ran"
    out = venvd(daemon, "exec", str(project), "--", "touch", str(marker))
    assert out.returncode == 1
    assert not marker.exists()
    assert out.stderr.startswith(f"venvd: sync of {project} failed: ")
    assert "no-such-package-anywhere" in out.stderr


def test_exec_outside_a_project_runs_the_command_with_venvds_activation_reverted(
        daemon: Sandbox) -> None:
    """As ``direnv exec`` where no ``.envrc`` is found: the command runs, in the environment
    the caller had before venvd activated anything."""
    project = synced(daemon, "active")
    plain = daemon.root / "plain"
    plain.mkdir()
    inside = {**daemon.env, **env_json(daemon, project)["set"]}  # a shell activated in it
    out = venvd(daemon, "exec", str(plain), "--", "sh", "-c",
                'printf "%s\\n" "${VIRTUAL_ENV-none}" "$PATH"; exit 3', env=inside)
    assert out.returncode == 3, out.stderr
    assert out.stdout.splitlines() == ["none", daemon.env["PATH"]]


def test_exec_usage_and_a_missing_command(daemon: Sandbox) -> None:
    project = synced(daemon, "usage", requirements="")
    assert venvd(daemon, "exec", str(project), "--").returncode == 2
    assert venvd(daemon, "exec", str(project), "other", "--", "true").returncode == 2
    # an option after DIR is still an option (argparse leaves it among the words)
    late = venvd(daemon, "exec", str(project), "--no-wait", "--", "sh", "-c", "exit 5")
    assert late.returncode == 5, late.stderr
    missing = venvd(daemon, "exec", str(project), "--", "no-such-command-here")
    assert missing.returncode == 127
    assert one_line(missing.stderr) == "venvd: exec: no-such-command-here: command not found"


# ---------------------------------------------------------------------------------------------
# venvd env and venvd python


def hook_activation(box: Sandbox, kind: str, project: Path) -> tuple[str, str]:
    """VIRTUAL_ENV and PATH as the hook leaves them in a real interactive shell."""
    sh = box.shell(kind, cwd=box.root)
    sh.run(f"cd {json.dumps(str(project))}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") != "", what="the hook's activation")
    path = sh.run("string join : $PATH" if kind == "fish" else 'printf "%s" "$PATH"')
    return sh.var("VIRTUAL_ENV"), path.strip("\n")


def test_env_eval_in_bash_and_env_json_match_the_hooks_activation(daemon: Sandbox) -> None:
    project = synced(daemon, "same", requirements="")
    hook_env, hook_path = hook_activation(daemon, "bash", project)
    assert hook_env == str(project / ".venv")
    evaled = subprocess.run(
        ["bash", "-c", 'eval "$(venvd env "$1")" && printf "%s\\n" "$VIRTUAL_ENV" "$PATH"',
         "bash", str(project)],
        env=daemon.env, capture_output=True, text=True, timeout=60)
    assert evaled.returncode == 0, evaled.stderr
    assert evaled.stdout.splitlines() == [hook_env, hook_path]
    found = env_json(daemon, project)
    assert found["project"] == str(project) and found["env"] == str(project / ".venv")
    assert found["set"]["VIRTUAL_ENV"] == hook_env and found["set"]["PATH"] == hook_path
    assert found["set"]["VIRTUAL_ENV_PROMPT"]
    assert "PYTHONHOME" in found["unset"]


def test_env_in_an_env_already_active_still_prints_the_whole_activation(
        daemon: Sandbox) -> None:
    project = synced(daemon, "twice", requirements="")
    first = env_json(daemon, project)
    again = venvd(daemon, "env", str(project), env={**daemon.env, **first["set"]})
    assert again.returncode == 0, again.stderr
    lines = again.stdout
    assert f"export VIRTUAL_ENV='{project}/.venv';" in lines
    # venvd's entry is not doubled
    assert f"export PATH='{first['set']['PATH']}';" in lines


def test_env_for_fish_sourced_in_real_fish(daemon: Sandbox) -> None:
    if shell_path("fish") is None:
        pytest.skip("fish is not installed")
    project = synced(daemon, "fishy", requirements="")
    out = subprocess.run(
        ["fish", "--no-config", "-c",
         'venvd env $argv[1] --shell fish | source; and printf "%s\\n" "$VIRTUAL_ENV"; '
         'and string join : $PATH', str(project)],
        env=daemon.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(project / ".venv"),
                                       f"{project}/.venv/bin:{daemon.env['PATH']}"]


def test_python_prints_the_envs_interpreter(daemon: Sandbox) -> None:
    project = daemon.project("interp", requirements="")
    refused = venvd(daemon, "python", str(project))
    assert refused.returncode == 1 and "venvd allow" in one_line(refused.stderr)
    daemon.venvd("allow", str(project))
    daemon.wait_state(project)
    out = venvd(daemon, "python", cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{project}/.venv/bin/python\n"
    ran = subprocess.run([out.stdout.strip(), "-c", "import sys; print(sys.prefix)"],
                         capture_output=True, text=True, timeout=60)
    assert Path(ran.stdout.strip()).resolve() == (project / ".venv").resolve()


def test_python_without_an_env_says_so(daemon: Sandbox) -> None:
    project = daemon.project("never-built", requirements="no-such-package-anywhere\n")
    daemon.venvd("allow", str(project))
    daemon.wait_state(project, ("failed",))
    out = venvd(daemon, "python", str(project))
    assert out.returncode == 1 and out.stdout == ""
    assert one_line(out.stderr) == (f"venvd: {project} has no environment yet (failed); "
                                    "'venvd sync --wait' builds it")


def test_env_and_python_outside_a_project_say_so(daemon: Sandbox) -> None:
    plain = daemon.root / "plain"
    plain.mkdir()
    for command in ("env", "python"):
        out = venvd(daemon, command, str(plain))
        assert out.returncode == 1 and out.stdout == ""
        assert one_line(out.stderr) == f"venvd: no project at or above {plain}"


def test_env_outside_a_project_takes_back_an_inherited_activation(daemon: Sandbox) -> None:
    """A BASH_ENV file run in a plain folder by a shell started from an activated one."""
    project = synced(daemon, "inherited", requirements="")
    plain = daemon.root / "plain"
    plain.mkdir()
    inside = {**daemon.env, **env_json(daemon, project)["set"]}
    out = subprocess.run(
        ["bash", "-c", 'eval "$(venvd env 2>/dev/null)"; printf "%s\\n" "${VIRTUAL_ENV-none}" '
         '"${VENVD_STATE-none}" "$PATH"'],
        cwd=plain, env=inside, capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["none", "none", daemon.env["PATH"]], out.stderr


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_project_names_are_quoted_for_every_shell(daemon: Sandbox,
                                                          name: str) -> None:
    project = synced(daemon, name, requirements="")
    work = daemon.root / "work"
    work.mkdir()
    expected = [str(project / ".venv"), f"{project}/.venv/bin"]
    for posix in ("bash", "zsh"):
        if shell_path(posix) is None:
            continue
        out = subprocess.run(
            [posix, "-c", 'eval "$(venvd env --shell "$0" "$1")" && printf "%s\\n" '
             '"$VIRTUAL_ENV" "${PATH%%:*}"', posix, str(project)],
            cwd=work, env=daemon.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == expected, posix
    if shell_path("fish") is not None:
        fish = subprocess.run(
            ["fish", "--no-config", "-c", 'venvd env $argv[1] --shell fish | source; and '
             'printf "%s\\n" "$VIRTUAL_ENV" $PATH[1]', str(project)],
            cwd=work, env=daemon.env, capture_output=True, text=True, timeout=60)
        assert fish.returncode == 0, fish.stderr
        assert fish.stdout.splitlines() == expected
    ran = venvd(daemon, "exec", str(project), "--", "python", "-c",
                "import os; print(os.environ['VIRTUAL_ENV'])", cwd=work)
    assert ran.returncode == 0 and ran.stdout == expected[0] + "\n", ran.stderr
    assert env_json(daemon, project)["set"]["VIRTUAL_ENV"] == expected[0]
    assert not list(work.iterdir()) and not (project / "PWNED").exists()


def test_exec_replaces_venvd_so_signals_reach_the_command(daemon: Sandbox) -> None:
    project = synced(daemon, "signals", requirements="")
    proc = subprocess.Popen([str(daemon.root / "bin" / "venvd"), "exec", str(project), "--",
                             "sh", "-c", 'echo "$$"; exec sleep 60'], env=daemon.env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid  # no venvd process in between
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_activation_replaces_pythonhome_a_hand_venv_and_venvds_own() -> None:
    """On plain dicts: what exec runs with and env prints (PYTHONHOME cannot reach a real
    venvd: it is a Python program itself)."""
    exports = {"VIRTUAL_ENV": "/p/.venv", "VIRTUAL_ENV_PROMPT": "p", "PYTHONHOME": None,
               "PATH": "prepend /p/.venv/bin"}
    caller = {"PATH": "/hand/bin:/usr/bin", "PYTHONHOME": "/x", "VIRTUAL_ENV": "/hand",
              "VENVD_OFF": "/p"}
    after = run.activated(caller, exports, "/p", "1")
    assert "PYTHONHOME" not in after and "VENVD_OFF" not in after
    assert after["PATH"] == "/p/.venv/bin:/usr/bin" and after["VIRTUAL_ENV"] == "/p/.venv"
    changes = run.activation_changes(caller, after, exports)
    assert changes["PYTHONHOME"] is None and changes["VENVD_OFF"] is None
    # an activation of another project, made by venvd, is reverted first, not stacked
    other = run.activated(after, {**exports, "VIRTUAL_ENV": "/q/.venv",
                                  "PATH": "prepend /q/.venv/bin"}, "/q", "2")
    assert other["PATH"] == "/q/.venv/bin:/usr/bin" and other["VIRTUAL_ENV"] == "/q/.venv"
