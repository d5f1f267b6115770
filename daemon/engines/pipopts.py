"""The index and build options that pip-style requirement files carry, and the pip environment
variables that uv ignores, turned into what uv takes.

uv honours ``--index-url``, ``--extra-index-url``, ``--find-links``, ``--no-index`` and the
binary options in a requirement file, but it drops all of them from the pin set ``uv pip
compile`` writes (``--emit-find-links`` keeps find-links only as written, relative to a file the
pin set no longer sits beside, and ``--no-index`` is never emitted), it ignores ``--pre`` and
``--trusted-host`` in files, and it ignores every option in a ``-c`` constraints file, where pip
applies them. So venvd reads the options itself, from every file at any depth, and hands them on:
as option lines at the top of the pin set (still file options, so the user's ``UV_*`` variables
and uv config keep the precedence they have over a requirement file), and as command-line
flags for the two uv ignores in files.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from venvd.daemon import projectfile

#: Options taking a value, by every spelling pip accepts, to their long name.
_VALUED = {
    "-i": "--index-url", "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--only-binary": "--only-binary", "--no-binary": "--no-binary",
}
_FLAGS = ("--no-index", "--pre")
#: pip's comment rule: ``#`` at the start of a line or after whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")


@dataclass(frozen=True)
class FileOptions:
    """What the requirement files ask of the installer besides the requirements."""

    #: option lines for the top of a pin set, paths made absolute, each once, in file order
    lines: tuple[str, ...] = ()
    pre: bool = False
    trusted_hosts: tuple[str, ...] = ()

    def resolve_args(self) -> list[str]:
        """Flags for ``uv pip compile`` (``--pre`` matters only while resolving)."""
        return (["--prerelease", "allow"] if self.pre else []) + self.install_args()

    def install_args(self) -> list[str]:
        """Flags for ``uv pip sync``."""
        return [arg for host in self.trusted_hosts for arg in ("--allow-insecure-host", host)]

    def header(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def logical_lines(text: str) -> Iterator[str]:
    """The lines pip reads: backslash continuations joined, comments removed."""
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield line
    if pending and _COMMENT.sub("", pending).strip():
        yield _COMMENT.sub("", pending).strip()


def options_of(line: str) -> list[tuple[str, str]]:
    """The index/build options on one option line, as (long name, value or "")."""
    if not line.startswith("-"):
        return []  # a requirement (its own ``--hash`` options are not ours)
    try:
        tokens = shlex.split(line)
    except ValueError:
        return []
    found = []
    i = 0
    while i < len(tokens):
        name, eq, value = tokens[i].partition("=")
        if name in _FLAGS:
            found.append((name, ""))
        elif name in _VALUED:
            if not eq:
                i += 1
                value = tokens[i] if i < len(tokens) else ""
            found.append((_VALUED[name], value))
        elif tokens[i][:2] in ("-i", "-f") and len(tokens[i]) > 2:  # -fDIR, as optparse takes it
            found.append((_VALUED[tokens[i][:2]], tokens[i][2:]))
        i += 1
    return found


def find_links_location(value: str, named_in: Path) -> str:
    """A ``--find-links`` folder relative to the file naming it, as pip and uv read it, made
    absolute so the pin set works from wherever it is stored; URLs and ``${VAR}`` stay as
    written (uv expands variables itself)."""
    if "://" in value or "$" in value:
        return value
    if os.path.isabs(value):
        return written(value)
    candidate = os.path.normpath(os.path.join(named_in.parent, value))
    return written(candidate) if os.path.exists(candidate) else value


def written(path: str) -> str:
    """*path* as a requirement file can hold it: a ``file:`` URL where it has whitespace
    (uv reads an option's value and a requirement up to the first blank)."""
    return Path(path).as_uri() if any(c.isspace() for c in path) else path


def collect(files: Iterable[Path]) -> FileOptions:
    """The options of *files* (every requirement and constraints file, includes first-seen
    order), each once."""
    lines: dict[str, None] = {}
    hosts: dict[str, None] = {}
    pre = False
    for path in files:
        try:  # bounded; a FIFO or device raises UnsafeFile naming it
            text = projectfile.read_project_text(path, projectfile.MAX_LOCKFILE)
        except FileNotFoundError:
            continue
        for line in logical_lines(text):
            for name, value in options_of(line):
                if name == "--pre":
                    pre = True
                elif name == "--trusted-host":
                    hosts[value] = None
                elif name == "--no-index":
                    lines[name] = None
                elif value:
                    if name == "--find-links":
                        value = find_links_location(value, path)
                    lines[f"{name} {value}"] = None
    return FileOptions(tuple(lines), pre, tuple(h for h in hosts if h))


#: pip's variables with a uv equivalent: pip's name, uv's, uv's other spelling, uv's separator
_PIP_VARIABLES = (
    ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", " "),
    ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", " "),
    ("PIP_FIND_LINKS", "UV_FIND_LINKS", "UV_FIND_LINKS", ","),
    ("PIP_TRUSTED_HOST", "UV_INSECURE_HOST", "UV_INSECURE_HOST", " "),
)


def uv_environment(environ: Mapping[str, str], files: FileOptions) -> dict[str, str]:
    """The ``UV_*`` variables standing for the ``PIP_*`` ones set in *environ* (uv ignores
    pip's), for those uv has no value of its own for: a requirements file synced by venvd
    sees the indexes ``pip install -r`` would.

    pip lets a file's ``--index-url``/``--no-index`` replace the variables' indexes, where
    uv lets its variables win over a file: such a variable is left out."""
    replaced = {"PIP_INDEX_URL"} if any(
        line.startswith("--index-url ") for line in files.lines) else set()
    if "--no-index" in files.lines:
        replaced |= {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"}
    extra = {}
    for pip_name, uv_name, uv_other, separator in _PIP_VARIABLES:
        value = environ.get(pip_name, "").split()
        if pip_name in replaced:
            continue
        if value and not environ.get(uv_name) and not environ.get(uv_other):
            extra[uv_name] = separator.join(value)
    if environ.get("PIP_KEYRING_PROVIDER") == "subprocess" and not environ.get(
            "UV_KEYRING_PROVIDER"):
        extra["UV_KEYRING_PROVIDER"] = "subprocess"  # the one provider both tools have
    return extra


#: A requirement written as a relative path, as ``uv pip compile`` emits it (``-e ./lib``,
#: ``./wheels/x.whl``): relative to the folder uv ran in.
_RELATIVE = re.compile(r"^(-e\s+|--editable[=\s]+)?(\.\.?(?:/\S*)?)(?=\s|$)")


def absolute_paths(pins: str, base: Path) -> str:
    """*pins* with each relative-path requirement made absolute against *base*, so the pin
    set installs the same from wherever it is stored."""
    out = []
    for line in pins.splitlines():
        match = _RELATIVE.match(line)
        if match:
            path = written(os.path.normpath(os.path.join(base, match.group(2))))
            line = (match.group(1) or "") + path + line[match.end():]
        out.append(line)
    return "".join(line + "\n" for line in out)
