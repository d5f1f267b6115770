"""Requests at the socket's edge: deep nesting, numbers out of range and clients that never
read their answer get an error or wait alone; the daemon goes on answering everyone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from venvd.daemon.store import Store

import memlimit
from conftest import Sandbox
from support.sockets import exchange

limited_daemon = memlimit.limited_daemon  # the fixture


def raw(box: Sandbox, payload: bytes, timeout: float = 10) -> dict[str, object]:
    """Send raw bytes; the daemon's last answer line, parsed."""
    answer = exchange(box.socket, payload, timeout)
    result: dict[str, object] = json.loads(answer.splitlines()[-1])
    return result


def _alive_and_well(box: Sandbox) -> None:
    assert box.request({"v": 1, "op": "ping"})["ok"]
    assert box.request({"v": 1, "op": "daemon-status"})["ok"]


@pytest.mark.parametrize("payload", [
    b"[" * 1100 + b"]" * 1100,
    b'{"v":1,"op":"ping","x":' + b"[" * 1100 + b"]" * 1100 + b"}",
    b'{"v":1,"op":"ping","x":' + b'{"a":' * 1100 + b"1" + b"}" * 1100 + b"}",
    b"[" * 60000,  # never closed
])
def test_deep_nesting_is_refused(limited_daemon: tuple[Sandbox, psutil.Process],
                                 payload: bytes) -> None:
    box, _proc = limited_daemon
    reply = raw(box, payload + b"\n")
    assert reply["ok"] is False
    assert "nested" in str(reply["error"])
    _alive_and_well(box)


def test_brackets_inside_strings_are_not_nesting(
        limited_daemon: tuple[Sandbox, psutil.Process], tmp_path: Path) -> None:
    box, _proc = limited_daemon
    odd = box.root / ("[{" * 40)
    odd.mkdir()
    reply = box.request({"v": 1, "op": "export", "dir": str(odd), "pid": os.getpid()})
    assert reply["ok"], reply


@pytest.mark.parametrize("field", [
    b'"pid":' + str(2**80).encode(),
    b'"pid":-5',
    b'"pid":1.5',
    b'"pid":true',
    b'"pid":1e400',
    b'"pid":NaN',
    b'"pid":1,"limit":' + str(2**70).encode(),
])
def test_numbers_out_of_range_are_a_bad_request(
        limited_daemon: tuple[Sandbox, psutil.Process], field: bytes) -> None:
    box, _proc = limited_daemon
    directory = json.dumps(str(box.root)).encode()
    reply = raw(box, b'{"v":1,"op":"export","dir":' + directory + b"," + field + b"}\n")
    assert reply["ok"] is False, reply
    assert "bad request" in str(reply["error"])
    _alive_and_well(box)
    # a good export right after it is answered as ever
    good = box.request({"v": 1, "op": "export", "dir": str(box.root), "pid": os.getpid()})
    assert good["ok"], good


@contextlib.contextmanager
def _held_env_lock(project: Path) -> Iterator[None]:
    """Hold ``<env>/.lock`` as a running ``uv sync`` would: venvd's sync waits its turn."""
    (project / ".venv").mkdir()
    with open(project / ".venv" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def test_clients_waiting_on_syncs_do_not_hold_up_status(
        limited_daemon: tuple[Sandbox, psutil.Process]) -> None:
    box, _proc = limited_daemon
    busy = box.project("busy", requirements="")
    other = box.project("other", requirements="")
    request = json.dumps({"v": 1, "op": "sync", "dir": str(busy), "wait": True}).encode()
    waiting: list[socket.socket] = []
    with _held_env_lock(busy):  # before 'allow', whose sync would otherwise build the env
        box.venvd("allow", str(busy))
        try:
            for _ in range(12):  # more than the request pool has threads; none reads
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(str(box.socket))
                sock.sendall(request + b"\n")
                waiting.append(sock)
            # answered while all twelve still wait for the sync
            status = box.request({"v": 1, "op": "status", "dir": str(other)}, timeout=15)
            assert status["ok"], status
            assert box.status(busy)["state"] == "waiting"  # still, for uv's lock
        finally:
            for sock in waiting:
                sock.close()


def test_clients_that_never_read_are_dropped(sandbox: Sandbox,
                                             request: pytest.FixtureRequest) -> None:
    """Answers larger than the socket's buffer, to clients that never read: each is cut off
    after the send timeout, so they cannot hold the request threads for good."""
    store = Store(sandbox.home / ".local" / "state" / "venvd" / "state.sqlite3")
    for i in range(2000):  # 'status --all' then answers ~750 KB
        store.touch_project(f"/gone/project-{i:05d}")
    store.close()
    box, _proc = request.getfixturevalue("limited_daemon")
    other = box.project("other", requirements="")
    ask = json.dumps({"v": 1, "op": "status", "all": True}).encode() + b"\n"
    sleepers = []
    try:
        for _ in range(10):  # more than the request pool has threads
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(box.socket))
            sock.sendall(ask)
            sleepers.append(sock)
        status = box.request({"v": 1, "op": "status", "dir": str(other)}, timeout=60)
        assert status["ok"], status
        # the pool's eight threads served them first; three had to be freed (by cutting off
        # a client: what it got ends before the answer does) for the last two and the
        # status. Reading here may complete the answers still within their send timeout.
        cut = 0
        for sock in sleepers:
            sock.settimeout(60)
            got = b""
            while chunk := sock.recv(1 << 16):
                got += chunk
            cut += not got.endswith(b"}\n")
        assert cut >= 3
    finally:
        for sock in sleepers:
            sock.close()
