"""One error family for everything venvd reports to users."""

from __future__ import annotations

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


_CAUSE = re.compile(r"^(?:caused by|cause):\s*(.*)$", re.IGNORECASE)

#: uv starts its error reports with a multiplication sign.
UV_ERROR_MARK = "\u00d7"


def first_error_line(output: str) -> str:
    """The line of *output* most likely to say what went wrong."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.lower().startswith(("error", UV_ERROR_MARK)) or "error:" in line.lower():
            first = line.lstrip(UV_ERROR_MARK + " ").strip()
            # uv explains an error in "Caused by:" lines; the deepest cause is the useful part
            causes = [c for c in map(_CAUSE.match, lines[i + 1:]) if c]
            if causes:
                first += ": " + causes[-1].group(1).strip()
            return first
    return lines[-1] if lines else "no output"
