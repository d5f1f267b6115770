"""bash: the hook runs from ``PROMPT_COMMAND`` (string or, in bash 5.1+, array form)."""

from __future__ import annotations

from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig

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


class Bash:
    """GNU bash 4+."""

    name = "bash"

    def hook(self, config: HookConfig) -> str:
        return posix.hook_prelude(config) + posix.hook_function(config, self.name) + _REGISTER

    def export(self, changes: Changes) -> str:
        return posix.export(changes)

    def quote(self, value: str) -> str:
        return posix.quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        return posix.remember(state)
