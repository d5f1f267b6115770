"""The Unix-socket server: the daemon's lifetime around the socket. One thread runs a
selector over the listening socket and the connections still sending their request line
(``intake``); a complete request goes where it is answered best (``answering``)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import IO

from venvd.daemon.answering import Answerer
from venvd.daemon.errors import VenvdError
from venvd.daemon.intake import Intake
from venvd.daemon.paths import Paths, private_dir, write_private
from venvd.daemon.service import Daemon

log = logging.getLogger("venvd")


class AlreadyRunning(VenvdError):
    """Another daemon of this user holds the lock."""


def acquire_lock(path: Path) -> IO[str]:
    """Hold the per-user lock for as long as the returned file stays open."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning("another venvd daemon is already running") from None
    return handle


class Server:
    """The selector thread and the threads that answer, started and stopped in order.

    ``ping`` is answered on the spot. ``export`` (every prompt of every shell) goes to a
    thread of its own through a queue: a burst of prompts is served one after another
    without the overhead of an event loop and a future per request, and the selector thread
    never touches the file system for it. Everything else (which may take minutes and
    stream progress) runs in a pool. An asyncio server did the same job; under a burst of
    200 clients on two cores its own overhead per connection was most of the latency.
    """

    def __init__(self, daemon: Daemon, paths: Paths) -> None:
        self.daemon = daemon
        self.paths = paths
        self.answers = Answerer(daemon)
        self.intake = Intake(self.answers.take)

    def serve(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda _sig, _frame: self.stop())
        self.intake.wake_on_signals()
        listener = self._listen()
        prompt_thread = threading.Thread(target=self.answers.prompt_loop, name="venvd-prompt",
                                         daemon=True)
        prompt_thread.start()
        stop_watch = threading.Thread(target=self._stop_when_asked, name="venvd-stop",
                                      daemon=True)
        stop_watch.start()
        self.intake.register(listener)
        log.info("listening on %s (pid %d)", self.paths.socket, os.getpid())
        try:
            self.intake.loop(listener)
        finally:
            self._shutdown(prompt_thread, stop_watch)

    def _shutdown(self, prompt_thread: threading.Thread, stop_watch: threading.Thread) -> None:
        """Stop accepting (socket and waiting clients closed), answer the prompts already
        queued, cancel the syncs (a ``sync --wait`` request lasts as long as its sync), then
        wait for every request in hand; ``Daemon.close`` does the rest."""
        self.daemon.stop_requested.set()
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()
        self.intake.close()
        self.answers.end_prompts()
        prompt_thread.join()
        stop_watch.join()
        self.daemon.cancel_syncs()
        self.answers.shutdown()
        self.intake.close_waker()

    def stop(self) -> None:
        """Stop serving (from a signal handler or another thread)."""
        self.intake.stop()

    def _stop_when_asked(self) -> None:
        self.daemon.stop_requested.wait()
        self.stop()

    def _listen(self) -> socket.socket:
        sock_path = self.paths.socket
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(sock_path))
        finally:
            os.umask(old_umask)
        os.chmod(sock_path, 0o600)
        listener.listen(1024)  # a burst of prompts (many shells, one git pull) must not wait
        listener.setblocking(False)
        return listener


def run(paths: Paths, uv: str) -> int:
    """Run the daemon in the foreground until stopped. Returns the exit code."""
    private_dir(paths.runtime)
    lock = acquire_lock(paths.lock)
    try:
        paths.pid.write_text(f"{os.getpid()}\n")
        write_private(paths.pid_csh, f"set _venvd_dpid = {os.getpid()}\n")
        daemon = Daemon(paths, uv)
        try:
            Server(daemon, paths).serve()
        finally:
            daemon.close()
            for path in (paths.pid_csh, paths.pid):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    finally:
        lock.close()
    log.info("stopped")
    return 0
