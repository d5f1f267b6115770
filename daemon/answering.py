"""Where a complete request is answered: ``ping`` on the spot, ``export`` by the prompt
thread, everything else in a pool; one bad request never takes the daemon down."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from venvd.daemon import protocol
from venvd.daemon.service import Daemon
from venvd.daemon.wire import SEND_TIMEOUT, send_reply

log = logging.getLogger("venvd")

#: Requests that wait for long work (a sync with --wait, a prune): they run in a pool of
#: their own, so nine clients waiting on syncs never hold up a 'status'.
LONG_OPS = ("sync", "prune")


class Answerer:
    """The pools and the prompt thread that answer complete requests (``Server`` says why
    ``export`` has a thread of its own)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="venvd-req")
        self.long_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="venvd-long")
        # said once to the user (a corrupt state database was moved aside and rebuilt)
        self._notice: Optional[str] = getattr(daemon.store, "notice", None)
        self._notice_lock = threading.Lock()
        self._prompts: queue.SimpleQueue[Optional[tuple[socket.socket, protocol.Message]]] = (
            queue.SimpleQueue())

    def take(self, sock: socket.socket, request: protocol.Message) -> None:
        """Answer *request* where it is answered best (called by the selector thread)."""
        if request["op"] == "ping":  # a liveness check never queues
            send_reply(sock, self._handle(request, _discard))
        elif request["op"] == "export":
            self._prompts.put((sock, request))
        elif request["op"] in LONG_OPS:
            self.long_pool.submit(self._answer_slowly, sock, request)
        else:
            self.pool.submit(self._answer_slowly, sock, request)

    def end_prompts(self) -> None:
        """Let the prompt loop return once the prompts already queued are answered."""
        self._prompts.put(None)

    def shutdown(self) -> None:
        """Wait for every request in hand."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.long_pool.shutdown(wait=True, cancel_futures=True)

    def _handle(self, request: protocol.Message,
                emit: Callable[[protocol.Message], None]) -> protocol.Message:
        try:
            reply = self.daemon.handle(request, emit)
        except Exception:  # one bad request must never take the daemon down
            log.exception("error while answering %s", request.get("op"))
            return protocol.error("internal error (see the daemon log)")
        if self._notice is not None:
            self._tell_notice(request, reply)
        return reply

    def _tell_notice(self, request: protocol.Message, reply: protocol.Message) -> None:
        """The store's notice: in every 'daemon-status', and once in a prompt's messages."""
        if request.get("op") == "daemon-status":
            reply["notice"] = self._notice
        elif request.get("op") == "export" and isinstance(reply.get("messages"), list):
            with self._notice_lock:
                if self._notice is not None:
                    reply["messages"].append(f"venvd: {self._notice}")
                    self._notice = None

    def prompt_loop(self) -> None:
        while True:
            item = self._prompts.get()
            if item is None:
                return
            sock, request = item
            send_reply(sock, self._handle(request, _discard))

    def _answer_slowly(self, sock: socket.socket, request: protocol.Message) -> None:
        sock.settimeout(SEND_TIMEOUT)
        gone = threading.Event()

        def emit(message: protocol.Message) -> None:
            if gone.is_set():
                return
            try:
                sock.sendall(protocol.encode(message))
            except OSError:  # the client left; the work goes on without it
                gone.set()

        reply = self._handle(request, emit)
        if gone.is_set():
            sock.close()
        else:
            send_reply(sock, reply)


def _discard(_message: protocol.Message) -> None:
    pass
