"""Shell support: hook scripts, activation diffs and per-shell quoting (stdlib only)."""

from __future__ import annotations

from collections.abc import Mapping

from venvd.shell.base import HookConfig, Shell, UnknownShell
from venvd.shell.bash import Bash
from venvd.shell.elvish import Elvish
from venvd.shell.fish import Fish
from venvd.shell.nu import Nu
from venvd.shell.tcsh import Tcsh
from venvd.shell.xonsh import Xonsh
from venvd.shell.zsh import Zsh

#: Every supported shell: a new one is a module and a line here.
SHELLS: dict[str, Shell] = {s.name: s for s in (Bash(), Zsh(), Fish())}
SHELLS.update({s.name: s for s in (Elvish(), Tcsh(), Nu(), Xonsh())})


def get_shell(name: str) -> Shell:
    """Return the shell named *name* (a login shell's leading ``-`` and a path are ignored)."""
    key = name.rsplit("/", 1)[-1].lstrip("-")
    try:
        return SHELLS[key]
    except KeyError:
        raise UnknownShell(f"unknown shell {name!r}; choose one of {', '.join(SHELLS)}") from None


def listing(environ: Mapping[str, str]) -> str:
    """``venvd hook --list``: a line ``NAME<tab>RC-FILE<tab>HOOK-LINE`` per rc file of every
    shell, the file to add the hook to first (what ``install.sh`` reads instead of a list of
    its own)."""
    return "".join(f"{name}\t{path}\t{shell.hook_line()}\n" for name, shell in SHELLS.items()
                   for path in shell.rc_paths(environ))


__all__ = ["SHELLS", "HookConfig", "Shell", "UnknownShell", "get_shell", "listing"]
