#!/usr/bin/env bash
# Ensure the arm64 emulation of the smoke test (examples/compose/test/arm64-smoke.int.test.ts): Debian's
# `qemu-user` (qemu-aarch64, user-mode: runs one linux/arm64 program, no VM, no binfmt needed) and
# the arm64 cross libraries the Node binary links against (`libc6-arm64-cross`,
# `libstdc++6-arm64-cross`, `libgcc-s1-arm64-cross`: together the sysroot of
# `qemu-aarch64 -L /usr/aarch64-linux-gnu node …`, and the libraries the arm64 gateway image copies).
# The static arm64 PocketBase and probe need no sysroot.
# Usage: `bash scripts/ensure-qemu.sh` (or `source` it).
# - Done at once when `qemu-aarch64 --version` answers and the sysroot holds the loader and libstdc++.
# - Else apt-get install --no-install-recommends qemu-user and the three cross packages (root or sudo).
# Idempotent. Exits non-zero with the reason when it cannot.
# shellcheck source=scripts/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
_nxs_qemu_main() {
  local loader=/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1
  local cxx=/usr/aarch64-linux-gnu/lib/libstdc++.so.6
  local pkgs=(qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)
  if qemu-aarch64 --version >/dev/null 2>&1 && [ -e "$loader" ] && [ -e "$cxx" ]; then
    echo "ensure-qemu: $(qemu-aarch64 --version | head -n 1); sysroot /usr/aarch64-linux-gnu" >&2
    return 0
  fi
  nxs_apt_install ensure-qemu "${pkgs[@]}" || return 1
  if ! qemu-aarch64 --version >/dev/null 2>&1 || [ ! -e "$loader" ] || [ ! -e "$cxx" ]; then
    echo "ensure-qemu: installed, but qemu-aarch64, $loader or $cxx is missing" >&2
    return 1
  fi
  echo "ensure-qemu: $(qemu-aarch64 --version | head -n 1) installed" >&2
}
_nxs_qemu_main
_nxs_qemu_rc=$?
unset -f _nxs_qemu_main
return "$_nxs_qemu_rc" 2>/dev/null || exit "$_nxs_qemu_rc"
