"""User configuration (``config.toml``) and per-project configuration (``.venvd.toml`` or
``[tool.venvd]`` in ``pyproject.toml``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from venvd.daemon.errors import VenvdError
from venvd.daemon.projectfile import MAX_TOML, read_project_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older Pythons only
    import tomli as tomllib


class ConfigError(VenvdError):
    """A configuration file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class UserConfig:
    trusted_roots: tuple[str, ...] = ()
    parallel_syncs: int = 2
    debounce_seconds: float = 0.03
    keep_states: int = 3
    max_watched: int = 32
    jupyter: bool = False  # a Jupyter kernel per project (see kernels)


@dataclass(frozen=True)
class ProjectConfig:
    python: Optional[str] = None
    requirements: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    source: Optional[str] = None
    jupyter: Optional[bool] = None  # None: as the user config says
    raw: dict[str, Any] = field(default_factory=dict)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse *path*; a broken file becomes a ConfigError that names the file and the line.

    Only a regular file of at most ``MAX_TOML`` bytes is read (see ``projectfile``): a
    project's ``pyproject.toml`` may be a symlink to ``/dev/zero`` or a FIFO.
    """
    try:
        data = read_project_file(path, MAX_TOML)
    except FileNotFoundError:
        return {}
    except VenvdError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # [[[[... thousands deep
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def load_user_config(path: Path) -> UserConfig:
    data = read_toml(path)
    roots = data.get("trusted_roots", [])
    parallel = data.get("parallel_syncs", 2)
    debounce = data.get("debounce_seconds", 0.03)
    keep = data.get("keep_states", 3)
    watched = data.get("max_watched", 32)
    jupyter = data.get("jupyter", False)
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise ConfigError(f"{path}: trusted_roots must be a list of paths")
    if not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"{path}: parallel_syncs must be a whole number of at least 1")
    if not isinstance(debounce, (int, float)) or debounce < 0:
        raise ConfigError(f"{path}: debounce_seconds must be a number of seconds")
    if not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"{path}: keep_states must be a whole number of at least 1")
    if not isinstance(watched, int) or watched < 1:
        raise ConfigError(f"{path}: max_watched must be a whole number of at least 1")
    if not isinstance(jupyter, bool):
        raise ConfigError(f"{path}: jupyter must be true or false")
    return UserConfig(tuple(os.path.expanduser(r) for r in roots), parallel, float(debounce),
                      keep, watched, jupyter)


def load_project_config(project: Path) -> ProjectConfig:
    """``.venvd.toml`` wins over ``[tool.venvd]`` in ``pyproject.toml``."""
    own = project / ".venvd.toml"
    if own.exists():  # a FIFO or a device there is refused by read_toml, not skipped
        return _project_config(read_toml(own), str(own.name))
    pyproject = read_toml(project / "pyproject.toml")
    tool = pyproject.get("tool", {})
    section = tool.get("venvd", {}) if isinstance(tool, dict) else {}
    return _project_config(section, "pyproject.toml [tool.venvd]" if section else None)


def _project_config(data: Any, source: Optional[str]) -> ProjectConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table")
    python = data.get("python")
    if python is not None and not isinstance(python, str):
        raise ConfigError(f"{source}: python must be a string such as \"3.12\"")
    jupyter = data.get("jupyter")
    if jupyter is not None and not isinstance(jupyter, bool):
        raise ConfigError(f"{source}: jupyter must be true or false")
    return ProjectConfig(
        python=python,
        requirements=_strings(data, "requirements", source),
        extras=_strings(data, "extras", source),
        groups=_strings(data, "groups", source),
        source=source,
        jupyter=jupyter,
        raw=data,
    )


def _strings(data: dict[str, Any], key: str, source: Optional[str]) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of strings")
    return tuple(value)
