"""What a sync engine is, and the job it works on."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Optional

from venvd.daemon.config import ProjectConfig
from venvd.daemon.errors import CommandFailed, VenvdError

Progress = Callable[[str], None]


class Cancelled(VenvdError):
    """The daemon is stopping; the sync was abandoned and nothing was switched."""


#: Variables a sync's commands do not get from the daemon's environment.
_NOT_PASSED = frozenset({"VIRTUAL_ENV", "COLUMNS", "LINES"})


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
    #: What ``install_early`` installed (name -> version), for ``install`` to compare.
    early: Optional[dict[str, str]] = None
    #: The output of ``install_early``'s command (uv's check of the env, for ``install``).
    early_output: str = ""
    #: The complete lock state *env* starts as a clone of (None: a fresh env).
    origin: Optional[Path] = None
    #: What ``resolve`` left for ``install`` to decide (the engine's own).
    deferred: object = None

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

    @property
    def python_args(self) -> list[str]:
        """``--python <the env's python>``: what every uv command into the env is given."""
        return ["--python", self.env_python]

    def pip_sync(self, *args: str) -> list[str]:
        """``uv pip sync`` with *args*: an empty requirement set makes an empty env, not an
        error (a project may pin nothing yet)."""
        return [self.uv, "pip", "sync", "--allow-empty-requirements", *args]

    def extra_args(self, flag: str = "--extra") -> list[str]:
        """*flag* before each extra the config asks for (``--extra a --extra b``)."""
        return repeat(flag, self.config.extras)

    def group_args(self, flag: str = "--group") -> list[str]:
        """*flag* before each dependency group the config asks for."""
        return repeat(flag, self.config.groups)

    def run(self, argv: list[str], extra_env: Optional[Mapping[str, str]] = None) -> str:
        """Run *argv* in the project; keep its output; raise CommandFailed on failure."""
        if self.cancel.is_set():
            raise Cancelled("sync cancelled")
        # no COLUMNS: uv wraps its messages to that width, and a path cut in two is lost
        # from the error line venvd reports (a daemon started from a terminal inherits it)
        env = {k: v for k, v in self.environ.items() if k not in _NOT_PASSED}
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


def repeat(flag: str, values: Iterable[str]) -> list[str]:
    """``[flag, v1, flag, v2, ...]``."""
    return [arg for value in values for arg in (flag, value)]


class Engine:
    """One lockfile format. Every member the sync reads is declared here; the defaults suit an
    engine that installs into an env venvd created, and has nothing to resolve beforehand."""

    #: What ``venvd status`` and the sync history call it.
    name: ClassVar[str] = ""
    #: Commands ``install`` (and ``resolve``) run, for the progress bar.
    steps: ClassVar[int] = 1
    #: Files whose presence makes a folder a project of this kind (``projects.MARKERS`` holds
    #: them all, checked by a test: that module stays stdlib-only, so it cannot import these).
    markers: ClassVar[tuple[str, ...]] = ()
    #: Whether ``install`` makes the env itself (then venvd creates no virtualenv first).
    creates_env: ClassVar[bool] = False
    #: Whether ``install`` creates the virtualenv itself when *job.env* does not exist yet
    #: (given the interpreter and the prompt), so venvd need not run ``uv venv`` first.
    makes_venv: ClassVar[bool] = False
    #: How a new lock state starts from the nearest one built (``clone``): ``links`` (hard
    #: links, for tools that never write into an existing file), ``copies`` (for those that
    #: may), ``never`` (a fresh build each time).
    clone: ClassVar[str] = "links"
    #: The tool's words for a lockfile older than its manifest: the project then waits for a
    #: relock (``lock_hint`` says so) instead of failing.
    stale_lock: ClassVar[Optional[re.Pattern[str]]] = None
    lock_hint: ClassVar[str] = "the lockfile is out of date with its manifest"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        """The files (relative to *project*) this engine syncs from, or None if not its kind."""
        raise NotImplementedError

    def resolve(self, job: Job) -> None:
        """What needs only the interpreter (a resolution), run while the env is created."""

    def install(self, job: Job) -> None:
        """Make *job.env* (a fresh virtualenv) match the inputs exactly."""
        raise NotImplementedError

    def install_early(self, job: Job) -> None:
        """Once *job.env* exists, while ``resolve`` still runs: install what the resolution
        will very likely be, for ``install`` to keep when it is so (nothing by default)."""

    def clone_mode(self, project: Path, config: ProjectConfig) -> str:
        """How a new lock state of *project* starts: ``clone``, unless its inputs need more."""
        return self.clone

    def matches(self, job: Job) -> Optional[bool]:
        """Whether *job.env* (the live env, which the project's tool may have synced itself)
        already holds exactly the lock; ``None``: this engine cannot tell."""
        return None


@dataclass(frozen=True)
class Counts:
    added: int = 0
    removed: int = 0
    changed: int = 0
