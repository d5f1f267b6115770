"""A sync's news at the prompt without a client process (venvd.shell.news): the hook takes a
quiet generation bump with builtins and prints its project's news from the daemon's file,
once; a client the hook calls later is told what the hook already printed (``--seen``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_shells import allow_and_sync, wait_active

from venvd.shell import SHELLS
from venvd.shell.news import FUNCTIONS

from conftest import Sandbox, wait_for
from support.newsteps import NEW_STEP, client_of, no_client, set_client
from support.shells import Shell

NEWS = "synced newsy in "


def heard_after(sh: Shell, command: str) -> str:
    """What the prompt before *command* and *command* itself printed (the prompt after it
    is heard with the next command)."""
    out = sh.run(command)
    return sh.prompt_output + out


def test_a_finished_sync_is_told_once_by_the_hook_itself(daemon: Sandbox,
                                                         shell_kind: str) -> None:
    if SHELLS[shell_kind].snippet_suffix not in FUNCTIONS:
        pytest.skip(f"{shell_kind}'s hook hears news from the client, not the news file")
    project = daemon.project("newsy", requirements="beta\n")
    allow_and_sync(daemon, project)
    sh = daemon.shell(shell_kind, cwd=project)
    wait_active(sh, project)
    client = sh.run(client_of(shell_kind))
    # the export client cannot run any more: what this shell hears now, its hook printed
    sh.run(no_client(shell_kind))

    (project / "requirements.txt").write_text("beta\ngamma\n")  # a new lock state
    heard = ""
    deadline = time.monotonic() + 120
    while NEWS not in heard:
        assert time.monotonic() < deadline, f"{shell_kind}: no news;\n{heard}"
        heard += heard_after(sh, "true")
    for _ in range(4):
        heard += heard_after(sh, "true")
    assert heard.count(NEWS) == 1, heard
    assert sh.run("python -c 'import gamma; print(gamma.__name__)'").strip() == "gamma"

    # the client back, and made to run (no fast path) on a cd within the project: the daemon,
    # which has not heard from this shell since before the sync, must not tell it again
    sh.run(set_client(shell_kind, client))
    no_fast = {"fish": "set -g VENVD_NO_FAST 1", **NEW_STEP["nofast"]}
    sh.run(no_fast.get(shell_kind, "VENVD_NO_FAST=1"))
    (project / "sub").mkdir()
    heard = heard_after(sh, "cd sub")
    for _ in range(3):
        heard += heard_after(sh, "true")
    assert sh.var("VIRTUAL_ENV") == f"{project}/.venv"  # the client did run
    assert NEWS not in heard, heard


def test_allow_and_the_sync_it_starts_need_no_client_at_a_prompt(daemon: Sandbox) -> None:
    """The generation file's first number (the last bump every shell must ask the client
    about) stays as it was through `venvd allow` of a project without an env and the sync
    that creates it: a shell there takes all of it with builtins; the second number moves."""
    project = daemon.project("quiet", requirements="beta\n")
    generation = Path(daemon.env["XDG_RUNTIME_DIR"]) / "venvd" / "generation"
    wait_for(generation.exists, 30, "the generation file")
    before = generation.read_text().split()
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    after = generation.read_text().split()
    assert len(before) == len(after) == 2, (before, after)
    assert after[0] == before[0] and int(after[1]) > int(before[1]), (before, after)
    news = (generation.parent / "news.sh").read_text()
    assert "synced quiet in " in news and str(project) in news, news
