"""``poetry.lock``, synced by Poetry into the folder venvd prepared (see ``tools``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import tools
from venvd.daemon.engines.base import Engine, Job


class Poetry(Engine):
    name = "poetry"
    markers = ("poetry.lock",)
    #: Poetry's installer writes over an existing file in place (``open("wb")``) and appends
    #: to RECORD: a new lock state starts from a copy, never from links to the old one.
    clone = "copies"
    #: Poetry's word for a lock older than pyproject.toml: venvd waits for ``poetry lock``.
    stale_lock = re.compile(r"pyproject\.toml changed significantly since poetry\.lock")
    lock_hint = "poetry.lock is out of date with pyproject.toml; run 'poetry lock'"
    #: What a dry run says when the env already holds exactly the lock.
    in_sync = re.compile(r"Package operations: 0 installs, 0 updates, 0 removals|"
                         r"No dependencies to install or update")

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not projectfile.present(project / "poetry.lock"):
            return None
        tools.find_tool("poetry", "poetry.lock", "Poetry")
        return ("poetry.lock", "pyproject.toml")

    def command(self, job: Job, poetry: str) -> list[str]:
        version = tools.tool_version(poetry)
        argv = [poetry, "sync"] if version >= (2,) else [poetry, "install", "--sync"]
        argv += ["--no-interaction", "--no-ansi", *job.extra_args("--extras")]
        if job.config.groups:
            argv += ["--with", ",".join(job.config.groups)]
        return argv

    def install(self, job: Job) -> None:
        self.run(job)

    def run(self, job: Job, dry_run: bool = False) -> str:
        poetry = tools.find_tool("poetry", "poetry.lock", "Poetry")
        return job.run(self.command(job, poetry) + (["--dry-run"] if dry_run else []), {
            "VIRTUAL_ENV": str(job.env), "POETRY_VIRTUALENVS_CREATE": "false",
            # no desktop keyring to wait for in a daemon
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})

    def matches(self, job: Job) -> bool:
        """Whether the live env (``poetry add`` installs into it) already holds the lock."""
        return tools.dry_run_in_sync(self, job)
