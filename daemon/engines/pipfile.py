"""``Pipfile.lock``: its pins and hashes turned into a requirements file and synced exactly with
uv (hash-checked whenever every entry carries hashes). The ``develop`` section is included when
the project config names the ``dev`` group, as ``pipenv install --dev`` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines.base import Job
from venvd.daemon.errors import VenvdError


def requirement_lines(lock: dict[str, Any], dev: bool) -> list[str]:
    """One requirements line per locked package; raises VenvdError on an entry it cannot use."""
    sections = ["default", "develop"] if dev else ["default"]
    entries: list[tuple[str, dict[str, Any]]] = []
    for section in sections:
        table = lock.get(section, {})
        if not isinstance(table, dict):
            raise VenvdError(f"Pipfile.lock: [{section}] is not a table")
        entries += [(name, spec) for name, spec in table.items() if isinstance(spec, dict)]
    hashed = all(spec.get("hashes") for _, spec in entries if "version" in spec) and all(
        "version" in spec for _, spec in entries)
    lines = []
    for name, spec in entries:
        extras = spec.get("extras") or []
        label = f"{name}[{','.join(extras)}]" if extras else name
        marker = f" ; {spec['markers']}" if spec.get("markers") else ""
        if "version" in spec:
            line = f"{label}{spec['version']}{marker}"
            if hashed:
                line += "".join(f" --hash={h}" for h in spec["hashes"])
        elif "path" in spec:
            line = f"{'-e ' if spec.get('editable') else ''}{spec['path']}"
        elif "git" in spec:
            ref = f"@{spec['ref']}" if spec.get("ref") else ""
            line = f"{label} @ git+{spec['git']}{ref}{marker}"
        elif "file" in spec:
            line = f"{label} @ {spec['file']}{marker}"
        else:
            raise VenvdError(f"Pipfile.lock: cannot install {name!r}: no version, path or url")
        lines.append(line)
    return lines


class Pipfile:
    name = "pipfile-lock"
    steps = 1  # commands a sync runs (for the progress bar)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not (project / "Pipfile.lock").is_file():
            return None
        return ("Pipfile.lock", "Pipfile") if (project / "Pipfile").is_file() else (
            "Pipfile.lock",)

    def install(self, job: Job) -> None:
        try:
            lock = json.loads((job.project / "Pipfile.lock").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VenvdError(f"Pipfile.lock: cannot read it: {exc}") from None
        if not isinstance(lock, dict):
            raise VenvdError("Pipfile.lock: not a JSON object")
        pins = job.work / "Pipfile.lock.txt"
        pins.write_text("\n".join(requirement_lines(lock, "dev" in job.config.groups)) + "\n")
        job.run([job.uv, "pip", "sync", "--allow-empty-requirements",
                 "--python", job.env_python, str(pins)])
