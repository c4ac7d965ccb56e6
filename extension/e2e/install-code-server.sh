#!/usr/bin/env bash
# Installs code-server 4.99.4 (VS Code 1.99) and Debian's Chromium for the opt-in end-to-end test,
# offline apart from the npm registry and apt (code-server's own post-install downloads from GitHub,
# so its scripts are skipped and the native modules rebuilt by hand). Idempotent; about 6+ minutes.
# Usage: extension/e2e/install-code-server.sh [install-dir]   (default: extension/e2e/.code-server)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/.code-server}"
entry="$dest/node_modules/code-server/out/node/entry.js"

if [ -f "$dest/.installed" ]; then
  echo "code-server already installed in $dest"
  exit 0
fi

need=()
for pkg in chromium ripgrep libkrb5-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name":"code-server-e2e","private":true}' > package.json
npm install --no-audit --no-fund --ignore-scripts code-server@4.99.4
cd node_modules/code-server/lib/vscode
npm install --omit=dev --ignore-scripts --no-audit --no-fund
mkdir -p node_modules/@vscode/ripgrep/bin && cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm_config_yes=true npm rebuild --foreground-scripts
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
(cd extensions && npm install --omit=dev --no-audit --no-fund)
cd "$dest"
npm_config_yes=true npm rebuild argon2 --foreground-scripts
node "$entry" --version
touch "$dest/.installed"
echo "code-server installed in $dest"
