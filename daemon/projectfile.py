"""Reading a file that a project (someone else's repository) controls. Standard library only:
the client's fallback uses it too.

A repository can ship ``pyproject.toml`` as a symlink to ``/dev/zero`` or as a FIFO (git
delivers both). A plain ``open().read()`` then eats memory until the machine gives out, or
blocks a request thread for good. Here only regular files are read, never more than a cap,
and the open itself cannot block.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Protocol

from venvd.daemon.errors import VenvdError

#: Enough for any real ``pyproject.toml`` or ``.venvd.toml`` (the largest seen are ~50 KB).
MAX_TOML = 1024 * 1024
#: Requirement files and lockfiles can be larger (hashes for hundreds of packages).
MAX_LOCKFILE = 32 * 1024 * 1024
#: Files only hashed (a lockfile's fingerprint), never held whole in memory: a generous cap.
MAX_HASHED = 64 * 1024 * 1024
#: Small files venvd reads on every prompt or sync (``.python-version``, ``pyvenv.cfg``).
MAX_SMALL = 64 * 1024


class HashLike(Protocol):
    def update(self, data: bytes, /) -> None: ...


class UnsafeFile(VenvdError):
    """A project file venvd refuses to read; the message names the file and why."""


def present(path: str | os.PathLike[str]) -> bool:
    """Whether *path* names something other than a folder. Unlike ``is_file()`` a FIFO or a
    device counts: reading it then refuses it by name, where skipping it would leave the
    project looking as if the file were not there."""
    return os.path.exists(path) and not os.path.isdir(path)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _check(path: str, info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} is {_kind(info.st_mode)}, not a regular file; "
                         "refusing to read it")
    if info.st_size > limit:
        raise UnsafeFile(f"{path} is larger than {_size(limit)}; refusing to read it")


def _open(name: str, limit: int) -> int:
    try:
        # Checked before opening too: opening some devices (a tty, a tape) has effects.
        _check(name, os.stat(name), limit)
        # O_NONBLOCK: a FIFO swapped in after the check must not block the open or read.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"{name}: cannot read: {exc.strerror}") from None
    try:
        _check(name, os.fstat(fd), limit)  # what was opened, not what the path named before
    except BaseException:
        os.close(fd)
        raise
    return fd


def _chunks(path: str | os.PathLike[str], limit: int) -> Iterator[bytes]:
    """The file's bytes in chunks of at most 64 KiB; raises as ``read_project_file``."""
    name = os.fspath(path)
    fd = _open(name, limit)
    try:
        size = 0
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                return
            size += len(chunk)
            if size > limit:  # it grew after the check
                raise UnsafeFile(f"{name} is larger than {_size(limit)}; "
                                 "refusing to read it")
            yield chunk
    except BlockingIOError:
        raise UnsafeFile(f"{name}: cannot read without waiting; refusing to read it") from None
    except OSError as exc:
        raise UnsafeFile(f"{name}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_project_file(path: str | os.PathLike[str], limit: int = MAX_TOML) -> bytes:
    """The bytes of the regular file *path* (a symlink to one is fine), at most *limit*.

    A missing file raises ``FileNotFoundError`` as ``open`` does; anything else that cannot
    be read (a device, FIFO or socket, too large, no permission) raises ``UnsafeFile``.
    """
    return b"".join(_chunks(path, limit))


def read_project_text(path: str | os.PathLike[str], limit: int) -> str:
    """``read_project_file`` decoded as UTF-8, undecodable bytes replaced."""
    return read_project_file(path, limit).decode("utf-8", errors="replace")


def hash_project_file(path: str | os.PathLike[str], digest: HashLike,
                      limit: int = MAX_HASHED) -> None:
    """Feed the regular file *path* to *digest* a chunk at a time (never held whole);
    raises as ``read_project_file``."""
    for chunk in _chunks(path, limit):
        digest.update(chunk)
