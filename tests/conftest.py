"""Fixtures: a private HOME per test, offline wheels, the real daemon (pytest-xprocess),
real interpreters and real shells."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import psutil
import pytest
from xprocess import ProcessStarter

sys.path.insert(0, str(Path(__file__).parent))

from venvd.client import connection

from support.shells import SHELLS, Shell, shell_path
from support.wheels import build_wheelhouse

_names = itertools.count()


# ---------------------------------------------------------------------------------------------
# interpreters


@dataclass(frozen=True)
class Py:
    path: str
    version: str  # "3.12.1"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def _real_pyenv_root() -> Optional[Path]:
    """pyenv's root on this machine, even when the tests run with a fresh HOME and no
    PYENV_ROOT (CI): the variable, ~/.pyenv, the login user's ~/.pyenv, then ``pyenv root``."""
    candidates = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"),
                  str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".pyenv")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(subprocess.run([pyenv, "root"], capture_output=True, text=True,
                                             timeout=30).stdout.strip())
    for candidate in candidates:
        if candidate and (Path(candidate) / "versions").is_dir():
            return Path(candidate)
    return None


def _find_pythons() -> list[Py]:
    """Real interpreters, one per minor version: pyenv's where present, else python3.X."""
    found: dict[str, Py] = {}
    candidates: list[str] = []
    root = _real_pyenv_root()
    if root:
        candidates += [str(p / "bin" / "python3") for p in sorted((root / "versions").iterdir())]
    candidates += [shutil.which(f"python3.{m}") or "" for m in range(9, 15)]
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK) or (Path(exe).parents[1] / "pyvenv.cfg").exists():
            continue
        try:
            out = subprocess.run([exe, "-I", "-S", "-c",
                                  "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        py = Py(exe, out.strip())
        if tuple(map(int, py.version.split(".")[:2])) >= (3, 9):
            found.setdefault(py.minor, py)
    return sorted(found.values(), key=lambda p: tuple(map(int, p.version.split("."))))


@pytest.fixture(scope="session")
def pythons() -> list[Py]:
    return _find_pythons()


@pytest.fixture(scope="session")
def two_pythons(pythons: list[Py]) -> tuple[Py, Py]:
    """Two interpreters of different minor versions (3.11 and 3.12 where both exist)."""
    by_minor = {p.minor: p for p in pythons}
    if "3.11" in by_minor and "3.12" in by_minor:
        return by_minor["3.11"], by_minor["3.12"]
    if len(pythons) < 2:
        pytest.skip(f"two Python versions are needed, found {[p.version for p in pythons]}")
    return pythons[-2], pythons[-1]


# ---------------------------------------------------------------------------------------------
# the sandbox: a fresh HOME with its own XDG folders, offline uv


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


def _venvd_bin(folder: Path) -> Path:
    """A folder holding only a ``venvd`` command, as ``~/.local/bin`` would after install."""
    folder.mkdir(parents=True, exist_ok=True)
    script = Path(sys.executable).with_name("venvd")
    assert script.exists(), f"the venvd console script is not installed beside {sys.executable}"
    (folder / "venvd").symlink_to(script)
    return folder


def _clean_path() -> str:
    """PATH without the test venv (the shells must not start inside any venv)."""
    venv_bin = str(Path(sys.executable).parent)
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep)
             if p and p != venv_bin and not (Path(p).parent / "pyvenv.cfg").exists()]
    return os.pathsep.join(parts)


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]
    daemons: list[Any] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    @property
    def socket(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"]) / "venvd" / "daemon.sock"

    @property
    def pid_file(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"]) / "venvd" / "daemon.pid"

    def venvd(self, *args: str, cwd: Optional[Path] = None, check: bool = True,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.root / "bin" / "venvd"), *args], env=self.env,
                                cwd=str(cwd or self.root), capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, (
                f"venvd {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                f"{result.stderr}")
        return result

    def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """One request over the daemon's socket (the client's own code does the talking)."""
        return connection.request(str(self.socket), message, timeout)

    def alive(self) -> bool:
        try:
            return bool(self.request({"op": "ping"}, timeout=2).get("ok"))
        except (connection.DaemonUnavailable, OSError, ValueError):
            return False

    def status(self, project: Path) -> dict[str, Any]:
        """``venvd status --json`` of *project*: asked on the socket (a test polls it, and
        a client process per poll is most of a short test's time) while the daemon runs;
        through the CLI, which starts a daemon, when it does not."""
        with contextlib.suppress(connection.DaemonUnavailable, OSError):
            reply = self.request({"op": "status", "dir": str(project), "all": False},
                                 timeout=30)
            if reply.get("ok"):
                found: dict[str, Any] = reply["projects"][0]
                return found
        out = self.venvd("status", str(project), "--json").stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def wait_state(self, project: Path, states: tuple[str, ...] = ("synced", "failed"),
                   timeout: float = 120) -> dict[str, Any]:
        return wait_for(lambda: _in_state(self.status(project), states), timeout,
                        f"{project.name} to reach {states}")

    def project(self, name: str, python: Optional[str] = None,
                requirements: Optional[str] = "", files: Optional[dict[str, str]] = None
                ) -> Path:
        path = self.root / "projects" / name
        path.mkdir(parents=True)
        if python is not None:
            (path / ".python-version").write_text(python + "\n")
        if requirements is not None:
            (path / "requirements.txt").write_text(requirements)
        for rel, text in (files or {}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        return path

    def shell(self, kind: str, cwd: Optional[Path] = None, **kw: Any) -> Shell:
        if shell_path(kind) is None:
            if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
                pytest.fail(f"{kind} is required (VENVD_TEST_REQUIRE_SHELLS) but not installed")
            pytest.skip(f"{kind} is not installed")
        shell = Shell(kind, self.env, cwd or self.root, **kw)
        self._shells.append(shell)
        return shell

    _shells: list[Shell] = field(default_factory=list)

    def kill_daemon(self, reap: bool = True) -> int:
        pid = int(self.pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _pid_alive(pid), 10, "the daemon to die")
        # pytest-xprocess started it as our child: reap it, as init would a detached daemon,
        # so that no zombie keeps its /proc entry (unless the test wants one: an init that
        # does not reap, as in many containers)
        if reap:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        return pid

    def stop_everything(self) -> None:
        for shell in self._shells:
            shell.close()
        if self.pid_file.exists():
            try:
                pid = int(self.pid_file.read_text())
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not _pid_alive(pid), 20, "the daemon to stop")
            except (ValueError, ProcessLookupError):
                pass
        # A daemon a client started moments ago may not have written its pid file yet: find
        # whatever still runs with this sandbox's runtime folder and stop it too.
        leftovers = self._processes_of_sandbox()
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _gone, alive = psutil.wait_procs(leftovers, timeout=20)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def _processes_of_sandbox(self) -> list[psutil.Process]:
        runtime = self.env["XDG_RUNTIME_DIR"]
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and proc.environ().get("XDG_RUNTIME_DIR") == runtime:
                    found.append(proc)
        return found


def _in_state(status: dict[str, Any], states: tuple[str, ...]) -> Optional[dict[str, Any]]:
    return status if status.get("state") in states else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll *check* until it returns something truthy, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)  # a poll interval, not a wait for the daemon: the check decides
        delay = min(delay * 1.5, 0.25)


@pytest.fixture
def sandbox(tmp_path: Path, wheelhouse: Path, uv_cache: Path) -> Iterator[Sandbox]:
    root = tmp_path
    home = root / "home"
    home.mkdir()
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    uv_toml = root / "uv.toml"
    uv_toml.write_text(f"no-index = true\nfind-links = [{json.dumps(str(wheelhouse))}]\n"
                       "python-downloads = \"never\"\n")
    bin_dir = _venvd_bin(root / "bin")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIRTUAL_ENV", "PYTHON", "CONDA", "VENVD", "UV_", "PIP_",
                                "XDG_", "PYENV_VERSION", "JUPYTER"))}
    pyenv_root = _real_pyenv_root()
    env.update({
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "UV_CACHE_DIR": str(uv_cache),
        "UV_CONFIG_FILE": str(uv_toml),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
        # an index the tests take down answers "connection refused": uv's own retries with
        # back-off (seconds) test nothing of venvd's
        "UV_HTTP_RETRIES": "0",
        # as a terminal exports it: uv must not wrap the error lines venvd reports
        "COLUMNS": "80",
        "PATH": os.pathsep.join([str(bin_dir), _clean_path()]),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    })
    if pyenv_root:
        env["PYENV_ROOT"] = str(pyenv_root)
    if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
        env["VENVD_TEST_REQUIRE_SHELLS"] = "1"
    box = Sandbox(root, env)
    yield box
    box.stop_everything()


@pytest.fixture
def daemon(sandbox: Sandbox, xprocess: Any) -> Iterator[Sandbox]:
    """The real daemon, a separate process started by pytest-xprocess, in *sandbox*."""
    name = f"venvd-daemon-{os.getpid()}-{next(_names)}"

    class Starter(ProcessStarter):  # type: ignore[misc]
        pattern = "listening on"
        args = (sys.executable, "-m", "venvd.daemon", "run")
        env = sandbox.env
        timeout = 60
        terminate_on_interrupt = True

        def startup_check(self) -> bool:
            return sandbox.alive()

    xprocess.ensure(name, Starter)
    yield sandbox
    sandbox.stop_everything()
    xprocess.getinfo(name).terminate()
    _release_xprocess_files(xprocess, name)


def _release_xprocess_files(xprocess: Any, name: str) -> None:
    """pytest-xprocess keeps the daemon's log open (to show it in reports) until the
    session ends: close it with the daemon, so that it is no leak of the test."""
    getattr(xprocess.config, "_extlogfiles", {}).pop(name, None)
    for resource in list(xprocess.resources):
        if resource.info and resource.info[0].name == name:
            resource.release()
            resource.fhandles.clear()
            xprocess.resources.remove(resource)


# ---------------------------------------------------------------------------------------------
# leaks: every test leaves the test process as it found it


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _live_children() -> set[int]:
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
    return found


def _leaks(threads: set[threading.Thread], fds: set[int], children: set[int]) -> list[str]:
    found = [f"thread {t.name}" for t in set(threading.enumerate()) - threads]
    found += [f"file descriptor {fd} -> {_fd_target(fd)}" for fd in _open_fds() - fds]
    found += [f"child process {pid}" for pid in _live_children() - children]
    return found


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "(closed meanwhile)"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread, a child process or a file descriptor behind in
    the test process (the daemon runs in a process of its own: its shutdown is tested
    through SIGTERM). What ends on its own (a reader thread of a closed shell) may take
    a moment."""
    threads, fds, children = set(threading.enumerate()), _open_fds(), _live_children()
    yield
    leaks: list[str] = []

    def clean() -> bool:
        leaks[:] = _leaks(threads, fds, children)
        return not leaks

    with contextlib.suppress(AssertionError):
        wait_for(clean, 10, "the test's threads, processes and files to end")
    assert not leaks, f"the test leaked: {', '.join(leaks)}"


#: The second user the ownership tests make files (and processes) of.
OTHER_USER = "venvd-other"


@pytest.fixture(scope="session")
def other_uid() -> int:
    """A second user's uid: made with useradd when the tests run as root (CI) and it is
    missing."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: a second user is needed to test ownership checks")
        pytest.skip("needs root to make files and processes of another user")
    try:
        return pwd.getpwnam(OTHER_USER).pw_uid
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    # another test worker may be making the same user at this moment: its useradd or ours
    # fails ("exists", "cannot lock /etc/passwd"); what counts is that the user is there
    def made() -> int:
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        OTHER_USER], capture_output=True)
        try:
            return pwd.getpwnam(OTHER_USER).pw_uid
        except KeyError:
            return -1

    uid: int = wait_for(lambda: made() + 1, 30, f"useradd {OTHER_USER}") - 1
    return uid


# fixtures shared by every test module
from support.index import simple_index, tool_path  # noqa: E402, F401


@pytest.fixture(params=SHELLS)
def shell_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind
