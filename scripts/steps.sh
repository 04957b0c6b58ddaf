#!/usr/bin/env bash
# Timed steps for .ci/run, scripts/test-all.sh, scripts/test-long.sh and scripts/check-fresh-clone.sh.
# Usage: `source scripts/steps.sh`, then `step NAME COMMAND [ARGS…]` (COMMAND may be a shell function
# or `source FILE`: it runs in the current shell) and, at the end, `step_summary [BUDGET_S]`.
# `step` prints `== NAME` before and `== NAME: 12.3 s` after (with the exit code when it failed) and
# returns the command's exit code. `step_summary` prints every step's time and the total; with a
# budget it also says how much of it was used, and returns 1 when the total is over it.
_nxs_step_lines=()
_nxs_step_t0="$(date +%s.%N)"

_nxs_secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

step() {
  local name="$1" t0 rc=0 took note=""
  shift
  printf '\n== %s\n' "$name" >&2
  t0="$(date +%s.%N)"
  "$@" || rc=$?
  took="$(_nxs_secs_since "$t0")"
  [ "$rc" -eq 0 ] || note=" (FAILED, exit $rc)"
  printf '== %s: %s s%s\n' "$name" "$took" "$note" >&2
  _nxs_step_lines+=("$(printf '%9s s  %s%s' "$took" "$name" "$note")")
  return "$rc"
}

step_summary() {
  local budget="${1:-}" total
  total="$(_nxs_secs_since "$_nxs_step_t0")"
  printf '\n== time per step\n' >&2
  printf '%s\n' "${_nxs_step_lines[@]}" >&2
  printf '%9s s  total\n' "$total" >&2
  if [ -n "$budget" ]; then
    if awk -v t="$total" -v b="$budget" 'BEGIN { exit !(t > b) }'; then
      printf '== over budget: %s s of %s s\n' "$total" "$budget" >&2
      return 1
    fi
    printf '== budget: %s s of %s s used\n' "$total" "$budget" >&2
  fi
}
