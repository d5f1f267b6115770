"""The Unix-socket server: private socket, peer uid checked, bounded requests, and a bad
request answered with an error while the daemon goes on."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import math
import os
import queue
import selectors
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Callable, Optional

from venvd.daemon import protocol
from venvd.daemon.errors import VenvdError
from venvd.daemon.paths import Paths, private_dir
from venvd.daemon.service import Daemon

log = logging.getLogger("venvd")

#: A client that does not read its answer for this long is dropped.
SEND_TIMEOUT = 5.0
#: How long accepting pauses when it fails (out of file descriptors).
ACCEPT_PAUSE = 0.1
#: How deep arrays and objects may nest in a request (ours nest two deep); json.loads
#: recurses once per level, and a RecursionError there would end the selector thread.
MAX_NESTING = 32
#: The largest number a request may carry (psutil and SQLite take C integers).
MAX_NUMBER = 2**31 - 1
#: Requests that wait for long work (a sync with --wait, a prune): they run in a pool of
#: their own, so nine clients waiting on syncs never hold up a 'status'.
LONG_OPS = ("sync", "prune")


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


class Server:
    """One thread runs a selector over the listening socket and the connections still
    sending their request line; a complete request goes where it is answered best.

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
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="venvd-req")
        self.long_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="venvd-long")
        # said once to the user (a corrupt state database was moved aside and rebuilt)
        self._notice: Optional[str] = getattr(daemon.store, "notice", None)
        self._notice_lock = threading.Lock()
        self._prompts: queue.SimpleQueue[Optional[tuple[socket.socket, protocol.Message]]] = (
            queue.SimpleQueue())
        self._selector = selectors.DefaultSelector()
        self._waker_r, self._waker_w = socket.socketpair()
        self._stopping = False
        # clients still sending, oldest first (all get the same time, so also by deadline)
        self._waiting: collections.deque[_Client] = collections.deque()
        self._accept_paused_until = 0.0

    def serve(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda _sig, _frame: self.stop())
        listener = self._listen()
        prompt_thread = threading.Thread(target=self._prompt_loop, name="venvd-prompt",
                                         daemon=True)
        prompt_thread.start()
        stop_watch = threading.Thread(target=self._stop_when_asked, name="venvd-stop",
                                      daemon=True)
        stop_watch.start()
        self._waker_r.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._waker_r, selectors.EVENT_READ, None)
        log.info("listening on %s (pid %d)", self.paths.socket, os.getpid())
        try:
            self._loop(listener)
        finally:
            self._shutdown(prompt_thread, stop_watch)

    def _shutdown(self, prompt_thread: threading.Thread, stop_watch: threading.Thread) -> None:
        """Stop accepting (socket and waiting clients closed), answer the prompts already
        queued, cancel the syncs (a ``sync --wait`` request lasts as long as its sync), then
        wait for every request in hand; ``Daemon.close`` does the rest."""
        self.daemon.stop_requested.set()
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._prompts.put(None)
        prompt_thread.join()
        stop_watch.join()
        self.daemon.cancel_syncs()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.long_pool.shutdown(wait=True, cancel_futures=True)
        for sock in (self._waker_r, self._waker_w):
            sock.close()

    def stop(self) -> None:
        """Stop serving (from a signal handler or another thread)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker_w.send(b"x")

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

    def _loop(self, listener: socket.socket) -> None:
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
                    _reply(sock, protocol.error("permission denied"))
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
            _reply(client.sock, protocol.error(str(exc)))
            return
        if request["op"] == "ping":  # a liveness check never queues
            _reply(client.sock, self._handle(request, _discard))
        elif request["op"] == "export":
            self._prompts.put((client.sock, request))
        elif request["op"] in LONG_OPS:
            self.long_pool.submit(self._answer_slowly, client.sock, request)
        else:
            self.pool.submit(self._answer_slowly, client.sock, request)

    def _refuse(self, client: _Client, text: str) -> None:
        client.done = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        _reply(client.sock, protocol.error(text))

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

    def _prompt_loop(self) -> None:
        while True:
            item = self._prompts.get()
            if item is None:
                return
            sock, request = item
            _reply(sock, self._handle(request, _discard))

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
            _reply(sock, reply)


def _discard(_message: protocol.Message) -> None:
    pass


def parse(line: bytes) -> protocol.Message:
    """``protocol.decode_request`` with bounds: nesting checked before parsing, and every
    number in range (``"pid": 2**80`` once made psutil raise on every prompt)."""
    if _nesting(line) > MAX_NESTING:
        raise protocol.ProtocolError(f"request nested deeper than {MAX_NESTING} levels")
    try:
        request = protocol.decode_request(line)
    except RecursionError:  # the check above should make this unreachable
        raise protocol.ProtocolError("request nested too deeply") from None
    _check_numbers(request)
    pid = request.get("pid")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid < 0):
        raise protocol.ProtocolError("bad request: pid must be a process id")
    return request


def _nesting(line: bytes) -> int:
    """How deep arrays and objects nest in the JSON text *line* (brackets inside strings do
    not count)."""
    if line.count(b"[") + line.count(b"{") <= MAX_NESTING:  # every request of ours
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                break
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _check_numbers(value: object) -> None:
    """Refuse numbers no request needs: beyond a C int, or not finite (NaN, Infinity)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_NUMBER <= value <= MAX_NUMBER:
            raise protocol.ProtocolError("bad request: number out of range")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise protocol.ProtocolError("bad request: number out of range")
    elif isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item)


def _reply(sock: socket.socket, message: protocol.Message) -> None:
    """Send the last line of an answer and close (a client that does not read is dropped
    after ``SEND_TIMEOUT``)."""
    try:
        sock.settimeout(SEND_TIMEOUT)
        sock.sendall(protocol.encode(message))
    except OSError:
        pass
    finally:
        sock.close()


def run(paths: Paths, uv: str) -> int:
    """Run the daemon in the foreground until stopped. Returns the exit code."""
    private_dir(paths.runtime)
    lock = acquire_lock(paths.lock)
    try:
        paths.pid.write_text(f"{os.getpid()}\n")
        daemon = Daemon(paths, uv)
        try:
            Server(daemon, paths).serve()
        finally:
            daemon.close()
            with contextlib.suppress(FileNotFoundError):
                paths.pid.unlink()
    finally:
        lock.close()
    log.info("stopped")
    return 0
