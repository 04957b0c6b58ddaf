#!/usr/bin/env bash
# Ensure `kubernetes-validate` (PyPI, pinned) is installed: the offline, strict check of the K3s
# manifests in examples/k3s (examples/k3s/test/manifests.int.test.ts). It bundles the official
# Kubernetes JSON schemas, so the check needs no network; installing it needs PyPI once.
# Usage: `bash scripts/ensure-kubernetes-validate.sh` (or `source` it).
# - Done at once when `kubernetes-validate` on PATH, or the one in the venv below, is the pinned
#   version (the test looks in the same places, in that order after $NXS_KUBERNETES_VALIDATE).
# - Else installs it into a venv, $NXS_KV_VENV (default ~/.cache/nxs-sync/kubernetes-validate-VERSION):
#   no system Python packages are touched (Debian's Python refuses a plain `pip install`, PEP 668).
#   When `python3 -m venv` is unavailable it installs Debian's python3-venv with apt-get (root or sudo).
# Exits non-zero with the reason when it cannot.
_nxs_kv_main() {
  local version="1.37.0"
  local venv="${NXS_KV_VENV:-$HOME/.cache/nxs-sync/kubernetes-validate-$version}"
  local have
  have="$(kubernetes-validate --version 2>/dev/null || true)"
  if [ "$have" = "$version" ]; then
    echo "ensure-kubernetes-validate: $version on PATH ($(command -v kubernetes-validate))" >&2
    return 0
  fi
  have="$("$venv/bin/kubernetes-validate" --version 2>/dev/null || true)"
  if [ "$have" = "$version" ]; then
    echo "ensure-kubernetes-validate: $version in $venv" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "ensure-kubernetes-validate: python3 missing; installing Debian's python3 and python3-venv" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2 ||
      { echo "ensure-kubernetes-validate: apt-get install python3 python3-venv failed" >&2; return 1; }
  fi
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "ensure-kubernetes-validate: python3 -m venv failed; installing Debian's python3-venv" >&2
    rm -rf "$venv"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2 ||
      { echo "ensure-kubernetes-validate: apt-get install python3-venv failed" >&2; return 1; }
    python3 -m venv "$venv" >&2 || { echo "ensure-kubernetes-validate: python3 -m venv $venv failed" >&2; return 1; }
  fi
  echo "ensure-kubernetes-validate: pip install kubernetes-validate==$version into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version" >&2 ||
    { echo "ensure-kubernetes-validate: pip install kubernetes-validate==$version failed" >&2; return 1; }
  have="$("$venv/bin/kubernetes-validate" --version 2>/dev/null || true)"
  [ "$have" = "$version" ] ||
    { echo "ensure-kubernetes-validate: installed, but $venv/bin/kubernetes-validate --version says '$have'" >&2; return 1; }
  echo "ensure-kubernetes-validate: $version installed in $venv" >&2
}
_nxs_kv_main
_nxs_kv_rc=$?
unset -f _nxs_kv_main
return "$_nxs_kv_rc" 2>/dev/null || exit "$_nxs_kv_rc"
