#!/usr/bin/env bash
# End-to-end test of the Debian package, as root on a Debian machine (CI):
# build → lintian → dpkg -i → checks → invalid-config refusal → dpkg --purge → nothing left.
#
#   packaging/test-deb.sh [--skip-build]     (--skip-build: reuse the release binary in .build)
#
# Installs dpkg-dev, binutils and lintian only if they are missing. Refuses to run when a
# sundial package is already installed (it would be purged).
set -euo pipefail
cd "$(dirname "$0")/.."

build_flag=()
[ "${1:-}" = "--skip-build" ] && build_flag=(--skip-build)

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges the package)"
if dpkg-query -W -f='${Status}' sundial 2>/dev/null | grep -q 'installed'; then
  fail "a sundial package is already installed; not touching it"
fi

missing=()
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v strip >/dev/null || missing+=(binutils)
command -v lintian >/dev/null || missing+=(lintian)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Purge deletes /var/lib/sundial and /etc/sundial. If they exist already (an agent run as
# root without --state, e.g. by a test), move them aside for the test and put them back after.
backup=$(mktemp -d /var/tmp/sundial-test-deb.XXXXXX)
installed_by_us=no
cleanup() {
  if [ "$installed_by_us" = yes ]; then dpkg --purge sundial >/dev/null 2>&1 || true; fi
  for name in var-lib-sundial etc-sundial; do
    target=/${name//-//}
    if [ -e "$backup/$name" ]; then rm -rf "$target"; mv "$backup/$name" "$target"; fi
  done
  rmdir "$backup" 2>/dev/null || true
  rm -rf "${before:-}" "${after:-}" "${out_dir:-}"
}
trap cleanup EXIT
[ -e /var/lib/sundial ] && mv /var/lib/sundial "$backup/var-lib-sundial" && step "moved the existing /var/lib/sundial aside (restored at exit)"
[ -e /etc/sundial ] && mv /etc/sundial "$backup/etc-sundial" && step "moved the existing /etc/sundial aside (restored at exit)"

# What exists before, to prove that purge leaves nothing behind. dpkg's and apt's own
# databases change by design and are left out.
snapshot() {
  { find /etc /var/lib /usr /lib/systemd -xdev 2>/dev/null || true; } \
    | grep -v -e '^/var/lib/dpkg' -e '^/var/lib/apt' -e '^/var/lib/systemd/deb-systemd-helper-masked$' \
    | LC_ALL=C sort
}
before=$(mktemp); after=$(mktemp); out_dir=$(mktemp -d)
snapshot > "$before"
# mktemp's files live in /tmp, which the snapshot does not cover.

step "building the package"
packaging/build-deb.sh "${build_flag[@]}" --out "$out_dir" --lintian
deb=$(ls "$out_dir"/sundial_*.deb)
# libcurl4 is dlopen'ed by the webhook child, so dpkg-shlibdeps cannot find it: build-deb.sh
# declares it, and a box installed from the package must have it.
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libcurl4' <<<"$depends" || fail "the package does not depend on libcurl4 (webhooks): $depends"
# The libc6 floor covers what the binary needs: 2.36 when it packs its relative relocations
# (GLIBC_ABI_DT_RELR, which dpkg-shlibdeps does not see), else the newest libc function it calls.
tmpbin=$(mktemp -d); dpkg-deb -x "$deb" "$tmpbin"
needs=$(packaging/glibc-needed.sh "$tmpbin/usr/bin/sundial")
rm -rf "$tmpbin"
floor=$(grep -oE 'libc6 \(>= [^)]+\)' <<<"$depends" | sed 's/.*>= //; s/)//' | head -1)
[ -n "$floor" ] || fail "the package does not depend on libc6 with a version: $depends"
[ "$(printf '%s\n%s\n' "$floor" "$needs" | sort -V | tail -1)" = "$floor" ] \
  || fail "the package depends on libc6 (>= $floor) but the binary needs glibc $needs: $depends"
recommends=$(dpkg-deb -f "$deb" Recommends)
grep -q 'libpq5' <<<"$recommends" || fail "the package does not recommend libpq5 (the fleet's client): $recommends"

step "installing $(basename "$deb")"
installed_by_us=yes
dpkg -i "$deb"

step "checking the installed files"
[ "$(sundial --version)" = "$(dpkg-query -W -f='${Version}' sundial | sed 's/-[^-]*$//')" ] || fail "sundial --version differs from the package's upstream version"
sundial validate /etc/sundial/jobs.d || fail "the shipped configuration does not validate"
[ "$(stat -c %a /var/lib/sundial)" = 700 ] || fail "/var/lib/sundial is not mode 0700"
dpkg-query -W -f='${Conffiles}\n' sundial | grep -q '/etc/sundial/jobs.d/example.yaml' || fail "example.yaml is not a conffile"
gzip -t /usr/share/man/man1/sundial.1.gz || fail "man page"
for f in /usr/share/bash-completion/completions/sundial /usr/share/zsh/vendor-completions/_sundial \
         /usr/share/fish/vendor_completions.d/sundial.fish /usr/share/doc/sundial/copyright \
         /usr/share/doc/sundial/changelog.Debian.gz /usr/share/sundial/sundial-jobs.v1.schema.json \
         /lib/systemd/system/sundial.service /etc/default/sundial; do
  [ -s "$f" ] || fail "$f is missing or empty"
done
grep -q 'import-crontab' /usr/share/bash-completion/completions/sundial || fail "bash completion lacks subcommands"
# Captured first: `sundial … | grep -q` under pipefail fails whenever grep exits at its first
# match before the writer's last write (SIGPIPE, exit 141), which is ordinary, not a fault.
bash_completion=$(sundial completions bash) || fail "sundial completions bash"
grep -q 'import-crontab' <<<"$bash_completion" || fail "sundial completions bash lacks subcommands"
sundial completions fish >/dev/null || fail "sundial completions fish"
if sundial completions tcsh >/dev/null 2>&1; then fail "sundial completions accepted an unknown shell"; fi
dpkg-query -W -f='${Conffiles}\n' sundial | grep -q '/etc/default/sundial' || fail "/etc/default/sundial is not a conffile"
grep -q '^SUNDIAL_OPTS=' /etc/default/sundial || fail "/etc/default/sundial does not set SUNDIAL_OPTS"
grep -q '^EnvironmentFile=-/etc/default/sundial$' /lib/systemd/system/sundial.service || fail "the unit does not read /etc/default/sundial"
grep -q '^ExecStart=.* \$SUNDIAL_OPTS$' /lib/systemd/system/sundial.service || fail "the unit does not append \$SUNDIAL_OPTS"

# The man page lists every option of every command: the options are taken from each
# command's --help (ArgumentParser's layout), the page is rendered by man(1) in ASCII.
if command -v man >/dev/null; then
  page=$(LC_ALL=C MANWIDTH=200 man -P cat sundial 2>/dev/null | sed 's/.\x08//g')
  [ -n "$page" ] || fail "man sundial printed nothing"
  commands=$(sundial --help | awk '/^SUBCOMMANDS:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
  [ -n "$commands" ] || fail "no commands found in sundial --help"
  for cmd in $commands; do
    grep -q -- "sundial $cmd" <<<"$page" || fail "man sundial lacks the command $cmd"
    for opt in $(sundial "$cmd" --help | sed -n '/^OPTIONS:/,$p' | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
      grep -q -- "$opt" <<<"$page" || fail "man sundial lacks $opt of sundial $cmd"
    done
  done
  step "man sundial lists every command and option"
else
  step "man not available: man page contents not checked (skipped)"
fi
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no /lib/systemd/system/sundial.service || fail "systemd-analyze verify"
  step "systemd-analyze verify: ok"
else
  step "systemd-analyze not available: unit not verified (skipped)"
fi

step "checking that postinst refuses an invalid configuration"
printf 'version: 1\njobs:\n  broken:\n    schedule: "61 * * * *"\n' > /etc/sundial/jobs.d/broken.yaml
msg=$(/var/lib/dpkg/info/sundial.postinst configure 0.0.0 2>&1) || fail "postinst failed hard on an invalid config"
grep -q '/etc/sundial/jobs.d/broken.yaml:' <<<"$msg" || fail "postinst did not show the error position: $msg"
grep -q 'invalid' <<<"$msg" || fail "postinst did not say the configuration is invalid: $msg"
# Left in place on purpose: purge must remove job files the administrator added.

step "purging"
dpkg --purge sundial
installed_by_us=no
if dpkg-query -W -f='${Status}' sundial 2>/dev/null | grep -q ' installed'; then fail "sundial is still installed"; fi
snapshot > "$after"
if ! diff -u "$before" "$after"; then
  fail "files left behind (or removed) by install + purge, see the diff above"
fi
step "ok: built, linted, installed, validated, purged; nothing left behind"
