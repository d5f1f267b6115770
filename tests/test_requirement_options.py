"""Index and source options in requirement files and Pipfile.lock, synced for real by the daemon
against local HTTP indexes and wheel folders.

Each test gives uv its own config without the sandbox's ``no-index``/``find-links``, so the
option under test is what makes the sync work: every package it names is only where that
option points (anything else would be looked for on the default index, which is unreachable).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import shutil
import ssl
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from venvd.daemon.engines import pipopts
from venvd.daemon.engines.pipfile import requirement_lines, source_options
from venvd.daemon.errors import VenvdError

from conftest import Sandbox
from support.index import SEEDS, restart_daemon_with
from support.wheels import build_simple_index, build_wheel

BACKEND = (Path(__file__).parent / "support" / "backend.py").read_text()


def serve(root: Path, tls: Optional[ssl.SSLContext] = None,
          auth: Optional[str] = None) -> http.server.ThreadingHTTPServer:
    """Serve *root* on 127.0.0.1, over TLS with *tls*, asking for Basic *auth* ("user:pw")."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            wanted = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None
            if wanted and self.headers.get("Authorization") != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "max-age=0, must-revalidate")
            super().end_headers()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url_of(server: http.server.ThreadingHTTPServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}/simple/"


@dataclass(frozen=True)
class Indexes:
    first: str  # the test wheelhouse: alpha 1.0/2.0, beta 1.0 (needs alpha), gamma 1.0
    second: str  # delta 1.0, epsilon 1.0 and 2.0b1 (a pre-release)
    wheelhouse: Path
    second_wheels: Path


@pytest.fixture(scope="module")
def indexes(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexes]:
    root = tmp_path_factory.mktemp("indexes")
    second = root / "second-wheels"
    second.mkdir()
    for name, version in (("delta", "1.0"), ("epsilon", "1.0"), ("epsilon", "2.0b1")):
        build_wheel(second, name, version)
    servers = [serve(build_simple_index(wheelhouse, root / "one")),
               serve(build_simple_index(second, root / "two"))]
    yield Indexes(url_of(servers[0]), url_of(servers[1]), wheelhouse, second)
    for server in servers:
        server.shutdown()
        server.server_close()


def own_uv_config(box: Sandbox, text: str = "") -> Path:
    """uv config with no index settings (unless *text* has some); restart the daemon on it."""
    config = box.root / "uv-own.toml"
    config.write_text('python-downloads = "never"\n' + text)
    box.env.update(UV_CONFIG_FILE=str(config), UV_CACHE_DIR=str(box.root / "uv-cache"))
    restart_daemon_with(box)
    return config


def synced(box: Sandbox, project: Path) -> dict[str, Any]:
    box.venvd("allow", str(project))
    status = box.wait_state(project)
    assert status["state"] == "synced", status
    return status


def failed(box: Sandbox, project: Path) -> str:
    box.venvd("allow", str(project))
    status = box.wait_state(project)
    assert status["state"] == "failed", status
    error: str = status["last_sync"]["error"]
    return error


def sdist(folder: Path, name: str, version: str) -> Path:
    """A source distribution built by the tests' in-tree backend (no build requirements)."""
    base = f"{name}-{version}"
    files = {
        "pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'
                          '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                          'backend-path = ["_b"]\n',
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "_b/backend.py": BACKEND,
    }
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def editable_lib(project: Path, name: str, extra_requires: str) -> None:
    """``<project>/lib``: a project with an extra ``x`` needing *extra_requires*."""
    lib = project / "lib"
    (lib / "_b").mkdir(parents=True)
    (lib / "_b" / "backend.py").write_text(BACKEND)
    (lib / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1"\n'
        f'[project.optional-dependencies]\nx = ["{extra_requires}"]\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["_b"]\n')


def contents(project: Path) -> dict[str, str]:
    """What ``.venv`` holds, name -> version, editable installs and local wheels included."""
    listed = uv("pip", "list", "--format", "json", "--python", str(project / ".venv/bin/python"),
                env={}, cwd=project)
    assert listed.returncode == 0, listed.stderr
    return {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)
            if p["name"].lower() not in SEEDS}


def uv(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("uv")), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------------------------
# requirement files


def test_index_options_at_every_depth_reach_the_pin_set(daemon: Sandbox, indexes: Indexes,
                                                        tmp_path: Path) -> None:
    own_uv_config(daemon)
    project = daemon.project("my layers", requirements=(
        "-r requirements/base.txt\n-c requirements/constraints.txt\n"
        "beta\ndelta\nepsilon\nzeta\ntheta ; python_version >= '3'\n"
        "nowhere-to-be-found ; python_version < '3'\n"))
    base = (f"--index-url {indexes.first}\n"
            f"--extra-index-url {indexes.second}   # delta and epsilon live there\n"
            "--find-links ../wheels\n"  # relative to this file, as pip and uv read it
            "-e ./lib[x]\n"  # requirement paths are relative to where pip runs: the project
            "./vendor/eta-1.0-py3-none-any.whl\n")
    (project / "requirements").mkdir()
    (project / "requirements" / "base.txt").write_text(base)
    # uv ignores the options of a constraints file and --pre anywhere in a file; pip does not
    (project / "requirements" / "constraints.txt").write_text("--pre\n--only-binary :all:\n")
    (project / "wheels").mkdir()
    build_wheel(project / "wheels", "zeta", "1.0")
    sdist(project / "wheels", "zeta", "2.0")  # newer, but --only-binary rules it out
    build_wheel(project / "wheels", "theta", "1.0")
    (project / "vendor").mkdir()
    build_wheel(project / "vendor", "eta", "1.0")
    editable_lib(project, "mylib", "gamma")

    synced(daemon, project)
    want = {"alpha": "2.0", "beta": "1.0", "delta": "1.0", "epsilon": "2.0b1", "zeta": "1.0",
            "theta": "1.0", "eta": "1.0", "mylib": "0.1", "gamma": "1.0"}
    assert contents(project) == want

    # the pin set venvd keeps installs on its own, from anywhere, with no help from the project
    pins = project / ".venv" / ".venvd" / "requirements.lock.txt"
    text = pins.read_text()
    # (the project's path has a blank: the paths are written as file: URLs)
    assert f"--find-links {(project / 'wheels').as_uri()}\n" in text, text
    assert f"-e {(project / 'lib').as_uri()}\n" in text and "--only-binary :all:" in text
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert uv("venv", "--quiet", str(elsewhere / "venv"), "--python",
              str(project / ".venv/bin/python"), env=daemon.env, cwd=elsewhere).returncode == 0
    done = uv("pip", "sync", "--python", str(elsewhere / "venv/bin/python"), str(pins),
              env=daemon.env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "zeta==1.0" in done.stderr and "epsilon==2.0b1" in done.stderr, done.stderr


def test_no_index_with_find_links_syncs(daemon: Sandbox, indexes: Indexes,
                                        tmp_path: Path) -> None:
    own_uv_config(daemon)
    project = daemon.project("offline-wheels", requirements=(
        f"--no-index\n--find-links {indexes.wheelhouse}\nbeta\n"))
    synced(daemon, project)
    assert contents(project) == {"alpha": "2.0", "beta": "1.0"}
    pins = project / ".venv" / ".venvd" / "requirements.lock.txt"
    assert pins.read_text().startswith(f"--no-index\n--find-links {indexes.wheelhouse}\n")

    # uv itself, with no offline retry: the pin set syncs; without its options (as venvd wrote
    # it before) uv looks for the pins on the default index, unreachable here. (uv does not ask
    # the index for pins it finds in the folders, so --no-index is checked by content only.)
    without = tmp_path / "without.txt"
    without.write_text(pins.read_text().split("\n", 2)[2])
    for pin_set, works in ((pins, True), (without, False)):
        venv = tmp_path / f"venv-{works}"
        assert uv("venv", "--quiet", str(venv), "--python", str(project / ".venv/bin/python"),
                  env=daemon.env, cwd=tmp_path).returncode == 0
        done = uv("pip", "sync", "--python", str(venv / "bin/python"), str(pin_set),
                  env=daemon.env, cwd=tmp_path)
        assert (done.returncode == 0) is works, done.stderr


def test_trusted_host_reaches_uv(daemon: Sandbox, wheelhouse: Path, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the index's self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = serve(build_simple_index(wheelhouse, tmp_path / "index"), tls=tls)
    try:
        own_uv_config(daemon)
        url = url_of(server, "https")
        # first, while uv's cache is empty (the daemon would fall back on it): the index's
        # certificate is refused without --trusted-host
        untrusted = daemon.project("untrusted", requirements=f"--index-url {url}\nbeta\n")
        assert "beta" in failed(daemon, untrusted)
        trusted = daemon.project("trusted", requirements=(
            f"--index-url {url}\n--trusted-host 127.0.0.1\nbeta\n"))
        synced(daemon, trusted)
        assert contents(trusted) == {"alpha": "2.0", "beta": "1.0"}
    finally:
        server.shutdown()
        server.server_close()


def test_pip_variables_are_translated_for_uv(daemon: Sandbox, indexes: Indexes) -> None:
    daemon.env.update(PIP_INDEX_URL=indexes.first, PIP_EXTRA_INDEX_URL=indexes.second,
                      PIP_FIND_LINKS=str(indexes.second_wheels))
    own_uv_config(daemon)  # restarts the daemon: it gets the variables
    project = daemon.project("pip-env", requirements="beta\ndelta\n")
    synced(daemon, project)
    assert contents(project) == {"alpha": "2.0", "beta": "1.0", "delta": "1.0"}


@pytest.mark.parametrize("where", ["uv.toml", "pyproject.toml"])
def test_uv_config_of_the_user_and_the_project_reach_the_sync(daemon: Sandbox, indexes: Indexes,
                                                              where: str) -> None:
    del daemon.env["UV_CONFIG_FILE"]  # it would hide the project's own config
    user = daemon.home / ".config" / "uv" / "uv.toml"
    user.parent.mkdir(parents=True)
    user.write_text(f'python-downloads = "never"\nindex-url = "{indexes.first}"\n')
    restart_daemon_with(daemon)
    table = "" if where == "uv.toml" else "[tool.uv]\n"
    project = daemon.project(f"uv-config-{where}", requirements="beta\ndelta\n", files={
        where: f'{table}extra-index-url = ["{indexes.second}"]\n'})
    synced(daemon, project)
    assert contents(project) == {"alpha": "2.0", "beta": "1.0", "delta": "1.0"}


def test_netrc_credentials_reach_the_index(daemon: Sandbox, wheelhouse: Path,
                                           tmp_path: Path) -> None:
    server = serve(build_simple_index(wheelhouse, tmp_path / "index"), auth="me:s3cret")
    try:
        own_uv_config(daemon)
        url = url_of(server)
        closed = daemon.project("no-credentials", requirements=f"--index-url {url}\nbeta\n")
        assert "beta" in failed(daemon, closed)  # uv takes a 401 as "not found here"
        netrc = daemon.home / ".netrc"
        netrc.write_text("machine 127.0.0.1 login me password s3cret\n")
        netrc.chmod(0o600)
        project = daemon.project("with-netrc", requirements=f"--index-url {url}\nbeta\n")
        synced(daemon, project)
        assert contents(project) == {"alpha": "2.0", "beta": "1.0"}
    finally:
        server.shutdown()
        server.server_close()


def test_hashed_requirements_keep_their_index_options(daemon: Sandbox, indexes: Indexes) -> None:
    own_uv_config(daemon)
    digest = hashlib.sha256((indexes.second_wheels / "delta-1.0-py3-none-any.whl")
                            .read_bytes()).hexdigest()
    project = daemon.project("hashed", requirements=(
        f"-c constraints.txt\ndelta==1.0 --hash=sha256:{digest}\n"),
        files={"constraints.txt": f"--index-url {indexes.second}\n"})
    synced(daemon, project)
    assert contents(project) == {"delta": "1.0"}
    (project / "requirements.txt").write_text(
        f"-c constraints.txt\ndelta==1.0 --hash=sha256:{'0' * 64}\n")
    assert "hash" in daemon.wait_state(project, ("failed",))["last_sync"]["error"].lower()


# ---------------------------------------------------------------------------------------------
# pure parts


def test_options_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "r.txt").write_text(
        "--index-url=https://one.invalid/simple  # a comment\n"
        "-i https://one.invalid/simple\n"
        "--extra-index-url \\\n    https://two.invalid/simple\n"
        "-f ../wheels\n--find-links ${WHEELS}\n--find-links https://three.invalid/links\n"
        "--no-index\n--pre\n--trusted-host two.invalid --trusted-host three.invalid:8443\n"
        "--only-binary :all:\n--no-binary=gamma\n"
        "alpha==1.0 --hash=sha256:ab\n#--index-url https://commented.invalid\n")
    options = pipopts.collect([sub / "r.txt"])
    assert options.lines == (
        "--index-url https://one.invalid/simple", "--extra-index-url https://two.invalid/simple",
        f"--find-links {tmp_path / 'wheels'}", "--find-links ${WHEELS}",
        "--find-links https://three.invalid/links", "--no-index", "--only-binary :all:",
        "--no-binary gamma")
    assert options.resolve_args() == ["--prerelease", "allow",
                                      "--allow-insecure-host", "two.invalid",
                                      "--allow-insecure-host", "three.invalid:8443"]
    assert options.install_args() == options.resolve_args()[2:]


def test_relative_requirements_in_a_pin_set_become_absolute() -> None:
    pins = ("-e ./lib\n    # via -r requirements.txt\nalpha==1.0\n-e .\n"
            "../shared/x-1.0-py3-none-any.whl ; python_version >= '3'\n.hidden==1\n")
    assert pipopts.absolute_paths(pins, Path("/p/proj")) == (
        "-e /p/proj/lib\n    # via -r requirements.txt\nalpha==1.0\n-e /p/proj\n"
        "/p/shared/x-1.0-py3-none-any.whl ; python_version >= '3'\n.hidden==1\n")
    assert pipopts.absolute_paths("-e ./lib\n", Path("/p/my proj")) == (
        "-e file:///p/my%20proj/lib\n")


def test_pip_variables_map_to_uv_unless_uv_or_the_files_say_otherwise() -> None:
    environ = {"PIP_INDEX_URL": "https://a/simple", "PIP_EXTRA_INDEX_URL": "https://b https://c",
               "PIP_FIND_LINKS": "/w1 /w2", "PIP_TRUSTED_HOST": "a"}
    none = pipopts.FileOptions()
    assert pipopts.uv_environment(environ, none) == {
        "UV_INDEX_URL": "https://a/simple", "UV_EXTRA_INDEX_URL": "https://b https://c",
        "UV_FIND_LINKS": "/w1,/w2", "UV_INSECURE_HOST": "a"}
    assert "UV_INDEX_URL" not in pipopts.uv_environment(
        {**environ, "UV_DEFAULT_INDEX": "https://u"}, none)
    # pip lets a file's --index-url replace PIP_INDEX_URL; uv would let the variable win
    own_index = pipopts.FileOptions(("--index-url https://f/simple",))
    assert "UV_INDEX_URL" not in pipopts.uv_environment(environ, own_index)
    no_index = pipopts.uv_environment(environ, pipopts.FileOptions(("--no-index",)))
    assert "UV_INDEX_URL" not in no_index and "UV_EXTRA_INDEX_URL" not in no_index
    assert no_index["UV_FIND_LINKS"] == "/w1,/w2"
    assert pipopts.uv_environment({"PIP_KEYRING_PROVIDER": "subprocess"}, none) == {
        "UV_KEYRING_PROVIDER": "subprocess"}


# ---------------------------------------------------------------------------------------------
# Pipfile.lock


def wheel_hash(folder: Path, name: str, version: str) -> str:
    data = (folder / f"{name}-{version}-py3-none-any.whl").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pipenv_lock(index: str, wheelhouse: Path) -> dict[str, Any]:
    """A Pipfile.lock as Pipenv 2026.10 writes it, with its Windows-only entry."""
    return {
        "_meta": {"hash": {"sha256": "5f" * 32}, "pipfile-spec": 6,
                  "requires": {"python_version": "3"},
                  "sources": [{"name": "pypi", "url": index, "verify_ssl": True}]},
        "default": {
            "alpha": {"hashes": [wheel_hash(wheelhouse, "alpha", "1.0")], "index": "pypi",
                      "markers": "python_version >= '3.8'", "version": "==1.0"},
            "beta": {"hashes": [wheel_hash(wheelhouse, "beta", "1.0")], "index": "pypi",
                     "version": "==1.0"},
            "colorama": {"markers": "platform_system == 'Windows'", "version": "==>=0.4"},
            "mylib": {"editable": True, "path": "./lib"},
        },
        "develop": {},
    }


def test_pipfile_lock_skips_excluded_entries_and_keeps_every_hash(daemon: Sandbox,
                                                                  indexes: Indexes) -> None:
    own_uv_config(daemon)  # the lock's own source is the only index
    lock = pipenv_lock(indexes.first, indexes.wheelhouse)
    project = daemon.project("pipenv-real", requirements=None,
                             files={"Pipfile.lock": json.dumps(lock, indent=4)})
    editable_lib(project, "mylib", "gamma")
    synced(daemon, project)
    assert contents(project) == {"alpha": "1.0", "beta": "1.0", "mylib": "0.1"}

    # the path entry has no hash, yet the others are still checked
    lock["default"]["alpha"]["version"] = "==2.0"  # alpha 1.0's hash: wrong for 2.0
    (project / "Pipfile.lock").write_text(json.dumps(lock, indent=4))
    error = daemon.wait_state(project, ("failed",))["last_sync"]["error"]
    assert "hash" in error.lower() and "alpha" in error, error
    assert contents(project) == {"alpha": "1.0", "beta": "1.0", "mylib": "0.1"}

    # an entry for this interpreter that cannot be read is named
    lock["default"]["alpha"]["version"] = "==1.0"
    lock["default"]["colorama"]["markers"] = "platform_system != 'Windows'"
    (project / "Pipfile.lock").write_text(json.dumps(lock, indent=4))
    status = daemon.wait_state(project, ("failed",))
    assert status["last_sync"]["error"] != error, status
    assert "colorama" in status["last_sync"]["error"] and "==>=0.4" in status["last_sync"]["error"]


LINUX = {"implementation_name": "cpython", "implementation_version": "3.12.1", "os_name": "posix",
         "platform_machine": "x86_64", "platform_release": "6.1", "platform_system": "Linux",
         "platform_version": "#1", "python_full_version": "3.12.1",
         "platform_python_implementation": "CPython", "python_version": "3.12",
         "sys_platform": "linux"}


def test_pipfile_lock_entries_by_marker() -> None:
    lock = {
        "default": {"colorama": {"markers": "platform_system == 'Windows'",
                                 "version": "==>=0.4"},
                    "old": {"markers": "python_version < '3.0'", "version": "==1",
                            "hashes": ["sha256:ab"]},
                    "a": {"version": "==1", "hashes": ["sha256:cd"],
                          "markers": "sys_platform == 'linux'"}}}
    assert requirement_lines(lock, dev=False, environment=LINUX) == [
        "a==1 ; sys_platform == 'linux' --hash=sha256:cd"]
    windows = {**LINUX, "platform_system": "Windows", "sys_platform": "win32"}
    with pytest.raises(VenvdError, match=r"colorama: version '==>=0\.4' is not a valid"):
        requirement_lines(lock, dev=False, environment=windows)
    local = {"default": {"l": {"path": "libs/l", "editable": True}, "w": {"path": "./w.whl"}}}
    assert requirement_lines(local, dev=False, environment=LINUX) == ["-e ./libs/l", "./w.whl"]
    bad = {"default": {"b": {"markers": "python_version <<< '3'", "version": "==1"}}}
    with pytest.raises(VenvdError, match=r"\[default\] b: bad markers"):
        requirement_lines(bad, dev=False, environment=LINUX)


def test_pipfile_lock_sources_are_its_indexes() -> None:
    lock = {"_meta": {"sources": [
        {"name": "pypi", "url": "https://one.invalid/simple", "verify_ssl": True},
        {"name": "inhouse", "url": "https://u:${TOKEN}@two.invalid:8443/simple",
         "verify_ssl": False}]}}
    options = source_options(lock)
    assert options.lines == ("--index-url https://one.invalid/simple",
                             "--extra-index-url https://u:${TOKEN}@two.invalid:8443/simple")
    assert options.install_args() == ["--allow-insecure-host", "two.invalid:8443"]
    assert source_options({}).lines == ()
    pypi = {"_meta": {"sources": [{"url": "https://pypi.org/simple/", "verify_ssl": True}]}}
    assert source_options(pypi, mirror="https://mirror.invalid/simple").lines == (
        "--index-url https://mirror.invalid/simple",)
