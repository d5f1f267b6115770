"""A request line and its answer on the socket: the line parsed within bounds, the answer's
last line sent and the connection closed."""

from __future__ import annotations

import math
import socket

from venvd.daemon import protocol

#: A client that does not read its answer for this long is dropped.
SEND_TIMEOUT = 5.0
#: How deep arrays and objects may nest in a request (ours nest two deep); json.loads
#: recurses once per level, and a RecursionError there would end the selector thread.
MAX_NESTING = 32
#: The largest number a request may carry (psutil and SQLite take C integers).
MAX_NUMBER = 2**31 - 1


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


def send_reply(sock: socket.socket, message: protocol.Message) -> None:
    """Send the last line of an answer and close (a client that does not read is dropped
    after ``SEND_TIMEOUT``)."""
    try:
        sock.settimeout(SEND_TIMEOUT)
        sock.sendall(protocol.encode(message))
    except OSError:
        pass
    finally:
        sock.close()
