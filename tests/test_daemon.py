"""The daemon as a separate process: its socket, its protocol, one instance per user."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from venvd.daemon import protocol

from conftest import Sandbox, wait_for
from support.sockets import exchange

REPO = Path(__file__).resolve().parents[1]


def raw(box: Sandbox, payload: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; return everything the daemon answers before closing."""
    return exchange(box.socket, payload, timeout)


def test_socket_and_its_folder_are_private(daemon: Sandbox) -> None:
    folder = daemon.socket.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(daemon.socket.stat().st_mode)


@pytest.mark.parametrize(("payload", "complaint"), [
    (b"\x00\xff garbage\n", "not a JSON object"),
    (b"{not json\n", "not a JSON object"),
    (b"[1, 2]\n", "not a JSON object"),
    (b'{"op": "ping"}\n', "protocol version"),
    (b'{"v": 2, "op": "ping"}\n', "protocol version"),
    (b'{"v": 1, "op": "rm -rf"}\n', "unknown op"),
    (b'{"v": 1, "op": "status", "dir": 42}\n', "absolute path"),
    (b'{"v": 1, "op": "logs", "dir": "@PROJECT@", "limit": "many"}\n', "bad request"),
    (b"x" * (protocol.MAX_REQUEST + 10) + b"\n", "too large"),
])
def test_malformed_requests_get_an_error_and_the_daemon_goes_on(
        daemon: Sandbox, payload: bytes, complaint: str) -> None:
    if b"@PROJECT@" in payload:
        project = daemon.project("target", requirements="")
        payload = payload.replace(b"@PROJECT@", str(project).encode())
    reply = json.loads(raw(daemon, payload).splitlines()[0])
    assert reply["ok"] is False and complaint in reply["error"], reply
    assert daemon.alive()


def test_a_silent_client_is_cut_off_and_others_are_served(daemon: Sandbox) -> None:
    with socket.socket(socket.AF_UNIX) as silent:
        silent.connect(str(daemon.socket))
        assert daemon.alive()  # served while the silent one waits
        silent.settimeout(protocol.REQUEST_TIMEOUT + 10)
        reply = json.loads(silent.recv(65536).splitlines()[0])
    assert reply["ok"] is False and "timed out" in reply["error"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_another_user_is_refused(daemon: Sandbox) -> None:
    """SO_PEERCRED: with the folder and socket opened up, a client of another uid is still
    refused by the daemon itself."""
    opened: list[tuple[Path, int]] = []
    for path in [daemon.socket.parent, *daemon.socket.parent.parents]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o005 != 0o005:
            opened.append((path, mode))
            path.chmod(mode | 0o005)
    socket_mode = stat.S_IMODE(daemon.socket.stat().st_mode)
    daemon.socket.chmod(0o666)
    # the daemon answers as soon as it sees who connected, before any request
    code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.settimeout(10); print(s.recv(1000).decode())")
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    try:
        if system_python is None:
            pytest.skip("no system python3 that another user may run")
        out = subprocess.run([system_python, "-I", "-c", code, str(daemon.socket)],
                             user=65534, group=65534, capture_output=True, text=True,
                             timeout=30)
    finally:
        daemon.socket.chmod(socket_mode)
        for path, mode in opened:
            path.chmod(mode)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply == {"ok": False, "error": "permission denied"}


def test_out_of_file_descriptors_the_daemon_pauses_and_recovers(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "daemon.err"
    with log.open("w") as err:
        daemon = subprocess.Popen(["prlimit", "--nofile=64:64", str(sandbox.root / "bin" / "venvd"),
                                   "daemon", "run"], env=sandbox.env, stdout=err, stderr=err,
                                  stdin=subprocess.DEVNULL)
    held: list[socket.socket] = []
    try:
        wait_for(sandbox.alive, 30, "the daemon to listen")
        for _ in range(100):  # silent clients: more than its descriptors allow
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(sandbox.socket))
            held.append(sock)
        wait_for(lambda: "accept failed" in log.read_text(), 20, "accept to fail")
        for sock in held:
            sock.close()
        held.clear()
        wait_for(sandbox.alive, 30, "the daemon to answer again")
        # it paused between tries instead of spinning on a listener that stays ready
        assert log.read_text().count("accept failed") < 50
        assert daemon.poll() is None
    finally:
        for sock in held:
            sock.close()
        daemon.terminate()
        daemon.wait(timeout=30)


#: tgkill(2), which sends a signal to one thread of a process (no Python API does, outside
#: the process itself).
TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


@pytest.mark.skipif(TGKILL is None, reason="tgkill's syscall number is unknown here")
def test_sigterm_landing_on_any_thread_stops_an_idle_daemon(daemon: Sandbox) -> None:
    """The kernel hands a process's signal to any of its threads; Python runs the handler in
    the main thread, which waits in ``select`` for clients. Nothing connects here (a client
    would wake it): the signal alone must end the daemon."""
    pid = int(daemon.pid_file.read_text())
    others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    assert others, "the daemon runs threads besides the main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL, pid, others[0], signal.SIGTERM) == 0, ctypes.get_errno()
    wait_for(lambda: not _running(pid), 20, "the daemon to stop on SIGTERM")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_one_daemon_per_user(daemon: Sandbox) -> None:
    second = subprocess.run([sys.executable, "-m", "venvd.daemon", "run"], env=daemon.env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert daemon.alive()


def test_daemon_commands_and_state_that_survives_a_restart(sandbox: Sandbox) -> None:
    assert sandbox.venvd("daemon", "status", check=False).returncode == 1
    started = sandbox.venvd("daemon", "start")
    assert "started" in started.stdout
    first = int(sandbox.pid_file.read_text())
    status = sandbox.venvd("daemon", "status").stdout
    assert f"pid       {first}" in status and "memory" in status and "threads" in status
    project = sandbox.project("kept", requirements="")
    sandbox.venvd("allow", str(project))
    sandbox.venvd("daemon", "restart")
    second = int(sandbox.pid_file.read_text())
    assert second != first
    # the pid again as tcsh code (its hook can only source a file), private to the user
    pid_csh = sandbox.pid_file.with_name(sandbox.pid_file.name + ".csh")
    assert pid_csh.read_text() == f"set _venvd_dpid = {second}\n"
    assert stat.S_IMODE(pid_csh.stat().st_mode) == 0o600
    assert sandbox.status(project)["trusted"] is True
    sandbox.venvd("daemon", "stop")
    wait_for(lambda: not sandbox.alive(), 20, "the daemon to stop")
    assert not sandbox.pid_file.exists() and not pid_csh.exists()
    # any command that needs the daemon starts it
    assert sandbox.status(project)["trusted"] is True
    assert sandbox.alive()


def test_a_missing_runtime_folder_is_created_private(sandbox: Sandbox) -> None:
    # XDG_RUNTIME_DIR named but not there yet (a container, su without a login session): the
    # daemon must create it 0700, else the next client rejects it and looks elsewhere
    runtime = Path(sandbox.env["XDG_RUNTIME_DIR"])
    runtime.rmdir()
    sandbox.venvd("daemon", "start")
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert sandbox.socket.parent.parent == runtime and sandbox.socket.exists()
    status = sandbox.venvd("daemon", "status", check=False)
    assert status.returncode == 0 and f"pid       {sandbox.pid_file.read_text().strip()}" \
        in status.stdout, status.stdout + status.stderr


def test_status_json_has_the_documented_keys(daemon: Sandbox, pythons: list[Any]) -> None:
    if not pythons:
        pytest.skip("no interpreter found")
    py = pythons[-1]
    project = daemon.project("documented", py.minor, "gamma\n")
    before = daemon.status(project)
    assert before["state"] == "untrusted" and before["trusted"] is False
    assert before["exports"] == {}
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project)
    assert status["state"] == "synced"
    assert status["project"] == str(project)
    assert status["python"]["wanted"] == py.minor
    assert status["python"]["source"] == str(project / ".python-version")
    assert status["python"]["version"] == py.version
    assert Path(status["python"]["actual"]).resolve() == Path(py.path).resolve()
    assert status["env"] == str(project / ".venv")
    assert status["lockfile"] == "requirements.txt" and status["engine"] == "uv-pip-sync"
    last = status["last_sync"]
    assert last["result"] == "ok" and last["error"] is None and last["added"] == 1
    assert set(last) >= {"started", "seconds", "added", "removed", "changed"}
    assert status["drift"] == []
    assert status["exports"]["VIRTUAL_ENV"] == str(project / ".venv")
    assert status["exports"]["PATH"] == f"prepend {project}/.venv/bin"
    daemon.venvd("deny", str(project))
    assert daemon.status(project)["state"] == "untrusted"
    out = subprocess.run([str(daemon.root / "bin" / "venvd"), "export", "bash"],
                         cwd=project, env={**daemon.env, "PWD": str(project)},
                         capture_output=True, text=True)
    assert "VIRTUAL_ENV" not in out.stdout


@pytest.mark.parametrize(("files", "message"), [
    ({".python-version": "3.4\n", "requirements.txt": ""}, "wanted Python 3.4"),
    ({".python-version": "banana\n", "requirements.txt": ""}, "wanted Python banana"),
    ({"pyproject.toml": "[project\nname = 1\n"}, "invalid TOML"),
])
def test_bad_input_is_a_clear_message_not_a_crash(daemon: Sandbox, files: dict[str, str],
                                                  message: str) -> None:
    project = daemon.project("bad", requirements=None, files=files)
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project, ("failed",))
    assert message in (status["problem"] or ""), status
    if "Python" in message:
        assert "found" in status["problem"]
    human = daemon.venvd("status", str(project)).stdout
    assert message in human
    assert daemon.alive()


def test_failed_sync_keeps_the_previous_env(daemon: Sandbox) -> None:
    project = daemon.project("keeper", requirements="gamma\n")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    (project / "requirements.txt").write_text("no-such-package-anywhere\n")
    failed = daemon.wait_state(project, ("failed",))
    assert "no-such-package-anywhere" in failed["last_sync"]["error"]
    out = subprocess.run([str(project / ".venv/bin/python"), "-c", "import gamma"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = daemon.venvd("sync", str(project), "--wait", check=False)
    assert result.returncode == 1


def test_usage_errors_exit_2_and_export_outside_projects_prints_nothing(
        sandbox: Sandbox) -> None:
    assert sandbox.venvd("frobnicate", check=False).returncode == 2
    assert sandbox.venvd("hook", "powershell", check=False).returncode == 2
    outside = sandbox.root / "plain"
    outside.mkdir()
    out = subprocess.run([str(sandbox.root / "bin" / "venvd"), "export", "bash"], cwd=outside,
                         env={**sandbox.env, "PWD": str(outside)}, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "export " not in out.stdout and "unset " not in out.stdout, out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize("name", ["$(touch PWNED)", "-x", "`touch PWNED` \"q\" \\b"])
def test_a_hostile_project_name_syncs_and_its_activate_scripts_run_nothing(
        daemon: Sandbox, name: str) -> None:
    """uv writes the prompt unescaped into ``bin/activate``: the folder name must not reach
    it as it is (and ``-x`` must not read as an option)."""
    project = daemon.project(name, requirements="gamma\n")
    daemon.venvd("allow", str(project))
    status = daemon.wait_state(project)
    assert status["state"] == "synced", status
    env = dict(daemon.env)
    for shell, script in (("bash", "activate"), ("sh", "activate")):
        out = subprocess.run([shell, "-c", '. "$1" && printf %s "$VIRTUAL_ENV_PROMPT"', shell,
                              str(project / ".venv/bin" / script)],
                             cwd=project, env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout  # a prompt name was set, and nothing ran while it was
    assert not (project / "PWNED").exists()
    assert not any(project.parent.glob("**/PWNED"))


def test_daemon_stop_does_not_wait_on_a_zombie(daemon: Sandbox) -> None:
    """A stopped daemon nobody reaps (an init that does not, as in many containers) stays a
    zombie: `venvd daemon stop` must see it as gone, not wait for it until its deadline."""
    from venvd.client import daemonctl

    child = subprocess.Popen([sys.executable, "-c", "pass"])  # ours, so never reaped by init
    try:
        wait_for(lambda: _state(child.pid) == "Z", 10, "the child to end unreaped")
        assert daemonctl._alive(child.pid) is False
        assert daemonctl._alive(os.getpid()) is True
    finally:
        child.wait()
    # and the real command: a daemon the test started is our child, a zombie once stopped
    pid = int(daemon.pid_file.read_text())
    out = daemon.venvd("daemon", "stop").stdout
    assert "daemon stopped" in out
    assert _state(pid) in ("Z", "")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0].decode()
    except OSError:
        return ""


def test_the_prompt_thread_never_waits_for_an_interpreter(sandbox: Sandbox) -> None:
    """Finding the interpreters starts each one on PATH to ask its version. A new project's
    first prompt must be answered without that: here the only python3.X on PATH answers
    only once the test lets it, and the prompts are answered meanwhile."""
    shims = sandbox.root / "slow-bin"  # not ".../shims": pyenv's are skipped
    shims.mkdir()
    release = sandbox.root / "release"
    shim = shims / "python3.99"
    shim.write_text(f"#!/bin/sh\nwhile [ ! -e '{release}' ]; do sleep 0.05; done\n"
                    f"exec '{sys.executable}' \"$@\"\n")
    shim.chmod(0o755)
    projects = sandbox.root / "projects"
    first = sandbox.project("first", requirements="")
    second = sandbox.project("second", requirements="")
    config = sandbox.home / ".config" / "venvd" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'trusted_roots = ["{projects}"]\n')
    sandbox.env["PATH"] = f"{shims}:{sandbox.env['PATH']}"
    sandbox.venvd("daemon", "start")
    try:
        for project in (first, second):  # neither has a plan yet: each asks the keeper
            reply = sandbox.request({"op": "export", "dir": str(project), "pid": 0},
                                    timeout=8)
            assert reply["ok"] and reply["project"] == str(project), reply
            assert reply["exports"] == {}, reply
    finally:
        release.touch()
    # once the interpreter answers, the keeper syncs what the prompts asked for
    sandbox.wait_state(first, ("synced",))


#: ``venvd allow DIR`` as the launcher runs it (-I -S, venvd's site-packages appended), then
#: the modules it left loaded.
ALLOW_AND_LIST = """import sys
sys.path.append(sys.argv[1])
from venvd.client.main import main
sys.argv = ["venvd", "allow", sys.argv[2]]
code = main()
sys.stderr.write(f"@@EXIT {code} @@MODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""


def test_allow_reaches_a_running_daemon_without_platformdirs(daemon: Sandbox,
                                                             tmp_path: Path) -> None:
    # its imports are a third of `venvd allow`, whose start-up the user waits for
    project = daemon.project("quick", requirements="")
    for part in ("client", "daemon", "shell"):  # as installed (the tests' install is editable)
        shutil.copytree(REPO / part, tmp_path / "venvd" / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    site = str(tmp_path)
    result = subprocess.run([sys.executable, "-I", "-S", "-c", ALLOW_AND_LIST, site,
                             str(project)], env=daemon.env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert "@@EXIT 0 " in result.stderr, result.stderr
    assert "platformdirs" not in result.stderr.split("@@MODULES ")[1].split()
    assert daemon.wait_state(project)["state"] == "synced"  # it was allowed, and synced


def test_allow_takes_the_runtime_socket_only_when_private_and_ours(daemon: Sandbox,
                                                                    monkeypatch: Any) -> None:
    from venvd.client import quick

    monkeypatch.setenv("XDG_RUNTIME_DIR", daemon.env["XDG_RUNTIME_DIR"])
    assert quick.running_socket() == str(daemon.socket)
    try:
        daemon.socket.parent.chmod(0o777)  # others could have put it there
        assert quick.running_socket() is None
    finally:
        daemon.socket.parent.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/run")
    assert quick.running_socket() is None
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(daemon.root))  # no venvd/daemon.sock there
    assert quick.running_socket() is None


def test_allow_past_a_stale_socket_starts_the_daemon(daemon: Sandbox) -> None:
    # the daemon killed, its socket left behind: the quick path finds nobody there, and the
    # command goes on as before (platformdirs' folder, a daemon started there)
    daemon.venvd("daemon", "stop")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(daemon.socket))
    stale.close()
    project = daemon.project("stale", requirements="")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
