"""bash: the hook runs from ``PROMPT_COMMAND`` (string or, in bash 5.1+, array form)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig, Shell

# Put the hook first, so that it sees (and hands on) the exit status of the user's command,
# and register it only once however often the rc file is sourced.
_REGISTER = r"""if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
  if [[ " ${PROMPT_COMMAND[*]} " != *" _venvd_hook "* ]]; then
    PROMPT_COMMAND=(_venvd_hook "${PROMPT_COMMAND[@]}")
  fi
elif [[ ";${PROMPT_COMMAND-};" != *";_venvd_hook;"* ]]; then
  PROMPT_COMMAND="_venvd_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
"""

# bash takes the quoted part of a pattern literally; `trap -p` prints the user's INT trap
# in a form that `eval` puts back.
DIALECT = posix.Dialect(
    path_remove='p=${p/":$_venvd_fe/bin:"/:}',
    has_deactivate="declare -F deactivate >/dev/null",
    save_int="local _venvd_int; _venvd_int=$(trap -p INT)",
    restore_int='if [[ -n $_venvd_int ]]; then eval "$_venvd_int"; else trap - INT; fi',
)


class Bash(Shell):
    """GNU bash 4+."""

    name = "bash"
    rc_file = "~/.bashrc"
    snippet_suffix = "sh"

    def hook(self, config: HookConfig) -> str:
        return (posix.hook_prelude(config) + posix.hook_function(config, self.name, DIALECT)
                + _REGISTER)

    def export(self, changes: Changes) -> str:
        return posix.export(changes)

    def quote(self, value: str) -> str:
        return posix.quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        return posix.remember(state)

    def hook_line(self) -> str:
        return posix.HOOK_LINE % self.name

    def rc_block(self) -> str:
        return posix.RC_BLOCK % {"line": self.hook_line()}

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return posix.snippet(values)
