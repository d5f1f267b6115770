"""One error family for everything venvd reports to users."""

from __future__ import annotations

import os
import re


class VenvdError(Exception):
    """An expected failure, shown to the user as one clear message (exit code 1)."""


class UsageError(VenvdError):
    """The command line was wrong (exit code 2)."""


class CommandFailed(VenvdError):
    """A subprocess failed; keeps the command, its exit code and its output."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        super().__init__(f"{argv[0]} exited with {returncode}: {first_error_line(output)}")

    @property
    def summary(self) -> str:
        """What went wrong, in one line: the first error line of the output, or the signal
        that ended the command (its output then says nothing: it was cut short)."""
        if self.returncode < 0:
            return f"{os.path.basename(self.argv[0])} was killed by signal {-self.returncode}"
        return first_error_line(self.output)


_CAUSE = re.compile(r"^(?:caused by|cause):\s*(.*)$", re.IGNORECASE)
#: In a subprocess's output, a line that says what failed: "error: ...", "fatal: ..." (git),
#: a compiler's "x.c:1:10: fatal error: ...".
_ERRORISH = re.compile(r"^(?:error|fatal)\b|\berror:", re.IGNORECASE)
_LEADING = re.compile(r"^error:\s*", re.IGNORECASE)
_TRACEBACK = "Traceback (most recent call last):"

#: uv starts its error reports with a multiplication sign.
UV_ERROR_MARK = "\u00d7"


def first_error_line(output: str) -> str:
    """The line of *output* most likely to say what went wrong.

    uv's report reads "error: <what>" then "cause:" lines, the deepest last, and may end with
    the output of the process that failed (a build backend, git). From that output the line
    that names the problem is added: a traceback's exception line, else its first error line.
    """
    raw = [ln for ln in output.splitlines() if ln.strip()]
    for i, line in enumerate(ln.strip() for ln in raw):
        if line.lower().startswith(("error", UV_ERROR_MARK)) or "error:" in line.lower():
            # "error:" says nothing where the message is already a failure report
            first = _LEADING.sub("", line.lstrip(UV_ERROR_MARK + " ").strip()) or line
            return first + _deepest_cause(raw[i + 1:])
    return _problem_in(raw) or (raw[-1].strip() if raw else "no output")


def _deepest_cause(raw: list[str]) -> str:
    """": <cause>" for the deepest of uv's "cause:" lines in *raw* (or ""), the failed
    process's own words preferred."""
    found = [(i, m) for i, m in enumerate(_CAUSE.match(ln.strip()) for ln in raw) if m]
    if not found:
        return ""
    last, cause = found[-1]
    return ": " + (_problem_in(raw[last + 1:]) or cause.group(1).strip())


def _problem_in(raw: list[str]) -> str:
    """What a failed process's own output says went wrong ("" when it says nothing useful):
    the exception line of its last traceback, else its first error line."""
    headers = [i for i, ln in enumerate(raw) if ln.strip() == _TRACEBACK]
    if headers:
        start = headers[-1]
        indent = len(raw[start]) - len(raw[start].lstrip())
        for line in raw[start + 1:]:
            if len(line) - len(line.lstrip()) <= indent:
                return line.strip()
    for line in raw:
        text = line.strip()
        if _ERRORISH.search(text) and not text.lower().startswith("hint:"):
            return text
    return ""
