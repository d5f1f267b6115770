"""Project files that are not regular files (a symlink to /dev/zero, a FIFO) or too large:
refused with a clear status problem, the daemon stays small and answers everyone else."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from venvd.daemon import projectfile, trust, workspace
from venvd.daemon.config import ConfigError, load_project_config

import memlimit
from conftest import Sandbox, wait_for

limited_daemon = memlimit.limited_daemon  # the fixture

#: The daemon's resident memory stays under this after the hostile requests (it needs ~60 MB;
#: reading /dev/zero took 1.3 GB in two seconds).
RSS_BOUND = 400 * 1024 * 1024


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _trust_roots(box: Sandbox) -> None:
    config = box.home / ".config" / "venvd" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'trusted_roots = ["{box.root / "projects"}"]\n')


def _status(box: Sandbox, project: Path) -> dict[str, object]:
    return box.status(project)


@pytest.mark.parametrize(("name", "make", "kind"), [
    ("pyproject.toml", _zero, "character device"),
    (".venvd.toml", _zero, "character device"),
    ("pyproject.toml", os.mkfifo, "FIFO"),
    (".venvd.toml", os.mkfifo, "FIFO"),
])
def test_a_hostile_project_file_is_a_status_problem(
        limited_daemon: tuple[Sandbox, psutil.Process], name: str,
        make: object, kind: str) -> None:
    box, proc = limited_daemon
    # trusted by its folder, so the daemon goes as far as planning a sync of it
    _trust_roots(box)
    box.venvd("daemon", "restart")
    wait_for(box.alive, 30, "the restarted daemon")
    proc = psutil.Process(int(box.pid_file.read_text()))
    hostile = box.project("hostile", requirements="")
    make(hostile / name)  # type: ignore[operator]
    good = box.project("good", requirements="")

    # more requests than the daemon has request threads: none may be held
    for _ in range(10):
        status = _status(box, hostile)
        assert kind in str(status["problem"]), status
        assert name in str(status["problem"]), status
    assert _status(box, good)["problem"] is None
    assert proc.memory_info().rss < RSS_BOUND
    if name == ".venvd.toml":  # never trusted by 'allow' either: a clear refusal
        allow = box.venvd("allow", str(hostile), check=False)
        assert allow.returncode != 0
        assert kind in allow.stdout + allow.stderr

    box.venvd("daemon", "stop")
    wait_for(lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, 30,
             "the daemon to stop")


def test_untrusted_dev_zero_pyproject_answers_prompts(
        limited_daemon: tuple[Sandbox, psutil.Process]) -> None:
    box, proc = limited_daemon
    hostile = box.project("hostile", requirements="")
    _zero(hostile / "pyproject.toml")
    reply = box.request({"v": 1, "op": "export", "dir": str(hostile), "pid": os.getpid()})
    assert reply["ok"], reply
    status = _status(box, hostile)
    assert status["state"] == "untrusted"
    assert "character device" in str(status["problem"])
    assert proc.memory_info().rss < RSS_BOUND
    assert "MemoryError" not in memlimit.daemon_output(box)


def test_read_project_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    _zero(tmp_path / "zero")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"#" * (projectfile.MAX_TOML + 1))
    (tmp_path / "ok.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "link.toml").symlink_to("ok.toml")  # a symlink to a regular file is fine
    for name, why in (("zero", "character device"), ("fifo", "FIFO"), ("big", "larger than"),
                      ("missing-dir/x", None)):
        path = tmp_path / name
        if why is None:
            with pytest.raises(FileNotFoundError):
                projectfile.read_project_file(path)
            continue
        with pytest.raises(projectfile.UnsafeFile, match=why) as caught:
            projectfile.read_project_file(path)
        assert str(path) in str(caught.value)
    assert projectfile.read_project_file(tmp_path / "link.toml").startswith(b"[project]")


def test_config_trust_and_boundaries_use_the_bounded_reader(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".venvd.toml")
    with pytest.raises(ConfigError, match="FIFO"):
        load_project_config(tmp_path)
    with pytest.raises(projectfile.UnsafeFile, match="FIFO"):
        trust.config_digest(str(tmp_path))
    # an allowed record never matches a .venvd.toml venvd will not read
    assert trust.decide((True, ""), str(tmp_path), ()) is False
    other = tmp_path / "other"
    other.mkdir()
    _zero(other / "pyproject.toml")
    assert workspace._read_pyproject(str(other / "pyproject.toml")) == workspace._Pyproject()


def test_toml_nested_thousands_deep_is_a_status_problem(
        limited_daemon: tuple[Sandbox, psutil.Process]) -> None:
    box, _proc = limited_daemon
    deep = "[tool.uv.workspace]\nmembers = " + "[" * 50000 + "\n"  # under the size cap
    hostile = box.project("deep", requirements="", files={"pyproject.toml": deep})
    reply = box.request({"v": 1, "op": "export", "dir": str(hostile), "pid": os.getpid()})
    assert reply["ok"], reply
    status = _status(box, hostile)
    assert "nested too deeply" in str(status["problem"]), status
    # the boundary rule (which runs on every prompt) reads it as no workspace
    assert workspace._parse_pyproject(deep) == workspace._Pyproject()
