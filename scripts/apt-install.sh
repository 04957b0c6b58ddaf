#!/usr/bin/env bash
# Sourced by the scripts/ensure-*.sh that install a Debian package: `nxs_apt_install TAG PKG...`
# installs the packages with apt-get (--no-install-recommends), as root or through sudo, refreshing
# the package lists only when one of them is unknown (another step may have refreshed them).
# Returns non-zero, with the reason on stderr prefixed by TAG, when it cannot.
nxs_apt_install() {
  local tag="$1"
  shift
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "$tag: not root and no sudo: apt-get install $* yourself" >&2
      return 1
    fi
  fi
  echo "$tag: installing Debian's $*" >&2
  if ! apt-cache show "$@" >/dev/null 2>&1; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
  fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; then
    echo "$tag: apt-get install $* failed" >&2
    return 1
  fi
}
