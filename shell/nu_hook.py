"""The hook ``venvd hook nu`` prints (see venvd.shell.nu): builtins on an idle prompt and on a
``cd`` with a ready snippet, JSON from the client otherwise; ``%(...)s``: this install's paths,
quoted for nushell."""

from __future__ import annotations

HOOK = """# venvd's hook for nushell, written by `venvd hook nu` (the paths are this install's)
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
    news: %(news)s
    markers: [%(markers)s]
    user: %(user)s
}

# a file of the user's own (its owner as `ls -l` names it): the hook takes no other, as the
# other hooks' `-O` (`venvd hook` checked their folder at shell start). `ls -l` looks the
# owner's name up (about 1 ms): on an idle prompt, a generation file whose text is the one
# the hook took last time is not checked again (it changes nothing).
def __venvd_own [path: string] {
    try { (ls -lD $path | get 0.user) == $env.__venvd_c.user } catch { false }
}

# the first line of a file, "" when it cannot be read (builtins only: no process)
def __venvd_line [path: string] {
    try { open --raw $path | lines | first } catch { "" }
}

# the first line of a file of the user's, "" for any other
def __venvd_read [path: string] {
    if not (__venvd_own $path) { return "" }
    __venvd_line $path
}

# one number of the generation file's two (the last bump that needs the client, the last)
def __venvd_word [g: string, at: int] {
    $g | split row " " | get -o $at | default ""
}

# the daemon is alive, and not a zombie that nobody reaped (state Z)
def __venvd_alive [] {
    let dpid = (__venvd_read $env.__venvd_c.pid_file | str trim)
    if $dpid == "" { return false }
    if not ("/proc/self" | path exists) { return true }
    let st = (__venvd_line $"/proc/($dpid)/stat")  # the kernel's: no owner to check
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
    $env.__venvd.froot = $root
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
        if ($f | path type) != "file" or not (__venvd_own $f) { return false }
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

def --env __venvd_client [seen: string] {
    let c = $env.__venvd_c
    let out = (try {
        (^$c.py ...$c.argv nu --socket $c.socket --state-db $c.state_db --pid $"($nu.pid)"
            --seen $seen)
    } catch { "" })
    __venvd_apply $out
}

# news without a process: the daemon's news file (JSON lines), the items about this shell's
# project (or the project its folder's snippet stands for) between two generations
def __venvd_tell_news [seen: string, g: string] {
    let lo = (__venvd_word $seen 1)
    let hi = (__venvd_word $g 1)
    let root = $env.__venvd.froot
    if not ($lo =~ '^[0-9]+$' and $hi =~ '^[0-9]+$') or $root == "" { return }
    if not (__venvd_own $env.__venvd_c.news) { return }
    let alias = (__venvd_read $"($env.__venvd_c.ready)($root)/.venvd-alias")
    # (a `try` as the list of a `for` gives it nothing, in nushell 0.108)
    let items = (try { open --raw $env.__venvd_c.news | lines } catch { [] })
    for line in $items {
        try {
            let n = ($line | from json)
            # (the shells that heard it from a command they ran: not again here)
            if $n.id > ($lo | into int) and $n.id <= ($hi | into int) and ($n.project == $root
                    or ($alias != "" and $n.project == $alias)) and $nu.pid not-in $n.heard {
                print -e $"venvd: ($n.text)"
            }
        }
    }
}

# on an idle prompt: one read of the generation file and comparisons, no process
def --env __venvd_hook [] {
    let status = ($env.LAST_EXIT_CODE? | default 0)
    # for `venvd doctor`, a child: this shell runs the hook (see venvd.client.shellcheck)
    if ($env.VENVD_HOOKED? | default "") != $"nu:($nu.pid)" { $env.VENVD_HOOKED = $"nu:($nu.pid)" }
    let s = $env.__venvd
    let line = (__venvd_line $env.__venvd_c.gen)
    let g = if $line == $s.gen or (__venvd_own $env.__venvd_c.gen) { $line } else { "" }
    let ve = ($env.VIRTUAL_ENV? | default "")
    let woke = (($env.VENVD_OFF? | default "") != ""
        and (__venvd_own $"($env.__venvd_c.wake)($nu.pid)"))
    let broken = $s.fe != "" and not ($"($s.fe)/bin/python" | path exists)
    if $env.PWD == $s.pwd and $g == $s.gen and $ve == $s.ve and not $broken and not $woke {
        return
    }
    $env.__venvd = ($s | merge {pwd: $env.PWD})
    if $woke { hide-env -i VENVD_OFF }  # `venvd activate`
    # a bump that only brings a sync's outcome (the first number unchanged) is "quiet": the
    # snippet and the news file have it, no client needed
    let quiet = $g == $s.gen or ($s.gen != "" and (__venvd_word $g 0) == (__venvd_word $s.gen 0))
    if ($env.VENVD_NO_FAST? | default "") != "" or not $quiet or not (__venvd_fast) {
        $env.__venvd.gen = $g
        if ($env.__venvd_c.py | path exists) { __venvd_client (__venvd_word $s.gen 1) }
    } else if $g != $s.gen {
        __venvd_tell_news $s.gen $g
        $env.__venvd.gen = $g
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

const __venvd_self = path self
if not ($env.__venvd_c.py | path exists) {  # venvd is gone (uninstalled): this saved hook too
    rm -f $__venvd_self
    hide-env __venvd_c
} else if not ($env.__venvd? | describe | str starts-with "record") {  # once, however often read
    $env.__venvd = {pwd: "", gen: "", ve: "", fs: "", fe: "", fp: "", froot: ""}
    $env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt? | default []
        | append {|| __venvd_hook })
    $env.config.hooks.env_change.PWD = ($env.config.hooks.env_change.PWD? | default []
        | append {|before, after| __venvd_hook })
}
"""
