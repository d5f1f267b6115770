"""``venvd daemon start|stop|restart|status|run|install-service``: the daemon's life, from
the command line."""

from __future__ import annotations

import argparse
import os
import sys
import time

from venvd.client.commands import START_TIMEOUT, checked_paths, ensure_daemon
from venvd.client.connection import DaemonUnavailable, request
from venvd.daemon.errors import UsageError
from venvd.daemon.paths import Paths


def daemon(args: argparse.Namespace) -> int:
    action: str = args.action
    if action == "install-service":
        from venvd.client.service import install_service

        return install_service(args.uninstall)
    if args.uninstall:
        raise UsageError("--uninstall goes with 'venvd daemon install-service'")
    return DAEMON_ACTIONS[action](checked_paths())


def daemon_start(paths: Paths) -> int:
    try:
        reply = request(str(paths.socket), {"op": "ping"}, 2.0)
        print(f"venvd: the daemon is already running (pid {reply.get('pid')})")
        return 0
    except DaemonUnavailable:
        ensure_daemon()
    print(f"venvd: daemon started (socket {paths.socket})")
    return 0


def daemon_stop(paths: Paths) -> int:
    print("venvd: daemon stopped" if stop(paths) else "venvd: the daemon is not running")
    return 0


def stop(paths: Paths) -> bool:
    """Stop the daemon and wait until it has ended (and let go of its lock); False when
    none was running."""
    try:
        pid = request(str(paths.socket), {"op": "ping"}, 2.0).get("pid")
        request(str(paths.socket), {"op": "stop"}, 5.0)
    except DaemonUnavailable:
        return False
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and isinstance(pid, int) and _alive(pid):
        time.sleep(0.05)
    return True


def daemon_restart(paths: Paths) -> int:
    daemon_stop(paths)
    return daemon_start(paths)


def daemon_status(paths: Paths) -> int:
    try:
        s = request(str(paths.socket), {"op": "daemon-status"}, 5.0)
    except DaemonUnavailable:
        print("venvd: the daemon is not running ('venvd daemon start' starts it)")
        return 1
    print(f"pid       {s['pid']}\nuptime    {s['uptime']:.0f} s\n"
          f"memory    {s['rss'] / 1e6:.1f} MB\nthreads   {s['threads']}\n"
          f"projects  {s['projects']}\nshells    {s['shells']}\n"
          f"queue     {', '.join(f'{k} ({v})' for k, v in s['queue'].items()) or 'empty'}\n"
          f"socket    {s['socket']}")
    return 0


def daemon_run(paths: Paths) -> int:
    """The daemon in the foreground (what a service manager runs). One that already answers
    (started on demand) is left to serve: this one exits 0, so that a service manager
    restarting on failure does not try again and again."""
    try:
        pid = request(str(paths.socket), {"op": "ping"}, 2.0).get("pid")
    except DaemonUnavailable:
        from venvd.daemon.__main__ import main as daemon_main

        return daemon_main(["venvd", "run"])
    print(f"venvd: a daemon is already running (pid {pid}); this one is not needed",
          file=sys.stderr)
    return 0


DAEMON_ACTIONS = {
    "start": daemon_start, "stop": daemon_stop, "restart": daemon_restart,
    "status": daemon_status, "run": daemon_run,
}


def _alive(pid: int) -> bool:
    """Whether *pid* still runs. A zombie does not: a stopped daemon whose parent (an init
    that does not reap, as in many containers) never waits for it keeps its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[:1] != [b"Z"]
    except OSError:  # no /proc (not Linux): the signal test is all there is
        return True
