"""Names made safe to show on a terminal (standard library only: the prompt client uses it).

A folder name, a ``.python-version`` line or a package's output can hold terminal control
sequences: an ESC there could retitle the terminal, hide text or fake a prompt. Every message
venvd shows, and the prompt name it exports, goes through ``printable``.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls (ESC and CSI among them), and lone surrogates (the bytes of
#: a name that is not UTF-8, which a terminal encoding cannot even write).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """*text* with every control character written as ``\\xNN`` (ESC as ``\\x1b``), except
    those in *keep* (``"\\n\\t"`` for multi-line output such as sync logs).

    Backslashes are left as they are, so escaping twice (the daemon, then the client) changes
    nothing more.
    """
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


def counts(added: object, removed: object, changed: object) -> str:
    """A sync's package changes, with the glyphs every venvd message uses (plain ASCII, as
    the drift lines: ``+`` added, ``-`` removed, ``~`` changed)."""
    return f"+{added} -{removed} ~{changed}"
