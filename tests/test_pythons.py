"""Finding interpreters the way pyenv users expect, with real interpreters on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from venvd.daemon import pythons as finder
from venvd.daemon.pythons import Interpreter, InterpreterNotFound

from conftest import Py


def test_version_file_format_and_search(tmp_path: Path) -> None:
    (tmp_path / ".python-version").write_text("# pinned for CI\n3.12  # main\n\npypy3.10-7.3.12\n"
                                              "system\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    found = finder.read_python_version_file(nested)
    assert found == (["3.12", "pypy3.10-7.3.12", "system"], tmp_path / ".python-version")
    assert finder.read_python_version_file(nested, stop_at=nested) is None


def fake(version: str, name: str = "", impl: str = "cpython", source: str = "pyenv"
         ) -> Interpreter:
    parts = tuple(int(p) for p in version.split("."))
    assert len(parts) == 3
    return Interpreter(f"/x/{name or version}/bin/python3", (parts[0], parts[1], parts[2]),
                       impl, source, name or version)


FOUND = [fake("3.11.7"), fake("3.12.0"), fake("3.12.1"), fake("3.10.2", "pypy3.10-7.3.12", "pypy"),
         fake("3.11.2", "python3", source="PATH")]


@pytest.mark.parametrize(("specs", "expected"), [
    (["3.12"], "/x/3.12.1/bin/python3"),  # newest 3.12.x
    (["3.12.0"], "/x/3.12.0/bin/python3"),  # exactly that one
    (["3"], "/x/3.12.1/bin/python3"),
    (["3.9", "3.11"], "/x/3.11.7/bin/python3"),  # first one that exists wins
    (["pypy3.10-7.3.12"], "/x/pypy3.10-7.3.12/bin/python3"),
    (["pypy3.10"], "/x/pypy3.10-7.3.12/bin/python3"),
    (["system"], "/x/python3/bin/python3"),
    (["cpython-3.11"], "/x/3.11.7/bin/python3"),
])
def test_choose(specs: list[str], expected: str) -> None:
    assert finder.choose(specs, FOUND).path == expected


def test_missing_interpreter_says_what_was_wanted_and_found() -> None:
    with pytest.raises(InterpreterNotFound) as err:
        finder.choose(["3.4"], FOUND, "/p/.python-version")
    message = str(err.value)
    assert "wanted Python 3.4 (from /p/.python-version)" in message
    assert "3.12.1 (pyenv)" in message and "3.11.2 (PATH)" in message
    with pytest.raises(InterpreterNotFound):
        finder.choose(["banana"], FOUND)


def test_requires_python_takes_newest_match() -> None:
    assert finder.choose_for_requires_python(">=3.10,<3.12", FOUND).version == (3, 11, 7)
    assert finder.choose_for_requires_python("~=3.12.0", FOUND).version == (3, 12, 1)
    with pytest.raises(InterpreterNotFound, match=r"wanted Python >=3\.14"):
        finder.choose_for_requires_python(">=3.14", FOUND)
    with pytest.raises(InterpreterNotFound, match="not a valid specifier"):
        finder.choose_for_requires_python(">>3", FOUND)


def test_discover_real_interpreters(tmp_path: Path, pythons: list[Py]) -> None:
    """A pyenv root, a uv folder and PATH made of real interpreters; shims and venvs skipped."""
    if len(pythons) < 2:
        pytest.skip("two real interpreters are needed")
    py_a, py_b = pythons[0], pythons[-1]
    root = tmp_path / "pyenv"
    (root / "versions" / py_a.version / "bin").mkdir(parents=True)
    (root / "versions" / py_a.version / "bin" / "python3").symlink_to(py_a.path)
    venv_like = root / "versions" / "myenv"
    (venv_like / "bin").mkdir(parents=True)
    (venv_like / "pyvenv.cfg").write_text("home = /nowhere\n")
    (venv_like / "bin" / "python3").symlink_to(py_a.path)
    shims = tmp_path / "pyenv" / "shims"
    shims.mkdir()
    (shims / "python3").symlink_to(py_a.path)
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / f"python{py_b.minor}").symlink_to(py_b.path)
    found = finder.discover(root, tmp_path / "no-uv", os.pathsep.join([str(shims), str(on_path)]))
    described = {(i.source, i.version_str) for i in found}
    assert described == {("pyenv", py_a.version), ("PATH", py_b.version)}
    chosen = finder.choose([py_b.minor], found)
    assert chosen.path == str(on_path / f"python{py_b.minor}")
