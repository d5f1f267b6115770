"""``venvd export SHELL``: what the hook runs when ``$PWD`` or the daemon's generation changed.

Prints the shell code that moves this shell to the state wanted for ``$PWD`` (often nothing),
and the daemon's messages on stderr. Imports only the standard library and venvd's own
stdlib-only modules, and runs with ``python -I -S`` from the hook. If the daemon is down or
slow it still activates an existing env of an allowed project, and starts the daemon.
It never prints a traceback into a prompt. With ``--action deactivate`` it prints what
turns venvd's env off in this shell instead (the hook's ``deactivate``; no daemon needed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__ and Path(__file__).parents[1].name == "venvd":
    # Run as a script with -I -S (no site): find the venvd package beside us.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from venvd.client.connection import DaemonUnavailable, ForeignDaemon, request, start_daemon
from venvd.daemon import projects, trust
from venvd.daemon.display import printable
from venvd.daemon.ownership import RuntimeRefused, runtime_problem
from venvd.shell import SHELLS, Shell, UnknownShell, get_shell
from venvd.shell.activation import (
    ACTIVATION_NAMES,
    REFUSED_VAR,
    Wanted,
    deactivate,
    plan,
    refusal,
    remembered,
    wake_file,
    wanted_from,
)

#: How long a prompt may wait for the daemon before falling back to what is on disk.
TIMEOUT = 1.0


def ask_daemon(sock: str, directory: str, pid: int, seen: str = "") -> tuple[Wanted, list[str]]:
    message = {"op": "export", "dir": directory, "pid": pid}
    if seen.isascii() and seen.isdigit():  # the news up to there came to the hook from the
        message["seen"] = seen  # news file; a string (requests hold no number this large)
    reply = request(sock, message, timeout=TIMEOUT)
    if not reply.get("ok"):
        return Wanted(), [str(reply.get("error", "the daemon refused the request"))]
    exports, dropped = accepted(reply.get("exports"))
    project = reply.get("project")
    messages = [str(m) for m in reply.get("messages") or [] if isinstance(m, str)]
    if dropped:
        messages.append(f"ignored what the daemon sent for {', '.join(dropped)}: not part of"
                        " an activation")
    return wanted_from(exports, project if isinstance(project, str) else None), messages


def accepted(exports: object) -> tuple[dict[str, object], list[str]]:
    """The daemon's exports an activation may set, and the names dropped: only the variables
    of ``ACTIVATION_NAMES``, PATH only as ``prepend <absolute folder>``, PYTHONHOME only
    unset (anything else would let the server run code in the shell)."""
    if not isinstance(exports, dict):
        return {}, ([] if exports is None else ["(not a table of variables)"])
    kept: dict[str, object] = {}
    dropped: list[str] = []
    for name, value in exports.items():
        if name == "PATH":
            ok = isinstance(value, str) and value.startswith("prepend /")
        elif name == "PYTHONHOME":
            ok = value is None
        else:
            ok = name in ACTIVATION_NAMES and (value is None or isinstance(value, str))
        if ok:
            kept[name] = value
        else:
            dropped.append(str(name))
    return kept, dropped


def on_disk(directory: str, state_db: str) -> Wanted:
    """What to activate without the daemon: an existing env of an allowed project."""
    root = projects.find_project(directory)
    if root is None:
        return Wanted()
    project = projects.real(root)
    env = projects.env_path(project)
    record = trust.read_record(state_db, project) if state_db else None
    if not trust.decide(record, project, ()) or not projects.env_is_usable(env):
        return Wanted(project)
    return wanted_from(projects.activation(project, env), project)


def parse(argv: list[str]) -> dict[str, str]:
    if not argv:
        raise UnknownShell(f"usage: venvd export {'|'.join(SHELLS)}")
    options = {"shell": argv[0], "socket": "", "state-db": "", "pid": "", "action": "export",
               "seen": ""}
    rest = argv[1:]
    while rest:
        key, rest = rest[0], rest[1:]
        if not key.startswith("--") or key[2:] not in options or not rest:
            raise UnknownShell(f"usage: venvd export SHELL [--socket S] [--state-db F] [--pid N]"
                               f" [--seen GENERATION] [--action export|deactivate]"
                               f" (unexpected {key!r})")
        options[key[2:]], rest = rest[0], rest[1:]
    if options["action"] not in ("export", "deactivate"):
        raise UnknownShell(f"unknown action {options['action']!r}; choose export or deactivate")
    return options


def default_paths(options: dict[str, str]) -> None:
    if not options["socket"] or not options["state-db"]:
        from venvd.daemon.paths import user_paths

        paths = user_paths()
        options["socket"] = options["socket"] or str(paths.socket)
        options["state-db"] = options["state-db"] or str(paths.db)


def check_runtime(socket_path: str) -> None:
    """Use nothing from a runtime folder that is not ours and private (see ``runtime_problem``)."""
    problem = runtime_problem(os.path.dirname(socket_path), missing_ok=True)
    if problem is not None:
        raise RuntimeRefused(problem)


def current_directory() -> str:
    pwd = os.environ.get("PWD", "")
    try:
        if os.path.isabs(pwd) and os.path.samefile(pwd, "."):
            return pwd
        return os.getcwd()
    except OSError:
        return pwd or "/"


def turn_off(shell: Shell, options: dict[str, str]) -> int:
    """What the hook's ``deactivate`` runs: venvd's env off in this shell (no daemon needed)."""
    changes = deactivate(os.environ)
    if changes is None:
        print("venvd: deactivate: no environment is active in this shell", file=sys.stderr)
        return 1
    if options["pid"].isdigit():  # an old `venvd activate` of a shell that had this pid
        default_paths(options)
        with contextlib.suppress(OSError):
            os.unlink(wake_file(os.path.dirname(options["socket"]), int(options["pid"])))
    sys.stdout.write(shell.export(changes))
    sys.stdout.write(shell.remember(None))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse(sys.argv[1:] if argv is None else argv)
        shell = get_shell(options["shell"])
    except UnknownShell as exc:
        print(f"venvd: {exc}", file=sys.stderr)
        return 2
    if options["action"] == "deactivate":
        return turn_off(shell, options)
    try:
        pid = int(options["pid"]) if options["pid"].isdigit() else os.getppid()
        directory = current_directory()
        refused_by: str | None = None
        try:
            default_paths(options)
            check_runtime(options["socket"])
            wanted, messages = ask_daemon(options["socket"], directory, pid, options["seen"])
        except DaemonUnavailable:
            start_daemon()
            wanted, messages = on_disk(directory, options["state-db"]), []
        except (RuntimeRefused, ForeignDaemon) as exc:  # no daemon of ours: what is on disk
            refused_by = str(exc)
            wanted, messages = on_disk(directory, options["state-db"]), []
        changes = plan(os.environ, wanted, str(pid))
        changes.update(refused_once(refused_by, messages))
        if changes:  # an unchanged prompt gets no code at all
            sys.stdout.write(shell.export(changes))
            sys.stdout.write(shell.remember(remembered({**os.environ, **changes})))
        refused = refusal(wanted)
        if refused is not None:
            messages.append(refused)
        for message in messages:  # names and tool output: never a raw control character
            print(f"venvd: {printable(message)}", file=sys.stderr)
        return 0
    except Exception as exc:  # the prompt must survive anything
        print(f"venvd: export failed: {printable(repr(exc))}", file=sys.stderr)
        return 1


def refused_once(refused_by: str | None, messages: list[str]) -> dict[str, str | None]:
    """Say why the runtime folder or the daemon is refused once per shell, not at every
    ``cd``: the shell keeps the reason it was told in ``REFUSED_VAR``."""
    told = os.environ.get(REFUSED_VAR)
    if refused_by is None:
        return {REFUSED_VAR: None} if told is not None else {}
    if told == printable(refused_by):
        return {}
    messages.append(refused_by)
    return {REFUSED_VAR: printable(refused_by)}


if __name__ == "__main__":
    sys.exit(main())
