"""The shell registry drives everything shell-specific, and the defects it used to hide stay
fixed: a ``:`` in a project path, ``venvd export`` speaking when nothing changed, fish
walking up a path with a newline, and the export client's imports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from venvd.shell import SHELLS, activation, ready
from venvd.shell.activation import STATE_VAR, Wanted

from conftest import Sandbox
from support.newsteps import read_snippet
from support.shells import Shell, shell_path

REPO = Path(__file__).resolve().parents[1]
EXPORT_PY = REPO / "client" / "export.py"


def venv_wanted(project: str) -> Wanted:
    env = f"{project}/.venv"
    return Wanted(project, {"PYTHONHOME": None, "VIRTUAL_ENV": env, "VIRTUAL_ENV_PROMPT": "p"},
                  f"{env}/bin")


# ---------------------------------------------------------------------------------------------
# ':' in a project path, as data


def test_a_colon_project_is_refused_with_one_message() -> None:
    wanted = venv_wanted("/w/co:lon")
    message = activation.refusal(wanted)
    assert message is not None and "':'" in message and "/w/co:lon" in message
    assert activation.plan({"PATH": "/bin"}, wanted, "1") == {}  # stays inactive
    assert activation.refusal(venv_wanted("/w/plain")) is None
    # the hooks' no-process path gets no snippet for it: the client decides, and says why
    exports = {"PATH": "prepend /w/co:lon/.venv/bin", "VIRTUAL_ENV": "/w/co:lon/.venv",
               "VIRTUAL_ENV_PROMPT": "p", "PYTHONHOME": None}
    assert ready.fast_state("/w/co:lon", exports) is None
    assert ready.fast_state("/w/plain", {**exports, "PATH": "prepend /w/plain/.venv/bin",
                                         "VIRTUAL_ENV": "/w/plain/.venv"}) is not None


def test_leaving_removes_an_entry_with_a_colon_an_older_venvd_put_on_path() -> None:
    entry = "/w/co:lon/.venv/bin"
    state = activation.State("1", "/w/co:lon", {"VIRTUAL_ENV": None},
                             {"VIRTUAL_ENV": "/w/co:lon/.venv"}, entry)
    env = {"PATH": f"/u:{entry}:/bin:{entry}", STATE_VAR: state.encode(),
           "VIRTUAL_ENV": "/w/co:lon/.venv"}
    changes = activation.plan(env, Wanted(), "1")
    assert changes["PATH"] == f"/u:/bin:{entry}"  # the first occurrence, as the hooks do
    assert changes["VIRTUAL_ENV"] is None and changes[STATE_VAR] is None


# ---------------------------------------------------------------------------------------------
# the registry


def test_hook_list_names_every_shell_and_its_rc_file(sandbox: Sandbox) -> None:
    out = sandbox.venvd("hook", "--list").stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert list(dict.fromkeys(r[0] for r in rows)) == list(SHELLS)
    home = str(sandbox.home)
    for name, rc, line in rows:
        assert rc.startswith(home + "/"), rc
        assert line == SHELLS[name].hook_line()
        block = sandbox.venvd("hook", name, "--rc-block").stdout
        assert line in block and SHELLS[name].hooked(block)
    assert sandbox.venvd("hook", check=False).returncode == 2  # no shell, no --list


def test_doctor_checks_the_rc_file_of_every_installed_shell(sandbox: Sandbox) -> None:
    installed = [name for name in SHELLS if shutil.which(name)]
    if not installed:
        pytest.skip("no supported shell is installed")
    before = sandbox.venvd("doctor", check=False).stdout
    assert re.search(r"^FIX   hooks: missing in .*" + installed[0], before, re.M), before
    rows = [line.split("\t") for line in sandbox.venvd("hook", "--list").stdout.splitlines()]
    done: set[str] = set()
    for name, rc, _ in rows:
        if name not in done:
            done.add(name)
            Path(rc).parent.mkdir(parents=True, exist_ok=True)
            Path(rc).write_text(sandbox.venvd("hook", name, "--rc-block").stdout)
    after = sandbox.venvd("doctor", check=False).stdout
    assert "ok    hooks: present for every installed shell" in after, after


def test_fish_rc_follows_xdg_config_home() -> None:
    fish = SHELLS["fish"]
    assert fish.rc_paths({"HOME": "/h"}) == ["/h/.config/fish/config.fish"]
    assert fish.rc_paths({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}) == [
        "/x/fish/config.fish", "/h/.config/fish/config.fish"]


SNIPPET_VALUES = ("/p/we ird 'sq' \"dq\" $(touch pwned) `touch pwned` \\ * \n ü/.venv",
                  "pr'om\"pt $x", "YWJj-_=")


def read_back(kind: str, snippet: Path, tmp: Path) -> list[str]:
    """Source *snippet* in a real *kind* shell; the three values it set."""
    names = ("_venvd_r_env", "_venvd_r_prompt", "_venvd_r_blob")
    code = read_snippet(kind, SHELLS[kind].quote(str(snippet)), names)
    if code is not None:
        pass
    elif kind == "fish":
        code = f"source {SHELLS[kind].quote(str(snippet))}; printf '%s\\x1f' " + " ".join(
            f'"${n}"' for n in names)
    else:
        code = f". {SHELLS[kind].quote(str(snippet))}; printf '%s\\037' " + " ".join(
            f'"${n}"' for n in names)
    exe = shell_path(kind)
    assert exe is not None
    out = subprocess.run([exe, "-c", code], cwd=tmp, capture_output=True, text=True,
                         check=True).stdout
    return out.split("\x1f")[:-1]


@pytest.mark.parametrize("kind", list(SHELLS))
def test_every_shells_snippet_round_trips_hostile_values(kind: str, tmp_path: Path) -> None:
    if shell_path(kind) is None:
        if os.environ.get("VENVD_TEST_REQUIRE_SHELLS"):  # CI: a shell it cannot have fails
            pytest.fail(f"{kind} is required (VENVD_TEST_REQUIRE_SHELLS) but not installed")
        pytest.skip(f"{kind} is not installed")
    pairs = tuple(zip(("_venvd_r_env", "_venvd_r_prompt", "_venvd_r_blob"), SNIPPET_VALUES))
    snippet = tmp_path / f"s.{SHELLS[kind].snippet_suffix}"
    snippet.write_text(SHELLS[kind].snippet(pairs), encoding="utf-8")
    assert read_back(kind, snippet, tmp_path) == list(SNIPPET_VALUES)
    assert not list(tmp_path.rglob("pwned*"))


def test_ready_writes_one_snippet_per_syntax_of_the_registry(tmp_path: Path) -> None:
    exports = {"PATH": "prepend /p/.venv/bin", "VIRTUAL_ENV": "/p/.venv",
               "VIRTUAL_ENV_PROMPT": "p", "PYTHONHOME": None}
    ready.write(tmp_path, "/p", exports)
    suffixes = {s.snippet_suffix for s in SHELLS.values()}
    assert {p.name for p in (tmp_path / "p").iterdir()} == {
        f"{ready.READY_NAME}.{s}" for s in suffixes}
    ready.remove(tmp_path, "/p")
    assert list((tmp_path / "p").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# the export client


def run_export(box: Sandbox, cwd: Path, *python_flags: str,
               script: Path = EXPORT_PY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in box.env.items() if k not in (STATE_VAR, "VIRTUAL_ENV")}
    env["PWD"] = str(cwd)
    return subprocess.run(
        [sys.executable, *python_flags, str(script), "bash", "--socket", str(box.socket),
         "--state-db", str(box.home / "no-state.db"), "--pid", "4242"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=True)


def test_export_prints_nothing_when_nothing_changed(daemon: Sandbox) -> None:
    plain = daemon.root / "plain"
    plain.mkdir()
    result = run_export(daemon, plain, "-I")
    assert result.stdout == "" and result.stderr == ""


#: venvd's stdlib-only layer: all the prompt path may import besides the standard library.
ALLOWED = {
    "venvd", "venvd.client", "venvd.client.export", "venvd.client.connection",
    "venvd.daemon", "venvd.daemon.projects", "venvd.daemon.workspace", "venvd.daemon.trust",
    "venvd.daemon.paths", "venvd.daemon.errors", "venvd.daemon.protocol",
    "venvd.daemon.projectfile", "venvd.daemon.folders", "venvd.daemon.display",
    "venvd.daemon.ownership",
    "venvd.shell", "venvd.shell.activation", "venvd.shell.base", "venvd.shell.posix",
    "venvd.shell.data", "venvd.shell.nu_hook", "venvd.shell.tcsh_fast",
    *(f"venvd.shell.{name}" for name in SHELLS),
}


#: Runs the export client as the hook does, then lists every module it left loaded.
LIST_MODULES = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("@@MODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""


def test_export_client_imports_only_the_stdlib_and_venvds_stdlib_layer(
        daemon: Sandbox, tmp_path: Path) -> None:
    # the layout the hook runs with -I -S (no site: no third-party package could load anyway)
    package = tmp_path / "venvd"
    for part in ("client", "daemon", "shell"):
        shutil.copytree(REPO / part, package / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    project = daemon.project("imports", requirements="")
    result = run_export(daemon, project, "-I", "-S", "-c", LIST_MODULES,
                        script=package / "client" / "export.py")
    found = re.search(r"^@@MODULES (.*)$", result.stderr, re.M)
    assert found, result.stderr
    loaded = set(found.group(1).split())
    assert {"venvd.shell.activation", "venvd.client.connection"} <= loaded  # it ran
    ours = {m for m in loaded if m.split(".")[0] == "venvd"}
    assert ours <= ALLOWED, sorted(ours - ALLOWED)
    others = {m for m in loaded - ours
              if m.split(".")[0] not in sys.stdlib_module_names and m != "__main__"}
    assert others == set(), sorted(others)


# ---------------------------------------------------------------------------------------------
# real shells


def test_a_colon_project_stays_inactive_with_one_message(daemon: Sandbox,
                                                         shell_kind: str) -> None:
    project = daemon.project("co:lon", requirements="")
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    daemon.env["PROJ"] = str(project)
    sh = daemon.shell(shell_kind, cwd=daemon.root)
    path = sh.var("PATH")
    sh.cd_var("PROJ")
    sh.run("true")
    assert "contains ':'" in "".join(sh.transcript[-2:])
    assert sh.var("VIRTUAL_ENV") == "" and sh.var("PATH") == path
    sh.run(f"cd {daemon.root}")
    assert sh.var("VIRTUAL_ENV") == "" and sh.var("PATH") == path


def test_cd_below_a_folder_with_a_newline_returns(daemon: Sandbox, shell_kind: str) -> None:
    # fish split the parent of such a path into a list and walked up forever
    deep = daemon.root / "new\nline" / "inner"
    deep.mkdir(parents=True)
    daemon.env["DEEP"] = str(deep)
    sh: Shell = daemon.shell(shell_kind, cwd=daemon.root)
    sh.cd_var("DEEP")
    assert sh.var("PWD") == str(deep)
    assert sh.status_of("true") == 0


@pytest.mark.parametrize("login", ["fish", "zsh"])
def test_install_without_rc_changes_names_the_login_shells_hook_line(sandbox: Sandbox,
                                                                      login: str) -> None:
    from test_install import install

    sandbox.env["SHELL"] = f"/usr/bin/{login}"
    result = install(sandbox, "--no-modify-rc")
    assert result.returncode == 0, result.stderr
    rc = SHELLS[login].rc_paths(sandbox.env)[0]
    assert f"add the line '{SHELLS[login].hook_line()}' to {rc}" in result.stdout, result.stdout
    install(sandbox, "--uninstall")


@pytest.mark.parametrize("args", [("hook", "bash", "--rc-block"), ("hook", "--list"),
                                  ("--help",)])
def test_a_reader_gone_is_no_traceback(sandbox: Sandbox, args: tuple[str, ...]) -> None:
    # `venvd hook bash --rc-block | head -1`: the pipe's reader has gone when venvd writes
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([str(sandbox.root / "bin" / "venvd"), *args], env=sandbox.env,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    assert done.returncode != 0  # it did not get its text out
