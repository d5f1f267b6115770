"""Talking to the daemon's socket byte by byte, as a hostile or broken client would."""

from __future__ import annotations

import socket
from pathlib import Path


def exchange(path: Path, payload: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; return everything the daemon answers before closing."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(payload)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer
