#!/bin/sh
# Install venvd for the current user: its own venv, a link in ~/.local/bin, the shell hooks.
#
#   ./install.sh                  install or upgrade in place
#   ./install.sh --no-modify-rc   install, leave ~/.bashrc, ~/.zshrc and config.fish alone
#   ./install.sh --uninstall      remove everything this script added
set -eu

usage() {
    cat <<'EOF'
usage: ./install.sh [--no-modify-rc | --uninstall | --help]

Installs venvd into its own virtualenv under ${XDG_DATA_HOME:-~/.local/share}/venvd/venv,
links ~/.local/bin/venvd, and adds the hook to the rc files of the shells you have
(inside a block marked '# >>> venvd >>>'). Running it again upgrades in place.

  --no-modify-rc   do not touch ~/.bashrc, ~/.zshrc or ~/.config/fish/config.fish
  --uninstall      remove the venv, the link and the rc blocks (stops the daemon first)
EOF
}

modify_rc=1
uninstall=0
for arg in "$@"; do
    case $arg in
        --no-modify-rc) modify_rc=0 ;;
        --uninstall) uninstall=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
venv=$data_home/venvd/venv
bin_dir=$HOME/.local/bin
link=$bin_dir/venvd
begin='# >>> venvd >>>'
end='# <<< venvd <<<'

say() { printf 'venvd: %s\n' "$*"; }

# Remove our marked block from a file, leaving everything else as it was.
strip_block() {
    file=$1
    [ -f "$file" ] || return 0
    grep -qF "$begin" "$file" || return 0
    tmp="$file.venvd-tmp.$$"
    awk -v b="$begin" -v e="$end" '
        $0 == b { skip = 1; next }
        $0 == e { skip = 0; next }
        !skip { print }
    ' "$file" >"$tmp"
    cat "$tmp" >"$file"   # keep the file's owner, mode and any symlink pointing at it
    rm -f "$tmp"
}

add_block() {
    file=$1
    body=$2
    mkdir -p "$(dirname "$file")"
    strip_block "$file"
    if [ -s "$file" ] && [ "$(tail -c 1 "$file" | od -An -c | tr -d ' ')" != '\n' ]; then
        printf '\n' >>"$file"
    fi
    printf '%s\n%s\n%s\n' "$begin" "$body" "$end" >>"$file"
    say "added the hook to $file"
}

rc_files() {
    printf '%s\n' "$HOME/.bashrc" "$HOME/.zshrc" "${XDG_CONFIG_HOME:-$HOME/.config}/fish/config.fish"
}

if [ "$uninstall" = 1 ]; then
    if [ -x "$venv/bin/venvd" ]; then
        "$venv/bin/venvd" daemon stop >/dev/null 2>&1 || true
    fi
    rc_files | while IFS= read -r file; do
        if [ -f "$file" ] && grep -qF "$begin" "$file"; then
            strip_block "$file"
            say "removed the hook from $file"
        fi
    done
    if [ -L "$link" ] || [ -e "$link" ]; then
        rm -f "$link"
        say "removed $link"
    fi
    if [ -d "$venv" ]; then
        rm -rf "$venv"
        rmdir "$data_home/venvd" 2>/dev/null || true
        say "removed $venv"
    fi
    say "uninstalled (your projects' .venv folders and venvd's state are left as they were)"
    exit 0
fi

# An interpreter of its own: never the venv someone has active, never a pyenv shim's choice
# of the moment when a real interpreter is at hand.
unset VIRTUAL_ENV PYTHONHOME PYTHONPATH CONDA_PREFIX 2>/dev/null || true
find_python() {
    if [ -n "${VENVD_PYTHON:-}" ]; then
        printf '%s\n' "$VENVD_PYTHON"
        return 0
    fi
    for name in python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
        candidate=$(command -v "$name" 2>/dev/null) || continue
        real=$("$candidate" -c 'import sys
if sys.version_info >= (3, 9) and sys.prefix == sys.base_prefix:
    print(sys.executable)' 2>/dev/null) || continue
        if [ -n "$real" ]; then
            printf '%s\n' "$real"
            return 0
        fi
    done
    return 1
}
python=$(find_python) || {
    echo "install.sh: venvd needs Python 3.9 or newer (set VENVD_PYTHON to one)" >&2
    exit 1
}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "upgrading the install in $venv"
else
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    say "created $venv (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$here"
# the same version number must still replace the old files: reinstall venvd itself
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"
say "installed $("$venv/bin/venvd" --version 2>/dev/null || echo venvd) into $venv"

mkdir -p "$bin_dir"
ln -sfn "$venv/bin/venvd" "$link"
say "linked $link"

if [ "$modify_rc" = 1 ]; then
    # shellcheck disable=SC2016 # these lines are written into rc files, unexpanded
    posix_path='case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) PATH="$HOME/.local/bin:$PATH" ;; esac'
    if command -v bash >/dev/null 2>&1; then
        # shellcheck disable=SC2016
        add_block "$HOME/.bashrc" "$posix_path
command -v venvd >/dev/null 2>&1 && eval \"\$(venvd hook bash)\""
    fi
    if command -v zsh >/dev/null 2>&1; then
        add_block "$HOME/.zshrc" "$posix_path
command -v venvd >/dev/null 2>&1 && eval \"\$(venvd hook zsh)\""
    fi
    if command -v fish >/dev/null 2>&1; then
        add_block "${XDG_CONFIG_HOME:-$HOME/.config}/fish/config.fish" 'contains -- $HOME/.local/bin $PATH; or set -gx PATH $HOME/.local/bin $PATH
command -q venvd; and venvd hook fish | source'
    fi
else
    say "left your rc files alone (--no-modify-rc); the hook lines are in README.md"
fi

say "done. Next: open a new shell, cd into a project and run 'venvd allow'"
