"""``Pipfile.lock``: its pins and hashes turned into a requirements file and synced exactly with
uv. The ``develop`` section is included when the project config names the ``dev`` group, as
``pipenv install --dev`` does.

Entries are taken as pipenv takes them: one whose markers exclude the target interpreter is
skipped before its version is read (pipenv writes odd versions for such entries, e.g.
``==>=0.4``), and every entry that has hashes is checked against them, even when another
entry (a path or git source) has none. The lock's sources are its indexes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from venvd.daemon import projectfile
from venvd.daemon.config import ProjectConfig
from venvd.daemon.engines import pipopts
from venvd.daemon.engines.base import Engine, Job
from venvd.daemon.errors import VenvdError

#: PEP 508's marker variables, as ``packaging.markers.default_environment`` computes them, read
#: from the target interpreter itself (any Python 3, no imports beyond the standard library).
_MARKER_PROBE = """\
import json, os, platform, sys
def fmt(v):
    s = '%d.%d.%d' % (v.major, v.minor, v.micro)
    return s + v.releaselevel[0] + str(v.serial) if v.releaselevel != 'final' else s
print(json.dumps({
    'implementation_name': sys.implementation.name,
    'implementation_version': fmt(sys.implementation.version),
    'os_name': os.name, 'platform_machine': platform.machine(),
    'platform_release': platform.release(), 'platform_system': platform.system(),
    'platform_version': platform.version(),
    'python_full_version': platform.python_version(),
    'platform_python_implementation': platform.python_implementation(),
    'python_version': '.'.join(platform.python_version_tuple()[:2]),
    'sys_platform': sys.platform}))
"""

Environment = Mapping[str, str]


def marker_environment(python: str, environ: Environment) -> dict[str, str]:
    """The marker variables of the interpreter *python* (the env being built, not venvd's)."""
    try:
        out = subprocess.run([python, "-I", "-S", "-c", _MARKER_PROBE], env=dict(environ),
                             capture_output=True, text=True, timeout=60, check=True).stdout
        found = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise VenvdError(f"cannot read the marker environment of {python}: {exc}") from None
    if not isinstance(found, dict):
        raise VenvdError(f"cannot read the marker environment of {python}")
    return {str(k): str(v) for k, v in found.items()}


def _wanted(section: str, name: str, spec: dict[str, Any],
            environment: Optional[Environment]) -> bool:
    """Whether the entry's markers (if any) hold for *environment* (None: let uv decide)."""
    markers = spec.get("markers")
    if not markers:
        return True
    try:
        marker = Marker(str(markers))
    except InvalidMarker as exc:
        raise VenvdError(f"Pipfile.lock: [{section}] {name}: bad markers {markers!r}: "
                         f"{exc}") from None
    return environment is None or marker.evaluate({**environment, "extra": ""})


def _line(section: str, name: str, spec: dict[str, Any]) -> str:
    extras = spec.get("extras") or []
    label = f"{name}[{','.join(extras)}]" if extras else name
    marker = f" ; {spec['markers']}" if spec.get("markers") else ""
    if "version" in spec:
        version = str(spec["version"])
        try:
            SpecifierSet(version)
        except InvalidSpecifier:
            raise VenvdError(f"Pipfile.lock: [{section}] {name}: version {version!r} is not a "
                             "valid version specifier") from None
        line = f"{label}{version}{marker}"
    elif "path" in spec:
        path = str(spec["path"])
        if not path.startswith(("/", ".")) and "://" not in path:
            path = "./" + path  # relative to the Pipfile; bare, uv could take it for a name
        line = f"{'-e ' if spec.get('editable') else ''}{path}"
    elif "git" in spec:
        ref = f"@{spec['ref']}" if spec.get("ref") else ""
        line = f"{label} @ git+{spec['git']}{ref}{marker}"
    elif "file" in spec:
        line = f"{label} @ {spec['file']}{marker}"
    else:
        raise VenvdError(f"Pipfile.lock: [{section}] cannot install {name!r}: no version, path "
                         "or url")
    # every hash is kept: uv checks those an entry has even where another entry has none
    return line + "".join(f" --hash={h}" for h in spec.get("hashes") or ())


def requirement_lines(lock: dict[str, Any], dev: bool,
                      environment: Optional[Environment] = None) -> list[str]:
    """One requirements line per locked package that applies to *environment* (the target's
    marker variables; None keeps every entry, its markers left to uv); raises VenvdError
    naming an entry it cannot use."""
    sections = ["default", "develop"] if dev else ["default"]
    lines: dict[str, None] = {}
    for section in sections:
        table = lock.get(section, {})
        if not isinstance(table, dict):
            raise VenvdError(f"Pipfile.lock: [{section}] is not a table")
        for name, spec in table.items():
            if isinstance(spec, dict) and _wanted(section, name, spec, environment):
                lines[_line(section, name, spec)] = None
    return list(lines)


#: The URLs pipenv replaces with ``PIPENV_PYPI_MIRROR``.
_PYPI = ("https://pypi.org/simple", "https://pypi.python.org/simple")


def source_options(lock: dict[str, Any], mirror: str = "") -> pipopts.FileOptions:
    """The lock's sources as index options: the first is the index, the rest extra ones; a
    source with ``verify_ssl = false`` is a trusted host, and PyPI is *mirror* when one is set
    (``PIPENV_PYPI_MIRROR``), as pipenv passes them to pip."""
    meta = lock.get("_meta")
    sources = meta.get("sources") if isinstance(meta, dict) else None
    urls = [s for s in sources or () if isinstance(s, dict) and isinstance(s.get("url"), str)]
    lines = [f"{'--index-url' if i == 0 else '--extra-index-url'} "
             f"{mirror if mirror and s['url'].rstrip('/') in _PYPI else s['url']}"
             for i, s in enumerate(urls)]
    hosts = [urlsplit(s["url"]).netloc.rpartition("@")[2] for s in urls
             if s.get("verify_ssl") is False]
    return pipopts.FileOptions(tuple(lines), False, tuple(h for h in hosts if h))


class Pipfile(Engine):
    name = "pipfile-lock"
    #: a Pipfile not locked yet makes a project too (it fails, saying there is no lock)
    markers = ("Pipfile.lock", "Pipfile")
    #: Every entry's hashes are checked as it is installed, and uv keeps a package already
    #: installed without a look at them: a clone could keep a file the lock no longer names.
    clone = "never"

    def inputs(self, project: Path, config: ProjectConfig) -> Optional[tuple[str, ...]]:
        if not projectfile.present(project / "Pipfile.lock"):
            return None
        return ("Pipfile.lock", "Pipfile") if (project / "Pipfile").is_file() else (
            "Pipfile.lock",)

    def install(self, job: Job) -> None:
        try:
            lock = json.loads(projectfile.read_project_file(job.project / "Pipfile.lock",
                                                            projectfile.MAX_LOCKFILE))
        except (OSError, ValueError) as exc:  # UnsafeFile (a FIFO, a device) passes as it is
            raise VenvdError(f"Pipfile.lock: cannot read it: {exc}") from None
        if not isinstance(lock, dict):
            raise VenvdError("Pipfile.lock: not a JSON object")
        environment = marker_environment(job.env_python, job.environ)
        lines = requirement_lines(lock, "dev" in job.config.groups, environment)
        options = source_options(lock, job.environ.get("PIPENV_PYPI_MIRROR", ""))
        pins = job.work / "Pipfile.lock.txt"
        # a path entry is relative to the project: made absolute, the set installs anywhere
        pins.write_text(options.header() + pipopts.absolute_paths("\n".join(lines), job.project),
                        encoding="utf-8")
        # hashes of every entry that has them are checked either way; all required only
        # when every entry has them (a path or git entry cannot)
        every = all(" --hash=" in line for line in lines)
        job.run(job.pip_sync("--require-hashes" if every else "--verify-hashes",
                             *options.install_args(), *job.python_args, str(pins)),
                extra_env=pipopts.uv_environment(job.environ, options))
