"""Talking to the daemon, and starting it. Standard library only (the export path uses it)."""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Iterator
from typing import Optional

from venvd.daemon import protocol
from venvd.daemon.errors import VenvdError
from venvd.daemon.protocol import Message

__all__ = ["DaemonUnavailable", "ForeignDaemon", "Message", "request", "start_daemon", "stream",
           "wait_for_daemon"]


class DaemonUnavailable(VenvdError):
    """No daemon answered on the socket in time, or it went away before its last reply."""


class ForeignDaemon(VenvdError):
    """The process on the socket runs as another user: nothing it says is used."""


def check_peer(sock: socket.socket, sock_path: str) -> None:
    """Refuse a server that is not this user: another user's process on our socket path
    (a runtime folder they made first) could otherwise tell the shell what to run."""
    if not hasattr(socket, "SO_PEERCRED"):
        # Linux only; Python has no getpeereid() for the BSDs and macOS, where the private
        # runtime folder (checked before connecting) is the guard.
        return
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != os.getuid():
        raise ForeignDaemon(f"the daemon at {sock_path} runs as another user (uid {uid});"
                            " venvd refuses to talk to it")


def stream(sock_path: str, message: Message, timeout: Optional[float]) -> Iterator[Message]:
    """Send *message*; yield every reply line until one without ``progress``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(sock_path)
            check_peer(sock, sock_path)
            sock.sendall(protocol.encode(protocol.request(**message)))
            reader = sock.makefile("rb")
        except OSError as exc:
            raise DaemonUnavailable(f"cannot reach the daemon at {sock_path}: {exc}") from None
        while True:
            try:
                line = reader.readline()
            except OSError as exc:
                raise DaemonUnavailable(f"the daemon did not answer: {exc}") from None
            if not line:
                raise DaemonUnavailable("the daemon closed the connection without answering")
            if not line.endswith(b"\n"):  # cut short: the daemon died while writing it
                raise DaemonUnavailable("the daemon went away in the middle of its answer")
            reply = protocol.decode_reply(line)
            yield reply
            if "progress" not in reply:
                return
    finally:
        sock.close()


def request(sock_path: str, message: Message, timeout: Optional[float] = 10.0) -> Message:
    """One request, one reply."""
    replies = list(stream(sock_path, message, timeout))
    return replies[-1]


def start_daemon(python: str = sys.executable) -> None:
    """Start the daemon detached (its own session), without waiting for it.

    It gets the environment this shell had before venvd touched it, so a project's env
    never leaks into the daemon (which looks for interpreters on ``PATH``).
    """
    import subprocess  # here: the commands that only send a request never need it

    from venvd.shell.activation import current_state, revert

    env = dict(os.environ)
    state = current_state(env)
    if state is not None:
        revert(env, state)
    env.pop("VENVD_STATE", None)
    subprocess.Popen(
        [python, "-I", "-m", "venvd.daemon", "run", "--log-file"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd="/", env=env, start_new_session=True, close_fds=True,
    )


def wait_for_daemon(sock_path: str, deadline: float) -> bool:
    """Poll the socket until the daemon answers or *deadline* (monotonic) passes."""
    while time.monotonic() < deadline:
        try:
            if request(sock_path, {"op": "ping"}, timeout=1.0).get("ok"):
                return True
        except DaemonUnavailable:
            pass
        time.sleep(0.05)
    return False
