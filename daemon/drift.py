"""Drift: packages installed in an env that differ from what its last sync installed
(someone ran ``pip install`` by hand).

The env's own installer (pip, and setuptools on Pythons before 3.12, as ``python -m venv``
seeds them) is not part of any lock: it is never drift, and never counted as a change.

A sync ends by recording what it installed (``<env>/.venvd/installed.json``); drift compares the
env's ``*.dist-info`` folders with that record. Reading metadata from disk costs no process, but
a file per package (18 ms for 200): the record also keeps the names of the ``*.dist-info``
folders, which every install, upgrade or removal changes (each is named after its package and
version), and an env whose site-packages still lists those is as recorded without reading more.
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from venvd.daemon.engines.base import Counts

RECORD = Path(".venvd") / "installed.json"
#: The ``*.dist-info`` folders there when the record was made (see ``unchanged``).
STAMP = Path(".venvd") / "installed.stamp"
#: Each metadata folder of the env -> its package's name, version and the names its
#: ``Requires-Dist`` entries name (see ``record`` and ``graph``).
FOLDERS = Path(".venvd") / "installed.folders.json"
#: The packages a virtualenv is seeded with; a user may upgrade them freely.
SEEDS = frozenset({"pip", "setuptools", "wheel"})
#: A ``Requires-Dist`` entry: its name, ``[`` when it asks for extras or ``@`` for a URL, and
#: its marker.
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*([\[@])?[^;]*;?(.*)", re.S)
_OWN_EXTRA = re.compile(r"(?!.*\bor\b).*\bextra\s*==", re.S)
#: A metadata folder -> ``[name, version, required names, those outside its own extras,
#: those asked for with extras]`` (see ``FOLDERS`` and ``graph``).
Folders = dict[str, list[Any]]


def site_packages(env: Path) -> list[str]:
    return [str(p) for p in sorted(env.glob("lib/python*/site-packages"))]


def installed(env: Path) -> dict[str, str]:
    """Normalised distribution name -> version, for everything in *env*'s site-packages
    but the seeds."""
    return _packages(_scan(env))


def _scan(env: Path, known: Optional[Folders] = None) -> Folders:
    """Each metadata folder of *env*'s site-packages (``<python>/<folder>``) -> its package's
    normalised name, version and required names. A ``.dist-info`` folder *known* (that of
    the state a clone was made from) is not read again: its name holds the package's name
    and version, and a release's metadata does not change."""
    known = known or {}
    found: Folders = {}
    for site in site_packages(env):
        try:
            names = sorted(os.listdir(site))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            key = f"{os.path.basename(os.path.dirname(site))}/{folder}"
            if key in known and folder.endswith(".dist-info") and len(known[key]) == 5:
                found[key] = known[key]  # named with the version
                continue
            meta = metadata.Distribution.at(os.path.join(site, folder)).metadata
            name = meta["Name"] if meta else None
            if name:
                found[key] = [normalise(name), meta["Version"] or "",
                              *_requires(meta.get_all("Requires-Dist") or [])]
    return found


def _requires(entries: list[str]) -> list[list[str]]:
    """The names *entries* (``Requires-Dist`` values) name: all of them, those outside the
    package's own extras, and those asked for with extras of theirs."""
    wants, base, asks = set(), set(), set()
    for name, kind, own_extra in requirements(entries):
        wants.add(name)
        if not own_extra:
            base.add(name)
        if kind == "[":
            asks.add(name)
    return [sorted(wants), sorted(base), sorted(asks)]


def requirements(entries: list[str]) -> list[tuple[str, str, bool]]:
    """Each of *entries* (``Requires-Dist`` values) as its normalised name, ``[`` when it asks
    for extras of that package or ``@`` for a URL (else ``""``), and whether it holds only
    with one of the package's own extras (``extra == "test"``, maybe with ``and``: then only
    someone who asks for that extra of the package reads it)."""
    found = []
    for entry in entries:
        match = _REQUIREMENT.match(entry)
        if match is not None:
            found.append((normalise(match.group(1)), match.group(2) or "",
                          _OWN_EXTRA.match(match.group(3)) is not None))
    return found


def _packages(folders: Folders) -> dict[str, str]:
    return {entry[0]: entry[1] for entry in folders.values() if entry[0] not in SEEDS}


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def record(env: Path, base: Optional[Path] = None) -> dict[str, str]:
    """Remember what the sync installed (called once the env is complete); returns it.
    *base*: the state *env* was cloned from (its packages still there are not read again)."""
    path = env / RECORD
    path.parent.mkdir(exist_ok=True)
    names = stamp(env)  # before reading: a change meanwhile then shows as one
    folders = _scan(env, _folders(base) if base is not None else None)
    found = _packages(folders)
    (env / FOLDERS).write_text(json.dumps(folders, sort_keys=True) + "\n")
    path.write_text(json.dumps(found, sort_keys=True, indent=0) + "\n")
    (env / STAMP).write_text(names)
    return found


def _folders(env: Path) -> Optional[Folders]:
    """What ``record`` noted of *env*'s metadata folders (``None``: nothing usable; an entry
    of an older record has only the name and version, or the required names in one list)."""
    try:
        found = json.loads((env / FOLDERS).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not all(
            isinstance(v, list) and len(v) >= 2 and isinstance(v[0], str)
            and isinstance(v[1], str) and all(
                isinstance(names, list) and all(isinstance(n, str) for n in names)
                for names in v[2:]) for v in found.values()):
        return None
    return found


def graph(env: Path) -> Optional[dict[str, tuple[str, list[str]]]]:
    """Each package installed in *env*, seeds included -> its version and the names its
    requirements name, as its last sync recorded them: under any marker, and those of its
    own extras only when some package asks for an extra of it (with exact pins, nobody else
    can). ``None`` when that record is missing or old, or the env changed since."""
    folders = _folders(env)
    if folders is None or not unchanged(env) or any(len(v) != 5 for v in folders.values()):
        return None
    asked = {name for v in folders.values() for name in v[4]}
    return {v[0]: (v[1], v[2] if v[0] in asked else v[3]) for v in folders.values()}


def stamp(env: Path) -> str:
    """The ``*.dist-info`` folders of *env*'s site-packages (one ``listdir`` each): their
    names carry each installed package's name and version."""
    found = []
    for folder in site_packages(env):
        found.append(folder)
        found += sorted(n for n in os.listdir(folder) if n.endswith(".dist-info"))
    return "\n".join(found) + "\n"


def unchanged(env: Path) -> bool:
    """Whether *env*'s site-packages folders are as ``record`` left them: nothing installed,
    upgraded or removed since (without reading a package's metadata)."""
    try:
        return (env / STAMP).read_text() == stamp(env)
    except OSError:
        return False


def current(env: Path) -> dict[str, str]:
    """What *env* has installed (as ``installed``): its record while nothing changed."""
    return recorded(env) if (env / RECORD).is_file() and unchanged(env) else installed(env)


def recorded(env: Path) -> dict[str, str]:
    """What the last sync of *env* installed (empty when never recorded)."""
    try:
        found = json.loads((env / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items() if k not in SEEDS}


def changes(before: dict[str, str], after: dict[str, str]) -> Counts:
    """Packages added, removed and changed between two installed sets."""
    return Counts(added=len(after.keys() - before.keys()),
                  removed=len(before.keys() - after.keys()),
                  changed=sum(1 for n in after.keys() & before.keys() if after[n] != before[n]))


def drift(env: Path) -> list[str]:
    """One line per difference: ``+ name 1.0`` extra, ``- name 1.0`` missing,
    ``~ name 1.0 -> 2.0`` changed. Empty when the env is as synced (or was never recorded)."""
    if not (env / RECORD).is_file() or unchanged(env):
        return []
    expected = recorded(env)
    now = installed(env)
    lines = []
    for name in sorted(set(expected) | set(now)):
        want, have = expected.get(name), now.get(name)
        if want == have:
            continue
        if want is None:
            lines.append(f"+ {name} {have} (not in the lock)")
        elif have is None:
            lines.append(f"- {name} {want} (missing)")
        else:
            lines.append(f"~ {name} {have} (lock: {want})")
    return lines
