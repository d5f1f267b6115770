"""pip for a new env, made ready while the engine makes the env (``uv sync`` creates it: pip
cannot be linked in before), then moved in with a rename per top-level name: the thousand links
of ``seeding.link_seeds`` are no longer part of the wait between the engine's end and the env
being active.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Optional

from venvd.daemon.engines.base import Job
from venvd.daemon.seeding import (
    has_pip,
    installed,
    link_seeds,
    mark_seeded,
    seed,
    seed_path,
    site_dirs,
)


def stage(job: Job, version: str, envs: Optional[Path]) -> Optional[Path]:
    """Link the seeds of *job*'s interpreter (*version*, as its ``pyvenv.cfg`` will say) into a
    folder laid out as *job.env* will be, before that env exists; ``None`` when the
    interpreter's seed folder is not made yet (``seeding.seed`` makes it, from the env) or the
    linking failed."""
    if envs is None:
        return None
    reference = seed_path(job.python, version, envs)
    sites = site_dirs(reference)
    if not has_pip(reference) or len(sites) != 1:
        return None
    staging = job.scratch / "seeds"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        (staging / sites[0].relative_to(reference)).mkdir(parents=True)
        link_seeds(reference, staging, named=job.env)
    except (OSError, ValueError, csv.Error):  # (a RECORD venvd cannot read: linked as before)
        shutil.rmtree(staging, ignore_errors=True)
        return None
    return staging


def seed_staged(job: Job, envs: Optional[Path], staging: Optional[Path]) -> bool:
    """Give *job.env* its pip from *staging* (``stage``'s), or as ``seeding.seed`` does when
    there is none or it does not fit; whether pip is there."""
    if staging is not None:
        try:
            place(staging, job.env)
        except (OSError, ValueError, csv.Error) as exc:
            job.output.append(f"venvd: could not move pip in from {staging} ({exc}); "
                              "linking it")
        else:
            mark_seeded(job.env)
            return True
    return seed(job, envs)


def place(staging: Path, env: Path) -> None:
    """Move the packages staged in *staging* into *env*: per package its top-level names, its
    scripts, then its ``.dist-info`` (a package is seen as installed once all of its files are
    there). A package *env* has already (the lock's own setuptools) stays as the engine
    installed it."""
    staged, here = site_dirs(staging), site_dirs(env)
    if len(staged) != 1 or [s.relative_to(env) for s in here] != [
            staged[0].relative_to(staging)]:
        raise OSError(f"{staging} and {env} differ in their site-packages")
    source, site = staged[0], here[0]
    for info in sorted(source.glob("*.dist-info")):
        if installed(str(site), info.name):
            continue
        tops: set[str] = set()
        scripts: list[Path] = []
        with open(info / "RECORD", encoding="utf-8", newline="") as record:
            for row in csv.reader(record):
                name = row[0] if row else ""
                if name.startswith(".."):  # a script, in bin
                    scripts.append(Path(os.path.normpath(source / name)))
                elif name and not name.startswith(info.name + "/"):
                    tops.add(name.split("/")[0])
        for top in sorted(tops):
            _move(source / top, site / top)
        for script in scripts:
            _move(script, env / script.relative_to(staging))
        _move(info, site / info.name)


def _move(source: Path, dest: Path) -> None:
    """*source* to *dest* in one rename; into a folder *dest* that exists, file by file (a
    file there is replaced, as ``link_seeds`` replaces it)."""
    if not source.exists():
        return  # listed twice (a folder of two RECORD entries), or never staged
    if not dest.is_dir() or not source.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, dest)
        return
    for entry in source.iterdir():
        _move(entry, dest / entry.name)
