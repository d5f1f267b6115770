"""Another user's runtime files, folder or daemon, and a rogue server on our own socket: the
hooks read and source only the user's own files, the client talks only to a daemon of the
same uid and takes from it only the variables an activation sets, and a refused runtime
folder is one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_shells import allow_and_sync, wait_active

from venvd.shell import SHELLS
from venvd.shell.data import SUFFIX as DATA
from venvd.shell.ready import READY_NAME

from conftest import Sandbox, wait_for
from support.newsteps import no_client
from support.shells import Shell

#: How to print the hook's own record of the last generation it saw.
GEN_VAR = {"bash": "_venvd_gen", "zsh": "_venvd_gen", "fish": "__venvd_gen",
           "nu": "__venvd.gen", "xonsh": ""}


def _seen_generation(sh: Shell) -> str:
    if sh.kind == "xonsh":  # the hook's state is a Python object, not a variable
        return sh.run("printf '%s' @(_venvd.state['gen'])")
    return sh.var(GEN_VAR[sh.kind])


def _per_file_checks_only_in_the_first_three(kind: str, tcsh_too: bool = False) -> None:
    """The hooks of bash, zsh and fish read the runtime files these tests plant (pid file,
    generation, snippets) after checking each one's owner (``-O``), and so do nushell's
    (the owner ``ls -l`` shows) and xonsh's (``fstat``). The tcsh hook sources the pid
    file's tcsh copy, its script and the snippets after ``-o`` (*tcsh_too*: the test of
    those), and reads no generation (only the file's time and inode); elvish 0.19 has no
    owner test without a process, so its hook relies on the check of the whole runtime
    folder at shell start, tested for every shell below."""
    if kind not in GEN_VAR and not (tcsh_too and kind == "tcsh"):
        why = ("reads no generation file, only its time and inode" if kind == "tcsh"
               else "has no per-file owner check (elvish has no owner test)")
        pytest.skip(f"{kind}'s hook {why}; the runtime folder is checked at shell start")


def _runtime(box: Sandbox) -> Path:
    return Path(box.env["XDG_RUNTIME_DIR"]) / "venvd"


def _snippet(box: Sandbox, project: Path, kind: str) -> Path:
    suffix = SHELLS[kind].snippet_suffix
    return Path(f"{_runtime(box)}/ready{os.path.realpath(project)}/{READY_NAME}.{suffix}")


def _been_in(box: Sandbox, kind: str, name: str) -> tuple[Path, str, Shell]:
    """An allowed, synced project; a *kind* shell that was active in it and is back in the
    sandbox's root; its env's path."""
    project = box.project(name, requirements="")
    allow_and_sync(box, project)
    sh = box.shell(kind, cwd=box.root)
    sh.run(f"cd {project}")
    wait_active(sh, project)
    sh.run(f"cd {box.root}")
    return project, f"{project}/.venv", sh


def _venvd_lines(sh: Shell) -> list[str]:
    return [ln for ln in "".join(sh.transcript).splitlines() if "venvd:" in ln]


def test_runtime_files_of_another_user_are_never_read_or_sourced(
        daemon: Sandbox, shell_kind: str, other_uid: int) -> None:
    _per_file_checks_only_in_the_first_three(shell_kind, tcsh_too=True)
    project, env, sh = _been_in(daemon, shell_kind, "owned")
    sh.run("true")
    snippet = _snippet(daemon, project, shell_kind)
    wait_for(snippet.exists, 30, "the daemon's snippet for the project")
    marker = daemon.root / "SOURCED"
    code = snippet.suffix != f".{DATA}"  # nushell's and xonsh's snippets are data, not code
    if code:
        with snippet.open("a") as f:  # a command an attacker's snippet would run
            f.write(f"touch {shlex.quote(str(marker))}\n")
    sh.run(no_client(shell_kind))  # from here on only the builtin fast path can activate

    def enter() -> str:
        sh.run(f"cd {daemon.root}")
        sh.run(f"cd {project}")
        return sh.var("VIRTUAL_ENV")

    assert enter() == env and marker.exists() == code  # the user's own snippet is sourced
    marker.unlink(missing_ok=True)
    os.chown(snippet, other_uid, -1)
    assert enter() == "" and not marker.exists()  # another user's: never sourced
    os.chown(snippet, os.getuid(), -1)
    # tcsh sources the pid's tcsh copy (it cannot read a file without a process) and the
    # script of its no-process path, which `venvd hook tcsh` wrote
    planted = [daemon.pid_file]
    if shell_kind == "tcsh":
        planted = [Path(f"{daemon.pid_file}.csh"), *_runtime(daemon).glob("tcsh-fast.*.csh")]
    for path in planted:
        os.chown(path, other_uid, -1)
        try:  # a file of another user's: the fast path steps aside (to the client)
            assert enter() == "" and not marker.exists(), path
        finally:
            os.chown(path, os.getuid(), -1)
    assert enter() == env and marker.exists() == code


def test_a_generation_file_of_another_user_is_not_read(daemon: Sandbox, shell_kind: str,
                                                       other_uid: int) -> None:
    _per_file_checks_only_in_the_first_three(shell_kind)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.run(no_client(shell_kind))
    generation = _runtime(daemon) / "generation"
    generation.write_text("4242\n")
    os.chown(generation, other_uid, -1)
    sh.run("true")
    assert _seen_generation(sh) != "4242"
    os.chown(generation, os.getuid(), -1)  # the same file, the user's: read at the next prompt
    sh.run("true")
    assert _seen_generation(sh) == "4242"


def _foreign_runtime(box: Sandbox, other_uid: int, project: Path, marker: Path) -> None:
    """The runtime folder made first by another user, with a snippet of theirs for *project*."""
    folder = _runtime(box)
    snippets = Path(f"{folder}/ready{os.path.realpath(project)}")
    snippets.mkdir(parents=True)
    for suffix in ("sh", "fish"):
        (snippets / f"{READY_NAME}.{suffix}").write_text(f"touch {marker}\n")
    (snippets / f"{READY_NAME}.{DATA}").write_text(json.dumps(  # their env, if it were taken
        {"_venvd_r_env": str(marker), "_venvd_r_prompt": "theirs", "_venvd_r_blob": "x"}))
    (folder / "generation").write_text("1\n")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, other_uid, -1)


def test_a_runtime_folder_of_another_user_is_one_line_at_shell_start(
        sandbox: Sandbox, shell_kind: str, other_uid: int) -> None:
    project = sandbox.project("victim", requirements="")
    marker = sandbox.root / "SOURCED"
    _foreign_runtime(sandbox, other_uid, project, marker)
    sh = sandbox.shell(shell_kind, cwd=sandbox.root)
    lines = _venvd_lines(sh)
    assert len(lines) == 1 and "not a folder of yours" in lines[0], lines
    assert "hook is off" in lines[0]
    sh.run(f"cd {project}")
    sh.run("true")
    sh.run(f"cd {sandbox.root}")
    assert not marker.exists()
    assert sh.var("VIRTUAL_ENV") == ""
    assert _venvd_lines(sh) == lines  # nothing more, and no traceback
    assert "Traceback" not in "".join(sh.transcript)


def test_a_runtime_folder_replaced_after_shell_start_is_refused_once(
        daemon: Sandbox, shell_kind: str, other_uid: int) -> None:
    """The folder was the user's when the shell started; then, with the daemon gone, another
    user made one at the same path (a /tmp cleaner removed the old one). The client says so
    once and activates from the user's own state; nothing in the new folder runs."""
    _per_file_checks_only_in_the_first_three(shell_kind)
    project, env, sh = _been_in(daemon, shell_kind, "replaced")
    daemon.kill_daemon()
    _runtime(daemon).rename(_runtime(daemon).with_name("venvd.old"))
    marker = daemon.root / "SOURCED"
    _foreign_runtime(daemon, other_uid, project, marker)
    told = len(_venvd_lines(sh))
    for _ in range(2):
        sh.run(f"cd {project}")
        sh.run("true")
        assert sh.var("VIRTUAL_ENV") == env  # from the user's own state, on disk
        sh.run(f"cd {daemon.root}")
    lines = _venvd_lines(sh)[told:]
    assert len(lines) == 1 and "not a folder of yours" in lines[0], lines
    assert not marker.exists()
    assert "Traceback" not in "".join(sh.transcript)


def _refused_folder(box: Sandbox, how: str, other_uid: int) -> None:
    folder = _runtime(box)
    if how == "writable by others":
        folder.mkdir()
        folder.chmod(0o777)
    elif how == "another user's":
        folder.mkdir()
        os.chown(folder, other_uid, -1)
    else:  # XDG_RUNTIME_DIR another user's, and the /tmp fallback made first by them too
        if Path(f"/run/user/{os.getuid()}").is_dir():
            pytest.skip(f"/run/user/{os.getuid()} exists: platformdirs takes it, not /tmp")
        theirs = box.root / "their-run"
        theirs.mkdir(mode=0o700)
        tmp = box.root / "tmp"
        tmp.mkdir()
        tmp.chmod(0o1777)
        (tmp / f"runtime-{os.getuid()}").mkdir(mode=0o700)
        for path in (theirs, tmp / f"runtime-{os.getuid()}"):
            os.chown(path, other_uid, -1)
        box.env["XDG_RUNTIME_DIR"] = str(theirs)
        box.env["TMPDIR"] = str(tmp)


@pytest.mark.parametrize("how", ["another user's", "writable by others", "/tmp fallback"])
def test_a_refused_runtime_folder_is_one_clear_line_and_said_once(
        sandbox: Sandbox, how: str, other_uid: int) -> None:
    _refused_folder(sandbox, how, other_uid)
    hook = sandbox.venvd("hook", "bash", check=False)
    assert hook.stdout == "" and hook.returncode == 1
    assert len(hook.stderr.splitlines()) == 1 and "runtime folder" in hook.stderr, hook.stderr
    first = sandbox.venvd("export", "bash", check=False)
    assert first.returncode == 0
    assert len(first.stderr.splitlines()) == 1 and "runtime folder" in first.stderr
    assert "_VENVD_REFUSED=" in first.stdout  # the shell remembers it was told
    told = subprocess.run(["bash", "--norc", "-c", f'{first.stdout}\nprintf %s "$_VENVD_REFUSED"'],
                          capture_output=True, text=True, check=True).stdout
    again = subprocess.run([str(sandbox.root / "bin" / "venvd"), "export", "bash"],
                           env={**sandbox.env, "_VENVD_REFUSED": told}, cwd=sandbox.root,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stderr == "" and again.stdout == ""
    status = sandbox.venvd("status", check=False)
    assert status.returncode == 1 and len(status.stderr.splitlines()) == 1
    assert "runtime folder" in status.stderr and "Traceback" not in status.stderr


# ---------------------------------------------------------------------------------------------
# servers that are not the user's daemon

ROGUE_EXPORTS = {
    "PROMPT_COMMAND": "touch {marker}",
    "BASH_ENV": "{marker}",
    "LD_PRELOAD": "/nonexistent/evil.so",
    "fish_user_paths": "/evil",
    "PATH": "/evil/bin:/usr/bin:/bin",
    "PYTHONHOME": "/evil",
    "VIRTUAL_ENV": ["not", "a", "string"],
    "VIRTUAL_ENV_PROMPT": "rogue-prompt",  # a name an activation sets: taken
}
ALLOWED = {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PATH", "PYTHONHOME", "VENVD_STATE",
           "CONDA_PREFIX", "CONDA_DEFAULT_ENV"}


@pytest.fixture
def rogue_server(sandbox: Sandbox) -> Iterator[Path]:
    """A server of the same uid on a socket in a private folder, answering every request with
    an export that tries to set PROMPT_COMMAND, PATH and more."""
    folder = sandbox.root / "rogue"
    folder.mkdir(mode=0o700)
    path = folder / "daemon.sock"
    marker = sandbox.root / "ROGUE-RAN"
    exports = {k: v.format(marker=marker) if isinstance(v, str) else v
               for k, v in ROGUE_EXPORTS.items()}
    reply = json.dumps({"ok": True, "project": str(sandbox.root), "exports": exports,
                        "messages": []}).encode() + b"\n"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(5)
    server.close()


_ENV_AFTER = {
    "bash": ["bash", "--norc", "-c", 'eval "$CODE"; env -0'],
    "zsh": ["zsh", "-f", "-c", 'eval "$CODE"; env -0'],
    "fish": ["fish", "--no-config", "-c", 'echo $CODE | source; env -0'],
}


def _environment(kind: str, code: str, env: dict[str, str]) -> dict[str, str]:
    exe = shutil.which(kind)
    if exe is None:
        pytest.skip(f"{kind} is not installed")
    out = subprocess.run(_ENV_AFTER[kind], env={**env, "CODE": code}, capture_output=True,
                         text=True, check=True, timeout=30).stdout
    pairs = (item.partition("=") for item in out.split("\0") if item)
    return {k: v for k, _, v in pairs if k not in ("CODE", "_", "SHLVL", "PWD", "OLDPWD")}


def test_a_rogue_server_sets_nothing_but_an_activation(sandbox: Sandbox, shell_kind: str,
                                                       rogue_server: Path) -> None:
    if shell_kind not in _ENV_AFTER:  # the names are dropped before any shell's rendering
        pytest.skip(f"the client's filter is the same for every shell; run in {list(_ENV_AFTER)}")
    result = subprocess.run(
        [str(sandbox.root / "bin" / "venvd"), "export", shell_kind, "--socket", str(rogue_server),
         "--state-db", str(sandbox.root / "no.db"), "--pid", "4242"],
        env=sandbox.env, cwd=sandbox.root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("BASH_ENV", "LD_PRELOAD", "PROMPT_COMMAND", "fish_user_paths", "PATH",
                 "PYTHONHOME", "VIRTUAL_ENV"):
        assert name in result.stderr  # said, once, on stderr
    before = _environment(shell_kind, "", sandbox.env)
    after = _environment(shell_kind, result.stdout, sandbox.env)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert {k for k in changed if not k.startswith("_VENVD_")} <= ALLOWED, changed
    assert "PROMPT_COMMAND" not in after and "LD_PRELOAD" not in after
    assert after["PATH"] == before["PATH"] and "PYTHONHOME" not in after
    assert after["VIRTUAL_ENV_PROMPT"] == "rogue-prompt"  # the client's code did run
    assert not (sandbox.root / "ROGUE-RAN").exists()


FOREIGN_SERVER = r"""
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:  # a client that hangs up at once (ours, once it saw our uid) must not end us
        c.settimeout(10)
        c.recv(65536)
        c.sendall(sys.argv[2].encode() + b"\n")
    except OSError:
        pass
    c.close()
"""


@pytest.fixture
def foreign_daemon(sandbox: Sandbox, other_uid: int) -> Iterator[Path]:
    """A server of another uid listening on the user's own socket path (the socket is bound
    here and handed over, as a process that got in there some other way would hold it)."""
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None:
        pytest.skip("no system python3 that another user may run")
    _runtime(sandbox).mkdir(mode=0o700)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sandbox.socket))
    reply = json.dumps({"ok": True, "project": str(sandbox.root), "pid": 1,
                        "exports": {"VIRTUAL_ENV": "/foreign", "PATH": "prepend /foreign/bin",
                                    "VIRTUAL_ENV_PROMPT": "foreign", "PYTHONHOME": None},
                        "messages": ["from the foreign server"]})
    server = subprocess.Popen([system_python, "-I", "-c", FOREIGN_SERVER, str(sock.fileno()),
                               reply], pass_fds=(sock.fileno(),), user=other_uid,
                              stdout=subprocess.PIPE, text=True)
    sock.close()
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield sandbox.socket
    finally:
        server.kill()
        server.wait()


def test_a_daemon_of_another_uid_is_refused(sandbox: Sandbox, foreign_daemon: Path) -> None:
    result = sandbox.venvd("export", "bash", check=False)
    assert result.returncode == 0
    assert "runs as another user" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "foreign" not in result.stdout and "from the foreign server" not in result.stderr
    status = sandbox.venvd("status", check=False)
    assert status.returncode == 1 and "runs as another user" in status.stderr
    assert len(status.stderr.splitlines()) == 1
