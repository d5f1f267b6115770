"""What a prompt gets: the activation of the project its folder belongs to, answered from
what is on disk (the thread that answers prompts waits for no sync and starts no process),
and the shell's messages; the work a visit brings is handed to the keeper."""

from __future__ import annotations

from typing import Any, Callable, Optional

from venvd.daemon import projects
from venvd.daemon.keeper import Keeper
from venvd.daemon.protocol import Message
from venvd.daemon.shells import ShellInfo, ShellRegistry, untrusted_key
from venvd.daemon.view import View
from venvd.daemon.watch import Watcher


class Prompts:
    def __init__(self, shells: ShellRegistry, is_trusted: Callable[[str], bool], view: View,
                 watcher: Watcher, keeper: Keeper[Optional[ShellInfo]],
                 ensure_synced: Callable[[str, ShellInfo], None]) -> None:
        self.shells = shells
        self.ensure_synced = ensure_synced
        self._is_trusted = is_trusted
        self.view = view
        self.watcher = watcher
        self.keeper = keeper

    def export(self, directory: str, pid: Any, seen: Any = None) -> Message:
        """What a shell in *directory* should have active, and its messages (but the news
        up to *seen*, which its hook took from the news file)."""
        shell = self.shells.shell(pid)
        inner = projects.innermost(directory)
        root = projects.owner(inner) if inner else None
        project = projects.real(root) if root else None
        alias = _alias(inner, root, project)
        reply: Message = {"ok": True, "project": project, "exports": {}}
        self.shells.enter(shell, project, _generation(seen))
        if project is not None:
            if self._is_trusted(project):
                reply["exports"] = self._exports_for(project, shell)
                # the hooks' snippet only for a watched project (see Daemon.track): the
                # keeper watches this one after the prompt, and the next prompt writes it
                if self.watcher.is_watched(project):
                    self.view.keep_ready(project, reply["exports"], alias=alias)
            else:
                self.shells.tell_once(shell, untrusted_key(project),
                                      f"{project} is not allowed; run 'venvd allow' to trust it")
                self.view.keep_ready(project, None, alias=alias)
        reply["messages"] = self.shells.take(shell)
        return reply

    def _exports_for(self, project: str, shell: ShellInfo) -> dict[str, Any]:
        """The activation of *project*'s env, answered from what is on disk now.

        Whether the env is behind its files is checked right after, by the keeper thread:
        a prompt never waits for that, and a sync it starts tells the shells when done.
        Only a project without a usable env is checked on the spot, so that this very
        prompt hears that its env is being created; and only with the plan made before
        (the files unchanged): making one can start an interpreter, and that is the
        keeper's to do (this thread answers every prompt).
        """
        exports = self.view.activation(project, projects.env_path(project))
        if exports is None:
            self.ensure_synced(project, shell)
        self.keeper.visit(project, shell)
        return exports or {}


def _alias(inner: Optional[str], root: Optional[str], project: Optional[str]) -> Optional[str]:
    """The folder (real path) the hooks would look in for *inner*, when it is not *project*
    itself but a folder inside it (``docs/``, a workspace member); else ``None``."""
    if inner is None or root is None or project is None or inner == root:
        return None
    folder = projects.real(inner)
    return folder if folder.startswith(project.rstrip("/") + "/") else None


def _generation(seen: Any) -> int:
    """A generation a client passed (digits in a string: beyond what a request's numbers
    may be); 0 for anything else."""
    ok = isinstance(seen, str) and seen.isascii() and seen.isdigit() and len(seen) <= 20
    return int(seen) if ok else 0
