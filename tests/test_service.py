"""``venvd daemon install-service``: the systemd user unit (checked by systemd-analyze, and its
ExecStart run as systemd would), enabling it where systemd runs, the launchd agent written by
the same code, and a supervised daemon that does not fight the one started on demand.

(A killed daemon restarted by the next prompt: tests/test_shells.py.)"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from venvd.client import service

from conftest import Sandbox, wait_for


def unit_path(box: Sandbox) -> Path:
    return box.home / ".config/systemd/user/venvd.service"


def no_user_bus(box: Sandbox) -> dict[str, str]:
    """The sandbox's environment, unable to reach a real user manager (a developer's desktop
    session): nothing is ever enabled on the machine running the tests."""
    return {k: v for k, v in box.env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}


def run_venvd(box: Sandbox, program: Path, *args: str,
              env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=str(box.root))


def exec_start(unit: str) -> str:
    lines = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return lines[0].removeprefix("ExecStart=")


def systemd_analyze(box: Sandbox, unit: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is needed (tests/run installs the systemd package)")
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(["systemd-analyze", "--user", "verify", str(unit)],
                          env=no_user_bus(box), capture_output=True, text=True, timeout=60)


def test_the_unit_runs_the_daemon_as_systemd_would(sandbox: Sandbox) -> None:
    out = run_venvd(sandbox, sandbox.root / "bin/venvd", "daemon", "install-service",
                    env=no_user_bus(sandbox))
    # no systemd runs as the sandbox's user manager: written, and one line says so
    assert out.returncode == 0, out.stderr
    line, = out.stdout.splitlines()
    assert line.startswith(f"venvd: wrote {unit_path(sandbox)}; not enabled: ")
    assert line.endswith("; the daemon keeps starting on demand")
    unit = unit_path(sandbox).read_text()
    for line in ("Restart=on-failure", "StandardOutput=journal", "StandardError=journal",
                 "WantedBy=default.target"):
        assert line in unit.splitlines()
    argv = shlex.split(exec_start(unit))
    assert argv[1:] == ["daemon", "run"] and os.path.isabs(argv[0])
    assert Path(argv[0]) == sandbox.root / "bin/venvd"  # the command that was run
    helped = subprocess.run([argv[0], "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "daemon" in helped.stdout
    checked = systemd_analyze(sandbox, unit_path(sandbox))
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
    # the ExecStart line, as systemd runs it: a daemon in the foreground, stopped by SIGTERM
    daemon = subprocess.Popen(argv, env=sandbox.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(sandbox.alive, 60, "the daemon ExecStart runs to answer")
        assert int(sandbox.pid_file.read_text()) == daemon.pid
        assert "state" in sandbox.venvd("status", str(sandbox.project("p")), "--json").stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "listening on" in err  # its log went to stderr: the journal, under systemd
    sandbox.venvd("daemon", "install-service", "--uninstall")
    assert not unit_path(sandbox).exists()


@pytest.mark.parametrize(("folder", "kept"), [
    ("b in %h $HOME ü", True),  # quoted, specifiers doubled
    ("q \"it's\" \\", False),  # systemd refuses these in a program: where the link leads
])
def test_a_path_systemd_would_expand_is_quoted(sandbox: Sandbox, folder: str,
                                               kept: bool) -> None:
    program = sandbox.root / folder / "venvd"
    program.parent.mkdir()
    target = Path(sys.executable).with_name("venvd")
    program.symlink_to(target)
    out = run_venvd(sandbox, program, "daemon", "install-service", env=no_user_bus(sandbox))
    assert out.returncode == 0, out.stderr
    unit = unit_path(sandbox).read_text()
    used = str(program).replace("%", "%%") if kept else str(target)
    assert exec_start(unit) == (f'"{used}"' if kept else used) + " daemon run", unit
    # systemd-analyze finds the program only if the quoting gave the path back exactly
    checked = systemd_analyze(sandbox, unit_path(sandbox))
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr + unit


def test_enabled_where_systemd_runs_and_it_takes_over_from_the_daemon_on_demand(
        sandbox: Sandbox) -> None:
    # systemd cannot run as a user manager here: its systemctl is a script that notes what
    # it is asked; the user manager's runtime folder is there
    calls = sandbox.root / "systemctl-calls"
    fake = sandbox.root / "fake-bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(calls))}\n')
    (fake / "systemctl").chmod(0o755)
    (Path(sandbox.env["XDG_RUNTIME_DIR"]) / "systemd").mkdir()
    env = {**no_user_bus(sandbox), "PATH": f"{fake}:{sandbox.env['PATH']}"}
    sandbox.venvd("daemon", "start")
    assert sandbox.alive()
    out = run_venvd(sandbox, sandbox.root / "bin/venvd", "daemon", "install-service", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"venvd: wrote {unit_path(sandbox)} and enabled it: systemd runs " \
                         "the daemon from now on\n"
    assert not sandbox.alive()  # the daemon started on demand made way for systemd's
    assert calls.read_text().splitlines() == [
        "--user disable --now venvd.service", "--user daemon-reload",
        "--user enable --now venvd.service"]
    calls.unlink()
    out = run_venvd(sandbox, sandbox.root / "bin/venvd", "daemon", "install-service",
                    "--uninstall", env=env)
    assert out.returncode == 0, out.stderr
    assert not unit_path(sandbox).exists()
    assert calls.read_text().splitlines() == ["--user disable --now venvd.service",
                                              "--user daemon-reload"]


def test_daemon_run_leaves_a_running_daemon_alone(daemon: Sandbox) -> None:
    pid = int(daemon.pid_file.read_text())
    second = daemon.venvd("daemon", "run", timeout=60)
    assert second.stderr == (f"venvd: a daemon is already running (pid {pid}); this one is "
                             "not needed\n")
    assert daemon.alive() and int(daemon.pid_file.read_text()) == pid


def test_the_launchd_agent_is_written_by_the_same_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no launchctl: written, not enabled
    assert service.install_service(False, platform="darwin") == 0
    agent = tmp_path / "Library/LaunchAgents/venvd.daemon.plist"
    found = plistlib.loads(agent.read_bytes())
    assert found["ProgramArguments"][1:] == ["daemon", "run"]
    assert os.access(found["ProgramArguments"][0], os.X_OK)
    assert found["KeepAlive"] == {"SuccessfulExit": False} and found["RunAtLoad"] is True
    assert "not enabled: launchctl is not on PATH" in capsys.readouterr().out
    assert service.install_service(True, platform="darwin") == 0
    assert not agent.exists()
