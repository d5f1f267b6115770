"""Which runtime folder venvd trusts: one the user owns that nobody else may write to.

Standard library only: the prompt client checks the folder before it uses anything in it.
"""

from __future__ import annotations

import os
import stat
from typing import Optional

from venvd.daemon.errors import VenvdError


class RuntimeRefused(VenvdError):
    """The runtime folder (socket, snippets, generation) is not private to this user."""


def runtime_problem(path: str, missing_ok: bool = False) -> Optional[str]:
    """Why the folder *path* must not be trusted (``None``: it is ours and private).

    Another user's folder (a ``/tmp/runtime-$USER`` made first by someone else), a symlink,
    or one that others may write to (they could have planted a snippet or a socket) is
    refused; the hooks and the client then use nothing in it. With *missing_ok*, a folder that
    does not exist yet is no problem (the daemon makes it private when it starts).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None if missing_ok else f"the runtime folder {path} does not exist"
    except OSError as exc:
        return f"cannot use the runtime folder {path}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return f"the runtime folder {path} is not a folder of yours; refusing to use it"
    if stat.S_IMODE(info.st_mode) & 0o022:
        return (f"the runtime folder {path} is writable by other users; refusing to use it"
                " (chmod 700 it, or remove it)")
    return None
