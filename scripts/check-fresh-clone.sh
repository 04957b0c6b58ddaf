#!/usr/bin/env bash
# Clones the repository (its committed HEAD) into a temp dir and runs every top-level npm script
# there as a new user would: the system's tools first on PATH (/usr/bin, with this machine's old
# Node 20), no .tools/node or node_modules/.bin of this checkout on PATH, no POCKETBASE_BIN (the
# per-user cache or a go build supplies it), no npm_* variables of an outer `npm run`.
# Slow scripts run in a short mode (below). A script of package.json with no case here fails the
# check, so a new script must say how it is checked. Also installs the packed tarballs into an
# empty app, as the README's "Install" says, and imports them.
# Usage: bash scripts/check-fresh-clone.sh [--with-test] [--keep]
#   --with-test  also runs `npm test` in full (~7 min; `npm run test:long` passes it)
#   --keep       keeps the clone (its path is printed) instead of deleting it
# Logs: one per script in <clone dir>/logs, the tail printed when a script fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
with_test=0
keep=0
for arg in "$@"; do
  case "$arg" in
    --with-test) with_test=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: bash scripts/check-fresh-clone.sh [--with-test] [--keep]" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/steps.sh
source "$root/scripts/steps.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/nxs-fresh-clone.XXXXXX")"
cleanup() { if [ "$keep" -eq 1 ]; then echo "fresh-clone: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
git clone -q "$root" "$work/repo"
mkdir -p "$work/logs"
cd "$work/repo"
echo "fresh-clone: $(git log --oneline -1) in $work/repo" >&2

# A new user's environment.
clean_path="/usr/bin:/bin"
IFS=: read -r -a parts <<<"$PATH"
for p in "${parts[@]}"; do
  case "$p" in
    */.tools/node/bin | */node_modules/.bin | /usr/bin | /bin | "") ;;
    *) clean_path="$clean_path:$p" ;;
  esac
done
export PATH="$clean_path"
unset POCKETBASE_BIN INIT_CWD
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^npm_' || true)
echo "fresh-clone: node $(node --version 2>/dev/null || echo missing) first on PATH" >&2

failed=0
# run NAME EXPECT COMMAND…: runs COMMAND with its output in logs/NAME.log; EXPECT is "ok" (exit 0)
# or "refused" (a non-zero exit, e.g. `release` on version 0.0.0).
run() {
  local name="$1" expect="$2" log rc=0
  shift 2
  log="$work/logs/${name//[^a-zA-Z0-9_.-]/_}.log"
  "$@" >"$log" 2>&1 || rc=$?
  if { [ "$expect" = ok ] && [ "$rc" -eq 0 ]; } || { [ "$expect" = refused ] && [ "$rc" -ne 0 ]; }; then
    return 0
  fi
  echo "fresh-clone: \`$*\` exited $rc (expected $expect); last lines of $log:" >&2
  tail -n 40 "$log" >&2
  return 1
}
check() { step "npm run $1" run "$@" || failed=1; }

mapfile -t scripts < <(node -e 'for (const s of Object.keys(require("./package.json").scripts)) console.log(s)')
later=()
for s in "${scripts[@]}"; do
  case "$s" in
    build | typecheck | lint | cycles | pack:check | pocketbase:install | nats:install | test:unit)
      check "$s" ok npm run "$s" ;;
    format) check "$s" ok npm run format ;;
    changeset) check "$s" ok npm run changeset -- status ;;
    test:int) check "$s" ok npm run test:int -- packages/testing/test/integration/superuser-password.int.test.ts ;;
    test)
      if [ "$with_test" -eq 1 ]; then check "$s" ok npm test; else echo "fresh-clone: npm test skipped (pass --with-test)" >&2; fi ;;
    test:long) check "$s" ok npm run test:long -- --short ;;
    demo) check "$s" ok npm run demo ;;
    bench) check "$s" ok npm run bench -- core --runs 1 --only 'full-state-bytes$' --out "$work/bench-core.json" ;;
    chaos) check "$s" ok npm run chaos -- --seed 5 --seconds 10 --quiet ;;
    # Writes this release's migration into the clone, checks that one file was added, removes it.
    gen-migration)
      check "$s" ok bash -c 'npm run gen-migration -- "fresh-clone check" &&
        test "$(git status --porcelain -- packages/pocketbase/migrations | grep -c "^??")" = 1 &&
        git clean -fq -- packages/pocketbase/migrations' ;;
    pack:tarballs | release | version-packages) later+=("$s") ;; # in the order below
    *)
      echo "fresh-clone: no case for the npm script \"$s\": add one to scripts/check-fresh-clone.sh" >&2
      failed=1 ;;
  esac
done

# The packages as the README installs them today: tarballs, into an empty app, imported there.
install_tarballs() {
  local app="$work/app"
  npm run pack:tarballs -- "$work/tarballs" &&
    mkdir -p "$app" && cd "$app" && npm init -y >/dev/null &&
    npm pkg set type=module >/dev/null &&
    PATH="$work/repo/.tools/node/bin:$PATH" npm install --no-audit --no-fund --loglevel=error \
      "$work"/tarballs/nxs-sync-core-*.tgz "$work"/tarballs/nxs-sync-pocketbase-*.tgz pocketbase zod &&
    cat >check.mjs <<'JS' &&
import { counter, createDoc } from "@nxs-sync/core";
import { createFileStorage } from "@nxs-sync/core/node";
import { createPocketBaseTransport } from "@nxs-sync/pocketbase";
import { z } from "zod";
const doc = createDoc({ schema: z.object({ hits: counter() }), docId: "d", replicaId: "a", initial: { hits: 0 } });
doc.increment(["hits"], 2);
if (doc.get().hits !== 2 || typeof createFileStorage !== "function" || typeof createPocketBaseTransport !== "function")
  throw new Error("the installed packages do not work");
console.log("installed packages work");
JS
    PATH="$work/repo/.tools/node/bin:$PATH" node check.mjs
}
for s in "${later[@]}"; do
  case "$s" in
    pack:tarballs) step "npm run pack:tarballs, then npm install of the tarballs in an empty app" \
      run "$s" ok install_tarballs || failed=1; cd "$work/repo" ;;
  esac
done
if [[ " ${later[*]} " == *" release "* ]]; then
  check release refused npm run release -- --dry-run # version 0.0.0 is refused
fi
if [[ " ${later[*]} " == *" version-packages "* ]]; then
  check version-packages ok npm run version-packages
  step "versions set by version-packages" run versions ok \
    node -e 'const v = require("./packages/core/package.json").version; if (v === "0.0.0") throw new Error("still 0.0.0"); console.log(v)' ||
    failed=1
  [[ " ${later[*]} " != *" release "* ]] || check "release (after version-packages)" ok npm run release -- --dry-run
fi

step_summary || true
if [ "$failed" -ne 0 ]; then
  echo "fresh-clone: FAILED (logs in $work/logs)" >&2
  keep=1
  exit 1
fi
echo "fresh-clone: every npm script works on a fresh clone" >&2
