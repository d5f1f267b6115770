"""``requirements*.txt``: resolved into a complete pin set with ``uv pip compile``, then synced
exactly with ``uv pip sync`` (packages not in the set are removed).

A file of top-level pins (``Django==4.2.8``) gets its dependencies that way; a compiled file
(pip-compile, ``pip freeze``) resolves to itself, so it is installed exactly as pinned. A file
with ``--hash`` entries is synced as it is, with hashes required, since compiling would drop them.

The files' index and build options, at any ``-r``/``-c`` depth, go with the pin set (see
``pipopts``), which is stored in the env with absolute paths, so it installs on its own.
Relative requirement paths (``-e ./lib``) are relative to the project, where pip and uv take
them from the folder they run in; ``-r``, ``-c`` and ``--find-links`` paths to the file naming them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from venvd.daemon import drift, projectfile
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import pipopts
from venvd.daemon.engines.base import Engine, Job
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
        """Compile the complete pin set; needs only the interpreter, so it runs while the
        env is being created."""
        top = _top(job)
        files = _all_files(job)
        if _hashed(files):
            return
        options = pipopts.collect(files)
        job.scratch.mkdir(exist_ok=True)
        # the options again as a file of their own: uv ignores those of ``-c`` files
        extra = [_write(job.scratch / OPTIONS, options.header())] if options.lines else []
        argv = [job.uv, "pip", "compile", "--quiet", "--no-header", "--python", job.python,
                *options.resolve_args(), "--output-file", str(job.scratch / PINS), *top, *extra]
        uv_env = pipopts.uv_environment(job.environ, options)
        pins = plain_pins(_text(files[0])) if len(files) == 1 else None
        if pins is not None and _agrees_in_part(job, uv_env, files[0], pins):
            _write(job.scratch / PINS, "".join(f"{n}=={v}\n" for n, v in pins.items()))
        elif pins is None or not _agrees_offline(job, argv, uv_env, pins):
            job.run(argv, extra_env=uv_env)

    def install_early(self, job: Job) -> None:
        """A file of exact pins only (what pip-compile, uv pip compile and pip freeze write):
        its compiled pin set is very likely itself, so it is synced while the compile runs;
        ``install`` keeps that when the compile agrees, and syncs its pin set when not (the
        sync is exact: whatever was installed early and is not in the set goes)."""
        files = _all_files(job)
        pins = plain_pins(_text(files[0])) if len(files) == 1 else None
        if pins is None:
            return
        job.scratch.mkdir(exist_ok=True)  # removed with the build's other scratch files
        early = _write(job.scratch / EARLY, "".join(f"{n}=={v}\n" for n, v in pins.items()))
        try:
            job.run(job.pip_sync(*job.python_args, early),
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
PART = "requirements.part.txt"
PART_PINS = "requirements.part.lock.txt"
_PIN = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*"
                  r"([A-Za-z0-9][A-Za-z0-9.+!_-]*)")


def _agrees_in_part(job: Job, uv_env: dict[str, str], file: Path,
                    pins: dict[str, str]) -> bool:
    """Whether the compile of *pins* would give *pins*, told from the part that changed
    since the state the env starts as a clone of (``job.origin``), whose packages are a
    complete set (a compile's, or one this check passed).

    What changed (a version, a package added or removed) and, transitively, every package
    whose requirements name one of those (under any marker or extra, as the origin's record
    keeps them) are compiled from uv's cache with all the pins as constraints. The rest
    asks, under the same markers and extras, for what it did in the origin, where it was
    met: when this part compiles to its own pins, the whole does. One package and its
    dependents resolve in uv's time to start, where 200 pins take twice that."""
    origin = drift.graph(job.origin) if job.origin is not None else None
    if origin is None:
        return False
    changed = {n for n, v in pins.items() if origin.get(n, ("",))[0] != v}
    gone = origin.keys() - pins.keys()
    users: dict[str, set[str]] = {}
    for name, (_, wants) in origin.items():
        for wanted in wants:
            users.setdefault(wanted, set()).add(name)
    part, todo = set(changed), [*changed, *gone]
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in part:
                part.add(user)
                todo.append(user)
    part &= pins.keys()  # a removed package asks for nothing any more
    if part:
        asked = _write(job.scratch / PART, "".join(f"{n}=={pins[n]}\n" for n in sorted(part)))
        try:
            job.run([job.uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                     "--offline", "--python", job.python, "--output-file",
                     str(job.scratch / PART_PINS), asked, "-c", str(file)], extra_env=uv_env)
        except CommandFailed:  # a conflict, or what uv's cache lacks: the whole is compiled
            return False
        found = plain_pins((job.scratch / PART_PINS).read_text(encoding="utf-8"))
        if found is None or any(pins.get(n) != v for n, v in found.items()):
            return False
    job.output.append(f"venvd: compiled the {len(part)} of {len(pins)} pins that changed or "
                      "depend on a change: the file is its own compiled pin set")
    return True


def _agrees_offline(job: Job, argv: list[str], uv_env: dict[str, str],
                    pins: dict[str, str]) -> bool:
    """Whether a compile from uv's cache alone gives the file's own exact pins. Then no
    version was chosen (each is pinned, and nothing outside the pins is needed) and a
    release's metadata does not change: the index would give the same answer, so it is not
    asked (a compile online asks it about every pin, seconds on a slow link)."""
    try:
        job.run([*argv, "--offline"], extra_env=uv_env)
    except CommandFailed:
        job.output.append("venvd: uv's cache lacks some of it; compiling with the index")
        return False
    return plain_pins((job.scratch / PINS).read_text(encoding="utf-8")) == pins


def plain_pins(text: str) -> Optional[dict[str, str]]:
    """Normalised name -> version when every requirement of *text* is an exact pin with
    nothing else (no option, marker, extra, URL or path), each name once; else ``None``."""
    pins: dict[str, str] = {}
    for line in pipopts.logical_lines(text):
        match = _PIN.fullmatch(line)
        if match is None:
            return None
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        if name in pins:
            return None
        pins[name] = match.group(2)
    return pins


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
