#!/usr/bin/env bash
# The Go standalone collector (packages/metrics/collector-go), with the Go toolchain already used to
# build PocketBase (no module downloads: it uses only the standard library).
#   bash scripts/go-collector.sh build   builds it once per source version into the per-user cache
#                                        (<cache>/nxs-collector/<hash>/nxs-collector) and prints its path
#                                        ($NXS_COLLECTOR_BIN, when set, is printed instead)
#   bash scripts/go-collector.sh test    go vet and go test (the record-format vectors, cgroup fixtures)
# CGO_ENABLED=0 as in the PocketBase build, so the compiled standard library in Go's build cache is shared.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/packages/metrics/collector-go"
export CGO_ENABLED=0
command -v go >/dev/null || { echo "go-collector: no Go toolchain on PATH (Go >= 1.22 is needed, as for the PocketBase build)" >&2; exit 1; }
case "${1:-}" in
  build)
    if [ -n "${NXS_COLLECTOR_BIN:-}" ]; then echo "$NXS_COLLECTOR_BIN"; exit 0; fi
    hash="$(cd "$src" && cat go.mod *.go | sha256sum | cut -c1-12)"
    out="${XDG_CACHE_HOME:-$HOME/.cache}/nxs-sync/nxs-collector/$hash/nxs-collector"
    if [ ! -x "$out" ]; then
      mkdir -p "$(dirname "$out")"
      (cd "$src" && go build -buildvcs=false -ldflags "-s -w" -o "$out.tmp.$$" . && mv "$out.tmp.$$" "$out")
    fi
    echo "$out"
    ;;
  test)
    cd "$src"
    go vet ./...
    go test -count=1 ./...
    ;;
  *)
    echo "usage: bash scripts/go-collector.sh build|test" >&2
    exit 2
    ;;
esac
