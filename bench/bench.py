"""venvd against direnv and mise, side by side, in one run: prompt and cd costs per shell,
the daemon's footprint, and sync latency. Standard library only; see bench/run.

What a user pays is measured: a ``cd`` followed by the shell's prompt hooks (bash:
``PROMPT_COMMAND``; zsh: ``chpwd`` on the cd, then ``precmd_functions``; fish: the PWD
handlers on the cd, then ``emit fish_prompt``), timed inside the shell with its own clock
(``$EPOCHREALTIME`` in bash and zsh, the ``time`` keyword in fish; nushell and xonsh: see
othershells.py; elvish and tcsh, interactive only, are driven in a pty: see ptyshells.py). The
same loop with no tool loaded is the baseline, and its median is subtracted from every figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
SHELLS = ("bash", "zsh", "fish")
TOOLS = ("venvd", "direnv", "mise")
ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "100"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MEASURES = ("idle prompt", "cd into a project", "cd out of it")

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
import othershells  # noqa: E402
import ptyshells  # noqa: E402

from support.realproj import CATALOGUE, FIXTURES  # noqa: E402
from support.wheels import build_wheel  # noqa: E402

#: The parts of a run, for ``bench/run --only PART`` ("more-shells": nushell, xonsh, elvish
#: and tcsh).
PARTS = ("prompt", "more-shells", "daemon", "sync", "real-project", "lock-states")
MORE_SHELLS = (*othershells.SHELLS, *ptyshells.SHELLS)


def log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run(argv: list[str], env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None,
        check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          check=check, timeout=timeout, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# tools and environment


def install_tools() -> dict[str, str]:
    """Install what is missing where possible; return tool -> why it is unavailable."""
    missing: dict[str, str] = {}
    apt = [p for p in ("direnv", "zsh", "fish") if not shutil.which(p)]
    if apt and os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {' '.join(apt)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if run(["apt-get", "install", "-y", "-qq", *apt], env=env, check=False).returncode:
            run(["apt-get", "update", "-qq"], env=env, check=False)
            run(["apt-get", "install", "-y", "-qq", *apt], env=env, check=False)
    if not shutil.which("mise") and shutil.which("npm"):
        log("installing mise with npm")
        run(["npm", "install", "-g", "@jdxcode/mise"], check=False, timeout=900)
    for tool in ("direnv", "mise"):
        if not shutil.which(tool):
            missing[tool] = f"{tool} could not be installed here"
    return missing


def install_venvd() -> Path:
    """venvd from this checkout, non-editable, as users get it (the hook uses ``-I -S``)."""
    venv = WORK / "venv"
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    run([*pip, str(REPO)], timeout=900)
    run([*pip, "--force-reinstall", "--no-deps", str(REPO)], timeout=900)
    # the command as install.sh leaves it (python -I -S; see venvd.client.launcher)
    run([str(venv / "bin" / "python"), "-I", "-m", "venvd.client.launcher",
         str(venv / "bin" / "venvd")])
    return venv


def make_env(venv: Path) -> dict[str, str]:
    home = WORK / "home"
    runtime = WORK / "run"
    for folder in (home, runtime):
        folder.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    keep = ("PATH", "LANG", "TERM", "PYENV_ROOT", "USER", "LOGNAME", "SHELL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    path = [p for p in env.get("PATH", "").split(os.pathsep)
            if p and not (Path(p).parent / "pyvenv.cfg").exists()]
    env.update({
        "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"), "XDG_CACHE_HOME": str(home / ".cache"),
        "PATH": os.pathsep.join([str(venv / "bin"), *path]), "LC_ALL": "C",
        "UV_PYTHON_DOWNLOADS": "never", "MISE_YES": "1",
    })
    if "PYENV_ROOT" not in env and (Path.home() / ".pyenv").is_dir():
        env["PYENV_ROOT"] = str(Path.home() / ".pyenv")
    return env  # no RUST_BACKTRACE: it adds about 60 ms to every mise call


def daemon_request(env: dict[str, str], message: dict[str, Any], timeout: float = 10
                   ) -> dict[str, Any]:
    sock_path = Path(env["XDG_RUNTIME_DIR"]) / "venvd" / "daemon.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(sock_path))
        sock.sendall(json.dumps({"v": 1, **message}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data.splitlines()[-1])
    return reply


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def project_state(env: dict[str, str], project: Path) -> dict[str, Any]:
    status = daemon_request(env, {"op": "status", "dir": str(project)})
    state: dict[str, Any] = status["projects"][0]
    return state


# ---------------------------------------------------------------------------------------------
# fixtures


def make_fixtures(env: dict[str, str], venv: Path, missing: dict[str, str]) -> dict[str, Path]:
    # outside this repository: a folder whose only marker is a requirements.txt inside a
    # repository belongs to the project at its root (venvd's rule, uv's and pip's habit)
    projects = Path(tempfile.mkdtemp(prefix="venvd-bench-")) / "projects"
    outside = projects / "outside"
    outside.mkdir(parents=True)
    uv = str(venv / "bin" / "uv")
    made: dict[str, Path] = {"outside": outside}
    # the same project for each tool: a requirements.txt and a .venv to activate
    for tool in TOOLS:
        project = projects / f"proj-{tool}"
        project.mkdir()
        (project / "requirements.txt").write_text("")
        made[tool] = project
    run(["venvd", "allow", str(made["venvd"])], env=env)
    wait_for(lambda: project_state(env, made["venvd"])["state"] == "synced", 120,
             "venvd's first sync")
    if "direnv" not in missing:
        run([uv, "venv", "-q", str(made["direnv"] / ".venv")], env=env)
        (made["direnv"] / ".envrc").write_text(
            'export VIRTUAL_ENV="$PWD/.venv"\nPATH_add .venv/bin\n')
        run(["direnv", "allow", str(made["direnv"])], env=env)
    if "mise" not in missing:
        run([uv, "venv", "-q", str(made["mise"] / ".venv")], env=env)
        (made["mise"] / "mise.toml").write_text('[env]\n_.python.venv = ".venv"\n')
        run(["mise", "trust", str(made["mise"] / "mise.toml")], env=env)
    return made


# ---------------------------------------------------------------------------------------------
# prompt and cd costs

INIT = {
    ("bash", "venvd"): 'eval "$(venvd hook bash)"',
    ("bash", "direnv"): 'eval "$(direnv hook bash)"',
    ("bash", "mise"): 'eval "$(mise activate bash)"',
    ("zsh", "venvd"): 'eval "$(venvd hook zsh)"',
    ("zsh", "direnv"): 'eval "$(direnv hook zsh)"',
    ("zsh", "mise"): 'eval "$(mise activate zsh)"',
    ("fish", "venvd"): "venvd hook fish | source",
    ("fish", "direnv"): "direnv hook fish | source",
    ("fish", "mise"): "mise activate fish | source",
}

POSIX_LOOP = r"""
__p() { local c; for c in "${PROMPT_COMMAND[@]}"; do eval "$c"; done; }
cd "$OUT"; __p; cd "$PROJ"; __p; cd "$OUT"; __p
for ((i = 0; i < N; i++)); do
  t0=$EPOCHREALTIME; cd "$PROJ"; __p; t1=$EPOCHREALTIME; __p; t2=$EPOCHREALTIME
  cd "$OUT"; __p; t3=$EPOCHREALTIME
  echo "T $t0 $t1 $t2 $t3"
done
cd "$PROJ"; __p; echo "VE=${VIRTUAL_ENV-}"
"""
ZSH_PROMPT = "zmodload zsh/datetime\n__p() { local f; for f in $precmd_functions; do $f; done; }\n"
FISH_LOOP = r"""
function __p; emit fish_prompt; end
cd $OUT; __p; cd $PROJ; __p; cd $OUT; __p
for i in (seq $N)
  time begin; cd $PROJ; __p; end
  time begin; __p; end
  time begin; cd $OUT; __p; end
end
cd $PROJ; __p; echo "VE=$VIRTUAL_ENV"
"""
_FISH_TIME = re.compile(r"Executed in\s+([\d.]+)\s+(micros|millis|secs)")
_UNIT = {"micros": 1e-3, "millis": 1.0, "secs": 1e3}


def script(shell: str, tool: Optional[str]) -> str:
    init = INIT[(shell, tool)] if tool else ""
    if shell == "fish":
        return init + "\n" + FISH_LOOP
    body = POSIX_LOOP.replace("__p() {", "__p_bash() {") if shell == "zsh" else POSIX_LOOP
    return (ZSH_PROMPT if shell == "zsh" else "") + init + "\n" + body


def samples(shell: str, tool: Optional[str], env: dict[str, str], project: Path,
            outside: Path) -> tuple[dict[str, list[float]], str]:
    """Per-measure samples in ms, and what VIRTUAL_ENV ended as."""
    if shell in ptyshells.SHELLS:  # interactive only: driven in a pty
        return ptyshells.samples(shell, tool, env, project, outside, ITERATIONS, WORK)
    env = {**env, "PROJ": str(project), "OUT": str(outside), "N": str(ITERATIONS)}
    if shell in othershells.SHELLS:
        init = othershells.init_command(shell, tool)
        code = othershells.script(shell, tool, WORK,
                                  run(init, env=env).stdout if init else "")
        argv = othershells.argv(shell)
        unit = othershells.UNIT[shell]
    else:
        code, unit = script(shell, tool), 1.0
        argv = {"bash": ["bash", "--norc", "--noprofile", "-c"], "zsh": ["zsh", "-f", "-c"],
                "fish": ["fish", "--no-config", "-c"]}[shell]
    out = run([*argv, code], env=env, cwd=outside, timeout=1800)
    found: dict[str, list[float]] = {m: [] for m in MEASURES}
    if shell == "fish":
        times = [float(v) * _UNIT[u] for v, u in _FISH_TIME.findall(out.stderr)]
        for i in range(0, len(times) - 2, 3):
            found["cd into a project"].append(times[i])
            found["idle prompt"].append(times[i + 1])
            found["cd out of it"].append(times[i + 2])
    else:
        for line in out.stdout.splitlines():
            if line.startswith("T "):
                t0, t1, t2, t3 = (float(x) * unit for x in line.split()[1:])
                found["cd into a project"].append((t1 - t0) * 1e3)
                found["idle prompt"].append((t2 - t1) * 1e3)
                found["cd out of it"].append((t3 - t2) * 1e3)
    ve = next((ln[3:] for ln in out.stdout.splitlines() if ln.startswith("VE=")), "")
    return found, ve


def prompt_costs(env: dict[str, str], fixtures: dict[str, Path], missing: dict[str, str],
                 shells: tuple[str, ...] = SHELLS
                 ) -> dict[tuple[str, str, str], Optional[float]]:
    """(shell, tool, measure) -> median ms above the no-tool baseline (None: unavailable)."""
    results: dict[tuple[str, str, str], Optional[float]] = {}
    for shell in shells:
        if not (othershells.available(shell) if shell in othershells.SHELLS
                else ptyshells.available(shell) if shell in ptyshells.SHELLS
                else shutil.which(shell)):
            missing[shell] = f"{shell} is not installed"
            continue
        base_runs = [samples(shell, None, env, fixtures["venvd"], fixtures["outside"])[0]
                     for _ in range(RUNS)]
        base = {m: statistics.median(statistics.median(r[m]) for r in base_runs)
                for m in MEASURES}
        for tool in TOOLS:
            if tool in missing:
                continue
            if shell in othershells.SHELLS and (shell, tool) not in othershells.SUPPORTED:
                continue
            if shell in ptyshells.SHELLS and (shell, tool) not in ptyshells.SUPPORTED:
                continue
            broken = ptyshells.hook_error(shell, tool, env, WORK) \
                if shell in ptyshells.SHELLS else None
            if broken:  # e.g. direnv 2.32's elvish hook, in an elvish that dropped `except`
                missing[f"{tool}/{shell}"] = broken
                continue
            log(f"{shell}: {tool}")
            per_run: dict[str, list[float]] = {m: [] for m in MEASURES}
            expected = str(fixtures[tool] / ".venv")
            for _ in range(RUNS):
                found, ve = samples(shell, tool, env, fixtures[tool], fixtures["outside"])
                if ve != expected:
                    missing[f"{tool}/{shell}"] = (f"{tool} did not activate in {shell} "
                                                  f"(VIRTUAL_ENV={ve!r})")
                    break
                for m in MEASURES:
                    per_run[m].append(statistics.median(found[m]))
            for m in MEASURES:
                results[(shell, tool, m)] = (
                    max(statistics.median(per_run[m]) - base[m], 0.0) if per_run[m] else None)
    return results


# ---------------------------------------------------------------------------------------------
# the daemon: footprint, concurrency, idle CPU


def daemon_figures(env: dict[str, str], venv: Path, count: int) -> dict[str, str]:
    figures: dict[str, str] = {}
    status = daemon_request(env, {"op": "daemon-status"})
    figures["memory, 1 project"] = f"{status['rss'] / 1e6:.1f} MB"
    figures["threads, 1 project"] = str(status["threads"])
    # outside this checkout: a folder whose only marker is requirements.txt, inside a
    # project (this repository), belongs to that project, and the 1,000 would be one
    root = Path(tempfile.gettempdir()) / f"venvd-bench-{os.getuid()}" / "many"
    shutil.rmtree(root, ignore_errors=True)
    log(f"tracking {count} projects")
    start = time.monotonic()
    for i in range(count):
        project = root / f"p{i:04d}"
        project.mkdir(parents=True)
        (project / "requirements.txt").write_text("")
        daemon_request(env, {"op": "allow", "dir": str(project)})
        daemon_request(env, {"op": "export", "dir": str(project), "pid": os.getpid()})

    def settled() -> bool:
        return not daemon_request(env, {"op": "daemon-status"})["queue"]

    wait_for(settled, 1800, "every project's first sync")
    figures[f"time to track and sync {count} projects"] = f"{time.monotonic() - start:.0f} s"
    status = daemon_request(env, {"op": "daemon-status"})
    figures[f"memory, {count} projects"] = f"{status['rss'] / 1e6:.1f} MB"
    figures[f"threads, {count} projects"] = str(status["threads"])
    figures["watched folders"] = str(status["watch"]["folders"])

    for op, loaded in (("ping", False), ("export", False), ("export", True)):
        figures.update(burst_figures(env, op, root, count, loaded))
    def quiet() -> bool:  # the syncs and visits the bursts left behind are done
        status = daemon_request(env, {"op": "daemon-status"})
        return not status["queue"] and not status.get("visits_pending")

    wait_for(quiet, 120, "the daemon to finish what the bursts left")
    before = daemon_request(env, {"op": "daemon-status"})["cpu_seconds"]
    time.sleep(10)  # measuring idle CPU: ten quiet seconds on purpose
    after = daemon_request(env, {"op": "daemon-status"})["cpu_seconds"]
    figures["CPU used over 10 idle seconds"] = f"{(after - before) * 1e3:.0f} ms"
    return figures


def burst_figures(env: dict[str, str], op: str, root: Path, count: int,
                  loaded: bool) -> dict[str, str]:
    """RUNS bursts of 200 clients, as the prompt figures take RUNS runs: the median burst's
    p50/p99 and the worst p99. *loaded*: while two busy processes (as many as these machines
    have cores) compete for the CPU, as a build or a test run would."""
    name = f"200 concurrent `{op}`" + (", 2 busy processes running" if loaded else "")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
            ] if loaded else []
    p50s: list[float] = []
    p99s: list[float] = []
    fewest = 200
    try:
        for _ in range(RUNS):
            latencies, answered = concurrent(env, op, root, count, clients=200)
            fewest = min(fewest, answered)
            if latencies:
                p50s.append(statistics.median(latencies))
                p99s.append(latencies[max(int(len(latencies) * 0.99) - 1, 0)])
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return {
        f"{name}: answered (fewest of {RUNS} bursts)": f"{fewest}/200",
        f"{name}: p50 / p99 (median of {RUNS} bursts)": (
            f"{statistics.median(p50s):.1f} / {statistics.median(p99s):.1f} ms"
            if p99s else "n/a"),
        f"{name}: worst p99": f"{max(p99s):.1f} ms" if p99s else "n/a",
    }


def concurrent(env: dict[str, str], op: str, root: Path, count: int, clients: int,
               processes: int = 8) -> tuple[list[float], int]:
    """*clients* connections, spread over *processes* client processes (so the clients do not
    queue behind one interpreter), send *op* at the same instant; their latencies in ms
    (sorted) and how many got an ``ok`` answer."""
    start_at = time.monotonic() + 1.0
    share = clients // processes
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--burst", op, str(start_at), str(root), str(count),
         str(share), str(i * share)], env=env, stdout=subprocess.PIPE, text=True)
        for i in range(processes)]
    latencies: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        latencies += json.loads(out)
    return sorted(latencies), len(latencies)


def burst(op: str, start_at: float, root: str, count: int, clients: int, first: int) -> None:
    """One client process of ``concurrent``: prints the latencies (ms) of the ok answers.

    Plain non-blocking sockets and one ``select`` loop, so that what is timed is the
    daemon's answer rather than this process's own overhead (an asyncio client spent about
    as long in its event loop as the daemon took to answer)."""
    sock_path = str(Path(os.environ["XDG_RUNTIME_DIR"]) / "venvd" / "daemon.sock")
    requests = []
    for i in range(first, first + clients):
        message: dict[str, Any] = {"v": 1, "op": op}
        if op == "export":
            message.update(dir=f"{root}/p{i % count:04d}", pid=os.getpid())
        requests.append(json.dumps(message).encode() + b"\n")
    time.sleep(max(start_at - time.monotonic(), 0))
    selector = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    replies: dict[socket.socket, bytes] = {}
    latencies: list[float] = []
    for data in requests:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        started[sock] = time.monotonic()
        try:
            sock.connect(sock_path)  # blocking: a full backlog makes the client wait, timed
            sock.sendall(data)
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        replies[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while replies and time.monotonic() < deadline:
        for key, _ in selector.select(1.0):
            sock = key.fileobj  # type: ignore[assignment]
            chunk = sock.recv(65536)
            replies[sock] += chunk
            if chunk and not replies[sock].endswith(b"\n"):
                continue
            elapsed = (time.monotonic() - started[sock]) * 1e3
            with contextlib.suppress(ValueError):
                if json.loads(replies[sock].splitlines()[-1]).get("ok"):
                    latencies.append(elapsed)
            selector.unregister(sock)
            sock.close()
            del replies[sock]
    print(json.dumps(latencies))


# ---------------------------------------------------------------------------------------------
# sync latency


def sync_figures(env: dict[str, str], venv: Path) -> dict[str, str]:
    wheels = WORK / "wheels"
    wheels.mkdir(exist_ok=True)
    for version in ["1.0", *(f"{2 + i}.0" for i in range(RUNS))]:
        build_wheel(wheels, "alpha", version)
    for i in range(10):
        build_wheel(wheels, f"dep{i}", "1.0")
    uv_toml = WORK / "uv.toml"
    uv_toml.write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
    env = {**env, "UV_CONFIG_FILE": str(uv_toml), "UV_CACHE_DIR": str(WORK / "uv-cache")}
    run(["venvd", "daemon", "restart"], env=env)
    # outside this checkout: a folder whose only marker is a requirements file belongs to the
    # project of the repository it is in (venvd's own, here)
    project = Path(tempfile.gettempdir()) / f"venvd-bench-{os.getuid()}" / "syncing"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    deps = "".join(f"dep{i}==1.0\n" for i in range(10))
    lock = project / "requirements.txt"
    lock.write_text(deps + "alpha==1.0\n")
    daemon_request(env, {"op": "allow", "dir": str(project)})
    wait_for(lambda: project_state(env, project)["state"] == "synced", 120, "first sync")

    def installed_alpha() -> str:
        site = next((project / ".venv").resolve().glob("lib/python*/site-packages"))
        found = [p.name for p in site.glob("alpha-*.dist-info")]
        return found[0] if found else ""

    def timed_edit(version: str) -> float:
        # made once the daemon is idle again, its spare clone ready (edits are seconds
        # apart); lock-states times edits made right after a sync apart
        wait_for(lambda: any((project / ".venv").resolve().parent.glob("spare-*/.venvd-spare")),
                 120, "the daemon's spare clone")
        t0 = time.perf_counter()
        lock.write_text(deps + f"alpha=={version}\n")
        wait_for(lambda: installed_alpha() == f"alpha-{version}.dist-info"
                 and project_state(env, project)["state"] == "synced", 120, "the sync")
        return (time.perf_counter() - t0) * 1e3

    # RUNS versions never installed before (each edit builds a new lock state), then
    # switches back and forth between two states built before
    fresh = [timed_edit(f"{2 + i}.0") for i in range(RUNS)]
    timed_edit("1.0")  # (built again if keep_states pruned it)
    switches = [timed_edit(version) for version in ("2.0", "1.0") * ((RUNS + 1) // 2)]
    # the same change by hand: uv pip sync of the compiled set, in a venv of its own
    uv = str(venv / "bin" / "uv")
    hand = WORK / "by-hand"
    shutil.rmtree(hand, ignore_errors=True)
    run([uv, "venv", "-q", str(hand)], env=env)
    by_hand = []
    for version in ("1.0", "2.0") * 3:
        pins = WORK / "pins.txt"
        pins.write_text(deps + f"alpha=={version}\n")
        t0 = time.perf_counter()
        run([uv, "pip", "sync", "-q", "--python", str(hand / "bin/python"), str(pins)], env=env)
        by_hand.append((time.perf_counter() - t0) * 1e3)
    fresh_ms = statistics.median(fresh)
    hand_ms = statistics.median(by_hand[1:])
    return {
        f"lockfile edit → env in sync (11 packages, a new lock state; median of {RUNS})":
            f"{fresh_ms:.0f} ms",
        f"lockfile edit → env in sync, switching to a state built before (median of "
        f"{len(switches)})": f"{statistics.median(switches):.0f} ms",
        "`uv pip sync` of the same one-package change by hand": f"{hand_ms:.0f} ms",
        "venvd's sync minus uv pip sync by hand (a new lock state)":
            f"{fresh_ms - hand_ms:.0f} ms",
    }


# ---------------------------------------------------------------------------------------------
# a real project: venvd allow -> synced, beside uv sync --locked by hand


def real_project_figures(env: dict[str, str], venv: Path) -> dict[str, str]:
    """click (tests/fixtures, a uv project with flit_core), locked once against local wheels;
    each run syncs a fresh copy (a new project at a new path) with a warm uv cache."""
    root = WORK / "real"
    shutil.rmtree(root, ignore_errors=True)
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    for name, version, requires in CATALOGUE:
        build_wheel(wheels, name, version, requires)
    # the project's real build backend, fetched once with pip (the machine's configuration)
    backends = WORK / "backends"
    if not any(backends.glob("flit_core-*.whl")):
        run([str(venv / "bin" / "python"), "-m", "pip", "download", "-q",
             "--disable-pip-version-check", "-d", str(backends), "flit_core>=3.11,<4"])
    for wheel in backends.glob("*.whl"):
        shutil.copy(wheel, wheels / wheel.name)
    uv_toml = root / "uv.toml"
    uv_toml.write_text(f'no-index = true\nfind-links = ["{wheels}"]\n'
                       'python-downloads = "never"\n')
    env = {**env, "UV_CONFIG_FILE": str(uv_toml), "UV_CACHE_DIR": str(root / "uv-cache")}
    run(["venvd", "daemon", "restart"], env=env)
    uv = str(venv / "bin" / "uv")
    template = root / "template"
    shutil.copytree(FIXTURES / "click", template)
    run([uv, "lock", "--quiet"], env=env, cwd=template)
    def fresh() -> Path:
        # a path venvd has never seen (its state outlives bench/.work/real), so that every
        # run builds the env rather than switching to one built before
        project = root / "projects" / f"click-{time.time_ns()}"
        shutil.copytree(template, project)
        return project

    allow_ms: list[float] = []
    sync_ms: list[float] = []

    def by_venvd() -> float:
        """In bash with the hook: cd into the clone, then ``venvd allow`` and prompts (one
        every 5 ms) until the env is active; timed by bash's own clock."""
        project = fresh()
        out = run(["bash", "--norc", "--noprofile", "-c", ALLOW_TO_ACTIVE],
                  env={**env, "PROJ": str(project)}, cwd=project, timeout=300).stdout
        t0, t1, t2 = (float(x) for x in out.split("T ", 1)[1].split()[:3])
        # the env is active; the sync's bookkeeping after that (git's exclude file) ends
        # soon after
        wait_for(lambda: project_state(env, project)["state"] == "synced", 10,
                 f"venvd's sync of {project} to finish ({out})")
        allow_ms.append((t1 - t0) * 1e3)
        sync_ms.append(project_state(env, project)["last_sync"]["seconds"] * 1e3)
        return (t2 - t0) * 1e3

    by_venvd()  # warms uv's cache (wheels, the built project) and the daemon
    python = _base_python(next((root / "projects").iterdir()) / ".venv")
    del allow_ms[:], sync_ms[:]

    def by_hand() -> float:
        project = fresh()
        t0 = time.perf_counter()
        run([uv, "sync", "--locked", "--quiet", "--python", python], env=env, cwd=project)
        return (time.perf_counter() - t0) * 1e3

    by_hand()
    runs = 2 * RUNS - 1  # a second each: a steadier median of the figure with a target
    # taken in turns, so that a change in the load of the machine (two cores, shared) falls
    # on both sides alike rather than on the one measured while it lasted
    ours, hand = [], []
    for _ in range(runs):
        ours.append(by_venvd())
        hand.append(by_hand())
    ours_ms, hand_ms = statistics.median(ours), statistics.median(hand)
    packages = len(list((template / "uv.lock").read_text().split("[[package]]"))) - 1
    return {
        f"click ({packages} locked packages): `venvd allow` → env active in bash (a prompt "
        f"every 5 ms), a fresh clone, warm uv cache (median of {runs})": f"{ours_ms:.0f} ms",
        f"the same lock by hand: `uv sync --locked` in a fresh clone (median of {runs})":
            f"{hand_ms:.0f} ms",
        "venvd / by hand (target: at most 1.2)": ratio(ours_ms, hand_ms),
        "of venvd's time: the `venvd allow` command (a client process)":
            f"{statistics.median(allow_ms):.0f} ms",
        "of venvd's time: the sync as the daemon records it (`uv sync --locked` creating the "
        "env, pip linked in)":
            f"{statistics.median(sync_ms):.0f} ms",
    }


ALLOW_TO_ACTIVE = r"""
eval "$(venvd hook bash)"
__p() { local c; for c in "${PROMPT_COMMAND[@]}"; do eval "$c"; done; }
exec {pause}<> <(:)  # read -t on a pipe nobody writes: a 5 ms pause without a process
cd "$PROJ"; __p 2>/dev/null
t0=$EPOCHREALTIME
venvd allow "$PROJ" >/dev/null
t1=$EPOCHREALTIME
for ((i = 0; i < 60000; i++)); do
  __p 2>/dev/null
  [[ ${VIRTUAL_ENV-} == "$PROJ/.venv" ]] && break
  read -rt 0.005 -u "$pause" _ || :
done
echo "T $t0 $t1 $EPOCHREALTIME ${VIRTUAL_ENV-}"
"""


def _base_python(env_dir: Path) -> str:
    """The interpreter venvd made the env from, so that uv by hand uses the same one."""
    cfg = dict(line.split(" = ", 1) for line in
               (env_dir / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    minor = ".".join(cfg.get("version_info", cfg.get("version", "3")).split(".")[:2])
    return str(Path(cfg["home"]) / f"python{minor}")


# ---------------------------------------------------------------------------------------------
# report


def versions(env: dict[str, str]) -> list[str]:
    lines = []
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               platform.processor())
    lines.append(f"- machine: {os.cpu_count()} cores, {cpu}, {platform.platform()}")
    for argv in (["bash", "--version"], ["zsh", "--version"], ["fish", "--version"],
                 ["direnv", "--version"], ["mise", "--version"], ["venvd", "--version"]):
        if shutil.which(argv[0], path=env["PATH"]):
            out = run(argv, env=env, check=False).stdout.splitlines()
            lines.append(f"- {argv[0]}: {out[0] if out else '?'}")
    return lines


def fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def ratio(ours: Optional[float], theirs: Optional[float]) -> str:
    if ours is None or theirs is None or theirs <= 0:
        return "n/a"
    return f"{ours / theirs:.2f}"


def report(costs: dict[tuple[str, str, str], Optional[float]], daemon: dict[str, str],
           syncs: dict[str, str], real: dict[str, str], states: dict[str, str],
           missing: dict[str, str], env: dict[str, str], seconds: float) -> str:
    """The results as markdown; a part that was not run (``--only``) has no section."""
    intro = (f"Prompt and cd: medians of {RUNS} runs x {ITERATIONS} iterations, minus the same "
             "loop with no tool loaded. " if costs else "")
    out = ["# venvd benchmark", "",
           f"One run of `bench/run` on {time.strftime('%Y-%m-%d')}, {seconds:.0f} s in all. "
           f"{intro}Lower is better; a ratio below 1 means venvd is faster.", "",
           *versions(env)]
    if costs:
        out += ["", "## Prompt and cd, per shell", "",
                "| shell | measure | venvd | direnv | mise | venvd/direnv | venvd/mise |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
    for shell in (*SHELLS, *MORE_SHELLS) if costs else ():
        if not any(k[0] == shell for k in costs):
            continue
        for m in MEASURES:
            v, d, mi = (costs.get((shell, t, m)) for t in TOOLS)
            out.append(f"| {shell} | {m} | {fmt(v)} | {fmt(d)} | {fmt(mi)} | "
                       f"{ratio(v, d)} | {ratio(v, mi)} |")
    for title, head, figures in (("The daemon", "venvd", daemon), ("Sync", "figure", syncs),
                                 ("A real project (uv)", "figure", real),
                                 ("A new lock state built from the nearest one (issue 14)",
                                  "figure", states)):
        if figures:
            out += ["", f"## {title}", "", f"| measure | {head} |", "| --- | --- |"]
            out += [f"| {k} | {v} |" for k, v in figures.items()]
    if missing:
        out += ["", "## Not measured", ""] + [f"- {k}: {v}" for k, v in missing.items()]
    return "\n".join(out) + "\n"


def parts(argv: list[str]) -> tuple[str, ...]:
    """``--only PART[,PART]``: the parts to run (all by default)."""
    if not argv:
        return PARTS
    chosen = tuple(argv[1].split(",")) if argv[0] == "--only" and len(argv) == 2 else ()
    if not chosen or not set(chosen) <= set(PARTS):
        raise SystemExit(f"usage: bench/run [--only {{{','.join(PARTS)}}}]")
    return chosen


def main(chosen: tuple[str, ...]) -> int:
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    prompts = {"prompt", "more-shells"} & set(chosen)
    missing = install_tools() if prompts else {}
    log("installing venvd from this checkout")
    venv = install_venvd()
    env = make_env(venv)
    costs: dict[tuple[str, str, str], Optional[float]] = {}
    daemon: dict[str, str] = {}
    syncs: dict[str, str] = {}
    real: dict[str, str] = {}
    fixtures: dict[str, Path] = {}
    states: dict[str, str] = {}
    try:
        run(["venvd", "daemon", "start"], env=env)
        if prompts:
            fixtures = make_fixtures(env, venv, missing)
        if "prompt" in chosen:
            costs = prompt_costs(env, fixtures, missing)
        if "more-shells" in chosen:
            costs.update(prompt_costs(env, fixtures, missing, MORE_SHELLS))
            missing.update({**othershells.NOT_HOOKED, **ptyshells.NOT_HOOKED})
        if "daemon" in chosen:
            count = int(os.environ.get("BENCH_PROJECTS", "1000"))
            daemon = daemon_figures(env, venv, count)
        if "sync" in chosen:
            syncs = sync_figures(env, venv)
        if "real-project" in chosen:
            real = real_project_figures(env, venv)
        if "lock-states" in chosen:
            import lockstates  # imports this module: not at the top
            states = lockstates.figures(env, venv)
    finally:
        run(["venvd", "daemon", "stop"], env=env, check=False)
        if fixtures:  # the temporary folder make_fixtures made
            shutil.rmtree(fixtures["outside"].parents[1], ignore_errors=True)
    text = report(costs, daemon, syncs, real, states, missing, env, time.monotonic() - started)
    if chosen == PARTS:
        (REPO / "bench" / "results.md").write_text(text)
    else:
        log("a partial run (--only): bench/results.md is left as it was")
    print(text)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--burst"]:
        op, start, root, count, clients, first = sys.argv[2:8]
        burst(op, float(start), root, int(count), int(clients), int(first))
        sys.exit(0)
    sys.exit(main(parts(sys.argv[1:])))
