"""Non-interactive use: ``venvd exec``, ``venvd env`` and ``venvd python``.

Agents, IDE tasks, Makefiles and ``BASH_ENV`` run commands without a prompt, so no hook
activates anything for them. These commands give them the activation a hook would make: the
daemon's answer for the project (``status``'s exports), applied with the hooks' own model
(``venvd.shell.activation``) to the caller's environment with any venvd activation in it
reverted first, as ``direnv exec`` reverts its own.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any, Callable, Optional

from venvd.client.commands import ask, directory
from venvd.client.connection import stream
from venvd.daemon import projects
from venvd.daemon.display import printable
from venvd.daemon.errors import UsageError, VenvdError
from venvd.daemon.paths import user_paths
from venvd.shell import SHELLS, get_shell
from venvd.shell.activation import (
    OFF_VAR,
    PATH_VAR,
    STATE_VAR,
    apply,
    current_state,
    diff,
    refusal,
    revert,
    wanted_from,
)

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]

#: States whose env is the one the project's files ask for (drift is the user's own doing).
SETTLED = ("synced", "drifted")


class NotReady(VenvdError):
    """The project's env cannot be used: not allowed, its sync failed, or none yet."""


def register(add: Add) -> None:
    """Add ``exec``, ``env`` and ``python`` to the command table."""
    run = add("exec", exec_command, "run a command in a project's env (no hook needed)")
    run.add_argument("--no-wait", action="store_true",
                     help="do not wait for a running or needed sync")
    run.add_argument("words", nargs=argparse.REMAINDER, metavar="[DIR] -- CMD ...")
    env = add("env", env_command, "print what an activation sets (for scripts and BASH_ENV)")
    env.add_argument("dir", nargs="?", default=".")
    shape = env.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the values and the unset names")
    shape.add_argument("--shell", choices=tuple(SHELLS), default="bash",
                       help="print it in SHELL's syntax (default: POSIX export lines)")
    env.add_argument("--no-wait", action="store_true",
                     help="do not wait for a running or needed sync")
    py = add("python", python_command, "print the path of a project env's interpreter")
    py.add_argument("dir", nargs="?", default=".")


def split_words(words: list[str]) -> tuple[str, list[str], bool]:
    """``[DIR] -- CMD ...`` (or just ``CMD ...``) as (DIR, CMD, whether ``--no-wait`` came
    after DIR, where argparse leaves it among the words)."""
    no_wait = False
    if "--" in words:
        at = words.index("--")
        before, command = words[:at], words[at + 1:]
        no_wait = "--no-wait" in before
        before = [w for w in before if w != "--no-wait"]
        if len(before) > 1:
            raise UsageError(f"exec: one DIR before '--', got {len(before)}: "
                             f"{shlex.join(before)}")
        folder = before[0] if before else "."
    else:
        folder, command = ".", words
    if not command:
        raise UsageError("exec: name a command: venvd exec [DIR] -- CMD ...")
    return os.path.abspath(folder), command, no_wait


def ready_status(folder: str, wait: bool, failed_ok: bool = False) -> dict[str, Any]:
    """The daemon's status of the project around *folder*, once its env can be used."""
    found = status_of(folder)
    check_usable(found, failed_ok)
    if wait and found["state"] not in SETTLED:
        print(f"venvd: waiting for the sync of {printable(found['project'])} ({found['state']})",
              file=sys.stderr, flush=True)
        wait_for_sync(found["project"])
        found = status_of(folder)
        check_usable(found)
    if not found["exports"]:
        raise NotReady(f"{found['project']} has no environment yet ({found['state']}); "
                       "'venvd sync --wait' builds it")
    return found


def status_of(folder: str) -> dict[str, Any]:
    found: dict[str, Any] = ask({"op": "status", "dir": folder, "all": False})["projects"][0]
    return found


def check_usable(found: Mapping[str, Any], failed_ok: bool = False) -> None:
    project = found["project"]
    if not found["trusted"]:
        raise NotReady(f"{project} is not allowed; run: venvd allow {shlex.quote(project)}")
    if found["state"] == "failed" and not failed_ok:
        last = found.get("last_sync") or {}
        raise NotReady(f"sync of {project} failed: "
                       f"{found.get('problem') or last.get('error') or 'see venvd logs'}")


def wait_for_sync(project: str) -> None:
    """What ``venvd sync --wait`` does, quietly: join (or start) the project's sync."""
    replies = stream(str(user_paths().socket), {"op": "sync", "dir": project, "wait": True},
                     None)
    final = collections.deque(replies, maxlen=1)[0]  # the result, after the progress lines
    if not final.get("ok"):
        raise NotReady(f"sync of {project} failed: {final.get('error')}")


def activated(environ: Mapping[str, str], exports: Mapping[str, object],
              project: Optional[str], tag: str) -> dict[str, str]:
    """*environ* with venvd's activation (if any) reverted, then *exports* applied.

    An explicit request wins over a virtualenv activated by hand (which a hook leaves
    alone): it is taken off first, as uv does for a project command.
    """
    env = dict(environ)
    state = current_state(env)
    if state is not None:
        revert(env, state)
    env.pop(STATE_VAR, None)
    env.pop(OFF_VAR, None)  # 'deactivate' turned a shell's env off, not this command's
    wanted = wanted_from(exports, project)
    refused = refusal(wanted)
    if refused is not None:
        raise NotReady(refused)
    if not wanted.active:
        return env
    drop_hand_venv(env, wanted.variables.get("VIRTUAL_ENV"))
    new_state = apply(env, wanted, tag)
    if new_state is not None:
        env[STATE_VAR] = new_state.encode()
    return env


def drop_hand_venv(env: dict[str, str], ours: Optional[str]) -> None:
    other = env.get("VIRTUAL_ENV")
    if not other or other == ours:
        return
    entries = env.get(PATH_VAR, "").split(os.pathsep)
    bin_dir = os.path.join(other, "bin")
    if bin_dir in entries:
        entries.remove(bin_dir)
        env[PATH_VAR] = os.pathsep.join(entries)
    env.pop("VIRTUAL_ENV", None)
    env.pop("VIRTUAL_ENV_PROMPT", None)


def exec_command(args: argparse.Namespace) -> int:
    """Replace this process with CMD, so its signals and exit status are CMD's own.

    Outside any project CMD runs with venvd's activation reverted and nothing applied,
    as ``direnv exec`` runs a command where no ``.envrc`` is found.
    """
    folder, command, no_wait = split_words(list(args.words))
    tag = str(os.getpid())  # CMD keeps this pid: a hooked shell run as CMD owns the state
    if projects.find_project(folder) is None:
        env = activated(os.environ, {}, None, tag)
    else:
        found = ready_status(folder, not (args.no_wait or no_wait))
        env = activated(os.environ, found["exports"], found["project"], tag)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        print(f"venvd: exec: {printable(command[0])}: command not found", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"venvd: exec: {printable(command[0])}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: execvpe returns only by raising


def env_command(args: argparse.Namespace) -> int:
    """Print the activation. Outside a project: the code that takes back venvd's activation
    (a ``BASH_ENV`` file run in a plain folder by a shell that inherited one), and exit 1."""
    folder = directory(args)
    found: dict[str, Any] = {"project": None, "env": None, "exports": {}}
    if projects.find_project(folder) is not None:
        found = ready_status(folder, not args.no_wait)
    after = activated(os.environ, found["exports"], found["project"], str(os.getppid()))
    changes = activation_changes(os.environ, after, found["exports"])
    if args.json:
        print(json.dumps({
            "project": found["project"], "env": found["env"],
            "python": found["env"] and projects.env_python(found["env"]),
            "set": {k: v for k, v in changes.items() if v is not None},
            "unset": sorted({k for k, v in (*changes.items(), *found["exports"].items())
                             if v is None}),
        }, indent=2, sort_keys=True))
    else:
        sys.stdout.write(get_shell(args.shell).export(changes))
    if found["project"] is None:
        print(f"venvd: no project at or above {printable(folder)}", file=sys.stderr)
        return 1
    return 0


def activation_changes(environ: Mapping[str, str], after: Mapping[str, str],
                       exports: Mapping[str, object]) -> dict[str, Optional[str]]:
    """What moves *environ* to *after*, always naming every variable the activation sets
    (a caller already in the env gets the whole activation, not an empty answer). A name
    already unset is not unset again: fish's ``set -e`` of one fails, and ``... | source;
    and CMD`` would not run CMD."""
    changes = diff(environ, after)
    for name in (*exports, STATE_VAR):
        if after.get(name) is not None:
            changes.setdefault(name, after[name])
    return dict(sorted(changes.items()))


def python_command(args: argparse.Namespace) -> int:
    folder = directory(args)
    if projects.find_project(folder) is None:
        raise NotReady(f"no project at or above {folder}")
    # the path an editor is given stays the same through a failed sync (the last good env
    # stays in place), so only an env that is not there yet is refused
    found = ready_status(folder, wait=False, failed_ok=True)
    print(projects.env_python(found["env"]))
    return 0
