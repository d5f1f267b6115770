"""Keeping a project's ``.venv`` (and a ``.venv`` moved aside) out of ``git status``, through
the repository's own ``info/exclude``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile, projects
from venvd.daemon.errors import VenvdError

#: The line above venvd's patterns (``install.sh --uninstall`` takes out both).
NOTE = "# added by venvd: the project's env"


def _in_a_repository(project: Path) -> bool:
    """Whether git could see *project* as part of a repository: a ``.git`` in it or above
    (or git told where by the environment); saves asking git, after every sync, in the many
    projects that are none."""
    if any(os.environ.get(name) for name in ("GIT_DIR", "GIT_WORK_TREE")):
        return True
    folder = str(project)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def keep_out_of_git(project: Path, names: tuple[str, ...] = (projects.ENV_NAME,)
                    ) -> Optional[str]:
    """Keep ``.venv`` (a symlink, which uv's ``.gitignore`` inside the env cannot hide) and
    any other of *names* (a ``.venv`` moved aside) out of ``git status``: those git does not
    ignore already are added to the repository's own ``info/exclude`` (the common one for a
    worktree), never to a committed ``.gitignore``. Returns the exclude file written to, if
    any. No git, or not a repository: nothing."""
    git = shutil.which("git")
    if git is None or not _in_a_repository(project):
        return None

    def ask(*args: str) -> Optional[subprocess.CompletedProcess[str]]:
        try:
            return subprocess.run([git, *args], cwd=project, capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.SubprocessError):
            return None

    # prints the names that are ignored; exit 1: none is, 128: not a repository
    ignored = ask("check-ignore", "--no-index", "--", *names)
    if ignored is None or ignored.returncode not in (0, 1):
        return None
    missing = [n for n in names if n not in ignored.stdout.splitlines()]
    where = ask("rev-parse", "--show-prefix", "--git-path", "info/exclude")
    lines = where.stdout.splitlines() if where is not None and where.returncode == 0 else []
    if not missing or len(lines) != 2:
        return None
    prefix, exclude = lines
    exclude_path = project / exclude  # relative to the working directory when not absolute
    # a symlink is a file to git: no trailing slash; anchored at this project's folder
    escaped = re.sub(r"([*?\[\\!#])", r"\\\1", prefix)
    patterns = ["/" + escaped + name for name in missing]
    try:
        exclude_path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the repository's file: bounded, and a FIFO or /dev/zero there is left alone
            text = projectfile.read_project_text(exclude_path, projectfile.MAX_TOML)
        except FileNotFoundError:
            text = ""
        patterns = [p for p in patterns if p not in text.splitlines()]
        if not patterns:
            return None
        _append(exclude_path, ("" if not text or text.endswith("\n") else "\n")
                + NOTE + "\n" + "".join(p + "\n" for p in patterns))
    except (OSError, VenvdError):
        return None
    return str(exclude_path)


def _append(path: Path, text: str) -> None:
    """Append *text* to the regular file *path* (made if missing); an open that cannot block
    (a FIFO swapped in since it was read would wait for a reader)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY
                 | os.O_CLOEXEC, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise projectfile.UnsafeFile(f"{path} is not a regular file")
        os.write(fd, text.encode())
    finally:
        os.close(fd)
