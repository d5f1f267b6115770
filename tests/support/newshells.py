"""How the test driver (support/shells.py) starts and speaks elvish, tcsh, nushell and xonsh.

What the tests type in each (the scenario steps, the checks) is in support/newsteps.py.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import pexpect

from venvd.shell import SHELLS as REGISTRY

NEW_FAMILY = {"elvish": "elvish", "tcsh": "tcsh", "nu": "nu", "xonsh": "xonsh"}

#: How each shell reads a variable (nu and xonsh: PATH joined with ':', as bash has it) and
#: cds into the folder a variable names.
NEW_SYNTAX = {
    "elvish": {"var": "$E:%s", "cd": "cd $E:%s"},
    # tcsh stops the whole line at an unset variable: read it only when it is set
    "tcsh": {"var": "", "cd": "cd $%s:q"},
    "nu": {"var": '($env | get -o %s | default "" | each {|v| $v | into string } | str join ":")',
           "cd": "cd $env.%s"},
    "xonsh": {"var": "@(__xonsh__.env.detype().get('%s', ''))", "cd": "cd @($%s)"},
}

NEW_ARGS: dict[str, list[str]] = {"elvish": [], "tcsh": ["-i"], "nu": [], "xonsh": ["-i"]}


def shell_path(kind: str) -> Optional[str]:
    """The shell's executable. The nushell npm package's ``nu`` is a node script that runs
    the real binary beside it: take that binary (no node in between at every start); xonsh
    may be in the test tools' venv only."""
    if kind == "xonsh":
        tools = os.environ.get("VENVD_TEST_TOOLS", "")
        return shutil.which("xonsh") or (tools and shutil.which("xonsh", path=tools)) or None
    found = shutil.which(kind)
    if found and kind == "nu" and Path(found).resolve().suffix == ".js":
        package = Path(found).resolve().parents[1]
        binaries = sorted(glob.glob(str(package / "node_modules/@nushell/*/bin/nu")))
        return binaries[0] if binaries else found
    return found


def var_line(kind: str, name: str) -> Optional[str]:
    """The line printing variable *name* (nothing when unset); ``None``: the driver's own."""
    if kind == "tcsh":
        return f"if ( $?{name} ) eval 'printf \"%s\" ${name}:q'"
    if kind == "xonsh":  # Python: no process
        return f"print(__xonsh__.env.detype().get('{name}', ''), end='')"
    return None


def new_rc(kind: str, env: dict[str, str], before: str, after: str,
           hook: Optional[str] = None) -> dict[str, str]:
    """The startup file with *hook* (default: the README's hook line); returns env additions."""
    home = Path(env["HOME"])
    line = REGISTRY[kind].hook_line() if hook is None else hook
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    if kind == "elvish":
        (config / "elvish").mkdir(parents=True, exist_ok=True)
        (config / "elvish" / "rc.elv").write_text(
            "set edit:prompt = { put '> ' }\nset edit:rprompt = { put '' }\n"
            f"{before}\n{line}\n{after}\n")
    elif kind == "tcsh":
        (home / ".tcshrc").write_text(f"set prompt = '> '\nunset autologout\n{before}\n"
                                      f"{line}\n{after}\n")
    elif kind == "nu":
        (config / "nushell").mkdir(parents=True, exist_ok=True)
        (config / "nushell" / "config.nu").write_text(
            "$env.config.show_banner = false\n$env.config.use_ansi_coloring = false\n"
            "$env.config.shell_integration = {osc2: false, osc7: false, osc8: false,"
            " osc9_9: false, osc133: false, osc633: false, reset_application_mode: false}\n"
            "$env.PROMPT_COMMAND = {|| '' }\n$env.PROMPT_COMMAND_RIGHT = {|| '' }\n"
            "$env.PROMPT_INDICATOR = {|| '> ' }\n"
            f"{_nu_consts(env)}{before}\n{line}\n{after}\n")
    else:
        (home / ".xonshrc").write_text(
            "$PROMPT = '> '\n$RIGHT_PROMPT = ''\n$TITLE = ''\n$XONSH_HISTORY_BACKEND = 'dummy'\n"
            "$XONSH_SHOW_TRACEBACK = True\n$COLOR_RESULTS = False\n"
            # a failing command must not end the test's line (the marker after it)
            "$XONSH_SUBPROC_RAISE_ERROR = False\n"
            # its readline shell asks for the cursor position before each prompt and reads
            # the answer (and whatever was typed meanwhile) with a 0.5 s timeout: on a
            # loaded machine a line was lost. The pty has no terminal: nobody to ask.
            "import xonsh.shells.readline_shell\n"
            "xonsh.shells.readline_shell._ensure_newline = lambda: None\n"
            f"{before}\n{line}\n{after}\n")
    return {}


def _nu_consts(env: dict[str, str]) -> str:
    """The scenario table's folders as constants: ``overlay use`` (how nushell activates a
    venv) takes its file at parse time, not from ``$env``."""
    return "".join(f"const {name} = {REGISTRY['nu'].quote(env[name])}\n"
                   for name in ("PROJ", "HAND") if name in env)


def _nu_wrap(command: str) -> str:
    """*command* as one step of a nushell line: a failing command would end the line (and
    the marker after it would never come), so its error is printed instead. ``overlay use``
    and a venv's deactivate (its ``overlay hide``) act on the scope they run in: left
    unwrapped (see ``end_pattern`` for when they fail)."""
    if command.startswith(("overlay ", "deactivate")):
        return command
    return f"try {{ {command} }} catch {{|e| print -e $e.msg }}"


def mark_line(kind: str, begin: str, end: str, command: str) -> Optional[str]:
    """The command line that prints *begin* (in two halves), runs *command*, then prints
    *end*; ``None``: the driver's own (POSIX-style) line. elvish's single quotes keep ``\\n``
    as it is, and a failing command raises an exception that would skip the end marker."""
    b1, b2 = begin[:-2], begin[-2:]
    e1, e2 = end[:-2], end[-2:]
    if kind == "nu":
        return (f"printf '%s%s\\n' '{b1}' '{b2}'; {_nu_wrap(command)}; "
                f"printf '%s%s\\n' '{e1}' '{e2}'")
    if kind == "xonsh":  # Python's print: no process for the markers
        return f"print('{b1}' '{b2}'); {command}; print('{e1}' '{e2}')"
    if kind != "elvish":
        return None
    return (f'printf "%s%s\\n" \'{b1}\' \'{b2}\'; try {{ {command} }} catch e {{ '
            f'echo (to-string $e[reason]) }}; printf "%s%s\\n" \'{e1}\' \'{e2}\'')


def end_pattern(kind: str, end: str) -> str:
    """What ends a command's output: in nushell, also the next prompt's start (an error in
    a command that ``_nu_wrap`` left alone ends the line before the marker)."""
    return f"(?:{re.escape(end)}|\\x1b\\[\\?2004h)" if kind == "nu" else re.escape(end)


def status_line(kind: str, command: str) -> Optional[str]:
    """The line printing ``@@S<status>@@`` after *command* ran on a line of its own (elvish
    has no exit status: a failure is an exception, which counts as 1)."""
    if kind == "elvish":
        return ('printf "@@S%s@@\\n" (if (eq $E:VENVD_T_FAILED 1) { put 1 } else { put 0 }); '
                "unset-env VENVD_T_FAILED")
    if kind == "tcsh":
        return "printf '@@S%s@@\\n' $status"
    if kind == "nu":
        return "printf '@@S%s@@\\n' $env.LAST_EXIT_CODE"
    if kind == "xonsh":
        return "printf '@@S%s@@\\n' @(__xonsh__.lastcmd.returncode)"
    return None


def status_command(kind: str, command: str) -> str:
    """*command* as sent on its own line before ``status_line`` (in nushell a bare ``false``
    is a value, not a command: the external one is meant)."""
    if kind == "elvish":
        return f"try {{ {command} }} catch e {{ set-env VENVD_T_FAILED 1 }}"
    if kind == "nu" and command in ("true", "false"):
        return f"^{command}"
    return command


# ---------------------------------------------------------------------------------------------
# pacing: nushell's and xonsh's line editors drop what was typed ahead while a command ran,
# and ask the terminal where the cursor is (a pty has no terminal to answer: the tests do)

CURSOR_QUERY = "\x1b[6n"
#: Each one's prompt, painted and waiting for a line (a venv's activate puts "(name) " first).
PROMPT = {"nu": r"\x1b\[J[^\x1b\r\n]*> .*?\x1b\[\?25h",
          "xonsh": r"\x1b\[\?2004h\r[^\x1b\r\n]*> "}


def _expect_paced(child: Any, pattern: str, timeout: float) -> str:
    if child.logfile_read is None:  # what the terminal showed, for a failure's message
        child.logfile_read = io.StringIO()
    seen = ""
    try:
        while child.expect([pattern, re.escape(CURSOR_QUERY)], timeout=timeout) == 1:
            seen += str(child.before or "")
            child.send("\x1b[1;1R")
    except pexpect.TIMEOUT:
        raise AssertionError(f"no {pattern!r} within {timeout} s; the terminal showed:\n"
                             f"{child.logfile_read.getvalue()[-3000:]!r}") from None
    return seen + str(child.before or "")


def send(child: Any, kind: str, line: str) -> None:
    """Type *line*; in nushell and xonsh, once the prompt is waiting for it."""
    if kind in PROMPT:
        if not getattr(child, "venvd_idle", False):
            child.venvd_stash = getattr(child, "venvd_stash", "") + _expect_paced(
                child, PROMPT[kind], 30)
        child.venvd_idle = False
    if kind == "nu":  # typed in one burst, a line waits 0.1 s in reedline; a paste does not
        child.send(f"\x1b[200~{line}\x1b[201~\r")
    else:
        child.sendline(line)


def expect(child: Any, kind: str, pattern: str, timeout: float) -> str:
    """``child.expect(pattern)`` (nushell and xonsh: answering cursor queries meanwhile, then
    waiting for the next prompt); returns all that came before the match."""
    if kind not in PROMPT:
        child.expect(pattern, timeout=timeout)
        return str(child.before or "")
    seen = getattr(child, "venvd_stash", "") + _expect_paced(child, pattern, timeout)
    match = child.match
    child.venvd_stash = _expect_paced(child, PROMPT[kind], timeout)
    child.venvd_idle = True
    child.match = match
    return seen


def wait_exit(child: Any, kind: str, timeout: float) -> None:
    """Wait for the shell to end (after ``exit``), answering cursor queries meanwhile: an
    unanswered one holds nushell 2 s on its way out."""
    patterns = [pexpect.EOF, re.escape(CURSOR_QUERY)] if kind in PROMPT else [pexpect.EOF]
    while child.expect(patterns, timeout=timeout) == 1:
        child.send("\x1b[1;1R")
