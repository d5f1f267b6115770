"""nushell: the hook runs on ``pre_prompt`` and ``env_change.PWD``; it reads data, never code.

nushell cannot ``eval`` text, so ``venvd hook nu`` prints a script the rc file saves into
nushell's vendor autoload folder (read once config.nu has run), and everything the hook gets
at run time is data: the export client prints JSON lines, the daemon's ready snippet is a
JSON object (``snippet_suffix = "json"``), both read with ``from json`` and applied with
``load-env``/``hide-env``. The hook's own state is a record in ``$env``: nushell hands only
strings to child processes, so it stays out of their environment, nested shells included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from venvd.shell import data, posix
from venvd.shell.base import Changes, HookConfig, Shell, expand_home

_HOOK = """# venvd's hook for nushell, written by `venvd hook nu` (the paths are this install's)
# in $env (a record, so no child process sees it), not a const: the tests point py elsewhere
$env.__venvd_c = {
    py: %(python)s
    argv: [%(argv)s]
    socket: %(socket)s
    state_db: %(state_db)s
    gen: %(generation)s
    ready: %(ready)s
    pid_file: %(pid_file)s
    wake: %(wake)s
    markers: [%(markers)s]
}

# the first line of a file, "" when it cannot be read (builtins only: no process)
def __venvd_read [path: string] {
    try { open --raw $path | lines | first } catch { "" }
}

# the daemon is alive, and not a zombie that nobody reaped (state Z)
def __venvd_alive [] {
    let dpid = (__venvd_read $env.__venvd_c.pid_file | str trim)
    if $dpid == "" { return false }
    if not ("/proc/self" | path exists) { return true }
    let st = (__venvd_read $"/proc/($dpid)/stat")
    $st != "" and not ($st | str replace -r '^.*\\) ' '' | str starts-with "Z")
}

# the project folder above $env.PWD, "" for none (a symlinked marker counts: a wrong guess
# only finds no snippet, and the client decides)
def __venvd_root [] {
    mut d = $env.PWD
    loop {
        if $d == ($env.HOME? | default "") or $d == "/" {
            if ($d | path join ".venvd.toml" | path type) in [file symlink] { return $d }
        } else {
            for m in $env.__venvd_c.markers {
                if ($d | path join $m | path type) in [file symlink] { return $d }
            }
        }
        if $d == "/" { return "" }
        $d = ($d | path dirname)
    }
}

# apply the daemon's ready snippet with builtins; false: leave it to the client
def --env __venvd_fast [] {
    if not (__venvd_alive) { return false }
    let root = (__venvd_root)
    let s = $env.__venvd
    let state = ($env.VENVD_STATE? | default "")
    let ours = $state != ""
    if $ours and not ($state == $s.fs and ($env.VIRTUAL_ENV? | default "") == $s.fe
            and ($env.VIRTUAL_ENV_PROMPT? | default "") == $s.fp and $s.fe != "") {
        return false
    }
    mut r = {_venvd_r_env: "", _venvd_r_prompt: "", _venvd_r_blob: ""}
    if $root != "" {
        let f = $"($env.__venvd_c.ready)($root)/.venvd-ready.json"
        if ($f | path type) != "file" { return false }
        let toml = ($root | path join ".venvd.toml")
        if ($toml | path exists) {
            if (ls -D $toml | get 0.modified) > (ls -D $f | get 0.modified) { return false }
        }
        let got = (try { open --raw $f | from json } catch { null })
        if $got == null { return false }
        $r = $got
        if $r._venvd_r_env != "" and not ($"($r._venvd_r_env)/bin/python" | path exists) {
            return false
        }
    }
    mut venv = $r._venvd_r_env
    if ($env.VENVD_OFF? | default "") != "" {
        if $root != "" and $root == $env.VENVD_OFF { $venv = "" } else { hide-env -i VENVD_OFF }
    }
    let own_bin = $"($s.fe)/bin"
    if $ours and $venv == $s.fe and ($own_bin in $env.PATH) { return true }
    if (not $ours) and $venv != "" and (($env.VIRTUAL_ENV? | default "") != ""
            or ($env.VIRTUAL_ENV_PROMPT? | default "") != "" or ("PYTHONHOME" in $env)) {
        return false
    }
    if $ours {
        let at = ($env.PATH | enumerate | where item == $own_bin | each {|e| $e.index })
        if ($at | is-not-empty) { $env.PATH = ($env.PATH | drop nth ($at | first)) }
        hide-env -i VIRTUAL_ENV VIRTUAL_ENV_PROMPT VENVD_STATE
        $env.__venvd = ($env.__venvd | merge {fs: "", fe: "", fp: ""})
    }
    if $venv != "" {
        let tag = $"($nu.pid).($r._venvd_r_blob)"
        load-env {VIRTUAL_ENV: $venv, VIRTUAL_ENV_PROMPT: $r._venvd_r_prompt, VENVD_STATE: $tag}
        $env.PATH = ($env.PATH | prepend $"($venv)/bin")
        $env.__venvd = ($env.__venvd | merge {fs: $tag, fe: $venv, fp: $r._venvd_r_prompt})
    }
    true
}

# what the client printed: JSON lines of variables to set and unset, and what to remember
def --env __venvd_apply [out: string] {
    for line in ($out | lines) {
        let r = (try { $line | from json } catch { null })
        if $r == null { continue }
        if $r.unset? != null { hide-env -i ...$r.unset }
        if $r.set? != null { load-env $r.set }
        if $r.remember? != null {
            let m = $r.remember
            $env.__venvd = ($env.__venvd | merge {fs: $m.0, fe: $m.1, fp: $m.2})
        }
    }
}

def --env __venvd_client [] {
    let c = $env.__venvd_c
    let out = (try {
        ^$c.py ...$c.argv nu --socket $c.socket --state-db $c.state_db --pid $"($nu.pid)"
    } catch { "" })
    __venvd_apply $out
}

# on an idle prompt: one read of the generation file and comparisons, no process
def --env __venvd_hook [] {
    let status = ($env.LAST_EXIT_CODE? | default 0)
    let s = $env.__venvd
    let g = (__venvd_read $env.__venvd_c.gen)
    let ve = ($env.VIRTUAL_ENV? | default "")
    let woke = (($env.VENVD_OFF? | default "") != ""
        and ($"($env.__venvd_c.wake)($nu.pid)" | path exists))
    let broken = $s.fe != "" and not ($"($s.fe)/bin/python" | path exists)
    if $env.PWD == $s.pwd and $g == $s.gen and $ve == $s.ve and not $broken and not $woke {
        return
    }
    $env.__venvd = ($s | merge {pwd: $env.PWD})
    if $woke { hide-env -i VENVD_OFF }  # `venvd activate`
    let fast = $g == $s.gen and ($env.VENVD_NO_FAST? | default "") == "" and (__venvd_fast)
    if not $fast {
        $env.__venvd = ($env.__venvd | merge {gen: $g})
        if ($env.__venvd_c.py | path exists) { __venvd_client }
    }
    $env.__venvd = ($env.__venvd | merge {ve: ($env.VIRTUAL_ENV? | default "")})
    $env.LAST_EXIT_CODE = $status
}

# venvd's env off in this shell (a hand-activated venv's overlay brings its own deactivate,
# which hides this one while it is active); a failure is an error, so its status is 1
def --env deactivate [] {
    let c = $env.__venvd_c
    if not ($c.py | path exists) {
        error make -u {msg: $"venvd: deactivate: ($c.py) is missing"}
    }
    let r = (do {
        (^$c.py ...$c.argv nu --socket $c.socket --state-db $c.state_db --pid $"($nu.pid)"
            --action deactivate)
    } | complete)
    if $r.exit_code != 0 { error make -u {msg: ($r.stderr | str trim)} }
    print -e -n $r.stderr
    __venvd_apply $r.stdout
    $env.__venvd = ($env.__venvd | merge {ve: ($env.VIRTUAL_ENV? | default "")})
}

if ($env.__venvd? | describe) != "record" {  # once, however often this file is read
    $env.__venvd = {pwd: "", gen: "", ve: "", fs: "", fe: "", fp: ""}
    $env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt? | default []
        | append {|| __venvd_hook })
    $env.config.hooks.env_change.PWD = ($env.config.hooks.env_change.PWD? | default []
        | append {|before, after| __venvd_hook })
}
"""

#: Where the rc block saves the hook: nushell reads its vendor autoload folder after
#: config.nu, in the same start-up (``source`` would need the file before config.nu runs).
_AUTOLOAD = "($nu.data-dir | path join vendor autoload)"


def quote(value: str) -> str:
    """A double-quoted nushell string: no interpolation (only ``$"..."`` interpolates),
    ``\\\\`` and ``\\"`` escaped, every unprintable character as ``\\u{...}``."""
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


class Nu(Shell):
    """nushell 0.101+ (vendor autoload folders)."""

    name = "nu"
    rc_file = "~/.config/nushell/config.nu"
    snippet_suffix = data.SUFFIX

    def hook(self, config: HookConfig) -> str:
        return _HOOK % {
            "python": quote(config.python),
            "argv": " ".join(quote(a) for a in config.export_argv),
            "socket": quote(config.socket),
            "state_db": quote(config.state_db),
            "generation": quote(config.generation),
            "ready": quote(config.ready),
            "pid_file": quote(config.pid_file),
            "wake": quote(posix.wake_prefix(config)),
            "markers": " ".join(quote(m) for m in config.markers),
        }

    def export(self, changes: Changes) -> str:
        return data.export(changes)

    def quote(self, value: str) -> str:
        return quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        return data.remember(state)

    def hook_line(self) -> str:
        return f"mkdir {_AUTOLOAD}; venvd hook nu | save -f ({_AUTOLOAD[1:-1]} venvd.nu)"

    def rc_block(self) -> str:
        # without venvd, a hook saved before must not linger in the autoload folder
        local_bin = '($env.HOME | path join ".local" "bin")'
        return (f"if {local_bin} not-in $env.PATH {{\n"
                f"    $env.PATH = ($env.PATH | prepend {local_bin})\n}}\n"
                f"if (which venvd | is-not-empty) {{ {self.hook_line()} }} else {{\n"
                f"    rm -f ({_AUTOLOAD[1:-1]} venvd.nu)\n}}")

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return data.snippet(values)

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        default = expand_home(self.rc_file, environ)
        config = environ.get("XDG_CONFIG_HOME")
        first = f"{config}/nushell/config.nu" if config else default
        return [first] if first == default else [first, default]
