"""tcsh's no-process ``cd`` (venvd.shell.tcsh_fast), rule by rule: the script sourced by a
real tcsh over real files, each case one thing that must send it to the client (``_venvd_fok``
left 0, nothing changed) or let it act. The whole hook, in a pty with the daemon, is in
test_shells.py and test_path_scenarios.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from venvd.daemon.projects import MARKERS
from venvd.shell import tcsh, tcsh_fast
from venvd.shell.ready import READY_NAME

pytestmark = pytest.mark.skipif(shutil.which("tcsh") is None, reason="tcsh is not installed")
BASE_PATH = "/usr/bin:/bin"


class Setup:
    """A runtime folder with the script, a live daemon's pid, a project with a venv and its
    ready snippet."""

    def __init__(self, root: Path, pid: int) -> None:
        self.runtime = root / "run"
        self.runtime.mkdir(mode=0o700)
        self.script = self.runtime / "fast.csh"
        self.script.write_text(tcsh_fast.script([tcsh.quote(m) for m in MARKERS]))
        self.pid_file = self.runtime / "daemon.pid.csh"
        self.pid_file.write_text(f"set _venvd_dpid = {pid}\n")
        self.project = root / "proj"
        self.env = self.project / ".venv"
        (self.env / "bin").mkdir(parents=True)
        (self.env / "bin" / "python").write_text("#!/bin/sh\n")
        (self.env / "bin" / "python").chmod(0o755)
        (self.project / "requirements.txt").write_text("")
        self.outside = root / "out"
        self.outside.mkdir()
        ready = Path(f"{self.runtime}/ready{self.project}")
        ready.mkdir(parents=True)
        self.snippet = ready / f"{READY_NAME}.csh"
        self.snippet.write_text(tcsh.Tcsh().snippet((
            ("_venvd_r_env", str(self.env)), ("_venvd_r_prompt", "proj"),
            ("_venvd_r_blob", "QUJD"))))

    def run(self, cwd: Path, env: Optional[dict[str, str]] = None, before: str = "",
            again: Optional[Path] = None) -> tuple[str, dict[str, str]]:
        """Source the script in *cwd* (then, if *again*, cd there and source it once more);
        return ``_venvd_fok`` and the environment it left."""
        q = tcsh.quote
        steps = [f"set _venvd_pidf = {q(str(self.pid_file))}",
                 f"set _venvd_rdir = {q(str(self.runtime))}/ready",
                 "set _venvd_fs = '' _venvd_fe = '' _venvd_fp = ''",
                 "set _venvd_pe = '' _venvd_pb = '' _venvd_pa = ''", before,
                 f"cd {q(str(cwd))}", f"source {q(str(self.script))}"]
        if again is not None:
            steps += [f"cd {q(str(again))}", f"source {q(str(self.script))}"]
        steps += ['echo "@@fok=$_venvd_fok"', "/usr/bin/env"]
        out = subprocess.run(["tcsh", "-f", "-c", "\n".join(s for s in steps if s)],
                             env={"PATH": BASE_PATH, "HOME": "/nonexistent", **(env or {})},
                             capture_output=True, text=True, check=True, timeout=30)
        fok = out.stdout.split("@@fok=", 1)[1].split("\n", 1)[0]
        found = dict(ln.split("=", 1) for ln in out.stdout.split("@@fok=", 1)[1]
                     .splitlines()[1:] if "=" in ln)
        return fok, found


def remembered(setup: Setup, state: str) -> str:
    """What the client tells the hook of an activation it made (``Tcsh.remember``)."""
    return tcsh.Tcsh().remember((state, str(setup.env), "proj")).replace("\n", "; ")


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path, os.getpid())


def test_a_ready_project_is_activated_and_left_with_builtins(setup: Setup) -> None:
    fok, env = setup.run(setup.project)
    assert fok == "1"
    assert env["VIRTUAL_ENV"] == str(setup.env) and env["VIRTUAL_ENV_PROMPT"] == "proj"
    assert env["PATH"] == f"{setup.env}/bin:{BASE_PATH}"
    assert env["VENVD_STATE"].endswith(".QUJD")
    fok, env = setup.run(setup.project, again=setup.outside)  # in, then out
    assert fok == "1" and "VIRTUAL_ENV" not in env and "VENVD_STATE" not in env
    assert env["PATH"] == BASE_PATH


def test_an_activation_the_client_made_is_reverted_exactly(setup: Setup) -> None:
    """Remembered by the client (no PATH of the script's to put back): PATH is rebuilt from
    ``path`` without the env's bin, the user's entry before it kept."""
    state = "1.QUJD"
    active = {"VIRTUAL_ENV": str(setup.env), "VIRTUAL_ENV_PROMPT": "proj",
              "VENVD_STATE": state, "PATH": f"/opt/mine:{setup.env}/bin:{BASE_PATH}"}
    fok, env = setup.run(setup.outside, env=active, before=remembered(setup, state))
    assert fok == "1" and "VIRTUAL_ENV" not in env
    assert env["PATH"] == f"/opt/mine:{BASE_PATH}"


@pytest.mark.parametrize("case", ["toml newer", "hand venv", "PYTHONHOME", "no python",
                                  "not ours", "no snippet", "empty PATH entry"])
def test_anything_unusual_is_left_to_the_client(setup: Setup, case: str) -> None:
    env: dict[str, str] = {}
    cwd = setup.project
    before = ""
    if case == "toml newer":  # edited in the snippet's second or later: maybe newer
        (setup.project / ".venvd.toml").write_text("")
    elif case == "hand venv":
        env = {"VIRTUAL_ENV": "/opt/other"}
    elif case == "PYTHONHOME":
        env = {"PYTHONHOME": "/opt/home"}
    elif case == "no python":
        (setup.env / "bin" / "python").chmod(0o644)
    elif case == "not ours":  # a state this shell does not remember
        env = {"VENVD_STATE": "1.QUJD", "VIRTUAL_ENV": str(setup.env)}
    elif case == "no snippet":
        setup.snippet.unlink()
    else:  # PATH that `path` cannot give back exactly: no revert from it
        env = {"VENVD_STATE": "1.QUJD", "VIRTUAL_ENV": str(setup.env),
               "VIRTUAL_ENV_PROMPT": "proj", "PATH": f"{setup.env}/bin::{BASE_PATH}"}
        before = remembered(setup, "1.QUJD")
        cwd = setup.outside
    fok, found = setup.run(cwd, env=env, before=before)
    assert fok == "0"
    assert found.get("VIRTUAL_ENV") == env.get("VIRTUAL_ENV")
    assert found["PATH"] == env.get("PATH", BASE_PATH)


def test_venvd_off_keeps_its_project_inactive_and_is_dropped_elsewhere(setup: Setup) -> None:
    fok, env = setup.run(setup.project, env={"VENVD_OFF": str(setup.project)})
    assert fok == "1" and "VIRTUAL_ENV" not in env and env["VENVD_OFF"] == str(setup.project)
    fok, env = setup.run(setup.outside, env={"VENVD_OFF": str(setup.project)})
    assert fok == "1" and "VENVD_OFF" not in env


def test_a_zombie_or_a_missing_daemon_is_left_to_the_client(tmp_path: Path) -> None:
    """A killed daemon that nobody reaped keeps its /proc entry (state Z) but no exe link;
    a pid file for a process that is gone, or of another user, is no daemon either."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        setup = Setup(tmp_path, child.pid)
        assert Path(f"/proc/{child.pid}").is_dir()
        fok, env = setup.run(setup.project)
        assert fok == "0" and "VIRTUAL_ENV" not in env
    finally:
        child.wait()
    fok, env = setup.run(setup.project)  # reaped: gone
    assert fok == "0" and "VIRTUAL_ENV" not in env
