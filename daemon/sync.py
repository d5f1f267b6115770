"""Planning and running one sync: which interpreter, which engine, which inputs, and an env
built beside the live one and switched in atomically only when it is complete.

``<project>/.venv`` is a symlink to one folder per lock state under the user data dir, so a
switch is one ``rename`` and a lock state built before (the other branch) is switched back to
without reinstalling.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from venvd.daemon import drift, projectfile, projects, pythons, turns
from venvd.daemon.config import ProjectConfig, load_project_config, read_toml
from venvd.daemon.engines import ENGINES, Engine, pyproject
from venvd.daemon.engines.base import Job, Progress
from venvd.daemon.errors import CommandFailed, VenvdError

COMPLETE = ".venvd-complete"
#: Lock states kept per project (the live one included), so a branch switch back is instant.
KEEP_STATES = 3


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


class Superseded(VenvdError):
    """The project changed while it was being synced: a sync of the new state follows."""


@dataclass
class Outcome:
    plan: Optional[Plan]
    result: str
    seconds: float
    added: int = 0
    removed: int = 0
    changed: int = 0
    error: Optional[str] = None
    output: list[str] = field(default_factory=list)
    switched_only: bool = False
    #: The live env was already what the lock asks for (the project's tool synced it).
    adopted: bool = False
    #: Where a ``.venv`` folder venvd did not make was moved to (relative to the project).
    moved_aside: Optional[str] = None


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


def remember_plan(plan: Plan) -> None:
    """Seed the cache with the plan a sync just used (its files were read for it)."""
    paths = _signature_paths(plan.project, plan.inputs)
    _remember(str(plan.project), paths, _stats(paths), plan)


def fingerprint(project: Path, engine: str, interpreter: pythons.Interpreter,
                inputs: tuple[str, ...], config: ProjectConfig) -> str:
    digest = hashlib.sha256()
    parts = [engine, os.path.realpath(interpreter.path), interpreter.version_str,
             repr(sorted(config.raw.items()))]
    for part in parts:
        digest.update(part.encode() + b"\0")
    for name in inputs:
        digest.update(name.encode() + b"\0")
        try:  # a chunk at a time: a lockfile can be several MB
            projectfile.hash_project_file(project / name, digest)
        except FileNotFoundError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def env_store(envs: Path, project: Path) -> Path:
    """The folder holding a project's lock states, named so a person can tell whose it is."""
    key = hashlib.sha256(str(project).encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", project.name)[:40].strip("._") or "project"
    return envs / f"{readable}-{key}"


def run(plan: Plan, envs: Path, uv: str, progress: Progress,
        cancel: threading.Event, keep: int = KEEP_STATES) -> Outcome:
    """Bring the project's env to *plan*: switch to a built lock state, or build and switch.

    A built state that drifted (packages changed by hand) is not reused: a fresh one is built
    beside it, switched in, and the drifted one removed.
    """
    start = time.monotonic()
    store = env_store(envs, plan.project)
    built = find_built(store, plan.fingerprint)
    if built is not None and not drift.drift(built):
        if not plan.engine.creates_env and not has_pip(built):
            # a state built before envs had their own pip
            seed(Job(plan.project, built, plan.interpreter.path, plan.config, uv, plan.inputs,
                     progress, cancel), envs)
        aside = switch(plan.project, built)
        prune_states(store, keep=keep, current=built)
        return Outcome(plan, "ok", time.monotonic() - start, switched_only=True,
                       moved_aside=aside)
    target = store / plan.fingerprint[:16]
    if built is not None or target.exists():
        target = store / f"{plan.fingerprint[:16]}-{time.time_ns():x}"
    store.mkdir(parents=True, exist_ok=True)
    job = build(plan, target, uv, progress, cancel, offline=False, envs=envs)
    now = drift.record(target)
    (target / COMPLETE).write_text(plan.fingerprint + "\n")
    live = Path(projects.env_path(str(plan.project)))
    before = drift.installed(live.resolve()) if projects.env_is_usable(str(live)) else {}
    aside = switch(plan.project, target)
    if built is not None:
        shutil.rmtree(built, ignore_errors=True)
    prune_states(store, keep=keep, current=target)
    counts = drift.changes(before, now)  # what was recorded: nothing changed it since
    return Outcome(plan, "ok", time.monotonic() - start, counts.added, counts.removed,
                   counts.changed, output=job.output, moved_aside=aside)


def up_to_date(plan: Plan) -> bool:
    """Whether the live env is the complete state of *plan*'s lock, as synced (no drift)."""
    live = Path(projects.env_path(str(plan.project)))
    if not live.is_symlink() or not projects.env_is_usable(str(live)):
        return False
    target = live.resolve()
    try:
        done = (target / COMPLETE).read_text().strip() == plan.fingerprint
    except OSError:
        return False
    return done and not drift.drift(target)


def adopt(plan: Plan, envs: Path, uv: str, progress: Progress,
          cancel: threading.Event) -> Optional[Outcome]:
    """When the project's own tool already brought the live env to *plan*'s lock (``uv add``
    and ``uv sync`` install into ``.venv`` themselves), make that env this lock's state
    instead of building the same thing again beside it; ``None`` when it is not so.

    The state keeps its folder: ``find_built`` finds it by the fingerprint it now records.
    """
    live = Path(projects.env_path(str(plan.project)))
    if not live.is_symlink() or not projects.env_is_usable(str(live)):
        return None
    start = time.monotonic()
    target = live.resolve()
    if target.parent != env_store(envs, plan.project) or not is_complete(target):
        return None  # not one of venvd's states
    if not _same_interpreter(target, plan.interpreter):
        return None
    job = Job(plan.project, target, plan.interpreter.path, plan.config, uv, plan.inputs,
              progress, cancel)
    if not plan.engine.matches(job):  # None: cannot tell
        return None
    checked = drift.installed(target)
    with turns.env_lock(str(target), cancel) as locked:
        # the tool may have started again since the check: then its own change of the files
        # makes another sync, which looks again
        if not locked or drift.installed(target) != checked or fingerprint(
                plan.project, plan.engine.name, plan.interpreter, plan.inputs,
                plan.config) != plan.fingerprint:
            raise Superseded("the project changed while its env was checked")
        before = drift.recorded(target)
        now = drift.record(target)
        (target / COMPLETE).write_text(plan.fingerprint + "\n")
    counts = drift.changes(before, now)
    job.output.append(f"venvd: .venv already matches {plan.lockfile}; "
                      "adopted it as this lock state (nothing to install)")
    return Outcome(plan, "ok", time.monotonic() - start, counts.added, counts.removed,
                   counts.changed, output=job.output, adopted=True)


def _same_interpreter(env: Path, interpreter: pythons.Interpreter) -> bool:
    cfg = _pyvenv_cfg(env)
    if cfg.get("version_info") != interpreter.version_str:
        return False
    home = os.path.realpath(cfg.get("home", ""))
    real = os.path.realpath(interpreter.path)
    return home in (os.path.dirname(real), os.path.realpath(os.path.dirname(interpreter.path)))


#: What uv prints when it cannot reach an index (then the cache may still have everything).
_NETWORK = re.compile(r"(?i)(failed to fetch|error sending request|dns error|connection refused|"
                      r"network is unreachable|timed out|could not connect|tcp connect)")


def make_venv(job: Job, plan: Plan) -> None:
    job.run([job.uv, "venv", "--quiet", "--python", plan.interpreter.path,
             f"--prompt={projects.safe_prompt(plan.project.name)}", str(job.env)])


def _prompt_is_safe(project: Path) -> bool:
    """Whether the prompt uv gives an env it creates for *project* (its ``[project]`` name)
    is one ``safe_prompt`` keeps as it is (uv writes it unescaped into ``bin/activate``)."""
    table = read_toml(project / pyproject.MANIFEST).get("project")
    name = table.get("name") if isinstance(table, dict) else None
    return isinstance(name, str) and bool(name) and projects.safe_prompt(name) == name


def build(plan: Plan, target: Path, uv: str, progress: Progress, cancel: threading.Event,
          offline: bool, envs: Optional[Path] = None) -> Job:
    """Create the env in *target* and install into it; on any failure nothing is left.

    When the index cannot be reached, the build is tried once more offline, from uv's cache.
    """
    environ = dict(os.environ, UV_OFFLINE="1") if offline else dict(os.environ)
    job = Job(plan.project, target, plan.interpreter.path, plan.config, uv, plan.inputs,
              progress, cancel, environ)
    seeded = False
    try:
        if plan.engine.creates_env:
            plan.engine.resolve(job)
        elif plan.engine.makes_venv and _prompt_is_safe(plan.project):
            # the tool creates the env as it would by hand (one process less), then pip
            # is linked in from the interpreter's seed folder
            plan.engine.resolve(job)
            plan.engine.install(job)
            seed(job, envs)
            return job
        else:
            # the engine's resolution needs only the interpreter: it runs meanwhile
            with ThreadPoolExecutor(max_workers=1) as meanwhile:
                resolved = meanwhile.submit(plan.engine.resolve, job)
                try:
                    make_venv(job, plan)
                    seeded = seed(job, envs)
                finally:
                    resolved.result()
        plan.engine.install(job)
        if seeded and not has_pip(target):
            seed(job, envs)  # the engine's exact sync removed it (its tool ignores ``seed = true``)
    except CommandFailed as exc:
        shutil.rmtree(target, ignore_errors=True)
        if offline or not _NETWORK.search(exc.output) or os.environ.get("UV_OFFLINE"):
            raise
        progress("venvd: the package index is unreachable; trying again offline from the cache")
        try:
            retry = build(plan, target, uv, progress, cancel, offline=True, envs=envs)
        except CommandFailed:
            raise exc from None  # what could not be reached, not what the cache lacks
        retry.output[:0] = [*job.output, "venvd: index unreachable; retried offline"]
        return retry
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)
    return job


#: Where Debian and its derivatives keep the wheels of their own Pythons (whose ``ensurepip``
#: is removed).
SYSTEM_WHEELS = (Path("/usr/share/python-wheels"), Path("/usr/local/share/python-wheels"))
#: The seeds installed when found beside the interpreter (``python -m venv`` installs these).
SEED_NAMES = ("pip", "setuptools")


def seed_wheels(env: Path) -> Optional[Path]:
    """The folder of pip wheels that comes with *env*'s interpreter (``ensurepip``'s), so the
    seeding needs no index; ``None`` when there is none."""
    cfg = _pyvenv_cfg(env)
    home, version = Path(cfg.get("home", "/nonexistent")), cfg.get("version_info", "")
    minor = ".".join(version.split(".")[:2])
    lib = home.parent / "lib"
    candidates = [lib / f"{kind}{minor}" / "ensurepip" / "_bundled" for kind in ("python", "pypy")]
    candidates += sorted(lib.glob("*/ensurepip/_bundled")) + list(SYSTEM_WHEELS)
    for folder in candidates:
        if any(folder.glob("pip-*.whl")):
            return folder
    return None


def _pyvenv_cfg(env: Path) -> dict[str, str]:
    values = {}
    try:
        for line in (env / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    except OSError:
        pass
    return values


def has_pip(env: Path) -> bool:
    return any(env.glob("lib/*/site-packages/pip-*.dist-info"))


def install_seeds(job: Job) -> bool:
    """Give the env its own pip, as ``python -m venv`` does, from the wheels that come with the
    interpreter (offline, a tenth of a second; ``ensurepip`` takes seconds), and mark the env
    ``seed = true`` so that ``uv sync`` and ``uv pip sync`` keep pip through exact syncs.

    Without such wheels, pip comes from the configured index (quickly given up when it cannot
    be reached); when that fails too, the env goes without pip (a note in the sync's output),
    as it did before: not a failed sync. Returns whether pip is there.
    """
    wheels = seed_wheels(job.env)
    argv = [job.uv, "pip", "install", "--quiet", "--python", job.env_python]
    extra = {}
    if wheels is not None:
        names = [n for n in SEED_NAMES if any(wheels.glob(f"{n}-*.whl"))]
        argv += ["--offline", "--no-index", "--find-links", str(wheels), *names]
    else:
        argv += ["pip"]
        extra = {"UV_HTTP_TIMEOUT": "10", "UV_HTTP_RETRIES": "0"}
    try:
        job.run(argv, extra)
    except CommandFailed:
        job.output.append("venvd: could not install pip into the env; it has none")
        return False
    _mark_seeded(job.env)
    return True


def seed(job: Job, envs: Optional[Path] = None) -> bool:
    """Give *job.env* its own pip (see ``install_seeds``), linked from the interpreter's seed
    folder beside *envs* (made once, by ``install_seeds``): a few milliseconds instead of a
    ``uv pip install``. Returns whether pip is there."""
    reference = seed_folder(job, envs) if envs is not None else None
    if reference is not None:
        try:
            link_seeds(reference, job.env)
        except OSError as exc:  # made again at the next sync
            shutil.rmtree(reference, ignore_errors=True)
            job.output.append(f"venvd: could not link pip from {reference} ({exc}); "
                              "installing it")
        else:
            _mark_seeded(job.env)
            return True
    return install_seeds(job)


def _mark_seeded(env: Path) -> None:
    """``seed = true`` in pyvenv.cfg: ``uv sync`` and ``uv pip sync`` then keep pip."""
    if "seed" not in _pyvenv_cfg(env):
        with (env / "pyvenv.cfg").open("a", encoding="utf-8") as f:
            f.write("seed = true\n")


_seeding = threading.Lock()


def seed_folder(job: Job, envs: Path) -> Optional[Path]:
    """A seeded env of *job*'s interpreter (*job.env* exists), kept beside *envs* (``venvd
    prune`` empties *envs* of what no project owns, not its parent), made when missing;
    ``None`` when the interpreter has no wheels of its own or the seeding failed (then each
    env is seeded on its own, as before)."""
    if seed_wheels(job.env) is None:
        return None  # pip from the index: tried once, in the env itself
    real = os.path.realpath(job.python)
    version = _pyvenv_cfg(job.env).get("version_info", "")
    key = hashlib.sha256(f"{real}\0{version}".encode()).hexdigest()[:16]
    folder = envs.parent / "seeds" / key
    if has_pip(folder):
        return folder
    with _seeding:  # one sync makes it; the others wait the tenth of a second
        if has_pip(folder):
            return folder
        tmp = folder.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        maker = Job(job.project, tmp, job.python, job.config, job.uv, job.inputs,
                    job.progress, job.cancel, job.environ)
        try:
            maker.run([job.uv, "venv", "--quiet", "--python", job.python, str(tmp)])
            if not install_seeds(maker):
                return None
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except (CommandFailed, OSError):
            return None
        finally:
            job.output += maker.output  # the sync's log says how its pip came about
            shutil.rmtree(tmp, ignore_errors=True)
    return folder if has_pip(folder) else None


def link_seeds(reference: Path, env: Path) -> None:
    """Hard-link the seeds installed in *reference* into *env* (as uv links from its cache),
    each file listed in its ``RECORD``; the scripts in ``bin`` are written anew with *env*'s
    interpreter in their ``#!`` line. Each ``.dist-info`` comes last: a package is seen as
    installed only once all of its files are there. Plain strings: a thousand files."""
    ref_sites = site_dirs(reference)
    if len(ref_sites) != 1 or [s.relative_to(env) for s in site_dirs(env)] != [
            ref_sites[0].relative_to(reference)]:
        raise OSError(f"{reference} and {env} differ in their site-packages")
    ref_site = str(ref_sites[0])
    site = str(env / ref_sites[0].relative_to(reference))
    made: set[str] = set()
    for info in sorted(glob.glob(os.path.join(glob.escape(ref_site), "*.dist-info"))):
        later = []
        with open(os.path.join(info, "RECORD"), encoding="utf-8", newline="") as record:
            for row in csv.reader(record):
                name = row[0] if row else ""
                if not name:
                    continue
                if name.startswith(".."):  # a script, in bin
                    source = Path(os.path.normpath(os.path.join(ref_site, name)))
                    _rewrite_script(source, env / source.relative_to(reference), reference, env)
                elif name.startswith(os.path.basename(info) + "/"):
                    later.append(name)
                else:
                    _link(ref_site, site, name, made)
        for name in later:
            _link(ref_site, site, name, made)


def site_dirs(env: Path) -> list[Path]:
    return sorted(env.glob("lib/python*/site-packages"))


def _link(ref_site: str, site: str, name: str, made: set[str]) -> None:
    folder = os.path.dirname(name)
    if folder not in made:
        os.makedirs(os.path.join(site, folder), exist_ok=True)
        made.add(folder)
    source, dest = os.path.join(ref_site, name), os.path.join(site, name)
    try:
        os.link(source, dest)
    except FileExistsError:
        os.unlink(dest)
        os.link(source, dest)
    except OSError:  # another file system, or no hard links there
        shutil.copy2(source, dest)


def _rewrite_script(source: Path, dest: Path, reference: Path, env: Path) -> None:
    """*source*'s body under a ``#!`` line naming *env*'s python (the reference was made
    under another name: its own line is not kept)."""
    lines = source.read_bytes().split(b"\n")
    body = lines[3:] if lines[0] == b"#!/bin/sh" else lines[1:]  # the long-path form
    python = str(env / "bin" / "python")
    if len(python) < 126 and " " not in python:
        head = [b"#!" + os.fsencode(python)]
    else:  # too long (or spaced) for the kernel: as pip and uv write it then
        head = [b"#!/bin/sh", b"'''exec' " + os.fsencode(shlex.quote(python)) + b' "$0" "$@"',
                b"' '''"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.venvd")
    tmp.write_bytes(b"\n".join(head + body))
    tmp.chmod(0o755)
    os.replace(tmp, dest)


def find_built(store: Path, fingerprint: str) -> Optional[Path]:
    """A complete env already built for *fingerprint* (the other branch's lock state).

    Every state is looked at, not only those named after *fingerprint*: a state the project's
    own tool brought to a new lock was adopted under that lock's fingerprint (``adopt``)."""
    folders = store.iterdir() if store.is_dir() else iter(())
    for folder in sorted(folders, key=lambda f: not f.name.startswith(fingerprint[:16])):
        try:
            if (folder / COMPLETE).read_text().strip() == fingerprint and is_complete(folder):
                return folder
        except OSError:
            continue
    return None


def prune_states(store: Path, keep: int, current: Optional[Path]) -> list[Path]:
    """Remove all but the *keep* most recently used lock states (never *current*)."""
    states = [f for f in store.iterdir() if f.is_dir()] if store.is_dir() else []
    states.sort(key=lambda f: _last_used(f), reverse=True)
    removed = []
    kept = 1 if current is not None else 0
    for folder in states:
        if folder == current:
            continue
        if kept < keep and is_complete(folder):
            kept += 1
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _last_used(folder: Path) -> float:
    try:
        return (folder / COMPLETE).stat().st_mtime
    except OSError:
        return 0.0


def is_complete(target: Path) -> bool:
    return (target / COMPLETE).is_file() and projects.env_is_usable(str(target))


def switch(project: Path, target: Path) -> Optional[str]:
    """Point ``<project>/.venv`` at *target* in one atomic rename.

    A real ``.venv`` folder made by someone else is kept, renamed aside, never deleted: its
    new name is returned, for the news and ``venvd status`` to say where it went.
    """
    link = Path(projects.env_path(str(project)))
    with contextlib.suppress(OSError):
        os.utime(target / COMPLETE)  # most recently used: kept longest by prune_states
    if link.is_symlink() and os.readlink(link) == str(target):
        return None
    moved = None
    if link.exists() and not link.is_symlink():
        aside = _free_name(link.with_name(ASIDE))
        link.rename(aside)
        moved = aside.name
    tmp = link.with_name(f".venv.venvd-{os.getpid()}-{threading.get_ident()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    return moved


#: What a ``.venv`` folder venvd did not make is renamed to (``.venv.before-venvd.2``, ...).
ASIDE = ".venv.before-venvd"


def moved_aside(project: Path) -> list[str]:
    """The ``.venv`` folders venvd moved aside in *project* and that are still there."""
    found = [p.name for p in project.glob(ASIDE + "*")
             if p.name == ASIDE or p.name[len(ASIDE) + 1:].isdigit()]
    return sorted(found)


def aside_note(name: str) -> str:
    return (f"moved your existing .venv to {name}; venvd now manages .venv "
            f"(to undo: 'venvd deny', then rm .venv and mv {name} .venv)")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def _in_a_repository(project: Path) -> bool:
    """Whether git could see *project* as part of a repository: a ``.git`` in it or above
    (or git told where by the environment); saves asking git, after every sync, in the many
    projects that are none."""
    if any(os.environ.get(name) for name in ("GIT_DIR", "GIT_WORK_TREE")):
        return True
    folder = str(project)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def keep_out_of_git(project: Path, names: tuple[str, ...] = (projects.ENV_NAME,)
                    ) -> Optional[str]:
    """Keep ``.venv`` (a symlink, which uv's ``.gitignore`` inside the env cannot hide) and
    any other of *names* (a ``.venv`` moved aside) out of ``git status``: those git does not
    ignore already are added to the repository's own ``info/exclude`` (the common one for a
    worktree), never to a committed ``.gitignore``. Returns the exclude file written to, if
    any. No git, or not a repository: nothing."""
    git = shutil.which("git")
    if git is None or not _in_a_repository(project):
        return None

    def ask(*args: str) -> Optional[subprocess.CompletedProcess[str]]:
        try:
            return subprocess.run([git, *args], cwd=project, capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.SubprocessError):
            return None

    # prints the names that are ignored; exit 1: none is, 128: not a repository
    ignored = ask("check-ignore", "--no-index", "--", *names)
    if ignored is None or ignored.returncode not in (0, 1):
        return None
    missing = [n for n in names if n not in ignored.stdout.splitlines()]
    where = ask("rev-parse", "--show-prefix", "--git-path", "info/exclude")
    lines = where.stdout.splitlines() if where is not None and where.returncode == 0 else []
    if not missing or len(lines) != 2:
        return None
    prefix, exclude = lines
    exclude_path = project / exclude  # relative to the working directory when not absolute
    # a symlink is a file to git: no trailing slash; anchored at this project's folder
    escaped = re.sub(r"([*?\[\\!#])", r"\\\1", prefix)
    patterns = ["/" + escaped + name for name in missing]
    try:
        exclude_path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the repository's file: bounded, and a FIFO or /dev/zero there is left alone
            text = projectfile.read_project_text(exclude_path, projectfile.MAX_TOML)
        except FileNotFoundError:
            text = ""
        patterns = [p for p in patterns if p not in text.splitlines()]
        if not patterns:
            return None
        _append(exclude_path, ("" if not text or text.endswith("\n") else "\n")
                + "# added by venvd: the project's env\n" + "".join(p + "\n" for p in patterns))
    except (OSError, VenvdError):
        return None
    return str(exclude_path)


def _append(path: Path, text: str) -> None:
    """Append *text* to the regular file *path* (made if missing); an open that cannot block
    (a FIFO swapped in since it was read would wait for a reader)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY
                 | os.O_CLOEXEC, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise projectfile.UnsafeFile(f"{path} is not a regular file")
        os.write(fd, text.encode())
    finally:
        os.close(fd)
