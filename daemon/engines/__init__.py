"""Sync engines, one module per lockfile format, most specific first."""

from __future__ import annotations

from venvd.daemon.engines.base import Engine
from venvd.daemon.engines.conda import Conda
from venvd.daemon.engines.pdm import Pdm
from venvd.daemon.engines.pipfile import Pipfile
from venvd.daemon.engines.poetry import Poetry
from venvd.daemon.engines.pyproject import Pyproject
from venvd.daemon.engines.requirements import Requirements
from venvd.daemon.engines.uvlock import UvLock

ENGINES: tuple[Engine, ...] = (
    UvLock(), Poetry(), Pdm(), Pipfile(), Requirements(), Pyproject(), Conda())



def markers() -> frozenset[str]:
    """Every file whose presence makes a folder a project of some engine's kind."""
    return frozenset(name for engine in ENGINES for name in engine.markers)


__all__ = ["ENGINES", "Engine", "markers"]
