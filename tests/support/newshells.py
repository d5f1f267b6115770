"""How the test driver (support/shells.py) starts and speaks elvish and tcsh."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from venvd.shell import SHELLS as REGISTRY

NEW_FAMILY = {"elvish": "elvish", "tcsh": "tcsh"}

NEW_SYNTAX = {
    "elvish": {"var": "$E:%s", "cd": "cd $E:%s"},
    # tcsh stops the whole line at an unset variable: read it only when it is set
    "tcsh": {"var": "", "cd": "cd $%s:q"},
}


def var_line(kind: str, name: str) -> Optional[str]:
    """The line printing variable *name* (nothing when unset); ``None``: the driver's own."""
    if kind == "tcsh":
        return f"if ( $?{name} ) eval 'printf \"%s\" ${name}:q'"
    return None

NEW_ARGS = {"elvish": [], "tcsh": ["-i"]}


def new_rc(kind: str, env: dict[str, str], before: str, after: str) -> dict[str, str]:
    """The startup file with the README's hook line; returns env additions."""
    home = Path(env["HOME"])
    line = REGISTRY[kind].hook_line()
    if kind == "elvish":
        folder = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "elvish"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rc.elv").write_text(
            "set edit:prompt = { put '> ' }\nset edit:rprompt = { put '' }\n"
            f"{before}\n{line}\n{after}\n")
        return {}
    (home / ".tcshrc").write_text(f"set prompt = '> '\nunset autologout\n{before}\n{line}\n"
                                  f"{after}\n")
    return {}


def mark_line(kind: str, begin: str, end: str, command: str) -> Optional[str]:
    """The command line that prints *begin* (in two halves), runs *command*, then prints
    *end*; ``None``: the driver's own (POSIX-style) line. elvish's single quotes keep ``\\n``
    as it is, and a failing command raises an exception that would skip the end marker."""
    if kind != "elvish":
        return None
    b1, b2 = begin[:-2], begin[-2:]
    e1, e2 = end[:-2], end[-2:]
    return (f'printf "%s%s\\n" \'{b1}\' \'{b2}\'; try {{ {command} }} catch e {{ '
            f'echo (to-string $e[reason]) }}; printf "%s%s\\n" \'{e1}\' \'{e2}\'')


def status_line(kind: str, command: str) -> Optional[str]:
    """The line printing ``@@S<status>@@`` after *command* ran on a line of its own (elvish
    has no exit status: a failure is an exception, which counts as 1)."""
    if kind == "elvish":
        return ('printf "@@S%s@@\\n" (if (eq $E:VENVD_T_FAILED 1) { put 1 } else { put 0 }); '
                "unset-env VENVD_T_FAILED")
    if kind == "tcsh":
        return "printf '@@S%s@@\\n' $status"
    return None


def status_command(kind: str, command: str) -> str:
    """*command* as sent on its own line before ``status_line``."""
    if kind == "elvish":
        return f"try {{ {command} }} catch e {{ set-env VENVD_T_FAILED 1 }}"
    return command


def prepend_path(kind: str, folder: str) -> str:
    """The user puts *folder* (a plain path) first on PATH."""
    return {"elvish": f"set-env PATH {folder}:$E:PATH",
            "tcsh": f"setenv PATH {folder}:$PATH"}[kind]


def no_client(kind: str) -> str:
    """Make the hook's export client unreachable: only its no-process path is left."""
    return {"fish": "set -g __venvd_py /nonexistent", "elvish": "set venvd:py = /nonexistent",
            "tcsh": "set _venvd_py = /nonexistent"}.get(kind, "_VENVD_PY=/nonexistent")


def prints_yes_if(kind: str, name: str, other: str, suffix: str) -> str:
    """A line printing ``yes`` when variable *name* equals variable *other* plus *suffix*
    (neither value is ever typed: they hold the hostile names)."""
    if kind == "elvish":
        return f"if (eq $E:{name} $E:{other}{suffix}) {{ printf '%s' yes }}"
    if kind == "tcsh":
        return f"if ( ${name}:q == ${other}:q{suffix} ) printf '%s' yes"
    return f"test \"${name}\" = \"${other}{suffix}\" && printf '%s' yes"


def prints_yes_if_found(kind: str, command: str, other: str, suffix: str) -> str:
    """A line printing ``yes`` when *command* is found at variable *other* plus *suffix*."""
    if kind == "elvish":
        return f"if (eq (search-external {command}) $E:{other}{suffix}) {{ printf '%s' yes }}"
    if kind == "tcsh":  # `which` in backquotes would split a name at its newline
        return ("python -c 'import os, shutil; print(\"yes\" if shutil.which("
                f"\"{command}\") == os.environ[\"{other}\"] + \"{suffix}\" else \"no\", end=\"\")'")
    return f"test \"$(command -v {command})\" = \"${other}{suffix}\" && printf '%s' yes"


def read_snippet(kind: str, snippet: str, names: tuple[str, ...]) -> Optional[str]:
    """Code that sources the quoted *snippet* and prints the *names* it set, each followed
    by a 0x1f byte; ``None``: the driver's own."""
    if kind == "elvish":
        values = " ".join(f"$ns[{n}]" for n in names)
        return (f"eval (slurp < {snippet}) &on-end={{|ns| for v [{values}] "
                f"{{ printf \"%s\\x1f\" $v }} }}")
    if kind == "tcsh":
        values = " ".join(f"${n}:q" for n in names)
        return f"source {snippet}; printf '%s\\037' {values}"
    return None


#: The scenario table's steps (tests/test_path_scenarios.py STEP) in elvish and tcsh; a
#: step a shell cannot take is missing (SKIP_STEP says why).
NEW_STEP: dict[str, dict[str, str]] = {
    "in": {"elvish": "cd $E:PROJ", "tcsh": "cd $PROJ:q"},
    "two": {"elvish": "cd $E:TWO", "tcsh": "cd $TWO:q"},
    "colon": {"elvish": "cd $E:COLON", "tcsh": "cd $COLON:q"},
    "home": {"elvish": "set-env PYTHONHOME $E:HOMEVAL", "tcsh": "setenv PYTHONHOME $HOMEVAL:q"},
    "sub": {"elvish": "cd $E:PROJ/sub", "tcsh": "cd $PROJ:q/sub"},
    "out": {"elvish": "cd $E:OUT", "tcsh": "cd $OUT:q"},
    "hand": {"tcsh": "source $HAND:q/bin/activate.csh"},
    "own": {"tcsh": "source $PROJ:q/.venv/bin/activate.csh"},
    "pyhand": {"tcsh": "source $PYHAND:q/bin/activate.csh"},
    "deactivate": {"elvish": "deactivate", "tcsh": "deactivate"},
    "nofast": {"elvish": "set-env VENVD_NO_FAST 1", "tcsh": "setenv VENVD_NO_FAST 1"},
    "user": {"elvish": "set-env PATH $E:USERBIN':'$E:PATH",
             "tcsh": "setenv PATH ${USERBIN:q}:${PATH:q}"},
    "userbin": {"elvish": "set-env PATH $E:PROJ/.venv/bin':'$E:PATH",
                "tcsh": "setenv PATH ${PROJ:q}/.venv/bin:${PATH:q}"},
}
SKIP_STEP = {"elvish": "virtualenv has no activate script for elvish: no venv is activated "
                       "by hand there"}
