"""nushell: the hook runs on ``pre_prompt`` and ``env_change.PWD``; it reads data, never code.

nushell cannot ``eval`` text, so ``venvd hook nu`` prints a script the rc file saves into
nushell's vendor autoload folder (read once config.nu has run), and everything the hook gets
at run time is data: the export client prints JSON lines, the daemon's ready snippet is a
JSON object (``snippet_suffix = "json"``), both read with ``from json`` and applied with
``load-env``/``hide-env``. The hook's own state is a record in ``$env``: nushell hands only
strings to child processes, so it stays out of their environment, nested shells included.
"""

from __future__ import annotations

from collections.abc import Mapping

from venvd.shell import data, posix
from venvd.shell.base import HookConfig, expand_home
from venvd.shell.nu_hook import HOOK

#: Where the rc block saves the hook: nushell reads its vendor autoload folder after
#: config.nu, in the same start-up (``source`` would need the file before config.nu runs).
_AUTOLOAD = "($nu.data-dir | path join vendor autoload)"


def quote(value: str) -> str:
    """A double-quoted nushell string: no interpolation (only ``$"..."`` interpolates),
    ``\\\\`` and ``\\"`` escaped, every unprintable character as ``\\u{...}``."""
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


class Nu(data.DataShell):
    """nushell 0.101+ (vendor autoload folders)."""

    name = "nu"
    rc_file = "~/.config/nushell/config.nu"

    def hook(self, config: HookConfig) -> str:
        return HOOK % {
            **posix.hook_paths(config, quote, data.SUFFIX),
            "argv": " ".join(quote(a) for a in config.export_argv),
            "user": quote(data.user_name()),
            "markers": " ".join(quote(m) for m in config.markers),
        }

    def quote(self, value: str) -> str:
        return quote(value)

    def hook_line(self) -> str:
        return f"mkdir {_AUTOLOAD}; venvd hook nu | save -f ({_AUTOLOAD[1:-1]} venvd.nu)"

    def rc_block(self) -> str:
        # without venvd, a hook saved before must not linger in the autoload folder
        local_bin = '($env.HOME | path join ".local" "bin")'
        return (f"if {local_bin} not-in $env.PATH {{\n"
                f"    $env.PATH = ($env.PATH | prepend {local_bin})\n}}\n"
                f"if (which venvd | is-not-empty) {{ {self.hook_line()} }} else {{\n"
                f"    rm -f ({_AUTOLOAD[1:-1]} venvd.nu)\n}}")

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        default = expand_home(self.rc_file, environ)
        config = environ.get("XDG_CONFIG_HOME")
        first = f"{config}/nushell/config.nu" if config else default
        return [first] if first == default else [first, default]
