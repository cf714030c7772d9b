#!/usr/bin/env bash
# Builds sundial_VERSION_ARCH.deb from this source tree, offline.
#
#   packaging/build-deb.sh [--skip-build] [--out DIR] [--lintian]
#
# Needs, on Debian 12+ or Ubuntu 22.04+: a Swift toolchain (6.1 or later) on PATH, and
# `apt-get install libsqlite3-dev libyaml-dev dpkg-dev binutils` (lintian too for --lintian).
#
# --skip-build  reuse the release binary already in .build (CI builds it once)
# --out DIR     where to put the .deb (default: .build/deb)
# --lintian     run lintian on the result and fail on errors
#
# SUNDIAL_PORTABLE=1 in the environment builds a binary that also runs on glibc 2.35 (Ubuntu
# 22.04) from a newer build host, 1.1 MB larger (no packed relocations).
#
# The binary is built with --static-swift-stdlib: one file that needs only glibc (2.36 when
# built on Debian 12, Ubuntu 24.04 or newer, for packed relocations; 2.35 when built on Ubuntu
# 22.04 or with SUNDIAL_PORTABLE=1 — see Package.swift), libsqlite3 and libyaml (Debian's libyaml-0-2, the
# YAML parser; dpkg-shlibdeps below adds it to Depends), plus libcurl4 for webhooks, loaded
# with dlopen only by the webhook child and so declared explicitly below. The package layout:
#   /usr/bin/sundial                                  the agent and CLI (stripped)
#   /etc/sundial/jobs.d/example.yaml                  commented example (a conffile)
#   /etc/default/sundial                              SUNDIAL_OPTS for the unit (a conffile)
#   /var/lib/sundial/                                 state, mode 0700
#   /lib/systemd/system/sundial.service               the unit (Type=notify)
#   /usr/share/man/man1/sundial.1.gz                  man page (`sundial man`)
#   /usr/share/{bash-completion,zsh,fish}/...         shell completions (`sundial completions`)
#   /usr/share/sundial/sundial-jobs.v1.schema.json    the JSON Schema, for editors
#   /usr/share/sundial/sundial-rules.yml              Prometheus alert rules
#   /usr/share/doc/sundial/                           copyright, changelog, docs
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)

skip_build=no
out_dir="$root_dir/.build/deb"
run_lintian=no
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) skip_build=yes ;;
    --out) out_dir="$2"; shift ;;
    --lintian) run_lintian=yes ;;
    *) echo "usage: $0 [--skip-build] [--out DIR] [--lintian]" >&2; exit 2 ;;
  esac
  shift
done

for tool in dpkg-deb dpkg strip gzip; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done
command -v swift >/dev/null || { echo "build-deb: swift is missing: install a Swift toolchain (6.1 or later, https://www.swift.org/install/linux/) and put it on PATH" >&2; exit 1; }
if [ "$skip_build" = no ] && ! [ -e /usr/include/sqlite3.h ]; then
  echo "build-deb: sqlite3.h is missing (apt-get install libsqlite3-dev)" >&2; exit 1
fi
if [ "$skip_build" = no ] && ! [ -e /usr/include/yaml.h ]; then
  echo "build-deb: yaml.h is missing (apt-get install libyaml-dev)" >&2; exit 1
fi

if [ "$skip_build" = no ]; then
  # -Osize: the shipped binary is optimised for size (docs/decisions.md, "release build").
  swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial
fi
bin="$(swift build -c release --show-bin-path)/sundial"
[ -x "$bin" ] || { echo "build-deb: $bin not found; build it or drop --skip-build" >&2; exit 1; }

upstream_version=$("$bin" --version)
# A Debian revision makes this a non-native package (changelog.Debian.gz, as lintian expects).
version="${upstream_version}-${DEB_REVISION:-1}"
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/root"

# Reproducible timestamps: the last commit's date when in git, else now.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

install -d -m 0755 "$pkg/usr/bin" "$pkg/etc/sundial/jobs.d" "$pkg/etc/default" "$pkg/lib/systemd/system" \
  "$pkg/usr/share/man/man1" "$pkg/usr/share/doc/sundial" "$pkg/usr/share/sundial" \
  "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d" "$pkg/usr/share/lintian/overrides" "$pkg/DEBIAN"
install -d -m 0700 "$pkg/var/lib/sundial"

install -m 0755 "$bin" "$pkg/usr/bin/sundial"
# The binary exports no symbols (Package.swift: --no-export-dynamic), so once stripped its
# crash backtraces and `perf` show bare addresses. Its symbols and debug information are kept
# beside the package (not shipped: 25 MB), tied to it by build id and a debuglink, for
# `gdb -s`, `eu-addr2line -e` or `perf report --symfs` on a report from a box.
mkdir -p "$out_dir"
objcopy --only-keep-debug "$pkg/usr/bin/sundial" "$out_dir/sundial.debug"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/sundial"
objcopy --add-gnu-debuglink="$out_dir/sundial.debug" "$pkg/usr/bin/sundial"
install -m 0644 packaging/jobs.d-example.yaml "$pkg/etc/sundial/jobs.d/example.yaml"
install -m 0644 packaging/default-sundial "$pkg/etc/default/sundial"
install -m 0644 packaging/sundial.service "$pkg/lib/systemd/system/sundial.service"
install -m 0644 schemas/sundial-jobs.v1.schema.json "$pkg/usr/share/sundial/sundial-jobs.v1.schema.json"
# Alert rules for Prometheus (docs/operations.md), to copy into its rule_files.
install -m 0644 packaging/prometheus/sundial-rules.yml "$pkg/usr/share/sundial/sundial-rules.yml"

# Completions, generated by swift-argument-parser from the binary's command definitions.
# bash-completion sources the file, so the generated #! line is dropped.
"$pkg/usr/bin/sundial" completions bash | sed '1{/^#!/d}' > "$pkg/usr/share/bash-completion/completions/sundial"
"$pkg/usr/bin/sundial" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_sundial"
"$pkg/usr/bin/sundial" completions fish > "$pkg/usr/share/fish/vendor_completions.d/sundial.fish"
chmod 0644 "$pkg"/usr/share/bash-completion/completions/sundial "$pkg"/usr/share/zsh/vendor-completions/_sundial \
  "$pkg"/usr/share/fish/vendor_completions.d/sundial.fish

# The man page, generated by the binary from its command definitions (every command and
# option; the prose is in Sources/sundial/ManualPage+Prose.swift). swift-argument-parser's
# generate-manual plugin would need a second build inside `swift package`; this needs none.
"$pkg/usr/bin/sundial" man | gzip -9n > "$pkg/usr/share/man/man1/sundial.1.gz"

# Documentation.
install -m 0644 packaging/debian/copyright "$pkg/usr/share/doc/sundial/copyright"
install -m 0644 packaging/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/sundial"
changelog_date=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$changelog_date/" packaging/debian/changelog | gzip -9n > "$pkg/usr/share/doc/sundial/changelog.Debian.gz"
for doc in docs/*.md; do
  gzip -9n < "$doc" > "$pkg/usr/share/doc/sundial/$(basename "$doc").gz"
done
chmod 0644 "$pkg"/usr/share/doc/sundial/* "$pkg/usr/share/man/man1/sundial.1.gz"

# Dependencies of the binary, as dpkg-shlibdeps computes them (it wants a debian/control).
depends="libc6 (>= 2.35)"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$stage/shlibs/debian"
  printf 'Source: sundial\n\nPackage: sundial\nArchitecture: any\n' > "$stage/shlibs/debian/control"
  if out=$(cd "$stage/shlibs" && dpkg-shlibdeps -O "$pkg/usr/bin/sundial" 2>/dev/null); then
    depends=$(printf '%s\n' "$out" | sed -n 's/^shlibs:Depends=//p')
  fi
fi
# The glibc the binary needs, read off its version references: dpkg-shlibdeps knows the libc
# functions it calls, but not GLIBC_ABI_DT_RELR, which a binary with packed relative
# relocations needs (glibc 2.36; Package.swift packs them when the build host has 2.36 or
# later, unless SUNDIAL_PORTABLE=1). The package's libc6 floor is the higher of the two, so a
# package built on Debian 12 refuses to install on Ubuntu 22.04 instead of failing at exec.
glibc=$(packaging/glibc-needed.sh "$pkg/usr/bin/sundial")
if [ -n "$glibc" ]; then
  floor=$(printf '%s\n' "$depends" | grep -oE 'libc6 \(>= [^)]+\)' | sed 's/.*>= //; s/)//' | head -1)
  if [ -z "$floor" ]; then
    depends="libc6 (>= $glibc), $depends"
  elif [ "$(printf '%s\n%s\n' "$floor" "$glibc" | sort -V | tail -1)" != "$floor" ]; then
    depends=$(printf '%s\n' "$depends" | sed "s/libc6 (>= [^)]*)/libc6 (>= $glibc)/")
  fi
fi
# libcurl4 is loaded with dlopen by the webhook child (sundial internal-webhook, issue 17), so
# dpkg-shlibdeps cannot see it: declared here. 7.68 (Ubuntu 20.04) has every option it sets.
depends="$depends, libcurl4 (>= 7.68), ca-certificates, init-system-helpers (>= 1.54~)"
# libpq5 is loaded with dlopen only by `sundial run --fleet` (issue 19): Recommends (control.in),
# since an agent without a fleet never needs it.

# Maintainer scripts and metadata.
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$pkg/DEBIAN/"
install -m 0644 packaging/debian/conffiles "$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  packaging/debian/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/md5sums" "$pkg/DEBIAN/control"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out_dir"
deb="$out_dir/sundial_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$pkg" "$deb" >/dev/null
echo "built $deb ($(du -k "$deb" | cut -f1) KiB; /usr/bin/sundial $(stat -c %s "$pkg/usr/bin/sundial") bytes stripped)"

if [ "$run_lintian" = yes ]; then
  command -v lintian >/dev/null || { echo "build-deb: lintian is missing (apt-get install lintian)" >&2; exit 1; }
  # Errors fail the build; warnings are printed. The overrides shipped in the package
  # (packaging/debian/lintian-overrides) say why each one is intended.
  lintian --fail-on error "$deb"
fi
