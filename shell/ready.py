"""Activation snippets the daemon keeps ready, so a hook can ``cd`` without starting a process.

For each project the daemon has an answer for, it writes ``<ready dir><project>/READY_NAME``
(the project's real path mirrored under the private runtime folder), in each shell's syntax:
the env to activate, its prompt, and the activation state blob (see ``State.blob``), or empty
values for a project that is known and must stay inactive (not allowed). A hook finds the
project with file tests, sources the snippet and applies it with builtins; when anything is
unusual (no snippet, a venv activated by hand, a state it did not make) it falls back to the
``venvd export`` client.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from venvd.shell import fish, posix
from venvd.shell.activation import VENV_VARIABLES, State

READY_NAME = ".venvd-ready"


def snippet_path(ready_dir: Path, project: str, suffix: str) -> Path:
    return Path(f"{ready_dir}{project}") / f"{READY_NAME}.{suffix}"


def fast_state(project: str, exports: Mapping[str, object]) -> Optional[State]:
    """The state a hook records when it activates *exports* over a clean environment, or
    ``None`` when they are not a plain venv activation (a conda env: left to the client)."""
    path = exports.get("PATH")
    if not isinstance(path, str) or not path.startswith("prepend "):
        return None
    variables = {k: (None if v is None else str(v)) for k, v in exports.items() if k != "PATH"}
    if set(variables) != set(VENV_VARIABLES) or not variables.get("VIRTUAL_ENV"):
        return None
    state = State("", project, dict.fromkeys(variables), variables, path[len("prepend "):])
    return state if state.simple else None


def write(ready_dir: Path, project: str, exports: Optional[Mapping[str, object]]) -> None:
    """Keep *project*'s snippet: *exports* to activate, or ``None`` for "stay inactive".

    Exports a hook cannot apply itself remove the snippet instead (the client handles them).
    """
    if exports is None:
        values = ("", "", "")
    else:
        state = fast_state(project, exports)
        if state is None:
            remove(ready_dir, project)
            return
        values = (str(state.set["VIRTUAL_ENV"]), str(state.set["VIRTUAL_ENV_PROMPT"] or ""),
                  state.blob())
    names = ("_venvd_r_env", "_venvd_r_prompt", "_venvd_r_blob")
    texts = {
        "sh": "".join(f"{n}={posix.quote(v)}\n" for n, v in zip(names, values)),
        "fish": "".join(f"set {n} {fish.quote(v)}\n" for n, v in zip(names, values)),
    }
    try:
        folder = snippet_path(ready_dir, project, "sh").parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for suffix, text in texts.items():
            target = snippet_path(ready_dir, project, suffix)
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
    except OSError:
        remove(ready_dir, project)  # e.g. a folder in the way: the client still works


def remove(ready_dir: Path, project: str) -> None:
    for suffix in ("sh", "fish"):
        with contextlib.suppress(OSError):
            snippet_path(ready_dir, project, suffix).unlink()
