"""``venvd daemon install-service [--uninstall]``: the daemon supervised by the user's service
manager — a systemd user unit, or on macOS a launchd agent (written by the same code, untested).

Where no service manager runs for the user (containers), the file is written all the same,
one line says it was not enabled and why, and the daemon keeps starting on demand. The two
never fight: ``venvd daemon run`` leaves (exit 0) when a daemon already answers, and a
daemon started on demand is stopped before the service manager starts its own.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from venvd.client.commands import checked_paths
from venvd.client.daemonctl import stop
from venvd.daemon.display import printable
from venvd.daemon.errors import CommandFailed, VenvdError
from venvd.daemon.paths import user_paths

UNIT = "venvd.service"
LABEL = "venvd.daemon"
#: Words systemd takes as they are in ``ExecStart=`` (no quote, specifier or variable).
_PLAIN = re.compile(r"[A-Za-z0-9/_.:+,=@-]+")


class Supervisor(NamedTuple):
    """What one service manager needs: the file, its text, and its commands."""

    name: str
    path: Path
    text: bytes
    enable: tuple[tuple[str, ...], ...]
    disable: tuple[tuple[str, ...], ...]
    reload: tuple[tuple[str, ...], ...]  # after the file changed or went
    missing: Optional[str]  # why it cannot be enabled here; None when it can


def venvd_command(usable: Callable[[str], bool] = bool) -> list[str]:
    """The absolute command that runs this venvd, the first *usable* of: the script that was
    run (as install.sh's ``~/.local/bin/venvd`` link), where it leads, the one beside this
    interpreter, and this interpreter with ``-m``."""
    found = [os.path.abspath(sys.argv[0]), os.path.realpath(sys.argv[0]),
             str(Path(sys.executable).with_name("venvd"))]
    for candidate in found:
        if os.path.basename(candidate) == "venvd" and os.path.isfile(candidate) \
                and os.access(candidate, os.X_OK) and usable(candidate):
            return [candidate]
    if not usable(sys.executable):
        raise VenvdError(f"no path to venvd that the service manager can run: {found[0]}")
    return [sys.executable, "-m", "venvd.client"]


def systemd_runs(program: str) -> bool:
    """Whether systemd takes *program* as an ``ExecStart=`` executable: it refuses quotes,
    backslashes and control characters there (and a unit file is UTF-8)."""
    return not re.search(r"[\x00-\x1f\x7f\\\"'\ud800-\udfff]", program)


def systemd_word(word: str, program: bool = False) -> str:
    """*word* quoted for a systemd ``ExecStart=`` line: C-style quotes, ``%`` doubled
    (specifiers) and, but in the *program* (never expanded), ``$`` (variables)."""
    if _PLAIN.fullmatch(word):
        return word
    out = []
    for char in word:
        if char in '\\"':
            out.append("\\" + char)
        elif char == "%" or (char == "$" and not program):
            out.append(char * 2)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def systemd_unit(command: list[str]) -> str:
    program, *args = command
    exec_start = " ".join([systemd_word(program, program=True),
                           *(systemd_word(w) for w in (*args, "daemon", "run"))])
    return f"""# Written by 'venvd daemon install-service'; '... --uninstall' removes it.
[Unit]
Description=venvd: keeps each Python project's .venv in sync with its lockfiles

[Service]
Type=simple
ExecStart={exec_start}
Restart=on-failure
RestartSec=2
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=default.target
"""


def launchd_agent(command: list[str], log: Path) -> bytes:
    """The launchd agent: started at login, started again when it fails (untested)."""
    return plistlib.dumps({
        "Label": LABEL, "ProgramArguments": [*command, "daemon", "run"],
        "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": str(log), "StandardErrorPath": str(log),
    })


def supervisor(platform: str = sys.platform) -> Supervisor:
    """The service manager of *platform*, with the file for this venvd."""
    if platform == "darwin":
        command = venvd_command()
        target = f"gui/{os.getuid()}"
        path = Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        return Supervisor(
            "launchd", path, launchd_agent(command, user_paths().log / "daemon.log"),
            (("launchctl", "bootstrap", target, str(path)),),
            (("launchctl", "bootout", f"{target}/{LABEL}"),), (),
            None if shutil.which("launchctl") else "launchctl is not on PATH")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return Supervisor(
        "systemd", config / "systemd" / "user" / UNIT,
        systemd_unit(venvd_command(systemd_runs)).encode(),
        (("systemctl", "--user", "enable", "--now", UNIT),),
        (("systemctl", "--user", "disable", "--now", UNIT),),
        (("systemctl", "--user", "daemon-reload"),),
        _why_no_systemd())


def _why_no_systemd() -> Optional[str]:
    """Why systemd cannot enable a user unit here (None: it can)."""
    if shutil.which("systemctl") is None:
        return "systemctl is not on PATH"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    if os.path.isdir(os.path.join(runtime, "systemd")):
        return None
    try:
        ran = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"systemctl --user does not answer ({exc})"
    if ran.returncode == 0:
        return None
    said = (ran.stdout or ran.stderr).strip().splitlines()
    return ("systemd does not run as your user manager here ('systemctl --user "
            f"is-system-running' says {said[0] if said else 'nothing'})")


def install_service(uninstall: bool, platform: str = sys.platform) -> int:
    """Write and enable the service (or, *uninstall*, disable and remove it)."""
    found = supervisor(platform)
    return (remove if uninstall else install)(found)


def install(found: Supervisor) -> int:
    _write(found.path, found.text)
    where = printable(str(found.path))
    if found.missing is not None:
        print(f"venvd: wrote {where}; not enabled: {found.missing}; the daemon keeps "
              "starting on demand")
        return 0
    _run_all(found.disable, check=False)  # an older one (its daemon stops)
    stop(checked_paths())  # one started on demand: the service manager's takes its place
    _run_all(found.reload + found.enable, check=True)
    print(f"venvd: wrote {where} and enabled it: {found.name} runs the daemon from now on")
    return 0


def remove(found: Supervisor) -> int:
    where = printable(str(found.path))
    if found.missing is None:
        _run_all(found.disable, check=False)  # fails when it was never enabled: fine
    try:
        found.path.unlink()
    except FileNotFoundError:
        print(f"venvd: no {where} to remove")
        return 0
    except OSError as exc:
        raise VenvdError(f"cannot remove {found.path}: {exc.strerror}") from None
    if found.missing is None:
        _run_all(found.reload, check=False)
    print(f"venvd: removed {where}; the daemon starts on demand again")
    return 0


def _write(path: Path, text: bytes) -> None:
    """Write *path* whole or not at all (a rename), making its folders."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise VenvdError(f"cannot write {path}: {exc.strerror}") from None


def _run_all(commands: tuple[tuple[str, ...], ...], check: bool) -> None:
    for argv in commands:
        try:
            ran = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            if check:
                raise VenvdError(f"{' '.join(argv)}: {exc}") from None
            continue
        if check and ran.returncode != 0:
            raise CommandFailed(list(argv), ran.returncode, ran.stdout + ran.stderr)
