#!/usr/bin/env bash
# Ensure Docker Compose v1 (`docker-compose`, Debian's package, 1.29.x) is installed: the engine of
# examples/compose and of its test (examples/compose/test/compose.int.test.ts). Compose v2 is not
# packaged in Debian 12 (../shared/DEPLOY.md §1); the Compose files keep to syntax both understand.
# Usage: `bash scripts/ensure-compose.sh` (or `source` it). Run after scripts/ensure-docker.sh.
# - Done at once when `docker-compose version` answers.
# - Else `apt-get install --no-install-recommends docker-compose` (root or sudo): about 25-35 s.
# Idempotent. Exits non-zero with the reason when it cannot.
# shellcheck source=scripts/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
_nxs_compose_main() {
  local have
  have="$(docker-compose version --short 2>/dev/null || true)"
  if [ -n "$have" ]; then
    echo "ensure-compose: docker-compose $have ($(command -v docker-compose))" >&2
    return 0
  fi
  nxs_apt_install ensure-compose docker-compose || return 1
  have="$(docker-compose version --short 2>/dev/null || true)"
  if [ -z "$have" ]; then
    echo "ensure-compose: docker-compose installed but does not answer \`docker-compose version\`" >&2
    return 1
  fi
  echo "ensure-compose: docker-compose $have installed" >&2
}
_nxs_compose_main
_nxs_compose_rc=$?
unset -f _nxs_compose_main
return "$_nxs_compose_rc" 2>/dev/null || exit "$_nxs_compose_rc"
