"""``venvd allow [DIR]`` and ``venvd deny [DIR]`` without the parser or the other commands'
imports: one request to the daemon (started when it is not running), one line of answer.

``venvd allow`` starts a sync: its start-up is part of the user's wait for the env. The daemon
is looked for first where a running one listens in a login session (``$XDG_RUNTIME_DIR/venvd``)
without importing platformdirs (about 10 ms of imports, a third of the command), and where
platformdirs says otherwise.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Optional

from venvd.client.connection import DaemonUnavailable, request
from venvd.daemon.display import printable
from venvd.daemon.errors import VenvdError
from venvd.daemon.ownership import runtime_problem

#: What each command says once done (the project's path follows).
SAID = {
    "allow": "allowed {}; its environment is synced in the background",
    "deny": "denied {}; it will not be activated or synced",
}


def trust(op: str, directory: str) -> int:
    """Send *op* for *directory*; the exit code (0, or 1 with the reason on stderr)."""
    try:
        reply = _ask(op, os.path.abspath(directory))
    except VenvdError as exc:
        print(f"venvd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    said = allowed_text(reply) if op == "allow" else SAID[op].format(
        printable(str(reply["project"])))
    print(f"venvd: {said}")
    return 0


def allowed_text(reply: dict[str, object]) -> str:
    """What ``venvd allow`` says: the sync it started, or why the env cannot be made (the
    daemon then does not say it again at this shell's prompt)."""
    project = printable(str(reply["project"]))
    if reply.get("problem"):
        return (f"allowed {project}, but its environment cannot be made: "
                f"{printable(str(reply['problem']))}")
    return SAID["allow"].format(project)


def running_socket() -> Optional[str]:
    """The socket of a daemon already running in ``$XDG_RUNTIME_DIR/venvd``, or ``None``.

    Not the choice of folder (platformdirs' alone, the daemon's too): a socket of ours, in a
    private folder of ours, can only be one a daemon of ours made there after platformdirs
    chose that folder. ``request`` then checks that the process answering is this user."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if not os.path.isabs(xdg):
        return None
    folder = os.path.join(xdg, "venvd")
    path = os.path.join(folder, "daemon.sock")
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        return None
    return path if runtime_problem(folder) is None else None


def _ask(op: str, directory: str) -> dict[str, object]:
    # the shell it runs in: its next prompt does not repeat what this command says
    message = {"op": op, "dir": directory, "pid": os.getppid()}
    found = running_socket()
    if found is not None:
        try:  # (asked twice when the daemon went away meanwhile: both ops are idempotent)
            return _answer(request(found, message, timeout=30.0))
        except DaemonUnavailable:
            pass
    from venvd.daemon.paths import user_paths

    sock = str(user_paths().socket)
    try:
        reply = request(sock, message, timeout=30.0)
    except DaemonUnavailable:
        from venvd.client.commands import ensure_daemon  # the slow path: start the daemon

        ensure_daemon()
        reply = request(sock, message, timeout=30.0)
    return _answer(reply)


def _answer(reply: dict[str, object]) -> dict[str, object]:
    if not reply.get("ok"):
        raise VenvdError(str(reply.get("error", "the daemon refused the request")))
    return reply
