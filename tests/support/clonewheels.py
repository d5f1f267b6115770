"""Wheels for the clone tests: console scripts, extras, versions to go up and down, and each
engine's way of writing a project that asks for a given set of them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from support.wheels import write_wheel

UV = str(Path(sys.executable).with_name("uv"))

#: name, version, requirements, whether it has a console script, extras
CATALOGUE: tuple[tuple[str, str, tuple[str, ...], bool, dict[str, tuple[str, ...]]], ...] = (
    ("cl-tool", "1.0", (), True, {}),
    ("cl-tool", "2.0", (), True, {}),
    ("cl-lib", "1.0", (), False, {}),
    ("cl-lib", "2.0", (), False, {}),
    ("cl-dep", "1.0", ("cl-lib>=1.0",), False, {}),
    ("cl-host", "1.0", (), False, {"fancy": ("cl-bonus",)}),
    ("cl-bonus", "1.0", (), False, {}),
    ("cl-fan", "1.0", ("cl-host[fancy]",), False, {}),  # asks for another's extra
    ("cl-new", "1.0", ("cl-lib>=2.0",), False, {}),
)

#: One requirement: name, version, extra ("" for none).
Req = tuple[str, str, str]

#: The edits every engine goes through: add, upgrade, remove, downgrade, an extra added and
#: taken away (each set a new lock state: none is switched back to).
STEPS: tuple[tuple[Req, ...], ...] = (
    (("cl-tool", "1.0", ""), ("cl-lib", "1.0", "")),
    (("cl-tool", "2.0", ""), ("cl-lib", "1.0", ""), ("cl-dep", "1.0", "")),
    (("cl-tool", "1.0", ""), ("cl-lib", "2.0", "")),
    (("cl-tool", "1.0", ""), ("cl-lib", "2.0", ""), ("cl-host", "1.0", "fancy")),
    (("cl-tool", "1.0", ""), ("cl-lib", "2.0", ""), ("cl-host", "1.0", "")),
)


def build_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = (),
                script: bool = False, extras: dict[str, tuple[str, ...]] | None = None,
                python: str = "") -> Path:
    """A pure-Python wheel; with *script*, a console script named *name* that prints the
    package's version and the interpreter running it; *python*: its ``Requires-Python``."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            *(f"Requires-Dist: {r}" for r in requires),
            *([f"Requires-Python: {python}"] if python else [])]
    for extra, wanted in (extras or {}).items():
        meta += [f"Provides-Extra: {extra}",
                 *(f'Requires-Dist: {r}; extra == "{extra}"' for r in wanted)]
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n\n\ndef main() -> None:\n"
                                 f"    import sys\n    print({name!r}, __version__, "
                                 "sys.executable)\n",
        f"{module}/data.txt": f"{name} {version}\n",
        f"{info}/METADATA": "\n".join(meta) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: venvd-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    if script:
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name} = {module}:main\n"
    return write_wheel(folder / f"{module}-{version}-py3-none-any.whl", info, files)


def build_clone_wheels(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, version, requires, script, extras in CATALOGUE:
        build_wheel(folder, name, version, requires, script, extras)
    build_wheel(folder, "cl-future", "1.0", python=">=4")  # for no Python there is
    return folder


def expected(step: tuple[Req, ...]) -> dict[str, str]:
    """What an env of *step* holds (name -> version)."""
    found = {name: version for name, version, _ in step}
    if any(extra == "fancy" for *_, extra in step):
        found["cl-bonus"] = "1.0"
    return found


def requirement(req: Req) -> str:
    name, version, extra = req
    return f"{name}[{extra}]=={version}" if extra else f"{name}=={version}"


def pyproject(name: str, step: tuple[Req, ...], tail: str = "") -> str:
    deps = ", ".join(json.dumps(requirement(r)) for r in step)
    return (f'[project]\nname = "{name}"\nversion = "0.1"\nrequires-python = ">=3.9"\n'
            f"dependencies = [{deps}]\n{tail}")


def pipfile_lock(wheels: Path, step: tuple[Req, ...]) -> str:
    """A Pipfile.lock of *step*, every entry with its wheel's hash (as pipenv writes it)."""
    default = {}
    for name, version in expected(step).items():
        wheel = wheels / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        entry: dict[str, object] = {
            "version": f"=={version}",
            "hashes": ["sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()]}
        extra = next((e for n, _, e in step if n == name and e), "")
        if extra:
            entry["extras"] = [extra]
        default[name] = entry
    return json.dumps({"_meta": {"sources": []}, "default": default, "develop": {}})


def run(argv: list[str], cwd: Path) -> None:
    """A tool run in the project, with the test's (offline) environment."""
    done = subprocess.run(argv, cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
