"""``pyproject.toml`` alone: what ``uv sync`` would install for a new contributor, without
writing a ``uv.lock`` (or anything else) into the project.

``uv sync`` installs the project editable when uv sees it as a package (``[tool.uv] package``,
else whether ``[build-system]`` exists), its dependencies, the default dependency groups
(``[tool.uv] default-groups``, ``"all"``, or ``dev`` where it exists; the legacy
``[tool.uv] dev-dependencies`` are the ``dev`` group) and honours ``[tool.uv.sources]`` (path,
git, URL, index, workspace). ``uv lock`` can write its lock nowhere but the project, so:

1. ``uv pip compile --universal`` from ``requires-python``'s lower bound resolves as ``uv lock``
   does, for every Python the project allows (so a package pinned lower for an old Python
   only is pinned lower here too, as in the lock);
2. ``uv pip install`` of the same requests, constrained to those pins, into the fresh env the
   sync made: it applies the sources (an index-pinned package comes from its index) and
   installs the project and workspace members editable; ``--exact`` removes what else the env
   holds (it may start as a copy of another lock state), so the set is exact.

The extras and groups ``.venvd.toml`` / ``[tool.venvd]`` name are added to both.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any, Optional

from venvd.daemon import pythons
from venvd.daemon.config import ConfigError, ProjectConfig, read_toml
from venvd.daemon.engines.base import Engine, Job, repeat

MANIFEST = "pyproject.toml"
#: a build backend imported from the project must not leave ``__pycache__`` there
_NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}


class Pyproject(Engine):
    name = "uv-pyproject"
    steps = 2  # commands a sync runs (for the progress bar)
    markers = (MANIFEST,)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / MANIFEST).is_file():
            return None
        return (MANIFEST, *local_manifests(project, read_toml(project / MANIFEST)))

    def install(self, job: Job) -> None:
        data = read_toml(job.project / MANIFEST)
        project, groups = requested(data, job.config)
        if not project and not groups:
            job.progress("venvd: pyproject.toml asks for nothing to install")
            if _holds_packages(job.env):  # a copy of another lock state's env: emptied
                nothing = job.work / "nothing.txt"
                nothing.write_text("")
                job.run(job.pip_sync(*job.python_args, str(nothing)))
            return
        settings = _uv_setting_files(job.work, data)
        pins = universal_pins(job, data, groups, settings)
        install = install_requests(data, job.config) if project else []
        # exact: the env may be a clone of another lock state's (packages to remove)
        job.run([job.uv, "pip", "install", "--exact", *job.python_args, *install, *groups,
                 *settings, "--constraint", str(pins)], _NO_BYTECODE)


def _holds_packages(env: Path) -> bool:
    """Whether *env* holds a package besides its own pip and setuptools."""
    return any(not info.name.startswith(("pip-", "setuptools-", "wheel-"))
               for info in env.glob("lib/python*/site-packages/*.dist-info"))


def requested(data: dict[str, Any], config: ProjectConfig) -> tuple[bool, list[str]]:
    """Whether the project's own requirements are wanted (it has a ``[project]`` table), and
    the ``--group`` options for the groups ``uv sync`` installs plus those the config adds."""
    table = data.get("project")
    project = isinstance(table, dict)
    if config.extras and not isinstance(table, dict):
        raise ConfigError(f"{config.source}: extras need a [project] table in {MANIFEST}")
    if isinstance(table, dict):
        _check_extras(table, config)
    groups: list[str] = []
    for group in dict.fromkeys([*default_groups(data), *config.groups]):
        groups += ["--group", f"{MANIFEST}:{group}"]
    return project, groups


def _check_extras(table: dict[str, Any], config: ProjectConfig) -> None:
    """An extra the project does not define fails, as ``uv sync --extra`` does (``uv pip``
    would only warn)."""
    defined = table.get("optional-dependencies")
    if "optional-dependencies" in table.get("dynamic", ()) or not config.extras:
        return
    known = {_normalise(name) for name in defined} if isinstance(defined, dict) else set()
    for extra in config.extras:
        if _normalise(extra) not in known:
            raise ConfigError(f"{config.source}: extra {extra!r} is not defined in "
                              f"[project.optional-dependencies] of {MANIFEST}")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requests(data: dict[str, Any], config: ProjectConfig) -> list[str]:
    """The project itself editable when uv builds it, else its requirements only."""
    if is_package(data):
        extras = f"[{','.join(config.extras)}]" if config.extras else ""
        return ["--editable", f".{extras}"]
    return ["--requirements", MANIFEST, *_extras(config)]


def _extras(config: ProjectConfig) -> list[str]:
    return repeat("--extra", config.extras)


def universal_pins(job: Job, data: dict[str, Any], groups: list[str],
                   settings: list[str]) -> Path:
    """Resolve as ``uv lock`` would and keep the versions as a constraints file (URL, path
    and editable requirements are left out: the sources fix those)."""
    resolved = job.work / "universal.txt"
    argv = [job.uv, "pip", "compile", "--quiet", "--universal", "--no-header", "--no-annotate",
            *job.python_args, "--output-file", str(resolved)]
    lowest = pythons.lowest_allowed(requires_python(data))
    if lowest:
        argv += ["--python-version", lowest]
    if isinstance(data.get("project"), dict):
        argv += [MANIFEST, *_extras(job.config)]
    job.run([*argv, *groups, *settings], _NO_BYTECODE)
    pins = job.work / "universal-pins.txt"
    pins.write_text("".join(line + "\n" for line in resolved.read_text().splitlines()
                            if _is_version_pin(line)))
    return pins


def _is_version_pin(line: str) -> bool:
    text = line.strip()
    return bool(text) and "==" in text and not text.startswith(("#", "-")) and " @ " not in text


def requires_python(data: dict[str, Any]) -> Optional[str]:
    """``[project] requires-python``, if the manifest has one."""
    table = data.get("project")
    value = table.get("requires-python") if isinstance(table, dict) else None
    return value if isinstance(value, str) else None


def _uv(data: dict[str, Any]) -> dict[str, Any]:
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    return uv if isinstance(uv, dict) else {}


def is_package(data: dict[str, Any]) -> bool:
    """uv's rule: ``[tool.uv] package`` when set, else whether a build system is declared."""
    package = _uv(data).get("package")
    if isinstance(package, bool):
        return package
    return "build-system" in data


def defined_groups(data: dict[str, Any]) -> list[str]:
    """The dependency groups the manifest has (the legacy dev-dependencies are ``dev``)."""
    table = data.get("dependency-groups")
    groups = list(table) if isinstance(table, dict) else []
    if "dev-dependencies" in _uv(data) and "dev" not in groups:
        groups.append("dev")
    return groups


def default_groups(data: dict[str, Any]) -> list[str]:
    """The groups ``uv sync`` installs unless told otherwise."""
    defined = defined_groups(data)
    wanted = _uv(data).get("default-groups")
    if wanted == "all":
        return defined
    if isinstance(wanted, list):
        return [g for g in wanted if isinstance(g, str)]  # an unknown one: uv says so
    return ["dev"] if "dev" in defined else []


def local_manifests(project: Path, data: dict[str, Any]) -> list[str]:
    """The manifests, inside the project, of its workspace members and path sources: uv reads
    them too, so an edit to one is followed like an edit to the project's own."""
    uv = _uv(data)
    workspace = uv.get("workspace")
    patterns = workspace.get("members") if isinstance(workspace, dict) else None
    folders = [m for m in patterns or [] if isinstance(m, str)]
    sources = uv.get("sources")
    for source in sources.values() if isinstance(sources, dict) else ():
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            folders.append(glob.escape(source["path"]))
    found: dict[str, None] = {}
    for pattern in folders:
        parts = Path(pattern).parts
        if not parts or Path(pattern).is_absolute() or ".." in parts or parts == (".",):
            continue  # outside the project (not watched), or the project itself
        try:
            matches = sorted(project.glob(pattern))
        except ValueError:  # not a pattern pathlib accepts; uv will say what is wrong
            continue
        for folder in matches:
            if (folder / MANIFEST).is_file() and folder != project:
                found[(folder / MANIFEST).relative_to(project).as_posix()] = None
    return list(found)


#: ``[tool.uv]`` lists that ``uv sync`` applies but ``uv pip`` reads only from a config file
#: it discovered itself (not under ``UV_CONFIG_FILE``): passed explicitly, as files.
_SETTING_FILES = (("constraint-dependencies", "--constraint"),
                  ("override-dependencies", "--override"),
                  ("build-constraint-dependencies", "--build-constraint"))


def _uv_setting_files(work: Path, data: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, option in _SETTING_FILES:
        lines = _uv(data).get(key)
        if isinstance(lines, list) and lines and all(isinstance(x, str) for x in lines):
            path = work / f"{key}.txt"
            path.write_text("".join(line + "\n" for line in lines))
            argv += [option, str(path)]
    return argv
