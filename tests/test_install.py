"""./install.sh as a new user runs it: a fresh HOME, then a real login-style shell."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Py, Sandbox, wait_for
from support.shells import Shell

REPO = Path(__file__).resolve().parents[1]
BEGIN = "# >>> venvd >>>"


def install(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in box.env.items() if k not in ("UV_CONFIG_FILE",)}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if p != str(box.root / "bin"))
    return subprocess.run([str(REPO / "install.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)


def installed_shell(box: Sandbox, kind: str, project: Path) -> Shell:
    """A new *kind* shell in *project* reading the rc file install.sh wrote, with
    ~/.local/bin not yet on PATH (the rc block must add it)."""
    env = {**box.env, "PATH": os.pathsep.join(
        p for p in box.env["PATH"].split(os.pathsep) if p != str(box.root / "bin"))}
    sh = Shell(kind, env, project, own_rc=False)
    box._shells.append(sh)
    return sh


def allow_activates_and_leaves(sh: Shell, project: Path, python: Py) -> None:
    """`venvd allow` in *sh* activates *project*'s env on *python*; leaving it reverts."""
    sh.run("venvd allow")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 120, "activation")
    assert sh.run("python --version").strip() == f"Python {python.version}"
    sh.run("cd /")
    assert sh.var("VIRTUAL_ENV") == ""


def test_install_then_a_real_shell_activates(sandbox: Sandbox, pythons: list[Py]) -> None:
    if not pythons:
        pytest.skip("no Python 3.9+ interpreter found")
    result = install(sandbox)
    assert result.returncode == 0, result.stderr + result.stdout
    home = sandbox.home
    venv = home / ".local/share/venvd/venv"
    link = home / ".local/bin/venvd"
    assert link.is_symlink() and link.resolve() == (venv / "bin/venvd").resolve()
    assert "Next:" in result.stdout.splitlines()[-1]
    # installed into its own venv, not editable: the package lives in that venv
    where = subprocess.run([str(venv / "bin/python"), "-c",
                            "import venvd.client, os; print(venvd.client.__path__[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv))
    # the command starts like the hooks' client, with -I -S: PYTHONPATH and site are not
    # looked at (a sitecustomize there would otherwise run before venvd)
    custom = sandbox.root / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text(f"open({str(custom / 'ran')!r}, 'w')\n")
    version = subprocess.run([str(link), "--version"], capture_output=True, text=True,
                             env={**sandbox.env, "PYTHONPATH": str(custom)})
    assert version.returncode == 0 and version.stdout.startswith("venvd "), version
    assert not (custom / "ran").exists()

    # twice: one block per rc file, upgraded in place
    again = install(sandbox)
    assert again.returncode == 0, again.stderr
    rcs = [home / ".bashrc"]
    if shutil.which("zsh"):
        rcs.append(home / ".zshrc")
    if shutil.which("fish"):
        rcs.append(home / ".config/fish/config.fish")
    for rc in rcs:
        assert rc.read_text().count(BEGIN) == 1, rc

    # a new shell reading the real rc file, with ~/.local/bin not yet on PATH
    project = sandbox.project("installed", pythons[-1].minor, "")
    sh = installed_shell(sandbox, "bash", project)
    assert sh.run("command -v venvd").strip() == str(link)
    allow_activates_and_leaves(sh, project, pythons[-1])

    removed = install(sandbox, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not venv.exists() and not link.is_symlink()
    for rc in rcs:  # install.sh made them: with its block gone they are empty, and go
        assert not rc.exists(), rc
    wait_for(lambda: not sandbox.alive(), 20, "the daemon to stop on uninstall")


def test_no_modify_rc_and_bad_flags(sandbox: Sandbox) -> None:
    bashrc = sandbox.home / ".bashrc"
    bashrc.write_text("# mine\n")
    bad = install(sandbox, "--frobnicate")
    assert bad.returncode == 2 and "unknown option" in bad.stderr
    result = install(sandbox, "--no-modify-rc")
    assert result.returncode == 0, result.stderr
    assert bashrc.read_text() == "# mine\n"
    assert (sandbox.home / ".local/bin/venvd").is_symlink()
    install(sandbox, "--uninstall")
    assert bashrc.read_text() == "# mine\n"
