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
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from venvd.shell import SHELLS, Shell
from venvd.shell.activation import VENV_VARIABLES, State, refusal, wanted_from

READY_NAME = ".venvd-ready"
#: One snippet per syntax: the shells that share a suffix share the file.
FORMATS: dict[str, Shell] = {}
for _shell in SHELLS.values():
    FORMATS.setdefault(_shell.snippet_suffix, _shell)
SUFFIXES = tuple(FORMATS)


def snippet_path(ready_dir: Path, project: str, suffix: str) -> Path:
    return Path(f"{ready_dir}{project}") / f"{READY_NAME}.{suffix}"


def fast_state(project: str, exports: Mapping[str, object]) -> Optional[State]:
    """The state a hook records when it activates *exports* over a clean environment, or
    ``None`` when they are not a plain venv activation (a conda env: left to the client)."""
    wanted = wanted_from(exports, project)
    variables = wanted.variables
    if wanted.path_prepend is None or set(variables) != set(VENV_VARIABLES) \
            or not variables.get("VIRTUAL_ENV"):
        return None
    state = State("", project, dict.fromkeys(variables), variables, wanted.path_prepend)
    # an env the model refuses (a ':' in its path) is the client's, which says why
    return state if state.simple and refusal(wanted) is None else None


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
    pairs = tuple(zip(("_venvd_r_env", "_venvd_r_prompt", "_venvd_r_blob"), values))
    texts = {suffix: shell.snippet(pairs) for suffix, shell in FORMATS.items()}
    try:
        folder = snippet_path(ready_dir, project, SUFFIXES[0]).parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for suffix, text in texts.items():
            target = snippet_path(ready_dir, project, suffix)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(text, encoding="utf-8", errors="surrogateescape")  # paths as bytes
            os.replace(tmp, target)
    except OSError:
        remove(ready_dir, project)  # e.g. a folder in the way: the client still works


def remove(ready_dir: Path, project: str) -> None:
    for suffix in SUFFIXES:
        with contextlib.suppress(OSError):
            snippet_path(ready_dir, project, suffix).unlink()
