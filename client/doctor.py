"""``venvd doctor``: check the setup and say what to fix."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Callable

from venvd.client.connection import DaemonUnavailable, request
from venvd.client.shellcheck import check_login_bash, check_this_shell
from venvd.daemon import pythons
from venvd.daemon.display import printable
from venvd.daemon.paths import Paths
from venvd.shell import SHELLS

Check = Callable[[Paths], "tuple[bool, str]"]

def check_daemon(paths: Paths) -> tuple[bool, str]:
    try:
        pid = request(str(paths.socket), {"op": "ping"}, 3.0).get("pid")
    except DaemonUnavailable:
        return False, "daemon: not running; 'venvd daemon start' starts it"
    return True, f"daemon: running (pid {pid})"


def check_socket(paths: Paths) -> tuple[bool, str]:
    folder = paths.runtime
    if not folder.exists():
        return True, f"socket folder: {folder} not created yet"
    info = folder.stat()
    if stat.S_IMODE(info.st_mode) & 0o077 or info.st_uid != os.getuid():
        return False, f"socket folder: {folder} is open to others; run 'chmod 700 {folder}'"
    return True, f"socket folder: {folder} is private"


def check_hooks(paths: Paths) -> tuple[bool, str]:
    missing = []
    for name, shell in SHELLS.items():
        if shutil.which(name) is None:
            continue
        rc = shell.rc_paths(os.environ)[0]
        path = Path(rc)
        if not path.is_file() or not shell.hooked(path.read_text(errors="replace")):
            missing.append(f"{name} ({rc})")
    if missing:
        return False, "hooks: missing in " + ", ".join(missing) + "; see the README"
    return True, "hooks: present for every installed shell"


def check_interpreters(paths: Paths) -> tuple[bool, str]:
    # the finder itself, not the sync machinery around it (which doctor has no use for)
    found = pythons.discover(pythons.default_pyenv_root(), pythons.default_uv_python_dir(),
                             os.environ.get("PATH", ""))
    if not found:
        return False, "interpreters: none found (install one with pyenv or 'uv python install')"
    by_version = {i.version: i.version_str for i in found}  # 3.6 before 3.10
    versions = ", ".join(by_version[v] for v in sorted(by_version))
    return True, f"interpreters: {len(found)} found ({versions})"


def check_inotify(paths: Paths) -> tuple[bool, str]:
    try:
        watches = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    except (OSError, ValueError):
        return True, "inotify: not available; venvd falls back to polling"
    if watches < 8192:
        return False, (f"inotify: max_user_watches is {watches}; raise it with "
                       "'sysctl fs.inotify.max_user_watches=65536'")
    return True, f"inotify: max_user_watches {watches}"


CHECKS: tuple[Check, ...] = (check_daemon, check_socket, check_hooks, check_this_shell,
                             check_login_bash, check_interpreters, check_inotify)


def run_checks(paths: Paths) -> int:
    failed = 0
    for check in CHECKS:
        ok, text = check(paths)
        failed += not ok
        print(("ok    " if ok else "FIX   ") + printable(text))  # paths: escaped
    return 1 if failed else 0
