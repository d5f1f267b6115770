"""What each folder holds of the boundary's names is remembered (daemon/folders.py): which
project a folder belongs to must always be what a fresh look at every folder gives, however
the folders change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from venvd.daemon import folders, projects

ROOT_PYPROJECT = '[project]\nname = "root"\nversion = "1"\n'
WORKSPACE = ROOT_PYPROJECT + '[tool.uv.workspace]\nmembers = ["pkgs/*"]\n'
MEMBER = '[project]\nname = "a"\nversion = "1"\n'


def tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(ROOT_PYPROJECT)
    (repo / "docs").mkdir()
    (repo / "docs" / "requirements.txt").write_text("sphinx\n")
    (repo / "pkgs" / "a" / "src").mkdir(parents=True)
    (repo / "pkgs" / "a" / "pyproject.toml").write_text(MEMBER)
    (repo / "nested").mkdir()
    (repo / "nested" / "uv.lock").write_text("")
    return repo


class Found(NamedTuple):
    inner: Optional[str]
    root: Optional[str]


def find(folder: Path) -> Found:
    inner = projects.innermost(str(folder))
    return Found(inner, projects.owner(inner) if inner else None)


def afresh(folder: Path) -> Found:
    folders._memo.clear()
    return find(folder)


@pytest.fixture
def remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders changed a moment ago are remembered too (the tests date their changes)."""
    monkeypatch.setattr(folders, "SETTLE_NS", 0)
    folders._memo.clear()


def changed(*paths: Path) -> None:
    """Set each path's mtime to a time no earlier stamp had (a change in the same clock tick
    as the stamp would not show; folders.SETTLE_NS covers that in real use)."""
    for path in paths:
        when = path.stat().st_mtime_ns - 10_000_000_000
        os.utime(path, ns=(when, when))


def test_every_folder_resolves_as_a_fresh_walk_twice(tmp_path: Path, remembered: None) -> None:
    repo = tree(tmp_path)
    for folder in (repo, repo / "docs", repo / "pkgs" / "a" / "src", repo / "nested",
                   tmp_path):
        for _ in range(2):
            assert find(folder) == afresh(folder), folder
    assert find(repo / "docs").root == str(repo)
    assert find(repo / "nested").root == str(repo / "nested")
    assert find(repo / "pkgs" / "a" / "src").root == str(repo / "pkgs" / "a")


def test_a_marker_added_or_removed_in_a_folder_is_seen(tmp_path: Path, remembered: None) -> None:
    repo = tree(tmp_path)
    docs = repo / "docs"
    assert find(docs).root == str(repo)
    for marker in ("uv.lock", "pyproject.toml"):
        (docs / marker).write_text('[project]\nname = "docs"\nversion = "1"\n')
        changed(docs)
        assert find(docs).root == str(docs), marker
        (docs / marker).unlink()
        changed(docs)
        assert find(docs).root == str(repo), marker


def test_a_workspace_table_edited_in_an_ancestor_is_seen(tmp_path: Path, remembered: None) -> None:
    repo = tree(tmp_path)
    member = repo / "pkgs" / "a" / "src"
    assert find(member).root == str(repo / "pkgs" / "a")
    (repo / "pyproject.toml").write_text(WORKSPACE)  # the folder's names stay the same
    changed(repo / "pyproject.toml")
    assert find(member).root == str(repo)


def test_fresh_changes_are_never_taken_from_memory(tmp_path: Path) -> None:
    """With the real settle time: a marker made right after a look is seen (folders
    changed in the last two seconds are looked at afresh; a change within the same clock
    tick as the look, which that guards against, cannot be made on purpose here)."""
    repo = tree(tmp_path)
    docs = repo / "docs"
    folders._memo.clear()
    assert find(docs).root == str(repo)
    (docs / ".venvd.toml").write_text("")
    assert find(docs).root == str(docs)


def test_a_folder_that_is_gone_resolves_without_error(tmp_path: Path, remembered: None) -> None:
    repo = tree(tmp_path)
    gone = repo / "docs" / "missing"
    assert find(gone) == afresh(gone)
