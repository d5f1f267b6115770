"""``environment.yml``: a conda environment built by micromamba, mamba or conda (the first
one installed), into the folder venvd prepared, then switched in like any other env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines.base import Engine, Job
from venvd.daemon.errors import VenvdError

FILES = ("environment.yml", "environment.yaml")
TOOLS = ("micromamba", "mamba", "conda")


def find_conda() -> str:
    for tool in TOOLS:
        path = shutil.which(tool)
        if path:
            return path
    raise VenvdError("environment.yml needs conda, mamba or micromamba, and none is installed; "
                     "install micromamba (https://mamba.readthedocs.io) and run 'venvd sync'")


def command(tool: str, prefix: Path, spec: Path) -> list[str]:
    if os.path.basename(tool) == "micromamba":
        return [tool, "create", "--yes", "--prefix", str(prefix), "--file", str(spec)]
    return [tool, "env", "create", "--yes", "--prefix", str(prefix), "--file", str(spec)]


class Conda(Engine):
    name = "conda"
    markers = FILES
    creates_env = True  # the tool makes the env itself; no ``uv venv`` first
    clone = "never"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        for name in FILES:
            if (project / name).is_file():
                find_conda()
                return (name,)
        return None

    def install(self, job: Job) -> None:
        job.run(command(find_conda(), job.env, job.project / job.inputs[0]))
