#!/usr/bin/env bash
# End-to-end test of the Ansible role (packaging/ansible/roles/sundial), as root, against this
# machine (connection: local), with the sample playbook site.yml:
#
#   packaging/ansible/test-role.sh DEB        (DEB: a sundial_*.deb, e.g. from build-deb.sh)
#
# 1. first apply: installs DEB, places two job files (the second `needs` a job of the first,
#    so it validates only when checked together with the directory), the handler reloads an
#    agent this script started: a second `config.loaded` in its log, with both jobs;
# 2. second apply: changed=0, no handler, no reload;
# 3. apply with bad job files (a changed file whose `needs` points nowhere, a new file with an
#    invalid schedule): the task fails at validation, neither file reaches the directory, no
#    reload.
# Then purges the package, stops the agent and removes its files. Needs ansible-playbook on
# PATH (or $ANSIBLE_PLAYBOOK; `pip install ansible-core`) and python3-apt (installed if missing).
# Runs without systemd as PID 1 (containers): the agent is the test's own, started from the
# package's binary with `--watch off` (so only the handler's `sundial reload` reloads it), and
# the handler's command is `sundial reload --state DIR`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$(pwd)

fail() { echo "test-role: FAIL: $*" >&2; exit 1; }
step() { echo "test-role: $*"; }

[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
deb=$(realpath "$1")
[ -f "$deb" ] || fail "$1: no such package"
[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges the package)"
if dpkg-query -W -f='${Status}' sundial 2>/dev/null | grep -q 'installed'; then
  fail "a sundial package is already installed; not touching it"
fi
playbook_cmd=${ANSIBLE_PLAYBOOK:-$(command -v ansible-playbook || true)}
[ -n "$playbook_cmd" ] || fail "ansible-playbook not found: pip install ansible-core (or set ANSIBLE_PLAYBOOK)"
# The apt module runs under the system python and needs its apt bindings; it would install
# them itself, but a test should not change the machine behind a module's back.
if ! /usr/bin/python3 -c 'import apt' 2>/dev/null; then
  step "installing python3-apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-apt >/dev/null
fi

# Purge deletes /etc/sundial and /var/lib/sundial: move existing ones aside, put them back after.
work=$(mktemp -d /var/tmp/sundial-test-role.XXXXXX)
installed_by_us=no
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  if [ "$installed_by_us" = yes ]; then dpkg --purge sundial >/dev/null 2>&1 || true; fi
  rm -rf /etc/sundial /var/lib/sundial
  for name in var-lib-sundial etc-sundial; do
    target=/${name//-//}
    if [ -e "$work/backup/$name" ]; then mv "$work/backup/$name" "$target"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/backup"
[ -e /var/lib/sundial ] && mv /var/lib/sundial "$work/backup/var-lib-sundial" && step "moved the existing /var/lib/sundial aside (restored at exit)"
[ -e /etc/sundial ] && mv /etc/sundial "$work/backup/etc-sundial" && step "moved the existing /etc/sundial aside (restored at exit)"

# The test's agent: the package's own binary, on the directory the role manages.
dpkg-deb -x "$deb" "$work/pkg"
# The agent refuses to start on a directory without job files: one job of the test's own
# (the package adds only a commented example; purge removes the directory).
mkdir -p /etc/sundial/jobs.d "$work/state"
printf 'version: 1\njobs:\n  test-role-placeholder:\n    every: 1h\n    command: ["true"]\n' > /etc/sundial/jobs.d/placeholder.yaml
agent_log="$work/agent.log"
"$work/pkg/usr/bin/sundial" run --state "$work/state" --log "$agent_log" --watch off /etc/sundial/jobs.d &
agent_pid=$!
loads() { if [ -f "$agent_log" ]; then grep -c '"event":"config.loaded"' "$agent_log" || true; else echo 0; fi; }
wait_loads() { # N: wait up to 20 s for N config.loaded lines
  for _ in $(seq 200); do [ "$(loads)" -ge "$1" ] && return 0; kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
  fail "the agent did not log config.loaded #$1 (log: $(tail -5 "$agent_log" 2>/dev/null))"
}
wait_loads 1
step "agent started (pid $agent_pid), configuration loaded"

# Job files: upload.yaml needs dump-db from db.yaml.
mkdir -p "$work/jobs" "$work/bad"
cat > "$work/jobs/db.yaml" <<'EOF'
version: 1
jobs:
  dump-db:
    schedule: "30 2 * * *"
    command: ["true"]
EOF
cat > "$work/jobs/upload.yaml" <<'EOF'
version: 1
jobs:
  upload:
    needs: [dump-db]
    command: ["true"]
EOF
cat > "$work/bad/upload.yaml" <<'EOF'
version: 1
jobs:
  upload:
    needs: [no-such-job]
    command: ["true"]
EOF
cat > "$work/bad/broken.yaml" <<'EOF'
version: 1
jobs:
  broken:
    schedule: "61 * * * *"
    command: ["true"]
EOF

printf 'localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3 ansible_become=false\n' > "$work/inventory"
vars() { # FILE...: the role's variables for one apply
  {
    echo "sundial_deb: $deb"
    echo "sundial_deb_cache_dir: $work/deb-cache"
    echo "sundial_job_files_dir: ''"
    echo "sundial_reload_command: /usr/bin/sundial reload --state $work/state"
    echo "sundial_job_files:"
    for f in "$@"; do echo "  - $f"; done
  } > "$work/vars.yml"
}
apply() { # NAME: runs the playbook, output in $work/NAME.log; returns its exit status
  ANSIBLE_CONFIG="$work/none.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" \
  ANSIBLE_REMOTE_TEMP="$work/ansible-tmp" ANSIBLE_HOME="$work/ansible-home" \
    "$playbook_cmd" -i "$work/inventory" "$root_dir/packaging/ansible/site.yml" \
      -e sundial_hosts=localhost -e "@$work/vars.yml" > "$work/$1.log" 2>&1
}
recap() { # NAME FIELD: FIELD's value in the PLAY RECAP of NAME's run
  sed -n '/^PLAY RECAP/,$p' "$work/$1.log" | grep -o "$2=[0-9]*" | head -1 | cut -d= -f2
}
show() { echo "--- ansible-playbook output ($1) ---" >&2; cat "$work/$1.log" >&2; }
touch "$work/none.cfg"
handler='RUNNING HANDLER \[sundial : Reload sundial\]'

step "1: first apply"
vars "$work/jobs/db.yaml" "$work/jobs/upload.yaml"
installed_by_us=yes
apply first || { show first; fail "first apply failed"; }
[ "$(recap first failed)" = 0 ] && [ "$(recap first changed)" -ge 3 ] || { show first; fail "first apply: expected changed>=3 failed=0"; }
dpkg-query -W -f='${Status}' sundial | grep -q ' installed' || fail "the package is not installed"
for f in db.yaml upload.yaml; do
  cmp -s "$work/jobs/$f" "/etc/sundial/jobs.d/$f" || fail "/etc/sundial/jobs.d/$f differs from its source"
done
grep -q "$handler" "$work/first.log" || { show first; fail "the reload handler did not run"; }
wait_loads 2
last=$(grep '"event":"config.loaded"' "$agent_log" | tail -1)
echo "$last" | grep -q '"dump-db"' && echo "$last" | grep -q '"upload"' || fail "the reload did not add dump-db and upload: $last"
/usr/bin/sundial status --state "$work/state" | grep -q 'upload' || fail "sundial status does not list upload"
step "1: ok: changed=$(recap first changed), handler ran, agent reloaded ($(loads) config.loaded), jobs dump-db and upload loaded"

step "2: second apply, nothing to change"
apply second || { show second; fail "second apply failed"; }
[ "$(recap second changed)" = 0 ] && [ "$(recap second failed)" = 0 ] || { show second; fail "second apply: expected changed=0 failed=0"; }
if grep -q "$handler" "$work/second.log"; then show second; fail "the handler ran although nothing changed"; fi
[ "$(loads)" = 2 ] || fail "the agent reloaded although nothing changed"
step "2: ok: changed=0, no handler, no reload"

step "3: apply with invalid job files"
sum_before=$(sha256sum /etc/sundial/jobs.d/upload.yaml)
vars "$work/jobs/db.yaml" "$work/bad/upload.yaml" "$work/bad/broken.yaml"
if apply third; then show third; fail "the apply with invalid job files succeeded"; fi
[ "$(recap third failed)" = 1 ] || { show third; fail "third apply: expected failed=1"; }
grep -q 'no-such-job' "$work/third.log" && grep -q '61' "$work/third.log" || { show third; fail "the validation errors are not in the output"; }
[ "$(sha256sum /etc/sundial/jobs.d/upload.yaml)" = "$sum_before" ] || fail "the invalid upload.yaml replaced the good one"
[ ! -e /etc/sundial/jobs.d/broken.yaml ] || fail "the invalid broken.yaml reached /etc/sundial/jobs.d"
if grep -q "$handler" "$work/third.log"; then show third; fail "the handler ran after a failed validation"; fi
[ "$(loads)" = 2 ] || fail "the agent reloaded after a failed validation"
/usr/bin/sundial validate --quiet /etc/sundial/jobs.d || fail "/etc/sundial/jobs.d is no longer valid"
step "3: ok: failed=1 at validation, upload.yaml unchanged, broken.yaml absent, no reload"

step "ok: installed, placed, reloaded once, idempotent, invalid files refused; cleaning up"
