"""The protocol's one definition: the op table the daemon answers from, the checks on a
request line, and the client's reading of replies (errors are ``VenvdError``s)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from venvd.client import connection
from venvd.daemon import ops, protocol
from venvd.daemon.errors import VenvdError


def test_every_op_has_one_handler_and_every_handler_an_op() -> None:
    assert set(ops.HANDLERS) == set(protocol.OPS) == {op.name for op in protocol.TABLE}


@pytest.mark.parametrize(("line", "problem"), [
    (b'{"v": 1, "op": ["status"]}', "unknown op"),
    (b'{"v": 1, "op": "status", "dir": 42}', "absolute path"),
    (b'{"v": 1, "op": "status", "dir": "/x", "all": "yes"}', "'all' is str"),
    (b'{"v": 1, "op": "export", "dir": "/x", "pid": true}', "'pid' is bool"),
    (b'{"v": 2, "op": "ping"}', "protocol version"),
])
def test_a_request_of_the_wrong_shape_is_refused_with_a_reason(line: bytes,
                                                                problem: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=problem) as caught:
        protocol.decode_request(line)
    assert isinstance(caught.value, VenvdError)


def test_the_client_sends_the_protocols_version() -> None:
    assert protocol.decode_request(protocol.encode(protocol.request("ping")).strip()) == {
        "v": protocol.VERSION, "op": "ping"}


@pytest.mark.parametrize("sent", [b'{"ok": true, "progress": "x"}\n{"ok": tr', b"", b"[1]\n"])
def test_a_reply_cut_short_or_malformed_is_a_venvd_error(tmp_path: Path, sent: bytes) -> None:
    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(sent)

    server = threading.Thread(target=answer)
    server.start()
    try:
        with pytest.raises(VenvdError):
            list(connection.stream(path, {"op": "sync", "dir": "/x", "wait": True}, 10))
    finally:
        server.join()
        listener.close()
