"""Real public projects (``tests/fixtures``, reduced) built twice: by venvd and by the
project's own tool, offline, from one local simple index holding small wheels for the names
the fixtures use plus the real build backends ``tests/run`` downloads. Standard library only
at import (bench/ builds the same wheels)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.wheels import build_simple_index, build_wheel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UV = str(Path(sys.executable).with_name("uv"))

#: Every name and version the fixtures' reduced dependency lists reach: name, version,
#: requirements. Several versions where a fixture's bounds must pick one (``<1.45``, ``^7.1``,
#: ``==8.*``, ``<6.1``).
CATALOGUE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("iniconfig", "2.1.0", ()),
    ("pytest", "7.4.4", ("iniconfig",)),
    ("pytest", "8.4.1", ("iniconfig>=1",)),
    ("pytest", "8.4.2", ("iniconfig>=1",)),
    ("pytest-mock", "3.15.1", ("pytest>=6.2.5",)),
    ("ruff", "0.12.11", ()),
    ("ruff", "0.15.15", ()),
    ("tox", "4.30.0", ("filelock>=3.16",)),
    ("filelock", "3.20.0", ()),
    ("sphinx", "7.2.6", ()),
    ("sphinx", "7.4.7", ()),
    ("sphinx", "8.2.3", ()),
    ("myst-parser", "4.0.1", ("sphinx>=7,<9",)),
    ("furo", "2023.9.10", ("sphinx>=6,<8",)),
    ("furo", "2024.8.6", ("sphinx>=6,<9",)),
    ("gha-update", "0.2.0", ()),
    ("pre-commit", "4.3.0", ("cfgv>=2.0.0",)),
    ("cfgv", "3.4.0", ()),
    ("mypy", "1.18.2", ("mypy-extensions>=1.0.0",)),
    ("mypy-extensions", "1.1.0", ()),
    ("opentelemetry-api", "1.44.0", ()),
    ("opentelemetry-api", "1.45.0", ()),
    ("opentelemetry-sdk", "1.44.0", ("opentelemetry-api==1.44.0",)),
    ("opentelemetry-sdk", "1.45.0", ("opentelemetry-api==1.45.0",)),
    ("opentelemetry-instrumentation-system-metrics", "0.55b0", ()),
    ("rich", "14.2.0", ("pygments>=2.13.0,<3",)),
    ("pygments", "2.19.2", ()),
    ("tomli", "2.3.0", ()),
    ("executing", "2.2.1", ()),
    ("numpy", "2.3.4", ()),
    ("httpx", "0.28.1", ("anyio", "certifi", "httpcore==1.*", "idna")),
    ("httpcore", "1.0.9", ("certifi", "h11>=0.16")),
    ("h11", "0.16.0", ()),
    ("anyio", "4.11.0", ("idna>=2.8",)),
    ("idna", "3.10", ()),
    ("certifi", "2025.8.3", ()),
    ("keyring", "25.6.0", ()),
    ("requests", "2.32.5", ("charset-normalizer>=2,<4", "idna>=2.5,<4",
                            "urllib3>=1.21.1,<3", "certifi>=2017.4.17")),
    ("charset-normalizer", "3.4.3", ()),
    ("urllib3", "2.5.0", ()),
    ("pysocks", "1.7.1", ()),
    ("trustme", "1.2.1", ()),
    ("pyright", "1.1.406", ()),
    ("typing-extensions", "4.15.0", ()),
    ("brotli", "1.1.0", ()),
    ("brotlicffi", "1.1.0.0", ()),
    ("click", "7.1.2", ()),
    ("click", "8.3.0", ()),
    ("socksio", "1.0.0", ()),
    ("zstandard", "0.25.0", ()),
    ("h2", "4.3.0", ("hpack>=4.1,<5", "hyperframe>=6.1,<7")),
    ("hpack", "4.1.0", ()),
    ("hyperframe", "6.1.0", ()),
    ("chardet", "5.2.0", ()),
    ("mkdocs", "1.6.1", ("click>=7.0",)),
    ("django", "6.0.1", ("asgiref>=3.9.1", "sqlparse>=0.5.0")),
    ("django", "6.1.0", ("asgiref>=3.9.1", "sqlparse>=0.5.0")),
    ("asgiref", "3.10.0", ()),
    ("sqlparse", "0.5.3", ()),
    ("python-dotenv", "1.2.1", ()),
    ("wagtail", "7.4.1", ("django>=4.2,<6.2",)),
    ("dj-database-url", "3.1.0", ("django>=4.2",)),
    ("whitenoise", "6.11.0", ()),
    ("django-storages", "1.14.6", ("django>=3.2",)),
)


def backends() -> Path:
    """The build backends' wheels ``tests/run`` downloaded; skip (fail under CI) without."""
    import pytest  # here: bench/ uses the catalogue without pytest

    folder = Path(os.environ.get("VENVD_TEST_BACKENDS", "")
                  or FIXTURES.parents[1] / ".tests-venv" / "backends")
    if not (folder / ".complete").is_file():
        message = (f"the build backends are not in {folder} (tests/run downloads them with "
                   "pip; that failed or has not run)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def build_real_index(house: Path, root: Path) -> Path:
    """Wheels for the catalogue and the build backends in *house*; a simple index of them in
    *root* (to serve)."""
    for name, version, requires in CATALOGUE:
        build_wheel(house, name, version, requires)
    for wheel in backends().glob("*.whl"):
        shutil.copy(wheel, house / wheel.name)
    return build_simple_index(house, root)


def files(project: Path) -> set[str]:
    """What *project* holds, ``.venv``, ``.git`` and byte-code aside."""
    found = set()
    for path in project.rglob("*"):
        rel = path.relative_to(project)
        if rel.parts[0] in (".venv", ".git") or "__pycache__" in rel.parts or path.is_dir():
            continue
        found.add(str(rel))
    return found


def packages(project: Path, env: dict[str, str]) -> dict[str, str]:
    """``.venv``'s distributions: name -> version, ``editable <folder>`` for an editable one
    (its folder relative to *project*, so two copies compare equal)."""
    out = subprocess.run([UV, "pip", "list", "--format", "json", "--python",
                          str(project / ".venv" / "bin" / "python")], env=env,
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for item in json.loads(out):
        where = item.get("editable_project_location")
        value = item["version"]
        if where:
            value += " editable " + os.path.relpath(where, project.resolve())
        found[item["name"].lower().replace("_", "-")] = value
    return found


def base_python(project: Path) -> str:
    """The interpreter *project*'s ``.venv`` was made from (pyvenv.cfg's ``home``)."""
    cfg = (project / ".venv" / "pyvenv.cfg").read_text()
    home = next(line.split("=", 1)[1].strip() for line in cfg.splitlines()
                if line.split("=", 1)[0].strip() == "home")
    version = next(line.split("=", 1)[1].strip() for line in cfg.splitlines()
                   if line.split("=", 1)[0].strip() in ("version_info", "version"))
    minor = ".".join(version.split(".")[:2])
    for name in (f"python{minor}", "python3"):
        if (Path(home) / name).exists():
            return str(Path(home) / name)
    raise AssertionError(f"no interpreter in {home} for {project / '.venv'}")


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (f"{' '.join(argv)} exited {result.returncode}:\n"
                                    f"{result.stdout}\n{result.stderr}")
    return result.stdout
