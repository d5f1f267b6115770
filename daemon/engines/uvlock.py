"""``uv.lock``: ``uv sync --locked`` into the environment folder venvd prepared.

A workspace root syncs for the whole workspace, as ``uv sync --locked`` at the root does (its
members are installed as uv installs them); each member's ``pyproject.toml`` is an input too,
so editing one is followed (watched, and part of the lock state's fingerprint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from venvd.daemon import projects
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines.base import Job


class UvLock:
    name = "uv-sync"
    steps = 1  # commands a sync runs (for the progress bar)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / "uv.lock").is_file():
            return None
        members = projects.workspace_members(str(project))
        return ("uv.lock", "pyproject.toml", *(f"{m}/pyproject.toml" for m in members))

    def install(self, job: Job) -> None:
        argv = [job.uv, "sync", "--locked", "--python", job.env_python]
        for extra in job.config.extras:
            argv += ["--extra", extra]
        for group in job.config.groups:
            argv += ["--group", group]
        job.run(argv, {"UV_PROJECT_ENVIRONMENT": str(job.env)})
