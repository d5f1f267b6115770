"""How ``venvd status`` reads as text: one row per field, each with a value or a plain
"none" / "unknown (see problem)", and ``--all`` as a table whose columns are as wide as
their widest cell. No colour or other terminal codes, so a pipe, a file or ``NO_COLOR``
get the same text as a terminal."""

from __future__ import annotations

from typing import Any, Optional

from venvd.daemon.display import counts, printable

#: Width of the field names in ``venvd status``.
KEY_WIDTH = 10
UNKNOWN = "unknown (see problem)"


def status_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of ``venvd status`` for one project (``status --json``'s object)."""
    rows = [
        ("project", p["project"]),
        ("trusted", "yes" if p["trusted"] else "no (run 'venvd allow')"),
        ("python", python_text(p)),
        ("env", p["env"] if p.get("env_exists", True) else f"{p['env']} (not created yet)"),
        ("lockfile", lockfile_text(p)),
        ("state", p["state"]),
        ("last sync", describe_sync(p["last_sync"])),
        ("kernel", p.get("kernel") or "none"),
    ]
    rows += [("drift" if i == 0 else "", line) for i, line in enumerate(p.get("drift") or ())]
    if p.get("problem"):
        rows.append(("problem", p["problem"]))
    rows += [("note", note) for note in p.get("notes") or ()]
    return rows


def print_status(p: dict[str, Any]) -> None:
    for key, value in status_rows(p):  # paths, .python-version and tool output: escaped
        print(f"{key:<{KEY_WIDTH}} {printable(str(value))}".rstrip())


def python_text(p: dict[str, Any]) -> str:
    """What the project asks for, where it says so, and the interpreter a sync uses (the
    one the env has, when that differs, after it)."""
    python = p["python"]
    if python["wanted"] is None:
        return UNKNOWN
    text = f"{python['wanted']} (from {source_name(p['project'], python['source'])})"
    resolved: Optional[dict[str, Any]] = python.get("resolved")
    if resolved is None:
        return f"{text} -> not installed (see problem)" if p.get("problem") else text
    text += f" -> {resolved['path']} {resolved['version']}"
    if python["version"] and python["version"] != resolved["version"]:
        text += f" (the env still has {python['version']})"
    return text


def lockfile_text(p: dict[str, Any]) -> str:
    if p["lockfile"]:
        return f"{p['lockfile']} ({p['engine']})"
    return UNKNOWN if p.get("problem") else "none"


def describe_sync(s: Optional[dict[str, Any]]) -> str:
    """One sync: its result, when, how long, and what it changed (or its error)."""
    if s is None:
        return "never"
    seconds = "?" if s["seconds"] is None else f"{s['seconds']:.1f}"
    text = f"{s['result']} at {s['started']}, {seconds} s"
    if s["result"] == "ok":
        return f"{text}, {counts(s['added'], s['removed'], s['changed'])}"
    return f"{text}: {s['error']}"


def table_rows(found: list[dict[str, Any]]) -> list[list[str]]:
    """``status --all``: a heading, then one row per project (cells escaped)."""
    rows = [["STATE", "PYTHON", "LAST SYNC", "PROJECT"]]
    for p in found:
        last = p["last_sync"]
        resolved = p["python"].get("resolved") or {}
        python = p["python"]["version"] or resolved.get("version") or (
            "unknown" if p.get("problem") else "none")
        when = f"{last['result']} {last['started']}" if last else "never"
        rows.append([printable(str(cell)) for cell in (p["state"], python, when, p["project"])])
    return rows


def print_table(found: list[dict[str, Any]]) -> None:
    rows = table_rows(found)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:  # the last column (paths) is not padded: no trailing blanks
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]))


def source_name(project: str, source: str) -> str:
    """Where the Python was asked for, short: a file inside the project by its relative
    path (``.python-version``), one above it by its full path."""
    prefix = project.rstrip("/") + "/"
    return source[len(prefix):] if source.startswith(prefix) else source
