#!/usr/bin/env bash
# Ensure Docker Compose v1 (`docker-compose`, Debian's package, 1.29.x) is installed: the engine of
# examples/compose and of its test (examples/compose/test/compose.int.test.ts). Compose v2 is not
# packaged in Debian 12 (../shared/DEPLOY.md §1); the Compose files keep to syntax both understand.
# Usage: `bash scripts/ensure-compose.sh` (or `source` it). Run after scripts/ensure-docker.sh.
# - Done at once when `docker-compose version` answers.
# - Else `apt-get install --no-install-recommends docker-compose` (root or sudo): about 25-35 s.
# Idempotent. Exits non-zero with the reason when it cannot.
_nxs_compose_main() {
  local have
  have="$(docker-compose version --short 2>/dev/null || true)"
  if [ -n "$have" ]; then
    echo "ensure-compose: docker-compose $have ($(command -v docker-compose))" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "ensure-compose: not root and no sudo: install Debian's docker-compose yourself" >&2
      return 1
    fi
  fi
  echo "ensure-compose: installing Debian's docker-compose (v1)" >&2
  # The package lists may be fresh already (ensure-docker.sh ran apt-get update); refresh only when
  # the package is unknown.
  if ! apt-cache show docker-compose >/dev/null 2>&1; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
  fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >&2; then
    echo "ensure-compose: apt-get install docker-compose failed" >&2
    return 1
  fi
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
