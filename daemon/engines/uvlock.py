"""``uv.lock``: ``uv sync --locked`` into the environment folder venvd prepared.

A workspace root syncs for the whole workspace, as ``uv sync --locked`` at the root does (its
members are installed as uv installs them); each member's ``pyproject.toml`` is an input too,
so editing one is followed (watched, and part of the lock state's fingerprint).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile, workspace
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines.base import Engine, Job
from venvd.daemon.errors import CommandFailed


class UvLock(Engine):
    name = "uv-sync"
    markers = ("uv.lock",)
    makes_venv = True  # ``uv sync`` creates the env, as it does by hand
    #: What ``uv sync --locked`` says when pyproject.toml was edited and not locked yet:
    #: the project waits for ``uv lock`` (or ``uv add``, which locks), it has not failed.
    stale_lock = re.compile(r"lockfile at .*uv\.lock.* needs to be updated")
    lock_hint = "uv.lock is out of date with pyproject.toml; run 'uv lock'"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not projectfile.present(project / "uv.lock"):
            return None
        members = workspace.workspace_members(str(project))
        return ("uv.lock", "pyproject.toml", *(f"{m}/pyproject.toml" for m in members))

    def install(self, job: Job) -> None:
        job.run(self._sync(job), {"UV_PROJECT_ENVIRONMENT": str(job.env)})

    def matches(self, job: Job) -> bool:
        """Whether *job.env* (the live env, which ``uv add`` or ``uv sync`` may have brought up
        to date itself) holds exactly what the lock asks for: ``uv sync --check``."""
        try:
            job.run([*self._sync(job), "--check"], {"UV_PROJECT_ENVIRONMENT": str(job.env)})
        except CommandFailed:
            return False
        return True

    def _sync(self, job: Job) -> list[str]:
        # the env's own python once it exists; the interpreter when uv is to create it
        python = job.python_args if job.env.exists() else ["--python", job.python]
        return [job.uv, "sync", "--locked", *python, *job.extra_args(), *job.group_args()]
