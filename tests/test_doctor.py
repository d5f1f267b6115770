"""``venvd doctor`` checks the shell it runs in (the hook, not only the rc file), the files a
login bash reads, and lists interpreters by version; each result is set against what the
real shell does."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from venvd.shell import SHELLS

from conftest import Sandbox
from support.shells import shell_path

#: Each shell, started again inside itself without reading any rc file.
NO_RC = {"bash": "bash --norc -i", "zsh": "zsh -f -i", "fish": "fish --no-config -i"}


def doctor_line(out: str, check: str) -> str:
    """The doctor's line for *check* (``this shell``, ``login bash``, ...)."""
    found = [line for line in out.splitlines() if line[6:].startswith(check + ":")]
    assert len(found) == 1, out
    return found[0]


@pytest.mark.parametrize("kind", sorted(NO_RC))
def test_doctor_sees_whether_its_shell_runs_the_hook(daemon: Sandbox, kind: str) -> None:
    sh = daemon.shell(kind, cwd=daemon.root)
    own_pid = "echo $fish_pid" if kind == "fish" else "echo $$"
    pid = sh.run(own_pid).strip()
    out = sh.run("venvd doctor")
    assert doctor_line(out, "this shell") == (
        f"ok    this shell: {kind} (pid {pid}) runs the venvd hook at its prompts")
    # the same shell started inside it without its rc file: the marker it inherited is
    # its parent's, and the doctor says so
    sh.child.sendline(NO_RC[kind])  # the commands that follow run in the inner shell
    inner = sh.run(own_pid).strip()
    assert inner != pid
    out = sh.run("venvd doctor")
    hook_line = SHELLS[kind].hook_line()
    assert doctor_line(out, "this shell") == (
        f"FIX   this shell: {kind} (pid {inner}) does not run the venvd hook (VENVD_HOOKED "
        f"comes from {kind}, pid {pid}, a shell it was started from); it reads no rc file "
        f"with '{hook_line}' (started with --norc, or a login bash: see 'login bash')")
    sh.child.sendline("exit")
    assert sh.run(own_pid).strip() == pid  # back in the outer shell


#: How nushell, xonsh, elvish and tcsh print their own pid (their shells without an rc file
#: cannot be driven here: the test driver needs its prompt, which the rc file sets).
OWN_PID = {"nu": "print $nu.pid", "xonsh": "print(__import__('os').getpid())",
           "elvish": "echo $pid", "tcsh": "echo $$"}


@pytest.mark.parametrize("kind", sorted(OWN_PID))
def test_doctor_sees_that_the_other_shells_run_the_hook(daemon: Sandbox, kind: str) -> None:
    sh = daemon.shell(kind, cwd=daemon.root)
    pid = sh.run(OWN_PID[kind]).strip()
    assert doctor_line(sh.run("venvd doctor"), "this shell") == (
        f"ok    this shell: {kind} (pid {pid}) runs the venvd hook at its prompts")


def login_bash_has_hook(box: Sandbox) -> bool:
    """Whether a real login bash in *box*'s HOME defines the venvd hook."""
    result = subprocess.run(["bash", "-l", "-i", "-c", "declare -F _venvd_hook"],
                            env=box.env, cwd=str(box.home), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    return result.returncode == 0


def test_doctor_follows_the_files_a_login_bash_reads(sandbox: Sandbox) -> None:
    if shell_path("bash") is None:
        pytest.skip("bash is not installed")
    home = sandbox.home
    # a login bash's /etc/profile sets PATH afresh: the rc file puts venvd back on it
    (home / ".bashrc").write_text(f"PATH={sandbox.root / 'bin'}:$PATH\n"
                                  f"{SHELLS['bash'].hook_line()}\n")
    add = "[ -f ~/.bashrc ] && . ~/.bashrc"

    def login_line() -> str:
        return doctor_line(sandbox.venvd("doctor", check=False).stdout, "login bash")

    assert login_line() == (
        "FIX   login bash: none of ~/.bash_profile, ~/.bash_login, ~/.profile exists, so a "
        f"login bash never reads ~/.bashrc and has no hook; add '{add}' to ~/.bash_profile")
    assert not login_bash_has_hook(sandbox)

    (home / ".profile").write_text('if [ -n "$BASH_VERSION" ]; then . "$HOME/.bashrc"; fi\n')
    assert login_line() == "ok    login bash: ~/.profile -> ~/.bashrc"
    assert login_bash_has_hook(sandbox)

    (home / ".bash_profile").write_text("export EDITOR=vi\n")  # read instead of ~/.profile
    assert login_line() == (
        "FIX   login bash: reads ~/.bash_profile, which does not read ~/.bashrc, so a login "
        f"bash has no hook; add '{add}' to ~/.bash_profile")
    assert not login_bash_has_hook(sandbox)

    (home / ".bash_profile").write_text(f"export EDITOR=vi\n{add}\n")
    assert login_line() == "ok    login bash: ~/.bash_profile -> ~/.bashrc"
    assert login_bash_has_hook(sandbox)


def test_doctor_lists_interpreters_by_version(sandbox: Sandbox) -> None:
    line = doctor_line(sandbox.venvd("doctor", check=False).stdout, "interpreters")
    found = re.search(r"\((.*)\)$", line)
    assert found, line
    versions = found.group(1).split(", ")
    numbers = [tuple(int(n) for n in v.split(".")) for v in versions]
    if not (any(n[:2] < (3, 10) for n in numbers) and any(n[:2] >= (3, 10) for n in numbers)):
        pytest.skip(f"needs a Python below 3.10 and one from 3.10 on, found {versions}")
    assert numbers == sorted(numbers), line  # 3.9 before 3.10, not in text order
    assert len(set(numbers)) == len(numbers), line


def test_doctor_says_what_the_shell_check_could_not_see(sandbox: Sandbox) -> None:
    """Started by a program that is not a shell (here: python), outside any hooked shell."""
    env = {k: v for k, v in sandbox.env.items() if k != "VENVD_HOOKED"}
    venvd = Path(sandbox.root / "bin" / "venvd")
    out = subprocess.run([str(venvd), "doctor"], env=env, capture_output=True, text=True,
                         timeout=60).stdout
    line = doctor_line(out, "this shell")
    assert re.fullmatch(r"ok    this shell: started from \S+ \(pid \d+\), not a shell; not "
                        r"checked", line), line
