"""Drift is read from the packages' metadata only when the env's site-packages folders changed
since the sync recorded them. Real uv, offline, from wheels the test builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from venvd.daemon import drift

from support.wheels import build_wheel

UV = str(Path(sys.executable).with_name("uv"))


def uv(*args: str, cwd: Path) -> None:
    env = dict(os.environ, UV_CACHE_DIR=str(cwd / "cache"), UV_OFFLINE="1",
               UV_PYTHON_DOWNLOADS="never")
    subprocess.run([UV, *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=300)


def test_an_env_as_recorded_is_not_read_again_and_any_install_is_seen(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in (("alpha", "1.0"), ("alpha", "2.0"), ("beta", "1.0")):
        build_wheel(wheels, name, version)
    env = tmp_path / "env"
    uv("venv", "--quiet", "--python", sys.executable, str(env), cwd=tmp_path)
    python = str(env / "bin" / "python")

    def install(*specs: str) -> None:
        uv("pip", "install", "--quiet", "--python", python, "--no-index", "--find-links",
           str(wheels), *specs, cwd=tmp_path)

    install("alpha==1.0")
    assert drift.record(env) == {"alpha": "1.0"}
    assert drift.unchanged(env) and drift.drift(env) == []
    # as recorded, nothing more is read: a METADATA edited in place (no install does that)
    # is not seen, and current() is the record
    metadata = next(env.glob("lib/python*/site-packages/alpha-1.0.dist-info/METADATA"))
    metadata.write_text(metadata.read_text().replace("Version: 1.0", "Version: 9.9"))
    assert drift.drift(env) == [] and drift.current(env) == {"alpha": "1.0"}
    metadata.write_text(metadata.read_text().replace("Version: 9.9", "Version: 1.0"))
    for change, expected in ((("beta==1.0",), ["+ beta 1.0 (not in the lock)"]),
                             (("alpha==2.0",), ["~ alpha 2.0 (lock: 1.0)",
                                                "+ beta 1.0 (not in the lock)"])):
        install(*change)
        assert not drift.unchanged(env)
        assert drift.drift(env) == expected
    uv("pip", "uninstall", "--quiet", "--python", python, "alpha", "beta", cwd=tmp_path)
    assert drift.drift(env) == ["- alpha 1.0 (missing)"]
    assert drift.current(env) == {}
    # an env recorded before the stamp existed is read as before
    drift.record(env)
    (env / drift.STAMP).unlink()
    install("beta==1.0")
    assert drift.drift(env) == ["+ beta 1.0 (not in the lock)"]
