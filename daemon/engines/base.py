"""What a sync engine is, and the job it works on."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

from venvd.daemon.config import ProjectConfig
from venvd.daemon.errors import CommandFailed, VenvdError

Progress = Callable[[str], None]


class Cancelled(VenvdError):
    """The daemon is stopping; the sync was abandoned and nothing was switched."""


@dataclass
class Job:
    """One sync of one project into a fresh environment folder."""

    project: Path
    env: Path
    python: str
    config: ProjectConfig
    uv: str
    inputs: tuple[str, ...]
    progress: Progress
    cancel: threading.Event
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    output: list[str] = field(default_factory=list)

    @property
    def env_python(self) -> str:
        return str(self.env / "bin" / "python")

    @property
    def scratch(self) -> Path:
        """Beside the env, for what an engine derives before the env exists (``resolve``);
        removed when the build ends."""
        return self.env.with_name(f".{self.env.name}.scratch")

    @property
    def work(self) -> Path:
        """Where the engine keeps what it derived (the compiled pin set)."""
        path = self.env / ".venvd"
        path.mkdir(exist_ok=True)
        return path

    def run(self, argv: list[str], extra_env: Optional[Mapping[str, str]] = None) -> str:
        """Run *argv* in the project; keep its output; raise CommandFailed on failure."""
        if self.cancel.is_set():
            raise Cancelled("sync cancelled")
        env = {k: v for k, v in self.environ.items() if k != "VIRTUAL_ENV"}
        env.update(extra_env or {})
        self.progress("$ " + " ".join(argv))
        self.output.append("$ " + " ".join(argv))
        with subprocess.Popen(
            argv, cwd=self.project, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        ) as proc:
            lines = []
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                self.output.append(line.rstrip("\n"))
                self.progress(line.rstrip("\n"))
                if self.cancel.is_set():
                    proc.terminate()
            code = proc.wait()
        text = "".join(lines)
        if self.cancel.is_set():
            raise Cancelled("sync cancelled")
        if code != 0:
            raise CommandFailed(argv, code, text)
        return text


class Engine(Protocol):
    """One lockfile format."""

    name: str
    steps: int

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        """The files (relative to *project*) this engine syncs from, or None if not its kind."""
        ...

    def install(self, job: Job) -> None:
        """Make *job.env* (a fresh virtualenv) match the inputs exactly."""
        ...


@dataclass(frozen=True)
class Counts:
    added: int = 0
    removed: int = 0
    changed: int = 0
