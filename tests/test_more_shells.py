"""nushell and xonsh: quoting that executes nothing, and the rc block install.sh writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from venvd.shell import SHELLS

from conftest import Sandbox
from support.moreshells import KINDS, write_rc
from support.shells import Shell, shell_path

#: Every character the brief names as hostile, and a few more a quoting scheme trips on.
HOSTILE = ["we ird 'sq' \"dq\"", "$(touch pwned1) `touch pwned2` ; touch pwned3",
           "new\nline\ttab\rcr\x1bescape\x7fdel", "* ? [x] {a,b} ~ # : ü ☃ 𝄞",
           "back\\slash \\\" \\' \\n \\u{41} $nu $env.HOME ${HOME} @(1) !(x) $HOME %s {}",
           "", "'", '"', "\\", "\\\\'"]

#: Code printing one quoted value exactly (``%s``: the quoted value).
PRINT = {"nu": "print -n %s", "xonsh": "print(%s, end='')"}


def run_in(kind: str, code: str, cwd: Path) -> str:
    exe = shell_path(kind)
    if exe is None:
        pytest.skip(f"{kind} is not installed")
    args = [exe, "-n", "-c", code] if kind == "nu" else [exe, "--no-rc", "-c", code]
    result = subprocess.run(args, cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()  # bytes: text mode would turn a \r into \n


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", HOSTILE)
def test_quote_is_one_literal_word_that_executes_nothing(kind: str, value: str,
                                                         tmp_path: Path) -> None:
    quoted = SHELLS[kind].quote(value)
    assert "\n" not in quoted  # one line, whatever the value holds
    assert run_in(kind, PRINT[kind] % quoted, tmp_path) == value
    assert list(tmp_path.iterdir()) == []


HOOKS = "print ($env.config.hooks.pre_prompt | length) ('__venvd' in $env)"


def test_nu_rc_block_saves_the_hook_and_removes_it_without_venvd(sandbox: Sandbox) -> None:
    if shell_path("nu") is None:
        pytest.skip("nu is not installed")
    saved = sandbox.home / ".local/share/nushell/vendor/autoload/venvd.nu"
    # the block as install.sh writes it, read by a new interactive shell
    write_rc("nu", sandbox.env, "", "", hook=SHELLS["nu"].rc_block())
    sh = Shell("nu", sandbox.env, sandbox.root, own_rc=False)
    sandbox._shells.append(sh)
    assert saved.is_file() and "__venvd_hook" in saved.read_text()
    assert sh.run(HOOKS).split() == ["1", "true"]  # read after config.nu, at this start
    sh.close()
    # venvd gone from PATH: the shell still starts, and the saved hook is gone
    sandbox.env["PATH"] = "/usr/bin:/bin"
    sh = Shell("nu", sandbox.env, sandbox.root, own_rc=False)
    sandbox._shells.append(sh)
    assert not saved.exists()
    assert sh.run(HOOKS).split() == ["0", "false"]


def test_xonsh_rc_block_hooks_only_when_venvd_is_there(sandbox: Sandbox) -> None:
    if shell_path("xonsh") is None:
        pytest.skip("xonsh is not installed")
    hooked = "printf '%s' @('_venvd' in globals())"
    write_rc("xonsh", sandbox.env, "", "", hook=SHELLS["xonsh"].rc_block())
    sh = Shell("xonsh", sandbox.env, sandbox.root, own_rc=False)
    sandbox._shells.append(sh)
    assert sh.run(hooked) == "True"
    local_bin = f"{sandbox.home}/.local/bin"
    assert sh.var("PATH").split(":")[0] == local_bin  # put first, once
    sh.run("exec($(venvd hook xonsh))")  # the rc file read twice: still one hook
    assert sh.run("printf '%s' @(len(events.on_pre_prompt))") == "1"
    sh.close()
    sandbox.env["PATH"] = "/usr/bin:/bin"  # venvd gone: the shell starts, unhooked
    sh = Shell("xonsh", sandbox.env, sandbox.root, own_rc=False)
    sandbox._shells.append(sh)
    assert sh.run(hooked) == "False"
