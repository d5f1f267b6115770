"""What a project asks for, as ``venvd status`` shows it: the Python it wants and the one a
sync would use, its engine and lockfile. When the whole plan fails (the Python wanted is not
installed, a file cannot be read), each part is read on its own, so that one failing part
leaves the others known and the failure is said once, as the problem."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from venvd.daemon import plans, pythons
from venvd.daemon.config import ProjectConfig, load_project_config
from venvd.daemon.engines import ENGINES
from venvd.daemon.errors import VenvdError


@dataclass(frozen=True)
class Parts:
    wanted: Optional[str] = None
    source: Optional[str] = None
    engine: Optional[str] = None
    lockfile: Optional[str] = None
    #: The interpreter a sync would use (whether or not the project is allowed).
    interpreter: Optional[pythons.Interpreter] = None
    plan: Optional[plans.Plan] = None
    problem: Optional[str] = None


def parts(project: Path) -> Parts:
    """*project*'s plan, or as much of it as can be read, and why the rest cannot."""
    try:
        plan = plans.cached_plan(project)
    except VenvdError as exc:
        return _piecemeal(project, str(exc))
    return Parts(plan.request.spec, plan.request.source, plan.engine.name, plan.lockfile,
                 plan.interpreter, plan)


def _piecemeal(project: Path, problem: str) -> Parts:
    try:
        config: Optional[ProjectConfig] = load_project_config(project)
    except VenvdError:
        config = None  # the problem names the file
    wanted = source = engine = lockfile = None
    if config is not None:
        with contextlib.suppress(VenvdError):
            _specs, request = plans.python_request(project, config)
            wanted, source = request.spec, request.source
        with contextlib.suppress(VenvdError):
            engine, lockfile = _engine(project, config)
    return Parts(wanted, source, engine, lockfile, problem=problem)


def _engine(project: Path, config: ProjectConfig) -> tuple[Optional[str], Optional[str]]:
    for engine in ENGINES:
        inputs = engine.inputs(project, config)
        if inputs is not None:
            return engine.name, inputs[0]
    return None, None


def plan_problem(project: str) -> Optional[str]:
    """Why *project*'s env cannot be made (its plan fails), or ``None``."""
    try:
        plans.cached_plan(Path(project))
    except VenvdError as exc:
        return str(exc)
    return None
