"""Tab completion as ./install.sh sets it up, pressed in real bash, zsh and fish (issue 13,
item 4): the scripts come from venvd's own parser, so a command or option added there is
completed without anyone writing completion code."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from test_install import install, installed_shell

from venvd.client import completions
from venvd.client.main import parser

from conftest import Sandbox
from support.shells import Shell

SHELLS = ("bash", "zsh", "fish")
COMPINIT = "autoload -Uz compinit && compinit\n"
#: Debian's bash-completion, where installed (the tests do not need it)
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


def press(sh: Shell, keys: str, expected: str) -> str:
    """Type *keys* (TABs included) at *sh*'s prompt; the terminal then shows *expected*
    (a regular expression); returns what matched. The line is never cancelled: a Ctrl-C
    racing the line editor would garble the next line typed."""
    sh.child.send(keys)
    try:
        sh.child.expect(expected, timeout=15)
    except pexpect.TIMEOUT:
        raise AssertionError(f"{sh.kind}: typing {keys!r} did not show {expected!r}; the "
                             f"terminal showed:\n{sh.child.before!r}") from None
    return str(sh.child.after)


def completes_status(sh: Shell) -> None:
    """st<TAB> makes "status ": the line runs venvd status --help."""
    press(sh, "venvd st\t--help\r", "usage: venvd status")
    sh.run("true")


def offered(sh: Shell, line: str) -> str:
    """What TAB lists after *line* (fish: its own ``complete -C``, which is what its pager
    shows; a dumb terminal gets no pager)."""
    if sh.kind == "fish":
        return sh.run(f"complete -C '{line}'")
    # bash lists on the second TAB; zsh on the first (a second would insert the first match)
    shown = press(sh, line + ("\t\t" if sh.kind == "bash" else "\t"), r"--all\s.*--json")
    press(sh, "help\r", "usage: venvd status")  # the line typed on: venvd status --help
    sh.run("true")
    return shown


def test_installed_completions_complete_commands_and_options(sandbox: Sandbox) -> None:
    missing = [kind for kind in SHELLS if shutil.which(kind) is None]
    if missing and not os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
        pytest.skip(f"{', '.join(missing)} not installed")
    assert not missing, f"{missing} required (VENVD_TEST_REQUIRE_SHELLS)"
    # a zsh user's .zshrc starts the completion system; install.sh's block comes after it
    (sandbox.home / ".zshrc").write_text(COMPINIT)
    # a login bash reads this file, which does not read ~/.bashrc: install.sh says so
    (sandbox.home / ".bash_profile").write_text("export EDITOR=vi\n")
    result = install(sandbox)
    assert result.returncode == 0, result.stderr + result.stdout
    assert (f"a login bash reads {sandbox.home}/.bash_profile, which does not read "
            f"{sandbox.home}/.bashrc") in result.stdout
    assert (sandbox.home / ".bash_profile").read_text() == "export EDITOR=vi\n"
    for kind in SHELLS:
        sh = installed_shell(sandbox, kind, sandbox.root)
        completes_status(sh)
        # --js<TAB> makes "--json " (argparse would take --js, but not --js--help)
        press(sh, "venvd status --js\t--help\r", "usage: venvd status")
        sh.run("true")
        listed = offered(sh, "venvd status --")
        assert "--json" in listed and "--all" in listed, (kind, listed)

    # the other orders: a compinit after venvd's block finds _venvd on fpath; a bash with
    # bash-completion loads the file itself at the first TAB after venvd
    zshrc = sandbox.home / ".zshrc"
    zshrc.write_text(zshrc.read_text().replace(COMPINIT, "", 1) + COMPINIT)
    completes_status(installed_shell(sandbox, "zsh", sandbox.root))
    if BASH_COMPLETION.exists():
        bashrc = sandbox.home / ".bashrc"
        bashrc.write_text(f". {BASH_COMPLETION}\n{bashrc.read_text()}")
        sh = installed_shell(sandbox, "bash", sandbox.root)
        assert "_shtab_venvd" not in sh.run("complete -p venvd 2>&1")  # not read at start
        completes_status(sh)

    removed = install(sandbox, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    for kind in SHELLS:
        path = completions.target(kind, sandbox.env)
        assert f"removed {path}" in removed.stdout
        assert not os.path.lexists(path)


def test_the_scripts_come_from_the_parser() -> None:
    """Every command of the parser is in every script: none is kept by hand."""
    top = parser()
    commands = next(a for a in top._actions if a.dest == "command").choices
    assert commands is not None and "completions" in commands
    for kind in SHELLS:
        text = completions.script(kind, parser())
        assert completions.MARK in text.splitlines()[:2]
        for name in commands:
            assert name in text, (kind, name)


def test_without_shtab_a_one_line_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shtab", None)  # as if not installed
    with pytest.raises(completions.MissingLibrary, match="completions need shtab"):
        completions.script("bash", parser())
