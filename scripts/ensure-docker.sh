#!/usr/bin/env bash
# Ensure a Docker engine answers on this machine. Usage: `bash scripts/ensure-docker.sh` (or `source` it).
# - Installs Debian's `docker.io` with apt-get when `dockerd` is missing (needs root).
# - Starts `dockerd --iptables=false --ip-forward=false` in the background when `docker info` fails,
#   logging to $NXS_DOCKERD_LOG (default /tmp/nxs-dockerd.log), pid in $NXS_DOCKERD_PIDFILE
#   (default /tmp/nxs-dockerd.pid).
# - Waits until `docker info` answers, at most $NXS_DOCKER_WAIT_S seconds (default 60).
# Idempotent: when an engine already answers it does nothing. Exits non-zero with the reason otherwise.
# Tests also need TESTCONTAINERS_RYUK_DISABLED=true and TESTCONTAINERS_HOST_OVERRIDE=localhost (exported
# here when sourced; .ci/run should export them itself too).
_nxs_docker_main() {
  local log="${NXS_DOCKERD_LOG:-/tmp/nxs-dockerd.log}"
  local wait_s="${NXS_DOCKER_WAIT_S:-60}"
  if docker info >/dev/null 2>&1; then
    echo "ensure-docker: engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))" >&2
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: dockerd not found; installing Debian's docker.io" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "ensure-docker: not root and no sudo: install docker.io yourself (apt-get install docker.io)" >&2
        return 1
      fi
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2; then
      echo "ensure-docker: apt-get install docker.io failed" >&2
      return 1
    fi
  fi
  if ! command -v docker >/dev/null 2>&1; then
    echo "ensure-docker: the docker CLI is missing (install docker.io or docker-cli)" >&2
    return 1
  fi
  local pidfile="${NXS_DOCKERD_PIDFILE:-/tmp/nxs-dockerd.pid}"
  local running=0
  if command -v pgrep >/dev/null 2>&1; then
    pgrep -x dockerd >/dev/null 2>&1 && running=1
  elif [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    running=1
  fi
  if [ "$running" -eq 0 ]; then
    echo "ensure-docker: starting dockerd --iptables=false --ip-forward=false (log: $log)" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    # setsid + nohup: the engine outlives this shell and the CI step that started it.
    $sudo setsid nohup dockerd --iptables=false --ip-forward=false >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  else
    echo "ensure-docker: dockerd is running but does not answer yet; waiting" >&2
  fi
  local i
  for ((i = 0; i < wait_s * 2; i++)); do
    if docker info >/dev/null 2>&1; then
      echo "ensure-docker: engine answers after ~$((i / 2)) s ($(docker version --format '{{.Server.Version}}' 2>/dev/null))" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "ensure-docker: no answer from the Docker engine after ${wait_s} s; last lines of $log:" >&2
  tail -n 20 "$log" >&2 2>/dev/null || true
  return 1
}
_nxs_docker_main
_nxs_docker_rc=$?
export TESTCONTAINERS_RYUK_DISABLED="${TESTCONTAINERS_RYUK_DISABLED:-true}"
export TESTCONTAINERS_HOST_OVERRIDE="${TESTCONTAINERS_HOST_OVERRIDE:-localhost}"
unset -f _nxs_docker_main
return "$_nxs_docker_rc" 2>/dev/null || exit "$_nxs_docker_rc"
