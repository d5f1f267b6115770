"""The daemon's news in a file the hooks read with builtins, so the prompt that picks up a
finished sync (``synced click in 0.2 s``) needs no client process.

The daemon keeps ``<runtime>/news.<suffix>`` in each shell syntax: one line per recent news
item, ``<function> <id> <project> <text> [<pid>...]``, the id being the time it was posted
(ns), so never above the generation the daemon bumps after it, and the pids those of the
shells that heard it already from a command they ran (``venvd sync --wait``). A hook
sources the file after a generation change that needs no client (see ``View.bump``) with
``<function>`` defined to print the items about its project whose ids lie in (the
generation it last saw, the one it sees now]: each item once, and only to the shells that
were there when it happened. The client, when a hook does call it, passes the generation
it last saw (``--seen``), so the daemon does not tell those items again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from venvd.shell.posix import NEWS_NAME
from venvd.shell.ready import FORMATS, SUFFIXES

#: The function each syntax's hook defines to take one line (fish's names start with ``__``).
FUNCTIONS = {"sh": "_venvd_news", "fish": "__venvd_news"}
#: Items kept in the file (the newest), over all projects.
KEPT = 20

Item = tuple[int, str, str, tuple[int, ...]]  # id, project, text, pids that heard it


def news_path(runtime: str, suffix: str) -> str:
    return os.path.join(runtime, f"{NEWS_NAME}{suffix}")


def write(runtime: str, items: Sequence[Item]) -> None:
    """Replace the news files with *items* (the newest ``KEPT``); on an error the files are
    removed (the hooks then hear nothing, and the client still tells)."""
    kept = sorted(items)[-KEPT:]
    # the syntaxes whose hooks take news with builtins; the others hear it from the client
    for suffix in (s for s in SUFFIXES if s in FUNCTIONS):
        shell, target = FORMATS[suffix], news_path(runtime, suffix)
        text = "".join(f"{FUNCTIONS[suffix]} {ident} {shell.quote(project)} "
                       f"{shell.quote(message)}{''.join(f' {pid}' for pid in heard)}\n"
                       for ident, project, message, heard in kept)
        tmp = f"{target}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
            os.replace(tmp, target)
        except OSError:
            for path in (tmp, target):
                with contextlib.suppress(OSError):
                    os.unlink(path)
