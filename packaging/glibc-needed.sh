#!/usr/bin/env bash
# packaging/glibc-needed.sh BINARY [--functions]
#
# Prints the newest glibc version BINARY needs, from its symbol version references
# (`readelf -V`). GLIBC_ABI_DT_RELR, which a binary with packed relative relocations needs,
# counts as 2.36, the first glibc that has it; dpkg-shlibdeps does not see it. With
# --functions, only the libc functions the binary calls count (what a build without packed
# relocations would need). Used by build-deb.sh (the package's libc6 floor), check-binary.sh
# and test-deb.sh.
set -euo pipefail
bin="$1"
refs=$(readelf -VW "$bin" | grep -oE 'GLIBC_(ABI_DT_RELR|[0-9]+\.[0-9]+(\.[0-9]+)?)' || true)
if [ "${2:-}" = --functions ]; then
  refs=$(grep -v ABI_DT_RELR <<<"$refs" || true)
fi
sed 's/GLIBC_ABI_DT_RELR/GLIBC_2.36/; s/GLIBC_//' <<<"$refs" | sort -uV | tail -1
