"""Jupyter kernels per project: a real ``jupyter kernelspec list`` sees the kernel venvd wrote,
and a kernel started through jupyter_client runs in the project's env. ipykernel and
jupyter_client come from the wheels ``tests/run`` downloaded, installed offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from venvd.daemon import kernels
from venvd.daemon.errors import VenvdError

from conftest import Sandbox, wait_for

#: What Jupyter accepts as a kernel name.
KERNEL_NAME = re.compile(r"^[a-z0-9._-]+$")
HOSTILE = ["it's \"q\" $(touch PWNED) `touch PWNED`", "-x ; touch PWNED", "sp ace\\n ü",
           "new\nline", "\x1b]0;title\x07", "ÉTÉ.", "..", "{prefix}"]

#: The test's own Python (the kernel's env is made with it: pyzmq's wheel is for it).
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
#: Starts the kernel named in argv[1] through jupyter_client; prints what it printed.
RUN_KERNEL = """
import sys
from jupyter_client.manager import KernelManager

km = KernelManager(kernel_name=sys.argv[1])
km.start_kernel()
kc = km.client()
kc.start_channels()
out = []
try:
    kc.wait_for_ready(timeout=120)
    kc.execute_interactive("import sys; print(sys.prefix)", timeout=120,
                           output_hook=lambda m: out.append(m["content"].get("text", "")))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("".join(out).strip())
"""


@pytest.fixture(scope="session")
def jupyter_wheels() -> Path:
    """The wheels ``tests/run`` downloaded; skip (fail under CI) without them."""
    folder = Path(os.environ.get("VENVD_TEST_JUPYTER", "")
                  or Path(__file__).parents[1] / ".tests-venv" / "jupyter-wheels")
    if not (folder / ".complete").is_file():
        message = (f"ipykernel and jupyter_client are not in {folder} (tests/run downloads "
                   "them with pip; that failed or has not run)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def notebook_project(box: Sandbox, name: str, wheels: Path, config: str = "") -> Path:
    """A project whose env gets ipykernel and jupyter_client, on the test's own Python (the
    wheels of pyzmq are for it)."""
    files = {".venvd.toml": config} if config else {}
    return box.project(name, python=PY, files=files,
                       requirements=f"--find-links {wheels}\nipykernel\njupyter_client\n")


def allow_and_sync(box: Sandbox, project: Path) -> dict[str, Any]:
    box.venvd("allow", str(project))
    status = box.wait_state(project, timeout=300)
    assert status["state"] == "synced", status
    return status


def kernelspecs(box: Sandbox, project: Path) -> dict[str, Any]:
    """``jupyter kernelspec list --json``, run from the project's env."""
    out = subprocess.run([str(project / ".venv/bin/jupyter"), "kernelspec", "list", "--json"],
                         env=box.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)["kernelspecs"]
    return found


def test_a_kernel_per_project_starts_in_its_env_and_goes_on_deny(
        daemon: Sandbox, jupyter_wheels: Path) -> None:
    project = notebook_project(daemon, HOSTILE[0] + " ü", jupyter_wheels, "jupyter = true\n")
    name = kernels.kernel_name(os.path.realpath(project))
    status = allow_and_sync(daemon, project)
    assert status["kernel"] == name
    assert f"kernel     {name}" in daemon.venvd("status", str(project)).stdout
    spec = kernelspecs(daemon, project)[name]
    # where Jupyter looks by default: $XDG_DATA_HOME/jupyter, in the sandbox's HOME
    assert Path(spec["resource_dir"]) == daemon.home / ".local/share/jupyter/kernels" / name
    assert spec["spec"]["argv"][0] == f"{project}/.venv/bin/python"  # the link, not a state
    assert spec["spec"]["display_name"].startswith(f"{project.name} (Python {PY}")
    ran = subprocess.run([str(project / ".venv/bin/python"), "-c", RUN_KERNEL, name],
                         env=daemon.env, cwd=str(daemon.root), capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert Path(ran.stdout.strip()).resolve() == (project / ".venv").resolve()
    assert not list(daemon.root.rglob("PWNED"))
    daemon.venvd("deny", str(project))
    assert name not in kernelspecs(daemon, project)
    assert not (daemon.home / ".local/share/jupyter/kernels" / name).exists()
    assert "kernel     none" in daemon.venvd("status", str(project)).stdout


def test_the_user_config_turns_kernels_on_a_project_off_and_prune_removes_them(
        sandbox: Sandbox, jupyter_wheels: Path) -> None:
    config = sandbox.home / ".config/venvd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("jupyter = true\n")
    project = notebook_project(sandbox, "notes", jupyter_wheels)
    plain = sandbox.project("plain", requirements="gamma\n")  # no ipykernel: no kernel
    name = kernels.kernel_name(os.path.realpath(project))
    first = allow_and_sync(sandbox, project)["last_sync"]
    assert allow_and_sync(sandbox, plain)["kernel"] is None
    assert sandbox.status(project)["kernel"] == name
    # the project says no (an edit of .venvd.toml: allowed again), with no new sync
    (project / ".venvd.toml").write_text("jupyter = false\n")
    assert allow_and_sync(sandbox, project)["last_sync"] == first
    assert sandbox.status(project)["kernel"] is None
    assert name not in kernelspecs(sandbox, project)
    (project / ".venvd.toml").unlink()
    allow_and_sync(sandbox, project)
    assert sandbox.status(project)["kernel"] == name
    # the user config turns kernels off: gone when the daemon starts; on again: back
    config.write_text("jupyter = false\n")
    sandbox.venvd("daemon", "restart")
    assert sandbox.status(project)["kernel"] is None
    config.write_text("jupyter = true\n")
    sandbox.venvd("daemon", "restart")
    wait_for(lambda: sandbox.status(project)["kernel"] == name, 60, "the kernel back")
    # the project goes away: prune removes its kernel (and its env)
    project.rename(sandbox.root / "elsewhere")
    pruned = sandbox.venvd("prune").stdout
    assert f"removed Jupyter kernel {sandbox.home}/.local/share/jupyter/kernels/{name}" \
        in pruned.splitlines()
    assert not (sandbox.home / ".local/share/jupyter/kernels" / name).exists()


def test_an_env_that_loses_ipykernel_loses_its_kernel(daemon: Sandbox,
                                                      jupyter_wheels: Path) -> None:
    project = notebook_project(daemon, "lab", jupyter_wheels, "jupyter = true\n")
    # Jupyter would put its own prefix in place of "{prefix}" in the kernel's argv
    rewritten = notebook_project(daemon, "nb {prefix}", jupyter_wheels, "jupyter = true\n")
    first = allow_and_sync(daemon, project)
    assert first["kernel"] == kernels.kernel_name(os.path.realpath(project))
    assert allow_and_sync(daemon, rewritten)["kernel"] is None
    assert not (daemon.home / ".local/share/jupyter/kernels" /
                kernels.kernel_name(os.path.realpath(rewritten))).exists()
    (project / "requirements.txt").write_text("gamma\n")  # the next sync removes ipykernel
    wait_for(lambda: daemon.status(project)["last_sync"] != first["last_sync"]
             and daemon.status(project)["state"] == "synced", 300, "the sync of the edit")
    assert daemon.status(project)["kernel"] is None
    assert not list((daemon.home / ".local/share/jupyter/kernels").glob("venvd-lab-*"))


@pytest.mark.parametrize("folder", HOSTILE)
def test_hostile_project_names_give_a_safe_name_and_valid_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    project = str(tmp_path / "p" / folder)
    name = kernels.kernel_name(project)
    assert KERNEL_NAME.match(name) and name.startswith("venvd-"), name
    assert name != kernels.kernel_name(str(tmp_path / "q" / folder))  # one per path
    written = kernels.write(project, "3.12.1")
    assert written.name == name
    spec = json.loads((written / "kernel.json").read_text(encoding="ascii"))
    assert spec["argv"][0] == f"{project}/.venv/bin/python"
    assert "\x1b" not in spec["display_name"] and "\n" not in spec["display_name"]
    assert os.listdir(written) == ["kernel.json"]  # the temporary file was renamed
    assert kernels.kernel_of(project) == name
    assert kernels.remove(project) == str(written) and not written.exists()


def test_a_path_jupyter_would_rewrite_gets_no_kernel() -> None:
    assert kernels.rewritten_by_jupyter("/src/{connection_file}/x")
    assert kernels.rewritten_by_jupyter("/src/a{prefix}")
    assert not kernels.rewritten_by_jupyter("/src/{not a field}/{}")


def test_only_kernels_venvd_wrote_are_removed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    project = str(tmp_path / "mine")
    theirs = kernels.folder_of(project)
    theirs.mkdir(parents=True)
    (theirs / "kernel.json").write_text('{"argv": ["python"], "display_name": "x"}')
    assert kernels.remove(project) is None and theirs.exists()
    with pytest.raises(VenvdError, match="not a kernel venvd wrote"):
        kernels.write(project, "3.12.1")
    assert "venvd" not in (theirs / "kernel.json").read_text()
    gone = kernels.Kernels(True, lambda p: False)  # nothing is allowed: every venvd kernel goes
    assert gone.sweep() == [] and theirs.exists()
    ours = kernels.write(str(tmp_path / "gone"), "3.12.1")
    assert gone.sweep() == [str(ours)] and theirs.exists() and not ours.exists()
