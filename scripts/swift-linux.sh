#!/usr/bin/env bash
# swift-linux.sh - Swift 6 (Debian trixie `swiftlang`) in a cached chroot on a Debian bookworm
# host (from ../shared/recipes, proven there); runs `swift test` (or any command) for a host dir.
#
# Needs root (debootstrap, chroot, unshare/mount). Network: the host's own Debian mirror only.
#
# Usage:
#   swift-recipe.sh setup                    # create/refresh the cached chroot (idempotent)
#   swift-recipe.sh test PKG_DIR [ARGS...]   # setup, then `swift test ARGS` in PKG_DIR
#   swift-recipe.sh exec DIR CMD [ARGS...]   # setup, then run CMD inside the chroot, cwd DIR
#   swift-recipe.sh shell [DIR]              # interactive shell in the chroot
#
# Environment:
#   SWIFT_CHROOT_CACHE  cache dir holding the chroot (default /var/cache/swift-chroot);
#                       the chroot lives in $SWIFT_CHROOT_CACHE/trixie-root (~2.8 GB)
#   SWIFT_BIND_PATHS    extra host paths (space separated) to bind into the chroot at
#                       the SAME absolute path, e.g. the Rust target dir holding the
#                       uniffi cdylib if it is outside PKG_DIR. PKG_DIR/DIR is always bound.
#   SWIFT_SUITE         Debian suite (default trixie; swiftlang 6.0.3-2 there)
#   SWIFT_MIRROR        (default: the first Debian mirror in the host's apt sources)
#
# Paths are bound at identical absolute paths, so absolute -L/-rpath flags in
# Package.swift (e.g. pointing at target/debug) work the same inside and outside.
# Mounts are made in a private mount namespace (unshare -m): they disappear when the
# command exits, nothing to clean up, and parallel runs do not interfere.
set -euo pipefail

CACHE="${SWIFT_CHROOT_CACHE:-/var/cache/swift-chroot}"
SUITE="${SWIFT_SUITE:-trixie}"
host_mirror() {
  # Either file kind may be missing: a grep that finds no file must not end the script.
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' || true; } |
    { grep -v -- '-security' || true; } | head -n 1
}
MIRROR="${SWIFT_MIRROR:-$(host_mirror)}"
[ -n "$MIRROR" ] || { echo "[swift-recipe] ERROR: no Debian mirror in the host's apt sources; set SWIFT_MIRROR" >&2; exit 1; }
ROOT="$CACHE/$SUITE-root"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[swift-recipe] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# Run a command inside the chroot, in a private mount namespace.
#   in_chroot WORKDIR CMD...   (WORKDIR may be empty -> /)
in_chroot() {
  local wd="$1"; shift
  local binds="${SWIFT_BIND_PATHS:-}"
  [ -n "$wd" ] && binds="$wd $binds"
  # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
  unshare --mount --propagation private /bin/bash -euo pipefail -c '
    root="$1"; wd="$2"; binds="$3"; shift 3
    mount -t proc proc "$root/proc"          # required: swift finds its libs via $ORIGIN -> /proc/self/exe
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts" 2>/dev/null || true
    for p in $binds; do
      p="$(readlink -f "$p")"
      [ -e "$p" ] || { echo "bind path $p does not exist" >&2; exit 1; }
      if [ -d "$p" ]; then mkdir -p "$root$p"; else mkdir -p "$(dirname "$root$p")"; touch "$root$p"; fi
      mount --bind "$p" "$root$p"
    done
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i \
      HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/bash -c "cd \"\${0}\" && exec \"\$@\"" "${wd:-/}" "$@"
  ' in_chroot "$ROOT" "$wd" "$binds" "$@"
}

setup() {
  mkdir -p "$CACHE"
  # 1. debootstrap on the host
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap on host"
    apt-get install -y debootstrap >/dev/null || { apt-get update >/dev/null; apt-get install -y debootstrap >/dev/null; }
  fi
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || die "debootstrap does not know suite $SUITE"

  # 2. minimal trixie root (~215 MB, ~50 s)
  if [ ! -e "$ROOT/.stage-debootstrap-done" ]; then
    if [ -e "$ROOT" ]; then
      log "removing incomplete chroot $ROOT"
      findmnt -rn -o TARGET | grep -q "^$ROOT/" && die "something is mounted under $ROOT; unmount it first"
      rm -rf --one-file-system "$ROOT"
    fi
    log "debootstrap $SUITE -> $ROOT"
    debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $CACHE/debootstrap.log"
    echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
    touch "$ROOT/.stage-debootstrap-done"
  fi

  # 3. swiftlang (~530 MB download, ~2.5 GB installed, ~80 s). libc6-dev is only a
  #    Recommends of gcc, but swiftc needs it (Scrt1.o/crti.o, libc headers) even to
  #    compile Package.swift; ca-certificates for SwiftPM https fetches.
  if [ ! -e "$ROOT/.stage-swiftlang-done" ] || [ ! -x "$ROOT/usr/libexec/swift/bin/swift-test" ] \
     || [ ! -e "$ROOT/usr/include/stdio.h" ]; then
    log "installing swiftlang in chroot"
    in_chroot "" sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends swiftlang libc6-dev ca-certificates && apt-get clean' \
      >"$CACHE/swiftlang-install.log" 2>&1 || die "swiftlang install failed, see $CACHE/swiftlang-install.log"
    touch "$ROOT/.stage-swiftlang-done"
  fi
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    setup
    in_chroot "" swift --version
    ;;
  test)
    [ $# -ge 1 ] || die "usage: $0 test PKG_DIR [swift test args...]"
    pkg="$(readlink -f "$1")"; shift
    [ -f "$pkg/Package.swift" ] || die "$pkg/Package.swift not found"
    setup
    in_chroot "$pkg" swift test "$@"
    ;;
  exec)
    [ $# -ge 2 ] || die "usage: $0 exec DIR CMD [ARGS...]"
    dir="$(readlink -f "$1")"; shift
    setup
    in_chroot "$dir" "$@"
    ;;
  shell)
    dir="$(readlink -f "${1:-/tmp}")"
    setup
    in_chroot "$dir" /bin/bash -i
    ;;
  *)
    sed -n '2,25p' "$0"; exit 2
    ;;
esac
