"""Trust that holds against a hostile repository or another user (issue 15, item 4 and
"What must hold"): the ``[tool.venvd]`` table is part of what an allow trusts, revocation
is a digest of content (an edit that keeps the mtime still revokes, also across a restart,
where the hooks' snippets would otherwise activate), a folder put in place of an allowed one
is not trusted, and a project another user owns is allowed only with ``--force``."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from test_hostile_races import _activates, _snippet

from venvd.daemon import trust
from venvd.daemon.store import Store

from conftest import Sandbox, wait_for


def _trusted(box: Sandbox, project: Path) -> bool:
    return bool(box.status(project)["trusted"])


def _rewrite_keeping_mtime(path: Path, text: str) -> None:
    """Write *text* (as long as what is there) in place, then put the old times back: the
    size, inode and mtime all say nothing changed."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with path.open("r+", encoding="utf-8") as f:
        f.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)


PYPROJECT = """\
[tool.other]
setting = 1

[tool.venvd]
requirements = ["requirements.txt"]
"""


def test_tool_venvd_edits_revoke_trust_and_other_edits_do_not(daemon: Sandbox) -> None:
    project = daemon.project("tooled", requirements="", files={"pyproject.toml": PYPROJECT})
    daemon.venvd("allow", str(project))
    assert _trusted(daemon, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(PYPROJECT.replace("setting = 1", "setting = 2"))
    assert _trusted(daemon, project)  # another tool's table is none of venvd's business
    # the same table written another way is the same table
    pyproject.write_text(PYPROJECT.replace('requirements = ["requirements.txt"]',
                                           "requirements = [ 'requirements.txt' ]  # same"))
    assert _trusted(daemon, project)
    pyproject.write_text(PYPROJECT.replace('["requirements.txt"]',
                                           '["requirements.txt", "evil.txt"]'))
    wait_for(lambda: not _trusted(daemon, project), 30, "the [tool.venvd] edit to revoke")
    daemon.venvd("allow", str(project))
    assert _trusted(daemon, project)


def test_an_edit_that_keeps_the_mtime_revokes_trust(daemon: Sandbox) -> None:
    project = daemon.project("sneaky", requirements="",
                             files={".venvd.toml": "# reviewed by A\n"})
    daemon.venvd("allow", str(project))
    assert _trusted(daemon, project)  # and remembered by the daemon
    _rewrite_keeping_mtime(project / ".venvd.toml", "# reviewed by B\n")
    assert not _trusted(daemon, project)


def test_after_a_restart_an_edit_with_an_old_mtime_does_not_activate(
        sandbox: Sandbox) -> None:
    project = sandbox.project("restarted", requirements="",
                              files={".venvd.toml": "# reviewed by A\n"})
    sandbox.venvd("allow", str(project))  # starts the daemon
    sandbox.wait_state(project, ("synced",))
    sh = sandbox.shell("bash", cwd=sandbox.root)
    sh.run(f"cd {project}")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 60, "activation")
    assert _activates(sandbox, project)  # the hooks' fast path would activate it
    sh.run("cd /")
    sandbox.venvd("daemon", "stop")
    wait_for(lambda: not sandbox.alive(), 30, "the daemon to stop")
    _rewrite_keeping_mtime(project / ".venvd.toml", "# reviewed by B\n")
    sandbox.venvd("daemon", "start")
    # the new daemon looked again before it answered anything
    assert not _activates(sandbox, project), _snippet(sandbox, project)
    sh.run(f"cd {project}")
    sh.run("true")
    assert sh.var("VIRTUAL_ENV") == ""
    assert not _trusted(sandbox, project)


def test_a_folder_put_in_place_of_an_allowed_one_is_not_trusted(daemon: Sandbox) -> None:
    project = daemon.project("replaced", requirements="")
    daemon.venvd("allow", str(project))
    assert _trusted(daemon, project)
    old = project.with_name("replaced.old")
    project.rename(old)
    shutil.copytree(old, project, symlinks=True)  # the same files, another folder
    assert not _trusted(daemon, project)
    shutil.rmtree(project)
    old.rename(project)  # the folder that was allowed, back at its place
    assert _trusted(daemon, project)


def test_allow_refuses_a_project_of_another_user_unless_forced(
        daemon: Sandbox, other_uid: int) -> None:
    project = daemon.project("theirs", requirements="")
    os.chown(project, other_uid, -1)
    refused = daemon.venvd("allow", str(project), check=False)
    assert refused.returncode == 1, refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"uid {other_uid}" in lines[0] and "--force" in lines[0], lines
    assert not _trusted(daemon, project)
    forced = daemon.venvd("allow", "--force", str(project))
    assert "can run code as you" in forced.stderr, forced.stderr
    assert _trusted(daemon, project)


def test_an_allowed_folder_given_to_another_user_is_not_trusted(
        daemon: Sandbox, other_uid: int) -> None:
    project = daemon.project("given-away", requirements="")
    daemon.venvd("allow", str(project))
    assert _trusted(daemon, project)
    os.chown(project, other_uid, -1)
    assert not _trusted(daemon, project)


OLD_TRUST_TABLE = """
CREATE TABLE trust (path TEXT PRIMARY KEY, allowed INTEGER NOT NULL,
                    config_digest TEXT NOT NULL, changed REAL NOT NULL);
PRAGMA user_version=1;
"""


def test_trust_rows_of_an_older_database_keep_working(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".venvd.toml").write_text("# reviewed\n")
    db_path = tmp_path / "state" / "state.sqlite3"
    db_path.parent.mkdir()
    old = sqlite3.connect(db_path)
    old.executescript(OLD_TRUST_TABLE)
    old.execute("INSERT INTO trust VALUES (?, 1, ?, 0)",
                (str(project), trust.config_digest(str(project))))
    old.commit()
    old.close()
    # the client's fallback reads a database no new daemon has opened yet
    record = trust.read_record(str(db_path), str(project))
    assert record is not None and trust.decide(record, str(project), ())
    store = Store(db_path)
    try:
        record = store.trust(str(project))
        assert record is not None and record.identity == trust.identity(str(project))
        assert trust.decide(record, str(project), ())
        assert trust.decide(trust.read_record(str(db_path), str(project)), str(project), ())
    finally:
        store.close()
    project.rename(tmp_path / "moved")
    shutil.copytree(tmp_path / "moved", project)
    assert not trust.decide(trust.read_record(str(db_path), str(project)), str(project), ())


def test_a_sync_that_ends_after_its_folder_changed_owner_activates_nothing(
        daemon: Sandbox, other_uid: int) -> None:
    """Nothing cancels this sync (no file venvd watches changed): trust is looked at again
    when it ends, and the project, no longer trusted, gets no activation."""
    from test_contracts import Slow

    slow = Slow(daemon)
    daemon.venvd("allow", str(slow.project))
    slow.wait_started()
    try:
        os.chown(slow.project, other_uid, -1)
    finally:
        slow.let_go()
    wait_for(lambda: "=== ok" in daemon.venvd("logs", str(slow.project)).stdout, 120,
             "the sync to end")
    assert not _activates(daemon, slow.project), _snippet(daemon, slow.project)
    reply = daemon.request({"op": "export", "dir": str(slow.project), "pid": os.getpid()})
    assert reply["exports"] == {}, reply
    assert not _trusted(daemon, slow.project)
