"""``venvd forget --all [--purge]``: stop managing every project and account for venvd's data,
the part of ``./install.sh --uninstall`` that needs venvd's own knowledge (its state database
and folders).

The service (``venvd daemon install-service``) goes and the daemon is stopped first: a
running daemon would put the links back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from venvd.client import leftovers, unmanage
from venvd.client.commands import checked_paths
from venvd.client.daemonctl import stop
from venvd.daemon.display import printable
from venvd.daemon.errors import UsageError, VenvdError

if TYPE_CHECKING:
    from venvd.client.run import Add


def command(args: argparse.Namespace) -> int:
    if not args.all:
        raise UsageError("forget: name --all (every project: what ./install.sh --uninstall "
                         "runs); to stop syncing one project: venvd deny DIR")
    paths = checked_paths()
    failed = 0
    try:  # first: a service manager would start the daemon again
        said = _remove_service()
    except VenvdError as exc:
        failed = 1
        said = f"could not remove the service: {exc}"
    if said:
        print(f"venvd: {said}")
    if stop(paths):
        print("venvd: stopped the daemon")
    for project in unmanage.known_projects(paths):
        try:
            for line in unmanage.give_back(Path(project), paths.envs):
                print(f"venvd: {line}")
        except OSError as exc:  # a folder gone unreadable: the others are still given back
            failed = 1
            print(f"venvd: could not give {printable(project)} back: {exc.strerror}",
                  file=sys.stderr)
    for line in unmanage.drop_kernels():
        print(f"venvd: {line}")
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


def _remove_service() -> Optional[str]:
    """Disable and remove ``venvd daemon install-service``'s unit (or agent), if there is
    one; what was done."""
    from venvd.client import service

    found = service.supervisor()
    if not found.path.exists():
        return None
    # its own line goes on to say the daemon starts on demand again: not so when uninstalling
    with contextlib.redirect_stdout(io.StringIO()):
        service.remove(found)
    for folder in (found.path.parent, found.path.parent.parent):  # systemd/user, if empty
        with contextlib.suppress(OSError):
            folder.rmdir()
    return f"removed the {found.name} service {printable(str(found.path))}"


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
