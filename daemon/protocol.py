"""The socket protocol: one JSON object per line each way, and the shape of every op's
request and reply. Standard library only: the client (and the prompt path) uses it too."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from venvd.daemon.errors import VenvdError

VERSION = 1
#: Requests larger than this are refused; none of ours comes close.
MAX_REQUEST = 64 * 1024
#: A client must send its request within this many seconds of connecting.
REQUEST_TIMEOUT = 5.0

Message = dict[str, Any]


class Op(NamedTuple):
    """One op: the fields its request may carry (name -> accepted types), the keys of its
    successful reply besides ``ok``, and whether progress lines come first."""

    name: str
    request: dict[str, tuple[type, ...]] = {}  # noqa: RUF012 (never changed)
    reply: tuple[str, ...] = ()
    streams: bool = False


_DIR: dict[str, tuple[type, ...]] = {"dir": (str,)}
#: Every op the daemon answers; the daemon's handler table is checked against it.
TABLE = (
    Op("ping", {}, ("pid",)),
    Op("export", {**_DIR, "pid": (int,), "seen": (str,)}, ("project", "exports", "messages")),
    Op("status", {**_DIR, "all": (bool,)}, ("projects",)),
    # pid: the shell the command runs in (its prompt does not repeat what the command said)
    Op("allow", {**_DIR, "force": (bool,), "pid": (int,)}, ("project", "problem")),
    Op("deny", {**_DIR, "pid": (int,)}, ("project",)),
    Op("sync", {**_DIR, "wait": (bool,), "pid": (int,)}, ("project", "state", "last_sync"),
       streams=True),
    Op("logs", {**_DIR, "limit": (int, type(None))}, ("project", "syncs", "problems")),
    Op("daemon-status", {}, ("pid", "uptime", "rss", "threads", "cpu_seconds", "socket",
                             "projects", "shells", "queue", "visits_pending", "watch")),
    Op("stop", {}, ()),
    Op("prune", {}, ("removed", "kernels", "forgotten")),
)
BY_NAME = {op.name: op for op in TABLE}
OPS = tuple(BY_NAME)


class ProtocolError(VenvdError, ValueError):
    """A message that breaks the protocol; the reply (or the client) says why."""


def encode(message: Message) -> bytes:
    # ASCII with escapes: a path that is not UTF-8 (its bytes held as lone surrogates, as
    # os.fsdecode gives them) travels as "\udce9" and comes back as the same bytes
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def request(op: str, **fields: Any) -> Message:
    """A request line's object, as the client sends it."""
    return {"v": VERSION, "op": op, **fields}


def decode_reply(line: bytes) -> Message:
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("the daemon sent a reply that is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("the daemon sent a reply that is not a JSON object")
    return message


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
    name = message.get("op")
    op = BY_NAME.get(name) if isinstance(name, str) else None
    if op is None:
        raise ProtocolError(f"unknown op {message.get('op')!r}")
    for key, types in op.request.items():
        value = message.get(key)
        if value is not None and (not isinstance(value, types)
                                  or (isinstance(value, bool) and bool not in types)):
            if key == "dir":
                raise ProtocolError("request needs 'dir', an absolute path")
            raise ProtocolError(f"bad request: {key!r} is {type(value).__name__}")
    return message


def error(text: str) -> Message:
    return {"ok": False, "error": text}
