#!/bin/sh
# Install venvd for the current user: its own venv, a link in ~/.local/bin, the shell hooks.
#
#   ./install.sh                  install or upgrade in place
#   ./install.sh --no-modify-rc   install, leave every shell's rc file alone
#   ./install.sh --uninstall      remove everything this script added, give projects back
#   ./install.sh --uninstall --purge   ... and delete venvd's envs, state, logs and settings
set -eu

usage() {
    cat <<'EOF'
usage: ./install.sh [--no-modify-rc | --uninstall [--purge] | --help]

Installs venvd into its own virtualenv under ${XDG_DATA_HOME:-~/.local/share}/venvd/venv,
links ~/.local/bin/venvd, installs tab completions for bash, zsh and fish, and adds the
hook to the rc files of the shells you have (inside a block marked '# >>> venvd >>>').
Running it again upgrades in place.

  --no-modify-rc   do not touch any shell's rc file (~/.bashrc, ~/.tcshrc, ...)
  --uninstall      stop the daemon; remove the venv, the link, the completions and the rc
                   blocks; give every project back its own .venv (venvd's .venv links
                   removed, a .venv it moved aside put back); list venvd's data with sizes
  --purge          with --uninstall: delete that data too (envs, state, logs, runtime
                   files, settings)
  -h, --help       show this help

Environment: VENVD_PYTHON picks the interpreter (default: the newest python3.13 ... python3.9,
or python3, that is not itself inside a venv).
EOF
}

modify_rc=1
uninstall=0
purge=0
for arg in "$@"; do
    case $arg in
        --no-modify-rc) modify_rc=0 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done
if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
    echo "install.sh: --purge goes with --uninstall" >&2; usage >&2; exit 2
fi

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
venv=$data_home/venvd/venv
bin_dir=$HOME/.local/bin
link=$bin_dir/venvd
begin='# >>> venvd >>>'
end='# <<< venvd <<<'
# the files and folders this script created, one a line: --uninstall removes them once
# they are empty again (an rc file it made, ~/.local/bin, ...)
created=$data_home/venvd/install-created
# the files it added a block to, one a line: --uninstall finds them even when venvd no longer runs
blocks=$data_home/venvd/install-blocks
# in every completion script venvd writes (venvd.client.completions.MARK)
completion_mark='# venvd completions (./install.sh wrote this file; --uninstall removes it)'

say() { printf 'venvd: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Remove our marked block(s) from a file, leaving everything else as it was. A begin marker
# without its end marker (a hand-edited file) is left in place with what follows it.
strip_block() {
    file=$1
    [ -f "$file" ] || return 0
    grep -qxF "$begin" "$file" || return 0
    tmp="$file.venvd-tmp.$$"
    awk -v b="$begin" -v e="$end" '
        $0 == b { if (skip) printf "%s", held; skip = 1; held = $0 "\n"; next }
        skip { held = held $0 "\n"; if ($0 == e) { skip = 0; held = "" }; next }
        { print }
        END { if (skip) printf "%s", held }
    ' "$file" >"$tmp"
    cat "$tmp" >"$file"   # keep the file's owner, mode and any symlink pointing at it
    rm -f "$tmp"
}

# note LIST LINE: add LINE to the list file LIST, once
note() {
    mkdir -p "$(dirname "$1")"
    grep -qxF "$2" "$1" 2>/dev/null || printf '%s\n' "$2" >>"$1"
}
note_created() { note "$created" "$1"; }

# mkdir -p, noting each folder it makes
make_dir() {
    missing=
    d=$1
    while [ ! -d "$d" ] && [ "$d" != / ] && [ "$d" != . ]; do
        missing="$d
$missing"
        d=$(dirname "$d")
    done
    mkdir -p "$1"
    printf '%s' "$missing" | while IFS= read -r d; do
        [ -z "$d" ] || note_created "$d"
    done
}

# add_block FILE BODY [WHAT]: put BODY in FILE between our markers (replacing an older block)
add_block() {
    file=$1
    body=$2
    what=${3:-the hook}
    make_dir "$(dirname "$file")"
    [ -e "$file" ] || { : >"$file"; note_created "$file"; }
    if [ -f "$file" ] && grep -qxF "$begin" "$file"; then
        verb="updated $what in"
        strip_block "$file"
    else
        verb="added $what to"
    fi
    if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then
        printf '\n' >>"$file"   # the file did not end with a newline
    fi
    printf '%s\n%s\n%s\n' "$begin" "$body" "$end" >>"$file"
    note "$blocks" "$file"
    say "$verb $file"
}

# The shells venvd supports and their rc files come from venvd itself (`venvd hook --list`:
# NAME<tab>FILE<tab>HOOK-LINE lines, the file to add the hook to first), so this script has
# no list of its own.
shells() {
    "$venv/bin/venvd" hook --list
}

# Is $link the link this script made?
our_link() {
    [ -L "$link" ] && [ "$(readlink "$link")" = "$venv/bin/venvd" ]
}

# The files a login bash looks for, one a line: it reads the first that exists, and not
# ~/.bashrc unless that file says so.
login_files=$(printf '%s\n' "$HOME/.bash_profile" "$HOME/.bash_login" "$HOME/.profile")

# Remove the files and folders this script created that are empty again (an rc file left
# with nothing but our block, ~/.local/bin), the deepest first.
remove_created() {
    [ -n "$1" ] || return 0
    printf '%s\n' "$1" | sort -r | while IFS= read -r path; do
        if [ -d "$path" ] && [ ! -L "$path" ]; then
            rmdir "$path" 2>/dev/null || true
        elif [ -f "$path" ] && [ ! -L "$path" ] && ! grep -q '[^[:space:]]' "$path"; then
            rm -f "$path"
            say "removed $path (venvd made it; it is empty now)"
        elif [ -f "$path" ] && grep -qxF "$completion_mark" "$path"; then
            rm -f "$path"
            say "removed $path"
        fi
    done
}

if [ "$uninstall" = 1 ]; then
    if [ -x "$venv/bin/venvd" ] && "$venv/bin/venvd" daemon status >/dev/null 2>&1; then
        "$venv/bin/venvd" daemon stop >/dev/null 2>&1 || true
        say "stopped the daemon"
    fi
    # The hook of a shell still open runs $venv/bin/python by its path, and would start the
    # daemon again (which would put the projects' links back): renamed, the venv is out of
    # its reach, and venvd runs from the new name until it is removed.
    leaving=$venv.uninstalling
    if [ -d "$venv" ]; then
        rm -rf "$leaving"
        mv "$venv" "$leaving"
    fi
    old_venvd() { "$leaving/bin/python" -m venvd.client "$@"; }
    if our_link; then
        rm -f "$link"
        say "removed $link"
    elif [ -e "$link" ] || [ -L "$link" ]; then
        say "left $link alone (it is not a link into $venv)"
    fi
    listing='' completions='' report=''
    if [ -x "$leaving/bin/python" ] && listing=$(old_venvd hook --list); then
        completions=$(old_venvd completions --list) || completions=
        # printed last, where a person reads it: what became of the projects and the data
        if [ "$purge" = 1 ]; then
            report=$(old_venvd forget --all --purge --keep "$leaving" --keep "$created" \
                --keep "$blocks" 2>&1) || report="$report
venvd: could not give every project back or remove venvd's data (see above)"
        else
            report=$(old_venvd forget --all --keep "$leaving" --keep "$created" \
                --keep "$blocks" 2>&1) || report="$report
venvd: could not give every project back (see above)"
        fi
    else
        say "venvd in $venv does not run: your projects' .venv links, its service, Jupyter kernels and data are left as they were"
    fi
    { printf '%s\n' "$listing" | cut -f 2; printf '%s\n' "$login_files"; cat "$blocks" 2>/dev/null; } \
        | while IFS= read -r file; do
            if [ -n "$file" ] && [ -f "$file" ] && grep -qxF "$begin" "$file"; then
                strip_block "$file"
                say "removed venvd's block from $file"
            fi
        done
    printf '%s\n' "$completions" | while IFS='	' read -r _ file; do
        if [ -n "$file" ] && [ -f "$file" ] && grep -qxF "$completion_mark" "$file"; then
            rm -f "$file"
            say "removed $file"
        fi
    done
    made=$(cat "$created" 2>/dev/null) || made=
    rm -f "$created" "$blocks"
    if [ -d "$leaving" ]; then
        rm -rf "$leaving"
        say "removed $venv"
    fi
    remove_created "$made"
    rmdir "$data_home/venvd" 2>/dev/null || true
    [ -z "$report" ] || printf '%s\n' "$report"
    say "uninstalled (a shell still open keeps the hook until it exits)"
    exit 0
fi

# An interpreter of its own: never the venv someone has active, never pip settings that would
# send the install elsewhere, and a real interpreter rather than a pyenv shim.
unset VIRTUAL_ENV PYTHONHOME PYTHONPATH CONDA_PREFIX PIP_USER PIP_TARGET PIP_PREFIX
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# Print the real executable of a Python >= 3.9 that is not inside a venv and can make venvs.
real_python() {
    "$1" -c 'import sys
if sys.version_info >= (3, 9) and sys.prefix == sys.base_prefix:
    import ensurepip, venv
    print(sys.executable)' 2>/dev/null
}

find_python() {
    for name in python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
        candidate=$(command -v "$name" 2>/dev/null) || continue
        real=$(real_python "$candidate") || continue
        if [ -n "$real" ]; then
            printf '%s\n' "$real"
            return 0
        fi
    done
    return 1
}
if [ -n "${VENVD_PYTHON:-}" ]; then
    python=$(real_python "$VENVD_PYTHON") || python=
    [ -n "$python" ] \
        || die "VENVD_PYTHON=$VENVD_PYTHON is not a Python 3.9+ (outside any venv, with the venv module)"
else
    python=$(find_python) || die "venvd needs Python 3.9 or newer with the venv module \
(set VENVD_PYTHON to one; on Debian or Ubuntu: apt-get install python3-venv)"
fi

# Stop a running daemon first: its modules are about to be replaced (the next prompt starts
# the new one).
if [ -x "$venv/bin/venvd" ] && "$venv/bin/venvd" daemon status >/dev/null 2>&1; then
    "$venv/bin/venvd" daemon stop >/dev/null 2>&1 || true
    say "stopped the running daemon (the next prompt starts the new one)"
fi

# Keep the venv when it is healthy and made from the same interpreter; else make it anew.
python_id='import platform, sys; print(platform.python_version(), sys.base_prefix)'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1 \
    && [ "$("$venv/bin/python" -c "$python_id")" = "$("$python" -c "$python_id")" ]; then
    say "upgrading the install in $venv"
else
    rm -rf "$venv"
    make_dir "$(dirname "$venv")"
    "$python" -m venv "$venv" || { rm -rf "$venv"; die "could not create $venv with $python"; }
    say "created $venv (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
fi

# Build from a clean copy of the source: an in-tree build would write build/ and *.egg-info
# into the checkout, and files left in build/ by an older checkout would end up installed.
work=$(mktemp -d "${TMPDIR:-/tmp}/venvd-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
"$venv/bin/python" - "$here" "$work/src" <<'EOF'
import shutil, sys
src, dst = sys.argv[1], sys.argv[2]
top = {".git", ".tests-venv", ".venv", "build", "dist", "bench", ".mypy_cache", ".ruff_cache",
       ".pytest_cache"}
def ignore(folder, names):
    return [n for n in names if (folder == src and n in top) or n == "__pycache__"
            or n.endswith(".egg-info")]
shutil.copytree(src, dst, symlinks=True, ignore=ignore)
EOF
pip() { "$venv/bin/python" -m pip --quiet "$@"; }
pip install --upgrade pip >/dev/null 2>&1 || true
pip wheel --no-deps --wheel-dir "$work/dist" "$work/src" >/dev/null
set -- "$work"/dist/venvd-*.whl
[ -f "$1" ] || die "building the venvd wheel failed"
# venvd and its dependencies, with shtab for the completions; without it if it cannot be had
pip install --upgrade "$1[completions]" 2>/dev/null || pip install --upgrade "$1"
pip install --force-reinstall --no-deps "$1"  # the same version number still replaces the files
# the command starts as lean as the hooks' client (python -I -S), over pip's console script
"$venv/bin/python" -I -m venvd.client.launcher "$venv/bin/venvd" \
    || say "kept pip's venvd command (a slower start)"
say "installed $("$venv/bin/venvd" --version 2>/dev/null || echo venvd) into $venv"

make_dir "$bin_dir"
ln -sfn "$venv/bin/venvd" "$link"
say "linked $link -> $venv/bin/venvd"

# Tab completions, made from venvd's own command definition, for each shell that is here,
# in the folder that shell loads them from (zsh: a folder the rc block puts on fpath).
install_completions() {
    "$venv/bin/venvd" completions --list >"$work/completions" \
        || { say "could not make the tab completions (venvd completions --list failed)"; return 0; }
    while IFS='	' read -r name file; do
        command -v "$name" >/dev/null 2>&1 || continue
        if [ -e "$file" ] && ! grep -qxF "$completion_mark" "$file"; then
            say "left $file alone (venvd did not write it): no $name completions"
            continue
        fi
        new=0
        [ -e "$file" ] || new=1
        make_dir "$(dirname "$file")"
        if ! "$venv/bin/venvd" completions "$name" >"$work/script"; then
            say "could not make the $name completions"
            continue
        fi
        cat "$work/script" >"$file"
        [ "$new" = 0 ] || note_created "$file"
        say "installed the $name completions in $file"
    done <"$work/completions"
}
install_completions

# A login bash (a console, ssh, macOS Terminal) reads the first of $login_files, and not
# ~/.bashrc unless that file says so: with none of them there, one is made that does, as
# Debian's default ~/.profile; with one that does not, the user is told what to add.
login_bash() {
    bashrc=$1
    while IFS= read -r profile; do
        [ -f "$profile" ] || continue
        grep -q 'bashrc' "$profile" || say "a login bash reads $profile, which does not read \
$bashrc (where the hook is): add this line to $profile: [ -f ~/.bashrc ] && . ~/.bashrc"
        return 0
    done <<EOF
$login_files
EOF
    # shellcheck disable=SC2016 # written for the login shell to expand
    add_block "$HOME/.profile" '# a login bash reads this file, not ~/.bashrc (where the hook is)
if [ -n "${BASH_VERSION:-}" ]; then
    case $- in *i*) [ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc" ;; esac
fi' "a block reading ~/.bashrc (for a login bash)"
}

hooked=0
listing=$(shells) || die "venvd hook --list failed"
if [ "$modify_rc" = 1 ]; then
    seen=' '
    # a here-document, not a pipe: the loop sets $hooked for what follows
    while IFS='	' read -r name file _; do
        case $seen in *" $name "*) continue ;; esac   # only its first file gets the hook
        seen="$seen$name "
        command -v "$name" >/dev/null 2>&1 || continue
        add_block "$file" "$("$venv/bin/venvd" hook "$name" --rc-block)"
        [ "$name" != bash ] || [ "$file" != "$HOME/.bashrc" ] || login_bash "$file"
        hooked=1
    done <<EOF
$listing
EOF
    [ "$hooked" = 1 ] || say "found none of the shells venvd hooks: no rc file changed"
else
    say "left your rc files alone (--no-modify-rc)"
fi

if [ "$hooked" = 1 ]; then
    # shellcheck disable=SC2016 # printed for the user to type
    say 'Next: open a new shell (or run: exec $SHELL), then cd into a project and run: venvd allow'
else
    # the user's login shell, else the first one venvd knows
    login=${SHELL:-}
    entry=$(printf '%s\n' "$listing" | awk -F '\t' -v s="${login##*/}" '$1 == s { print; exit }')
    [ -n "$entry" ] || entry=$(printf '%s\n' "$listing" | head -n 1)
    IFS='	' read -r _ file hook_line <<EOF
$entry
EOF
    line="$hook_line' to $file"
    case ":$PATH:" in
        *":$bin_dir:"*) ;;
        *) line="$line (with $bin_dir on your PATH)" ;;
    esac
    say "Next: add the line '$line, open a new shell, then cd into a project and run: venvd allow"
fi
