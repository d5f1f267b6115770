"""``python -m venvd.daemon run``: the daemon in the foreground (what systemd and the client
start)."""

from __future__ import annotations

import logging
import sys

from venvd.daemon.errors import VenvdError
from venvd.daemon.paths import user_paths
from venvd.daemon.server import run


def find_uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def main(argv: list[str]) -> int:
    if argv[1:] not in (["run"], ["run", "--log-file"]):
        print("usage: python -m venvd.daemon run [--log-file]", file=sys.stderr)
        return 2
    try:
        paths = user_paths()
    except VenvdError as exc:  # a runtime folder refused: one line, not a traceback
        print(f"venvd: {exc}", file=sys.stderr)
        return 1
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if "--log-file" in argv:
        # Started detached by the client: keep a log in the user log folder.
        paths.log.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = logging.FileHandler(paths.daemon_log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        return run(paths, find_uv())
    except VenvdError as exc:
        logging.error("%s", exc)
        print(f"venvd: {exc}", file=sys.stderr)
        return 1
    except Exception:
        logging.exception("the daemon stopped on an unexpected error")
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv))
