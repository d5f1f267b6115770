"""``requirements*.txt``: resolved into a complete pin set with ``uv pip compile``, then synced
exactly with ``uv pip sync`` (packages not in the set are removed).

A file of top-level pins (``Django==4.2.8``) gets its dependencies that way; a compiled file
(pip-compile, ``pip freeze``) resolves to itself, so it is installed exactly as pinned. A file
with ``--hash`` entries is synced as it is, with hashes required, since compiling would drop them.

A file of exact pins only is installed while it is compiled (``install_early``), and when its
env starts as a clone of a state, only what the edit reaches is checked (``pincheck``): a
one-package edit then costs what that package costs, whatever the size of the env.

The files' index and build options, at any ``-r``/``-c`` depth, go with the pin set (see
``pipopts``), which is stored in the env with absolute paths, so it installs on its own.
Relative requirement paths (``-e ./lib``) are relative to the project, where pip and uv take
them from the folder they run in; ``-r``, ``-c`` and ``--find-links`` paths to the file naming them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from venvd.daemon import projectfile
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import pincheck, pipopts
from venvd.daemon.engines.base import Engine, Job
from venvd.daemon.engines.pincheck import plain_pins
from venvd.daemon.errors import CommandFailed, VenvdError

_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")


def includes(path: Path, seen: Optional[set[Path]] = None) -> list[Path]:
    """*path* and every file it pulls in with ``-r``/``-c``, recursively, each once."""
    seen = set() if seen is None else seen
    if path in seen or not projectfile.present(path):
        return []
    seen.add(path)
    found = [path]
    for line in _text(path).splitlines():
        match = _INCLUDE.match(line)
        if match:
            try:
                found += includes((path.parent / match.group(1)).resolve(), seen)
            except projectfile.UnsafeFile as exc:  # named as written (it may resolve far)
                raise projectfile.UnsafeFile(
                    f"{match.group(1)} (included by {path.name}): {exc}") from None
    return found


class Requirements(Engine):
    name = "uv-pip-sync"
    steps = 2  # commands a sync runs (for the progress bar)
    markers = ("requirements.txt",)

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        chosen = config.requirements or (
            ("requirements.txt",) if projectfile.present(project / "requirements.txt") else ()
        )
        if not chosen:
            return None
        files: list[Path] = []
        seen: set[Path] = set()
        for name in chosen:
            try:
                files += includes((project / name).resolve(), seen)
            except projectfile.UnsafeFile as exc:
                raise projectfile.UnsafeFile(f"{name}: {exc}") from None
        missing = [n for n in chosen if not projectfile.present(project / n)]
        if missing:
            raise VenvdError(f"requirement file not found: {', '.join(missing)}")
        return tuple(_relative(f, project) for f in files)

    def clone_mode(self, project: Path, config: ProjectConfig) -> str:
        """Hashes are checked as a package is installed, and uv keeps one already installed
        without a look at them: a clone could keep a file the lock's hashes no longer name,
        so hashed files build afresh, as a new contributor's env would."""
        top = [(project / n).resolve() for n in (config.requirements or ("requirements.txt",))]
        seen: set[Path] = set()
        return "never" if _hashed([f for t in top for f in includes(t, seen)]) else self.clone

    def resolve(self, job: Job) -> None:
        """The complete pin set; needs only the interpreter, so it runs while the env is
        being created. A file of exact pins whose env starts as a clone of a state is
        checked from what changed since (``pincheck``)."""
        files = _all_files(job)
        if _hashed(files):
            return
        pins = plain_pins(_text(files[0])) if len(files) == 1 else None
        found = pincheck.change(job.origin, pins) if pins is not None else None
        if pins is None or found is None:
            _compile(job, files)
        elif found.alone:
            job.deferred = found  # uv's check of the early install decides (``install``)
        else:
            agreed = pincheck.compile_part(job, pipopts.uv_environment(
                job.environ, pipopts.collect(files)), files[0], pins, found)
            if agreed:
                _write(job.scratch / PINS, _lines(pins))
            else:
                _compile(job, files, cached=agreed is not None)

    def install_early(self, job: Job) -> None:
        """A file of exact pins only (what pip-compile, uv pip compile and pip freeze write):
        its compiled pin set is very likely itself, so it is synced while the compile (or
        the check of what changed) runs, uv checking the env after in a clone; ``install``
        keeps that when the compile agrees or the check stands, and syncs the compiled set
        when not (the sync is exact: whatever was installed early and is not in it goes)."""
        files = _all_files(job)
        pins = plain_pins(_text(files[0])) if len(files) == 1 else None
        if pins is None:
            return
        job.scratch.mkdir(exist_ok=True)  # removed with the build's other scratch files
        early = _write(job.scratch / EARLY, _lines(pins))
        # uv's check of the env after (a clone's: see ``pincheck``)
        check = ["--strict"] if job.origin is not None else []
        try:
            job.early_output = job.run(
                job.pip_sync(*check, *job.python_args, early),
                extra_env=pipopts.uv_environment(job.environ, pipopts.collect(files)))
        except CommandFailed:  # e.g. a pin the index lacks: the compile says it better
            return
        job.early = pins

    def install(self, job: Job) -> None:
        top = _top(job)
        files = _all_files(job)
        options = pipopts.collect(files)
        uv_env = pipopts.uv_environment(job.environ, options)
        if _hashed(files):
            extra = [_write(job.work / OPTIONS, options.header())] if options.lines else []
            job.run(job.pip_sync("--require-hashes", *options.install_args(), *job.python_args,
                                 *top, *extra), extra_env=uv_env)
            return
        if not (job.scratch / PINS).exists():  # left to uv's check of the early install
            found = job.deferred
            if isinstance(found, pincheck.Change) and pincheck.check_stands(job, found):
                _write(job.work / PINS, _lines(dict(found.pins)))  # exact pins: no options
                return
            _compile(job, files)
        # the pin set carries the files' options and absolute paths: it installs on its own
        compiled = (job.scratch / PINS).read_text(encoding="utf-8")
        pins = _write(job.work / PINS,
                      options.header() + pipopts.absolute_paths(compiled, job.project))
        (job.scratch / PINS).unlink()
        if job.early is not None and plain_pins(compiled) == job.early:
            job.output.append("venvd: the compiled pin set is the file's own pins, "
                              "installed while it was compiled")
            return
        job.run(job.pip_sync(*options.install_args(), *job.python_args, pins), extra_env=uv_env)


PINS = "requirements.lock.txt"
OPTIONS = "requirements.options.txt"
EARLY = "requirements.early.txt"
UNCACHED = "venvd: uv's cache lacks some of it; compiling with the index"


def _compile(job: Job, files: list[Path], cached: bool = True) -> None:
    """The complete pin set of the files, into the scratch folder (``PINS``); a file of
    exact pins from uv's cache first, unless it is known to lack some (not *cached*)."""
    options = pipopts.collect(files)
    job.scratch.mkdir(exist_ok=True)
    # the options again as a file of their own: uv ignores those of ``-c`` files
    extra = [_write(job.scratch / OPTIONS, options.header())] if options.lines else []
    argv = [job.uv, "pip", "compile", "--quiet", "--no-header", "--python", job.python,
            *options.resolve_args(), "--output-file", str(job.scratch / PINS), *_top(job),
            *extra]
    uv_env = pipopts.uv_environment(job.environ, options)
    pins = plain_pins(_text(files[0])) if len(files) == 1 else None
    if pins is not None:
        if cached and _agrees_offline(job, argv, uv_env, pins):
            return
        if not cached:
            job.output.append(UNCACHED)
    job.run(argv, extra_env=uv_env)


def _agrees_offline(job: Job, argv: list[str], uv_env: dict[str, str],
                    pins: dict[str, str]) -> bool:
    """Whether a compile from uv's cache alone gives the file's own exact pins. Then no
    version was chosen (each is pinned, and nothing outside the pins is needed) and a
    release's metadata does not change: the index would give the same answer, so it is not
    asked (a compile online asks it about every pin, seconds on a slow link)."""
    try:
        job.run([*argv, "--offline"], extra_env=uv_env)
    except CommandFailed:
        job.output.append(UNCACHED)
        return False
    return plain_pins((job.scratch / PINS).read_text(encoding="utf-8")) == pins


def _lines(pins: dict[str, str]) -> str:
    return "".join(f"{n}=={v}\n" for n, v in pins.items())


def _top(job: Job) -> list[str]:
    return [str(job.project / n) for n in (job.config.requirements or ("requirements.txt",))]


def _all_files(job: Job) -> list[Path]:
    """The top files and everything they include, in the order pip reads them."""
    seen: set[Path] = set()
    return [f for top in _top(job) for f in includes(Path(top).resolve(), seen)]


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _text(path: Path) -> str:
    """A requirement file's text, bounded; a vanished one reads as empty."""
    try:
        return projectfile.read_project_text(path, projectfile.MAX_LOCKFILE)
    except FileNotFoundError:
        return ""


def _hashed(files: list[Path]) -> bool:
    return any("--hash" in _text(f) for f in files)


def _relative(path: Path, project: Path) -> str:
    try:
        return str(path.relative_to(project.resolve()))
    except ValueError:
        return str(path)
