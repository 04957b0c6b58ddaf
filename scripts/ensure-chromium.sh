#!/usr/bin/env bash
# Ensure Debian's `chromium` is installed: the headless browser of the frontend failover test
# (packages/client/test/integration/browser.int.test.ts, driven by playwright-core at
# /usr/bin/chromium). Usage: `bash scripts/ensure-chromium.sh` (or `source` it).
# - Done at once when `chromium --version` answers.
# - Else `apt-get install --no-install-recommends chromium` (root or sudo); docs/testing.md has the
#   time measured.
# Idempotent. Exits non-zero with the reason when it cannot.
_nxs_chromium_main() {
  local have
  have="$(chromium --version 2>/dev/null || true)"
  if [ -n "$have" ]; then
    echo "ensure-chromium: $have ($(command -v chromium))" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "ensure-chromium: not root and no sudo: install Debian's chromium yourself" >&2
      return 1
    fi
  fi
  echo "ensure-chromium: installing Debian's chromium" >&2
  # Refresh the package lists only when the package is unknown (another step may have done it).
  if ! apt-cache show chromium >/dev/null 2>&1; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
  fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; then
    echo "ensure-chromium: apt-get install chromium failed" >&2
    return 1
  fi
  have="$(chromium --version 2>/dev/null || true)"
  if [ -z "$have" ]; then
    echo "ensure-chromium: chromium installed but does not answer \`chromium --version\`" >&2
    return 1
  fi
  echo "ensure-chromium: $have installed" >&2
}
_nxs_chromium_main
_nxs_chromium_rc=$?
unset -f _nxs_chromium_main
return "$_nxs_chromium_rc" 2>/dev/null || exit "$_nxs_chromium_rc"
