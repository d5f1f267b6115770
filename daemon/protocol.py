"""The socket protocol: one JSON object per line each way. Standard library only."""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
#: Requests larger than this are refused; none of ours comes close.
MAX_REQUEST = 64 * 1024
#: A client must send its request within this many seconds of connecting.
REQUEST_TIMEOUT = 5.0

OPS = ("ping", "export", "status", "allow", "deny", "sync", "logs", "daemon-status", "stop",
       "prune")

Message = dict[str, Any]


class ProtocolError(ValueError):
    """A request the daemon cannot take; the reply says why."""


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_request(line: bytes) -> Message:
    """Parse and check one request line; raise ProtocolError with a readable reason."""
    if len(line) > MAX_REQUEST:
        raise ProtocolError(f"request larger than {MAX_REQUEST} bytes")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("request is not a JSON object on one line") from None
    if not isinstance(message, dict):
        raise ProtocolError("request is not a JSON object")
    if message.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {message.get('v')!r} (want {VERSION})")
    if message.get("op") not in OPS:
        raise ProtocolError(f"unknown op {message.get('op')!r}")
    return message


def error(text: str) -> Message:
    return {"ok": False, "error": text}
