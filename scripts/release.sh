#!/usr/bin/env bash
# Release tooling (changesets; see .changeset/README.md). Usage:
#   bash scripts/release.sh version              # = npm run version-packages
#   bash scripts/release.sh pack [DIR]           # = npm run pack:tarballs [-- DIR]
#   bash scripts/release.sh publish [--dry-run]  # = npm run release [-- --dry-run]
# `version` turns the pending changesets into versions, CHANGELOG.md entries and the matching
# package-lock.json; review and commit the result.
# `pack` builds, runs the package checks and packs every publishable package into DIR (default: a
# new temp dir), the way to install them before they are on the npm registry (README, "Install").
# `publish` builds, runs the package checks with --release (which refuse version 0.0.0 and
# mismatched sibling versions), then `changeset publish` (npm publish of every package whose
# version is not on the registry yet, and git tags); `--dry-run` packs instead of publishing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export NXS_BOOTSTRAP_POCKETBASE=0
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
unset NXS_BOOTSTRAP_POCKETBASE
export PATH="$root/node_modules/.bin:$PATH"

pack_into() {
  local out="$1" dir
  mkdir -p "$out"
  for dir in packages/*/; do
    if node -e 'process.exit(require(process.argv[1]).private ? 1 : 0)' "$root/${dir}package.json"; then
      (cd "$dir" && npm pack --silent --pack-destination "$out" >/dev/null)
    fi
  done
  echo "release: tarballs in $out:" >&2
  ls "$out"/*.tgz
}

case "${1:-}" in
  version)
    changeset version
    npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "release: versions set; review the package.json and CHANGELOG.md changes and commit them" >&2
    ;;
  pack)
    out="${2:-$(mktemp -d)}"
    mkdir -p "$out" && out="$(cd "$out" && pwd)"
    npm run build --silent
    node scripts/check-packages.mjs
    pack_into "$out"
    ;;
  publish)
    npm run build --silent
    node scripts/check-packages.mjs --release
    if [ "${2:-}" = "--dry-run" ]; then
      pack_into "$(mktemp -d)"
      echo "release: dry run, nothing published" >&2
    else
      changeset publish
    fi
    ;;
  *)
    echo "usage: bash scripts/release.sh version | pack [DIR] | publish [--dry-run]" >&2
    exit 2
    ;;
esac
