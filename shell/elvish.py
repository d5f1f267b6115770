"""elvish: the hook runs in ``edit:before-readline`` (each prompt) and ``after-chdir``.

Everything on the idle prompt and on a ``cd`` to a project whose snippet is ready is a
builtin (``slurp`` of the generation file and the snippet, ``eval``): no process at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig, Shell, check_name, expand_home

# The code is ``eval``ed in a namespace of its own: its variables live on in the closures it
# adds to ``after-chdir`` and ``edit:before-readline``, and ``deactivate`` reaches the user's
# namespace through ``edit:add-var``. The client's output is ``eval``ed too; what it
# remembers (``var _venvd_fs = ...``) comes back through ``&on-end``.
_HOOK = r"""use str
use path
# the client, in a namespace the REPL shares (`set venvd:py = ...`, as bash's $_VENVD_PY)
var venvd: = (ns [&py=%(python)s])
var venvd-gen-file = %(generation)s
var venvd-ready = %(ready)s
var venvd-pid-file = %(pid_file)s
var venvd-wake = %(wake)s
var venvd-markers = [%(markers)s]
var venvd-pwd = ''
var venvd-gen = ''
var venvd-ve = ''
var venvd-fs = ''
var venvd-fe = ''
var venvd-fp = ''
var venvd-cmd = [%(command)s]
fn venvd-read {|f| try { put (slurp < $f) } catch { put '' } }
fn venvd-file {|f| try { put (path:is-regular $f) } catch { put $false } }
fn venvd-exe {|f| try { put (path:is-regular &follow-symlink=$true $f) } catch { put $false } }
fn venvd-run {|@extra|
  # the client's code, then what it remembers for the fast path
  var code = ''
  try {
    set code = ((external $venvd:py) $@venvd-cmd --pid $pid $@extra | slurp)
  } catch e {
    put $false
    return
  }
  eval $code &on-end={|ns|
    if (has-key $ns _venvd_fs) {
      set venvd-fs venvd-fe venvd-fp = $ns[_venvd_fs] $ns[_venvd_fe] $ns[_venvd_fp]
    }
  }
  put $true
}
fn venvd-fast {
  var dpid = (str:trim-space (venvd-read $venvd-pid-file))
  if (eq $dpid '') { put $false; return }
  # alive, and not a zombie that nobody reaped (state Z)
  if (path:is-dir &follow-symlink=$true /proc/self) {
    var st = (venvd-read /proc/$dpid/stat)
    if (eq $st '') { put $false; return }
    if (str:has-prefix [(str:split ') ' $st)][-1] Z) { put $false; return }
  }
  var d = $pwd
  var root = ''
  while $true {
    if (or (eq $d $E:HOME) (eq $d /)) {
      if (venvd-file $d/.venvd.toml) { set root = $d }
    } else {
      for m $venvd-markers {
        if (venvd-file $d/$m) { set root = $d; break }
      }
    }
    if (or (not-eq $root '') (eq $d /)) { break }
    set d = (path:dir $d)
  }
  var ours = $false
  if (has-env VENVD_STATE) {
    if (not (and (eq $E:VENVD_STATE $venvd-fs) (eq $E:VIRTUAL_ENV $venvd-fe) ^
                 (eq $E:VIRTUAL_ENV_PROMPT $venvd-fp) (not-eq $venvd-fe ''))) {
      put $false; return
    }
    set ours = $true
  }
  var r = [&_venvd_r_env='' &_venvd_r_prompt='' &_venvd_r_blob='']
  if (not-eq $root '') {
    # elvish 0.19 cannot compare file times: a project with its own .venvd.toml asks the
    # client (which knows whether that file changed since the snippet)
    if (venvd-file $root/.venvd.toml) { put $false; return }
    var code = (venvd-read $venvd-ready$root/.venvd-ready.elv)
    if (eq $code '') { put $false; return }
    var ok = $true
    try {
      eval $code &on-end={|ns|
        for k [(keys $r)] { if (has-key $ns $k) { set r[$k] = $ns[$k] } else { set ok = $false } }
      }
    } catch { set ok = $false }
    if (not $ok) { put $false; return }
    if (and (not-eq $r[_venvd_r_env] '') (not (venvd-exe $r[_venvd_r_env]/bin/python))) {
      put $false; return
    }
  }
  var env = $r[_venvd_r_env]
  if (has-env VENVD_OFF) {
    if (and (not-eq $root '') (eq $root $E:VENVD_OFF)) { set env = '' } else { unset-env VENVD_OFF }
  }
  if (and $ours (eq $env $venvd-fe) (str:contains ':'$E:PATH':' ':'$venvd-fe'/bin:')) {
    put $true; return
  }
  if (and (not $ours) (not-eq $env '')) {
    if (or (has-env VIRTUAL_ENV) (has-env VIRTUAL_ENV_PROMPT) (has-env PYTHONHOME)) {
      put $false; return
    }
  }
  if $ours {
    var p = (str:replace &max=1 ':'$venvd-fe'/bin:' ':' ':'$E:PATH':')
    set-env PATH (str:trim-suffix (str:trim-prefix $p ':') ':')
    unset-env VIRTUAL_ENV
    unset-env VIRTUAL_ENV_PROMPT
    unset-env VENVD_STATE
    set venvd-fs venvd-fe venvd-fp = '' '' ''
  }
  if (not-eq $env '') {
    set-env VIRTUAL_ENV $env
    set-env VIRTUAL_ENV_PROMPT $r[_venvd_r_prompt]
    if (eq $E:PATH '') { set-env PATH $env/bin } else { set-env PATH $env/bin':'$E:PATH }
    set-env VENVD_STATE $pid'.'$r[_venvd_r_blob]
    set venvd-fs venvd-fe venvd-fp = $E:VENVD_STATE $env $r[_venvd_r_prompt]
  }
  put $true
}
fn venvd-hook {|@_|
  var g = (venvd-read $venvd-gen-file)
  var woken = (and (has-env VENVD_OFF) (venvd-file $venvd-wake$pid))
  if (or (not-eq $pwd $venvd-pwd) (not-eq $g $venvd-gen) (not-eq $E:VIRTUAL_ENV $venvd-ve) ^
         (and (not-eq $venvd-fe '') (not (venvd-exe $venvd-fe/bin/python))) $woken) {
    set venvd-pwd = $pwd
    if $woken { unset-env VENVD_OFF }  # `venvd activate`
    var fast = $false
    if (and (eq $g $venvd-gen) (not (has-env VENVD_NO_FAST))) {
      try { set fast = (venvd-fast) } catch e { echo >&2 'venvd: '(to-string $e[reason]) }
    }
    if (not $fast) {
      set venvd-gen = $g
      if (venvd-exe $venvd:py) { var ran = (venvd-run) }
    }
    set venvd-ve = $E:VIRTUAL_ENV
  }
}
set after-chdir = [$@after-chdir $venvd-hook~]
set edit:before-readline = [$@edit:before-readline $venvd-hook~]
# for `venvd doctor`, a child process: this very shell runs the hook at its prompts
set-env VENVD_HOOKED 'elvish:'$pid
edit:add-var venvd: $venvd:
edit:add-var deactivate~ {|@_|
  if (not (venvd-exe $venvd:py)) { fail 'venvd: deactivate: '$venvd:py' is missing' }
  if (not (venvd-run --action deactivate)) { fail 'venvd: deactivate: nothing to turn off' }
  set venvd-ve = $E:VIRTUAL_ENV
}
"""


def quote(value: str) -> str:
    """Single-quote *value* for elvish: inside, ``''`` is a quote and nothing else is special
    (a newline included)."""
    return "'" + value.replace("'", "''") + "'"


class Elvish(Shell):
    """elvish 0.19+."""

    name = "elvish"
    rc_file = "~/.config/elvish/rc.elv"
    snippet_suffix = "elv"

    def hook(self, config: HookConfig) -> str:
        words = (*config.export_argv, self.name, "--socket", config.socket,
                 "--state-db", config.state_db)
        return _HOOK % {
            **posix.hook_paths(config, quote, "elv"),
            "markers": " ".join(quote(m) for m in config.markers),
            "command": " ".join(quote(w) for w in words),
        }

    def export(self, changes: Changes) -> str:
        lines = []
        for name in sorted(changes):
            value = changes[name]
            if value is None:
                lines.append(f"unset-env {check_name(name)}")
            else:
                lines.append(f"set-env {check_name(name)} {quote(value)}")
        return "\n".join(lines) + ("\n" if lines else "")

    def quote(self, value: str) -> str:
        return quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        values = state or ("", "", "")
        return "".join(f"var {name} = {quote(value)}\n" for name, value in
                       zip(("_venvd_fs", "_venvd_fe", "_venvd_fp"), values))

    def hook_line(self) -> str:
        return "eval (venvd hook elvish | slurp)"

    def rc_block(self) -> str:
        return ("if (not (has-value $paths $E:HOME/.local/bin)) "
                "{ set paths = [$E:HOME/.local/bin $@paths] }\n"
                f"if (has-external venvd) {{ {self.hook_line()} }}")

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return "".join(f"var {check_name(n)} = {quote(v)}\n" for n, v in values)

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        default = expand_home(self.rc_file, environ)
        config = environ.get("XDG_CONFIG_HOME")
        first = f"{config}/elvish/rc.elv" if config else default
        older = expand_home("~/.elvish/rc.elv", environ)  # elvish before 0.17
        return list(dict.fromkeys([first, default, older]))
