"""``pyproject.toml`` alone: what ``uv sync`` would install for a new contributor, without
writing a ``uv.lock`` (or anything else) into the project.

``uv sync`` installs the project editable when uv sees it as a package (``[tool.uv] package``,
else whether ``[build-system]`` exists), its dependencies, the default dependency groups
(``[tool.uv] default-groups``, ``"all"``, or ``dev`` where it exists; the legacy
``[tool.uv] dev-dependencies`` are the ``dev`` group) and honours ``[tool.uv.sources]`` (path,
git, URL, index, workspace). ``uv pip install`` does all of that from the manifest itself
(sources, workspace members and legacy dev dependencies included), so this engine only
decides what to ask for, adds the extras and groups ``.venvd.toml`` / ``[tool.venvd]`` name,
and installs into the fresh env the sync made (fresh, so the result is exact).

``uv lock`` cannot write its lock anywhere but the project, which is why it is not used.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Optional

from venvd.daemon.config import ConfigError, ProjectConfig, read_toml
from venvd.daemon.engines.base import Job

MANIFEST = "pyproject.toml"


class Pyproject:
    name = "uv-pyproject"
    steps = 1  # commands a sync runs (for the progress bar)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / MANIFEST).is_file():
            return None
        return (MANIFEST, *local_manifests(project, read_toml(project / MANIFEST)))

    def install(self, job: Job) -> None:
        data = read_toml(job.project / MANIFEST)
        argv = install_command(job.uv, job.env_python, data, job.config)
        if argv is None:
            job.progress("venvd: pyproject.toml asks for nothing to install")
            return
        argv += _uv_setting_files(job.work, data)
        # a build backend imported from the project must not leave __pycache__ there
        job.run(argv, {"PYTHONDONTWRITEBYTECODE": "1"})


def install_command(uv: str, python: str, data: dict[str, Any],
                    config: ProjectConfig) -> Optional[list[str]]:
    """The ``uv pip install`` that gives what ``uv sync`` would, or None for nothing at all."""
    wanted: list[str] = []
    if isinstance(data.get("project"), dict):
        if is_package(data):
            extras = f"[{','.join(config.extras)}]" if config.extras else ""
            wanted += ["--editable", f".{extras}"]
        else:
            wanted += ["--requirements", MANIFEST]
            for extra in config.extras:
                wanted += ["--extra", extra]
    elif config.extras:
        raise ConfigError(f"{config.source}: extras need a [project] table in {MANIFEST}")
    for group in dict.fromkeys([*default_groups(data), *config.groups]):
        wanted += ["--group", f"{MANIFEST}:{group}"]
    return [uv, "pip", "install", "--python", python, *wanted] if wanted else None


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
