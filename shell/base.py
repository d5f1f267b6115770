"""What every shell provides, and the parts they share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Protocol

from venvd.daemon.errors import UsageError

#: Variable name -> new value, or ``None`` to unset it.
Changes = Mapping[str, Optional[str]]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class UnknownShell(UsageError, ValueError):
    """A shell name venvd has no support for."""


@dataclass(frozen=True)
class HookConfig:
    """Absolute paths baked into a hook, so the prompt path needs no lookups."""

    python: str
    export_argv: tuple[str, ...]
    socket: str
    generation: str
    state_db: str
    ready: str = ""  # the folder of activation snippets (see venvd.shell.ready)
    markers: tuple[str, ...] = ()  # files that make a folder a project
    pid_file: str = ""  # the daemon's: a cd with no daemon alive takes the client's path


class Shell(Protocol):
    """One supported shell: its hook text and how it spells exports."""

    name: str

    def hook(self, config: HookConfig) -> str:
        """The init code users eval from their rc file."""
        ...

    def export(self, changes: Changes) -> str:
        """Shell code applying *changes*, in sorted order; empty when there are none."""
        ...

    def quote(self, value: str) -> str:
        """*value* as one literal word of this shell, executing nothing."""
        ...

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        """Code telling the hook which activation it may revert by itself: (VENVD_STATE,
        VIRTUAL_ENV, VIRTUAL_ENV_PROMPT) of a plain venv activation, or ``None``."""
        ...


def check_name(name: str) -> str:
    """Refuse anything that is not a plain variable name (it would be spliced into code)."""
    if not _NAME.match(name):
        raise ValueError(f"not a variable name: {name!r}")
    return name
