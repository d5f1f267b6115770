"""A new lock state made from the nearest one already built, so that the cost of a lockfile
edit follows the size of the change, not the size of the env (issue 14).

The nearest state (the live one first, else the most recently used complete one) of the SAME
interpreter is copied into the new state's folder with a hard link per file, as uv installs from
its cache; what names the old folder is written anew for the new one (``pyvenv.cfg``, the
activate scripts, the console scripts' ``#!`` line and the hashes ``RECORD`` keeps of them, and
any ``.pth`` or ``direct_url.json`` that names it: editable installs name the project, not the
env, so they stay links); symlinks are made anew. The engine then applies only the difference,
with a sync that is exact, so the result is what a fresh build makes.

A hard-linked file is shared with the old state, which a shell may be using: a file that must
change is never written in place, always created anew (``O_EXCL``) or replaced by a rename. The
engines keep that too: uv installs by hard link, or links to a temporary name and renames it
over a file that exists; it removes a package by unlinking its files, and ``RECORD``, the one
file it edits, it copies into the new ``.dist-info`` before editing. Poetry's installer opens an
existing file with ``"wb"`` (it writes over a namespace package's ``__init__.py``) and appends
to ``RECORD``: for the tools that install with their own installer the clone is made of copies
(see ``Engine.clone``), still cheaper than a fresh install, never shared.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Optional

from venvd.daemon import pythons
from venvd.daemon.seeding import pyvenv_cfg, shebang
from venvd.daemon.states import COMPLETE, is_complete

#: What a new state never takes from the old one: its completion mark, the engine's derived
#: files (the pin set, the record of what was installed, written in place by their makers)
#: and uv's lock file (an flock shared by two envs would make each wait for the other).
SKIP = frozenset({COMPLETE, ".venvd", ".lock"})
#: Larger files in ``bin`` are programs, not scripts: linked without a look.
_SCRIPT_MAX = 1 << 20
LINKS, COPIES = "links", "copies"


def same_interpreter(env: Path, interpreter: pythons.Interpreter) -> bool:
    """Whether *env* (its ``pyvenv.cfg``) was made with *interpreter*: path and version."""
    cfg = pyvenv_cfg(env)
    if cfg.get("version_info") != interpreter.version_str:
        return False
    home = os.path.realpath(cfg.get("home", ""))
    real = os.path.realpath(interpreter.path)
    return home in (os.path.dirname(real), os.path.realpath(os.path.dirname(interpreter.path)))


def nearest(store: Path, live: Path, interpreter: pythons.Interpreter) -> Optional[Path]:
    """The complete state of *interpreter* to start a new one from: the one ``.venv`` points
    at, else the most recently used; ``None`` when there is none (then a fresh build).

    A state with drift is as good a start as any: the engine's exact sync removes what was
    added by hand, as it removes what the new lock drops."""
    current = live.resolve() if live.is_symlink() else None
    states = [f for f in store.iterdir() if f.is_dir()] if store.is_dir() else []
    states.sort(key=lambda f: (f != current, -_last_used(f)))
    for state in states:
        if is_complete(state) and same_interpreter(state, interpreter):
            return state
    return None


def _last_used(folder: Path) -> float:
    try:
        return (folder / COMPLETE).stat().st_mtime
    except OSError:
        return 0.0


def clone(source: Path, target: Path, mode: str = LINKS) -> None:
    """Make *target* (which must not exist) a copy of the env *source* for its new name:
    files hard-linked (*mode* ``links``) or copied (``copies``), what names *source* written
    anew. Raises OSError; then *target* may hold a part of the copy."""
    names = _Names(source, target)
    os.mkdir(target)
    for entry in os.scandir(source):
        dest = os.path.join(target, entry.name)
        if entry.name in SKIP:
            continue
        if entry.is_symlink():
            _symlink(entry.path, dest, names)
        elif entry.is_dir() and entry.name == "bin":
            _bin(entry.path, dest, names, mode)
        elif entry.is_dir():
            _tree(entry.path, dest, names, mode)
        else:  # pyvenv.cfg and uv's markers: small, and pyvenv.cfg is appended to (seeding)
            _write_new(dest, names.fix(_read(entry.path)), entry.stat().st_mode)
    if names.scripts:
        _fix_records(target, names.scripts)


class _Names:
    """How *source* is named in the env's text files, and what was rewritten."""

    def __init__(self, source: Path, target: Path) -> None:
        self.source, self.target = source, target
        # the folder's last two parts (the project's store and the state) are plain names,
        # so however a script quotes the whole path, they appear in it as they are
        tail = os.fsencode(os.path.join(source.parent.name, source.name))
        self.tail = re.compile(re.escape(tail) + rb"(?![A-Za-z0-9._-])")
        self.new_tail = os.fsencode(os.path.join(target.parent.name, target.name))
        self.old_python = os.fsencode(source / "bin" / "python")
        #: rewritten scripts in bin: name -> their new bytes (for the RECORD hashes)
        self.scripts: dict[str, bytes] = {}

    def names(self, data: bytes) -> bool:
        return self.tail.search(data) is not None

    def fix(self, data: bytes) -> bytes:
        return self.tail.sub(lambda _: self.new_tail, data)


def _tree(src: str, dst: str, names: _Names, mode: str) -> None:
    os.mkdir(dst)
    for entry in os.scandir(src):
        dest = os.path.join(dst, entry.name)
        if entry.is_symlink():
            _symlink(entry.path, dest, names)
        elif entry.is_dir():
            _tree(entry.path, dest, names, mode)
        elif entry.name.endswith(".pth") or entry.name == "direct_url.json":
            data = _read(entry.path)  # small; an editable's names the project, not the env
            if names.names(data):
                _write_new(dest, names.fix(data), entry.stat().st_mode)
            else:
                _place(entry.path, dest, mode)
        else:
            _place(entry.path, dest, mode)


def _bin(src: str, dst: str, names: _Names, mode: str) -> None:
    os.mkdir(dst)
    for entry in os.scandir(src):
        dest = os.path.join(dst, entry.name)
        if entry.is_symlink():
            _symlink(entry.path, dest, names)
            continue
        if entry.is_dir():
            _tree(entry.path, dest, names, mode)
            continue
        info = entry.stat()
        data = _read(entry.path) if info.st_size <= _SCRIPT_MAX else b""
        if not names.names(data):
            _place(entry.path, dest, mode)
            continue
        fixed = _reshebang(data, names) or names.fix(data)
        _write_new(dest, fixed, info.st_mode)
        names.scripts[entry.name] = fixed


def _reshebang(data: bytes, names: _Names) -> Optional[bytes]:
    """A console script naming the old env's python, with the ``#!`` line written anew when
    the new path needs the other form (a longer folder name can cross the kernel's limit:
    the form uv writes then); ``None`` when the form stays (the name is replaced as it is,
    in the quoting of the installer that wrote it) or *data* is not such a script."""
    lines = data.split(b"\n")
    short = lines[0] == b"#!" + names.old_python
    long = (lines[0] == b"#!/bin/sh" and len(lines) > 2 and lines[1].startswith(b"'''exec' ")
            and names.names(lines[1]) and lines[2] == b"' '''")
    head = shebang(str(names.target / "bin" / "python"))
    fits = len(head) == 1
    if not ((short and not fits) or (long and fits)):
        return None
    return b"\n".join([*head, *lines[1 if short else 3:]])


def _fix_records(target: Path, scripts: dict[str, bytes]) -> None:
    """Give the rewritten scripts their new hash and size in the ``RECORD`` listing them, as
    a fresh install writes them (the RECORD is replaced, never edited in place)."""
    for record in target.glob("lib/*/site-packages/*.dist-info/RECORD"):
        data = _read(str(record))
        if b"bin/" not in data:
            continue
        lines = data.split(b"\n")
        changed = False
        for i, line in enumerate(lines):
            path = line.split(b",", 1)[0]
            name = os.path.basename(os.fsdecode(path))
            if name in scripts and os.path.normpath(
                    os.path.join(record.parent.parent, os.fsdecode(path))) == str(
                    target / "bin" / name):
                body = scripts[name]
                lines[i] = b"%s,sha256=%s,%d" % (path, _digest(body), len(body))
                changed = True
        if changed:
            _replace(record, b"\n".join(lines))


def _digest(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")


def _place(src: str, dest: str, mode: str) -> None:
    if mode == LINKS:
        try:
            os.link(src, dest)
            return
        except OSError:  # another file system, or too many links: a copy is as good
            pass
    shutil.copy2(src, dest)


def _symlink(src: str, dest: str, names: _Names) -> None:
    """The link made anew (``bin/python`` -> the interpreter); one that points into the old
    env points into the new one."""
    os.symlink(os.fsdecode(names.fix(os.fsencode(os.readlink(src)))), dest)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_new(path: str, data: bytes, mode: int) -> None:
    """*data* as a new file at *path*: ``O_EXCL``, so never into a file that exists (and may
    be a hard link shared with the old state)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o7777)
    with open(fd, "wb") as f:
        f.write(data)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.venvd")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write_new(str(tmp), data, path.stat().st_mode)
    os.replace(tmp, path)
