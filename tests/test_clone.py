"""A new lock state built from the nearest one (issue 14): the old env cloned with hard links,
what names its folder written anew, then the engine's exact sync of the difference. The env
must equal a fresh build of the same lock, and the old state stay as it was.

Most tests call the sync directly (real uv, Poetry and PDM, offline from the wheels built
here); the last one goes through the real daemon.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from venvd.daemon import clone, drift, seeding, sync, turns
from venvd.daemon import spares as spares_module
from venvd.daemon.engines import pincheck, requirements
from venvd.daemon.engines.base import Job
from venvd.daemon.errors import CommandFailed
from venvd.daemon.plans import make_plan
from venvd.daemon.spares import Spares
from venvd.daemon.states import COMPLETE, env_store, prune_states
from venvd.daemon.watch import Watcher

from conftest import Py, Sandbox, wait_for
from support.clonewheels import (
    STEPS,
    UV,
    Req,
    build_clone_wheels,
    expected,
    pipfile_lock,
    pyproject,
    requirement,
    run,
)
from support.index import serve
from support.wheels import build_simple_index

Writer = Callable[[Path, tuple[Req, ...]], None]


@pytest.fixture(scope="session")
def clone_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clone_wheels(tmp_path_factory.mktemp("clone-wheels"))


def use_wheels(box: Sandbox, wheels: Path) -> None:
    """uv finds the clone tests' wheels (and no index) through the sandbox's config file."""
    (box.root / "uv.toml").write_text(f'no-index = true\nfind-links = ["{wheels}"]\n'
                                      'python-downloads = "never"\n')


@pytest.fixture
def offline(sandbox: Sandbox, clone_wheels: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """This process runs the syncs, in the sandbox's environment (offline uv, fresh HOME)."""
    use_wheels(sandbox, clone_wheels)
    for name in list(os.environ):
        if name not in sandbox.env and not name.startswith(("PYTEST_", "COV_CORE_")):
            monkeypatch.delenv(name)
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POETRY_CACHE_DIR", str(sandbox.root / "poetry-cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("PDM_CHECK_UPDATE", "false")
    monkeypatch.setenv("PDM_NON_INTERACTIVE", "1")
    return sandbox


@pytest.fixture
def local_index(clone_wheels: Path, tmp_path: Path) -> Iterator[str]:
    """The wheels as a simple index over HTTP on 127.0.0.1 (Poetry reads no folder)."""
    server = serve(build_simple_index(clone_wheels, tmp_path / "index"))
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


#: Where tests/run installs Poetry and PDM (read before a test's environment replaces ours).
TOOLS = os.environ.get("VENVD_TEST_TOOLS", "")


def need_tool(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = TOOLS
    if not folder or not (Path(folder) / name).exists():
        pytest.skip(f"{name} is not installed (tests/run installs it into VENVD_TEST_TOOLS)")
    monkeypatch.setenv("PATH", folder + os.pathsep + os.environ["PATH"])


def writer(kind: str, wheels: Path, index: str) -> Writer:
    """How a project of *kind* comes to ask for a step's set (its lock made by its tool)."""
    def write(project: Path, step: tuple[Req, ...]) -> None:
        if kind == "requirements":
            (project / "requirements.txt").write_text("".join(requirement(r) + "\n"
                                                              for r in step))
        elif kind == "pipfile":
            (project / "Pipfile.lock").write_text(pipfile_lock(wheels, step))
        else:
            (project / "pyproject.toml").write_text(pyproject(project.name, step, TAILS[kind]
                                                              .format(index=index,
                                                                      wheels=wheels.as_uri())))
        if kind in LOCKS:
            run(LOCKS[kind], project)
    return write


TAILS = {"pyproject": "", "uvlock": "",
         "poetry": '[tool.poetry]\npackage-mode = false\n\n[[tool.poetry.source]]\n'
                   'name = "local"\nurl = "{index}"\npriority = "primary"\n',
         "pdm": '[tool.pdm]\ndistribution = false\n\n[[tool.pdm.source]]\nname = "pypi"\n'
                'url = "{wheels}"\ntype = "find_links"\n'}
LOCKS = {"uvlock": [UV, "lock", "--quiet"], "poetry": ["poetry", "lock", "--no-interaction"],
         "pdm": ["pdm", "lock"]}
ENGINES = {"requirements": "uv-pip-sync", "pyproject": "uv-pyproject", "uvlock": "uv-sync",
           "pipfile": "pipfile-lock", "poetry": "poetry", "pdm": "pdm"}


def new_project(box: Sandbox, name: str, python: Py) -> Path:
    project = box.root / "projects" / name
    project.mkdir(parents=True)
    (project / ".python-version").write_text(python.version + "\n")
    return project


def synced_project(box: Sandbox, name: str, python: Py, pins: str, envs: Path) -> Path:
    """A project of *pins* (its requirements.txt) on *python*, synced once into *envs*."""
    project = new_project(box, name, python)
    (project / "requirements.txt").write_text(pins)
    sync_now(project, envs)
    return project


def sync_now(project: Path, envs: Path) -> sync.Outcome:
    return sync.run(make_plan(project), envs, UV, lambda _: None, threading.Event())


def started_from(outcome: sync.Outcome) -> list[str]:
    return [line for line in outcome.output if line.startswith("venvd: started from")]


def freeze(env: Path) -> dict[str, str]:
    out = subprocess.run([UV, "pip", "freeze", "--python", str(env / "bin" / "python"),
                          "--exclude", "pip", "--exclude", "setuptools"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("==") for line in out.splitlines())


#: What is not part of an env's content: venvd's own bookkeeping, uv's lock, bytecode.
IGNORED = {COMPLETE, ".venvd", ".lock", "__pycache__"}


def snapshot(env: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file and link of *env* (relative path -> content, the env's own path replaced),
    the hashes RECORD keeps of the scripts in ``bin`` left out (they hash the env's path:
    ``assert_records_true`` checks them)."""
    found = {}
    me = os.fsencode(env)
    for folder, dirs, files in os.walk(env):
        dirs[:] = [d for d in dirs if d not in IGNORED]
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, env)
            if name in IGNORED or name in skip:
                continue
            if os.path.islink(path):
                found[rel] = b"-> " + os.fsencode(os.readlink(path)).replace(me, b"<ENV>")
            elif os.path.isfile(path):
                data = Path(path).read_bytes().replace(me, b"<ENV>")
                if name == "RECORD":
                    data = b"\n".join(
                        line.split(b",")[0] if line.startswith(b"../../../bin/") else line
                        for line in data.split(b"\n")
                        if not any(line.startswith(b"%s/%s," % (os.fsencode(os.path.basename(
                            folder)), os.fsencode(s))) for s in skip))
                found[rel] = data
    return found


def assert_same(cloned: dict[str, bytes], fresh: dict[str, bytes], what: str) -> None:
    differ = sorted(k for k in cloned.keys() | fresh.keys() if cloned.get(k) != fresh.get(k))
    assert not differ, f"{what}: " + "\n".join(
        f"{k}:\n  cloned: {cloned.get(k)!r}\n  fresh:  {fresh.get(k)!r}" for k in differ)


def assert_records_true(env: Path) -> None:
    """Every file a RECORD of *env* lists with a hash has that hash and size."""
    for record in env.glob("lib/*/site-packages/*.dist-info/RECORD"):
        if record.parent.name.startswith(("pip-", "setuptools-")):
            continue  # linked from the seed env, they hash its scripts (a seeding matter)
        with record.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) == 3 and row[1]:
                    data = (record.parent.parent / row[0]).read_bytes()
                    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
                    assert row[1] == "sha256=" + digest.rstrip(b"=").decode(), (record, row)
                    assert int(row[2]) == len(data), (record, row)


@pytest.mark.parametrize("kind", list(ENGINES))
def test_every_edit_gives_the_env_a_fresh_build_gives(kind: str, offline: Sandbox,
                                                      pythons: list[Py], clone_wheels: Path,
                                                      local_index: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if kind in ("poetry", "pdm"):
        need_tool(kind, monkeypatch)
    project = new_project(offline, f"eq-{kind}", pythons[-1])
    # the tools that lock (uv lock) find the .python-version's interpreter as in a pyenv
    # user's shell: on PATH (CI's PATH has no pyenv; venvd finds it through PYENV_ROOT)
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(pythons[-1].path).parent),
                                                os.environ.get("PATH", "")]))
    write = writer(kind, clone_wheels, local_index)
    envs = tmp_path / "envs"
    previous = None
    # as the daemon does: a hard-linked clone is made after each sync (a spare), and the
    # next new state starts from it; engines that clone by copies clone when they need to
    spares = Spares(UV)
    for n, step in enumerate(STEPS):
        write(project, step)
        plan = make_plan(project)
        assert plan.engine.name == ENGINES[kind]
        outcome = sync.run(plan, envs, UV, lambda _: None, threading.Event(), spares)
        spares.after_sync(plan, envs)
        live = (project / ".venv").resolve()
        mode = plan.engine.clone_mode(project, plan.config)
        how = {"links": "a clone of the lock state {} made beforehand (its files hard-linked)",
               "copies": "the lock state {} (its files copied)"}.get(mode)
        assert started_from(outcome) == ([] if previous is None or how is None else [
            f"venvd: started from {how.format(previous.name)}"])
        assert freeze(live) == expected(step), f"step {n}"
        # beside it, a name of the same length: a script's first line depends on the length
        fresh = live.with_name("f" * len(live.name))
        sync.build(plan, fresh, UV, lambda _: None, threading.Event(), offline=False, envs=envs)
        assert freeze(fresh) == expected(step)
        # PDM leaves a package it keeps as it was installed: its REQUESTED marker (written for
        # a requirement without extras only) stays as the earlier lock had it, as with
        # ``pdm sync`` by hand; that empty marker is the one difference allowed
        skip = ("REQUESTED",) if kind == "pdm" else ()
        assert_same(snapshot(live, skip), snapshot(fresh, skip), f"step {n}")
        assert_records_true(live)
        shutil.rmtree(fresh)
        previous = live
    spares.close()


def files(env: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of *env* -> (inode, content); a link -> (0, its target)."""
    found = {}
    for folder, dirs, names in os.walk(env):
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, env)
            if os.path.islink(path):
                found[rel] = (0, os.fsencode(os.readlink(path)))
            else:
                found[rel] = (os.stat(path).st_ino, Path(path).read_bytes())
    return found


def script(env: Path, name: str) -> str:
    return subprocess.run([str(env / "bin" / name)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_old_state_is_left_as_it_was(offline: Sandbox, pythons: list[Py],
                                         tmp_path: Path) -> None:
    """A package added (the console script carried over into the clone), then one upgraded:
    the old state's files keep their inodes and content; its python and scripts still run."""
    envs = tmp_path / "envs"
    project = synced_project(offline, "untouched", pythons[-1], "cl-tool==1.0\ncl-lib==1.0\n", envs)
    old = (project / ".venv").resolve()
    before = files(old)
    site = Path(next(old.glob("lib/*/site-packages"))).relative_to(old)

    (project / "requirements.txt").write_text("cl-tool==1.0\ncl-lib==1.0\ncl-dep==1.0\n")
    sync_now(project, envs)
    new = (project / ".venv").resolve()
    assert new != old
    # carried over, not installed again: the script names the new state's python
    assert (new / "bin/cl-tool").read_bytes().startswith(
        b"\n".join(seeding.shebang(f"{new}/bin/python")) + b"\n")
    assert script(new, "cl-tool") == f"cl-tool 1.0 {new}/bin/python"
    # unchanged packages are shared by hard link, not copied
    lib = site / "cl_lib" / "__init__.py"
    assert (new / lib).stat().st_ino == (old / lib).stat().st_ino

    (project / "requirements.txt").write_text("cl-tool==2.0\ncl-lib==1.0\ncl-dep==1.0\n")
    sync_now(project, envs)
    newer = (project / ".venv").resolve()
    assert script(newer, "cl-tool") == f"cl-tool 2.0 {newer}/bin/python"
    assert files(old) == before  # not one file of the first state written
    assert script(old, "cl-tool") == f"cl-tool 1.0 {old}/bin/python"
    imported = subprocess.run([str(old / "bin/python"), "-c",
                               "import cl_tool, cl_lib; print(cl_tool.__version__)"],
                              capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "1.0"


def test_another_interpreter_builds_afresh(offline: Sandbox, two_pythons: tuple[Py, Py],
                                           tmp_path: Path) -> None:
    first, second = two_pythons
    envs = tmp_path / "envs"
    project = synced_project(offline, "repython", first, "cl-tool==1.0\ncl-lib==1.0\n", envs)
    old = (project / ".venv").resolve()
    (project / ".python-version").write_text(second.version + "\n")
    outcome = sync_now(project, envs)
    new = (project / ".venv").resolve()
    assert started_from(outcome) == []  # (both share uv's cache by hard links: no inode test)
    assert f"version_info = {second.version}" in (new / "pyvenv.cfg").read_text()
    assert freeze(new) == {"cl-tool": "1.0", "cl-lib": "1.0"}
    assert script(new, "cl-tool") == f"cl-tool 1.0 {new}/bin/python"
    store = env_store(envs, project)
    assert clone.nearest(store, project / ".venv", make_plan(project).interpreter) == new
    (project / ".python-version").write_text(first.version + "\n")
    assert clone.nearest(store, project / ".venv", make_plan(project).interpreter) == old


def test_a_hostile_data_folder_is_renamed_in_every_script(offline: Sandbox, pythons: list[Py],
                                                           tmp_path: Path) -> None:
    """The activate scripts quote the env's path each in its own way: with a quote, a space
    and a ``$`` in it, the clone's scripts are still those a fresh build writes there."""
    project = new_project(offline, "hostile", pythons[-1])
    envs = tmp_path / "it's a $HOME dir" / "envs"
    (project / "requirements.txt").write_text("cl-tool==1.0\n")
    sync_now(project, envs)
    (project / "requirements.txt").write_text("cl-tool==1.0\ncl-lib==1.0\n")
    outcome = sync_now(project, envs)
    assert started_from(outcome)
    live = (project / ".venv").resolve()
    # a fresh build beside it, so that the two paths differ in the state's name alone
    fresh = live.with_name("f" * 16)
    sync.build(make_plan(project), fresh, UV, lambda _: None, threading.Event(), offline=False,
               envs=envs)
    renamed = {k: v.replace(os.fsencode(fresh.name), os.fsencode(live.name))
               for k, v in snapshot(fresh).items()}
    assert_same(snapshot(live), renamed, "hostile folder")
    shown = subprocess.run(["bash", "-c", f"source {shlex.quote(str(live))}/bin/activate && "
                            'echo "$VIRTUAL_ENV" && cl-tool'],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown == [str(live), f"cl-tool 1.0 {live}/bin/python"]


def test_a_name_across_the_kernels_limit_changes_the_scripts_form(offline: Sandbox,
                                                                   pythons: list[Py],
                                                                   tmp_path: Path) -> None:
    """A script's ``#!`` line holds 127 bytes: a clone whose python path crosses that
    length gets the ``/bin/sh`` form (and back again), its RECORD hashes follow, it runs."""
    room = 124 - len(str(tmp_path / "s" / "bin" / "python"))
    short = tmp_path / ("s" + "x" * room)  # its python's path: exactly 124 bytes
    run([UV, "venv", "--quiet", "--python", pythons[-1].path, str(short)], tmp_path)
    run([UV, "pip", "install", "--quiet", "--python", str(short / "bin/python"), "cl-tool==1.0"],
        tmp_path)
    assert (short / "bin/cl-tool").read_bytes().startswith(b"#!" + os.fsencode(short))
    long = short.with_name(short.name + "y")
    shorter = short.with_name(short.name[:-1])
    clone.clone(short, long)
    clone.clone(long, shorter)
    trampoline = b"#!/bin/sh\n'''exec' '" + os.fsencode(long)
    for env, head in ((long, trampoline), (shorter, b"#!" + os.fsencode(shorter))):
        assert (env / "bin/cl-tool").read_bytes().startswith(head)
        assert script(env, "cl-tool") == f"cl-tool 1.0 {env}/bin/python"
        assert_records_true(env)


def test_a_clone_that_fails_falls_back_to_a_fresh_build(offline: Sandbox, pythons: list[Py],
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up mid-clone cannot be had here: the clone is made to fail so."""
    envs = tmp_path / "envs"
    project = synced_project(offline, "fallback", pythons[-1], "cl-tool==1.0\n", envs)

    def full(source: Path, target: Path, mode: str = "links") -> None:
        os.mkdir(target)
        (target / "half").write_text("")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(clone, "clone", full)
    (project / "requirements.txt").write_text("cl-tool==2.0\n")
    outcome = sync_now(project, envs)
    assert outcome.result == "ok"
    assert any("could not start from" in line and "No space left on device" in line
               and "building a fresh env" in line for line in outcome.output), outcome.output
    new = (project / ".venv").resolve()
    assert not (new / "half").exists()
    assert freeze(new) == {"cl-tool": "2.0"}


def test_the_daemon_builds_a_new_lock_state_from_the_live_one(daemon: Sandbox,
                                                              clone_wheels: Path) -> None:
    use_wheels(daemon, clone_wheels)
    project = daemon.project("cloned", requirements="cl-tool==1.0\ncl-lib==1.0\n")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    old = (project / ".venv").resolve()
    (project / "requirements.txt").write_text("cl-tool==2.0\ncl-lib==1.0\n")
    wait_for(lambda: (project / ".venv").resolve() != old
             and daemon.status(project)["state"] == "synced", 120, "the new lock state")
    new = (project / ".venv").resolve()
    logs = daemon.venvd("logs", str(project)).stdout
    # the clone was made after the first sync, while nobody waited (a spare), and taken now
    assert (f"venvd: started from a clone of the lock state {old.name} made beforehand "
            "(its files hard-linked)") in logs
    assert new.name.startswith("spare-")
    assert script(project / ".venv", "cl-tool") == f"cl-tool 2.0 {new}/bin/python"
    assert script(old, "cl-tool") == f"cl-tool 1.0 {old}/bin/python"


# Sync latency (issue 14): pins installed while they are compiled, spare clones, the drift
# record of a clone, the debounce cut short by a file written whole.

AGREED = "venvd: the compiled pin set is the file's own pins, installed while it was compiled"


def test_a_file_of_exact_pins_is_installed_while_uv_compiles_it(offline: Sandbox,
                                                                pythons: list[Py],
                                                                tmp_path: Path) -> None:
    """A closed set of pins is kept as installed early; a pin whose dependency the file lacks
    is installed early too, but the compile adds the dependency and the exact sync of the
    compiled set makes the env what a compile-then-sync makes."""
    project = new_project(offline, "early", pythons[-1])
    envs = tmp_path / "envs"
    (project / "requirements.txt").write_text("cl-tool==1.0\ncl-lib==1.0  # pinned\n")
    outcome = sync_now(project, envs)
    assert AGREED in outcome.output
    assert freeze((project / ".venv").resolve()) == {"cl-tool": "1.0", "cl-lib": "1.0"}
    (project / "requirements.txt").write_text("cl-dep==1.0\n")  # needs cl-lib: the newest
    outcome = sync_now(project, envs)
    assert AGREED not in outcome.output
    assert freeze((project / ".venv").resolve()) == {"cl-dep": "1.0", "cl-lib": "2.0"}


def compiles(outcome: sync.Outcome) -> list[str]:
    """What the sync's ``uv pip compile`` commands compiled: ``part`` (the pins a change
    touches) or ``whole`` (the file), in order."""
    return ["part" if pincheck.PART in line else "whole" for line in outcome.output
            if line.startswith("$ ") and " pip compile " in line]


def test_a_change_is_checked_from_what_it_reaches(offline: Sandbox, pythons: list[Py],
                                                  tmp_path: Path) -> None:
    """A file of exact pins cloned from a state is checked from what changed. When nothing
    else names a change, uv's check of the env after the early install decides; when
    packages do, they and the changes are compiled with all pins as constraints. A
    dependency missing, a version refused, a ``Requires-Python`` not met or an extra asked
    for (which uv's check does not read) has the whole file compiled, and the env is what a
    compile-then-sync makes (or the sync fails as the compile does)."""
    envs = tmp_path / "envs"
    project = synced_project(offline, "part", pythons[-1], "cl-tool==1.0\ncl-lib==1.0\n", envs)

    def edit(pins: str, how: str) -> dict[str, str]:
        """*pins* synced, checked *how* (``check``, ``part``, or ``whole``: compiled)."""
        (project / "requirements.txt").write_text(pins)
        outcome = sync_now(project, envs)
        said = {"check": "venvd: uv's check of the env found the requirements of every pin",
                "part": "venvd: compiled the "}
        if how == "whole":
            assert compiles(outcome)[-1:] == ["whole"], outcome.output
        else:
            assert compiles(outcome) == (["part"] if how == "part" else []), outcome.output
            assert any(line.startswith(said[how]) for line in outcome.output), outcome.output
            assert (AGREED in outcome.output) is (how == "part")  # nothing else compiled
        return freeze((project / ".venv").resolve())

    assert edit("cl-tool==2.0\ncl-lib==1.0\n", "check") == {"cl-tool": "2.0", "cl-lib": "1.0"}
    # cl-dep needs cl-lib, which nothing named before: uv's check finds it missing
    assert edit("cl-tool==2.0\ncl-dep==1.0\n", "whole") == {"cl-tool": "2.0", "cl-dep": "1.0",
                                                           "cl-lib": "2.0"}
    edit("cl-tool==2.0\ncl-dep==1.0\ncl-lib==1.0\n", "part")  # cl-dep names cl-lib
    assert edit("cl-tool==1.0\ncl-dep==1.0\n", "whole")["cl-lib"] == "2.0"  # added back
    edit("cl-tool==1.0\ncl-dep==1.0\ncl-lib==2.0\ncl-host==1.0\n", "check")
    live = (project / ".venv").resolve()
    with pytest.raises(CommandFailed, match="No solution found"):  # as the compile says
        edit("cl-tool==1.0\ncl-new==1.0\ncl-lib==1.0\n", "whole")  # needs cl-lib>=2.0
    with pytest.raises(CommandFailed, match="requires Python >=4"):
        edit("cl-tool==1.0\ncl-future==1.0\n", "whole")
    assert (project / ".venv").resolve() == live
    # cl-fan asks for cl-host[fancy], which needs cl-bonus
    assert edit("cl-fan==1.0\ncl-host==1.0\ncl-tool==1.0\n", "whole") == {
        "cl-fan": "1.0", "cl-host": "1.0", "cl-bonus": "1.0", "cl-tool": "1.0"}
    edit("cl-fan==1.0\ncl-host==1.0\ncl-bonus==1.0\n", "check")
    # cl-bonus gone: cl-host names it for its extra, which cl-fan asks for
    assert edit("cl-fan==1.0\ncl-host==1.0\n", "whole")["cl-bonus"] == "1.0"
    edit("cl-host==1.0\ncl-bonus==1.0\n", "check")
    # cl-bonus gone again: nothing asks for cl-host's extra now
    assert edit("cl-host==1.0\n", "check") == {"cl-host": "1.0"}
    assert drift.graph(live)["cl-dep"] == ("1.0", ["cl-lib"])


def test_the_record_of_what_packages_require_is_given_only_while_true(
        offline: Sandbox, pythons: list[Py], tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    project = synced_project(offline, "graph", pythons[-1], "cl-host==1.0\ncl-dep==1.0\n",
                             envs)
    live = (project / ".venv").resolve()
    found = drift.graph(live)
    assert found is not None
    # cl-host names cl-bonus for its extra, which nothing here asks for
    assert (found["cl-host"], found["cl-dep"], found["cl-lib"]) == (
        ("1.0", []), ("1.0", ["cl-lib"]), ("2.0", []))
    (project / "requirements.txt").write_text("cl-host==1.0\ncl-fan==1.0\n")
    sync_now(project, envs)
    found = drift.graph((project / ".venv").resolve())
    assert found is not None and found["cl-host"] == ("1.0", ["cl-bonus"])  # cl-fan asks
    shutil.rmtree(next(live.glob("lib/*/site-packages/cl_lib-2.0.dist-info")))
    assert drift.graph(live) is None  # changed by hand since


def test_what_a_record_keeps_of_a_packages_requirements() -> None:
    assert drift._requires([
        "b>=1", 'c[x] ; extra == "t"', "D_d (>=1) ; python_version >= '3.8' and extra == 't'",
        "e[y,z]", "f; extra == 't' or os_name == 'nt'", "g @ https://x/g.whl"]) == [
        ["b", "c", "d-d", "e", "f", "g"], ["b", "e", "f", "g"], ["c", "e"]]


@pytest.mark.parametrize(("text", "pins"), [
    ("A_b.C == 1.0  # why\n\nzz==2.0rc1+local\n", {"a-b-c": "1.0", "zz": "2.0rc1+local"}),
    ("", {}),
    ("a==1.0\nA==2.0\n", None),  # one name twice
    ("a>=1.0\n", None), ("a==1.*\n", None), ("a[x]==1.0\n", None),
    ('a==1.0 ; python_version < "3.13"\n', None), ("--index-url http://x/simple\na==1\n", None),
    ("-e ./lib\n", None), ("a @ https://x/a-1.0-py3-none-any.whl\n", None),
])
def test_only_files_of_plain_pins_are_installed_early(text: str,
                                                      pins: dict[str, str] | None) -> None:
    assert requirements.plain_pins(text) == pins


def test_the_drift_record_of_a_clone_reads_only_new_metadata(offline: Sandbox,
                                                             pythons: list[Py], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    envs = tmp_path / "envs"
    project = synced_project(offline, "record", pythons[-1], "cl-tool==1.0\ncl-lib==1.0\n", envs)
    read: list[str] = []
    at = metadata.Distribution.at
    monkeypatch.setattr(metadata.Distribution, "at",
                        staticmethod(lambda path: read.append(os.path.basename(path)) or at(path)))
    (project / "requirements.txt").write_text("cl-tool==2.0\ncl-lib==1.0\n")
    sync_now(project, envs)
    live = (project / ".venv").resolve()
    assert read == ["cl_tool-2.0.dist-info"]
    assert drift.recorded(live) == drift.installed(live) == {"cl-tool": "2.0", "cl-lib": "1.0"}


def test_a_spare_is_taken_only_for_its_own_interpreter(offline: Sandbox,
                                                       two_pythons: tuple[Py, Py],
                                                       tmp_path: Path) -> None:
    py_a, py_b = two_pythons
    envs = tmp_path / "envs"
    project = synced_project(offline, "spare", py_a, "cl-tool==1.0\n", envs)
    live = (project / ".venv").resolve()
    spares = Spares(UV)
    spares.prepare(live.parent, live)
    spares.close()
    (spare,) = live.parent.glob("spare-*")
    assert script(spare, "cl-tool") == f"cl-tool 1.0 {spare}/bin/python"  # its own python
    # pruning leaves a spare alone; a folder left half-built goes
    (live.parent / "half-built").mkdir()
    assert prune_states(live.parent, keep=1, current=live) == [live.parent / "half-built"]
    (project / ".python-version").write_text(py_b.version + "\n")
    assert spares.take(live.parent, make_plan(project).interpreter) is None
    (project / ".python-version").write_text(py_a.version + "\n")
    assert spares.take(live.parent, make_plan(project).interpreter) == (spare, live.name)
    assert spares.take(live.parent, make_plan(project).interpreter) is None  # taken once


def test_a_file_written_whole_cuts_the_debounce_short(tmp_path: Path) -> None:
    """With a debounce of ten minutes, a file closed after writing (or renamed into place)
    is followed within the wait below; a file still being written is not."""
    changes: list[str] = []
    watcher = Watcher(changes.append, debounce=600)
    watcher.start()
    try:
        project, other = tmp_path / "p", tmp_path / "other"
        for folder in (project, other):
            folder.mkdir()
            watcher.watch(str(folder))
        with (project / "requirements.txt").open("w") as f:
            f.write("alpha==1.0\n")
            f.flush()
            # a file closed in another project: once it is followed, the watcher has seen
            # the open file's modification too (inotify hands events over in order)
            (other / "requirements.txt").write_text("beta==1.0\n")
            wait_for(lambda: str(other) in changes, 60, "the other project's closed file")
            held = changes.copy()
        wait_for(lambda: changes == [str(other), str(project)], 60, "the change of a closed file")
        assert held == [str(other)]
        (project / ".tmp-edit").write_text("alpha==2.0\n")
        os.replace(project / ".tmp-edit", project / "requirements.txt")
        wait_for(lambda: changes == [str(other), str(project), str(project)], 60,
                 "a file renamed into place")
    finally:
        watcher.stop()


def test_a_spare_is_never_cloned_from_an_env_being_changed(offline: Sandbox, pythons: list[Py],
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """uv (``uv add`` right after a sync) holds the env's lock: no spare is made meanwhile.
    Anything else changing the env during the clone (pip; simulated here, since a real pip
    cannot be made to land inside the clone's few milliseconds) drops the spare."""
    envs = tmp_path / "envs"
    project = synced_project(offline, "busy", pythons[-1], "cl-tool==1.0\n", envs)
    live = (project / ".venv").resolve()
    monkeypatch.setattr(spares_module, "LOCK_WAIT", 0.3)
    spares = Spares(UV)
    with turns.env_lock(str(live), threading.Event()) as locked:  # as uv holds it
        assert locked
        spares.prepare(live.parent, live)
        spares.close()
    assert not list(live.parent.glob("spare-*"))
    real = clone.clone

    def pip_meanwhile(source: Path, target: Path, mode: str = "links") -> None:
        real(source, target, mode)
        site = next(source.glob("lib/python*/site-packages"))
        (site / "extra-1.0.dist-info").mkdir()

    monkeypatch.setattr(clone, "clone", pip_meanwhile)
    spares = Spares(UV)
    spares.prepare(live.parent, live)
    spares.close()
    assert not list(live.parent.glob("spare-*"))
    monkeypatch.setattr(clone, "clone", real)
    spares = Spares(UV)
    spares.prepare(live.parent, live)
    spares.close()
    assert len(list(live.parent.glob("spare-*/.venvd-spare"))) == 1


def test_the_lock_venvd_holds_for_a_spare_is_not_waited_for(tmp_path: Path) -> None:
    """A sync right after the one before waits for the spare being made (it takes it), not
    for the env lock the spare holds as it clones, which reads as uv at work; a lock held by
    another process (uv) still is."""
    env = tmp_path / "env"
    env.mkdir()
    with turns.env_lock(str(env), threading.Event()) as locked:
        assert locked
        assert turns.busy(str(tmp_path), str(env)) is None
    holder = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
              "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.read()\n")
    with subprocess.Popen([sys.executable, "-c", holder, str(env / ".lock")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as uv:
        assert uv.stdout is not None and uv.stdout.readline() == "held\n"
        assert turns.busy(str(tmp_path), str(env)) == "uv (it holds the env's lock)"
        assert uv.stdin is not None
        uv.stdin.close()


def test_adopt_tries_again_when_the_project_moved_on_while_its_env_was_checked(
        offline: Sandbox, pythons: list[Py], clone_wheels: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`uv add` then `uv remove` at once: the env check of the first sync sees the second at
    work (files changed since the plan): one more sync follows, rather than a state built
    beside uv's env for a lock already gone. With the plan still current, a mismatch is just
    that: nothing to adopt."""
    project = new_project(offline, "moved", pythons[-1])
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(pythons[-1].path).parent),
                                                os.environ.get("PATH", "")]))
    write = writer("uvlock", clone_wheels, "")
    envs = tmp_path / "envs"
    write(project, STEPS[0])
    sync_now(project, envs)
    write(project, STEPS[1])
    current = make_plan(project)
    assert sync.adopt(current, envs, UV, lambda _: None, threading.Event()) is None
    write(project, STEPS[2])
    with pytest.raises(sync.Superseded):
        sync.adopt(current, envs, UV, lambda _: None, threading.Event())


def test_pins_uvs_cache_already_has_are_compiled_without_asking_the_index(
        offline: Sandbox, pythons: list[Py], clone_wheels: Path, tmp_path: Path) -> None:
    """Every version pinned, nothing else needed, all in uv's cache: the compile that checks
    the file asks the index nothing (a release's metadata does not change). A file whose
    compile adds a dependency is compiled with the index (its newest version may be new)."""
    seen: list[str] = []
    server = serve(build_simple_index(clone_wheels, tmp_path / "index"), seen)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        (offline.root / "uv.toml").write_text(f'index-url = "{url}"\n'
                                              'python-downloads = "never"\n')
        envs = tmp_path / "envs"
        project = synced_project(offline, "cached", pythons[-1], "cl-tool==1.0\n", envs)

        def compiled(pins: str) -> str:
            """The pin set the engine's resolution writes for *pins*."""
            (project / "requirements.txt").write_text(pins)
            plan = make_plan(project)
            job = Job(project, tmp_path / "scratch-env", plan.interpreter.path, plan.config,
                      UV, plan.inputs, lambda _: None, threading.Event())
            seen.clear()
            plan.engine.resolve(job)
            return (job.scratch / requirements.PINS).read_text()

        assert requirements.plain_pins(compiled("cl-tool==1.0  # checked\n")) == {
            "cl-tool": "1.0"}
        assert seen == []
        # cl-dep needs cl-lib, which the file does not pin: the index is asked
        assert requirements.plain_pins(compiled("cl-dep==1.0\n")) == {
            "cl-dep": "1.0", "cl-lib": "2.0"}
        assert [path for path in seen if "cl-lib" in path], seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_part_uvs_cache_lacks_has_the_whole_compiled_with_the_index_at_once(
        offline: Sandbox, pythons: list[Py], clone_wheels: Path, tmp_path: Path) -> None:
    """cl-lib 2.0 was never downloaded: the compile of the part an edit reaches, from uv's
    cache, fails for that, and the whole file is compiled with the index at once (from the
    cache first, it would fail the same way)."""
    server = serve(build_simple_index(clone_wheels, tmp_path / "index"))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        (offline.root / "uv.toml").write_text(f'index-url = "{url}"\n'
                                              'python-downloads = "never"\n')
        envs = tmp_path / "envs"
        project = synced_project(offline, "uncached", pythons[-1],
                                 "cl-dep==1.0\ncl-lib==1.0\n", envs)
        (project / "requirements.txt").write_text("cl-dep==1.0\ncl-lib==2.0\n")
        plan = make_plan(project)
        job = Job(project, tmp_path / "scratch-env", plan.interpreter.path, plan.config, UV,
                  plan.inputs, lambda _: None, threading.Event(),
                  origin=(project / ".venv").resolve())
        plan.engine.resolve(job)
        commands = [line for line in job.output if line.startswith("$ ")]
        assert [requirements.PINS in c and "--offline" not in c for c in commands] == [
            False, True], job.output  # the part from the cache, then the whole with the index
        assert requirements.UNCACHED in job.output
        assert requirements.plain_pins((job.scratch / requirements.PINS).read_text()) == {
            "cl-dep": "1.0", "cl-lib": "2.0"}
    finally:
        server.shutdown()
        server.server_close()
