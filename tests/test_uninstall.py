"""./install.sh --uninstall leaves nothing unexplained (issue 13, item 6): projects get their
own ``.venv`` back, venvd's files go (``--purge``) or are each listed with their size and the
command removing them; and a login bash in a fresh HOME has the hook."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pexpect
import pytest
from test_install import install, installed_shell

from venvd.client.unmanage import EXCLUDE_NOTE, drop_exclude, give_back
from venvd.daemon import kernels

from conftest import Py, Sandbox

#: What may appear in HOME between install and uninstall and is not venvd's: bash's history
#: (the test's shell), pip's cache (install.sh's pip), ~/.rustup (pip's user agent runs
#: `rustc --version`, and where that is a rustup proxy it writes its settings), the XDG base
#: folders, left empty (other programs share them).
NOT_VENVDS = re.compile(
    r"\.bash_history|\.cache(/pip(/.*)?)?|\.rustup(/.*)?|\.local(/share|/state)?|\.config")


def tree(*roots: Path) -> set[str]:
    """Every path under *roots* (symlinks as themselves, never followed)."""
    found = set()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                found.add(os.path.join(folder, name))
    return found


def new_paths(box: Sandbox, before: set[str], roots: list[Path]) -> set[str]:
    home = str(box.home) + "/"
    return {p for p in tree(*roots) - before
            if not (p.startswith(home) and NOT_VENVDS.fullmatch(p[len(home):]))}


def two_synced_projects(box: Sandbox, python: Py) -> tuple[Path, Path]:
    """Two allowed, synced projects: a git repository (venvd adds to its info/exclude) and
    one whose own ``.venv`` folder venvd moved aside."""
    plain = box.project("plain", python.minor, "")
    subprocess.run(["git", "init", "--quiet", str(plain)], check=True)
    had = box.project("had", python.minor, "")
    (had / ".venv").mkdir()
    (had / ".venv" / "mine.txt").write_text("keep me\n")
    return plain, had


def sync_with_installed_venvd(box: Sandbox, *projects: Path) -> None:
    venvd = str(box.home / ".local/bin/venvd")
    for project in projects:
        subprocess.run([venvd, "allow", str(project)], env=box.env, check=True,
                       capture_output=True, timeout=60)
    for project in projects:
        assert box.wait_state(project, timeout=180)["state"] == "synced"


@pytest.mark.parametrize("purge", [True, False], ids=["purge", "listed"])
def test_uninstall_gives_projects_back_and_accounts_for_every_file(
        sandbox: Sandbox, pythons: list[Py], purge: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pythons:
        pytest.skip("no Python 3.9+ interpreter found")
    plain, had = two_synced_projects(sandbox, pythons[-1])
    exclude = plain / ".git/info/exclude"
    exclude_before = exclude.read_text()
    roots = [sandbox.home, Path(sandbox.env["XDG_RUNTIME_DIR"]), sandbox.root / "projects"]
    before = tree(*roots)
    assert install(sandbox).returncode == 0
    sync_with_installed_venvd(sandbox, plain, had)
    assert (had / ".venv.before-venvd" / "mine.txt").exists()
    assert exclude.read_text() != exclude_before  # venvd's lines are there
    # the other pieces venvd may have written: a service unit and a Jupyter kernel
    service = subprocess.run([str(sandbox.home / ".local/bin/venvd"), "daemon",
                              "install-service"], env=sandbox.env, capture_output=True,
                             text=True, timeout=120)
    assert service.returncode == 0, service.stderr
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(sandbox.home / ".local/share/jupyter"))
    kernel = kernels.write(str(plain), pythons[-1].version)
    sh = installed_shell(sandbox, "bash", plain)  # a shell open in a project meanwhile
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{plain}/.venv", 60, "activation")

    result = install(sandbox, "--uninstall", *(["--purge"] if purge else []))
    assert result.returncode == 0, result.stderr + result.stdout
    # its prompts go on quietly (no message of venvd's, no error of bash's), and start no
    # daemon
    assert sh.run("cd .. && cd plain") == ""
    assert sh.run("true") == ""
    for prompts in sh.transcript[-2:]:
        assert not re.search(r"venvd|bash: |No such file", prompts), prompts
    sh.close()
    assert not sandbox.alive()
    assert not sandbox.alive()
    assert not os.path.lexists(plain / ".venv")
    assert (had / ".venv" / "mine.txt").read_text() == "keep me\n"  # its own, back
    assert not (had / ".venv").is_symlink()
    assert not os.path.lexists(had / ".venv.before-venvd")
    assert exclude.read_text() == exclude_before
    assert not kernel.exists()
    assert f"removed the Jupyter kernel {kernel}" in result.stdout
    assert "removed the systemd service" in result.stdout
    left = new_paths(sandbox, before, roots)
    if purge:
        assert left == set(), result.stdout
        return
    # each piece listed once, with a size and the command that removes it; running those
    # commands leaves nothing of venvd's
    listed = re.findall(r"^venvd:\s+[\d.]+ [kMG]?B  (\S+)  \(.*\); remove with: (rm -rf -- \S+)$",
                        result.stdout, re.M)
    assert listed, result.stdout
    assert all(os.path.lexists(path) for path, _ in listed)
    assert any(path == str(sandbox.home / ".local/share/venvd") for path, _ in listed)
    for _, command in listed:
        subprocess.run(command, shell=True, check=True)
    assert new_paths(sandbox, before, roots) == set(), result.stdout


def test_a_login_bash_in_a_fresh_home_has_the_hook(sandbox: Sandbox) -> None:
    result = install(sandbox)
    assert result.returncode == 0, result.stderr + result.stdout
    env = {k: v for k, v in sandbox.env.items() if k != "PATH"}
    env.update(PATH="/usr/bin:/bin", TERM="dumb", PS1="$ ")
    bash = pexpect.spawn("bash", ["-l", "-i"], env=env, cwd=str(sandbox.root),
                         encoding="utf-8", timeout=30)
    try:
        # the marker in two halves: the echoed command line never matches it
        bash.sendline('echo "@@P""C:$PROMPT_COMMAND@@"')
        bash.expect(r"@@PC:(.*)@@\r?\n")
        assert "_venvd_hook" in bash.match.group(1), bash.before
        bash.sendline("exit")
        bash.expect(pexpect.EOF)
    finally:
        bash.close(force=True)
    assert f"to {sandbox.home}/.profile" in result.stdout  # it says what it made


def test_only_what_venvd_made_is_undone(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    (envs / "p-1" / "state").mkdir(parents=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    linked = tmp_path / "linked"  # a .venv link of the user's own, into another folder
    linked.mkdir()
    (linked / ".venv").symlink_to(mine)
    assert list(give_back(linked, envs)) == []
    assert os.readlink(linked / ".venv") == str(mine)

    twice = tmp_path / "twice"  # venvd moved a .venv aside twice: the newer comes back
    (twice / ".venv.before-venvd").mkdir(parents=True)
    (twice / ".venv.before-venvd.2").mkdir()
    (twice / ".venv.before-venvd.2" / "newer").touch()
    (twice / ".venv").symlink_to(envs / "p-1" / "state")
    assert list(give_back(twice, envs)) == [
        f"removed the .venv link in {twice}",
        f"restored {twice}/.venv (from .venv.before-venvd.2)",
        f"left {twice}/.venv.before-venvd (a .venv venvd moved aside)"]
    assert (twice / ".venv" / "newer").exists()


def test_only_venvds_lines_leave_the_exclude_file(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    exclude = tmp_path / ".git/info/exclude"
    exclude.write_text(f"# mine\n*.log\n{EXCLUDE_NOTE}\n/.venv\n/.venv.before-venvd\n/keep\n")
    assert drop_exclude(tmp_path) == str(exclude)
    assert exclude.read_text() == "# mine\n*.log\n/keep\n"
    assert drop_exclude(tmp_path) is None  # nothing of venvd's left


def test_uninstall_when_venvd_no_longer_runs(sandbox: Sandbox) -> None:
    """An install whose Python is gone (upgraded away): the rc blocks, completions and
    created files still go, from install.sh's own lists, and it says what it could not do."""
    before = tree(sandbox.home)
    assert install(sandbox).returncode == 0
    for python in (sandbox.home / ".local/share/venvd/venv/bin").glob("python*"):
        python.unlink()
    result = install(sandbox, "--uninstall")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "does not run: your projects' .venv links, its service, Jupyter kernels and data" \
        in result.stdout
    assert new_paths(sandbox, before, [sandbox.home]) == set(), result.stdout
