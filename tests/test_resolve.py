"""The daemon remembers which project a prompt's folder belongs to: the answer must always
be the one a fresh walk gives, however the folders change."""

from __future__ import annotations

import os
from pathlib import Path

from venvd.daemon.resolve import Resolver, walk

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


def changed(*paths: Path) -> None:
    """Set each path's mtime to a time no earlier stamp had (a change in the same clock tick
    as the stamp would not show; the resolver's settle time covers that in real use)."""
    for path in paths:
        when = path.stat().st_mtime_ns - 10_000_000_000
        os.utime(path, ns=(when, when))


def test_every_folder_resolves_as_a_fresh_walk_twice(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    resolver = Resolver(settle_ns=0)
    for folder in (repo, repo / "docs", repo / "pkgs" / "a" / "src", repo / "nested",
                   tmp_path):
        for _ in range(2):
            assert resolver.find(str(folder)) == walk(str(folder)), folder
    assert resolver.find(str(repo / "docs")).root == str(repo)
    assert resolver.find(str(repo / "nested")).root == str(repo / "nested")
    assert resolver.find(str(repo / "pkgs" / "a" / "src")).root == str(repo / "pkgs" / "a")


def test_a_marker_added_or_removed_in_a_folder_is_seen(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    docs = repo / "docs"
    resolver = Resolver(settle_ns=0)
    assert resolver.find(str(docs)).root == str(repo)
    for marker in ("uv.lock", "pyproject.toml"):
        (docs / marker).write_text('[project]\nname = "docs"\nversion = "1"\n')
        changed(docs)
        assert resolver.find(str(docs)).root == str(docs), marker
        (docs / marker).unlink()
        changed(docs)
        assert resolver.find(str(docs)).root == str(repo), marker


def test_a_workspace_table_edited_in_an_ancestor_is_seen(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    member = repo / "pkgs" / "a" / "src"
    resolver = Resolver(settle_ns=0)
    assert resolver.find(str(member)).root == str(repo / "pkgs" / "a")
    (repo / "pyproject.toml").write_text(WORKSPACE)  # the folder's names stay the same
    changed(repo / "pyproject.toml")
    assert resolver.find(str(member)).root == str(repo)


def test_fresh_changes_are_never_taken_from_memory(tmp_path: Path) -> None:
    """With the real settle time, folders changed moments ago are walked every time: a
    marker made in the same clock tick as the last look is still seen."""
    repo = tree(tmp_path)
    docs = repo / "docs"
    resolver = Resolver()
    assert resolver.find(str(docs)).root == str(repo)
    (docs / ".venvd.toml").write_text("")
    assert resolver.find(str(docs)).root == str(docs)


def test_a_folder_that_is_gone_resolves_without_error(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    resolver = Resolver(settle_ns=0)
    gone = repo / "docs" / "missing"
    assert resolver.find(str(gone)) == walk(str(gone))
