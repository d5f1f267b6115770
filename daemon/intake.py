"""Accepting connections and reading their request lines: one thread runs a selector over
the listening socket and the connections still sending; peer uid checked, bounded requests,
a slow or bad one refused with an error while the daemon goes on."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import signal
import socket
import struct
import time
from typing import Callable

from venvd.daemon import protocol
from venvd.daemon.wire import parse, send_reply

log = logging.getLogger("venvd")

#: How long accepting pauses when it fails (out of file descriptors).
ACCEPT_PAUSE = 0.1


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class _Client:
    """A connection whose request line is still arriving."""

    __slots__ = ("data", "deadline", "done", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.data = b""
        self.done = False  # its request arrived, or it was refused


class Intake:
    """The selector thread: a complete request goes to *deliver* (called in this thread)."""

    def __init__(self, deliver: Callable[[socket.socket, protocol.Message], None]) -> None:
        self._deliver = deliver
        self._selector = selectors.DefaultSelector()
        self._waker_r, self._waker_w = socket.socketpair()
        self._stopping = False
        # clients still sending, oldest first (all get the same time, so also by deadline)
        self._waiting: collections.deque[_Client] = collections.deque()
        self._accept_paused_until = 0.0

    def register(self, listener: socket.socket) -> None:
        self._waker_r.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._waker_r, selectors.EVENT_READ, None)

    def stop(self) -> None:
        """Make ``loop`` return (from a signal handler or another thread)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker_w.send(b"x")

    def close(self) -> None:
        """Close the listening socket and the clients still sending."""
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def wake_on_signals(self) -> None:
        """Wake ``loop`` on every signal (main thread only). The kernel hands a signal to
        any thread that does not block it; Python runs the handler in the main thread, the
        one waiting in ``select``, only once that returns: without this, a SIGTERM that
        landed on another thread waited for the next client (seconds, or for ever)."""
        self._waker_w.setblocking(False)
        signal.set_wakeup_fd(self._waker_w.fileno(), warn_on_full_buffer=False)

    def close_waker(self) -> None:
        with contextlib.suppress(ValueError):  # not the main thread: nothing was set
            signal.set_wakeup_fd(-1)
        for sock in (self._waker_r, self._waker_w):
            sock.close()

    def loop(self, listener: socket.socket) -> None:
        waiting = self._waiting
        while not self._stopping:
            while waiting and waiting[0].done:
                waiting.popleft()
            timeout = max(0.0, waiting[0].deadline - time.monotonic()) if waiting else None
            if self._accept_paused_until:
                pause = max(0.0, self._accept_paused_until - time.monotonic())
                timeout = pause if timeout is None else min(timeout, pause)
                if pause == 0.0:  # try accepting again
                    self._accept_paused_until = 0.0
                    self._selector.register(listener, selectors.EVENT_READ, None)
            for key, _mask in self._selector.select(timeout):
                if key.fileobj is listener:
                    self._accept(listener)
                elif key.fileobj is self._waker_r:
                    with contextlib.suppress(OSError):
                        self._waker_r.recv(64)
                else:
                    self._read(key.data)
            now = time.monotonic()
            while waiting and waiting[0].deadline <= now:
                client = waiting.popleft()
                if not client.done:
                    self._refuse(client, "request timed out")

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. out of file descriptors: the connection stays in the backlog, and the
                # listener would be ready again at once; pause accepting for a moment rather
                # than spin
                log.warning("accept failed: %s; pausing for %.1f s", exc, ACCEPT_PAUSE)
                self._selector.unregister(listener)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            try:
                if peer_uid(sock) != os.getuid():
                    send_reply(sock, protocol.error("permission denied"))
                    continue
                sock.setblocking(False)
            except OSError:
                sock.close()
                continue
            # Clients send their request as soon as they connect: it is usually here already.
            self._read(_Client(sock, time.monotonic() + protocol.REQUEST_TIMEOUT),
                       registered=False)

    def _wait_for(self, client: _Client) -> None:
        try:
            self._selector.register(client.sock, selectors.EVENT_READ, client)
        except (OSError, ValueError):
            client.sock.close()
            return
        self._waiting.append(client)

    def _read(self, client: _Client, registered: bool = True) -> None:
        try:
            chunk = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            if not registered:
                self._wait_for(client)
            return
        except OSError:
            chunk = b""
            client.data = b""
        client.data += chunk
        line, newline, _rest = client.data.partition(b"\n")
        if len(line) > protocol.MAX_REQUEST:
            self._refuse(client, "request too large")
            return
        if not newline and chunk:
            if not registered:
                self._wait_for(client)
            return  # more to come
        client.done = True
        if registered:
            self._selector.unregister(client.sock)
        if not line.strip() and not newline:  # the client went away without asking
            client.sock.close()
            return
        try:
            request = parse(line)
        except protocol.ProtocolError as exc:
            send_reply(client.sock, protocol.error(str(exc)))
            return
        self._deliver(client.sock, request)

    def _refuse(self, client: _Client, text: str) -> None:
        client.done = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        send_reply(client.sock, protocol.error(text))
