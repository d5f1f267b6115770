"""Shared by the engine tests: a local simple index over HTTP, the tools' PATH, and what an
env holds."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Sandbox
from support.wheels import build_simple_index

#: What venvd seeds into every env (as ``python -m venv`` does): left out of comparisons
#: with tools that seed nothing.
SEEDS = frozenset({"pip", "setuptools", "wheel"})


def installed(project: Path) -> dict[str, str]:
    """What ``.venv`` holds, as uv sees it (name -> version), but the env's own pip and
    setuptools (seeded into every env, as ``python -m venv`` does)."""
    uv = Path(sys.executable).with_name("uv")
    out = subprocess.run([str(uv), "pip", "freeze", "--python", str(project / ".venv/bin/python"),
                          "--exclude", "pip", "--exclude", "setuptools", "--exclude", "wheel"],
                         capture_output=True, text=True, check=True).stdout
    pins = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.lower()] = version
        elif " @ " in line:
            pins[line.split(" @ ")[0].lower()] = "editable"
    return pins


@pytest.fixture
def tool_path(daemon: Sandbox) -> Callable[[str], None]:
    """Put Poetry or PDM on the daemon's PATH (``tests/run`` installs them into their own
    venvs and names the folder in VENVD_TEST_TOOLS); skip when they could not be installed."""

    def need(name: str) -> None:
        folder = os.environ.get("VENVD_TEST_TOOLS", "")
        if not folder or not (Path(folder) / name).exists():
            pytest.skip(f"{name} is not installed (tests/run installs it into "
                        "VENVD_TEST_TOOLS)")
        if folder not in daemon.env["PATH"].split(os.pathsep):
            daemon.env["PATH"] = folder + os.pathsep + daemon.env["PATH"]

    return need


def serve(root: Path, seen: list[str] | None = None) -> http.server.ThreadingHTTPServer:
    """Serve *root* over HTTP on 127.0.0.1 from a thread of the test process; with *seen*,
    the path of each request is appended to it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if seen is not None:
                seen.append(self.path)
            super().do_GET()

        def end_headers(self) -> None:
            # like a real index: clients must revalidate, so a dead index is noticed
            self.send_header("Cache-Control", "max-age=0, must-revalidate")
            super().end_headers()

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def simple_index(wheelhouse: Path, tmp_path: Path) -> Iterator[str]:
    """The wheelhouse as a local simple index over HTTP on 127.0.0.1 (for Poetry)."""
    server = serve(build_simple_index(wheelhouse, tmp_path / "index"))
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


def restart_daemon_with(box: Sandbox) -> None:
    """The daemon must see the PATH holding the tool: stop it; the CLI starts a new one."""
    box.venvd("daemon", "stop")
    box.venvd("daemon", "start")
