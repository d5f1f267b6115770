"""What driving nushell and xonsh in a pty takes beyond bash, zsh and fish (see shells.py)."""

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

KINDS = ("nu", "xonsh")
FAMILY = {"nu": "nu", "xonsh": "xonsh"}

#: How each shell reads a variable (PATH joined with ':', as bash has it), cds into the
#: folder a variable names, and shows the last command's exit status.
SYNTAX = {
    "nu": {"var": '($env | get -o %s | default "" | each {|v| $v | into string } | str join ":")',
           "cd": "cd $env.%s", "status": "$env.LAST_EXIT_CODE"},
    "xonsh": {"var": "@(__xonsh__.env.detype().get('%s', ''))", "cd": "cd @($%s)",
              "status": "@(__xonsh__.lastcmd.returncode)"},
}

#: Arguments that start each one interactive.
ARGS: dict[str, list[str]] = {"nu": [], "xonsh": ["-i"]}

#: nushell's and xonsh's line editors ask the terminal where the cursor is and wait for the
#: answer; a pty has no terminal to answer, so the tests do.
CURSOR_QUERY = "\x1b[6n"


def shell_path(kind: str) -> Optional[str]:
    """The shell's executable. The nushell npm package's ``nu`` is a node script that runs
    the real binary beside it: take that binary (no node in between at every start)."""
    if kind == "xonsh":
        tools = os.environ.get("VENVD_TEST_TOOLS", "")
        found = shutil.which("xonsh") or (tools and shutil.which("xonsh", path=tools))
        return found or None
    found = shutil.which(kind)
    if found and kind == "nu" and Path(found).resolve().suffix == ".js":
        package = Path(found).resolve().parents[1]
        binaries = sorted(glob.glob(str(package / "node_modules/@nushell/*/bin/nu")))
        return binaries[0] if binaries else found
    return found


def write_rc(kind: str, env: dict[str, str], before: str, after: str,
             hook: Optional[str] = None) -> None:
    """The rc file with the test's prompt and *hook* (default: the README's hook line)."""
    hook = REGISTRY[kind].hook_line() if hook is None else hook
    home = Path(env["HOME"])
    if kind == "nu":
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "nushell"
        config.mkdir(parents=True, exist_ok=True)
        (config / "config.nu").write_text(
            "$env.config.show_banner = false\n$env.config.use_ansi_coloring = false\n"
            "$env.config.shell_integration = {osc2: false, osc7: false, osc8: false,"
            " osc9_9: false, osc133: false, osc633: false, reset_application_mode: false}\n"
            "$env.PROMPT_COMMAND = {|| '' }\n$env.PROMPT_COMMAND_RIGHT = {|| '' }\n"
            "$env.PROMPT_INDICATOR = {|| '> ' }\n"
            f"{_nu_consts(env)}{before}\n{hook}\n{after}\n")
    elif kind == "xonsh":
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
            f"{before}\n{hook}\n{after}\n")


def _nu_consts(env: dict[str, str]) -> str:
    """The scenario table's folders as constants: ``overlay use`` (how nushell activates a
    venv) takes its file at parse time, not from ``$env``."""
    return "".join(f"const {name} = {REGISTRY['nu'].quote(env[name])}\n"
                   for name in ("PROJ", "HAND") if name in env)


def wrap(kind: str, command: str) -> str:
    """*command* as one step of a line: in nushell a failing command would end the line
    (and the marker after it would never come), so its error is printed instead."""
    if kind == "nu" and not command.startswith(("overlay ", "deactivate")):
        # (`overlay use`, and a venv's deactivate, its `overlay hide`, act on the scope they
        # run in: not wrapped; see end_marker for when they fail)
        return f"try {{ {command} }} catch {{|e| print -e $e.msg }}"
    return command


#: Each shell's prompt, painted and waiting for a line (see write_rc): their line editors
#: drop whatever was typed ahead while a command ran, so a line is sent only once this is on
#: screen. A venv's activate script puts "(name) " first.
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
    """Type *line*; in nushell, once the prompt is waiting for it."""
    if kind in PROMPT:
        if not getattr(child, "venvd_idle", False):
            child.venvd_stash = getattr(child, "venvd_stash", "") + _expect_paced(
                child, PROMPT[kind], 30)
        child.venvd_idle = False
    child.sendline(line)


def end_marker(kind: str, end: str) -> str:
    """The pattern that ends a command's output: in nushell, also the next prompt's start
    (an error in a command that ``wrap`` left alone ends the line before the marker)."""
    return f"(?:{re.escape(end)}|\\x1b\\[\\?2004h)" if kind == "nu" else re.escape(end)


def expect(child: Any, kind: str, pattern: str, timeout: float) -> str:
    """``child.expect(pattern)``, answering cursor queries meanwhile and then waiting for
    the next prompt; returns all that came before the match."""
    if kind not in PROMPT:
        child.expect(pattern, timeout=timeout)
        return str(child.before or "")
    seen = getattr(child, "venvd_stash", "") + _expect_paced(child, pattern, timeout)
    match = child.match
    child.venvd_stash = _expect_paced(child, PROMPT[kind], timeout)
    child.venvd_idle = True
    child.match = match
    return seen


#: Test steps written in each shell's own syntax (``%s``: a value, spliced in as given).
CODE = {
    "nu": {
        "prepend_path": "$env.PATH = ($env.PATH | prepend '%s')",
        "no_client": '$env.__venvd_c.py = "/nonexistent"',
        "other_hook": ("$env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt | append"
                       " {|| $env.OTHER_RAN = (($env.OTHER_RAN? | default 0) + 1) })"),
        "fail3": "^sh -c 'exit 3'",
        "false": "^false",  # `false` alone is a value in nushell, not a command
        "true": "^true",
        "hostile_venv": """if $env.VIRTUAL_ENV? == $"($env.HOSTILE)/.venv" { printf '%s' yes }""",
        "hostile_python": ("if (which python | get 0.path) == $\"($env.HOSTILE)/.venv/bin/python\""
                           " { printf '%s' yes }"),
        "nested": "nu",
        "activate": "overlay use '%s/bin/activate.nu'",
    },
    "xonsh": {
        "prepend_path": "$PATH.insert(0, '%s')",
        "no_client": '_venvd.config["py"] = "/nonexistent"',
        "other_hook": ("$OTHER_RAN = '0'\n@events.on_pre_prompt\ndef _other_hook(**kw):\n"
                       "    $OTHER_RAN = str(int($OTHER_RAN) + 1)\n"),
        "fail3": "sh -c 'exit 3'",
        "hostile_venv": "printf '%s' @('yes' if $VIRTUAL_ENV == $HOSTILE + '/.venv' else 'no')",
        "hostile_python": ("printf '%s' @('yes' if __import__('shutil').which('python',"
                           " path=__xonsh__.env.detype()['PATH']) =="
                           " $HOSTILE + '/.venv/bin/python' else 'no')"),
        "nested": f"{shell_path('xonsh')} -i",
        "activate": "source '%s/bin/activate.xsh'",
    },
}


#: The scenario table's steps (test_path_scenarios.STEP) in each shell's syntax.
STEPS = {
    "nu": {
        "in": "cd $env.PROJ", "two": "cd $env.TWO", "colon": "cd $env.COLON",
        "home": "$env.PYTHONHOME = $env.HOMEVAL", "sub": "cd ($env.PROJ | path join sub)",
        "out": "cd $env.OUT",
        "hand": "overlay use ($HAND | path join bin activate.nu)",
        "own": "overlay use ($PROJ | path join .venv bin activate.nu)",
        "deactivate": "deactivate", "nofast": '$env.VENVD_NO_FAST = "1"',
        "user": "$env.PATH = ($env.PATH | prepend $env.USERBIN)",
        "userbin": "$env.PATH = ($env.PATH | prepend ($env.PROJ | path join .venv bin))",
    },
    "xonsh": {
        "in": "cd @($PROJ)", "two": "cd @($TWO)", "colon": "cd @($COLON)",
        "home": "$PYTHONHOME = $HOMEVAL", "sub": "cd @($PROJ + '/sub')", "out": "cd @($OUT)",
        "hand": "source @($HAND + '/bin/activate.xsh')",
        "own": "source @($PROJ + '/.venv/bin/activate.xsh')",
        "deactivate": "deactivate", "nofast": "$VENVD_NO_FAST = '1'",
        "user": "$PATH.insert(0, $USERBIN)", "userbin": "$PATH.insert(0, $PROJ + '/.venv/bin')",
    },
}
#: Steps a shell cannot take, and why (its scenarios are left out for that shell).
NO_STEP = {
    "nu": {"pyhand": "python -m venv writes no activate.nu: nushell cannot activate that venv"},
    "xonsh": {"pyhand": "python -m venv writes no activate.xsh: xonsh cannot activate that venv"},
}
#: Scenarios that end elsewhere in a shell, and why: (PATH, VIRTUAL_ENV) as in SCENARIOS.
OUTCOME = {
    # A venv's activate.nu is an overlay, and its deactivate (`overlay hide`) takes the
    # whole environment back to when it was activated, PWD included: the shell is back in
    # the folder it activated the venv in, and venvd's env is the one for that folder.
    "nu": {"hand-inside-deactivate-outside": ("P", "P"),
           "hand-outside-enter-deactivate": ("", ""),
           "hand-outside-then-venvd-deactivate": ("P", "P"),
           "own-env-by-hand-leave-deactivate": ("P", "P"),
           "switch-under-hand-venv": ("P", "P")},
}

#: Code printing the three values of a JSON ready snippet (``%s``: its path, quoted), each
#: followed by \x1f.
READ_SNIPPET = {
    "nu": ("open --raw %s | from json | select _venvd_r_env _venvd_r_prompt _venvd_r_blob"
           " | values | each {|v| $v + (char --unicode 1f) } | str join | print -n $in"),
    "xonsh": ("import json; d = json.load(open(%s, encoding='utf-8')); print("
              "''.join(d[k] + chr(31) for k in ('_venvd_r_env', '_venvd_r_prompt',"
              " '_venvd_r_blob')), end='')"),
}
