"""``pdm.lock``, synced by PDM into the folder venvd prepared (see ``tools``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import tools
from venvd.daemon.engines.base import Engine, Job
from venvd.daemon.errors import CommandFailed


class Pdm(Engine):
    name = "pdm"
    markers = ("pdm.lock",)
    #: PDM installs with its own installer (it unlinks a file before writing it, but not
    #: every path of it was checked): a new lock state starts from a copy, not from links.
    clone = "copies"
    #: PDM's word for a lock older than pyproject.toml (only a warning, after which it syncs
    #: the old lock): venvd waits for ``pdm lock`` instead.
    stale_lock = re.compile(r"(?i)lock ?file (doesn't satisfy the project requirements|"
                            r"hash doesn't match)")
    lock_hint = "pdm.lock is out of date with pyproject.toml; run 'pdm lock'"
    in_sync = re.compile(r"(?i)all packages are synced|nothing to do")

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not projectfile.present(project / "pdm.lock"):
            return None
        tools.find_tool("pdm", "pdm.lock", "PDM")
        return ("pdm.lock", "pyproject.toml")

    def command(self, job: Job, pdm: str) -> list[str]:
        # PDM's extras are groups too
        return [pdm, "sync", "--clean", *job.extra_args("--group"), *job.group_args()]

    def install(self, job: Job) -> None:
        self.run(job)

    def run(self, job: Job, dry_run: bool = False) -> str:
        pdm = tools.find_tool("pdm", "pdm.lock", "PDM")
        argv = self.command(job, pdm) + (["--dry-run"] if dry_run else [])
        out = job.run(argv, {"VIRTUAL_ENV": str(job.env), "PDM_PYTHON": job.env_python,
                             "PDM_CHECK_UPDATE": "false", "PDM_NON_INTERACTIVE": "1"})
        if self.stale_lock.search(out):  # an env of the old lock is not what was asked for
            raise CommandFailed(argv, 0, out)
        return out

    def matches(self, job: Job) -> bool:
        """Whether the live env (``pdm add`` installs into it) already holds the lock."""
        return tools.dry_run_in_sync(self, job)
