"""tcsh: the hook is ``alias precmd`` (each prompt).

An idle prompt runs builtins only: ``-M`` and ``-I`` (the generation file's time and inode,
which change with each atomic rewrite) and string comparisons. A ``cd`` (with the
generation unchanged) sources a script of builtins (venvd.shell.tcsh_fast): the daemon's
pid, as tcsh code, and a zombie test (``-e /proc/PID/exe``: a zombie has no exe link), the
walk up to the project, its ready snippet; no process at all. Anything unusual, or a new
generation, runs the export client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Optional

from venvd.shell import posix, tcsh_fast
from venvd.shell.activation import SAVED_PATH_VAR
from venvd.shell.base import Changes, HookConfig, Shell, check_name, expand_home

#: The daemon's pid file as tcsh code, beside the pid file (``Paths.pid_csh``).
PID_SUFFIX = ".csh"

# One line: `eval "`venvd hook tcsh`"` makes one word of each line and joins them with a
# space. The client's code goes through a file of this shell's own in the private runtime
# folder and `source` (a value may hold a newline, which only a sourced file keeps).
_RUN = (
    "set _venvd_gen = $_venvd_g:q; "
    # a hand-activated venv's saved PATH is a shell variable: hand it to the client
    "if ( $?_OLD_VIRTUAL_PATH ) eval 'setenv _OLD_VIRTUAL_PATH $_OLD_VIRTUAL_PATH:q'; "
    # before the daemon's first start its runtime folder is missing: the client starts it
    "set _venvd_o = /dev/null; if ( -d $_venvd_rt:q ) set _venvd_o = $_venvd_out:q; "
    "if ( -x $_venvd_py:q ) %(command)s >! $_venvd_o:q; "
    "unsetenv _OLD_VIRTUAL_PATH; "
    "if ( -x $_venvd_py:q && -r $_venvd_o:q && -o $_venvd_o:q ) source $_venvd_o:q"
)
# A change: the no-process script first (see venvd.shell.tcsh_fast) when the generation is
# the one seen, then the client unless the script did it all.
_STEP = (
    "set _venvd_pwd = $cwd:q; "
    "if ( $_venvd_w == 1 ) unsetenv VENVD_OFF; "  # `venvd activate`
    "set _venvd_fok = 0; "
    "if ( x$_venvd_g == x$_venvd_gen && $?VENVD_NO_FAST == 0 && -o $_venvd_fastf:q && "
    "-r $_venvd_fastf:q ) source $_venvd_fastf:q; "
    "set _venvd_do = _venvd_run; if ( $_venvd_fok == 1 ) set _venvd_do = ''; eval $_venvd_do; "
    "set _venvd_ve = ''; if ( $?VIRTUAL_ENV ) eval 'set _venvd_ve = $VIRTUAL_ENV:q'; "
    # venvd's deactivate only while nobody has one: a hand-activated venv keeps its own.
    # `alias NAME` prints it; a builtin's output goes to a file with no process (`-z`: empty)
    "if ( $?VENVD_STATE && -d $_venvd_rt:q ) eval 'alias deactivate >! $_venvd_out:q'; "
    "if ( $?VENVD_STATE && -z $_venvd_out:q ) alias deactivate _venvd_deactivate"
)
# A single-line `if` cannot run an alias, and expands its command even when false: the
# alias to run is put in a variable for `eval`, and unset variables are read under `eval`.
# An empty word is no operand: each side of a comparison starts with an `x`.
_PRECMD = (
    "set _venvd_st = $status; @ _venvd_g = -M $_venvd_gen_file:q; "
    "@ _venvd_i = -I $_venvd_gen_file:q; set _venvd_g = $_venvd_g.$_venvd_i; "
    "set _venvd_v = ''; if ( $?VIRTUAL_ENV ) eval 'set _venvd_v = $VIRTUAL_ENV:q'; "
    "set _venvd_w = 0; if ( $?VENVD_OFF && -o ${_venvd_wake:q}$$ ) set _venvd_w = 1; "
    "set _venvd_do = ''; "
    "if ( x$cwd:q != x$_venvd_pwd:q || x$_venvd_g != x$_venvd_gen || x$_venvd_v:q != "
    "x$_venvd_ve:q || $_venvd_w == 1 ) set _venvd_do = _venvd_step; "
    "eval $_venvd_do; set status = $_venvd_st"
)


def fast_script(config: HookConfig) -> tuple[str, str]:
    """The no-process script's path and text (see venvd.shell.tcsh_fast)."""
    text = tcsh_fast.script([quote(m) for m in config.markers])
    return tcsh_fast.script_path(os.path.dirname(config.generation), text), text


def quote(value: str) -> str:
    """*value* as one single-quoted tcsh word: ``'`` closes, is escaped and reopens; ``!``
    (history, even inside quotes) is escaped; a newline is escaped with a backslash, which
    keeps it inside quotes. Nothing else is special between single quotes."""
    inner = value.replace("'", "'\\''").replace("!", "\\!").replace("\n", "\\\n")
    return f"'{inner}'"


class Tcsh(Shell):
    """tcsh 6.18+."""

    name = "tcsh"
    rc_file = "~/.tcshrc"
    snippet_suffix = "csh"

    def hook(self, config: HookConfig) -> str:
        values = (config.python, config.generation, posix.wake_prefix(config),
                  os.path.join(os.path.dirname(config.generation), "tcsh."))
        if any("\n" in v for v in (*values, config.socket, config.state_db, config.ready,
                                    config.pid_file, *config.markers)):
            # eval joins the lines of the hook: a path with a newline cannot be in it
            return "echo 'venvd: tcsh: a path of venvd holds a newline; no hook' > /dev/stderr\n"
        words = (config.python, *config.export_argv, self.name, "--socket", config.socket,
                 "--state-db", config.state_db)
        command = " ".join(quote(w) for w in words) + " --pid $$"
        run = _RUN % {"command": command}
        runtime = os.path.dirname(config.generation)
        deactivate = (f"{command} --action deactivate >! $_venvd_out:q && "
                      "source $_venvd_out:q")
        parts = [
            # for `venvd doctor`, a child process: this very shell runs the hook
            'setenv VENVD_HOOKED "tcsh:$$"',
            f"set _venvd_py = {quote(config.python)}",
            f"set _venvd_gen_file = {quote(config.generation)}",
            f"set _venvd_wake = {quote(values[2])}",
            f"set _venvd_out = {quote(values[3])}$$",
            f"set _venvd_rt = {quote(runtime)}",
            f"set _venvd_fastf = {quote(fast_script(config)[0])}",
            f"set _venvd_pidf = {quote(config.pid_file + PID_SUFFIX)}",
            f"set _venvd_rdir = {quote(config.ready)}",
            "set _venvd_pwd = ''", "set _venvd_gen = ''", "set _venvd_ve = ''",
            "set _venvd_fs = ''", "set _venvd_fe = ''", "set _venvd_fp = ''",
            "set _venvd_pe = ''", "set _venvd_pb = ''", "set _venvd_pa = ''",
            f"alias _venvd_run {quote(run)}",
            f"alias _venvd_step {quote(_STEP)}",
            f"alias _venvd_deactivate {quote(deactivate)}",
            f"alias _venvd_precmd {quote(_PRECMD)}",
            # after a command the user's own precmd (if any) still runs, after ours
            # (no `!` here: an interactive shell takes it for history, even in eval)
            'set _venvd_pc = "_venvd_precmd; `alias precmd`"',
            'if ( "`alias precmd`" =~ *_venvd_precmd* ) set _venvd_pc = "`alias precmd`"',
            "alias precmd $_venvd_pc:q",
        ]
        return "; ".join(parts) + "\n"

    def files(self, config: HookConfig) -> dict[str, str]:
        path, text = fast_script(config)
        return {path: text}

    def export(self, changes: Changes) -> str:
        lines = []
        for name in sorted(changes):
            value = changes[name]
            plain = name == SAVED_PATH_VAR  # a shell variable in activate.csh, not exported
            if value is None:
                lines.append(f"{'unset' if plain else 'unsetenv'} {check_name(name)}")
            elif plain:
                lines.append(f"set {check_name(name)} = {quote(value)}")
            else:
                lines.append(f"setenv {check_name(name)} {quote(value)}")
        return "\n".join(lines) + ("\n" if lines else "")

    def quote(self, value: str) -> str:
        return quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        values = state or ("", "", "")
        return "".join(f"set {name} = {quote(value)}\n" for name, value in
                       zip(("_venvd_fs", "_venvd_fe", "_venvd_fp"), values))

    def hook_line(self) -> str:
        return 'eval "`venvd hook tcsh`"'

    def rc_block(self) -> str:
        return ('if ( " $path " !~ *" $HOME/.local/bin "* ) set path = ( $HOME/.local/bin $path )\n'
                "if ( $?prompt ) then\n"
                "  which venvd >& /dev/null\n"
                f"  if ( $status == 0 ) {self.hook_line()}\n"
                "endif")

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return "".join(f"set {check_name(n)} = {quote(v)}\n" for n, v in values)

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        return [expand_home(self.rc_file, environ), expand_home("~/.cshrc", environ)]
