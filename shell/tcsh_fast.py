"""tcsh's no-process ``cd``: a script the hook sources (the rules of bash's ``_venvd_fast``).

A tcsh alias is one line, and neither an alias nor ``eval`` can hold a loop, so the walk up
to the project root lives in a file: ``venvd hook tcsh`` writes it into the private runtime
folder (its name carries a hash of its text, so shells of two venvd versions never share
one), and the hook ``source``s it after checking it is the user's (``-o``). It runs
builtins only: ``source`` of the daemon's pid (``daemon.pid.csh``) and of the project's
ready snippet, file inquiries, string comparisons, ``setenv``. It sets ``_venvd_fok`` to 1
when it did the whole job; anything unusual leaves it 0 and the hook asks the client.

tcsh quirks it lives with: a single-line ``if`` expands its command even when false (so an
unset variable is read only inside an ``if ... then`` block, which tcsh skips unread); an
empty word is no operand (each side of a comparison starts with an ``x``); ``!`` is history
(nothing here negates with it); ``path`` maps an empty PATH entry to ``.``, so PATH is
rebuilt from ``path`` only when joining ``path`` gives PATH back exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# `%(markers)s`: one expression testing every marker file in `$_venvd_d` (one command per
# folder: each command tcsh runs in a sourced file costs about 10 us, a loop's more).
_SCRIPT = r"""# venvd: tcsh's cd with no process (see venvd.shell.tcsh_fast); sourced by the hook
set _venvd_fok = 0 _venvd_k = 0 _venvd_dpid = x _venvd_root = '' _venvd_ours = 0
# the daemon alive, and no zombie that nobody reaped: a zombie has no exe link (no /proc:
# nothing to tell, the client decides)
if ( -o $_venvd_pidf:q && -r $_venvd_pidf:q ) then
  source $_venvd_pidf:q
endif
if ( -e /proc/$_venvd_dpid/exe ) set _venvd_k = 1
if ( $_venvd_k == 1 ) then
  set _venvd_d = $cwd:q _venvd_hm = ''
  if ( $?HOME ) then
    set _venvd_hm = $HOME:q
  endif
  while ( x$_venvd_root:q == x )
    if ( x$_venvd_d:q == x$_venvd_hm:q || x$_venvd_d:q == x/ ) then
      if ( -f $_venvd_d:q/.venvd.toml ) set _venvd_root = $_venvd_d:q
    else if ( %(markers)s ) then
      set _venvd_root = $_venvd_d:q
    endif
    if ( x$_venvd_d:q == x/ ) break
    # :h of /a is empty, and of a name with no / the name itself
    set _venvd_up = $_venvd_d:h:q
    if ( x$_venvd_up:q == x || x$_venvd_up:q == x$_venvd_d:q ) set _venvd_up = /
    set _venvd_d = $_venvd_up:q
  end
endif
set _venvd_xs = '' _venvd_xe = '' _venvd_xp = ''
if ( $?VENVD_STATE ) then
  set _venvd_xs = $VENVD_STATE:q
endif
if ( $?VIRTUAL_ENV ) then
  set _venvd_xe = $VIRTUAL_ENV:q
endif
if ( $?VIRTUAL_ENV_PROMPT ) then
  set _venvd_xp = $VIRTUAL_ENV_PROMPT:q
endif
# an activation is ours to revert only when it is the very one this hook remembers
if ( $_venvd_k == 1 && x$_venvd_xs:q != x ) then
  set _venvd_k = 0
  if ( x$_venvd_xs:q == x$_venvd_fs:q && x$_venvd_xe:q == x$_venvd_fe:q && \
       x$_venvd_xp:q == x$_venvd_fp:q && x$_venvd_fe:q != x ) set _venvd_k = 1
  set _venvd_ours = $_venvd_k
endif
set _venvd_r_env = '' _venvd_r_prompt = '' _venvd_r_blob = ''
if ( $_venvd_k == 1 && x$_venvd_root:q != x ) then
  set _venvd_k = 0 _venvd_new = 1 _venvd_f = $_venvd_rdir:q$_venvd_root:q/.venvd-ready.csh
  if ( -o $_venvd_f:q && -r $_venvd_f:q ) set _venvd_new = 0
  if ( $_venvd_new == 0 && -e $_venvd_root:q/.venvd.toml ) then
    # whole seconds: a .venvd.toml of the snippet's second may be newer (the client knows)
    @ _venvd_new = -M $_venvd_root:q/.venvd.toml
    @ _venvd_t = -M $_venvd_f:q
    @ _venvd_new = $_venvd_new >= $_venvd_t
  endif
  if ( $_venvd_new == 0 ) then
    unset _venvd_r_env _venvd_r_prompt _venvd_r_blob
    source $_venvd_f:q
    if ( $?_venvd_r_env && $?_venvd_r_prompt && $?_venvd_r_blob ) set _venvd_k = 1
  endif
  if ( $_venvd_k == 0 ) set _venvd_r_env = '' _venvd_r_prompt = '' _venvd_r_blob = ''
  if ( x$_venvd_r_env:q != x ) then
    @ _venvd_t = -x $_venvd_r_env:q/bin/python
    if ( $_venvd_t == 0 ) set _venvd_k = 0
  endif
endif
set _venvd_env = $_venvd_r_env:q
if ( $_venvd_k == 1 && $?VENVD_OFF ) then
  set _venvd_off = $VENVD_OFF:q
  if ( x$_venvd_root:q != x && x$_venvd_root:q == x$_venvd_off:q ) then
    set _venvd_env = ''
  else
    unsetenv VENVD_OFF
  endif
endif
# PATH, as path gives it (exact only when joining path gives PATH back): is the remembered
# env's bin on it, and PATH without its first such entry
set _venvd_pv = '' _venvd_s = '' _venvd_n = '' _venvd_has = 0
if ( $?PATH ) then
  set _venvd_pv = $PATH:q
endif
if ( $_venvd_k == 1 && $_venvd_ours == 1 ) then
  if ( x$_venvd_pe:q == x$_venvd_fe:q && x$_venvd_pv:q == x$_venvd_pa:q ) then
    # PATH as this script left it (its env's bin, then the PATH before): no loop
    set _venvd_has = 1 _venvd_n = $_venvd_pb:q
  else
    foreach _venvd_p ( $path:q )
      set _venvd_s = ${_venvd_s:q}:${_venvd_p:q}
      if ( $_venvd_has == 0 && x$_venvd_p:q == x$_venvd_fe:q/bin ) then
        set _venvd_has = 1
      else if ( x$_venvd_n:q == x ) then
        set _venvd_n = $_venvd_p:q
      else
        set _venvd_n = ${_venvd_n:q}:${_venvd_p:q}
      endif
    end
    if ( x$_venvd_s:q != x:$_venvd_pv:q ) set _venvd_k = 0
  endif
  if ( $_venvd_k == 1 && x$_venvd_env:q == x$_venvd_fe:q && $_venvd_has == 1 ) set _venvd_k = 2
endif
# a venv someone else activated is theirs: the client decides
if ( $_venvd_k == 1 && $_venvd_ours == 0 && x$_venvd_env:q != x ) then
  if ( x$_venvd_xe:q != x || x$_venvd_xp:q != x || $?PYTHONHOME ) set _venvd_k = 0
endif
if ( $_venvd_k == 1 && $_venvd_ours == 1 ) then
  setenv PATH $_venvd_n:q
  unsetenv VIRTUAL_ENV VIRTUAL_ENV_PROMPT VENVD_STATE
  set _venvd_pv = $_venvd_n:q _venvd_fs = '' _venvd_fe = '' _venvd_fp = ''
endif
if ( $_venvd_k == 1 && x$_venvd_env:q != x ) then
  setenv VIRTUAL_ENV $_venvd_env:q
  setenv VIRTUAL_ENV_PROMPT $_venvd_r_prompt:q
  if ( x$_venvd_pv:q == x ) then
    setenv PATH $_venvd_env:q/bin
  else
    setenv PATH ${_venvd_env:q}/bin:${_venvd_pv:q}
  endif
  setenv VENVD_STATE $$.$_venvd_r_blob:q
  set _venvd_fs = $VENVD_STATE:q _venvd_fe = $_venvd_env:q _venvd_fp = $_venvd_r_prompt:q
  set _venvd_pe = $_venvd_env:q _venvd_pb = $_venvd_pv:q _venvd_pa = $PATH:q
endif
if ( $_venvd_k >= 1 ) set _venvd_fok = 1
"""


def script(markers: Sequence[str]) -> str:
    """The script for the project *markers*, each one already a quoted tcsh word."""
    tests = " || ".join(f"-f $_venvd_d:q/{m}" for m in markers) or "0"
    lines = (_SCRIPT % {"markers": tests}).splitlines()
    # tcsh parses every line it passes, comments too: they stay here
    return "\n".join(lines[:1] + [ln for ln in lines[1:] if not ln.lstrip().startswith("#")]) + "\n"


def script_path(runtime: str, text: str) -> str:
    """Where ``venvd hook tcsh`` keeps the script *text* in the runtime folder *runtime*."""
    import hashlib  # here: the export client, which imports every shell, never needs it

    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return os.path.join(runtime, f"tcsh-fast.{digest}.csh")
