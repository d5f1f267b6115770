"""A minimal in-tree PEP 517/660 build backend, so editable installs build offline.

Projects under test copy this file in and name it with ``backend-path``; it builds a wheel
whose ``.pth`` file points at the project folder, as setuptools' editable wheels do.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile

try:
    import tomllib
except ImportError:  # pragma: no cover - Python below 3.11
    tomllib = None


def _project():
    with open("pyproject.toml", "rb") as f:
        data = tomllib.load(f) if tomllib else {}
    return data.get("project", {"name": "app", "version": "0"})


def _wheel(directory, files):
    project = _project()
    name, version = project["name"].replace("-", "_"), project["version"]
    dist = f"{name}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f"Requires-Dist: {r}; extra == '{extra}'" for r in reqs]
    files = {**files, f"{dist}/METADATA": "\n".join(meta) + "\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    filename = f"{name}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, filename), "w") as zf:
        for arc, text in files.items():
            data = text.encode()
            zf.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arc},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = _project()["name"].replace("-", "_")
    return _wheel(wheel_directory, {f"_{name}_editable.pth": os.getcwd() + "\n"})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return build_editable(wheel_directory, config_settings, metadata_directory)
