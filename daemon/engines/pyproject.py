"""``pyproject.toml`` alone: its dependencies (plus the extras and dependency groups the config
names) resolved and synced exactly; a project with a ``[build-system]`` is also installed
editable, as ``uv sync`` would."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from venvd.daemon.config import ProjectConfig, read_toml
from venvd.daemon.engines.base import Job


class Pyproject:
    name = "uv-pyproject"
    steps = 3  # commands a sync runs (for the progress bar)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        return ("pyproject.toml",) if (project / "pyproject.toml").is_file() else None

    def install(self, job: Job) -> None:
        pins = job.work / "requirements.lock.txt"
        argv = [job.uv, "pip", "compile", "--quiet", "--no-header", "--python", job.env_python,
                "--output-file", str(pins), "pyproject.toml"]
        for extra in job.config.extras:
            argv += ["--extra", extra]
        for group in job.config.groups:
            argv += ["--group", group]
        job.run(argv)
        job.run([job.uv, "pip", "sync", "--allow-empty-requirements",
                 "--python", job.env_python, str(pins)])
        if "build-system" in read_toml(job.project / "pyproject.toml"):
            job.run([job.uv, "pip", "install", "--no-deps", "--python", job.env_python,
                     "-e", str(job.project)])
