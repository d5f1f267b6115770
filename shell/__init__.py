"""Shell support: hook scripts, activation diffs and per-shell quoting (stdlib only)."""

from __future__ import annotations

from venvd.shell.base import HookConfig, Shell, UnknownShell
from venvd.shell.bash import Bash
from venvd.shell.fish import Fish
from venvd.shell.zsh import Zsh

SHELLS: dict[str, Shell] = {s.name: s for s in (Bash(), Zsh(), Fish())}


def get_shell(name: str) -> Shell:
    """Return the shell named *name* (a login shell's leading ``-`` and a path are ignored)."""
    key = name.rsplit("/", 1)[-1].lstrip("-")
    try:
        return SHELLS[key]
    except KeyError:
        raise UnknownShell(f"unknown shell {name!r}; choose one of {', '.join(SHELLS)}") from None


__all__ = ["SHELLS", "HookConfig", "Shell", "UnknownShell", "get_shell"]
