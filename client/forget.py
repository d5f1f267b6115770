"""``venvd forget --all [--purge]``: stop managing every project and account for venvd's data,
the part of ``./install.sh --uninstall`` that needs venvd's own knowledge (its state database
and folders).

The daemon is stopped first: a running one would put the links back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from venvd.client import leftovers, unmanage
from venvd.client.commands import START_TIMEOUT, checked_paths
from venvd.client.connection import DaemonUnavailable, request
from venvd.client.daemonctl import _alive
from venvd.daemon.display import printable
from venvd.daemon.errors import UsageError, VenvdError
from venvd.daemon.paths import Paths

if TYPE_CHECKING:
    from venvd.client.run import Add


def command(args: argparse.Namespace) -> int:
    if not args.all:
        raise UsageError("forget: name --all (every project: what ./install.sh --uninstall "
                         "runs); to stop syncing one project: venvd deny DIR")
    paths = checked_paths()
    _stop_daemon(paths)
    failed = 0
    for project in unmanage.known_projects(paths):
        try:
            for line in unmanage.give_back(Path(project), paths.envs):
                print(f"venvd: {line}")
        except OSError as exc:  # a folder gone unreadable: the others are still given back
            failed = 1
            print(f"venvd: could not give {printable(project)} back: {exc.strerror}",
                  file=sys.stderr)
    # never the venv this command runs from (install.sh's, inside the data folder)
    found = leftovers.pieces(paths, [*(Path(k) for k in args.keep), Path(sys.prefix)])
    if args.purge:
        for piece in found:
            problem = leftovers.remove(piece)
            if problem is None:
                print(f"venvd: removed {printable(str(piece.path))} ({piece.what})")
            else:
                failed = 1
                print(f"venvd: {problem}", file=sys.stderr)
    elif found:
        print("venvd: kept venvd's data (./install.sh --uninstall --purge removes all of it):")
        for line in leftovers.report(found):
            print(f"venvd: {line}")
    return failed


def _stop_daemon(paths: Paths) -> None:
    try:
        pid = request(str(paths.socket), {"op": "ping"}, 2.0).get("pid")
        request(str(paths.socket), {"op": "stop"}, 5.0)
    except DaemonUnavailable:
        return
    deadline = time.monotonic() + START_TIMEOUT
    while isinstance(pid, int) and _alive(pid):
        if time.monotonic() > deadline:
            raise VenvdError(f"the daemon (pid {pid}) did not stop: nothing was changed")
        time.sleep(0.05)  # the daemon finishes its running syncs' cancellation
    print("venvd: stopped the daemon")


def register(add: Add) -> None:
    """Add ``venvd forget`` to the command table."""
    p = add("forget", command,
            "stop managing every project: restore their own .venv, remove venvd's links; "
            "list venvd's data (or remove it: --purge)")
    p.add_argument("--all", action="store_true", help="every project (required)")
    p.add_argument("--purge", action="store_true",
                   help="also delete venvd's envs, state, logs, runtime files and settings")
    p.add_argument("--keep", action="append", default=[], metavar="PATH",
                   help="leave PATH alone (install.sh passes its own venv)")
