"""fish: the hook runs on the prompt event and on every change of ``PWD``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from venvd.shell import posix
from venvd.shell.base import Changes, HookConfig, Shell, check_name, expand_home

_HOOK = """set -g __venvd_py %(python)s
set -g __venvd_gen_file %(generation)s
set -g __venvd_ready %(ready)s
set -g __venvd_pid_file %(pid_file)s
set -g __venvd_wake %(wake)s
set -g __venvd_markers %(markers)s
set -g __venvd_pwd ''
set -g __venvd_path_builtin (builtin -n | string match -x path)
set -g __venvd_gen ''
set -g __venvd_ve ''
set -g __venvd_fs ''
set -g __venvd_fe ''
set -g __venvd_fp ''
set -g __venvd_news_file %(news)s
set -g __venvd_froot ''
function __venvd_fast
    set -l dpid ''
    # only files of the user's own (`venvd hook` checked their folder at shell start)
    test -O $__venvd_pid_file -a -r $__venvd_pid_file; and read dpid < $__venvd_pid_file
    test -n "$dpid"; or return 1
    if test -d /proc/self  # alive, and not a zombie that nobody reaped (state Z)
        test -r /proc/$dpid/stat; or return 1
        set -l st
        read st < /proc/$dpid/stat; or return 1
        string match -q -r '\\) Z [^)]*$' -- $st; and return 1
    end
    set -l d $PWD
    set -l root ''
    while true
        if test "$d" = "$HOME" -o "$d" = /
            test -f "$d/.venvd.toml"; and set root $d
        else
            for m in $__venvd_markers
                if test -f "$d/$m"
                    set root $d
                    break
                end
            end
        end
        if test -n "$root" -o "$d" = /
            break
        end
        # the parent, as one word even when a folder name holds a newline (a command
        # substitution splits on newlines; `path dirname -Z` and `string split0` on NULs)
        if test -n "$__venvd_path_builtin"
            set d (path dirname -Z -- $d | string split0)
        else  # fish < 3.5: a name ending in a newline loses it, but the walk still ends
            set d (string replace -r '/[^/]*$' '' -- $d | string collect)
            test -z "$d"; and set d /
        end
    end
    set -g __venvd_froot $root
    set -l ours ''
    if set -q VENVD_STATE
        if test "$VENVD_STATE" = "$__venvd_fs" -a "$VIRTUAL_ENV" = "$__venvd_fe" \
                -a "$VIRTUAL_ENV_PROMPT" = "$__venvd_fp" -a -n "$__venvd_fe"
            set ours 1
        else
            return 1
        end
    end
    set -l _venvd_r_env ''
    set -l _venvd_r_prompt ''
    set -l _venvd_r_blob ''
    if test -n "$root"
        set -l f "$__venvd_ready$root/.venvd-ready.fish"
        test -O "$f" -a -r "$f"; or return 1
        if test -e "$root/.venvd.toml"; and test "$root/.venvd.toml" -nt "$f"
            return 1
        end
        source "$f"; or return 1
        if test -n "$_venvd_r_env"; and not test -x "$_venvd_r_env/bin/python"
            return 1
        end
    end
    if set -q VENVD_OFF
        if test -n "$root" -a "$root" = "$VENVD_OFF"
            set _venvd_r_env ''
        else
            set -e VENVD_OFF
        end
    end
    if test -n "$ours" -a "$_venvd_r_env" = "$__venvd_fe"; and contains -- "$__venvd_fe/bin" $PATH
        return 0
    end
    if test -z "$ours" -a -n "$_venvd_r_env"
        if set -q VIRTUAL_ENV; or set -q VIRTUAL_ENV_PROMPT; or set -q PYTHONHOME
            return 1
        end
    end
    if test -n "$ours"
        set -l i (contains -i -- "$__venvd_fe/bin" $PATH)
        and set -e PATH[$i]
        set -e VIRTUAL_ENV
        set -e VIRTUAL_ENV_PROMPT
        set -e VENVD_STATE
        set -g __venvd_fs ''
        set -g __venvd_fe ''
        set -g __venvd_fp ''
    end
    if test -n "$_venvd_r_env"
        set -gx VIRTUAL_ENV $_venvd_r_env
        set -gx VIRTUAL_ENV_PROMPT $_venvd_r_prompt
        set -gx PATH "$_venvd_r_env/bin" $PATH
        set -gx VENVD_STATE "$fish_pid.$_venvd_r_blob"
        set -g __venvd_fs $VENVD_STATE
        set -g __venvd_fe $_venvd_r_env
        set -g __venvd_fp $_venvd_r_prompt
    end
    return 0
end
function __venvd_hook --on-event fish_prompt --on-variable PWD
    set -l venvd_status $status
    # for `venvd doctor`, a child process: this very shell runs the hook at its prompts
    test "$VENVD_HOOKED" = "fish:$fish_pid"; or set -gx VENVD_HOOKED "fish:$fish_pid"
    set -l g ''
    if test -O $__venvd_gen_file -a -r $__venvd_gen_file
        read g < $__venvd_gen_file
    end
    if test "$PWD" != "$__venvd_pwd" -o "$g" != "$__venvd_gen" -o "$VIRTUAL_ENV" != "$__venvd_ve"
            or begin; test -n "$__venvd_fe"; and not test -x "$__venvd_fe/bin/python"; end
            or begin; set -q VENVD_OFF; and test -O "$__venvd_wake$fish_pid"; end
        set -g __venvd_pwd $PWD
        if set -q VENVD_OFF; and test -O "$__venvd_wake$fish_pid"  # `venvd activate`
            set -e VENVD_OFF
        end
        if set -q VENVD_NO_FAST; or not __venvd_quiet $g; or not __venvd_fast
            set -l seen (string replace -r '.* ' '' -- $__venvd_gen)
            set -g __venvd_gen $g
            if test -x $__venvd_py
                %(command)s --seen "$seen" | source
            end
        else if test "$g" != "$__venvd_gen"
            __venvd_tell_news $g
            set -g __venvd_gen $g
        end
        set -g __venvd_ve "$VIRTUAL_ENV"
        if set -q VENVD_STATE; and not functions -q deactivate
            __venvd_define_deactivate
        end
    end
    return $venvd_status
end
function __venvd_deactivate
    if not test -x $__venvd_py
        echo "venvd: deactivate: $__venvd_py is missing" >&2
        return 1
    end
    set -l code (%(deactivate)s | string collect); or return 1
    printf '%%s\n' $code | source
    set -g __venvd_ve "$VIRTUAL_ENV"
end
function __venvd_define_deactivate
    function deactivate
        __venvd_deactivate $argv
    end
end
""" + r"""function __venvd_quiet --argument-names g
    test "$g" = "$__venvd_gen"; and return 0
    test -n "$__venvd_gen"; or return 1
    test (string replace -r ' .*' '' -- $g) = (string replace -r ' .*' '' -- $__venvd_gen)
end
function __venvd_tell_news --argument-names g
    set -g __venvd_nlo (string replace -r '.* ' '' -- $__venvd_gen)
    set -g __venvd_nhi (string replace -r '.* ' '' -- $g)
    string match -qr '^[0-9]+$' -- $__venvd_nlo; and string match -qr '^[0-9]+$' -- $__venvd_nhi
    or return 0
    test -n "$__venvd_froot" -a -O "$__venvd_news_file" -a -r "$__venvd_news_file"; or return 0
    # a folder whose snippet stands for an enclosing project hears that project's news
    set -g __venvd_nproj ''
    set -l mark "$__venvd_ready$__venvd_froot/.venvd-alias"
    test -r "$mark"; and read -z __venvd_nproj < "$mark"
    source "$__venvd_news_file"
end
function __venvd_news
    test $argv[1] -gt $__venvd_nlo -a $argv[1] -le $__venvd_nhi; or return 0
    # the shells that heard it from a command they ran: not again here
    contains -- $fish_pid $argv[4..-1]; and return 0
    if test "$argv[2]" = "$__venvd_froot"
            or test -n "$__venvd_nproj" -a "$argv[2]" = "$__venvd_nproj"
        printf 'venvd: %%s\n' $argv[3] >&2
    end
    return 0
end
"""


def quote(value: str) -> str:
    """Single-quote *value* for fish, where ``\\\\`` and ``\\'`` are the only escapes inside."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Fish(Shell):
    """fish 3+."""

    name = "fish"
    rc_file = "~/.config/fish/config.fish"
    snippet_suffix = "fish"

    def hook(self, config: HookConfig) -> str:
        words = (config.python, *config.export_argv, self.name)
        command = " ".join(
            [
                *(quote(w) for w in words),
                "--socket",
                quote(config.socket),
                "--state-db",
                quote(config.state_db),
                "--pid $fish_pid",
            ]
        )
        return _HOOK % {
            **posix.hook_paths(config, quote, "fish"),
            "markers": " ".join(quote(m) for m in config.markers) or "''",
            "command": command,
            "deactivate": command + " --action deactivate",
        }

    def export(self, changes: Changes) -> str:
        lines = []
        for name in sorted(changes):
            value = changes[name]
            if value is None:
                lines.append(f"set -e {check_name(name)};")
            elif name.endswith("PATH"):
                # fish keeps PATH (and every *PATH variable, such as a hand-activated venv's
                # _OLD_VIRTUAL_PATH) as a list; hand it over element by element.
                parts = " ".join(quote(p) for p in value.split(":"))
                lines.append(f"set -gx {check_name(name)} {parts};")
            else:
                lines.append(f"set -gx {check_name(name)} {quote(value)};")
        return "\n".join(lines) + ("\n" if lines else "")

    def quote(self, value: str) -> str:
        return quote(value)

    def remember(self, state: Optional[tuple[str, str, str]]) -> str:
        values = state or ("", "", "")
        return "".join(f"set -g {name} {quote(value)};" for name, value in
                       zip(("__venvd_fs", "__venvd_fe", "__venvd_fp"), values)) + "\n"

    def hook_line(self) -> str:
        return "venvd hook fish | source"

    def rc_block(self) -> str:
        return ("contains -- $HOME/.local/bin $PATH; or set -gx PATH $HOME/.local/bin $PATH\n"
                f"status is-interactive; and command -q venvd; and {self.hook_line()}")

    def snippet(self, values: Sequence[tuple[str, str]]) -> str:
        return "".join(f"set {check_name(n)} {quote(v)}\n" for n, v in values)

    def rc_paths(self, environ: Mapping[str, str]) -> list[str]:
        default = expand_home(self.rc_file, environ)
        config = environ.get("XDG_CONFIG_HOME")
        first = f"{config}/fish/config.fish" if config else default
        return [first] if first == default else [first, default]
