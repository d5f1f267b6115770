"""elvish and tcsh: their quoting executes nothing, and install.sh hooks them for real."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_install import BEGIN, allow_activates_and_leaves, install, installed_shell

from venvd.shell import SHELLS

from conftest import Py, Sandbox, wait_for
from support.newshells import NEW_FAMILY

KINDS = list(NEW_FAMILY)

#: Every character the issue names, and then some: none may run anything.
HOSTILE = ["plain", "", "we ird", "'", "''", '"', "it's \"q\"", "$(touch pwned1)",
           "`touch pwned2`", "a\nb", "\n", "*", "a:b", "ü ñ 漢", "{a,b}", "{}", "; touch pwned3",
           "# not a comment", "~", "~root", "a\\b", "\\", "\\n", "$HOME", "${HOME}", "!", "!!",
           "x!y", "a\tb", "^x", "e:HOME", "(x)", "[x]", "@x", "&", "|", "<x>", "%"]


def echo_code(kind: str, values: list[str], script: Path) -> list[str]:
    """A script printing each value, as quoted, followed by a 0x1f byte."""
    quoted = " ".join(SHELLS[kind].quote(v) for v in values)
    if kind == "elvish":
        script.write_text(f"for v [{quoted}] {{ print $v\"\\x1f\" }}\n")
        return ["elvish", "-norc", str(script)]
    script.write_text(f"set l = ( {quoted} )\n@ i = 1\nwhile ( $i <= $#l )\n"
                      "printf '%s\\037' $l[$i]:q\n@ i++\nend\n")
    return ["tcsh", "-f", str(script)]


@pytest.mark.parametrize("kind", KINDS)
def test_quote_round_trips_hostile_values(kind: str, tmp_path: Path) -> None:
    if shutil.which(kind) is None:
        if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
            pytest.fail(f"{kind} is required (VENVD_TEST_REQUIRE_SHELLS) but not installed")
        pytest.skip(f"{kind} is not installed")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(echo_code(kind, HOSTILE, tmp_path / "script"), cwd=work,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\x1f")[:-1] == HOSTILE
    assert list(work.iterdir()) == []  # nothing ran


def test_export_client_code_sets_hostile_values(sandbox: Sandbox) -> None:
    values = {"VIRTUAL_ENV": "/w/we ird 'sq' \"dq\" $(touch pwned) `x` ; * \n ü {} # ~ \\ !",
              "VENVD_OFF": None}
    for kind in KINDS:
        if shutil.which(kind) is None:
            continue
        code = SHELLS[kind].export(values)
        show = ("print $E:VIRTUAL_ENV; print (has-env VENVD_OFF)" if kind == "elvish"
                else "printf '%s' $VIRTUAL_ENV:q; printf '%s' $?VENVD_OFF")
        argv = (["elvish", "-norc", "-c", code + show] if kind == "elvish"
                else ["tcsh", "-f", "-c", code + show])
        env = {**sandbox.env, "VENVD_OFF": "/p"}
        out = subprocess.run(argv, cwd=sandbox.root, env=env, capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, (kind, out.stderr)
        off = "$false" if kind == "elvish" else "0"
        assert out.stdout == str(values["VIRTUAL_ENV"]) + off, kind
    assert not list(sandbox.root.rglob("pwned"))


@pytest.mark.parametrize("kind", KINDS)
def test_install_hooks_the_shell_and_uninstall_unhooks_it(sandbox: Sandbox, kind: str,
                                                          pythons: list[Py]) -> None:
    if shutil.which(kind) is None:
        if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
            pytest.fail(f"{kind} is required (VENVD_TEST_REQUIRE_SHELLS) but not installed")
        pytest.skip(f"{kind} is not installed")
    if not pythons:
        pytest.skip("no Python 3.9+ interpreter found")
    result = install(sandbox)
    assert result.returncode == 0, result.stderr + result.stdout
    rc = Path(SHELLS[kind].rc_paths(sandbox.env)[0])
    assert rc.read_text().count(BEGIN) == 1
    doctor = sandbox.venvd("doctor", check=False).stdout
    assert kind not in doctor.split("hooks:")[1].splitlines()[0], doctor

    # a new shell reading that rc file, with ~/.local/bin not yet on PATH
    project = sandbox.project("installed", pythons[-1].minor, "")
    prompt = {"elvish": "set edit:prompt = { put '> ' }\n", "tcsh": "set prompt = '> '\n"}
    rc.write_text(prompt[kind] + rc.read_text())
    sh = installed_shell(sandbox, kind, project)
    allow_activates_and_leaves(sh, project, pythons[-1])

    removed = install(sandbox, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert BEGIN not in rc.read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_first_prompt_ever_starts_the_daemon(sandbox: Sandbox, kind: str) -> None:
    """No daemon has ever run (its runtime folder does not exist yet): a cd into a project
    starts it, and the project, not yet allowed, says so once."""
    runtime = sandbox.socket.parent
    assert not runtime.exists()
    project = sandbox.project("first", requirements="")
    sh = sandbox.shell(kind, cwd=sandbox.root)
    said = sh.run(f"cd {project}") + sh.prompt_output
    wait_for(sandbox.alive, 30, "the hook to start the daemon")
    for _ in range(3):
        sh.run("true")
        said += sh.prompt_output
    assert said.count("venvd allow") == 1, said
    assert sh.var("VIRTUAL_ENV") == ""
    assert sandbox.status(project)["state"] == "untrusted"
