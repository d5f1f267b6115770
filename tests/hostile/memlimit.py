"""The real daemon under a memory limit (a fixture the tests here import): a regression that
reads ``/dev/zero`` into memory hits the limit instead of taking the machine down."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from conftest import Sandbox, wait_for

#: Address space for the daemon: several times what it needs (its threads' stacks and
#: malloc arenas count here), far below what reading /dev/zero for a second takes.
MEMORY_LIMIT = 1536 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.fixture
def limited_daemon(sandbox: Sandbox) -> Iterator[tuple[Sandbox, psutil.Process]]:
    """The real daemon (``python -m venvd.daemon run``) under ``RLIMIT_AS``; yields the
    sandbox and the daemon's process."""
    env = dict(sandbox.env, MALLOC_ARENA_MAX="2")  # a few arenas, not 8 per core
    log = (sandbox.root / "daemon.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "venvd.daemon", "run"], env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_limit_memory)
    log.close()
    try:
        wait_for(lambda: proc.poll() is not None or sandbox.alive(), 60, "the daemon to start")
        assert proc.poll() is None, (sandbox.root / "daemon.out").read_text()
        yield sandbox, psutil.Process(proc.pid)
    finally:
        sandbox.stop_everything()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def daemon_output(box: Sandbox) -> str:
    return (box.root / "daemon.out").read_text(errors="replace")
