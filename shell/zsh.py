"""zsh: the hook runs on ``precmd`` and on ``chpwd``, so ``cd proj && python`` sees the env."""

from __future__ import annotations

from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig

# add-zsh-hook ignores a function already registered, so sourcing the rc twice is harmless.
_REGISTER = """autoload -Uz add-zsh-hook
add-zsh-hook precmd _venvd_hook
add-zsh-hook chpwd _venvd_hook
"""


class Zsh:
    """zsh 5+."""

    name = "zsh"

    def hook(self, config: HookConfig) -> str:
        return posix.hook_prelude(config) + posix.hook_function(config, self.name) + _REGISTER

    def export(self, changes: Changes) -> str:
        return posix.export(changes)

    def quote(self, value: str) -> str:
        return posix.quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        return posix.remember(state)
