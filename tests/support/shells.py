"""Drive real interactive shells in a pty, the way a person at a terminal would."""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pexpect

from venvd.shell import SHELLS as REGISTRY

from support import newshells
from support.newshells import (
    NEW_ARGS,
    NEW_FAMILY,
    NEW_SYNTAX,
    end_pattern,
    mark_line,
    new_rc,
    status_command,
    status_line,
    var_line,
)

#: Every shell venvd supports: the tests run in each (a new shell needs a SYNTAX entry and,
#: in ``write_rc``/``Shell``, how to start it).
SHELLS = tuple(REGISTRY)
_counter = itertools.count()

#: Which syntax each shell's test steps are written in (the scenario table's STEP).
FAMILY = {"bash": "posix", "zsh": "posix", "fish": "fish", **NEW_FAMILY}

#: How each shell reads a variable, tests a condition, and finds a command.
SYNTAX = {
    "bash": {"var": '"${%s-}"', "cd": 'cd "$%s"'},
    "zsh": {"var": '"${%s-}"', "cd": 'cd "$%s"'},
    "fish": {"var": '"$%s"', "cd": 'cd "$%s"'},
    **NEW_SYNTAX,
}


def shell_path(kind: str) -> Optional[str]:
    return newshells.shell_path(kind) if kind in NEW_FAMILY else shutil.which(kind)


def write_rc(kind: str, env: dict[str, str], before: str = "", after: str = "") -> dict[str, str]:
    """The shell's startup file with the hook line the README gives; returns env additions."""
    home = Path(env["HOME"])
    if kind == "bash":
        rc = home / ".bashrc"
        rc.write_text(f"PS1='$ '\n{before}\n{REGISTRY[kind].hook_line()}\n{after}\n")
        return {}
    if kind == "zsh":
        rc = home / ".zshrc"
        rc.write_text(f"PROMPT='%% '\nunsetopt BEEP\n{before}\n{REGISTRY[kind].hook_line()}\n"
                      f"{after}\n")
        return {"ZDOTDIR": str(home)}
    if kind in NEW_FAMILY:
        return new_rc(kind, env, before, after)
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "fish"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.fish").write_text(
        f"function fish_greeting; end\nfunction fish_prompt; echo -n '> '; end\n{before}\n"
        f"{REGISTRY[kind].hook_line()}\n{after}\n")
    return {}


class Shell:
    """One interactive shell; ``run`` sends a command line and returns what it printed."""

    def __init__(self, kind: str, env: dict[str, str], cwd: Path, rc_before: str = "",
                 rc_after: str = "", own_rc: bool = True) -> None:
        """*own_rc*: write the rc file with the hook line; else use the one in HOME as is."""
        exe = shell_path(kind)
        if exe is None:
            raise RuntimeError(f"{kind} is not installed")
        self.kind = kind
        home = Path(env["HOME"])
        extra = write_rc(kind, env, rc_before, rc_after) if own_rc else {}
        env = {**env, **extra, "TERM": "dumb"}
        args = {"bash": ["--noprofile", "--rcfile", str(home / ".bashrc"), "-i"],
                "zsh": ["-i"], "fish": ["-i"], **NEW_ARGS}[kind]
        self.child = pexpect.spawn(exe, args, env=env, cwd=str(cwd), encoding="utf-8",
                                   codec_errors="replace", timeout=30, dimensions=(50, 400))
        # pexpect waits 50 ms before each send and 100 ms after closing, for programs that
        # drop input typed too early; a shell's line editor queues it, and every command
        # here is matched by its own markers
        self.child.delaybeforesend = None
        self.child.delayafterclose = 0.01
        self.transcript: list[str] = []
        self.prompt_output = ""
        self.run("true")  # the shell is up and its first prompt has run

    def run(self, command: str, timeout: float = 30) -> str:
        """Run *command*; return its output (stdout and stderr, as the terminal shows them)."""
        n = next(_counter)
        begin, end = f"@@B{n}@@", f"@@E{n}@@"
        # The markers are printed in two halves so that the echoed command line never
        # matches them; only the command's own output does.
        self.send(mark_line(self.kind, begin, end, command)
                  or f"printf '%s%s\\n' '@@B{n}' '@@'; {command}; "
                  f"printf '%s%s\\n' '@@E{n}' '@@'")
        before = newshells.expect(self.child, self.kind, re.escape(begin) + r"\r?\n(.*?)"
                                  + end_pattern(self.kind, end), timeout)
        assert self.child.match is not None
        out = str(self.child.match.group(1)).replace("\r\n", "\n")
        self.transcript.append(before + out)
        self.prompt_output = before  # what the prompt printed before the command (messages)
        return out

    def status_of(self, command: str) -> int:
        """Run *command* on a line of its own; return ``$?`` as seen at the next command line,
        after the prompt (and so the hook) ran in between."""
        self.send(status_command(self.kind, command))
        var = "$status" if self.kind == "fish" else "$?"
        self.send(status_line(self.kind, command) or f"printf '@@S%s@@\\n' {var}")
        newshells.expect(self.child, self.kind, r"@@S(\d+)@@", 30)
        assert self.child.match is not None
        return int(self.child.match.group(1))

    def send(self, line: str) -> None:
        """Type *line* (for a line whose output nobody waits for, as ``exit`` or a nested
        shell)."""
        newshells.send(self.child, self.kind, line)

    def var(self, name: str) -> str:
        return self.run(var_line(self.kind, name)
                        or f"printf '%s' {SYNTAX[self.kind]['var'] % name}").strip("\n")

    def cd_var(self, name: str) -> str:
        """``cd`` into the directory named by environment variable *name* (never typed)."""
        return self.run(SYNTAX[self.kind]["cd"] % name)

    def prompts_until(self, check: Callable[[], bool], timeout: float = 60,
                      what: str = "condition") -> None:
        """Press enter until *check* holds (each prompt runs the hook) or the deadline passes."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind}: {what} did not hold within {timeout} s;\n"
                                     + "".join(self.transcript[-5:]))
            self.run("true")

    def close(self) -> None:
        if self.child.isalive():
            self.send("exit")
            with contextlib.suppress(pexpect.TIMEOUT):
                newshells.wait_exit(self.child, self.kind, 5)
        self.child.close(force=True)
