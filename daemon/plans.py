"""What a sync of a project depends on: its interpreter, its engine and inputs, and the
fingerprint that names the lock state; plans are remembered while the files they read stay
unchanged (the prompt path asks often).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile, projects, pythons
from venvd.daemon.config import ProjectConfig, load_project_config, read_toml
from venvd.daemon.engines import ENGINES, Engine, pyproject
from venvd.daemon.errors import VenvdError


@dataclass(frozen=True)
class Plan:
    """Everything a sync of a project depends on; its fingerprint names the lock state."""

    project: Path
    config: ProjectConfig
    request: pythons.PythonRequest
    interpreter: pythons.Interpreter
    engine: Engine
    inputs: tuple[str, ...]
    fingerprint: str

    @property
    def lockfile(self) -> str:
        return self.inputs[0]


def python_request(project: Path, config: ProjectConfig) -> tuple[list[str], pythons.PythonRequest]:
    """The interpreter the project asks for, first match wins (see DESIGN.md, Projects)."""
    if config.python:
        return [config.python], pythons.PythonRequest(config.python, config.source or "config")
    found = pythons.read_python_version_file(project)
    if found is not None:
        specs, path = found
        if not specs:
            raise VenvdError(f"{path} names no Python version")
        return specs, pythons.PythonRequest(" ".join(specs), str(path))
    requires = requires_python(project)
    if requires is not None:
        return [requires], pythons.PythonRequest(requires, "requires-python")
    return ["system"], pythons.PythonRequest("system", "default")


def requires_python(project: Path) -> Optional[str]:
    """``[project] requires-python`` of the project's ``pyproject.toml``, if it has one."""
    return pyproject.requires_python(read_toml(project / pyproject.MANIFEST))


_found: tuple[float, list[pythons.Interpreter]] = (0.0, [])
INTERPRETERS_TTL = 30.0


def interpreters() -> list[pythons.Interpreter]:
    """The interpreters installed, looked for again at most every few seconds."""
    global _found
    when, found = _found
    if time.monotonic() - when > INTERPRETERS_TTL:
        found = pythons.discover(pythons.default_pyenv_root(), pythons.default_uv_python_dir(),
                                 os.environ.get("PATH", ""))
        _found = (time.monotonic(), found)
    return found


def choose_interpreter(project: Path, config: ProjectConfig) -> tuple[pythons.PythonRequest,
                                                                      pythons.Interpreter]:
    specs, request = python_request(project, config)
    found = interpreters()
    try:
        if request.source == "requires-python":
            return request, pythons.choose_for_requires_python(specs[0], found)
        if request.source == "default":
            try:
                return request, pythons.choose(specs, found)
            except pythons.InterpreterNotFound:
                return request, max(found, key=lambda i: i.version)
        return request, pythons.choose(specs, found, request.source)
    except (pythons.InterpreterNotFound, ValueError) as exc:
        raise VenvdError(str(exc)) from None


#: Engines whose tool refuses an interpreter outside ``requires-python``: the conflict is
#: named before the sync, with both values, rather than in the tool's words after it.
HONOUR_REQUIRES_PYTHON = frozenset({"uv-pyproject", "uv-sync", "poetry", "pdm"})


def check_requires_python(project: Path, request: pythons.PythonRequest,
                          interpreter: pythons.Interpreter) -> None:
    """Raise VenvdError when the interpreter asked for explicitly is outside requires-python."""
    requires = requires_python(project)
    if requires is None or request.source in ("requires-python", "default"):
        return
    try:
        fits = pythons.satisfies(requires, interpreter)
    except pythons.InterpreterNotFound as exc:
        raise VenvdError(str(exc)) from None
    if not fits:
        raise VenvdError(f"{_asker(project, request)} asks for {request.spec} but "
                         f"requires-python is {requires}")


def _asker(project: Path, request: pythons.PythonRequest) -> str:
    """Who asked for the interpreter, as a person would name it."""
    path = Path(request.source)
    if path.name == pythons.VERSION_FILE:
        return path.name if path.parent == project else str(path)
    return f"python in {request.source}"


def make_plan(project: Path) -> Plan:
    """Decide how *project* is synced; raise VenvdError saying why it cannot be."""
    config = load_project_config(project)
    for engine in ENGINES:
        inputs = engine.inputs(project, config)
        if inputs is not None:
            break
    else:
        raise VenvdError(f"{project}: nothing to sync from (no lockfile or requirements)")
    request, interpreter = choose_interpreter(project, config)
    if engine.name in HONOUR_REQUIRES_PYTHON:
        check_requires_python(project, request, interpreter)
    return Plan(project, config, request, interpreter, engine, inputs,
                fingerprint(project, engine.name, interpreter, inputs, config))


#: project -> (the paths its plan depends on, their ``stat`` results then, the plan)
_plans: dict[str, tuple[tuple[str, ...], tuple[object, ...], Plan]] = {}
_plans_lock = threading.Lock()
#: Plans remembered (the least recently made go first); others are made again when asked.
PLANS_KEPT = 256


def _signature_paths(project: Path, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """What a plan depends on: the project folder (its mtime changes when a file appears
    in it or goes), the manifests, config and inputs that exist, and every
    ``.python-version`` from the project up to ``/``."""
    root = str(project)
    paths = [root]
    for name in dict.fromkeys((*projects.MARKERS, *inputs)):
        path = os.path.join(root, name)
        if os.path.lexists(path):  # one that appears later changes the folder's mtime
            paths.append(path)
    folder = root
    while True:
        paths.append(os.path.join(folder, pythons.VERSION_FILE))
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return tuple(paths)


def _stats(paths: tuple[str, ...]) -> tuple[object, ...]:
    sig: list[object] = []
    stat = os.stat
    for path in paths:
        try:
            st = stat(path)
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append(None)
    return tuple(sig)


def _remember(key: str, paths: tuple[str, ...], stats: tuple[object, ...], plan: Plan) -> None:
    with _plans_lock:
        _plans.pop(key, None)
        if len(_plans) >= PLANS_KEPT:
            _plans.pop(next(iter(_plans)))
        _plans[key] = (paths, stats, plan)


def cached_plan(project: Path) -> Plan:
    """``make_plan``, reused while none of the files it read has changed (the prompt path
    asks for it often; a sync itself always plans afresh)."""
    key = str(project)
    with _plans_lock:
        cached = _plans.get(key)
    if cached is not None and _stats(cached[0]) == cached[1]:
        return cached[2]
    watched = _signature_paths(project, cached[2].inputs if cached else ())
    before = _stats(watched)
    plan = make_plan(project)
    if _stats(watched) == before:  # nothing changed while it was being made
        paths = _signature_paths(project, plan.inputs)
        _remember(key, paths, _stats(paths), plan)
    return plan


def known_plan(project: Path) -> Optional[Plan]:
    """The plan ``cached_plan`` would return without making one, or ``None``: never starts
    an interpreter (the thread that answers prompts asks)."""
    with _plans_lock:
        cached = _plans.get(str(project))
    return cached[2] if cached is not None and _stats(cached[0]) == cached[1] else None


def remember_plan(plan: Plan) -> None:
    """Seed the cache with the plan a sync just used (its files were read for it)."""
    paths = _signature_paths(plan.project, plan.inputs)
    _remember(str(plan.project), paths, _stats(paths), plan)


def fingerprint(project: Path, engine: str, interpreter: pythons.Interpreter,
                inputs: tuple[str, ...], config: ProjectConfig) -> str:
    digest = hashlib.sha256()
    parts = [engine, os.path.realpath(interpreter.path), interpreter.version_str,
             # ``jupyter`` changes no package: turning it on is no new lock state
             repr(sorted((k, v) for k, v in config.raw.items() if k != "jupyter"))]
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for name in inputs:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        try:  # a chunk at a time: a lockfile can be several MB
            projectfile.hash_project_file(project / name, digest)
        except FileNotFoundError:
            digest.update(b"<missing>")
    return digest.hexdigest()
