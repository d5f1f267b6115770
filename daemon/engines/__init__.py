"""Sync engines, one module per lockfile format, most specific first."""

from __future__ import annotations

from venvd.daemon.engines.base import Engine
from venvd.daemon.engines.conda import Conda
from venvd.daemon.engines.pipfile import Pipfile
from venvd.daemon.engines.pyproject import Pyproject
from venvd.daemon.engines.requirements import Requirements
from venvd.daemon.engines.tools import Pdm, Poetry
from venvd.daemon.engines.uvlock import UvLock

ENGINES: tuple[Engine, ...] = (
    UvLock(), Poetry(), Pdm(), Pipfile(), Requirements(), Pyproject(), Conda())

__all__ = ["ENGINES", "Engine"]
