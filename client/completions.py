"""``venvd completions SHELL``: tab completion for bash, zsh and fish, generated from the
command's own argparse definition by shtab, so it never drifts from the commands.

shtab writes static scripts (bash, zsh, fish and more from one parser): a TAB costs the
shell nothing but its own code, where argcomplete starts Python at every TAB. The scripts
are made when ``install.sh`` runs, so neither a prompt nor a TAB imports shtab.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from venvd.daemon.errors import UsageError, VenvdError

if TYPE_CHECKING:
    from venvd.client.run import Add

#: The shells completions are made and installed for (``target``: where each loads them).
SHELLS = ("bash", "zsh", "fish")

#: In every generated script, so ``install.sh --uninstall`` removes only the files it wrote.
MARK = "# venvd completions (./install.sh wrote this file; --uninstall removes it)"


class MissingLibrary(VenvdError):
    """shtab is not installed beside venvd."""


def target(shell: str, environ: Mapping[str, str]) -> str:
    """Where *shell* finds venvd's completions without being told: bash-completion's user
    folder (loaded on demand), a folder the zsh rc block puts on ``fpath``, fish's own."""
    home = environ.get("HOME") or os.path.expanduser("~")
    data = environ.get("XDG_DATA_HOME") or f"{home}/.local/share"
    if shell == "bash":
        user_dir = environ.get("BASH_COMPLETION_USER_DIR") or f"{data}/bash-completion"
        return f"{user_dir}/completions/venvd"
    if shell == "zsh":
        return f"{data}/zsh/site-functions/_venvd"
    config = environ.get("XDG_CONFIG_HOME") or f"{home}/.config"
    return f"{config}/fish/completions/venvd.fish"


def listing(environ: Mapping[str, str]) -> str:
    """``venvd completions --list``: ``SHELL<tab>FILE`` lines, what ``install.sh`` reads."""
    return "".join(f"{shell}\t{target(shell, environ)}\n" for shell in SHELLS)


def rc_lines(shell: str, environ: Mapping[str, str]) -> str:
    """Lines for *shell*'s rc block that load the installed completions where the shell
    would not on its own (empty for fish, which reads its completions folder itself)."""
    path = target(shell, environ)
    if shell == "bash":
        # bash-completion finds the file when it first completes venvd; a bash without it
        # (a fresh HOME, a minimal image) is given the file now
        return ("if ! declare -F _comp_load >/dev/null && ! declare -F __load_completion"
                f" >/dev/null && [ -r {shlex.quote(path)} ]; then . {shlex.quote(path)}; fi")
    if shell == "zsh":
        folder = shlex.quote(os.path.dirname(path))
        # compinit reads fpath when it runs: a compinit that ran before this block (the
        # usual order) is told about _venvd directly
        return (f"() {{ fpath=($1 ${{fpath:#$1}}) }} {folder}\n"
                f"(( $+functions[compdef] )) && [[ -r {shlex.quote(path)} ]] "
                "&& autoload -Uz _venvd && compdef _venvd venvd")
    return ""


def script(shell: str, top: argparse.ArgumentParser) -> str:
    """The completion script for *shell*, from *top* (the ``venvd`` parser)."""
    try:
        import shtab
    except ImportError:
        raise MissingLibrary(
            "completions need shtab: run ./install.sh again, or pip install 'venvd[completions]'"
        ) from None
    _complete_dirs(top, shtab.DIRECTORY)
    text: str = shtab.complete(top, shell=shell)
    first, _, rest = text.partition("\n")
    # zsh needs '#compdef venvd' as the first line to autoload the file
    return f"{first}\n{MARK}\n{rest}" if first.startswith("#compdef") else f"{MARK}\n{text}"


def _complete_dirs(top: argparse.ArgumentParser, directory: object) -> None:
    """Mark every ``DIR`` argument as a folder, for shtab to complete folders there."""
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for arg in sub._actions:
                    if arg.dest == "dir":
                        setattr(arg, "complete", directory)  # noqa: B010 (shtab's own attribute)


def command(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(listing(os.environ))
        return 0
    if args.shell is None:
        raise UsageError(f"completions: name a shell ({', '.join(SHELLS)}) or use --list")
    from venvd.client.main import parser

    sys.stdout.write(script(args.shell, parser()))
    return 0


def register(add: Add) -> None:
    """Add ``venvd completions`` to the command table."""
    p = add("completions", command,
            "print the tab completion script for SHELL (install.sh installs it)")
    p.add_argument("shell", nargs="?", choices=SHELLS)
    p.add_argument("--list", action="store_true",
                   help="print each shell and the file it loads completions from")
