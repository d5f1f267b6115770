"""A Jupyter kernel per project (opt-in: ``jupyter = true`` in the user config or the
project's): after each sync of a project whose env has ipykernel, a kernelspec in the user's
Jupyter data folder runs the project's ``.venv/bin/python``; it goes when the project is
denied or pruned, its env loses ipykernel, or ``jupyter`` is turned off.

The kernel runs ``.venv/bin/python`` through the ``.venv`` link, so a switch to another lock
state needs no rewrite. Jupyter is never imported: the spec is a small JSON file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import platformdirs

from venvd.daemon import drift, plans, projects
from venvd.daemon.config import ProjectConfig, load_project_config
from venvd.daemon.display import printable
from venvd.daemon.errors import VenvdError

log = logging.getLogger("venvd")

PREFIX = "venvd-"
#: What Jupyter accepts in a kernel name (it lowercases the folder name).
_NOT_IN_NAME = re.compile(r"[^a-z0-9._-]+")
#: jupyter_client replaces ``{connection_file}``, ``{prefix}``, ``{resource_dir}`` (and the
#: launch arguments' names) anywhere in argv, with no way to escape them: a project path that
#: holds such a pattern would start another program, so it gets no kernel.
_JUPYTER_FIELD = re.compile(r"\{[A-Za-z0-9_]+\}")
_FALSE = ("", "no", "n", "false", "off", "0", "0.0")


def data_dir() -> Path:
    """Jupyter's user data folder, found as ``jupyter_core.paths.jupyter_data_dir`` does."""
    given = os.environ.get("JUPYTER_DATA_DIR")
    if given:
        return Path(given)
    platform_dirs = os.environ.get("JUPYTER_PLATFORM_DIRS", "").lower() not in _FALSE
    if sys.platform == "darwin" and not platform_dirs:
        return Path.home() / "Library" / "Jupyter"
    # $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter (Linux)
    return platformdirs.user_data_path("jupyter", appauthor=False)


def kernel_name(project: str) -> str:
    """``venvd-<folder>-<hash of the path>``: valid for Jupyter whatever the folder is called,
    and two folders of the same name get two kernels."""
    folder = os.path.basename(project.rstrip("/"))
    slug = _NOT_IN_NAME.sub("-", folder.lower()).strip("-.")[:40] or "project"
    digest = hashlib.sha256(project.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{PREFIX}{slug}-{digest}"


def spec(project: str, version: str) -> dict[str, Any]:
    """The kernel.json of *project*'s kernel (Python *version*)."""
    python = projects.env_python(projects.env_path(project))
    folder = printable(os.path.basename(project.rstrip("/")) or project)
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{folder} (Python {version}, venvd)",
        "language": "python",
        "metadata": {"debugger": True, "venvd": {"project": project}},
    }


def folder_of(project: str) -> Path:
    return data_dir() / "kernels" / kernel_name(project)


def project_of(folder: Path) -> Optional[str]:
    """The project a kernel folder was written for, or ``None`` when venvd did not write it."""
    try:
        found = json.loads((folder / "kernel.json").read_text(encoding="utf-8"))
        project = found["metadata"]["venvd"]["project"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return project if isinstance(project, str) else None


def rewritten_by_jupyter(project: str) -> bool:
    """Whether Jupyter would replace part of *project*'s path in the kernel's argv."""
    return _JUPYTER_FIELD.search(project) is not None


def kernel_of(project: str) -> Optional[str]:
    """The name of *project*'s kernel, if there is one."""
    folder = folder_of(project)
    return folder.name if project_of(folder) == project else None


def has_ipykernel(env: str) -> bool:
    """Whether *env* can run the kernel's ``-m ipykernel_launcher``."""
    return any(os.path.isfile(os.path.join(site, "ipykernel_launcher.py"))
               for site in drift.site_packages(Path(env)))


def write(project: str, version: str) -> Path:
    """Write *project*'s kernelspec (a rename: Jupyter never reads half a file); an
    unchanged one is left alone, and one venvd did not write is never replaced."""
    folder = folder_of(project)
    text = json.dumps(spec(project, version), indent=1, sort_keys=True) + "\n"  # ASCII
    target = folder / "kernel.json"
    with contextlib.suppress(OSError):
        if target.read_text(encoding="utf-8") == text:
            return folder
    if os.path.lexists(target) and project_of(folder) != project:
        raise VenvdError(f"{folder} is not a kernel venvd wrote for this project: left alone")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kernel.json.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return folder


def remove(project: str) -> Optional[str]:
    """Remove *project*'s kernel (only one venvd wrote for it); returns its folder."""
    folder = folder_of(project)
    if project_of(folder) != project:
        return None
    shutil.rmtree(folder, ignore_errors=True)
    return str(folder)


class Kernels:
    """Keeps each project's kernel in step with its env, its trust and the config."""

    def __init__(self, default: bool, is_trusted: Callable[[str], bool]) -> None:
        self.default = default  # the user config's ``jupyter``
        self._is_trusted = is_trusted

    def wanted(self, config: ProjectConfig) -> bool:
        return self.default if config.jupyter is None else config.jupyter

    def refresh(self, project: str, plan: plans.Plan) -> None:
        """After a sync (or an allow or a change that needed none): write or remove the
        kernel."""
        try:
            if self._should_have(project, plan.config):
                if rewritten_by_jupyter(project):
                    log.warning("%s: no Jupyter kernel: Jupyter would replace the {...} in "
                                "its path", project)
                else:
                    write(project, plan.interpreter.version_str)
                    return
            remove(project)
        except (OSError, VenvdError) as exc:  # a kernel is an extra: it never fails a sync
            log.warning("%s: Jupyter kernel: %s", project, exc)

    def forget(self, project: str) -> None:
        """*project* was denied: its kernel goes."""
        try:
            remove(project)
        except OSError as exc:
            log.warning("%s: Jupyter kernel: %s", project, exc)

    def sweep(self) -> list[str]:
        """Remove the kernels of projects gone, no longer allowed, or no longer wanting one
        (``venvd prune``, and a daemon start: the config may have changed meanwhile)."""
        removed: list[str] = []
        base = data_dir() / "kernels"
        with contextlib.suppress(OSError):
            for folder in sorted(base.glob(f"{PREFIX}*")):
                project = project_of(folder)
                if project is not None and not self._still_wanted(project):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(str(folder))
        return removed

    def _still_wanted(self, project: str) -> bool:
        if not os.path.isdir(project) or not self._is_trusted(project):
            return False
        try:
            return self._should_have(project, load_project_config(Path(project)))
        except VenvdError:
            return False

    def _should_have(self, project: str, config: ProjectConfig) -> bool:
        return (self.wanted(config) and self._is_trusted(project)
                and has_ipykernel(projects.env_path(project)))
