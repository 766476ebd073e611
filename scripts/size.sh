#!/usr/bin/env bash
# size.sh: the mobile build of libtern_ffi (profile release-mobile: opt-level z, fat LTO, one
# codegen unit, panic=abort) for x86_64 and aarch64 Linux, stripped copies measured against the
# 6 MB goal, and the aarch64 library's 16 KB alignment checked (linked with the flags the
# Android targets use, .cargo/config.toml). Outside CI: a fat-LTO build takes minutes on 2 cores.
# Unstripped libraries stay in target/<triple>/release-mobile for symbolication.
# Built as the mobile scripts build it: feature `lowmemory` (libsecp256k1's small tables,
# ffi/Cargo.toml). Linked as the mobile libraries are: with packed relative relocations. Android gets them
# from .cargo/config.toml (--pack-dyn-relocs=android, what the NDK's clang also does itself at
# minSdk 23+); these Linux builds use RELR (-z pack-relative-relocs), the standard ELF form,
# passed to this crate's link only so that the workspace's other builds are not affected.
# Both link with LLD, as the NDK does: rustc's own on x86_64 (its default there), and for
# aarch64 the same rust-lld through gcc's -fuse-ld (Debian's GNU ld 2.40 ignores
# -z pack-relative-relocs on aarch64).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
have() { command -v "$1" >/dev/null 2>&1; }
goal=$((6 * 1024 * 1024))
out="${CARGO_TARGET_DIR:-target}/size"
mkdir -p "$out"
status=0

measure() { # triple strip-tool [extra rustc flags of the final link]
  local triple="$1" strip="$2" lib
  shift 2
  lib="${CARGO_TARGET_DIR:-target}/$triple/release-mobile/libtern_ffi.so"
  cargo rustc --locked -p tern-ffi --lib --profile release-mobile --target "$triple" \
    --features lowmemory -- -C link-arg=-Wl,-z,pack-relative-relocs "$@" || return 1
  "$strip" -o "$out/libtern_ffi-$triple.so" "$lib" || return 1
  local size; size=$(stat -c %s "$out/libtern_ffi-$triple.so")
  echo "$triple: $size bytes stripped ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MB; goal 6 MB)," \
    "unstripped $(stat -c %s "$lib") bytes"
  [ "$size" -le "$goal" ] || { echo "$triple: over the 6 MB goal"; status=1; }
}

measure x86_64-unknown-linux-gnu strip || status=1

if ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu || { echo "no aarch64 target"; exit 1; }
fi
if ! have aarch64-linux-gnu-gcc; then
  apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    binutils-aarch64-linux-gnu || { echo "no aarch64 cross compiler"; exit 1; }
fi
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
[ -x "$gcc_ld/ld.lld" ] || { echo "no rust-lld wrapper at $gcc_ld"; exit 1; }
measure aarch64-unknown-linux-gnu aarch64-linux-gnu-strip \
  -C link-arg=-fuse-ld=lld -C link-arg=-B"$gcc_ld" || status=1
bash scripts/check-elf-align.sh "$out/libtern_ffi-aarch64-unknown-linux-gnu.so" || status=1
exit "$status"
