"""Activation as data: what venvd changed in a shell, kept in one variable, reversible.

Like direnv's ``DIRENV_DIFF``, the whole state lives in the shell's environment, so the
client keeps nothing between calls and subshells, tmux panes and nested shells inherit it.
The state is tagged with the shell that made it: a shell that inherits it is brought to the
wanted state by reverting and re-applying, which never doubles or strips a ``PATH`` entry.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

STATE_VAR = "VENVD_STATE"
PATH_VAR = "PATH"
#: The project whose env ``deactivate`` turned off in this shell (until it leaves the project).
OFF_VAR = "VENVD_OFF"
#: The PATH a hand-activated virtualenv saved and puts back when deactivated (its activate
#: script keeps it in a plain shell variable in bash and zsh; the hook hands it over).
SAVED_PATH_VAR = "_OLD_VIRTUAL_PATH"
#: ``venvd activate`` (a child process, which cannot change its shell) leaves this file, plus
#: the shell's pid, in the private runtime folder; the hook sees it at the next prompt.
WAKE_NAME = "activate."
#: What activating a virtualenv sets (PATH aside); see ``projects.activation``.
VENV_VARIABLES = ("PYTHONHOME", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT")
#: Every variable an activation may change (``projects.activation``: a venv, or a conda env):
#: the client takes nothing else from the daemon (a rogue server must not set PROMPT_COMMAND).
ACTIVATION_NAMES = frozenset({*VENV_VARIABLES, PATH_VAR, "CONDA_PREFIX", "CONDA_DEFAULT_ENV"})
#: Set (exported) by the client while it refuses the runtime folder or the daemon, so that the
#: shell hears why once, not at every ``cd``.
REFUSED_VAR = "_VENVD_REFUSED"

Env = Mapping[str, str]


def wake_file(runtime: str, pid: int) -> str:
    """The file ``venvd activate`` leaves for the shell whose pid is *pid*."""
    return os.path.join(runtime, f"{WAKE_NAME}{pid}")


@dataclass(frozen=True)
class Wanted:
    """What the shell should have for the current directory."""

    project: Optional[str] = None
    variables: Mapping[str, Optional[str]] = field(default_factory=dict)
    path_prepend: Optional[str] = None

    @property
    def active(self) -> bool:
        return bool(self.variables) or self.path_prepend is not None


def wanted_from(exports: Mapping[str, object], project: Optional[str]) -> Wanted:
    """The daemon's (or ``projects.activation``'s) exports for *project* as a ``Wanted``:
    variable -> value or ``None``, and ``PATH`` as ``"prepend <folder>"``."""
    variables = {k: (None if v is None else str(v)) for k, v in exports.items() if k != "PATH"}
    path = exports.get("PATH")
    prepend = str(path)[len("prepend "):] if isinstance(path, str) else None
    return Wanted(project, variables, prepend)


@dataclass(frozen=True)
class State:
    """What venvd did to a shell: the values it set, the ones they replaced, its PATH entry."""

    shell: str
    project: Optional[str]
    prev: Mapping[str, Optional[str]]
    set: Mapping[str, Optional[str]]
    path: Optional[str]

    def blob(self) -> str:
        """Everything but the shell tag, in a form that is the same for every shell, so the
        daemon can keep it ready and a hook can tag it with builtins (``$$.<blob>``)."""
        raw = json.dumps(
            {"v": 2, "project": self.project, "prev": self.prev, "set": self.set,
             "path": self.path},
            sort_keys=True, separators=(",", ":"), ensure_ascii=True,
        )
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def encode(self) -> str:
        return f"{self.shell}.{self.blob()}"

    @property
    def simple(self) -> bool:
        """A plain venv activation over nothing: what a hook can apply and revert itself."""
        return (set(self.set) == set(VENV_VARIABLES) and self.path is not None
                and all(v is None for v in self.prev.values())
                and self.set.get("PYTHONHOME") is None)

    @classmethod
    def decode(cls, text: str) -> Optional[State]:
        """The state in *text*, or ``None`` if it is missing or not ours (never raises)."""
        try:
            tag, _, blob = text.partition(".")
            data = json.loads(base64.urlsafe_b64decode(blob.encode()))
            if data.get("v") != 2 or not tag:
                return None
            return cls(tag, data["project"], dict(data["prev"]), dict(data["set"]),
                       data["path"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def remembered(env: Mapping[str, Optional[str]]) -> Optional[tuple[str, str, str]]:
    """The activation in *env* a hook may revert by itself (see ``Shell.remember``): its
    (VENVD_STATE, VIRTUAL_ENV, VIRTUAL_ENV_PROMPT) when it is a plain venv, else ``None``."""
    text = env.get(STATE_VAR)
    state = State.decode(text) if text else None
    if state is None or not state.simple:
        return None
    return text or "", env.get("VIRTUAL_ENV") or "", env.get("VIRTUAL_ENV_PROMPT") or ""


def current_state(env: Env) -> Optional[State]:
    text = env.get(STATE_VAR)
    return State.decode(text) if text else None


def revert(env: dict[str, str], state: State) -> None:
    """Undo *state* in *env*: only what venvd set and nobody has changed since.

    One occurrence of venvd's ``PATH`` entry goes (the first, as the hooks' own path removes
    it), so an equal entry the user has as well stays. When a virtualenv was activated by
    hand on top, the ``PATH`` it saved for its ``deactivate`` holds venvd's entry too: it goes
    from there as well, or that ``deactivate`` would bring it back, stale.
    """
    hand_venv = env.get("VIRTUAL_ENV") not in (None, state.set.get("VIRTUAL_ENV"))
    for name, value in state.set.items():
        if hand_venv and name in VENV_VARIABLES:
            continue  # the hand-activated venv owns these now (its prompt may equal ours)
        if env.get(name) == value:
            _assign(env, name, state.prev.get(name))
    if state.path is not None:
        _remove_entry(env, PATH_VAR, state.path)
        if hand_venv:
            _remove_entry(env, SAVED_PATH_VAR, state.path)


def _remove_entry(env: dict[str, str], name: str, entry: str) -> None:
    # by text, as the hooks do: an entry that holds a ':' (one an older venvd put there) goes
    # too, which splitting the value on ':' could never find
    value = f":{env.get(name, '')}:"
    at = value.find(f":{entry}:")
    if at >= 0:
        value = value[:at] + value[at + len(entry) + 1:]
        env[name] = value[1:-1]


def _has_entry(value: str, entry: str) -> bool:
    return f":{entry}:" in f":{value}:"


def refusal(wanted: Wanted) -> Optional[str]:
    """Why venvd will not activate *wanted*, or ``None``.

    PATH separates its entries with ``:``, so an env whose ``bin`` folder has one in its
    path cannot be put on PATH at all: the shell would look in two folders that do not
    exist. Such a project stays inactive, in every shell, with this one message.
    """
    if wanted.path_prepend is not None and ":" in wanted.path_prepend:
        return (f"{wanted.project or wanted.path_prepend}: not activated: its path contains"
                " ':', which cannot be on PATH (':' separates PATH's folders); rename the"
                " folder to activate it")
    return None


def apply(env: dict[str, str], wanted: Wanted, shell: str) -> Optional[State]:
    """Move *env* to *wanted*; return the state to remember, or ``None`` if nothing was done.

    A virtualenv that someone activated by hand is left alone: venvd steps back until it is
    deactivated.
    """
    if not wanted.active:
        return None
    own_env = wanted.variables.get("VIRTUAL_ENV")
    by_hand = env.get("VIRTUAL_ENV")
    if by_hand and by_hand != own_env:
        return None
    prev = {name: env.get(name) for name in wanted.variables}
    for name, value in wanted.variables.items():
        _assign(env, name, value)
    if wanted.path_prepend is not None:
        current = env.get(PATH_VAR)
        env[PATH_VAR] = wanted.path_prepend + (":" + current if current else "")
    return State(shell, wanted.project, prev, dict(wanted.variables), wanted.path_prepend)


def plan(env: Env, wanted: Wanted, shell: str) -> dict[str, Optional[str]]:
    """The variable changes that take a shell whose environment is *env* to *wanted*.

    Empty when the shell is already there, so an unchanged prompt prints nothing. A project
    turned off by ``deactivate`` stays off while the shell is in it, and comes back once the
    shell has been elsewhere.
    """
    off = env.get(OFF_VAR)
    if (off and off == wanted.project) or refusal(wanted) is not None:
        wanted = Wanted(wanted.project)
    stale_off = bool(off) and off != wanted.project
    state = current_state(env)
    if state is not None and not stale_off and _in_place(env, state, wanted, shell):
        return {}
    after = dict(env)
    if stale_off:
        after.pop(OFF_VAR)
    if state is not None:
        revert(after, state)
    new_state = apply(after, wanted, shell)
    if new_state is None:
        after.pop(STATE_VAR, None)
    else:
        after[STATE_VAR] = new_state.encode()
    return diff(env, after)


def deactivate(env: Env) -> Optional[dict[str, Optional[str]]]:
    """The changes that turn venvd's env off in this shell, or ``None`` when venvd has
    nothing active here."""
    state = current_state(env)
    if state is None:
        return None
    after = dict(env)
    revert(after, state)
    del after[STATE_VAR]
    if state.project:
        after[OFF_VAR] = state.project
    return diff(env, after)


def diff(before: Env, after: Env) -> dict[str, Optional[str]]:
    """Name -> new value (``None``: unset) for every variable that differs."""
    names = set(before) | set(after)
    return {n: after.get(n) for n in sorted(names) if before.get(n) != after.get(n)}


def _in_place(env: Env, state: State, wanted: Wanted, shell: str) -> bool:
    if state.shell != shell or state.project != wanted.project:
        return False
    if dict(state.set) != dict(wanted.variables) or state.path != wanted.path_prepend:
        return False
    if any(env.get(name) != value for name, value in state.set.items()):
        return False
    # present anywhere: an entry the user put in front since is theirs to keep there
    return state.path is None or _has_entry(env.get(PATH_VAR, ""), state.path)


def _assign(env: dict[str, str], name: str, value: Optional[str]) -> None:
    if value is None:
        env.pop(name, None)
    else:
        env[name] = value
