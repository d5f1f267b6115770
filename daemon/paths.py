"""Where venvd keeps things, per user (platformdirs), and the checks that keep them private."""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from pathlib import Path
from typing import NamedTuple

import platformdirs

from venvd.daemon.ownership import RuntimeRefused, runtime_problem

APP = "venvd"


class Paths(NamedTuple):
    # a NamedTuple, not a dataclass: `venvd allow` and the export client import this module,
    # and dataclasses costs them milliseconds of start-up

    runtime: Path
    state: Path
    data: Path
    config: Path
    cache: Path
    log: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "daemon.sock"

    @property
    def lock(self) -> Path:
        return self.runtime / "daemon.lock"

    @property
    def pid(self) -> Path:
        return self.runtime / "daemon.pid"

    @property
    def pid_csh(self) -> Path:
        """The pid again, as tcsh code: tcsh cannot read a file without a process, only
        ``source`` it (see venvd.shell.tcsh)."""
        return self.runtime / "daemon.pid.csh"

    @property
    def generation(self) -> Path:
        return self.runtime / "generation"

    @property
    def ready(self) -> Path:
        """Activation snippets for the hooks' no-process path (see venvd.shell.ready)."""
        return self.runtime / "ready"

    @property
    def db(self) -> Path:
        return self.state / "state.sqlite3"

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"

    @property
    def envs(self) -> Path:
        return self.data / "envs"

    @property
    def daemon_log(self) -> Path:
        return self.log / "daemon.log"


def user_paths() -> Paths:
    """The current user's venvd folders."""
    with warnings.catch_warnings():
        # platformdirs warns on stderr when XDG_RUNTIME_DIR is unset; that must not reach
        # a prompt. Its fallback folder is checked by private_dir() instead.
        warnings.simplefilter("ignore")
        try:
            runtime = platformdirs.user_runtime_path(APP)
        except PermissionError as exc:  # its /tmp fallback belongs to someone else
            raise RuntimeRefused(f"refusing the runtime folder: {exc}") from None
    return Paths(
        runtime=runtime,
        state=platformdirs.user_state_path(APP),
        data=platformdirs.user_data_path(APP),
        config=platformdirs.user_config_path(APP),
        cache=platformdirs.user_cache_path(APP),
        log=platformdirs.user_log_path(APP),
    )


def private_dir(path: Path) -> Path:
    """Create *path* (mode 0700) or check that it is ours and private.

    The runtime folder may fall back to a shared place such as ``/tmp``; a folder there made
    by someone else, or open to others, must never hold our socket.
    """
    # Missing parents are made private too: an XDG_RUNTIME_DIR that does not exist yet must
    # come out 0700, or platformdirs rejects it in the next process and the daemon and its
    # clients would look for each other in different places.
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    problem = runtime_problem(str(path))
    if problem is not None:
        raise RuntimeRefused(problem)
    if stat.S_IMODE(path.lstat().st_mode) & 0o077:  # readable by others: nothing planted
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """*text* in *path*, whole or not at all (a hook may source it at any moment), 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
