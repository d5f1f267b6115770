"""The Unix-socket server: private socket, peer uid checked, bounded requests, and a bad
request answered with an error while the daemon goes on."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Optional

from venvd.daemon import protocol
from venvd.daemon.errors import VenvdError
from venvd.daemon.paths import Paths, private_dir
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


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class Server:
    def __init__(self, daemon: Daemon, paths: Paths) -> None:
        self.daemon = daemon
        self.paths = paths
        # Requests may block (SQLite, planning); they run here, off the event loop.
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="venvd-req")
        # The prompt path (export) has a thread of its own: its requests are short, and one
        # thread answers a burst of them faster than eight fighting over the GIL.
        self.prompt_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="venvd-prompt")
        self._stopping: Optional[asyncio.Event] = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stopping.set)
        sock_path = self.paths.socket
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                self._client, path=str(sock_path), limit=protocol.MAX_REQUEST + 1,
                backlog=1024,  # a burst of prompts (many shells, one git pull) must not wait
            )
        finally:
            os.umask(old_umask)
        os.chmod(sock_path, 0o600)
        log.info("listening on %s (pid %d)", sock_path, os.getpid())
        watch = loop.run_in_executor(None, self.daemon.stop_requested.wait)
        watch.add_done_callback(lambda _f: loop.call_soon_threadsafe(self._stop))
        async with server:
            await self._stopping.wait()
        self.daemon.stop_requested.set()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.prompt_pool.shutdown(wait=False, cancel_futures=True)

    def _stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if peer_uid(sock) != os.getuid():
                writer.write(protocol.encode(protocol.error("permission denied")))
                return
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the daemon is stopping: this client gets no answer
            return
        except Exception:  # one bad client must never take the daemon down
            log.exception("error while serving a client")
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), protocol.REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            writer.write(protocol.encode(protocol.error("request timed out")))
            return
        except (ValueError, asyncio.LimitOverrunError):
            writer.write(protocol.encode(protocol.error("request too large")))
            return
        try:
            request = protocol.decode_request(line)
        except protocol.ProtocolError as exc:
            writer.write(protocol.encode(protocol.error(str(exc))))
            return
        loop = asyncio.get_running_loop()

        def emit(message: protocol.Message) -> None:
            loop.call_soon_threadsafe(writer.write, protocol.encode(message))

        if request["op"] == "ping":  # answered on the loop: a liveness check never queues
            reply = self.daemon.handle(request, emit)
        else:
            pool = self.prompt_pool if request["op"] == "export" else self.pool
            reply = await loop.run_in_executor(pool, self.daemon.handle, request, emit)
        writer.write(protocol.encode(reply))


def run(paths: Paths, uv: str) -> int:
    """Run the daemon in the foreground until stopped. Returns the exit code."""
    private_dir(paths.runtime)
    lock = acquire_lock(paths.lock)
    try:
        paths.pid.write_text(f"{os.getpid()}\n")
        daemon = Daemon(paths, uv)
        try:
            asyncio.run(Server(daemon, paths).serve())
        finally:
            daemon.close()
            with contextlib.suppress(FileNotFoundError):
                paths.pid.unlink()
    finally:
        lock.close()
    log.info("stopped")
    return 0
