"""A project folder whose name is not UTF-8 (a Latin-1 name from an old archive): no "bad
request" at each prompt, its name shown escaped, and a sync uv cannot run (uv takes no
argument that is not UTF-8) is a failure that says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Sandbox


def _export(box: Sandbox, folder: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {k.encode(): v.encode() for k, v in box.env.items()}
    env[b"PWD"] = folder
    return subprocess.run([str(box.root / "bin" / "venvd"), "export", "bash"], cwd=folder,
                          env=env, capture_output=True, timeout=60)


def test_a_project_with_a_name_that_is_not_utf8(daemon: Sandbox) -> None:
    folder = os.fsencode(daemon.root / "projects") + b"/caf\xe9"
    os.makedirs(folder)
    with open(folder + b"/requirements.txt", "w") as f:
        f.write("")
    untrusted = _export(daemon, folder)
    assert untrusted.returncode == 0, untrusted.stderr
    assert b"bad request" not in untrusted.stderr, untrusted.stderr
    assert b"caf\\xe9 is not allowed" in untrusted.stderr, untrusted.stderr

    allowed = subprocess.run([str(daemon.root / "bin" / "venvd"), "allow", folder],
                             env=daemon.env, capture_output=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
    project = Path(os.fsdecode(folder))
    # uv takes no argument that is not UTF-8: the sync fails, saying so, in status and at
    # the prompt (no internal error, nothing unreadable)
    status = daemon.wait_state(project, ("failed",))
    assert "invalid UTF-8" in status["last_sync"]["error"], status
    shown = _export(daemon, folder)
    assert shown.returncode == 0 and b"bad request" not in shown.stderr, shown.stderr
    assert b"caf\\xe9" in daemon.venvd("status", str(project)).stdout.encode()
