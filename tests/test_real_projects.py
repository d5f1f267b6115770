"""Real public projects (``tests/fixtures``, reduced; origins in its README), each built twice,
offline: once by venvd (the real daemon, ``venvd allow``), once by the project's own tool in
a copy. The installed sets must be the same, names and versions, and venvd must leave no file
in the project that the tool itself would not have made."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from conftest import Sandbox
from support.index import restart_daemon_with, serve
from support.realproj import FIXTURES, UV, base_python, build_real_index, files, packages, run

LOCKFILES = {"uv.lock", "poetry.lock", "pdm.lock", "pylock.toml", ".pdm-python"}
#: unearth takes its version from git tags (pdm-backend's ``scm`` source)
TAG = "0.17.5"


@dataclass
class Real:
    box: Sandbox
    index: str
    tool_path: Callable[[str], None]

    @property
    def env(self) -> dict[str, str]:
        """The environment both the daemon and the tools run with."""
        return self.box.env

    def start(self, *tools: str) -> None:
        """Point uv, Poetry and PDM at the local index; the daemon must see it: restart."""
        for tool in tools:
            self.tool_path(tool)
        uv_toml = self.box.root / "uv-real.toml"
        uv_toml.write_text(f'index-url = "{self.index}"\npython-downloads = "never"\n')
        self.env.update({
            "UV_CONFIG_FILE": str(uv_toml),
            "PDM_PYPI_URL": self.index, "PDM_CHECK_UPDATE": "false",
            "PDM_NON_INTERACTIVE": "1",
            "POETRY_CACHE_DIR": str(self.box.root / "poetry-cache"),
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost",
        })
        restart_daemon_with(self.box)

    def copies(self, name: str, lock: Optional[list[str]] = None,
               edit: Optional[Callable[[Path], None]] = None) -> tuple[Path, Path]:
        """The fixture as a fresh clone would have it (a git repository, its lock made by its
        own tool against the local index): one copy for venvd, one for the tool."""
        ours = self.box.root / "projects" / name
        shutil.copytree(FIXTURES / name, ours)
        if edit:
            edit(ours)
        if lock:
            run(lock, ours, self.env)
            # Poetry and PDM make a venv to lock with; a clone has none
            shutil.rmtree(ours / ".venv", ignore_errors=True)
        run(["git", "init", "-q"], ours, self.env)
        run(["git", "add", "-A"], ours, self.env)
        run(["git", "commit", "-qm", "clone"], ours, self.env)
        run(["git", "tag", TAG], ours, self.env)
        theirs = self.box.root / "by-tool" / name
        shutil.copytree(ours, theirs, symlinks=True)
        return ours, theirs

    def sync(self, project: Path) -> dict[str, Any]:
        self.box.venvd("allow", str(project))
        status = self.box.wait_state(project, timeout=240)
        if status["state"] != "synced":
            logs = self.box.venvd("logs", str(project), check=False).stdout
            pytest.fail(f"venvd's sync of {project.name} failed: {status}\n{logs}")
        return status

    def venv(self, theirs: Path, ours: Path) -> str:
        """A venv in the tool's copy, from the interpreter venvd chose (its own rule)."""
        python = base_python(ours)
        run([UV, "venv", "--quiet", "--python", python, str(theirs / ".venv")], theirs,
            self.env)
        return python

    def compare(self, ours: Path, theirs: Path, before: set[str],
                expect: dict[str, str]) -> None:
        mine, tools = packages(ours, self.env), packages(theirs, self.env)
        # venvd seeds pip (and setuptools below 3.12) into every env, as python -m venv does;
        # the tools do not: those count only when the tool installed them too
        seeds = {name for name in ("pip", "setuptools", "wheel") if name not in tools}
        assert "pip" in mine
        mine = {name: v for name, v in mine.items() if name not in seeds}
        assert mine == tools
        assert expect.items() <= mine.items(), mine  # the fixture really exercised something
        made_by_us = files(ours) - before
        assert not made_by_us - (files(theirs) - before), "venvd wrote into the project"
        assert not {f for f in made_by_us if Path(f).name in LOCKFILES}, made_by_us


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local simple index for the session (uv.lock records its URL, so it must not
    move between the lock and the syncs)."""
    root = build_real_index(tmp_path_factory.mktemp("real-wheels"),
                            tmp_path_factory.mktemp("real-index"))
    server = serve(root)
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def real(daemon: Sandbox, real_index: str, tool_path: Callable[[str], None]) -> Real:
    return Real(daemon, real_index, tool_path)


def test_uv_project(real: Real) -> None:
    """click: a uv.lock, dependency groups, ``default-groups``, a marker, flit_core."""
    real.start()
    ours, theirs = real.copies("click", lock=[UV, "lock", "--quiet"])
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "uv-sync"
    run([UV, "sync", "--locked", "--quiet", "--python", base_python(ours)], theirs, real.env)
    real.compare(ours, theirs, before, {
        "click": "8.5.0.dev0 editable .", "ruff": "0.15.15", "tox": "4.30.0",
        "pre-commit": "4.3.0", "pytest": "8.4.2", "mypy": "1.18.2"})
    assert "sphinx" not in packages(ours, real.env)  # docs is not a default group


def test_git_status_stays_as_clean_as_the_tool_leaves_it(real: Real) -> None:
    real.start()
    ours, theirs = real.copies("click", lock=[UV, "lock", "--quiet"])
    real.sync(ours)
    run([UV, "sync", "--locked", "--quiet", "--python", base_python(ours)], theirs, real.env)
    assert run(["git", "status", "--porcelain"], theirs, real.env) == ""
    assert run(["git", "status", "--porcelain"], ours, real.env) == ""


def test_uv_workspace(real: Real) -> None:
    """logfire: a uv workspace (root + logfire-api), the member an editable dev dependency."""
    real.start()
    ours, theirs = real.copies("logfire", lock=[UV, "lock", "--quiet"])
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "uv-sync"
    run([UV, "sync", "--locked", "--quiet", "--python", base_python(ours)], theirs, real.env)
    real.compare(ours, theirs, before, {
        "logfire": "4.41.0 editable .", "logfire-api": "4.41.0 editable logfire-api",
        "opentelemetry-sdk": "1.44.0", "rich": "14.2.0", "httpx": "0.28.1"})


def test_uv_workspace_member_belongs_to_the_root(real: Real) -> None:
    real.start()
    ours, _ = real.copies("logfire", lock=[UV, "lock", "--quiet"])
    real.sync(ours)
    member = real.box.status(ours / "logfire-api")
    assert member["project"] == str(ours)
    assert member["env"] == str(ours / ".venv")


def add_poetry_source(index: str) -> Callable[[Path], None]:
    """Poetry has no find-links: the local index as the project's primary source."""
    def edit(project: Path) -> None:
        with (project / "pyproject.toml").open("a") as f:
            f.write(f'\n[[tool.poetry.source]]\nname = "local"\nurl = "{index}"\n'
                    'priority = "primary"\n')
    return edit


def test_poetry_project(real: Real) -> None:
    """cleo: poetry-core, PEP 621 metadata, Poetry groups (dev, doc) with caret bounds."""
    real.start("poetry")
    ours, theirs = real.copies("cleo", lock=["poetry", "lock", "--no-interaction"],
                               edit=add_poetry_source(real.index))
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "poetry"
    real.venv(theirs, ours)
    run(["poetry", "install", "--no-interaction", "--no-ansi"], theirs, real.env)
    real.compare(ours, theirs, before, {
        "cleo": "3.0.0.dev0 editable .", "sphinx": "7.4.7", "furo": "2023.9.10",
        "pytest-mock": "3.15.1", "mypy": "1.18.2"})


def test_pdm_project(real: Real) -> None:
    """unearth: pdm-backend with its version from git tags, dev groups, optional extras, a
    marker that leaves a package out on newer Pythons."""
    real.start("pdm")
    ours, theirs = real.copies("unearth", lock=["pdm", "lock"])
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "pdm"
    real.venv(theirs, ours)
    run(["pdm", "sync"], theirs, {**real.env, "PDM_PYTHON": str(theirs / ".venv/bin/python")})
    real.compare(ours, theirs, before, {
        "unearth": f"{TAG} editable .", "httpx": "0.28.1", "pytest-mock": "3.15.1",
        "furo": "2024.8.6"})
    # trustme only below 3.13
    minor = tuple(int(n) for n in status["python"]["version"].split(".")[:2])
    assert ("trustme" in packages(ours, real.env)) == (minor < (3, 13))


def test_requirements_with_the_project_editable_and_extras(real: Real) -> None:
    """httpx: ``-e .[brotli,cli,http2,socks,zstd]`` (hatchling with a readme plugin), then
    pins, as ``uv pip install -r requirements.txt`` installs it."""
    real.start()
    ours, theirs = real.copies("httpx")
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "uv-pip-sync"
    real.venv(theirs, ours)
    run([UV, "pip", "install", "--quiet", "--python", str(theirs / ".venv/bin/python"),
         "-r", "requirements.txt"], theirs, real.env)
    real.compare(ours, theirs, before, {
        "httpx": "0.28.1 editable .", "click": "8.3.0", "brotli": "1.1.0", "h2": "4.3.0",
        "zstandard": "0.25.0", "pytest": "8.4.1", "mkdocs": "1.6.1"})
    assert "brotlicffi" not in packages(ours, real.env)


def test_requirements_folder_with_includes(real: Real) -> None:
    """bakerydemo: ``requirements.txt`` is ``-r requirements/production.txt``, which pulls in
    ``-r base.txt``; ``.python-version`` asks for 3.12."""
    real.start()
    ours, theirs = real.copies("bakerydemo")
    before = files(ours)
    status = real.sync(ours)
    assert status["engine"] == "uv-pip-sync"
    assert status["python"]["version"].startswith("3.12"), status["python"]
    real.venv(theirs, ours)
    run([UV, "pip", "install", "--quiet", "--python", str(theirs / ".venv/bin/python"),
         "-r", "requirements.txt"], theirs, real.env)
    real.compare(ours, theirs, before, {
        "django": "6.0.1", "wagtail": "7.4.1", "whitenoise": "6.11.0", "asgiref": "3.10.0"})
    assert "ruff" not in packages(ours, real.env)  # development.txt is not included


def test_pyproject_with_docs_requirements(real: Real) -> None:
    """requests: ``pyproject.toml`` alone (setuptools, dynamic version) is what ``uv sync``
    builds; ``docs/requirements.txt`` does not make ``docs/`` a project of its own."""
    real.start()
    ours, theirs = real.copies("requests")
    before = files(ours)
    real.sync(ours)
    run([UV, "sync", "--quiet", "--python", base_python(ours)], theirs, real.env)
    real.compare(ours, theirs, before, {
        "requests": "2.34.2 editable .", "urllib3": "2.5.0", "charset-normalizer": "3.4.3"})


def test_docs_requirements_belong_to_the_outer_project(real: Real) -> None:
    real.start()
    ours, _ = real.copies("requests")
    real.sync(ours)
    docs = real.box.status(ours / "docs")
    assert docs["project"] == str(ours)
    assert docs["env"] == str(ours / ".venv")
