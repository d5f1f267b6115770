"""Finding the project a directory belongs to, where its env is and what activates it.
Standard library only: the ``venvd export`` client imports it and runs with ``python -I -S``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from venvd.daemon import folders
from venvd.daemon.display import printable
from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import MAX_SMALL, read_project_text
from venvd.daemon.workspace import workspace_root

#: Files that make a directory a project, most specific first: ``.venvd.toml`` and every
#: engine's ``markers`` (this module stays stdlib-only, for the export client under ``-I -S``,
#: so it cannot import the engines; tests/test_engine_protocol.py checks the two agree).
MARKERS = (
    ".venvd.toml",
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "Pipfile",
    "requirements.txt",
    "environment.yml",
    "environment.yaml",
    "pyproject.toml",
)

ENV_NAME = ".venv"


#: Markers that make a folder a project only when no project encloses it: a requirement
#: file beside docs or examples is for building those, in the outer project's env.
REQUIREMENT_MARKERS = frozenset({"requirements.txt", "environment.yml", "environment.yaml"})


def find_project(start: str, home: Optional[str] = None) -> Optional[str]:
    """The project *start* belongs to, or ``None``: see :func:`owner`.

    ``$HOME`` and ``/`` only count when they hold a ``.venvd.toml`` (a stray
    ``requirements.txt`` in your home folder should not turn every folder into a project).
    """
    home = home if home is not None else os.path.expanduser("~")
    inner = innermost(start, home)
    return None if inner is None else owner(inner, home)


def innermost(start: str, home: Optional[str] = None) -> Optional[str]:
    """The nearest directory at or above *start* holding a marker file, or ``None``: the
    folder the hooks find with file tests (``HOOK_FUNCTION`` in the shell modules)."""
    home = home if home is not None else os.path.expanduser("~")
    path = os.path.abspath(start)
    while True:
        if _markers(path, home):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def owner(folder: str, home: Optional[str] = None) -> str:
    """The project a marker *folder* belongs to, by the rule its own tool uses.

    A folder whose only markers are requirement files belongs to the project around it (up
    to the repository root: the folder holding ``.git``); a uv workspace member belongs to
    its workspace root. Any other marker folder is a project of its own.
    """
    home = home if home is not None else os.path.expanduser("~")
    while True:
        outer = _outer(folder, home)
        if outer is None:
            return folder
        folder = outer  # always an ancestor: the walk ends


def _markers(path: str, home: str) -> list[str]:
    names = MARKERS[:1] if path in (home, "/") else MARKERS
    # present(), not isfile(): a FIFO or device marker still makes a project, which then
    # says why venvd will not read it
    return list(folders.look(path, names)[0])


def _outer(folder: str, home: str) -> Optional[str]:
    """The folder *folder* defers to, or ``None`` when it is a project of its own."""
    markers = _markers(folder, home)
    if markers and set(markers) <= REQUIREMENT_MARKERS:
        return _enclosing(folder, home)
    if "pyproject.toml" in markers:
        return workspace_root(folder)
    return None


def _enclosing(folder: str, home: str) -> Optional[str]:
    """The nearest marker folder above *folder*, not beyond its repository's root."""
    path = folder
    while not folders.look(path, MARKERS)[1]:
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
        if _markers(path, home):
            return path
    return None


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


def safe_prompt(name: str) -> str:
    """*name* made fit for ``uv venv --prompt``: uv writes the prompt unescaped into the env's
    ``bin/activate*`` scripts, so a folder named ``$(cmd)`` would run ``cmd`` when a user
    sources one by hand. Letters and digits (any script), space and ``._+@=,-`` are kept,
    everything else becomes ``_``; a leading ``-`` would read as an option."""
    kept = "".join(c if (c.isalnum() and c.isprintable()) or c in " ._+@=,-" else "_"
                   for c in name)
    return kept.lstrip("- ") or "venv"


def env_prompt(env: str, project: str) -> str:
    """The prompt name virtualenv and uv would show: ``prompt =`` in pyvenv.cfg, else the folder."""
    try:  # bounded and never blocking: this runs on every prompt
        text = read_project_text(os.path.join(env, "pyvenv.cfg"), MAX_SMALL)
    except (OSError, VenvdError):  # missing, or a FIFO, device or huge file: the folder
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "prompt":
            return value.strip()
    return os.path.basename(project)


def activation(project: str, env: str) -> dict[str, object]:
    """The exports that activate *env*, in the form ``status --json`` documents."""
    if os.path.isdir(os.path.join(env, "conda-meta")):
        return {
            "CONDA_PREFIX": env,
            "CONDA_DEFAULT_ENV": printable(os.path.basename(project)),  # shown in prompts
            "PYTHONHOME": None,
            "PATH": "prepend " + os.path.join(env, "bin"),
        }
    return {
        "VIRTUAL_ENV": env,
        "VIRTUAL_ENV_PROMPT": printable(env_prompt(env, project)),  # shown in prompts
        "PYTHONHOME": None,
        "PATH": "prepend " + os.path.join(env, "bin"),
    }
