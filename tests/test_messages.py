"""Messages a user can trust: ``venvd status``, ``status --all`` and the lines the shells
hear, as golden text (exact, with paths, times, durations and the machine's interpreters
put as placeholders), with the real daemon, real shells and real installs.

Each golden text is what one event should say, once: a test fails when a field says
``None``, a line comes twice, or a count is not the real difference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_shells import allow_and_sync, wait_active

from conftest import Py, Sandbox, wait_for
from support.shells import Shell

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
SECONDS = re.compile(r"\b\d+\.\d s\b")
FOUND = re.compile(r"found \d.*?(?= \(see 'venvd logs'\)|$)", re.M)
#: A Python no machine has: the project asking for it cannot be synced.
NOWHERE = "3.99"


def golden(text: str, box: Sandbox, **names: str) -> str:
    """*text* with each value of *names* put as ``<NAME>``, the sandbox as ``<ROOT>``, and
    times, durations and the interpreters found as placeholders."""
    for name, value in sorted(names.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(value, f"<{name}>")
    text = text.replace(str(box.root), "<ROOT>")
    text = TIME.sub("<TIME>", text)
    text = SECONDS.sub("<S> s", text)
    return FOUND.sub("found <FOUND>", text)


def said(sh: Shell, command: str, prompts: int = 3) -> list[str]:
    """The ``venvd:`` lines *command* and the *prompts* prompts after it printed."""
    heard = sh.run(command)
    for _ in range(prompts):
        heard += sh.prompt_output + sh.run("true")
    heard += sh.prompt_output
    return re.findall(r"venvd: [^\r\n]*", heard)


def said_until(sh: Shell, text: str, timeout: float = 120) -> list[str]:
    """Prompts until a line holding *text* is heard, then three more: every line heard."""
    heard: list[str] = []

    def arrived() -> bool:
        heard.extend(said(sh, "true", 0))
        return any(text in line for line in heard)

    wait_for(arrived, timeout, f"{text!r} at a prompt")
    return heard + said(sh, "true")


def status_text(box: Sandbox, project: Path, **names: str) -> str:
    return golden(box.venvd("status", str(project)).stdout, box, **names)


def settled(box: Sandbox, project: Path, count: int) -> dict[str, Any]:
    """The status once *count* syncs are recorded and the last one's bookkeeping is over."""
    def done() -> Any:
        found = box.status(project)
        reply = box.request({"op": "logs", "dir": str(project), "limit": 50})
        return found if found["state"] in ("synced", "failed", "drifted") and len(
            reply["syncs"]) >= count else None

    found: dict[str, Any] = wait_for(done, 120, f"{project.name}: {count} syncs recorded")
    return found


def resolved_path(box: Sandbox, project: Path, py: Py) -> str:
    """The interpreter status says a sync uses, checked to be *py*."""
    path: str = box.status(project)["python"]["resolved"]["path"]
    assert Path(path).resolve() == Path(py.path).resolve(), (path, py)
    return path


def test_status_of_a_project_whose_python_is_missing(daemon: Sandbox) -> None:
    project = daemon.project("miss", NOWHERE, "alpha\n")
    sh = daemon.shell("bash", cwd=project)
    assert said(sh, "venvd allow") == [
        f"venvd: allowed {project}, but its environment cannot be made: wanted Python "
        f"{NOWHERE} (from {project}/.python-version); " + found_text(daemon, project)]
    assert status_text(daemon, project) == f"""\
project    <ROOT>/projects/miss
trusted    yes
python     {NOWHERE} (from .python-version) -> not installed (see problem)
env        <ROOT>/projects/miss/.venv (not created yet)
lockfile   requirements.txt (uv-pip-sync)
state      failed
last sync  never
kernel     none
problem    wanted Python {NOWHERE} (from <ROOT>/projects/miss/.python-version); found <FOUND>
"""
    # asked again: the command says it; the shell that ran it hears no more
    out = said(sh, "venvd sync --wait")
    assert [golden(line, daemon) for line in out] == [
        f"venvd: sync failed: wanted Python {NOWHERE} (from "
        "<ROOT>/projects/miss/.python-version); found <FOUND>"]
    # another shell coming in hears why once, not again as the failed sync's news
    other = daemon.shell("bash", cwd=daemon.root)
    heard = said(other, f"cd {project}", 0) + said_until(other, "miss")
    assert [golden(line, daemon) for line in heard] == [
        f"venvd: miss: wanted Python {NOWHERE} (from <ROOT>/projects/miss/.python-version); "
        "found <FOUND>"], heard


def test_an_edit_to_a_missing_python_is_said_once_and_so_is_its_fix(daemon: Sandbox,
                                                                     pythons: list[Py]) -> None:
    py = pythons[-1]
    project, sh = active_in(daemon, "edit", py.minor, "alpha\n")
    # the visit of the last prompt looked at the files as they were: this is news to it
    wait_for(lambda: daemon.request({"op": "daemon-status"})["visits_pending"] == 0, 30,
             "the daemon to be done with the shell's visit")
    (project / ".python-version").write_text(f"{NOWHERE}\n")
    wanted = f"wanted Python {NOWHERE} (from <ROOT>/projects/edit/.python-version); found <FOUND>"
    assert golden_lines(said_until(sh, "edit"), daemon) == [
        f"venvd: sync failed for edit: {wanted} (see 'venvd logs')"]
    names = {"VER": py.version}
    assert status_text(daemon, project, **names) == f"""\
project    <ROOT>/projects/edit
trusted    yes
python     {NOWHERE} (from .python-version) -> not installed (see problem)
env        <ROOT>/projects/edit/.venv
lockfile   requirements.txt (uv-pip-sync)
state      failed
last sync  failed at <TIME>, <S> s: {wanted}
kernel     none
problem    {wanted}
"""
    (project / ".python-version").write_text(f"{py.minor}\n")
    assert said_until(sh, "edit") == [
        "venvd: edit is back in step with requirements.txt (nothing to install)"]
    assert status_text(daemon, project).splitlines()[5:] == [
        "state      synced", "last sync  ok at <TIME>, <S> s, +0 -0 ~0", "kernel     none"]


def found_text(box: Sandbox, project: Path) -> str:
    problem: str = box.status(project)["problem"]
    return problem[problem.index("found "):]


def test_untrusted_view_names_the_python_a_sync_would_use(daemon: Sandbox,
                                                          two_pythons: tuple[Py, Py]) -> None:
    py_a, py_b = two_pythons
    project = daemon.project("moved", requirements="alpha==1.0\n",
                             files={".venvd.toml": f'python = "{py_a.minor}"\n'})
    allow_and_sync(daemon, project)
    (project / ".venvd.toml").write_text(f'python = "{py_b.minor}"\n')  # revokes the trust
    wait_for(lambda: daemon.status(project)["state"] == "untrusted", 30, "the trust revoked")
    names = {"PY_B": resolved_path(daemon, project, py_b), "VER_A": py_a.version,
             "VER_B": py_b.version}
    assert status_text(daemon, project, **names) == f"""\
project    <ROOT>/projects/moved
trusted    no (run 'venvd allow')
python     {py_b.minor} (from .venvd.toml) -> <PY_B> <VER_B> (the env still has <VER_A>)
env        <ROOT>/projects/moved/.venv
lockfile   requirements.txt (uv-pip-sync)
state      untrusted
last sync  ok at <TIME>, <S> s, +1 -0 ~0
kernel     none
"""
    # the view was right: allowed again, the sync uses that very interpreter
    allow_and_sync(daemon, project)
    assert status_text(daemon, project, **names).splitlines()[2] == (
        f"python     {py_b.minor} (from .venvd.toml) -> <PY_B> <VER_B>")


def test_a_switch_between_lock_states_counts_the_real_changes(daemon: Sandbox,
                                                              pythons: list[Py]) -> None:
    py = pythons[-1]
    project, sh = active_in(daemon, "flip", py.minor, "alpha==1.0\n")
    (project / "requirements.txt").write_text("alpha==2.0\n")
    assert golden_lines(said_until(sh, "flip"), daemon) == [
        "venvd: synced flip in <S> s (+0 -0 ~1)"]
    settled(daemon, project, 2)
    (project / "requirements.txt").write_text("alpha==1.0\n")  # built before: a switch
    assert said_until(sh, "flip") == [
        "venvd: switched flip to a lock state built before (+0 -0 ~1)"]
    settled(daemon, project, 3)
    assert status_text(daemon, project, PY=resolved_path(daemon, project, py)) == f"""\
project    <ROOT>/projects/flip
trusted    yes
python     {py.minor} (from .python-version) -> <PY> {py.version}
env        <ROOT>/projects/flip/.venv
lockfile   requirements.txt (uv-pip-sync)
state      synced
last sync  ok at <TIME>, <S> s, +0 -0 ~1
kernel     none
"""


def active_in(box: Sandbox, name: str, *args: str, **kwargs: str) -> tuple[Path, Shell]:
    """A project made with *args*/*kwargs*, allowed and synced; a bash active in it."""
    project = box.project(name, *args, **kwargs)
    allow_and_sync(box, project)
    sh = box.shell("bash", cwd=project)
    wait_active(sh, project)
    return project, sh


def golden_lines(lines: list[str], box: Sandbox) -> list[str]:
    return [golden(line, box) for line in lines]


def test_a_broken_requirement_fails_once_and_its_revert_is_said(daemon: Sandbox,
                                                                pythons: list[Py]) -> None:
    py = pythons[-1]
    project, sh = active_in(daemon, "broken", py.minor, "alpha==1.0\n")
    (project / "requirements.txt").write_text("no-such-package\n")
    error = ("No solution found when resolving dependencies: Because no-such-package was "
             "not found in the provided package locations and you require no-such-package, "
             "we can conclude that your requirements are unsatisfiable.")
    assert said_until(sh, "broken") == [
        f"venvd: sync failed for broken: {error} (see 'venvd logs')"]
    settled(daemon, project, 2)
    names = {"PY": resolved_path(daemon, project, py)}
    assert status_text(daemon, project, **names) == f"""\
project    <ROOT>/projects/broken
trusted    yes
python     {py.minor} (from .python-version) -> <PY> {py.version}
env        <ROOT>/projects/broken/.venv
lockfile   requirements.txt (uv-pip-sync)
state      failed
last sync  failed at <TIME>, <S> s: {error}
kernel     none
"""
    (project / "requirements.txt").write_text("alpha==1.0\n")
    assert said_until(sh, "broken") == [
        "venvd: broken is back in step with requirements.txt (nothing to install)"]
    settled(daemon, project, 3)
    assert status_text(daemon, project, **names) == f"""\
project    <ROOT>/projects/broken
trusted    yes
python     {py.minor} (from .python-version) -> <PY> {py.version}
env        <ROOT>/projects/broken/.venv
lockfile   requirements.txt (uv-pip-sync)
state      synced
last sync  ok at <TIME>, <S> s, +0 -0 ~0
kernel     none
"""


def test_deny_in_a_shell_is_one_line(daemon: Sandbox) -> None:
    project, sh = active_in(daemon, "denied", requirements="alpha\n")
    assert said(sh, "venvd deny") == [
        f"venvd: denied {project}; it will not be activated or synced"]
    assert sh.var("VIRTUAL_ENV") == ""
    # another shell coming in stays inactive, and hears at most that line, once
    other = daemon.shell("bash", cwd=daemon.root)
    assert said(other, f"cd {project}") in (
        [], [f"venvd: {project} is not allowed; run 'venvd allow' to trust it"])
    assert other.var("VIRTUAL_ENV") == ""


def test_allow_then_sync_wait_reports_the_real_sync(daemon: Sandbox, shell_kind: str) -> None:
    project = daemon.project("fresh", requirements="alpha\nbeta\n")
    sh = daemon.shell(shell_kind, cwd=project)
    sh.run("true")
    lines = said(sh, "venvd allow; venvd sync --wait", 4)
    assert golden_lines(lines, daemon) == [
        "venvd: allowed <ROOT>/projects/fresh; its environment is synced in the background",
        "venvd: synced (ok at <TIME>, <S> s, +2 -0 ~0)"], lines
    reply = daemon.request({"op": "logs", "dir": str(project), "limit": 50})
    assert len(reply["syncs"]) == 1, reply["syncs"]


def test_status_shows_drift_and_reads_the_same_on_a_terminal(daemon: Sandbox,
                                                             pythons: list[Py]) -> None:
    py = pythons[-1]
    project = daemon.project("drifty", py.minor, "alpha==1.0\n")
    allow_and_sync(daemon, project)
    subprocess.run([str(Path(sys.executable).with_name("uv")), "pip", "install", "--quiet",
                    "--python", str(project / ".venv" / "bin" / "python"), "gamma"],
                   env=daemon.env, check=True, capture_output=True)
    expected = f"""\
project    <ROOT>/projects/drifty
trusted    yes
python     {py.minor} (from .python-version) -> <PY> {py.version}
env        <ROOT>/projects/drifty/.venv
lockfile   requirements.txt (uv-pip-sync)
state      drifted
last sync  ok at <TIME>, <S> s, +1 -0 ~0
kernel     none
drift      + gamma 1.0 (not in the lock)
"""
    names = {"PY": resolved_path(daemon, project, py)}
    assert status_text(daemon, project, **names) == expected
    # on a terminal, with or without NO_COLOR: the same text, no escape sequence
    sh = daemon.shell("bash", cwd=project)
    for command in ("venvd status", "NO_COLOR=1 venvd status"):
        assert golden(sh.run(command), daemon, **names) == expected


def test_status_all_is_aligned_and_forgets_pruned_projects(daemon: Sandbox,
                                                           pythons: list[Py]) -> None:
    py = pythons[-1]
    kept = daemon.project("kept", py.minor, "alpha==1.0\n")
    renamed = daemon.project("renamed-project", py.minor, "alpha==2.0\n")
    miss = daemon.project("m", NOWHERE, "alpha\n")
    for project in (kept, renamed):
        allow_and_sync(daemon, project)
    daemon.venvd("allow", str(miss))
    width = max(len("PYTHON"), len(py.version), len("unknown"))
    when = "ok YYYY-MM-DDTHH:MM:SSZ"  # as wide as the time it stands for

    def table() -> str:
        return TIME.sub("YYYY-MM-DDTHH:MM:SSZ", daemon.venvd("status", "--all").stdout).replace(
            str(daemon.root), "<ROOT>")

    assert table() == "\n".join([
        f"STATE   {'PYTHON'.ljust(width)}  {'LAST SYNC'.ljust(len(when))}  PROJECT",
        f"synced  {py.version.ljust(width)}  {when}  <ROOT>/projects/kept",
        f"failed  {'unknown'.ljust(width)}  {'never'.ljust(len(when))}  <ROOT>/projects/m",
        f"synced  {py.version.ljust(width)}  {when}  <ROOT>/projects/renamed-project",
    ]) + "\n"
    renamed.rename(renamed.with_name("now-elsewhere"))
    out = golden(daemon.venvd("prune").stdout, daemon)
    assert re.sub(r"renamed-project-\w+", "renamed-project-<HASH>", out) == (
        "removed <ROOT>/home/.local/share/venvd/envs/renamed-project-<HASH>\n"
        "forgot <ROOT>/projects/renamed-project (its folder is gone)\n"
        "venvd: pruned 1 cached environment(s); forgot 1 project(s)\n")
    assert table() == "\n".join([
        f"STATE   {'PYTHON'.ljust(width)}  {'LAST SYNC'.ljust(len(when))}  PROJECT",
        f"synced  {py.version.ljust(width)}  {when}  <ROOT>/projects/kept",
        f"failed  {'unknown'.ljust(width)}  {'never'.ljust(len(when))}  <ROOT>/projects/m",
    ]) + "\n"
