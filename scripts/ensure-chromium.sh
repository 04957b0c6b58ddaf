#!/usr/bin/env bash
# Ensure Debian's `chromium` is installed: the headless browser of the frontend failover test
# (packages/client/test/integration/browser.int.test.ts, driven by playwright-core at
# /usr/bin/chromium). Usage: `bash scripts/ensure-chromium.sh` (or `source` it).
# - Done at once when `chromium --version` answers.
# - Else `apt-get install --no-install-recommends chromium` (root or sudo); docs/testing.md has the
#   time measured.
# Idempotent. Exits non-zero with the reason when it cannot.
# shellcheck source=scripts/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
_nxs_chromium_main() {
  local have
  have="$(chromium --version 2>/dev/null || true)"
  if [ -n "$have" ]; then
    echo "ensure-chromium: $have ($(command -v chromium))" >&2
    return 0
  fi
  nxs_apt_install ensure-chromium chromium || return 1
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
