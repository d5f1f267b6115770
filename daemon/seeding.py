"""Giving an env its own pip, as ``python -m venv`` does: linked from one seeded env per
interpreter (made once, from the wheels that come with it), installed when that cannot be.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Optional

from venvd.daemon.engines.base import Job
from venvd.daemon.errors import CommandFailed

#: Where Debian and its derivatives keep the wheels of their own Pythons (whose ``ensurepip``
#: is removed).
SYSTEM_WHEELS = (Path("/usr/share/python-wheels"), Path("/usr/local/share/python-wheels"))
#: The seeds installed when found beside the interpreter (``python -m venv`` installs these).
SEED_NAMES = ("pip", "setuptools")


def seed_wheels(env: Path) -> Optional[Path]:
    """The folder of pip wheels that comes with *env*'s interpreter (``ensurepip``'s), so the
    seeding needs no index; ``None`` when there is none."""
    cfg = pyvenv_cfg(env)
    home, version = Path(cfg.get("home", "/nonexistent")), cfg.get("version_info", "")
    minor = ".".join(version.split(".")[:2])
    lib = home.parent / "lib"
    candidates = [lib / f"{kind}{minor}" / "ensurepip" / "_bundled" for kind in ("python", "pypy")]
    candidates += sorted(lib.glob("*/ensurepip/_bundled")) + list(SYSTEM_WHEELS)
    for folder in candidates:
        if any(folder.glob("pip-*.whl")):
            return folder
    return None


def pyvenv_cfg(env: Path) -> dict[str, str]:
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
    mark_seeded(job.env)
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
            mark_seeded(job.env)
            return True
    return install_seeds(job)


def mark_seeded(env: Path) -> None:
    """``seed = true`` in pyvenv.cfg: ``uv sync`` and ``uv pip sync`` then keep pip."""
    if "seed" not in pyvenv_cfg(env):
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
    folder = seed_path(job.python, pyvenv_cfg(job.env).get("version_info", ""), envs)
    key = folder.name
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


def seed_path(python: str, version: str, envs: Path) -> Path:
    key = hashlib.sha256(f"{os.path.realpath(python)}\0{version}".encode()).hexdigest()[:16]
    return envs.parent / "seeds" / key


def link_seeds(reference: Path, env: Path, named: Optional[Path] = None) -> None:
    """Hard-link the seeds installed in *reference* into *env* (as uv links from its cache),
    each file listed in its ``RECORD``; the scripts in ``bin`` are written anew with the
    interpreter of *named* (default: *env*) in their ``#!`` line. Each ``.dist-info`` comes
    last: a package is seen as installed only once all of its files are there. Plain strings:
    a thousand files."""
    ref_sites = site_dirs(reference)
    if len(ref_sites) != 1 or [s.relative_to(env) for s in site_dirs(env)] != [
            ref_sites[0].relative_to(reference)]:
        raise OSError(f"{reference} and {env} differ in their site-packages")
    ref_site = str(ref_sites[0])
    site = str(env / ref_sites[0].relative_to(reference))
    made: set[str] = set()
    for info in sorted(glob.glob(os.path.join(glob.escape(ref_site), "*.dist-info"))):
        if installed(site, os.path.basename(info)):
            continue  # the lock's own (setuptools): as the engine installed it
        later = []
        with open(os.path.join(info, "RECORD"), encoding="utf-8", newline="") as record:
            for row in csv.reader(record):
                name = row[0] if row else ""
                if not name:
                    continue
                if name.startswith(".."):  # a script, in bin
                    source = Path(os.path.normpath(os.path.join(ref_site, name)))
                    _rewrite_script(source, env / source.relative_to(reference), reference,
                                    named or env)
                elif name.startswith(os.path.basename(info) + "/"):
                    later.append(name)
                else:
                    _link(ref_site, site, name, made)
        for name in later:
            _link(ref_site, site, name, made)


def installed(site: str, dist_info: str) -> bool:
    """Whether the project of the folder name *dist_info* is installed in *site*."""
    project = dist_info.split("-")[0]
    return bool(glob.glob(os.path.join(glob.escape(site), f"{glob.escape(project)}-*.dist-info")))


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
    head = shebang(str(env / "bin" / "python"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.venvd")
    tmp.write_bytes(b"\n".join(head + body))
    tmp.chmod(0o755)
    os.replace(tmp, dest)


def shebang(python: str) -> list[bytes]:
    """The lines uv starts a console script with, for *python*: ``#!<python>`` when the
    kernel takes it (127 bytes in all, no space), else a ``/bin/sh`` trampoline with the path
    in single quotes (so that pip's scripts and a clone's are written as uv writes them)."""
    if len(os.fsencode(python)) <= 124 and " " not in python:
        return [b"#!" + os.fsencode(python)]
    quoted = "'" + python.replace("'", "'\"'\"'") + "'"
    return [b"#!/bin/sh", b"'''exec' " + os.fsencode(quoted) + b' "$0" "$@"', b"' '''"]
