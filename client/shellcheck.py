"""``venvd doctor``'s checks of the shell it runs in, and of the files a login bash reads.

The rc file can hold the hook line and the shell still lack the hook: a login bash reads
``~/.bash_profile`` (or ``~/.bash_login``, or ``~/.profile``), not ``~/.bashrc``, and a shell
started with ``--norc`` reads neither. The doctor is a child of the shell, so it cannot look
at the shell's functions; the hook tells it instead: at each prompt it exports
``VENVD_HOOKED=<shell>:<pid>``, and the doctor compares that pid with its parent's.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple, Optional

import psutil

from venvd.daemon.paths import Paths
from venvd.shell import SHELLS

#: What the hooks export (at each prompt; elvish's and tcsh's when they are loaded):
#: ``<shell>:<pid>``.
MARKER = "VENVD_HOOKED"
#: The shells whose hook exports it (every shell venvd hooks).
MARKED = ("bash", "zsh", "fish", "nu", "xonsh", "elvish", "tcsh")
#: What a login bash reads: the first of these that exists, and only that one.
LOGIN_FILES = ("~/.bash_profile", "~/.bash_login", "~/.profile")
SOURCE_BASHRC = "[ -f ~/.bashrc ] && . ~/.bashrc"


class Proc(NamedTuple):
    pid: int
    name: str


def _parent() -> Proc:
    pid = os.getppid()
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        name = "?"
    return Proc(pid, name.lstrip("-"))  # a login shell's name starts with "-"


def _marker(value: str) -> Optional[Proc]:
    shell, _, pid = value.partition(":")
    return Proc(int(pid), shell) if shell and pid.isdigit() else None


def _ancestors(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).parents()]
    except psutil.Error:
        return []


def check_this_shell(paths: Paths) -> tuple[bool, str]:
    """Whether the shell that started the doctor runs the venvd hook at its prompts."""
    parent, marker = _parent(), _marker(os.environ.get(MARKER, ""))
    here = f"{parent.name} (pid {parent.pid})"
    if marker is not None and marker.pid == parent.pid:
        return True, f"this shell: {here} runs the venvd hook at its prompts"
    if parent.name in MARKED:
        shell = SHELLS[parent.name]
        heard = (f" ({MARKER} comes from {marker.name}, pid {marker.pid}, a shell it was "
                 "started from)" if marker is not None else "")
        return False, (f"this shell: {here} does not run the venvd hook{heard}; it reads "
                       f"no rc file with '{shell.hook_line()}' (started with --norc, or a "
                       "login bash: see 'login bash')")
    if parent.name in SHELLS:
        return True, (f"this shell: {here} sets no marker the doctor can read; its rc file "
                      "is checked under 'hooks'")
    if marker is not None and marker.pid in _ancestors(parent.pid):
        return True, (f"this shell: started from {here}, inside {marker.name} (pid "
                      f"{marker.pid}), which runs the venvd hook")
    return True, f"this shell: started from {here}, not a shell; not checked"


def check_login_bash(paths: Paths) -> tuple[bool, str]:
    """Whether a login bash (ssh, ``bash -l``, a new terminal on some systems) gets the
    hook: it reads only the first of ``LOGIN_FILES`` that exists."""
    if shutil.which("bash") is None:
        return True, "login bash: bash is not installed"
    bash = SHELLS["bash"]
    first = next((f for f in LOGIN_FILES if _home(f).is_file()), None)
    login_text = _read(_home(first)) if first else ""
    if bash.hooked(login_text):
        return True, f"login bash: {first} sets up the hook"
    if not bash.hooked(_read(_home("~/.bashrc"))):
        return True, "login bash: ~/.bashrc has no hook to reach (see 'hooks')"
    if first is None:
        return False, ("login bash: none of ~/.bash_profile, ~/.bash_login, ~/.profile "
                       "exists, so a login bash never reads ~/.bashrc and has no hook; "
                       f"add '{SOURCE_BASHRC}' to ~/.bash_profile")
    if re.search(r"(\.|source)\s+\S*\.bashrc\b", login_text):
        return True, f"login bash: {first} -> ~/.bashrc"
    return False, (f"login bash: reads {first}, which does not read ~/.bashrc, so a login "
                   f"bash has no hook; add '{SOURCE_BASHRC}' to {first}")


def _home(path: str) -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"), path[2:])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
