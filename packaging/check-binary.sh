#!/usr/bin/env bash
# packaging/check-binary.sh [BINARY]
#
# The shipped binary's budget (issue 15): stripped as packaging/build-deb.sh strips it, at most
# 20 MB (20,000,000 bytes), and no Foundation nor ICU in it. Edge boxes pull the agent over slow
# or metered links and keep it on small flash; Foundation brought ICU's 34 MB of data.
#
# "No Foundation" means none of the full Foundation module, FoundationInternationalization or
# ICU (the parts that carry the size and the locale data). swift-argument-parser uses
# FoundationEssentials (ICU-free) for two things; its figure is printed, not refused — see
# docs/decisions.md.
#
# BINARY defaults to the release build (`swift build -c release --static-swift-stdlib
# --product sundial`, which this script does not run). Exits 1 on a breach, naming it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

bin="${1:-$(swift build -c release --show-bin-path)/sundial}"
limit=20000000
[ -x "$bin" ] || { echo "check-binary: no binary at $bin (build it: swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial)" >&2; exit 2; }

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
cp "$bin" "$tmp"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$tmp"
size=$(stat -c %s "$tmp")

fail=0
echo "check-binary: $bin: $size bytes stripped (limit $limit)"
if [ "$size" -gt "$limit" ]; then
  echo "check-binary: FAIL: the stripped binary is $size bytes, over $limit" >&2
  fail=1
fi

# Swift mangles a module's symbols as $s<length><name>: $s10Foundation..., $s30FoundationInternationalization...
# ICU shows as its data blob (icudt*) and its C API with the version suffix swift-foundation's
# _FoundationICU uses (e.g. ucal_open_74), or as the _FoundationICU module itself.
symbols="$(nm --defined-only "$bin" 2>/dev/null || true)"
[ -n "$symbols" ] || { echo "check-binary: FAIL: cannot read symbols of $bin (needs the unstripped build)" >&2; exit 1; }
count() { printf '%s\n' "$symbols" | grep -cE "$1" || true; }
foundation=$(count '\$s10Foundation')
intl=$(count '\$s30FoundationInternationalization')
icu=$(count 'icudt[0-9]|_FoundationICU|\bu(cal|col|num|loc|date)_[a-zA-Z]+_[0-9]+$')
essentials=$(count '\$s20FoundationEssentials')
echo "check-binary: Foundation symbols: $foundation, FoundationInternationalization: $intl, ICU: $icu, FoundationEssentials (argument parser): $essentials"
if [ "$foundation" -gt 0 ] || [ "$intl" -gt 0 ] || [ "$icu" -gt 0 ]; then
  echo "check-binary: FAIL: Foundation or ICU is linked into the binary; find the import with:" >&2
  echo "  grep -rn 'import Foundation' Sources/SundialCore Sources/SundialConfig Sources/SundialRuntime Sources/sundial" >&2
  fail=1
fi
# The dynamic symbol table holds what the binary imports and nothing it defines: the toolchain's
# static-stdlib link exports every Swift symbol (`-export-dynamic`), 885 KB and start-up work
# that Package.swift takes back with `--no-export-dynamic` (docs/decisions.md). A change of
# link flags that brings the exports back fails here.
exported=$(nm -D --defined-only "$bin" 2>/dev/null | grep -c . || true)
echo "check-binary: symbols the binary exports: $exported (limit 16)"
if [ "$exported" -gt 16 ]; then
  echo "check-binary: FAIL: the binary exports $exported dynamic symbols; is \`--no-export-dynamic\` still in Package.swift's linker settings for \`sundial\`?" >&2
  fail=1
fi
# glibc. The libc functions the binary calls stay within 2.35 (Ubuntu 22.04; README), so that a
# portable build (SUNDIAL_PORTABLE=1) runs there: a libc function newer than that fails here.
# Packed relative relocations (GLIBC_ABI_DT_RELR, glibc 2.36) are what Package.swift adds when
# the build host's glibc has them and SUNDIAL_PORTABLE is unset; the check expects exactly
# that, so a lost linker flag (1.4 MiB of idle PSS) fails here too. build-deb.sh turns what the
# binary needs into the package's libc6 floor.
functions=$(packaging/glibc-needed.sh "$bin" --functions)
echo "check-binary: calls glibc functions up to $functions (at most 2.35)"
if [ "$(printf '%s\n2.35\n' "$functions" | sort -V | tail -1)" != "2.35" ]; then
  echo "check-binary: FAIL: the binary calls glibc $functions functions; Ubuntu 22.04 has 2.35 (readelf -V shows which)" >&2
  fail=1
fi
host=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
if [ -n "${SUNDIAL_PORTABLE:-}" ] && [ "${SUNDIAL_PORTABLE}" != 0 ]; then
  expect=no
elif [ "$(printf '%s\n2.36\n' "$host" | sort -V | head -1)" = "2.36" ]; then
  expect=yes
else
  expect=no
fi
# grep -c, not -q: -q can exit before readelf has written everything, and under pipefail the
# writer's SIGPIPE would read as "not found".
packed=no
[ "$(readelf -VW "$bin" | grep -c GLIBC_ABI_DT_RELR || true)" -gt 0 ] && packed=yes
echo "check-binary: packed relative relocations (DT_RELR): $packed (build host glibc $host, SUNDIAL_PORTABLE=${SUNDIAL_PORTABLE:-unset}: expected $expect)"
if [ "$packed" != "$expect" ]; then
  echo "check-binary: FAIL: DT_RELR is $packed, expected $expect (see packRelativeRelocations in Package.swift)" >&2
  fail=1
fi
# The functions named by packaging/sundial.order laid out in its order (lld's
# --symbol-ordering-file, release builds): the share of consecutive names found in the binary
# whose addresses do not fall (not all: code of the dependencies, built without a section per
# function, stays where it is). Laid out by the linker's default, about half.
ordered="$(printf '%s\n' "$symbols" | python3 -c '
import sys
addr = {}
for line in sys.stdin:
    p = line.split()
    if len(p) == 3 and p[1] in "tTwW":
        addr.setdefault(p[2], int(p[0], 16))
found = [addr[n] for n in (l.strip() for l in open(sys.argv[1])) if n in addr]
pairs = list(zip(found, found[1:]))
print(len(found), round(100 * sum(b >= a for a, b in pairs) / max(1, len(pairs))))
' packaging/sundial.order)"
read -r named rising <<<"$ordered"
echo "check-binary: $named functions of packaging/sundial.order in the binary, $rising % of them in its order (at least 75)"
if [ "$rising" -lt 75 ]; then
  echo "check-binary: FAIL: the binary's code is not laid out by packaging/sundial.order (--symbol-ordering-file in Package.swift, release builds only)" >&2
  fail=1
fi
# The data the list names (after its functions) gathered at the front of `.rodata`: at least
# 90 % of those that lie in `.rodata` within its first 30 %. Laid out by the linker's default,
# about 60 %.
front="$(printf '%s\n' "$symbols" | python3 -c '
import subprocess, sys
start = size = None
for line in subprocess.run(["readelf", "-SW", sys.argv[2]], capture_output=True, text=True).stdout.splitlines():
    if "] .rodata " in line:
        f = line.split("]", 1)[1].split()
        start, size = int(f[2], 16), int(f[4], 16)
addr = {}
for line in sys.stdin:
    p = line.split()
    if len(p) == 3 and p[1] in "dDrR":
        addr.setdefault(p[2], int(p[0], 16))
if start is None:
    print(0, 0)
    sys.exit()
found = [addr[n] for n in (l.strip() for l in open(sys.argv[1])) if n in addr and start <= addr[n] < start + size]
print(len(found), round(100 * sum(a < start + size * 0.3 for a in found) / max(1, len(found))))
' packaging/sundial.order "$bin")"
read -r listed gathered <<<"$front"
echo "check-binary: $listed data symbols of packaging/sundial.order in .rodata, $gathered % of them in its first 30 % (at least 90)"
if [ "$listed" -lt 1000 ] || [ "$gathered" -lt 90 ]; then
  echo "check-binary: FAIL: the binary's .rodata is not laid out by packaging/sundial.order (its data symbols: packaging/order-symbols.sh)" >&2
  fail=1
fi
# The C++ runtime from GCC's static archive (packaging/static-libstdc++, release builds): the
# dynamic loader has no libstdc++.so.6 to map and resolve at each exec.
if [ "$(readelf -dW "$bin" | grep -c 'NEEDED.*libstdc++' || true)" -gt 0 ]; then
  echo "check-binary: FAIL: the binary loads libstdc++.so: is packaging/static-libstdc++ still first on the release link's search path (Package.swift)?" >&2
  fail=1
else
  echo "check-binary: libstdc++ linked in (no libstdc++.so.6 to load)"
fi
# The compiler's unnamed functions gathered before `.text` (packaging/sundial.lds, release builds).
if [ "$(readelf -SW "$bin" | grep -c ' \.text\.unnamed ' || true)" -gt 0 ]; then
  echo "check-binary: the compiler's unnamed functions are gathered in .text.unnamed"
else
  echo "check-binary: FAIL: no .text.unnamed section: is packaging/sundial.lds still in Package.swift's release linker settings?" >&2
  fail=1
fi
exit "$fail"
