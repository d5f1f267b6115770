"""What the shells that read data rather than code (nushell, xonsh) get: JSON lines.

Such a shell cannot (nushell) or need not (xonsh) evaluate text from a process; its hook
parses these lines and applies them with its own builtins, so no value is ever code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Optional

from venvd.shell.base import Changes, Shell, check_name

#: The ready snippets' suffix for these shells: one JSON object they share.
SUFFIX = "json"


def line(data: object) -> str:
    """*data* as one line of JSON (ASCII: a newline or any other character is escaped)."""
    return json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n"


def export(changes: Changes) -> str:
    """One line: ``set`` (name -> value; PATH as a list, as these shells keep it) and
    ``unset`` (names); empty when nothing changes."""
    sets: dict[str, object] = {}
    unsets = []
    for name in sorted(changes):
        value = changes[name]
        if value is None:
            unsets.append(check_name(name))
        else:
            sets[check_name(name)] = value.split(":") if name == "PATH" else value
    if not sets and not unsets:
        return ""
    return line({**({"set": sets} if sets else {}), **({"unset": unsets} if unsets else {})})


def remember(state: Optional[tuple[str, str, str]]) -> str:
    """One line: the activation the hook may revert by itself (see ``Shell.remember``)."""
    return line({"remember": list(state or ("", "", ""))})


def snippet(values: Sequence[tuple[str, str]]) -> str:
    """The ready snippet: one JSON object, variable -> value."""
    return line({check_name(n): v for n, v in values})


class DataShell(Shell):
    """The members the shells reading these lines share (their hooks differ)."""

    snippet_suffix = SUFFIX

    def export(self, changes: Changes) -> str:
        return export(changes)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        return remember(state)

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return snippet(values)


def news_line(ident: int, project: str, text: str, heard: Sequence[int]) -> str:
    """One item of the daemon's news file (see venvd.shell.news) as these hooks read it:
    *heard*, the pids of the shells that heard it already from a command they ran."""
    return line({"id": ident, "project": project, "text": text, "heard": list(heard)})


def user_name() -> str:
    """The user as nushell's ``ls -l`` names a file's owner (the uid when it has no name)."""
    import pwd  # only `venvd hook` asks, once per shell start

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
