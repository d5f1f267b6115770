"""zsh: the hook runs on ``precmd`` and on ``chpwd``, so ``cd proj && python`` sees the env."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig, Shell

# add-zsh-hook ignores a function already registered, so sourcing the rc twice is harmless.
_REGISTER = """autoload -Uz add-zsh-hook
add-zsh-hook precmd _venvd_hook
add-zsh-hook chpwd _venvd_hook
"""

# zsh needs the value escaped with (b) and then matched as a pattern (~), which holds
# whatever its GLOB_SUBST option is; LOCAL_TRAPS puts the user's INT trap back by itself.
DIALECT = posix.Dialect(
    path_remove='local x=":$_venvd_fe/bin:"; local xb=${(b)x}; p=${p/${~xb}/:}',
    has_deactivate="(( ${+functions[deactivate]} ))",
    save_int="setopt localoptions localtraps",
    restore_int=":",
)


class Zsh(Shell):
    """zsh 5+."""

    name = "zsh"
    rc_file = "~/.zshrc"
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
