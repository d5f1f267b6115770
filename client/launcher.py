"""The ``venvd`` command as install.sh writes it, over the console script pip made: the
interpreter runs with ``-I -S``, as the hooks' export client does, and finds venvd's
site-packages by its path. No ``site`` (nor the ``.pth`` files it runs) and no ``import re``
of pip's script: ``venvd allow`` reaches the daemon milliseconds sooner.

    python -I -m venvd.client.launcher VENV/bin/venvd
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

#: The longest ``#!`` line the kernel reads whole (longer ones go through /bin/sh).
SHEBANG_MAX = 127

BODY = """# venvd's command, written by install.sh (see venvd.client.launcher)
import sys
sys.path.append({site!r})  # where site would put it: after the standard library
from venvd.client.main import main
sys.exit(main())
"""


def script(python: str, site: str) -> str:
    head = f"#!{python} -IS"
    if len(head) > SHEBANG_MAX or any(c.isspace() for c in python):
        # as pip writes a long or spaced interpreter path: sh runs python on this file
        head = f"#!/bin/sh\n'''exec' {shlex.quote(python)} -IS \"$0\" \"$@\"\n' '''"
    return head + "\n" + BODY.format(site=site)


def write(target: Path, python: str, site: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(script(python, site), encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, target)


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve()
    if len(argv) != 1 or here.parents[1].name != "venvd":
        print("usage: python -I -m venvd.client.launcher VENV/bin/venvd (from an installed "
              "venvd, not a checkout)", file=sys.stderr)
        return 2
    try:
        write(Path(argv[0]), sys.executable, str(here.parents[2]))
    except OSError as exc:
        print(f"venvd: cannot write {argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
