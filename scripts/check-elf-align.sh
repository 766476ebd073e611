#!/usr/bin/env bash
# check-elf-align.sh FILE.so...: every LOAD segment of each ELF file is aligned to at least
# 16 KB (0x4000), as Android's 16 KB page devices and Google Play require. Exit 1 if any is not.
#   check-elf-align.sh --self-test: shows the check can fail: two `cc -shared` objects, linked
#   with 16 KB and with 4 KB pages; the first must pass and the second fail.
set -uo pipefail

check() {
  local f="$1" bad=0 aligns
  aligns="$(readelf -lW "$f" 2>/dev/null | awk '$1 == "LOAD" {print $NF}')"
  if [ -z "$aligns" ]; then echo "$f: no LOAD segments (not an ELF shared object?)"; return 1; fi
  for a in $aligns; do
    if [ $((a)) -lt $((0x4000)) ]; then bad=1; fi
  done
  if [ "$bad" -eq 0 ]; then
    echo "$f: ok (LOAD alignments: $(echo "$aligns" | tr '\n' ' '))"
  else
    echo "$f: NOT 16 KB aligned (LOAD alignments: $(echo "$aligns" | tr '\n' ' '))"
  fi
  return "$bad"
}

if [ "${1:-}" = "--self-test" ]; then
  dir="$(mktemp -d)"
  echo 'int tern_probe(void) { return 42; }' >"$dir/p.c"
  cc -shared -fPIC -Wl,-z,max-page-size=16384 -o "$dir/p16k.so" "$dir/p.c" || exit 1
  cc -shared -fPIC -Wl,-z,max-page-size=4096 -o "$dir/p4k.so" "$dir/p.c" || exit 1
  ok=0
  check "$dir/p16k.so" || { echo "self-test: the 16 KB object was refused"; ok=1; }
  if check "$dir/p4k.so"; then echo "self-test: the 4 KB object passed"; ok=1; fi
  rm -rf "$dir"
  [ "$ok" -eq 0 ] && echo "self-test: ok (16 KB passes, 4 KB fails)"
  exit "$ok"
fi

[ $# -gt 0 ] || { echo "usage: $0 FILE.so... | --self-test"; exit 2; }
status=0
for f in "$@"; do check "$f" || status=1; done
exit "$status"
