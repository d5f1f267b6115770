"""What the engines that sync through the project's own tool (Poetry, PDM) share: finding the
tool, its version, and asking it whether the live env already holds the lock.

The tool installs into the folder venvd prepared (it is handed over as the active virtualenv),
so the switch stays atomic. A tool that is not installed is a plan error that says how to get it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Protocol

from venvd.daemon.engines.base import Job
from venvd.daemon.errors import CommandFailed, VenvdError


def find_tool(name: str, lockfile: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise VenvdError(f"{lockfile} needs {how}, which is not installed; install it with "
                         f"'uv tool install {name}' (or 'pipx install {name}')")
    return path


def tool_version(path: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


class ToolEngine(Protocol):
    #: What a dry run says when the env already holds exactly the lock.
    in_sync: re.Pattern[str]

    def run(self, job: Job, dry_run: bool = False) -> str: ...


def dry_run_in_sync(engine: ToolEngine, job: Job) -> bool:
    """Whether the tool's dry run into *job.env* says there is nothing to do."""
    try:
        return bool(engine.in_sync.search(engine.run(job, dry_run=True)))
    except CommandFailed:
        return False
