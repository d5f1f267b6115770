"""Lockfiles synced by their own tool: ``poetry.lock`` through Poetry, ``pdm.lock`` through PDM.

The tool installs into the folder venvd prepared (it is handed over as the active virtualenv),
so the switch stays atomic. A tool that is not installed is a plan error that says how to get it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from venvd.daemon.config import ProjectConfig
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


class Poetry:
    name = "poetry"
    steps = 1
    #: Poetry's word for a lock older than pyproject.toml: venvd waits for ``poetry lock``.
    stale_lock = re.compile(r"pyproject\.toml changed significantly since poetry\.lock")
    lock_hint = "poetry.lock is out of date with pyproject.toml; run 'poetry lock'"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / "poetry.lock").is_file():
            return None
        find_tool("poetry", "poetry.lock", "Poetry")
        return ("poetry.lock", "pyproject.toml")

    def command(self, job: Job, poetry: str) -> list[str]:
        version = tool_version(poetry)
        argv = [poetry, "sync"] if version >= (2,) else [poetry, "install", "--sync"]
        argv += ["--no-interaction", "--no-ansi"]
        for extra in job.config.extras:
            argv += ["--extras", extra]
        if job.config.groups:
            argv += ["--with", ",".join(job.config.groups)]
        return argv

    #: What a dry run says when the env already holds exactly the lock.
    in_sync = re.compile(r"Package operations: 0 installs, 0 updates, 0 removals|"
                         r"No dependencies to install or update")

    def install(self, job: Job) -> None:
        self.run(job)

    def run(self, job: Job, dry_run: bool = False) -> str:
        poetry = find_tool("poetry", "poetry.lock", "Poetry")
        return job.run(self.command(job, poetry) + (["--dry-run"] if dry_run else []), {
            "VIRTUAL_ENV": str(job.env), "POETRY_VIRTUALENVS_CREATE": "false",
            # no desktop keyring to wait for in a daemon
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})

    def matches(self, job: Job) -> bool:
        """Whether the live env (``poetry add`` installs into it) already holds the lock."""
        return _dry_run_in_sync(self, job)


class Pdm:
    name = "pdm"
    steps = 1
    #: PDM's word for a lock older than pyproject.toml (only a warning, after which it syncs
    #: the old lock): venvd waits for ``pdm lock`` instead.
    stale_lock = re.compile(r"(?i)lock ?file (doesn't satisfy the project requirements|"
                            r"hash doesn't match)")
    lock_hint = "pdm.lock is out of date with pyproject.toml; run 'pdm lock'"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / "pdm.lock").is_file():
            return None
        find_tool("pdm", "pdm.lock", "PDM")
        return ("pdm.lock", "pyproject.toml")

    def command(self, job: Job, pdm: str) -> list[str]:
        argv = [pdm, "sync", "--clean"]
        for group in (*job.config.extras, *job.config.groups):
            argv += ["--group", group]
        return argv

    in_sync = re.compile(r"(?i)all packages are synced|nothing to do")

    def install(self, job: Job) -> None:
        self.run(job)

    def run(self, job: Job, dry_run: bool = False) -> str:
        pdm = find_tool("pdm", "pdm.lock", "PDM")
        argv = self.command(job, pdm) + (["--dry-run"] if dry_run else [])
        out = job.run(argv, {"VIRTUAL_ENV": str(job.env), "PDM_PYTHON": job.env_python,
                             "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"})
        if self.stale_lock.search(out):  # an env of the old lock is not what was asked for
            raise CommandFailed(argv, 0, out)
        return out

    def matches(self, job: Job) -> bool:
        """Whether the live env (``pdm add`` installs into it) already holds the lock."""
        return _dry_run_in_sync(self, job)


def _dry_run_in_sync(engine: Poetry | Pdm, job: Job) -> bool:
    try:
        return bool(engine.in_sync.search(engine.run(job, dry_run=True)))
    except CommandFailed:
        return False
