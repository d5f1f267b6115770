"""PATH is exactly right after any mix of venvd activation, venvs activated by hand,
``deactivate`` and ``cd``: decided once as data (``venvd.shell.activation``), tested on plain
dicts, then the same scenario table run through bash, zsh and fish, by the hooks' own
no-process path and by the client alike."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from venvd.shell import activation
from venvd.shell.activation import OFF_VAR, SAVED_PATH_VAR, STATE_VAR, Wanted

from conftest import Sandbox
from support.newsteps import NEW_STEP, OUTCOME, SKIP_STEP
from support.shells import FAMILY, Shell

# What the user does, one step per prompt:
#   in / sub / out: cd into the project, into a folder of it, out of it
#   two:            cd straight into a second project (its env: Q)
#   colon:          cd into an allowed, synced project with ':' in its path (PATH cannot
#                   hold its env: it stays inactive, with a message)
#   home:           the user exports PYTHONHOME (which a venv must not run under)
#   hand / pyhand:  source the activate script of a venv made by `uv venv` / `python -m venv`
#   own:            source the project's own .venv/bin/activate (its VIRTUAL_ENV is the folder
#                   the env was built in, S, so venvd takes it as activated by hand)
#   deactivate:     whichever `deactivate` the shell has (a hand venv's wins over venvd's)
#   user / userbin: the user puts a folder of their own / the env's bin first on PATH
# The end state: PATH as symbols (P / Q the projects' env bins, O / Y / S the hand venvs'
# bins, U the user's folder, then the PATH the shell started with), and who VIRTUAL_ENV is;
# PYTHONHOME, where a scenario names it in HOME_AFTER, is checked as well.
SCENARIOS: dict[str, tuple[str, str, str]] = {
    # name: (steps, PATH before the base, VIRTUAL_ENV)
    "enter-leave": ("in out", "", ""),
    "enter-sub-leave-enter": ("in sub out in", "P", "P"),
    "hand-inside-deactivate-outside": ("in hand out deactivate", "", ""),
    "hand-inside-deactivate-outside-enter": ("in hand out deactivate in", "P", "P"),
    "pyvenv-inside-deactivate-outside-enter": ("in pyhand out deactivate in", "P", "P"),
    "hand-inside-deactivate-inside": ("in hand deactivate", "P", "P"),
    "hand-inside-stays": ("in hand sub", "O", "O"),
    "hand-outside-enter-deactivate": ("hand in deactivate", "P", "P"),
    "hand-outside-enter-leave-deactivate": ("hand in out deactivate", "", ""),
    "two-hands-inside": ("in hand pyhand deactivate out in", "P", "P"),
    "own-env-by-hand-deactivate-inside": ("in own deactivate", "P", "P"),
    "own-env-by-hand-leave": ("in own out", "S", "S"),
    "own-env-by-hand-leave-deactivate": ("in own out deactivate", "", ""),
    "user-entry-after-activation": ("in user out", "U", ""),
    "user-entry-after-activation-stays-in": ("in user sub", "U P", "P"),
    "user-env-bin-after-activation": ("in userbin out", "P", ""),
    "user-env-bin-before-entering": ("userbin in out", "P", ""),
    "venvd-deactivate": ("in deactivate", "", ""),
    "venvd-deactivate-stays-off-in-project": ("in deactivate sub", "", ""),
    "venvd-deactivate-leave-enter": ("in deactivate out in", "P", "P"),
    "venvd-deactivate-then-hand": ("in deactivate hand", "O", "O"),
    "venvd-deactivate-hand-deactivate": ("in deactivate hand deactivate", "", ""),
    "venvd-deactivate-twice": ("in deactivate deactivate", "", ""),
    # a hand venv's deactivate removes itself; venvd's comes back for the env it put back
    "hand-deactivate-then-venvd-deactivate": ("in hand deactivate deactivate", "", ""),
    "hand-outside-then-venvd-deactivate": ("hand in deactivate deactivate in", "", ""),
    # switching straight from one project into another
    "switch": ("in two", "Q", "Q"),
    "switch-back-leave": ("in two in out", "", ""),
    "switch-keeps-user-entry": ("in user two out", "U", ""),
    "switch-deactivated-comes-on": ("in deactivate two", "Q", "Q"),
    "switch-under-hand-venv": ("in hand two deactivate", "Q", "Q"),
    # a ':' in the project's path: never activated, whatever came before
    "colon-refused": ("colon", "", ""),
    "colon-from-project": ("in colon", "", ""),
    "colon-then-project": ("colon in", "P", "P"),
    "colon-under-user-entry": ("in user colon out", "U", ""),
    # PYTHONHOME: unset while a venvd env is on, the user's value back on leaving
    "pythonhome-enter": ("home in", "P", "P"),
    "pythonhome-enter-leave": ("home in out", "", ""),
    "pythonhome-switch-leave": ("home in two out", "", ""),
    "pythonhome-deactivate": ("home in deactivate", "", ""),
}
#: PYTHONHOME at the end ("" unset) of the scenarios that set it.
HOME_VALUE = "/nowhere/py home"
HOME_AFTER = {"pythonhome-enter": "", "pythonhome-enter-leave": HOME_VALUE,
              "pythonhome-switch-leave": HOME_VALUE, "pythonhome-deactivate": HOME_VALUE}


# ---------------------------------------------------------------------------------------------
# the data: a shell simulated on a dict, the hook being activation.plan


@dataclass
class SimShell:
    """A shell's variables and which ``deactivate`` it has, with the hook at each prompt."""

    project: str
    out: str
    base: str
    two: str = ""
    colon: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    deactivate_fn: str = ""  # whose `deactivate` the shell has: "hand", "venvd" or none

    def __post_init__(self) -> None:
        self.env = {"PATH": self.base}
        self.cwd = self.out

    def wanted(self) -> Wanted:
        for project in (self.project, self.two, self.colon):
            if project and (self.cwd == project or self.cwd.startswith(project + "/")):
                env = f"{project}/.venv"
                return Wanted(project, {"PYTHONHOME": None, "VIRTUAL_ENV": env,
                                        "VIRTUAL_ENV_PROMPT": "proj"}, f"{env}/bin")
        return Wanted()

    def prompt(self) -> None:
        self._set(activation.plan(self.env, self.wanted(), "1"))
        if STATE_VAR in self.env and not self.deactivate_fn:
            self.deactivate_fn = "venvd"  # the hook defines it while nobody has one

    def _set(self, changes: dict[str, Optional[str]]) -> None:
        for name, value in changes.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value

    # what virtualenv's activate and deactivate do
    def activate(self, venv: str) -> None:
        self.deactivate_fn = "hand"
        self.deactivate_hand(nondestructive=True)
        self.env[SAVED_PATH_VAR] = self.env["PATH"]
        self.env["PATH"] = f"{venv}/bin:{self.env['PATH']}"
        self.env["VIRTUAL_ENV"] = venv
        self.env["VIRTUAL_ENV_PROMPT"] = Path(venv).name

    def deactivate_hand(self, nondestructive: bool = False) -> None:
        if self.env.get(SAVED_PATH_VAR):
            self.env["PATH"] = self.env.pop(SAVED_PATH_VAR)
        self.env.pop("VIRTUAL_ENV", None)
        self.env.pop("VIRTUAL_ENV_PROMPT", None)
        if not nondestructive:
            self.deactivate_fn = ""  # `unset -f deactivate`

    def deactivate(self) -> None:
        if self.deactivate_fn == "hand":
            self.deactivate_hand()
        elif self.deactivate_fn == "venvd":
            self._set(activation.deactivate(self.env) or {})


def simulate(steps: str, project: str, out: str, base: str,
             venvs: dict[str, str]) -> SimShell:
    sim = SimShell(project, out, base, venvs["two"], venvs["colon"])
    sim.prompt()
    for step in steps.split():
        if step in ("in", "sub", "out", "two", "colon"):
            sim.cwd = {"in": project, "sub": f"{project}/sub", "out": out,
                       "two": venvs["two"], "colon": venvs["colon"]}[step]
        elif step == "home":
            sim.env["PYTHONHOME"] = HOME_VALUE
        elif step in ("hand", "pyhand", "own"):
            sim.activate(venvs[step])
        elif step == "deactivate":
            sim.deactivate()
        elif step == "user":
            sim.env["PATH"] = f"/home/u/bin:{sim.env['PATH']}"
        elif step == "userbin":
            sim.env["PATH"] = f"{project}/.venv/bin:{sim.env['PATH']}"
        sim.prompt()
    return sim


def expected_path(symbols: str, project: str, venvs: dict[str, str], user: str,
                  base: list[str]) -> list[str]:
    table = {"P": f"{project}/.venv/bin", "Q": f"{venvs['two']}/.venv/bin",
             "O": f"{venvs['hand']}/bin",
             "Y": f"{venvs['pyhand']}/bin", "S": f"{venvs['own']}/bin", "U": user}
    return [table[s] for s in symbols.split()] + base


def expected_venv(symbol: str, project: str, venvs: dict[str, str]) -> str:
    return {"": "", "P": f"{project}/.venv", "Q": f"{venvs['two']}/.venv",
            "O": venvs["hand"], "Y": venvs["pyhand"], "S": venvs["own"]}[symbol]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_as_data(name: str) -> None:
    steps, path, venv = SCENARIOS[name]
    project = "/w/new\nline * [x]/we ird 'sq' \"dq\" $(touch pwned) `touch p2` ; ü"
    venvs = {"hand": "/w/other venv", "pyhand": "/w/py-venv", "own": "/envs/proj-1/f00",
             "two": "/w/two\tproj", "colon": "/w/co:lon"}
    base = ["/usr/local/bin", "/usr/bin", "/bin"]
    sim = simulate(steps, project, "/w", ":".join(base), venvs)
    assert sim.env["PATH"].split(":") == expected_path(path, project, venvs, "/home/u/bin",
                                                       base)
    assert sim.env.get("VIRTUAL_ENV", "") == expected_venv(venv, project, venvs)
    if name in HOME_AFTER:
        assert sim.env.get("PYTHONHOME", "") == HOME_AFTER[name]


def test_revert_takes_venvd_entry_out_of_a_hand_venvs_saved_path() -> None:
    wanted = Wanted("/p", {"VIRTUAL_ENV": "/p/.venv"}, "/p/.venv/bin")
    env = {"PATH": "/bin"}
    env.update(activation.plan(env, wanted, "1"))  # type: ignore[arg-type]
    state = activation.current_state(env)
    assert state is not None
    # `source /o/bin/activate` inside the project
    env.update({SAVED_PATH_VAR: env["PATH"], "PATH": "/o/bin:" + env["PATH"],
                "VIRTUAL_ENV": "/o"})
    changes = activation.plan(env, Wanted(), "1")
    assert changes[SAVED_PATH_VAR] == "/bin"
    assert changes["PATH"] == "/o/bin:/bin"
    assert "VIRTUAL_ENV" not in changes  # the hand venv's, left alone


def test_deactivate_is_nothing_without_a_venvd_env() -> None:
    assert activation.deactivate({"PATH": "/bin", "VIRTUAL_ENV": "/o"}) is None


def test_off_switch_is_kept_in_project_and_dropped_elsewhere() -> None:
    wanted = Wanted("/p", {"VIRTUAL_ENV": "/p/.venv"}, "/p/.venv/bin")
    env = {"PATH": "/bin", OFF_VAR: "/p"}
    assert activation.plan(env, wanted, "1") == {}
    assert activation.plan(env, Wanted("/q"), "1") == {OFF_VAR: None}
    assert activation.plan(env, Wanted(), "1") == {OFF_VAR: None}


# ---------------------------------------------------------------------------------------------
# the same table in real shells

# a newline and glob characters in a parent folder, the rest in the project's own name
HOSTILE = "new\nline * [x]/we ird 'sq' \"dq\" $(touch pwned1) `touch pwned2` ; ü"
STEP = {
    "in": {"posix": 'cd "$PROJ"', "fish": 'cd "$PROJ"'},
    "two": {"posix": 'cd "$TWO"', "fish": 'cd "$TWO"'},
    "colon": {"posix": 'cd "$COLON"', "fish": 'cd "$COLON"'},
    "home": {"posix": 'export PYTHONHOME="$HOMEVAL"', "fish": 'set -gx PYTHONHOME "$HOMEVAL"'},
    "sub": {"posix": 'cd "$PROJ/sub"', "fish": 'cd "$PROJ/sub"'},
    "out": {"posix": 'cd "$OUT"', "fish": 'cd "$OUT"'},
    "hand": {"posix": 'source "$HAND/bin/activate"', "fish": 'source "$HAND/bin/activate.fish"'},
    "own": {"posix": 'source "$PROJ/.venv/bin/activate"',
            "fish": 'source "$PROJ/.venv/bin/activate.fish"'},
    "pyhand": {"posix": 'source "$PYHAND/bin/activate"',
               "fish": 'source "$PYHAND/bin/activate.fish"'},
    "deactivate": {"posix": "deactivate", "fish": "deactivate"},
    "nofast": {"posix": "VENVD_NO_FAST=1", "fish": "set -gx VENVD_NO_FAST 1"},  # the rc line
    "user": {"posix": 'export PATH="$USERBIN:$PATH"', "fish": 'set -gx PATH "$USERBIN" $PATH'},
    "userbin": {"posix": 'export PATH="$PROJ/.venv/bin:$PATH"',
                "fish": 'set -gx PATH "$PROJ/.venv/bin" $PATH'},
}


def path_entries(sh: Shell) -> list[str]:
    if sh.kind == "fish":  # a list: one entry may hold a newline
        return sh.run("printf '%s\\x1f' $PATH").split("\x1f")[:-1]
    return sh.var("PATH").split(":")


@dataclass
class Setup:
    project: Path
    tame: Path  # for the scenarios that source the project's own activate script
    venvs: dict[str, str]
    user: str


def synced_project(box: Sandbox, name: str) -> Path:
    project = box.project(name, requirements="")
    (project / "sub").mkdir()
    box.venvd("allow", str(project))
    assert box.wait_state(project)["state"] == "synced"
    return project


def make_setup(box: Sandbox) -> Setup:
    project = synced_project(box, HOSTILE)
    # uv writes the prompt (the project's name) into the env's activate script unescaped, so
    # sourcing that script in the hostile project would run the name: those scenarios use
    # a project with a plain name
    tame = synced_project(box, "tame")
    two = synced_project(box, "two\tproj")
    colon = synced_project(box, "co:lon")
    uv = Path(sys.executable).with_name("uv")
    hand = box.root / "other venv"
    subprocess.run([str(uv), "venv", "--quiet", str(hand)], env=box.env, check=True)
    pyhand = box.root / "py-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(pyhand)], check=True)
    user = box.root / "user-bin"
    user.mkdir()
    box.env.update({"PROJ": str(project), "OUT": str(box.root), "HAND": str(hand),
                    "PYHAND": str(pyhand), "USERBIN": str(user), "TWO": str(two),
                    "COLON": str(colon),
                    "HOMEVAL": HOME_VALUE})
    own = os.readlink(tame / ".venv")  # the folder the env was built in
    return Setup(project, tame, {"hand": str(hand), "pyhand": str(pyhand), "own": own,
                                 "two": str(two), "colon": str(colon)}, str(user))


def run_scenario(box: Sandbox, kind: str, setup: Setup, name: str, rc: str) -> list[str]:
    """Run one scenario in a fresh shell; the problems found, if any."""
    steps, path, venv = SCENARIOS[name]
    path, venv = OUTCOME.get(kind, {}).get(name, (path, venv))
    project = str(setup.tame if "own" in steps.split() else setup.project)
    box.env["PROJ"] = project
    sh = box.shell(kind, cwd=box.root, rc_before=rc)
    base = path_entries(sh)
    syntax = FAMILY[kind]
    for step in steps.split():
        sh.run({**STEP[step], **NEW_STEP[step]}[syntax])
    sh.run("true")  # the prompt after the last step has run
    problems = []
    got = path_entries(sh)
    want = expected_path(path, project, setup.venvs, setup.user, base)
    if got != want:
        problems.append(f"{name}: PATH {got} != {want}")
    got_venv = sh.var("VIRTUAL_ENV")
    if got_venv != expected_venv(venv, project, setup.venvs):
        problems.append(f"{name}: VIRTUAL_ENV {got_venv!r}")
    if name in HOME_AFTER and sh.var("PYTHONHOME") != HOME_AFTER[name]:
        problems.append(f"{name}: PYTHONHOME {sh.var('PYTHONHOME')!r}")
    sh.close()
    return problems


@pytest.mark.parametrize("mode", ["fast", "client"])
def test_scenarios_in_real_shells(daemon: Sandbox, shell_kind: str, mode: str) -> None:
    """Every scenario of the table, each in a fresh shell. ``fast``: the hook applies plain
    activations itself wherever it can (the project's snippet is ready); ``client``: every
    decision goes through ``venvd export``. Both must end where the data says."""
    setup = make_setup(daemon)
    if mode == "client":
        rc = {**STEP["nofast"], **NEW_STEP["nofast"]}[FAMILY[shell_kind]]
    else:
        rc = ""
        # the daemon writes their snippets
        for project in (setup.project, setup.tame, Path(setup.venvs["two"])):
            warm = daemon.shell(shell_kind, cwd=project)
            warm.run("true")
            warm.close()
    problems: list[str] = []
    skipped = []
    for name in sorted(SCENARIOS):
        if any(FAMILY[shell_kind] not in {**STEP[step], **NEW_STEP[step]}
               for step in SCENARIOS[name][0].split()):
            skipped.append(name)  # a step this shell cannot take: SKIP_STEP says why
            continue
        problems += run_scenario(daemon, shell_kind, setup, name, rc)
    assert not problems, "\n".join(problems)
    pwned = list(daemon.root.rglob("pwned*"))
    assert pwned == [], f"a directory name was executed: {pwned}"
    if skipped:
        pytest.skip(f"{len(skipped)} scenarios ({', '.join(skipped)}) cannot run in "
                    f"{shell_kind}: {SKIP_STEP[shell_kind]}; the others passed")


# ---------------------------------------------------------------------------------------------
# deactivate


def test_deactivate_turns_off_this_shell_in_this_project_only(daemon: Sandbox,
                                                             shell_kind: str) -> None:
    project = daemon.project("switch off", requirements="")
    (project / "sub").mkdir()
    daemon.venvd("allow", str(project))
    assert daemon.wait_state(project)["state"] == "synced"
    daemon.env["PROJ"] = str(project)
    env, bin_dir = f"{project}/.venv", f"{project}/.venv/bin"
    one = daemon.shell(shell_kind, cwd=daemon.root)
    base = path_entries(one)
    one.cd_var("PROJ")
    one.prompts_until(lambda: one.var("VIRTUAL_ENV") == env, 60, "activation")
    two = daemon.shell(shell_kind, cwd=project)
    two.prompts_until(lambda: two.var("VIRTUAL_ENV") == env, 60, "activation")

    assert one.status_of("deactivate") == 0  # not "command not found"
    assert one.var("VIRTUAL_ENV") == "" and path_entries(one) == base
    one.run('cd "$PROJ/sub"')  # still in the project: stays off
    daemon.venvd("sync", str(project), "--wait")  # the daemon makes every shell look again
    one.run("true")
    assert one.var("VIRTUAL_ENV") == "" and path_entries(one) == base
    assert one.status_of("deactivate") == 1  # nothing left to turn off
    two.run("true")  # the other shell in the project keeps its env
    assert two.var("VIRTUAL_ENV") == env and path_entries(two)[0] == bin_dir

    assert one.status_of("venvd activate") == 0  # brings it back at the next prompt
    assert one.var("VIRTUAL_ENV") == env and path_entries(one) == [bin_dir, *base]
    assert one.status_of("deactivate") == 0
    one.run("true")  # that activate's word is used up: off stays off
    assert one.var("VIRTUAL_ENV") == "" and path_entries(one) == base

    assert two.status_of("venvd activate") == 0  # already active: nothing to do
    one.run(f"cd {daemon.root}")
    assert one.status_of("venvd activate") == 1  # nothing was turned off here
    one.cd_var("PROJ")  # coming back brings it back, and deactivate with it
    assert one.var("VIRTUAL_ENV") == env and path_entries(one) == [bin_dir, *base]
    assert one.status_of("deactivate") == 0
    assert path_entries(one) == base
