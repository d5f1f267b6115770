"""The ``venvd`` command: a table of small commands, each returning an exit code.

Exit codes: 0 success, 1 the operation failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Callable

from venvd.daemon.display import printable
from venvd.daemon.errors import UsageError, VenvdError

if TYPE_CHECKING:  # argparse is imported when a parser is built: `venvd allow` needs none
    import argparse

Command = Callable[["argparse.Namespace"], int]
#: Commands that are one request and one line of answer: run without building the parser
#: and without the other commands' imports (``venvd allow`` starts a sync: its start-up is
#: part of the user's wait for the env).
QUICK = ("allow", "deny")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("venvd")
    except PackageNotFoundError:
        return "(not installed)"


def _hook(args: argparse.Namespace) -> int:
    from venvd.client import commands
    from venvd.shell import SHELLS, get_shell, listing

    if args.list:
        sys.stdout.write(listing(os.environ))
        return 0
    if args.shell is None:
        raise UsageError(f"hook: name a shell ({', '.join(SHELLS)}) or use --list")
    if args.rc_block:
        from venvd.client import completions  # not at every shell start (`venvd hook`)

        block = get_shell(args.shell).rc_block()
        extra = completions.rc_lines(args.shell, os.environ)  # loads the installed ones
        print(f"{block}\n{extra}" if extra else block)
        return 0
    return commands.hook(args)


def parser() -> argparse.ArgumentParser:
    import argparse

    from venvd.client import commands, completions, daemonctl, forget, run
    from venvd.shell import SHELLS

    class Version(argparse.Action):
        """``--version``: importlib.metadata only when asked (it costs every start-up)."""

        def __call__(self, parser: argparse.ArgumentParser, *args: object,
                     **kwargs: object) -> None:
            print(f"venvd {_version()}")  # on stdout, as argparse's own version action does
            parser.exit()

    top = argparse.ArgumentParser(prog="venvd", description=(
        "Keeps each project's Python environment in sync and active in your shell."))
    top.add_argument("--version", action=Version, nargs=0,
                     help="show program's version number and exit")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Command, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    hook = add("hook", _hook, "print the shell init code to eval from your rc file")
    hook.add_argument("shell", nargs="?", choices=tuple(SHELLS))
    hook.add_argument("--list", action="store_true",
                      help="print each shell, its rc file and hook line (tab separated)")
    hook.add_argument("--rc-block", action="store_true",
                      help="print the lines install.sh adds to SHELL's rc file")
    add("export", commands.export, "print the exports for $PWD (what the hook runs)"
        ).add_argument("shell", choices=tuple(SHELLS))
    allow = add("allow", commands.allow, "trust a project: activate and sync it")
    allow.add_argument("dir", nargs="?", default=".")
    allow.add_argument("--force", action="store_true",
                       help="allow a project another user owns (its owner can run code as you)")
    for name, func, text in (
        ("deny", commands.deny, "distrust a project: never activate or sync it"),
        ("logs", commands.logs, "print the output of a project's last syncs"),
    ):
        add(name, func, text).add_argument("dir", nargs="?", default=".")
    status = add("status", commands.status, "show a project's environment and sync state")
    status.add_argument("dir", nargs="?", default=".")
    status.add_argument("--all", action="store_true", help="every tracked project")
    status.add_argument("--json", action="store_true", help="stable machine-readable output")
    sync = add("sync", commands.sync, "sync a project's environment now")
    sync.add_argument("dir", nargs="?", default=".")
    sync.add_argument("--wait", action="store_true", help="stream progress; fail if it fails")
    daemon = add("daemon", daemonctl.daemon, "start, stop or inspect the background daemon")
    daemon.add_argument("action", choices=("start", "stop", "restart", "status", "run",
                                           "install-service"))
    daemon.add_argument("--uninstall", action="store_true",
                        help="with install-service: disable and remove the service")
    add("activate", commands.activate,
        "undo 'deactivate': this shell's project env is back at the next prompt")
    add("prune", commands.prune, "remove cached environments no project uses")
    add("doctor", commands.doctor, "check the setup and say what to fix")
    run.register(add)
    completions.register(add)
    forget.register(add)
    return top


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["export"]:
        # The prompt path: skip argparse and the user commands entirely.
        from venvd.client.export import main as export_main

        return export_main(args[1:])
    if args[:1] and args[0] in QUICK and len(args) <= 2 and not any(
            a.startswith("-") for a in args[1:]):
        from venvd.client.quick import trust

        return trust(args[0], args[1] if len(args) > 1 else ".")
    try:
        code = _command(args)
        sys.stdout.flush()  # here rather than at exit: a reader gone is caught below
        return code
    except BrokenPipeError:
        # the reader went away (`venvd hook bash --rc-block | head -1`): no traceback, and
        # nothing more written (Python's own flush at exit would fail the same way)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE


def _command(args: list[str]) -> int:
    try:
        namespace = parser().parse_args(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        func: Command = namespace.func
        return func(namespace)
    except UsageError as exc:
        print(f"venvd: {printable(str(exc))}", file=sys.stderr)
        return 2
    except VenvdError as exc:  # often names a path or quotes a tool: escaped
        print(f"venvd: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
