"""Finding the project around a directory. Standard library only: the client's fallback uses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

#: Files that make a directory a project, most specific first.
MARKERS = (
    ".venvd.toml",
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "Pipfile",
    "requirements.txt",
    "environment.yml",
    "pyproject.toml",
)

ENV_NAME = ".venv"


def find_project(start: str, home: Optional[str] = None) -> Optional[str]:
    """The nearest directory at or above *start* holding a marker file, or ``None``.

    ``$HOME`` and ``/`` only count when they hold a ``.venvd.toml`` (a stray
    ``requirements.txt`` in your home folder should not turn every folder into a project).
    """
    home = home if home is not None else os.path.expanduser("~")
    path = os.path.abspath(start)
    while True:
        if _is_project(path, strict=path in (home, "/")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _is_project(path: str, strict: bool) -> bool:
    markers = MARKERS[:1] if strict else MARKERS
    return any(os.path.isfile(os.path.join(path, name)) for name in markers)


def env_path(project: str) -> str:
    """The environment users and IDEs see: ``<project>/.venv``, as uv, Poetry and PDM use."""
    return os.path.join(project, ENV_NAME)


def env_python(env: str) -> str:
    return os.path.join(env, "bin", "python")


def env_is_usable(env: str) -> bool:
    """True when *env*'s python exists and its interpreter has not vanished underneath it."""
    python = env_python(env)
    return os.path.isfile(python) and os.access(python, os.X_OK)


def real(path: str) -> str:
    """The path trust is keyed by: symlinks resolved.

    On Linux the kernel resolves it in one go (open with ``O_PATH``, read the descriptor's
    link in ``/proc``): every prompt asks, and that is a tenth of the cost of
    ``os.path.realpath``'s walk.
    """
    o_path = getattr(os, "O_PATH", None)
    if o_path is not None:
        try:
            fd = os.open(path, o_path | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                resolved = os.readlink(f"/proc/self/fd/{fd}")
                if resolved.startswith("/") and not resolved.endswith(" (deleted)"):
                    return resolved
            except OSError:
                pass
            finally:
                os.close(fd)
    return str(Path(path).resolve())


def env_prompt(env: str, project: str) -> str:
    """The prompt name virtualenv and uv would show: ``prompt =`` in pyvenv.cfg, else the folder."""
    try:
        with open(os.path.join(env, "pyvenv.cfg"), encoding="utf-8") as cfg:
            for line in cfg:
                key, sep, value = line.partition("=")
                if sep and key.strip() == "prompt":
                    return value.strip()
    except OSError:
        pass
    return os.path.basename(project)


def activation(project: str, env: str) -> dict[str, object]:
    """The exports that activate *env*, in the form ``status --json`` documents."""
    if os.path.isdir(os.path.join(env, "conda-meta")):
        return {
            "CONDA_PREFIX": env,
            "CONDA_DEFAULT_ENV": os.path.basename(project),
            "PYTHONHOME": None,
            "PATH": "prepend " + os.path.join(env, "bin"),
        }
    return {
        "VIRTUAL_ENV": env,
        "VIRTUAL_ENV_PROMPT": env_prompt(env, project),
        "PYTHONHOME": None,
        "PATH": "prepend " + os.path.join(env, "bin"),
    }
