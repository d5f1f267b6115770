"""Whether a file of exact pins is its own compiled pin set, told from what changed since the
state its new env starts as a clone of (the origin), without compiling every pin.

A compile of exact pins gives the pins themselves when every requirement it reads (each pin's,
under the interpreter's markers, with the extras asked for on the way) is met by a pin, and
every pin's ``Requires-Python`` by the interpreter. The origin's packages were such a set: a
compile's, or one this check passed. So only what a change can reach needs a look: the pins
that changed (a version, a package added) and, transitively, every package whose requirements
name a changed or removed one (under any marker, as the origin's record keeps them; one of
the package's own extras only when some package asks for an extra of it).
The rest asks, under the same markers and extras, for what it asked in the origin, where it was
met.

- When no other package names a change (a new version of a package nothing requires: the
  common edit), uv's own check of the env after the early install stands for the compile:
  ``uv pip sync --strict`` finds each package's requirements installed at versions they
  accept and its ``Requires-Python`` met. It does not read the requirements of an extra, so a
  changed package that asks for another's extra (or names a URL) is compiled instead.
- Otherwise the part a change reaches is compiled from uv's cache, with all the pins as
  constraints: when it compiles to its own pins, so does the whole.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Optional

from venvd.daemon import drift
from venvd.daemon.engines import pipopts
from venvd.daemon.engines.base import Job
from venvd.daemon.errors import CommandFailed

PART = "requirements.part.txt"
PART_PINS = "requirements.part.lock.txt"


@dataclass(frozen=True)
class Change:
    #: The pins whose version differs from the origin's, or that it did not have.
    changed: frozenset[str]
    #: Those, and every pin whose requirements name a changed or removed package.
    reached: frozenset[str]
    #: The pins this is the change to.
    pins: tuple[tuple[str, str], ...]

    @property
    def alone(self) -> bool:
        """Whether no other package names a change (uv's check then decides)."""
        return self.reached == self.changed


def change(origin: Optional[Path], pins: dict[str, str]) -> Optional[Change]:
    """What changed from *origin* (a complete state) to *pins*; ``None`` when the origin's
    record of what its packages require is missing, old, or no longer true."""
    graph = drift.graph(origin) if origin is not None else None
    if graph is None:
        return None
    changed = {n for n, v in pins.items() if graph.get(n, ("",))[0] != v}
    users: dict[str, set[str]] = {}
    for name, (_, wants) in graph.items():
        for wanted in wants:
            users.setdefault(wanted, set()).add(name)
    reached, todo = set(changed), [*changed, *(graph.keys() - pins.keys())]
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in reached:
                reached.add(user)
                todo.append(user)
    # a removed package asks for nothing any more
    return Change(frozenset(changed), frozenset(reached & pins.keys()), tuple(pins.items()))


def compile_part(job: Job, uv_env: dict[str, str], file: Path, pins: dict[str, str],
                 found: Change) -> Optional[bool]:
    """Whether the part of *pins* a change reaches compiles, from uv's cache and with every
    pin of *file* as a constraint, to its own pins (the whole then does); ``None`` when uv's
    cache lacks some of it (a compile of the whole from the cache would fail the same way)."""
    if found.reached:
        job.scratch.mkdir(exist_ok=True)
        asked = job.scratch / PART
        asked.write_text("".join(f"{n}=={pins[n]}\n" for n in sorted(found.reached)))
        try:
            job.run([job.uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                     "--offline", "--python", job.python, "--output-file",
                     str(job.scratch / PART_PINS), str(asked), "-c", str(file)],
                    extra_env=uv_env)
        except CommandFailed as exc:  # a conflict, or what uv's cache lacks
            return None if _UNCACHED in exc.output else False
        compiled = plain_pins((job.scratch / PART_PINS).read_text(encoding="utf-8"))
        if compiled is None or any(pins.get(n) != v for n, v in compiled.items()):
            return False
    job.output.append(f"venvd: compiled the {len(found.reached)} of {len(pins)} pins that "
                      "changed or name a change: the file is its own compiled pin set")
    return True


def check_stands(job: Job, found: Change) -> bool:
    """Whether uv's check of the env after the early install of the pins (the output of
    ``uv pip sync --strict``) stands for their compile: it found nothing amiss, and no
    changed package asks for another's extra or names a URL (read from the metadata just
    installed)."""
    if job.early != dict(found.pins) or _DIAGNOSTIC.search(job.early_output):
        return False
    seen: set[str] = set()
    for site in drift.site_packages(job.env):
        for folder in os.listdir(site):
            name = drift.normalise(folder.split("-", 1)[0])  # "-" in a name is written "_"
            if folder.endswith(".egg-info") and name in found.changed:
                return False
            if not folder.endswith(".dist-info") or name not in found.changed:
                continue
            try:
                text = Path(site, folder, "METADATA").read_text(encoding="utf-8",
                                                                errors="replace")
            except OSError:
                return False
            if any(kind and not own_extra for _, kind, own_extra in drift.requirements(
                    HeaderParser().parsestr(text).get_all("Requires-Dist") or [])):
                return False  # another's extra, or a URL
            seen.add(name)
    if seen != found.changed:
        return False
    job.output.append(f"venvd: uv's check of the env found the requirements of every pin met; "
                      f"no other package names the {len(found.changed)} changed: the file is "
                      "its own compiled pin set")
    return True


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


_PIN = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*"
                  r"([A-Za-z0-9][A-Za-z0-9.+!_-]*)")
#: uv's words for a compile from its cache (``--offline``) that needed the index.
_UNCACHED = "the network was disabled"
#: uv's words for what its check of an env (``--strict``) found amiss.
_DIAGNOSTIC = re.compile(r"The package `")
