"""Quoting and exports shared by bash and zsh (both POSIX-style)."""

from __future__ import annotations

from venvd.shell.base import Changes, HookConfig, check_name


def quote(value: str) -> str:
    """Single-quote *value*; a single quote inside becomes ``'\\''``.

    Inside single quotes bash and zsh expand nothing (no ``$``, backtick or glob), and a
    newline is literal, so every byte sequence round-trips.
    """
    return "'" + value.replace("'", "'\\''") + "'"


def export(changes: Changes) -> str:
    """``export``/``unset`` lines for *changes*, sorted by name."""
    lines = []
    for name in sorted(changes):
        value = changes[name]
        if value is None:
            lines.append(f"unset {check_name(name)};")
        else:
            lines.append(f"export {check_name(name)}={quote(value)};")
    return "\n".join(lines) + ("\n" if lines else "")


def argv(words: tuple[str, ...]) -> str:
    """A command line made of literal words."""
    return " ".join(quote(w) for w in words)


# The hook body shared by bash and zsh. On an idle prompt it runs builtins only: one `read`
# of the generation file the daemon bumps, and string comparisons. `$?` is kept for the next
# prompt hook, and Ctrl-C cannot interrupt an `eval` half-way.
HOOK_FUNCTION = r"""_venvd_hook() {
  local _venvd_status=$?
  local _venvd_g=
  [[ -r $_VENVD_GEN ]] && read -r _venvd_g < "$_VENVD_GEN"
  if [[ "$PWD" != "${_venvd_pwd-}" || "$_venvd_g" != "${_venvd_gen-}" \
        || "${VIRTUAL_ENV-}" != "${_venvd_ve-}" ]]; then
    _venvd_pwd=$PWD
    _venvd_gen=$_venvd_g
    if [[ -x $_VENVD_PY ]]; then
      trap -- '' SIGINT
      eval "$(%(command)s)"
      trap - SIGINT
    fi
    _venvd_ve=${VIRTUAL_ENV-}
  fi
  return $_venvd_status
}
"""


def hook_prelude(config: HookConfig) -> str:
    """Plain (unexported) variables holding the paths the hook needs."""
    return (
        f"_VENVD_PY={quote(config.python)}\n"
        f"_VENVD_GEN={quote(config.generation)}\n"
        "_venvd_pwd=\n_venvd_gen=\n_venvd_ve=\n"
    )


def hook_function(config: HookConfig, shell: str) -> str:
    """The hook function, calling the export client for *shell*."""
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
    return HOOK_FUNCTION % {"command": command}
