"""Prompt and cd costs in elvish and tcsh (bench/run --only more-shells).

Their prompt hooks (elvish's ``edit:before-readline`` and ``after-chdir``, tcsh's ``precmd``
alias) run only in an interactive shell, so each is driven as a user would drive it: in a
pty, a line typed, then the next prompt awaited. A round is ``cd`` into the project, an empty
line (the idle prompt), ``cd`` out of it, each timed from the line sent to the next prompt
seen; the same rounds with no tool loaded are the baseline bench.py subtracts (the pty, the
line editor and the shell's own work). Standard library only.

direnv hooks both shells (``direnv hook elvish``, ``direnv hook tcsh``); mise hooks elvish
(``mise activate elvish``, a module) and not tcsh.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Optional

SHELLS = ("elvish", "tcsh")
#: Which tools hook which shell (the others are "not supported" in the table).
SUPPORTED = {("elvish", "venvd"), ("elvish", "direnv"), ("elvish", "mise"),
             ("tcsh", "venvd"), ("tcsh", "direnv")}
NOT_HOOKED = {"mise/tcsh": "mise has no tcsh hook"}
MEASURES = ("cd into a project", "idle prompt", "cd out of it")
TIMEOUT = 60.0

_MARK = "@@bench-prompt@@ "
# elvish redraws only what changed on the screen (a prompt's text may come in pieces) and
# turns bracketed paste on as its editor starts reading a line, after before-readline ran:
# that is its mark. tcsh prints each prompt once, whole, after precmd ran.
_PROMPT_MARK = {"elvish": "\x1b[?2004h", "tcsh": _MARK}
_ELVISH_RC = f"set edit:prompt = {{ put '{_MARK}' }}\nset edit:rprompt = {{ put '' }}\n"
_TCSH_RC = f"set prompt = '{_MARK}'\nunset autologout\n"
_INIT = {
    ("elvish", "venvd"): "eval (venvd hook elvish | slurp)",
    ("elvish", "direnv"): "eval (direnv hook elvish | slurp)",
    ("elvish", "mise"): "use mise\nmise:activate",  # the module prepare() saves
    ("tcsh", "venvd"): 'eval "`venvd hook tcsh`"',
    ("tcsh", "direnv"): "eval `direnv hook tcsh`",
}
#: The line printing VIRTUAL_ENV at the end (to check the tool did activate).
_SHOW_VE = {"elvish": "echo VE=$E:VIRTUAL_ENV'|'", "tcsh": 'echo "VE=`printenv VIRTUAL_ENV`|"'}


def available(shell: str) -> bool:
    return shutil.which(shell) is not None


def prepare(shell: str, tool: Optional[str], env: dict[str, str], work: Path) -> list[str]:
    """Write the rc file loading *tool*'s hook (none: the baseline); return the argv."""
    init = _INIT[(shell, tool)] if tool else ""
    if shell == "elvish":
        if tool == "mise":  # mise's elvish hook is a module: `use` finds it in lib/
            lib = Path(env["XDG_CONFIG_HOME"]) / "elvish" / "lib"
            lib.mkdir(parents=True, exist_ok=True)
            code = subprocess.run(["mise", "activate", "elvish"], env=env, check=True,
                                  capture_output=True, text=True).stdout
            (lib / "mise.elv").write_text(code)
        rc = work / f"rc-{tool or 'none'}.elv"
        rc.write_text(_ELVISH_RC + init + "\n")
        return ["elvish", "-rc", str(rc)]
    Path(env["HOME"], ".tcshrc").write_text(_TCSH_RC + init + "\n")
    return ["tcsh", "-i"]


class Pty:
    """A shell in a pty: type a line, wait for the next prompt."""

    def __init__(self, shell: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.shell = shell
        self.seen = ""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the shell
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, {**env, "TERM": "dumb"})
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        self.startup = self.prompt()  # what the rc file printed

    def prompt(self) -> str:
        """Wait for the next prompt; return what came before it."""
        marker = _PROMPT_MARK[self.shell]
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise RuntimeError(f"{self.shell}: no prompt within {TIMEOUT} s; "
                                   f"the terminal showed {self.seen[-800:]!r}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise RuntimeError(f"{self.shell} ended: {self.seen[-800:]!r}")
            self.seen += chunk.decode("utf-8", "replace")
        before, _, self.seen = self.seen.partition(marker)
        return before

    def line(self, text: str) -> float:
        """Type *text* and Enter; the seconds until the next prompt."""
        start = time.perf_counter()
        os.write(self.fd, text.encode() + b"\r")
        self.prompt()
        return time.perf_counter() - start

    def close(self) -> None:
        os.write(self.fd, b"exit\r")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def hook_error(shell: str, tool: str, env: dict[str, str], work: Path) -> Optional[str]:
    """Why *tool*'s hook does not load in *shell* (the error it prints at start), if so."""
    sh = Pty(shell, prepare(shell, tool, env, work), env, work)
    sh.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", sh.startup)
    errors = [ln.strip() for ln in text.splitlines() if "Exception" in ln or "rror" in ln]
    return f"its {shell} hook does not load: {' '.join(errors[:2])}" if errors else None


def samples(shell: str, tool: Optional[str], env: dict[str, str], project: Path,
            outside: Path, rounds: int, work: Path) -> tuple[dict[str, list[float]], str]:
    """Per-measure samples in ms, and what VIRTUAL_ENV ended as."""
    for folder in (project, outside):  # typed as they are
        if not re.fullmatch(r"[\w./-]+", str(folder)):
            raise RuntimeError(f"a bench folder needs quoting: {folder}")
    found: dict[str, list[float]] = {m: [] for m in MEASURES}
    sh = Pty(shell, prepare(shell, tool, env, work), env, outside)
    try:
        for folder in (project, outside, project, outside):  # warm up
            sh.line(f"cd {folder}")
        for _ in range(rounds):
            for measure, text in zip(MEASURES, (f"cd {project}", "", f"cd {outside}")):
                found[measure].append(sh.line(text) * 1e3)
        sh.line(f"cd {project}")
        os.write(sh.fd, _SHOW_VE[shell].encode() + b"\r")
        shown = sh.prompt()
    finally:
        sh.close()
    ve = re.findall(r"VE=([^|\r\n]*)\|", shown)
    return found, ve[-1] if ve else ""
