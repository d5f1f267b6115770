"""The user commands, one small function each, returning an exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any, Optional

from venvd.client.connection import (
    DaemonUnavailable,
    Message,
    request,
    start_daemon,
    stream,
    wait_for_daemon,
)
from venvd.client.statustext import describe_sync, print_status, print_table
from venvd.daemon.display import printable
from venvd.daemon.errors import VenvdError
from venvd.daemon.ownership import RuntimeRefused, runtime_problem
from venvd.daemon.paths import Paths, private_dir, user_paths, write_private
from venvd.daemon.projects import MARKERS
from venvd.shell import HookConfig, get_shell
from venvd.shell.activation import OFF_VAR, STATE_VAR, wake_file

START_TIMEOUT = 10.0


def checked_paths() -> Paths:
    """The user's paths, once the runtime folder is known to be private (or not made yet):
    a refused folder is one clear line, and no daemon is started or asked in it."""
    paths = user_paths()
    problem = runtime_problem(str(paths.runtime), missing_ok=True)
    if problem is not None:
        raise RuntimeRefused(problem)
    return paths


def ask(message: Message, timeout: float | None = 30.0) -> Message:
    """Send *message*, starting the daemon first if it is not running."""
    sock = str(checked_paths().socket)
    try:
        reply = request(sock, message, timeout)
    except DaemonUnavailable:
        ensure_daemon()
        reply = request(sock, message, timeout)
    if not reply.get("ok"):
        raise VenvdError(str(reply.get("error", "the daemon refused the request")))
    return reply


def ensure_daemon() -> None:
    sock = str(checked_paths().socket)
    start_daemon()
    if not wait_for_daemon(sock, time.monotonic() + START_TIMEOUT):
        raise VenvdError(f"the daemon did not start; see {user_paths().daemon_log}")


def directory(args: argparse.Namespace) -> str:
    return os.path.abspath(str(args.dir))


def hook(args: argparse.Namespace) -> int:
    """Print the init code; it runs nothing and prints nothing while the shell starts.

    The runtime folder is checked (made, if missing) here, once per shell start: the hook
    then only tests that each file it reads is the user's. A folder that is refused gives
    one line and no hook, so nothing in it is ever read or sourced.
    """
    try:
        paths = user_paths()
        private_dir(paths.runtime)
    except (VenvdError, OSError) as exc:
        print(f"venvd: {printable(str(exc))}; the {args.shell} hook is off", file=sys.stderr)
        return 1
    export_py = Path(__file__).with_name("export.py")
    standalone = export_py.parents[1].name == "venvd"
    flags = ("-I", "-S") if standalone else ("-I",)
    config = HookConfig(
        python=sys.executable, export_argv=(*flags, str(export_py)),
        socket=str(paths.socket), generation=str(paths.generation), state_db=str(paths.db),
        ready=str(paths.ready), markers=MARKERS, pid_file=str(paths.pid),
    )
    shell = get_shell(args.shell)
    for path, text in shell.files(config).items():
        if not os.path.exists(path):
            with contextlib.suppress(OSError):  # without it the hook asks the client
                write_private(Path(path), text)
    sys.stdout.write(shell.hook(config))
    return 0


def activate(args: argparse.Namespace) -> int:
    """Undo ``deactivate`` in the shell this runs in: its env is back at the next prompt.

    A command cannot change its shell's variables, so it leaves word (a file named after the
    shell's pid in the private runtime folder) that the shell's hook picks up.
    """
    if not os.environ.get(OFF_VAR):
        if os.environ.get(STATE_VAR):
            return 0  # already active
        raise VenvdError("activate: venvd is not turned off in this shell (it undoes "
                         "'deactivate' in a shell with the venvd hook)")
    try:
        Path(wake_file(str(checked_paths().runtime), os.getppid())).touch(mode=0o600)
    except OSError as exc:
        raise VenvdError(f"activate: cannot leave word for the shell: {exc}") from exc
    return 0


def export(args: argparse.Namespace) -> int:
    from venvd.client.export import main as export_main

    return export_main([args.shell])


def allow(args: argparse.Namespace) -> int:
    reply = ask({"op": "allow", "dir": directory(args), "force": bool(args.force),
                 "pid": os.getppid()})
    owner = _owner(reply["project"])
    if owner is not None and owner != os.getuid():
        print(f"venvd: warning: {printable(reply['project'])} belongs to uid {owner}: its owner "
              "can run code as you (in its build scripts and its environment)", file=sys.stderr)
    from venvd.client.quick import allowed_text

    print(f"venvd: {allowed_text(reply)}")
    return 0


def _owner(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def deny(args: argparse.Namespace) -> int:
    reply = ask({"op": "deny", "dir": directory(args), "pid": os.getppid()})
    print(f"venvd: denied {printable(reply['project'])}; it will not be activated or synced")
    return 0


def status(args: argparse.Namespace) -> int:
    reply = ask({"op": "status", "dir": directory(args), "all": args.all})
    found: list[dict[str, Any]] = reply["projects"]
    if args.json:
        print(json.dumps(found if args.all else found[0], indent=2, sort_keys=True))
    elif args.all:
        print_table(found)
    else:
        print_status(found[0])
    return 0


def sync(args: argparse.Namespace) -> int:
    message = {"op": "sync", "dir": directory(args), "wait": args.wait, "pid": os.getppid()}
    if not args.wait:
        reply = ask(message)
        print(f"venvd: sync of {printable(reply['project'])} started; see 'venvd status'")
        return 0
    ask({"op": "ping"})
    final: Message = {}
    bar = ProgressBar() if sys.stdout.isatty() else None
    for final in stream(str(checked_paths().socket), message, None):
        if "progress" not in final:
            continue
        if bar is not None:
            bar.update(printable(str(final["progress"])), final.get("steps"))
        else:
            print(printable(str(final["progress"])), flush=True)
    if bar is not None:
        bar.close()
    if not final.get("ok"):
        print(f"venvd: sync failed: {printable(str(final.get('error')))}", file=sys.stderr)
        return 1
    print(f"venvd: synced ({printable(describe_sync(final.get('last_sync')))})")
    return 0


class ProgressBar:
    """One line redrawn in place: a bar of the sync's commands and its latest output."""

    WIDTH = 24

    def __init__(self) -> None:
        self.steps = 0
        self.done = 0
        self.columns = shutil.get_terminal_size().columns

    def update(self, line: str, steps: Any = None) -> None:
        if isinstance(steps, int) and steps > 0:
            self.steps = steps
        if line.startswith("$ "):
            self.done += 1
        total = max(self.steps, self.done, 1)
        filled = self.WIDTH * max(self.done - 1, 0) // total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        text = f"[{bar}] {min(self.done, total)}/{total} {line}"
        sys.stdout.write("\r" + text[: self.columns - 1].ljust(self.columns - 1))
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.write("\r" + " " * (self.columns - 1) + "\r")
        sys.stdout.flush()


def logs(args: argparse.Namespace) -> int:
    reply = ask({"op": "logs", "dir": directory(args)})
    if not reply["syncs"]:
        print(f"venvd: no syncs recorded for {printable(reply['project'])}")
    for record in reversed(reply["syncs"]):
        print(f"=== {printable(describe_sync(record))}")
        print(printable(record["output"], keep="\n\t"))  # tool output, lines kept
    for problem in reply.get("problems") or ():  # what could not be recorded above
        print(f"=== daemon problem: {printable(problem)}")
    return 0


def prune(args: argparse.Namespace) -> int:
    reply = ask({"op": "prune"})
    removed: list[str] = reply["removed"]
    forgotten: list[str] = reply.get("forgotten") or []
    for path in removed:
        print(f"removed {printable(path)}")
    for path in forgotten:
        print(f"forgot {printable(path)} (its folder is gone)")
    print(f"venvd: pruned {len(removed)} cached environment(s); forgot {len(forgotten)} "
          "project(s)")
    for path in reply.get("kernels") or ():
        print(f"removed Jupyter kernel {printable(path)}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    from venvd.client.doctor import run_checks

    return run_checks(user_paths())


def socket_is_private(path: Path) -> bool:
    info = path.stat()
    return stat.S_IMODE(info.st_mode) & 0o077 == 0 and info.st_uid == os.getuid()
