#!/usr/bin/env bash
# packaging/order-symbols.sh — regenerates packaging/sundial.order, the list of functions the
# release link places first and together (lld's --symbol-ordering-file; Package.swift says why).
#
# The list is every function of the binary that runs in:
#   1. the agent, started on 1,000 jobs plus a per-second job and a failing job with retries
#      and a timeout, for 8 s of fires, then a SIGHUP reload of an edited file, a `status`
#      request, a rejected file and a SIGTERM;
#   2. the loader child (`sundial internal-load`) on the same files;
#   3. `sundial validate` on them.
# in that order, found with valgrind's callgrind (exact: every function executed, not a sample).
# A listed function that shares its object's `.text` (the toolchain's _RegexParser,
# _StringProcessing and FoundationEssentials, swift-argument-parser: built without a section per
# function) moves that whole section. That is kept: listing only the functions in sections of
# their own left the code an idle agent maps at 5.1–5.4 MiB instead of 4.4–4.7, since the agent
# runs some code in each of those objects.
#
# Run it after changes that move the agent's code paths (a new module, a rewritten runtime
# piece); the figures it serves are `bench/run`'s idle PSS. A stale list does no harm beyond
# those figures: functions it does not name are laid out as without it, and names that no
# longer exist are ignored. Needs valgrind and python3; takes about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
command -v valgrind >/dev/null || { echo "order-symbols: needs valgrind (apt-get install valgrind)" >&2; exit 2; }

swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial
swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial-bench
bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d)"
agent=""
cleanup() {
  if [ -n "$agent" ]; then kill -TERM "$agent" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Valgrind cannot read the DWARF of a binary linked from per-function sections; the symbol
# table is all it needs.
strip --strip-debug -o "$work/sundial" "$bin/sundial"
"$bin/sundial-bench" gen-config "$work/conf" 1000 10 --not-due >/dev/null
cat >"$work/conf/tick.yaml" <<'EOF'
version: 1
jobs:
  tick:
    every: 1s
    command: [/bin/true]
  tock:
    every: 2s
    shell: "echo hi; exit 1"
    retry: { attempts: 2, delay: 1s }
    timeout: 10s
EOF

events() {
  local n
  n="$(grep -c "\"event\":\"$1\"" "$work/events.log" 2>/dev/null)" || true
  echo "${n:-0}"
}
wait_for() {  # EVENT COUNT: waits (at most 300 s: valgrind is slow) for COUNT such events
  for _ in $(seq 1 3000); do
    [ "$(events "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "order-symbols: no $1 event within 300 s" >&2
  exit 1
}

# The loader child runs outside valgrind: under it, it would exceed its own address-space limit.
SUNDIAL_LOADER_COMMAND="$work/sundial internal-load" valgrind --tool=callgrind --demangle=no \
  --callgrind-out-file="$work/cg.agent" "$work/sundial" run "$work/conf" --state "$work/state" \
  --log "$work/events.log" >"$work/agent.out" 2>&1 &
agent=$!
wait_for config.loaded 1
sleep 8
sed -i 's/Generated job 0 of file 0/Generated job 0 of file 0, edited/' "$work/conf/jobs-0000.yaml"
kill -HUP "$agent"
wait_for config.loaded 2
"$work/sundial" status --state "$work/state" >/dev/null
echo "  broken: [" >>"$work/conf/tick.yaml"
kill -HUP "$agent"
wait_for config.rejected 1
sed -i '$d' "$work/conf/tick.yaml"
sleep 2
kill -TERM "$agent"
wait "$agent" || true
agent=""

valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.loader" \
  "$work/sundial" internal-load "$work/conf" >/dev/null 2>"$work/loader.err"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.validate" \
  "$work/sundial" validate "$work/conf" >/dev/null 2>"$work/validate.err" || true

python3 - "$work/sundial" "$work/cg.agent" "$work/cg.loader" "$work/cg.validate" >"$work/order" <<'EOF'
import re, sys

def executed(profile, binary):
    """Functions of `binary` with cost in a callgrind profile, in the order they appear.
    Names and objects are compressed: `fn=(7) name` the first time, `fn=(7)` after."""
    objects, names, current, out, seen = {}, {}, None, [], set()
    for line in open(profile, errors="replace"):
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, key, name = m.groups()
            if name:
                objects[key] = name
            if kind == "ob":
                current = objects.get(key)
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, key, name = m.groups()
            if name:
                names[key] = name
            fn = names.get(key)
            if fn:
                fn = re.sub(r"'\d+$", "", fn)  # callgrind's mark of a recursion level
            if kind == "fn" and current == binary and fn and fn not in seen and not fn.startswith(("0x", "(")):
                seen.add(fn)
                out.append(fn)
    return out

binary, profiles = sys.argv[1], sys.argv[2:]
# A name defined more than once in the binary (a local symbol that several objects each have, as
# the compiler's merged thunks `...Tm` and outlined copies are) is left out. lld places every
# section that defines a listed name, and the profile cannot say which copy ran: one such name put
# the toolchain's 487 KB regex parser and the 151 KB JSONDecoder, which the agent never runs, in
# the middle of the agent's code. (Measured: the idle agent's mapped code did not shrink with them
# gone, 4.5-5.0 MiB either way: the windows it touches are mostly in the standard library's one
# 1.6 MB `.text`, which it runs code all over; docs/benchmarks.md, seventeenth session.)
import collections, subprocess
defined = collections.Counter()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split(maxsplit=2)
    if len(parts) == 3 and parts[1] in "tTwW":
        defined[parts[2]] += 1
# What the launcher's vfork child runs before its exec: callgrind does not follow that child, but
# it runs at every fire. Listed after the agent's own functions.
VFORK_CHILD = ["spawn_child", "child_fail"]
seen = set()
for i, profile in enumerate(profiles):
    names = executed(profile, binary) + (VFORK_CHILD if i == 0 else [])
    for name in names:
        if name not in seen and defined[name] <= 1:
            seen.add(name)
            print(name)
EOF
# A profile that did not name the binary (its path seen through a symbolic link, say) gives an
# empty list: refuse it rather than ship a layout of nothing.
count=$(wc -l <"$work/order")
if [ "$count" -lt 1000 ]; then
  echo "order-symbols: only $count functions found in the profiles; packaging/sundial.order left as it was" >&2
  exit 1
fi
mv "$work/order" packaging/sundial.order
echo "order-symbols: $count functions in packaging/sundial.order"
# The build does not track the list as an input of the link: relink by removing the output.
rm -f "$bin/sundial"
swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial
