"""The size rules (STYLE.md, issue 11): no module over 300 lines and no class over 150 in
the code venvd ships (daemon/, client/, shell/). A module or class past them holds several
jobs; split it by job rather than raise the limit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from venvd.daemon import aliases
from venvd.shell import ready

REPO = Path(__file__).resolve().parent.parent
PARTS = ("daemon", "client", "shell")
MAX_MODULE_LINES = 300
MAX_CLASS_LINES = 150

#: Known exceptions, each to be removed once its reason is gone ("path" for a module,
#: "path::Class" for a class). The last test fails when one is no longer needed.
EXCEPTIONS: dict[str, str] = {
}


def offenders(path: str, text: str) -> dict[str, int]:
    """The module (``path``) and classes (``path::Name``) of *text* past the limits, with
    their length in lines."""
    found = {}
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found[path] = lines
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_CLASS_LINES:
                found[f"{path}::{node.name}"] = length
    return found


def shipped_offenders() -> dict[str, int]:
    found: dict[str, int] = {}
    for part in PARTS:
        for module in sorted((REPO / part).rglob("*.py")):
            found.update(offenders(str(module.relative_to(REPO)), module.read_text()))
    return found


def test_the_measure_finds_a_long_module_and_a_long_class() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_CLASS_LINES))
    text = "class Big:\n" + body + "\n" * (MAX_MODULE_LINES - MAX_CLASS_LINES)
    assert offenders("m.py", text) == {"m.py": MAX_MODULE_LINES + 1,
                                       "m.py::Big": MAX_CLASS_LINES + 1}
    just_fits = "class Fits:\n" + body[:body.rindex("    x")]
    assert offenders("m.py", just_fits) == {}


def test_no_shipped_module_or_class_is_too_long() -> None:
    assert REPO.joinpath("daemon", "service.py").is_file()  # the tree is where we look
    too_long = {name: n for name, n in shipped_offenders().items() if name not in EXCEPTIONS}
    assert too_long == {}, (f"over {MAX_MODULE_LINES} lines a module or {MAX_CLASS_LINES} "
                            f"a class: {too_long}; split by job")


def test_every_exception_is_still_needed() -> None:
    stale = set(EXCEPTIONS) - set(shipped_offenders())
    assert stale == set(), f"within the limits now: remove {sorted(stale)} from EXCEPTIONS"


def test_a_new_snippet_syntax_reaches_aliases_with_no_daemon_edit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon writes and copies one snippet per syntax the shell registry names: a shell
    with a new syntax is one registry line (``ready.FORMATS`` is built from it), not an edit
    of the daemon's own list."""
    formats = {**ready.FORMATS, "newsh": ready.FORMATS["sh"]}
    monkeypatch.setattr(ready, "FORMATS", formats)
    monkeypatch.setattr(ready, "SUFFIXES", tuple(formats))
    ready_dir, project = tmp_path / "ready", str(tmp_path / "proj")
    env = project + "/.venv"
    ready.write(ready_dir, project, {"VIRTUAL_ENV": env, "VIRTUAL_ENV_PROMPT": "proj",
                                     "PYTHONHOME": None, "PATH": f"prepend {env}/bin"})
    aliases.write(ready_dir, project + "/docs", project)
    assert aliases.of(ready_dir, project) == [project + "/docs"]
    for suffix in formats:
        copy = ready.snippet_path(ready_dir, project + "/docs", suffix)
        assert copy.read_text() == ready.snippet_path(ready_dir, project, suffix).read_text()
