"""Issue 14's figures (``bench/run --only lock-states``): a new lock state is built from the
nearest one, so a one-package edit should cost about what ``uv pip sync`` of that change costs
by hand, whatever the size of the env.

(a) a one-package edit in an 11-package env, and (b) in a 200-package env: lockfile written ->
``.venv`` points at the new state (its debounce included; the daemon's report of it, the
status it answers, is timed apart), median of RUNS,
beside ``uv pip sync`` of the same change by hand in a venv of the same packages (each a
version installed nowhere before, as venvd's edits are). Each edit is made once the daemon is
done with the one before, spare clone included (a person's edits are seconds apart), and after
``sync(2)``, so that what the one before wrote is not written out during it; the two sizes
take turns, edit by edit, and so do the syncs by hand (with the daemon stopped), so that each
figure meets the same load; a daemon of its own (fresh HOME) runs them, knowing no other part's
projects. RUNS more edits, each right after the sync before it is reported,
are timed apart too (then the sync waits for the spare being made);
(c) switching back to a state built before (200 packages); (d) what a new state of the
200-package env adds on disk (blocks of files it does not share with the old state).
The packages are small wheels built here (12 modules of about 3 KiB each, a package folder).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import bench as b

SIZES = (11, 200)


def figures(env: dict[str, str], venv: Path) -> dict[str, str]:
    found = edits(env, venv)
    small, large = found[SIZES[0]], found[SIZES[1]]
    a = small["new"] - small["hand"]
    bb = large["new"] - large["hand"]
    return {
        f"(a) 11 packages: lockfile edit → in sync, a new lock state (median of {b.RUNS})":
            f"{small['new']:.0f} ms",
        "(a) 11 packages: `uv pip sync` of the same change by hand": f"{small['hand']:.0f} ms",
        "(a) venvd minus by hand (target: at most 50 ms)": f"{a:.0f} ms",
        "(a) until the daemon reports it synced": f"{small['reported']:.0f} ms",
        "(a) an edit right after the sync before it (no spare clone ready yet)":
            f"{small['rushed']:.0f} ms",
        f"(b) 200 packages: lockfile edit → in sync, a new lock state (median of {b.RUNS})":
            f"{large['new']:.0f} ms",
        "(b) 200 packages: `uv pip sync` of the same change by hand": f"{large['hand']:.0f} ms",
        "(b) venvd minus by hand (target: at most 80 ms)": f"{bb:.0f} ms",
        "(b) until the daemon reports it synced": f"{large['reported']:.0f} ms",
        "(b) an edit right after the sync before it (no spare clone ready yet)":
            f"{large['rushed']:.0f} ms",
        "(b) / (a), venvd's times (target: at most 1.5)": b.ratio(large["new"], small["new"]),
        "(c) 200 packages: lockfile edit → in sync, switching back to a state built before "
        "(target: under 50 ms)": f"{large['switch']:.0f} ms",
        "(d) 200 packages: disk a new lock state adds / the env's size (target: under 10%)":
            f"{large['added'] / 1024:.0f} KiB / {large['size'] / 1024:.0f} KiB = "
            f"{100 * large['added'] / large['size']:.1f}%",
    }


class Edited:
    """A project of *packages* pins (``dep0==1.0`` … and ``alpha``), allowed and synced."""

    def __init__(self, env: dict[str, str], work: Path, packages: int) -> None:
        self.env = env
        self.project = work / f"project-{packages}"
        self.project.mkdir()
        self.deps = "".join(f"dep{i}==1.0\n" for i in range(packages - 1))
        self.lock = self.project / "requirements.txt"
        self.lock.write_text(self.deps + "alpha==1.0\n")
        self.link = self.project / ".venv"
        self.reported: list[float] = []
        b.daemon_request(env, {"op": "allow", "dir": str(self.project)})
        b.wait_for(lambda: b.project_state(env, self.project)["state"] == "synced", 120,
                   "first sync")

    def spare_ready(self) -> bool:
        return any(self.link.resolve().parent.glob("spare-*/.venvd-spare"))

    def edit(self, version: str) -> float:
        """Edit -> ``.venv`` switched to the new state (the env is in sync; watched with
        ``readlink``, which costs the daemon nothing, where a status request per poll would
        compete with the sync); the daemon's report of it is timed apart."""
        before = os.readlink(self.link)
        t0 = time.perf_counter()
        self.lock.write_text(self.deps + f"alpha=={version}\n")
        b.wait_for(lambda: os.readlink(self.link) != before and _alpha(self.project) == version,
                   120, "the switch")
        t1 = time.perf_counter()
        b.wait_for(lambda: b.project_state(self.env, self.project)["state"] == "synced", 120,
                   "synced")
        self.reported.append((time.perf_counter() - t0) * 1e3)
        return (t1 - t0) * 1e3


def edits(env: dict[str, str], venv: Path) -> dict[int, dict[str, float]]:
    """The figures of each size in SIZES: a project of that many pins, edited RUNS times (each
    edit a new version of one package: a new lock state), then switched back and forth. The
    sizes take turns, edit by edit, so that each figure meets the same load."""
    # outside this checkout: a folder whose only marker is requirements.txt, inside a
    # project (this repository), belongs to that project
    work = Path(tempfile.gettempdir()) / f"venvd-bench-{os.getuid()}" / "lock-states"
    shutil.rmtree(work, ignore_errors=True)
    wheels = work / "wheels"
    wheels.mkdir(parents=True)
    versions = [f"{1 + i}.0" for i in range(2 * b.RUNS + 1)]
    fresh = [f"{100 + i}.0" for i in range(2 * b.RUNS + 1)]  # the same edits, by hand
    for version in versions + fresh:
        package_wheel(wheels, "alpha", version)
    for i in range(max(SIZES) - 1):
        package_wheel(wheels, f"dep{i}", "1.0")
    (work / "uv.toml").write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
    # a daemon of its own, that knows no other part's projects (a restart of the shared one
    # would look at each of the thousand the daemon part made, while these edits are timed)
    b.run(["venvd", "daemon", "stop"], env=env, check=False)
    home, runtime = work / "home", work / "run"
    runtime.mkdir(mode=0o700)
    env = {**env, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
           "XDG_STATE_HOME": str(home / ".local/state"), "XDG_CACHE_HOME": str(home / ".cache"),
           "UV_CONFIG_FILE": str(work / "uv.toml"), "UV_CACHE_DIR": str(work / "cache")}
    b.run(["venvd", "daemon", "start"], env=env)
    try:
        projects = [Edited(env, work, n) for n in SIZES]
        trash = Path(env["XDG_DATA_HOME"]) / "venvd" / "envs" / ".trash"  # pruned states

        def idle() -> bool:
            """The daemon has done what it does after a sync while nobody waits (spare clones
            ready, old states removed), as a person's edits are seconds apart."""
            return all(p.spare_ready() for p in projects) and not (
                trash.exists() and any(trash.iterdir()))

        new: dict[int, list[float]] = {n: [] for n in SIZES}
        states: list[Path] = []
        for version in versions[1:b.RUNS + 1]:
            for n, project in zip(SIZES, projects):
                b.wait_for(idle, 120, "the daemon's spare clones, and old states removed")
                os.sync()  # what the last one wrote goes to disk now, not during this one
                new[n].append(project.edit(version))
            states.append(projects[-1].link.resolve())
        reported = {n: statistics.median(p.reported) for n, p in zip(SIZES, projects)}
        # the last state was made from the one before it, which is still kept (KEEP_STATES)
        size, added = disk(states[-2]), disk(states[-1], states[-2])
        # each edit right after the sync before it: the sync then waits for the spare being made
        rushed = {n: [p.edit(v) for v in versions[b.RUNS + 1:]] for n, p in zip(SIZES, projects)}
        switch = [projects[-1].edit(v) for v in (versions[-2], versions[-1]) * 3]
    finally:  # its work after a sync would share the cores with the syncs by hand
        b.run(["venvd", "daemon", "stop"], env=env, check=False)
    hand = by_hand(env, venv, work, fresh)
    return {n: {"new": statistics.median(new[n]), "rushed": statistics.median(rushed[n]),
                "reported": reported[n], "hand": hand[n], "switch": statistics.median(switch),
                "size": size, "added": added} for n in SIZES}


def package_wheel(folder: Path, name: str, version: str, modules: int = 12) -> Path:
    """A wheel shaped more like a small real package than ``build_wheel``'s one-line module:
    a package of *modules* modules of a few KiB (the clone's cost and its disk are per file
    and per folder)."""
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    for i in range(modules):
        body = "".join(f"def f{j}(x):\n    return x + {j}  # {name} {version}\n\n\n"
                       for j in range(60))
        files[f"{name}/m{i}.py"] = body
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: venvd-bench\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    path = folder / f"{name}-{version}-py3-none-any.whl"
    record = [f"{arc},{_hash(text.encode())},{len(text.encode())}" for arc, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, text in files.items():
            zf.writestr(arc, text)
    return path


def _hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _alpha(project: Path) -> str:
    site = next((project / ".venv").resolve().glob("lib/python*/site-packages"), None)
    found = [p.name for p in site.glob("alpha-*.dist-info")] if site else []
    return found[0].removesuffix(".dist-info").split("-")[1] if found else ""


def by_hand(env: dict[str, str], venv: Path, work: Path,
            versions: list[str]) -> dict[int, float]:
    """``uv pip sync`` of the same one-package change in a venv of the same packages, for
    each size in turns: each a version installed nowhere before (as each of venvd's edits
    is), so uv unpacks it."""
    uv = str(venv / "bin" / "uv")
    times: dict[int, list[float]] = {n: [] for n in SIZES}
    for version in versions:
        for n in SIZES:
            hand = work / f"by-hand-{n}"
            if not hand.exists():
                b.run([uv, "venv", "-q", str(hand)], env=env)
            pins = work / f"pins-{n}.txt"
            pins.write_text("".join(f"dep{i}==1.0\n" for i in range(n - 1))
                            + f"alpha=={version}\n")
            os.sync()
            t0 = time.perf_counter()
            b.run([uv, "pip", "sync", "-q", "--python", str(hand / "bin/python"), str(pins)],
                  env=env)
            times[n].append((time.perf_counter() - t0) * 1e3)
    return {n: statistics.median(t[1:]) for n, t in times.items()}  # the first: everything


def disk(env: Path, beside: Path | None = None) -> float:
    """Bytes of the blocks *env*'s files hold (each inode once); with *beside*, only those of
    files *env* does not share with it (hard links)."""
    shared = _inodes(beside) if beside is not None else {}
    return float(sum(blocks for inode, blocks in _inodes(env).items() if inode not in shared))


def _inodes(env: Path) -> dict[tuple[int, int], int]:
    found = {}
    for folder, dirs, files in os.walk(env):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(folder, name))
            found[(info.st_dev, info.st_ino)] = info.st_blocks * 512
    return found
