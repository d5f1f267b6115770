"""fish: the hook runs on the prompt event and on every change of ``PWD``."""

from __future__ import annotations

from venvd.shell.base import Changes, HookConfig, check_name

_HOOK = """set -g __venvd_py %(python)s
set -g __venvd_gen_file %(generation)s
set -g __venvd_pwd ''
set -g __venvd_gen ''
set -g __venvd_ve ''
function __venvd_hook --on-event fish_prompt --on-variable PWD
    set -l venvd_status $status
    set -l g ''
    if test -r $__venvd_gen_file
        read g < $__venvd_gen_file
    end
    if test "$PWD" != "$__venvd_pwd" -o "$g" != "$__venvd_gen" -o "$VIRTUAL_ENV" != "$__venvd_ve"
        set -g __venvd_pwd $PWD
        set -g __venvd_gen $g
        if test -x $__venvd_py
            %(command)s | source
        end
        set -g __venvd_ve "$VIRTUAL_ENV"
    end
    return $venvd_status
end
"""


def quote(value: str) -> str:
    """Single-quote *value* for fish, where ``\\\\`` and ``\\'`` are the only escapes inside."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Fish:
    """fish 3+."""

    name = "fish"

    def hook(self, config: HookConfig) -> str:
        words = (config.python, *config.export_argv, self.name)
        command = " ".join(
            [
                *(quote(w) for w in words),
                "--socket",
                quote(config.socket),
                "--state-db",
                quote(config.state_db),
                "--pid $fish_pid",
            ]
        )
        return _HOOK % {
            "python": quote(config.python),
            "generation": quote(config.generation),
            "command": command,
        }

    def export(self, changes: Changes) -> str:
        lines = []
        for name in sorted(changes):
            value = changes[name]
            if value is None:
                lines.append(f"set -e {check_name(name)};")
            elif name == "PATH":
                # fish keeps PATH as a list; hand it over element by element.
                parts = " ".join(quote(p) for p in value.split(":"))
                lines.append(f"set -gx PATH {parts};")
            else:
                lines.append(f"set -gx {check_name(name)} {quote(value)};")
        return "\n".join(lines) + ("\n" if lines else "")

    def quote(self, value: str) -> str:
        return quote(value)
