"""Quoting and exports shared by bash and zsh (both POSIX-style)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from venvd.shell.activation import SAVED_PATH_VAR, WAKE_NAME
from venvd.shell.base import Changes, HookConfig, check_name

#: The news files' names (venvd.shell.news imports the shells: it cannot be imported here).
NEWS_NAME = "news."


def quote(value: str) -> str:
    """Single-quote *value*; a single quote inside becomes ``'\\''``.

    Inside single quotes bash and zsh expand nothing (no ``$``, backtick or glob), and a
    newline is literal, so every byte sequence round-trips.
    """
    return "'" + value.replace("'", "'\\''") + "'"


#: Variables set without ``export``: a hand-activated virtualenv keeps its saved PATH in a
#: plain shell variable, and it must stay out of the environment of commands.
PLAIN = frozenset({SAVED_PATH_VAR})


def export(changes: Changes) -> str:
    """``export``/``unset`` lines for *changes*, sorted by name."""
    lines = []
    for name in sorted(changes):
        value = changes[name]
        if value is None:
            lines.append(f"unset {check_name(name)};")
        elif name in PLAIN:
            lines.append(f"{check_name(name)}={quote(value)};")
        else:
            lines.append(f"export {check_name(name)}={quote(value)};")
    return "\n".join(lines) + ("\n" if lines else "")


#: install.sh's rc block for bash and zsh (``%(name)s``: the shell).
RC_BLOCK = (
    'case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) PATH="$HOME/.local/bin:$PATH" ;; esac\n'
    'command -v venvd >/dev/null 2>&1 && %(line)s'
)
HOOK_LINE = 'eval "$(venvd hook %s)"'


def snippet(values: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{check_name(n)}={quote(v)}\n" for n, v in values)


def argv(words: tuple[str, ...]) -> str:
    """A command line made of literal words."""
    return " ".join(quote(w) for w in words)


# The hook body shared by bash and zsh. On an idle prompt it runs builtins only: one `read`
# of the generation file the daemon bumps, and string comparisons. On a `cd` it tries the
# fast path (builtins only: file tests and `.` of a snippet the daemon keeps ready), and
# falls back to the export client. `$?` is kept for the next prompt hook, and Ctrl-C cannot
# interrupt an `eval` half-way. Every file it reads or sources must be the user's own (`-O`,
# a builtin test): `venvd hook` checked the runtime folder once, at shell start, and a file
# someone else put there is never trusted (the client then says why, once).
HOOK_FUNCTION = r"""_venvd_fast() {
  local d=$PWD root= m f dpid=
  [[ -O $_VENVD_PIDFILE && -r $_VENVD_PIDFILE ]] && read -r dpid < "$_VENVD_PIDFILE"
  [[ -n $dpid ]] || return 1
  if [[ -d /proc/self ]]; then  # alive, and not a zombie that nobody reaped (state Z)
    local st=
    { read -r st < "/proc/$dpid/stat"; } 2>/dev/null || return 1
    st=${st##*") "}
    [[ ${st:0:1} != Z ]] || return 1
  fi
  while :; do
    if [[ $d == "${HOME-}" || $d == / ]]; then
      [[ -f $d/.venvd.toml ]] && root=$d
    else
      for m in %(markers)s; do
        if [[ -f $d/$m ]]; then root=$d; break; fi
      done
    fi
    [[ -n $root || $d == / ]] && break
    d=${d%%/*}
    [[ -z $d ]] && d=/
  done
  _venvd_froot=$root
  local ours=
  if [[ -n ${VENVD_STATE-} ]]; then
    [[ $VENVD_STATE == "${_venvd_fs-}" && ${VIRTUAL_ENV-} == "${_venvd_fe-}" \
       && ${VIRTUAL_ENV_PROMPT-} == "${_venvd_fp-}" && -n ${_venvd_fe-} ]] || return 1
    ours=1
  fi
  local _venvd_r_env= _venvd_r_prompt= _venvd_r_blob=
  if [[ -n $root ]]; then
    f=$_VENVD_READY$root/.venvd-ready.sh
    [[ -O $f && -r $f ]] || return 1
    [[ -e $root/.venvd.toml && $root/.venvd.toml -nt $f ]] && return 1
    . "$f" || return 1
    [[ -z $_venvd_r_env || -x $_venvd_r_env/bin/python ]] || return 1
  fi
  if [[ -n ${VENVD_OFF-} ]]; then
    if [[ -n $root && $root == "$VENVD_OFF" ]]; then _venvd_r_env=; else unset VENVD_OFF; fi
  fi
  if [[ -n $ours && $_venvd_r_env == "$_venvd_fe" && ":$PATH:" == *":$_venvd_fe/bin:"* ]]; then
    return 0
  fi
  if [[ -z $ours && -n $_venvd_r_env ]]; then
    [[ -z ${VIRTUAL_ENV-} && -z ${VIRTUAL_ENV_PROMPT-} && -z ${PYTHONHOME+x} ]] || return 1
  fi
  if [[ -n $ours ]]; then
    local p=":$PATH:"
    %(path_remove)s
    p=${p#:}
    PATH=${p%%:}
    unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT VENVD_STATE
    _venvd_fs= _venvd_fe= _venvd_fp=
  fi
  if [[ -n $_venvd_r_env ]]; then
    export VIRTUAL_ENV=$_venvd_r_env VIRTUAL_ENV_PROMPT=$_venvd_r_prompt
    PATH=$_venvd_r_env/bin${PATH:+:$PATH}
    export VENVD_STATE="$$.$_venvd_r_blob"
    _venvd_fs=$VENVD_STATE _venvd_fe=$_venvd_r_env _venvd_fp=$_venvd_r_prompt
  fi
  return 0
}
_venvd_hook() {
  local _venvd_status=$?
  # for `venvd doctor`, a child process: this very shell runs the hook at its prompts
  [[ ${VENVD_HOOKED-} == "%(shell)s:$$" ]] || export VENVD_HOOKED="%(shell)s:$$"
  local _venvd_g=
  [[ -O $_VENVD_GEN && -r $_VENVD_GEN ]] && read -r _venvd_g < "$_VENVD_GEN"
  if [[ "$PWD" != "${_venvd_pwd-}" || "$_venvd_g" != "${_venvd_gen-}" \
        || "${VIRTUAL_ENV-}" != "${_venvd_ve-}" \
        || ( -n $_venvd_fe && ! -x $_venvd_fe/bin/python ) \
        || ( -n ${VENVD_OFF-} && -O $_VENVD_WAKE$$ ) ]]; then
    _venvd_pwd=$PWD
    [[ -n ${VENVD_OFF-} && -O $_VENVD_WAKE$$ ]] && unset VENVD_OFF  # `venvd activate`
    if [[ -n ${VENVD_NO_FAST-} ]] || ! _venvd_quiet || ! _venvd_fast; then
      local _venvd_seen=${_venvd_gen##* }
      _venvd_gen=$_venvd_g
      if [[ -x $_VENVD_PY ]]; then
        %(save_int)s
        trap -- '' INT
        eval "$(%(command)s)"
        %(restore_int)s
      fi
    elif [[ "$_venvd_g" != "${_venvd_gen-}" ]]; then
      _venvd_tell_news
      _venvd_gen=$_venvd_g
    fi
    _venvd_ve=${VIRTUAL_ENV-}
    if [[ -n ${VENVD_STATE-} ]] && ! %(has_deactivate)s; then _venvd_define_deactivate; fi
  fi
  return $_venvd_status
}
_venvd_deactivate() {
  if [[ ! -x $_VENVD_PY ]]; then
    printf 'venvd: deactivate: %%s is missing\n' "$_VENVD_PY" >&2
    return 1
  fi
  local _venvd_code
  _venvd_code=$(%(deactivate)s) || return 1
  eval "$_venvd_code"
  _venvd_ve=${VIRTUAL_ENV-}
}
_venvd_define_deactivate() {
  deactivate() { _venvd_deactivate "$@"; }
}
"""

# News without a process (see venvd.shell.news): a generation change that only brings a
# sync's outcome ("quiet": the first number, the last bump that needs the client, is the
# same) is taken by the fast path, and the news of this shell's project printed from the
# daemon's news file. `_venvd_news` is what each line of that file calls.
NEWS_FUNCTIONS = r"""_venvd_quiet() {
  [[ $_venvd_g == "${_venvd_gen-}" ]] && return 0
  [[ -n ${_venvd_gen-} && ${_venvd_g%% *} == "${_venvd_gen%% *}" ]]
}
_venvd_tell_news() {
  local _venvd_nlo=${_venvd_gen##* } _venvd_nhi=${_venvd_g##* } _venvd_nproj=
  [[ $_venvd_nlo =~ ^[0-9]+$ && $_venvd_nhi =~ ^[0-9]+$ ]] || return 0
  [[ -n $_venvd_froot && -O $_VENVD_NEWS && -r $_VENVD_NEWS ]] || return 0  # ours only
  # a folder whose snippet stands for an enclosing project hears that project's news
  { read -r _venvd_nproj < "$_VENVD_READY$_venvd_froot/.venvd-alias"; } 2>/dev/null
  . "$_VENVD_NEWS"
}
_venvd_news() {
  (( $1 > _venvd_nlo && $1 <= _venvd_nhi )) || return 0
  local _venvd_np  # the shells that heard it from a command they ran: not again here
  for _venvd_np in "${@:4}"; do [[ $_venvd_np == "$$" ]] && return 0; done
  if [[ $2 == "$_venvd_froot" || ( -n $_venvd_nproj && $2 == "$_venvd_nproj" ) ]]; then
    printf 'venvd: %%s\n' "$3" >&2
  fi
  return 0
}
"""


@dataclass(frozen=True)
class Dialect:
    """The few lines where bash and zsh differ inside the shared hook (each shell's module
    gives its own, so a new POSIX-style shell is one module)."""

    #: Remove the first ``:<env>/bin:`` from ``p``, literally (no glob).
    path_remove: str
    #: Succeeds when a ``deactivate`` function exists: venvd's is defined only while nobody
    #: else has one (a hand-activated virtualenv brings its own, which removes itself).
    has_deactivate: str
    #: Ctrl-C must not cut the client off half-way through its output; the user's own INT
    #: trap is put back afterwards.
    save_int: str
    restore_int: str


def wake_prefix(config: HookConfig) -> str:
    """Where ``venvd activate`` leaves word for a shell (its pid follows)."""
    return os.path.join(os.path.dirname(config.generation), WAKE_NAME)


def news_file(config: HookConfig, suffix: str) -> str:
    """The daemon's news file in the syntax of *suffix* (see venvd.shell.news)."""
    return os.path.join(os.path.dirname(config.generation), NEWS_NAME + suffix)


def hook_paths(config: HookConfig, quote: Callable[[str], str],
               news_suffix: str) -> dict[str, str]:
    """The paths every hook template names, each quoted with the shell's own *quote*."""
    return {
        "python": quote(config.python),
        "socket": quote(config.socket),
        "state_db": quote(config.state_db),
        "generation": quote(config.generation),
        "ready": quote(config.ready),
        "pid_file": quote(config.pid_file),
        "wake": quote(wake_prefix(config)),
        "news": quote(news_file(config, news_suffix)),
    }


def hook_prelude(config: HookConfig) -> str:
    """Plain (unexported) variables holding the paths the hook needs."""
    return (
        f"_VENVD_PY={quote(config.python)}\n"
        f"_VENVD_GEN={quote(config.generation)}\n"
        f"_VENVD_READY={quote(config.ready)}\n"
        f"_VENVD_PIDFILE={quote(config.pid_file)}\n"
        f"_VENVD_WAKE={quote(wake_prefix(config))}\n"
        f"_VENVD_NEWS={quote(news_file(config, 'sh'))}\n"
        "_venvd_pwd=\n_venvd_gen=\n_venvd_ve=\n_venvd_fs=\n_venvd_fe=\n_venvd_fp=\n"
        "_venvd_froot=\n"
    )


def hook_function(config: HookConfig, shell: str, dialect: Dialect) -> str:
    """The hook functions, calling the export client for *shell* when needed."""
    command = " ".join(
        (
            argv((config.python, *config.export_argv, shell)),
            "--socket",
            quote(config.socket),
            "--state-db",
            quote(config.state_db),
            '--pid "$$"',
        )
    )
    markers = " ".join(quote(m) for m in config.markers) or "''"
    # a hand-activated venv's saved PATH is a plain shell variable: hand it to the client
    saved = '_OLD_VIRTUAL_PATH="${_OLD_VIRTUAL_PATH-}" '
    seen = ' --seen "${_venvd_seen-}"'  # the news the hook has taken itself (see news_file)
    return HOOK_FUNCTION % {"command": saved + command + seen, "markers": markers,
                            "shell": shell,
                            "deactivate": command + " --action deactivate",
                            "has_deactivate": dialect.has_deactivate,
                            "path_remove": dialect.path_remove, "save_int": dialect.save_int,
                            "restore_int": dialect.restore_int} + NEWS_FUNCTIONS % {}


def remember(state: tuple[str, str, str] | None) -> str:
    values = state or ("", "", "")
    return "".join(f"{name}={quote(value)};" for name, value in
                   zip(("_venvd_fs", "_venvd_fe", "_venvd_fp"), values)) + "\n"
