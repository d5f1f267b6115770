"""Terminal control sequences in folder names, ``.python-version`` and tool output: every
message venvd prints shows them escaped (ESC as ``\\x1b``), never raw, while the paths it
exports (VIRTUAL_ENV, PATH) stay exactly the folder's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from venvd.daemon import projects
from venvd.daemon.display import printable

from conftest import Sandbox

#: Sets the terminal's title ("OSC 0"), then clears the screen.
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
RAW = ("\x1b", "\x07", "\x9b")


#: A build backend whose failure output clears the screen and retitles the terminal (uv takes
#: out 7-bit sequences such as ESC [ 2 J itself, but passes the 8-bit CSI, U+009B, through).
FAILING_BACKEND = """
import sys
def get_requires_for_build_wheel(config_settings=None):
    return []
get_requires_for_build_editable = get_requires_for_build_wheel
def build_wheel(*args, **kwargs):
    sys.stderr.write("\\x1b[2J\\x9b2Jbuild exploded\\x1b]0;pwned\\x07\\n")
    raise SystemExit("error: \\x1b[2Jboom")
build_editable = build_wheel
"""


def _no_raw(text: str) -> bool:
    return not any(c in text for c in RAW)


def _venvd_lines(transcript: list[str]) -> list[str]:
    """venvd's lines on the terminal, from their ``venvd:`` on (a shell may put its own
    sequences, such as fish's bracketed-paste switch, in front)."""
    return [ln[ln.index("venvd:"):] for ln in "".join(transcript).splitlines() if "venvd:" in ln]


def test_printable_escapes_c0_del_c1_and_keeps_the_rest() -> None:
    assert printable(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert printable("tab\there\nline\x7f\x9b") == "tab\\x09here\\x0aline\\x7f\\x9b"
    assert printable("keep\n\tthis", keep="\n\t") == "keep\n\tthis"
    assert printable("caf\u00e9 \u2603 \\x1b") == "caf\u00e9 \u2603 \\x1b"  # text and backslashes
    assert printable("bad-\udcff") == "bad-\\xff"  # a byte that was not UTF-8
    assert printable(printable(f"{TITLE}{CLEAR}")) == printable(f"{TITLE}{CLEAR}")


def _can_enter_escapes(kind: str) -> None:
    if kind == "nu":
        pytest.skip("nushell's cd drops escape sequences from a path (0.108: 'directory not "
                    "found'): no nushell can enter such a folder, so its hook never sees one")


def test_a_not_allowed_line_shows_escapes_and_never_a_raw_esc(daemon: Sandbox,
                                                              shell_kind: str) -> None:
    _can_enter_escapes(shell_kind)
    project = daemon.project(f"title{TITLE}proj", requirements="")
    daemon.env["PROJ"] = str(project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.cd_var("PROJ")  # the name is never typed: only venvd could echo it
    sh.run("true")
    lines = [ln for ln in _venvd_lines(sh.transcript) if "not allowed" in ln]
    assert len(lines) == 1, _venvd_lines(sh.transcript)
    assert "title\\x1b]0;pwned\\x07proj" in lines[0]
    assert _no_raw(lines[0])
    assert TITLE not in "".join(sh.transcript)


def test_an_activated_project_keeps_its_exact_path_and_an_escaped_prompt(
        daemon: Sandbox, shell_kind: str) -> None:
    _can_enter_escapes(shell_kind)
    project = daemon.project(f"red{CLEAR}env", requirements="")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    daemon.env["PROJ"] = str(project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    sh.cd_var("PROJ")
    sh.prompts_until(lambda: sh.var("VIRTUAL_ENV") == f"{project}/.venv", 60,
                     "the env active at its exact path")
    prompt = sh.var("VIRTUAL_ENV_PROMPT")
    assert prompt and _no_raw(prompt)
    # the python found on PATH, in a way every shell can run
    found = sh.run("python -c 'import sys; print(sys.executable)'").strip()
    assert found == f"{project}/.venv/bin/python"
    assert _no_raw("".join(_venvd_lines(sh.transcript)))


def test_a_hand_made_env_prompt_is_escaped_in_the_activation(tmp_path: Path) -> None:
    """``VIRTUAL_ENV_PROMPT`` comes from the env's pyvenv.cfg, else the folder's name: both
    are escaped there, and the env path is left exactly as it is."""
    project = tmp_path / f"odd{TITLE}name"
    env = project / ".venv"
    env.mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    exports = projects.activation(str(project), str(env))
    assert exports["VIRTUAL_ENV"] == str(env)
    assert exports["PATH"] == f"prepend {env}/bin"
    assert exports["VIRTUAL_ENV_PROMPT"] == "odd\\x1b]0;pwned\\x07name"
    (env / "pyvenv.cfg").write_text(f"home = /usr/bin\nprompt = {CLEAR}mine\n")
    assert projects.activation(str(project), str(env))["VIRTUAL_ENV_PROMPT"] == "\\x1b[2Jmine"


def _allowed(box: Sandbox, project: Path) -> None:
    box.venvd("allow", str(project))
    box.wait_state(project, ("synced", "failed", "missing", "drifted"))


def _status_is_clean(box: Sandbox, project: Path) -> str:
    """``venvd status``, human and ``--json``, with no raw control character; the former."""
    status = box.venvd("status", str(project), check=False)
    assert _no_raw(status.stdout + status.stderr), status.stdout
    raw_json = box.venvd("status", str(project), "--json").stdout
    assert _no_raw(raw_json)  # JSON writes control characters as \u001b
    json.loads(raw_json)
    return status.stdout


def test_a_python_version_line_is_escaped_in_status_and_news(daemon: Sandbox) -> None:
    pinned = daemon.project("pinned", requirements="", files={".python-version":
                                                                f"3.11{TITLE}\n"})
    _allowed(daemon, pinned)
    assert "\\x1b]0;pwned\\x07" in _status_is_clean(daemon, pinned)
    export = daemon.venvd("export", "bash", cwd=pinned, check=False)  # what a shell is told
    assert _no_raw(export.stderr), export.stderr


def test_build_output_is_escaped_in_logs_status_and_news(daemon: Sandbox) -> None:
    broken = daemon.project("broken", requirements=None, files={
        "pyproject.toml": '[project]\nname = "broken"\nversion = "0.1"\n'
                          '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                          'backend-path = ["_backend"]\n',
        "_backend/backend.py": FAILING_BACKEND})
    _allowed(daemon, broken)
    _status_is_clean(daemon, broken)
    logs = daemon.venvd("logs", str(broken), check=False)
    assert _no_raw(logs.stdout + logs.stderr)
    assert "\\x9b2Jbuild exploded" in logs.stdout, logs.stdout  # shown, escaped
    export = daemon.venvd("export", "bash", cwd=broken, check=False)
    assert _no_raw(export.stderr), export.stderr
