"""Build small, real wheels for offline installs (``--no-index --find-links``)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel whose module ``<name>`` knows its own version."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(f"Requires-Dist: {r}" for r in requires),
        "",
    ])
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: venvd-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    return write_wheel(folder / f"{module}-{version}-py3-none-any.whl", dist_info, files)


def write_wheel(path: Path, dist_info: str, files: dict[str, str]) -> Path:
    """*files* (archive name -> text) zipped at *path*, with the ``RECORD`` of their hashes."""
    record_lines = []
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, text in files.items():
            data = text.encode()
            zf.writestr(arcname, data)
            record_lines.append(f"{arcname},{_record_hash(data)},{len(data)}")
        record_lines.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record_lines) + "\n")
    return path


#: The packages the tests install: name, version, requirements.
CATALOGUE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("alpha", "1.0", ()),
    ("alpha", "2.0", ()),
    ("beta", "1.0", ("alpha>=1.0",)),
    ("gamma", "1.0", ()),
)


def build_wheelhouse(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, version, requires in CATALOGUE:
        build_wheel(folder, name, version, requires)
    return folder


def build_simple_index(wheelhouse: Path, root: Path) -> Path:
    """A PEP 503 "simple" index over *wheelhouse* in *root*, for tools with no find-links
    support (Poetry); serve *root* over HTTP."""
    simple = root / "simple"
    (root / "wheels").mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheelhouse.glob("*.whl")):
        (root / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
        project = simple / wheel.name.split("-")[0].replace("_", "-")
        project.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        with (project / "index.html").open("a") as f:
            f.write(f'<a href="/wheels/{wheel.name}#sha256={digest}">{wheel.name}</a><br>\n')
    return root
