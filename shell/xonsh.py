"""xonsh: the hook is Python, run on ``on_pre_prompt`` and ``on_chdir``.

``venvd hook xonsh`` prints plain Python (the rc line ``exec``s it, so xonsh's
subprocess-mode guessing never touches it). The hook reads the generation file and the
daemon's JSON ready snippet with ``open``, and applies the export client's JSON lines (see
``venvd.shell.data``) to ``__xonsh__.env``: no value is ever code. Its state lives in a
Python object (``_venvd``), out of the environment of commands and nested shells.
"""

from __future__ import annotations

from collections.abc import Mapping

from venvd.shell import data, posix
from venvd.shell.base import HookConfig, expand_home

_HOOK = '''# venvd's hook for xonsh, printed by `venvd hook xonsh` (the paths are this install's)
def _venvd_make():
    import json, os, subprocess, sys, types
    from xonsh.built_ins import XSH
    from xonsh.events import events
    from xonsh.tools import unthreadable

    C = {"py": %(python)s, "argv": [%(argv)s], "socket": %(socket)s,
         "state_db": %(state_db)s, "gen": %(generation)s, "ready": %(ready)s,
         "pid_file": %(pid_file)s, "wake": %(wake)s, "news": %(news)s,
         "markers": [%(markers)s]}
    S = {"pwd": "", "gen": "", "ve": "", "fs": "", "fe": "", "fp": "", "froot": ""}
    env = XSH.env

    def get(name):
        value = env.get(name)
        return "" if value is None else str(value)

    def lines(path):  # a file of the user's own (no other is read, as bash's `-O`)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                if os.fstat(f.fileno()).st_uid != os.getuid():
                    return []
                return f.read().splitlines()
        except OSError:
            return []

    def read(path):  # its first line, "" when it cannot be read
        return (lines(path) or [""])[0]

    def own(path):
        try:
            return os.stat(path).st_uid == os.getuid()
        except OSError:
            return False

    def path():
        return [str(p) for p in env["PATH"]]

    def alive():  # the daemon runs, and is not a zombie that nobody reaped (state Z)
        dpid = read(C["pid_file"]).strip()
        if not dpid:
            return False
        if not os.path.isdir("/proc/self"):
            return True
        st = read(f"/proc/{dpid}/stat")
        return bool(st) and not st.rpartition(") ")[2].startswith("Z")

    def root():
        d, home = get("PWD") or os.getcwd(), get("HOME")
        while True:
            if d in (home, "/"):
                if os.path.isfile(os.path.join(d, ".venvd.toml")):
                    return d
            elif any(os.path.isfile(os.path.join(d, m)) for m in C["markers"]):
                return d
            if d == "/":
                return ""
            d = os.path.dirname(d)

    def fast():  # apply the daemon's ready snippet; False: leave it to the client
        if not alive():
            return False
        top, state = root(), get("VENVD_STATE")
        S["froot"] = top
        ours = bool(state)
        if ours and not (state == S["fs"] and get("VIRTUAL_ENV") == S["fe"]
                         and get("VIRTUAL_ENV_PROMPT") == S["fp"] and S["fe"]):
            return False
        r = {"_venvd_r_env": "", "_venvd_r_prompt": "", "_venvd_r_blob": ""}
        if top:
            f = C["ready"] + top + "/.venvd-ready.json"
            toml = os.path.join(top, ".venvd.toml")
            try:
                if os.path.exists(toml) and os.stat(toml).st_mtime_ns > os.stat(f).st_mtime_ns:
                    return False
                r = json.loads("\\n".join(lines(f)))
            except (OSError, ValueError):
                return False
            if r["_venvd_r_env"] and not os.access(r["_venvd_r_env"] + "/bin/python", os.X_OK):
                return False
        venv = r["_venvd_r_env"]
        if get("VENVD_OFF"):
            if top and top == get("VENVD_OFF"):
                venv = ""
            else:
                env.pop("VENVD_OFF", None)
        own_bin = S["fe"] + "/bin"
        if ours and venv == S["fe"] and own_bin in path():
            return True
        if not ours and venv and (get("VIRTUAL_ENV") or get("VIRTUAL_ENV_PROMPT")
                                  or "PYTHONHOME" in env):
            return False
        if ours:
            entries = path()
            entries.remove(own_bin) if own_bin in entries else None
            env["PATH"] = entries
            for name in ("VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "VENVD_STATE"):
                env.pop(name, None)
            S.update(fs="", fe="", fp="")
        if venv:
            tag = f"{os.getpid()}.{r['_venvd_r_blob']}"
            env["VIRTUAL_ENV"], env["VIRTUAL_ENV_PROMPT"] = venv, r["_venvd_r_prompt"]
            env["PATH"] = [venv + "/bin", *path()]
            env["VENVD_STATE"] = tag
            S.update(fs=tag, fe=venv, fp=r["_venvd_r_prompt"])
        return True

    def apply(out):  # the client's JSON lines: variables to set and unset, what to remember
        for line in out.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            for name in r.get("unset", ()):
                env.pop(name, None)
            for name, value in r.get("set", {}).items():
                env[name] = value
            if "remember" in r:
                S["fs"], S["fe"], S["fp"] = r["remember"]

    def tell_news(g):  # the news of this shell's project between two generations
        lo, hi = S["gen"].rpartition(" ")[2], g.rpartition(" ")[2]
        if not (lo.isdigit() and hi.isdigit() and S["froot"]):
            return
        # a folder whose snippet stands for an enclosing project hears that project's news
        alias = read(C["ready"] + S["froot"] + "/.venvd-alias")
        for line in lines(C["news"]):
            try:
                n = json.loads(line)
            except ValueError:
                continue
            if int(lo) < n["id"] <= int(hi) and n["project"] in (S["froot"], alias or None) \\
                    and os.getpid() not in n["heard"]:  # (heard from a command it ran)
                print(f"venvd: {n['text']}", file=sys.stderr)

    def client(*extra):
        argv = [C["py"], *C["argv"], "xonsh", "--socket", C["socket"], "--state-db",
                C["state_db"], "--pid", str(os.getpid()), *extra]
        return subprocess.run(argv, env=env.detype(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, text=True, errors="surrogateescape")

    def step():  # an idle prompt: one read of the generation file and comparisons
        if get("VENVD_HOOKED") != f"xonsh:{os.getpid()}":  # for `venvd doctor`, a child
            env["VENVD_HOOKED"] = f"xonsh:{os.getpid()}"
        g, pwd, ve = read(C["gen"]), get("PWD"), get("VIRTUAL_ENV")
        woke = bool(get("VENVD_OFF")) and own(C["wake"] + str(os.getpid()))
        broken = bool(S["fe"]) and not os.access(S["fe"] + "/bin/python", os.X_OK)
        if pwd == S["pwd"] and g == S["gen"] and ve == S["ve"] and not broken and not woke:
            return
        S["pwd"] = pwd
        if woke:  # `venvd activate`
            env.pop("VENVD_OFF", None)
        # a bump that only brings a sync's outcome (the first number unchanged) is "quiet":
        # the snippet and the news file have it, no client needed
        quiet = g == S["gen"] or (S["gen"] and g.split(" ")[0] == S["gen"].split(" ")[0])
        if get("VENVD_NO_FAST") or not quiet or not fast():
            seen, S["gen"] = S["gen"].rpartition(" ")[2], g
            if os.access(C["py"], os.X_OK):
                apply(client("--seen", seen).stdout)
        elif g != S["gen"]:
            tell_news(g)
            S["gen"] = g
        S["ve"] = get("VIRTUAL_ENV")
        if get("VENVD_STATE") and "deactivate" not in XSH.aliases:
            XSH.aliases["deactivate"] = deactivate

    def hook(**_):  # whatever happens, the prompt survives
        try:
            step()
        except KeyboardInterrupt:
            pass
        except Exception as exc:
            print(f"venvd: hook failed: {exc!r}", file=sys.stderr)

    @unthreadable
    def deactivate(args=None, stdin=None, stdout=None, stderr=None):
        if not os.access(C["py"], os.X_OK):
            print(f"venvd: deactivate: {C['py']} is missing", file=sys.stderr)
            return 1
        done = client("--action", "deactivate")
        if done.returncode == 0:
            apply(done.stdout)
            S["ve"] = get("VIRTUAL_ENV")
        return done.returncode

    return types.SimpleNamespace(config=C, state=S, hook=hook, deactivate=deactivate, apply=apply,
                                 events=events)


if "_venvd" not in globals():  # once, however often the rc file runs
    _venvd = _venvd_make()
    _venvd.events.on_pre_prompt(_venvd.hook)
    _venvd.events.on_chdir(_venvd.hook)
'''


def quote(value: str) -> str:
    """A Python string literal (the hook is Python): ``repr`` escapes quotes, backslashes
    and every unprintable character, and nothing inside a literal is expanded."""
    return repr(value)


class Xonsh(data.DataShell):
    """xonsh 0.14+."""

    name = "xonsh"
    rc_file = "~/.xonshrc"

    def hook(self, config: HookConfig) -> str:
        return _HOOK % {
            **posix.hook_paths(config, quote, data.SUFFIX),
            "argv": ", ".join(quote(a) for a in config.export_argv),
            "markers": ", ".join(quote(m) for m in config.markers),
        }

    def quote(self, value: str) -> str:
        return quote(value)

    def hook_line(self) -> str:
        return "exec($(venvd hook xonsh))"

    def rc_block(self) -> str:
        local_bin = "$HOME + '/.local/bin'"
        return (f"if {local_bin} not in $PATH:\n    $PATH.insert(0, {local_bin})\n"
                # (xonsh's $PATH, which os.environ does not follow)
                "if __import__('shutil').which('venvd', path=':'.join($PATH)):\n"
                f"    {self.hook_line()}")

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        # xonsh reads ~/.xonshrc and its XDG rc file alike: add to the first, clean both
        config = environ.get("XDG_CONFIG_HOME") or expand_home("~/.config", environ)
        return [expand_home(self.rc_file, environ), f"{config}/xonsh/rc.xsh"]
