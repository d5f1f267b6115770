"""The dependency pins cover the behaviour venvd relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from venvd.daemon.config import read_toml

ROOT = Path(__file__).resolve().parents[2]
#: The last platformdirs that used an XDG_RUNTIME_DIR of any owner and mode (4.12.0 refuses
#: one not owned by the user or not 0700; 4.14.0 closed a bypass of that by a trailing "/").
WITHOUT_THE_CHECK = ("4.2.2", "4.11.15", "4.13.7")


def _requirement(name: str) -> Requirement:
    data = read_toml(ROOT / "pyproject.toml")
    found = [Requirement(r) for r in data["project"]["dependencies"]]
    return next(r for r in found if r.name == name)


def test_platformdirs_pin_excludes_releases_without_the_runtime_dir_check() -> None:
    pin = _requirement("platformdirs")
    for old in WITHOUT_THE_CHECK:
        assert old not in pin.specifier, f"{pin} allows platformdirs {old}"


def test_the_installed_platformdirs_refuses_a_shared_runtime_dir(tmp_path: Path) -> None:
    """What the pin buys: a runtime folder open to others is not used for the socket."""
    shared = tmp_path / "runtime"
    shared.mkdir()
    shared.chmod(0o777)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(shared))
    code = "import platformdirs; print(platformdirs.user_runtime_dir('venvd'))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                         capture_output=True, text=True, check=False)
    assert not out.stdout.startswith(str(shared)), out
