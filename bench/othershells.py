"""Prompt and cd costs in nushell and xonsh (bench/run --only more-shells), measured as
bench.py measures bash, zsh and fish: a ``cd`` followed by the prompt hooks the shell would
run (nushell: its ``env_change.PWD`` hooks on the cd, then ``pre_prompt``; xonsh: the
``on_chdir`` event its ``cd`` fires, then ``on_pre_prompt``), timed inside the shell with its
own clock, minus the same loop with no tool loaded.

elvish and tcsh, whose prompt hooks exist only in an interactive shell, are driven in a pty
(bench/ptyshells.py). direnv has no xonsh hook (a third-party xontrib exists).
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
SHELLS = ("nu", "xonsh")
#: Which tools hook which shell (the others are "not supported" in the table).
SUPPORTED = {("nu", "venvd"), ("nu", "direnv"), ("nu", "mise"), ("xonsh", "venvd"),
             ("xonsh", "mise")}
NOT_HOOKED = {"direnv/xonsh": "direnv has no xonsh hook (only a third-party xontrib)"}

# direnv's nushell hook, as its documentation gives it (JSON, applied with load-env)
DIRENV_NU = """$env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt? | default []
| append {||
    direnv export json | from json | default {} | load-env
    if ($env.PATH | describe) == "string" { $env.PATH = ($env.PATH | split row (char esep)) }
})
"""

NU_LOOP = r"""
def --env __h [h: any, before?: string] {
    if ($h | describe | str starts-with "closure") {
        if $before == null { do --env $h } else { do --env $h $before $env.PWD }
    } else if (do $h.condition) {
        do --env $h.code
    }
}
def --env __p [before: string] {
    if $env.PWD != $before {
        for h in ($env.config.hooks.env_change.PWD? | default []) { __h $h $before }
    }
    for h in ($env.config.hooks.pre_prompt? | default []) { __h $h }
}
let proj = $env.PROJ
let out = $env.OUT
cd $out; __p $proj; cd $proj; __p $out; cd $out; __p $proj
for i in 1..($env.N | into int) {
    let t0 = (date now | into int); cd $proj; __p $out; let t1 = (date now | into int)
    __p $proj; let t2 = (date now | into int)
    cd $out; __p $proj; let t3 = (date now | into int)
    print $"T ($t0) ($t1) ($t2) ($t3)"
}
cd $proj; __p $out; print $"VE=($env.VIRTUAL_ENV? | default '')"
"""

XONSH_LOOP = r"""
import time
def __p():
    events.on_pre_prompt.fire()
cd @($OUT)
__p()
cd @($PROJ)
__p()
cd @($OUT)
__p()
for i in range(int($N)):
    t0 = time.perf_counter()
    cd @($PROJ)
    __p()
    t1 = time.perf_counter()
    __p()
    t2 = time.perf_counter()
    cd @($OUT)
    __p()
    t3 = time.perf_counter()
    print(f"T {t0} {t1} {t2} {t3}")
cd @($PROJ)
__p()
print("VE=" + ${...}.get("VIRTUAL_ENV", ""))
"""

#: How a loop's "T" figures become seconds.
UNIT = {"nu": 1e-9, "xonsh": 1.0}


def executable(shell: str) -> Optional[str]:
    """nu: the real binary behind the npm package's node script; xonsh: also the test
    tools' venv (tests/run puts it there)."""
    found = shutil.which(shell)
    if shell == "xonsh" and not found:
        tools = REPO / ".tests-venv" / "tools" / "bin" / "xonsh"
        found = str(tools) if tools.exists() else None
    if found and shell == "nu" and Path(found).resolve().suffix == ".js":
        package = Path(found).resolve().parents[1]
        binaries = sorted(glob.glob(str(package / "node_modules/@nushell/*/bin/nu")))
        found = binaries[0] if binaries else found
    return found


def script(shell: str, tool: Optional[str], work: Path, init: str) -> str:
    """The loop, with *tool*'s hook loaded first (*init*: what the tool prints to load it)."""
    if shell == "xonsh":
        load = {"venvd": "exec($(venvd hook xonsh))\n",
                "mise": "execx($(mise activate xonsh))\n"}.get(tool or "", "")
        return load + XONSH_LOOP
    # nushell takes a file to source (or use) at parse time: the hook is saved first
    hook = work / f"hook-{tool or 'none'}.nu"
    hook.write_text(DIRENV_NU if tool == "direnv" else init)
    return f"{'use' if tool == 'mise' else 'source'} {hook}\n" + NU_LOOP


def argv(shell: str) -> list[str]:
    exe = executable(shell) or shell
    return [exe, "-n", "-c"] if shell == "nu" else [exe, "--no-rc", "-c"]


def init_command(shell: str, tool: Optional[str]) -> Optional[list[str]]:
    """The command printing *tool*'s hook for nushell (saved to a file by ``script``)."""
    if shell != "nu" or tool in (None, "direnv"):
        return None
    return ["venvd", "hook", "nu"] if tool == "venvd" else ["mise", "activate", "nu"]


def available(shell: str) -> bool:
    return executable(shell) is not None and os.access(str(executable(shell)), os.X_OK)
