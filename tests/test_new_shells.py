"""elvish, tcsh, nushell and xonsh: their quoting executes nothing, the client's code sets
hostile values exactly, and install.sh hooks them for real (and --uninstall unhooks them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_install import BEGIN, allow_activates_and_leaves, install, installed_shell

from venvd.shell import SHELLS

from conftest import Py, Sandbox, wait_for
from support.newshells import NEW_FAMILY, new_rc
from support.shells import shell_path

KINDS = list(NEW_FAMILY)


def require(kind: str) -> str:
    """The shell's executable; a skip (a failure under VENVD_TEST_REQUIRE_SHELLS) without."""
    exe = shell_path(kind)
    if exe is None:
        if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):
            pytest.fail(f"{kind} is required (VENVD_TEST_REQUIRE_SHELLS) but not installed")
        pytest.skip(f"{kind} is not installed")
    return exe

#: Every character the issue names, and then some: none may run anything.
HOSTILE = ["plain", "", "we ird", "'", "''", '"', "it's \"q\"", "$(touch pwned1)",
           "`touch pwned2`", "a\nb", "\n", "*", "a:b", "ü ñ 漢", "{a,b}", "{}", "; touch pwned3",
           "# not a comment", "~", "~root", "a\\b", "\\", "\\n", "$HOME", "${HOME}", "!", "!!",
           "x!y", "a\tb", "^x", "e:HOME", "(x)", "[x]", "@x", "&", "|", "<x>", "%",
           "\\u{41} $nu $env.HOME @(1) !(x) %s", "cr\rescape\x1bdel\x7f", "☃ 𝄞"]


def echo_code(kind: str, values: list[str], script: Path) -> list[str]:
    """A script printing each value, as quoted, followed by a 0x1f byte."""
    words = [SHELLS[kind].quote(v) for v in values]
    quoted = " ".join(words)
    exe = require(kind)
    if kind == "nu":
        script.write_text(f"for v in [{quoted}] {{ print -n $\"($v)\\u{{1f}}\" }}\n")
        return [exe, "-n", str(script)]
    if kind == "xonsh":
        listed = ", ".join(words)
        script.write_text(f"for v in [{listed}]:\n"
                          "    print(v + chr(31), end='')\n")
        return [exe, "--no-rc", str(script)]
    if kind == "elvish":
        script.write_text(f"for v [{quoted}] {{ print $v\"\\x1f\" }}\n")
        return ["elvish", "-norc", str(script)]
    script.write_text(f"set l = ( {quoted} )\n@ i = 1\nwhile ( $i <= $#l )\n"
                      "printf '%s\\037' $l[$i]:q\n@ i++\nend\n")
    return ["tcsh", "-f", str(script)]


@pytest.mark.parametrize("kind", KINDS)
def test_quote_round_trips_hostile_values(kind: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(echo_code(kind, HOSTILE, tmp_path / "script"), cwd=work,
                            capture_output=True, timeout=30)  # bytes: text would eat a \r
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\x1f")[:-1] == HOSTILE
    assert list(work.iterdir()) == []  # nothing ran


def applied(kind: str, code: str, box: Sandbox) -> list[str]:
    """The argv that applies the client's *code* (nu and xonsh: with the real hook's own
    function, to the JSON it is) and prints VIRTUAL_ENV, then whether VENVD_OFF is set."""
    exe = require(kind)
    if kind == "elvish":
        return [exe, "-norc", "-c", code + "print $E:VIRTUAL_ENV; print (has-env VENVD_OFF)"]
    if kind == "tcsh":
        return [exe, "-f", "-c", code + "printf '%s' $VIRTUAL_ENV:q; printf '%s' $?VENVD_OFF"]
    hook = box.root / f"hook.{kind}"
    hook.write_text(box.venvd("hook", kind).stdout)
    (box.root / "code").write_text(code)
    if kind == "nu":
        return [exe, "-n", "-c", f"source {hook}; __venvd_apply (open --raw code); print -n "
                "$env.VIRTUAL_ENV; print -n ('VENVD_OFF' in $env)"]
    return [exe, "--no-rc", "-c", f"exec(open({str(hook)!r}).read()); "
            "_venvd.apply(open('code').read()); print($VIRTUAL_ENV, end=''); "
            "print('VENVD_OFF' in ${...}, end='')"]


@pytest.mark.parametrize("kind", KINDS)
def test_export_client_code_sets_hostile_values(sandbox: Sandbox, kind: str) -> None:
    values = {"VIRTUAL_ENV": "/w/we ird 'sq' \"dq\" $(touch pwned) `x` ; * \n ü {} # ~ \\ !",
              "VENVD_OFF": None}
    argv = applied(kind, SHELLS[kind].export(values), sandbox)
    env = {**sandbox.env, "VENVD_OFF": "/p"}
    out = subprocess.run(argv, cwd=sandbox.root, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, (kind, out.stderr)
    off = {"elvish": "$false", "tcsh": "0", "nu": "false", "xonsh": "False"}[kind]
    assert out.stdout == str(values["VIRTUAL_ENV"]) + off, kind
    assert not list(sandbox.root.rglob("pwned"))


@pytest.mark.parametrize("kind", KINDS)
def test_install_hooks_the_shell_and_uninstall_unhooks_it(sandbox: Sandbox, kind: str,
                                                          pythons: list[Py]) -> None:
    exe = require(kind)
    if not pythons:
        pytest.skip("no Python 3.9+ interpreter found")
    # install.sh hooks the shells it finds on PATH (xonsh may be in the test tools only)
    sandbox.env["PATH"] = f"{sandbox.env['PATH']}:{Path(exe).parent}"
    result = install(sandbox)
    assert result.returncode == 0, result.stderr + result.stdout
    rc = Path(SHELLS[kind].rc_paths(sandbox.env)[0])
    assert rc.read_text().count(BEGIN) == 1
    doctor = sandbox.venvd("doctor", check=False).stdout
    assert kind not in doctor.split("hooks:")[1].splitlines()[0], doctor

    # a new shell reading that rc file, with ~/.local/bin not yet on PATH
    project = sandbox.project("installed", pythons[-1].minor, "")
    new_rc(kind, sandbox.env, "", "", hook=rc.read_text())  # the test's prompt, then the block
    sh = installed_shell(sandbox, kind, project)
    allow_activates_and_leaves(sh, project, pythons[-1])
    sh.close()

    removed = install(sandbox, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert BEGIN not in rc.read_text()
    # a new shell starts, and nothing of venvd is left (nushell: the hook it had saved)
    sh = installed_shell(sandbox, kind, sandbox.root)
    sh.run(f"cd {project}")
    assert sh.var("VIRTUAL_ENV") == ""
    assert not list(sandbox.home.rglob("venvd.nu"))


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


#: (code reading the hook once more, code printing how many prompt hooks there are)
AGAIN = {"nu": ("source ($nu.data-dir | path join vendor autoload venvd.nu)",
                "print -n ($env.config.hooks.pre_prompt | length)"),
         "xonsh": ("exec($(venvd hook xonsh))", "print(len(events.on_pre_prompt), end='')")}


@pytest.mark.parametrize("kind", list(AGAIN))
def test_the_hook_read_twice_hooks_once(sandbox: Sandbox, kind: str) -> None:
    again, count = AGAIN[kind]
    sh = sandbox.shell(kind, cwd=sandbox.root)
    assert sh.run(count) == "1"
    sh.run(again)
    assert sh.run(count) == "1"
