"""What the tests type in elvish, tcsh, nushell and xonsh: the scenario table's steps and
the checks of test_shells.py, each in the shell's own syntax (support/newshells.py drives
the shells)."""

from __future__ import annotations

from typing import Optional

from support.newshells import shell_path


def prepend_path(kind: str, folder: str) -> str:
    """The user puts *folder* (a plain path) first on PATH."""
    return {"elvish": f"set-env PATH {folder}:$E:PATH",
            "tcsh": f"setenv PATH {folder}:$PATH",
            "nu": f"$env.PATH = ($env.PATH | prepend '{folder}')",
            "xonsh": f"$PATH.insert(0, '{folder}')"}[kind]


def set_client(kind: str, path: str) -> str:
    """Point the hook's export client at *path* (a plain path)."""
    return {"fish": "set -g __venvd_py '{}'", "elvish": "set venvd:py = '{}'",
            "tcsh": "set _venvd_py = '{}'", "nu": "$env.__venvd_c.py = '{}'",
            "xonsh": "_venvd.config['py'] = '{}'"}.get(kind, "_VENVD_PY='{}'").format(path)


def client_of(kind: str) -> str:
    """The line printing the hook's export client."""
    return {"fish": "printf '%s' $__venvd_py", "elvish": "print $venvd:py",
            "tcsh": "printf '%s' $_venvd_py:q",
            "nu": "print -n $env.__venvd_c.py",
            "xonsh": "printf '%s' @(_venvd.config['py'])"}.get(kind, "printf '%s' \"$_VENVD_PY\"")


def no_client(kind: str) -> str:
    """Make the hook's export client unreachable: only its no-process path is left."""
    return set_client(kind, "/nonexistent")


def prints_yes_if(kind: str, name: str, other: str, suffix: str) -> str:
    """A line printing ``yes`` when variable *name* equals variable *other* plus *suffix*
    (neither value is ever typed: they hold the hostile names)."""
    if kind == "elvish":
        return f"if (eq $E:{name} $E:{other}{suffix}) {{ printf '%s' yes }}"
    if kind == "tcsh":
        return f"if ( ${name}:q == ${other}:q{suffix} ) printf '%s' yes"
    if kind == "nu":
        return f"if $env.{name}? == $\"($env.{other}){suffix}\" {{ printf '%s' yes }}"
    if kind == "xonsh":
        return f"printf '%s' @('yes' if ${name} == ${other} + '{suffix}' else 'no')"
    return f"test \"${name}\" = \"${other}{suffix}\" && printf '%s' yes"


def prints_yes_if_found(kind: str, command: str, other: str, suffix: str) -> str:
    """A line printing ``yes`` when *command* is found at variable *other* plus *suffix*."""
    if kind == "elvish":
        return f"if (eq (search-external {command}) $E:{other}{suffix}) {{ printf '%s' yes }}"
    if kind == "tcsh":  # `which` in backquotes would split a name at its newline
        return ("python -c 'import os, shutil; print(\"yes\" if shutil.which("
                f"\"{command}\") == os.environ[\"{other}\"] + \"{suffix}\" else \"no\", end=\"\")'")
    if kind == "nu":
        return (f"if (which {command} | get 0.path) == $\"($env.{other}){suffix}\" "
                "{ printf '%s' yes }")
    if kind == "xonsh":
        return (f"printf '%s' @('yes' if __import__('shutil').which('{command}',"
                f" path=__xonsh__.env.detype()['PATH']) == ${other} + '{suffix}' else 'no')")
    return f"test \"$(command -v {command})\" = \"${other}{suffix}\" && printf '%s' yes"


def exits_with_3(kind: str) -> str:
    """A command whose exit status is 3."""
    return {"nu": "^sh -c 'exit 3'", "xonsh": "sh -c 'exit 3'",
            "fish": "sh -c 'exit 3'"}.get(kind, "(exit 3)")


def other_prompt_hook(kind: str) -> str:
    """rc code adding a prompt hook of the user's that counts in ``OTHER_RAN``."""
    return {
        "elvish": ("set edit:before-readline = [$@edit:before-readline "
                   "{ set-env OTHER_RAN (to-string (+ 1 $E:OTHER_RAN)) }]\nset-env OTHER_RAN 0"),
        "tcsh": "alias precmd '@ OTHER_RAN = $OTHER_RAN + 1'\nset OTHER_RAN = 0",
        "nu": ("$env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt | append"
               " {|| $env.OTHER_RAN = (($env.OTHER_RAN? | default 0) + 1) })"),
        "xonsh": ("$OTHER_RAN = '0'\n@events.on_pre_prompt\ndef _other_hook(**kw):\n"
                  "    $OTHER_RAN = str(int($OTHER_RAN) + 1)\n"),
    }[kind]


def nested_shell(kind: str) -> str:
    """The line starting a nested interactive shell of *kind* (reading the same rc)."""
    return {"bash": "bash --noprofile --rcfile ~/.bashrc -i", "zsh": "zsh -i",
            "fish": "fish -i", "elvish": "elvish", "tcsh": "tcsh -i", "nu": "nu",
            "xonsh": f"{shell_path('xonsh')} -i"}[kind]


def activate_by_hand(kind: str, venv: str) -> Optional[str]:
    """The line activating the (plainly named) *venv* with its own script; ``None`` where
    virtualenv writes none for the shell (elvish)."""
    script = {"fish": "source {}/bin/activate.fish", "tcsh": "source {}/bin/activate.csh",
              "nu": "overlay use '{}/bin/activate.nu'", "xonsh": "source '{}/bin/activate.xsh'",
              "bash": "source {}/bin/activate", "zsh": "source {}/bin/activate"}.get(kind)
    return script.format(venv) if script else None


def read_snippet(kind: str, snippet: str, names: tuple[str, ...]) -> Optional[str]:
    """Code that reads the quoted *snippet* and prints the *names* it set, each followed
    by a 0x1f byte; ``None``: the driver's own."""
    if kind == "elvish":
        values = " ".join(f"$ns[{n}]" for n in names)
        return (f"eval (slurp < {snippet}) &on-end={{|ns| for v [{values}] "
                f"{{ printf \"%s\\x1f\" $v }} }}")
    if kind == "tcsh":
        values = " ".join(f"${n}:q" for n in names)
        return f"source {snippet}; printf '%s\\037' {values}"
    if kind == "nu":  # a JSON snippet: data, read as such
        return (f"open --raw {snippet} | from json | select {' '.join(names)} | values"
                " | each {|v| $v + (char --unicode 1f) } | str join | print -n $in")
    if kind == "xonsh":
        return (f"import json; d = json.load(open({snippet}, encoding='utf-8')); print("
                f"''.join(d[k] + chr(31) for k in {names!r}), end='')")
    return None


#: The scenario table's steps (tests/test_path_scenarios.py STEP) in each new shell; a
#: step a shell cannot take is missing (SKIP_STEP says why).
NEW_STEP: dict[str, dict[str, str]] = {
    "in": {"elvish": "cd $E:PROJ", "tcsh": "cd $PROJ:q", "nu": "cd $env.PROJ",
           "xonsh": "cd @($PROJ)"},
    "two": {"elvish": "cd $E:TWO", "tcsh": "cd $TWO:q", "nu": "cd $env.TWO",
            "xonsh": "cd @($TWO)"},
    "colon": {"elvish": "cd $E:COLON", "tcsh": "cd $COLON:q", "nu": "cd $env.COLON",
              "xonsh": "cd @($COLON)"},
    "home": {"elvish": "set-env PYTHONHOME $E:HOMEVAL", "tcsh": "setenv PYTHONHOME $HOMEVAL:q",
             "nu": "$env.PYTHONHOME = $env.HOMEVAL", "xonsh": "$PYTHONHOME = $HOMEVAL"},
    "sub": {"elvish": "cd $E:PROJ/sub", "tcsh": "cd $PROJ:q/sub",
            "nu": "cd ($env.PROJ | path join sub)", "xonsh": "cd @($PROJ + '/sub')"},
    "out": {"elvish": "cd $E:OUT", "tcsh": "cd $OUT:q", "nu": "cd $env.OUT",
            "xonsh": "cd @($OUT)"},
    "hand": {"tcsh": "source $HAND:q/bin/activate.csh",
             "nu": "overlay use ($HAND | path join bin activate.nu)",
             "xonsh": "source @($HAND + '/bin/activate.xsh')"},
    "own": {"tcsh": "source $PROJ:q/.venv/bin/activate.csh",
            "nu": "overlay use ($PROJ | path join .venv bin activate.nu)",
            "xonsh": "source @($PROJ + '/.venv/bin/activate.xsh')"},
    "pyhand": {"tcsh": "source $PYHAND:q/bin/activate.csh"},
    "deactivate": {"elvish": "deactivate", "tcsh": "deactivate", "nu": "deactivate",
                   "xonsh": "deactivate"},
    "nofast": {"elvish": "set-env VENVD_NO_FAST 1", "tcsh": "setenv VENVD_NO_FAST 1",
               "nu": '$env.VENVD_NO_FAST = "1"', "xonsh": "$VENVD_NO_FAST = '1'"},
    "user": {"elvish": "set-env PATH $E:USERBIN':'$E:PATH",
             "tcsh": "setenv PATH ${USERBIN:q}:${PATH:q}",
             "nu": "$env.PATH = ($env.PATH | prepend $env.USERBIN)",
             "xonsh": "$PATH.insert(0, $USERBIN)"},
    "userbin": {"elvish": "set-env PATH $E:PROJ/.venv/bin':'$E:PATH",
                "tcsh": "setenv PATH ${PROJ:q}/.venv/bin:${PATH:q}",
                "nu": "$env.PATH = ($env.PATH | prepend ($env.PROJ | path join .venv bin))",
                "xonsh": "$PATH.insert(0, $PROJ + '/.venv/bin')"},
}
SKIP_STEP = {"elvish": "virtualenv has no activate script for elvish: no venv is activated "
                       "by hand there",
             "nu": "python -m venv writes no activate.nu: nushell cannot activate that venv",
             "xonsh": "python -m venv writes no activate.xsh: xonsh cannot activate that venv"}

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
