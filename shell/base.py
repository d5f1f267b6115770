"""What every shell provides, and the parts they share."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
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
    """One supported shell: everything about it that is not the same for every shell.

    A new shell is one module with a class that subclasses this protocol (for the defaults)
    plus one line in ``venvd.shell.SHELLS``; the CLI, ``doctor``, the snippets the daemon
    keeps ready, ``install.sh`` and the conformance tests all iterate over that registry.
    """

    name: str
    #: The startup file the hook line goes into, ``~`` for HOME (see ``rc_paths``).
    rc_file: str
    #: The file suffix of the activation snippets the daemon keeps ready for this shell's
    #: no-process path (shells sharing a syntax share a suffix, and so a file).
    snippet_suffix: str

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

    def hook_line(self) -> str:
        """The line a user adds to ``rc_file`` by hand (the README's)."""
        ...

    def rc_block(self) -> str:
        """The lines ``install.sh`` puts in ``rc_file``: ``~/.local/bin`` on PATH, then the
        hook, run only when venvd is there (an uninstalled venvd must not break the shell)."""
        ...

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        """A snippet the hook sources: each (variable, value) assigned, quoted."""
        ...

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        """Where this shell reads ``rc_file`` (the first: where to add the hook), then older
        places ``install.sh --uninstall`` also cleans."""
        return [expand_home(self.rc_file, environ)]

    def files(self, config: HookConfig) -> dict[str, str]:
        """Files the hook sources beside its text, ``{path: text}`` (paths in the private
        runtime folder): ``venvd hook`` writes each one that is missing."""
        return {}

    def hooked(self, rc_text: str) -> bool:
        """Whether an rc file's text sets up the hook (what ``venvd doctor`` checks)."""
        return f"venvd hook {self.name}" in rc_text


def expand_home(path: str, environ: Mapping[str, str]) -> str:
    """*path* with a leading ``~`` made *environ*'s HOME."""
    if path == "~" or path.startswith("~/"):
        return environ.get("HOME", os.path.expanduser("~")) + path[1:]
    return path


def check_name(name: str) -> str:
    """Refuse anything that is not a plain variable name (it would be spliced into code)."""
    if not _NAME.match(name):
        raise ValueError(f"not a variable name: {name!r}")
    return name
