#!/usr/bin/env bash
# packaging/order-symbols.sh — regenerates packaging/sundial.order, the list of functions and
# data the release link places first and together (lld's --symbol-ordering-file; Package.swift
# says why).
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
# runs some code in each of those objects. Names defined more than once, and the compiler's
# unnamed functions (packaging/sundial.lds), are explained where the list is written below.
#
# After the functions, the list names the data the agent reads or writes in `.rodata`, `.data`
# and `.bss`, found with valgrind's lackey (every load and store) over the agent's start-up,
# its first three runs and its stop. The Swift runtime's first check of a type against a
# protocol walks every conformance record, and with it descriptors spread over the whole of
# `.rodata`. Placed together, an idle agent with 1,000 jobs maps about 0.2 MiB less of
# `.rodata` and dirties 0.1 MiB less of `.bss` (docs/benchmarks.md, twenty-second session).
# `.data.rel.ro` is left alone: the dynamic loader relocates all of it at every start, so every
# page of it is written whatever the order. Merged string literals cannot be ordered by lld.
#
# Run it after changes that move the agent's code paths (a new module, a rewritten runtime
# piece); the figures it serves are `bench/run`'s idle PSS. A stale list does no harm beyond
# those figures: functions it does not name are laid out as without it, and names that no
# longer exist are ignored. Needs valgrind and python3; takes about three minutes on 2 cores once
# built (lackey is slow).
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

# The data: every address the agent loads or stores, by 16-byte granule, in the order first
# touched (awk keeps one line per granule, so the trace never lands on disk). Under valgrind
# the binary is loaded at valgrind's own base: read it from the maps of the running process.
rm -rf "$work/state" "$work/events.log"
SUNDIAL_LOADER_COMMAND="$work/sundial internal-load" valgrind --tool=lackey --trace-mem=yes --log-fd=9 \
  "$work/sundial" run "$work/conf" --state "$work/state" --log "$work/events.log" \
  9> >(awk '$1 == "L" || $1 == "S" || $1 == "M" { split($2, a, ","); g = substr(a[1], 1, length(a[1]) - 1); if (!(g in seen)) { seen[g] = 1; print g } } END { print "end" }' >"$work/data.trace") \
  >"$work/lackey.out" 2>&1 &
agent=$!
wait_for config.loaded 1
awk -v name="$work/sundial" '$2 ~ /^r/ && $3 == "00000000" && $6 == name { split($1, r, "-"); print r[1]; exit }' \
  "/proc/$agent/maps" >"$work/data.base"
[ -s "$work/data.base" ] || { echo "order-symbols: the binary's base under valgrind was not found" >&2; exit 1; }
wait_for run.finished 3
kill -TERM "$agent"
# Bounded: what the stop touches is in the trace once `agent.stopped` is logged.
for _ in $(seq 1 1200); do
  kill -0 "$agent" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$agent" 2>/dev/null; then
  echo "order-symbols: warning: the agent did not exit within 120 s of SIGTERM under lackey; killed (its trace ends there)" >&2
  kill -KILL "$agent" 2>/dev/null || true
fi
wait "$agent" || true
agent=""
# The process substitution's awk ends when its pipe closes, with a last line "end".
for _ in $(seq 1 300); do
  [ "$(tail -n 1 "$work/data.trace" 2>/dev/null)" = end ] && break
  sleep 0.1
done
[ "$(tail -n 1 "$work/data.trace" 2>/dev/null)" = end ] || { echo "order-symbols: the data trace did not end" >&2; exit 1; }

SUNDIAL_BIN="$bin" python3 - "$work/sundial" "$work/cg.agent" "$work/cg.loader" "$work/cg.validate" >"$work/order" <<'EOF'
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
# the compiler's merged thunks `...Tm`, partial-application thunks `...TA` and SwiftShims' static
# inline functions are) needs care: lld places every section that defines a listed name, and the
# profile cannot say which copy ran. Sundial's own objects have a section per function, so their
# copies move alone; a dependency's or the toolchain's object has one `.text` for all its code,
# so a copy there moves the whole object. Such a name keeps its place in the list when every
# other object defining it moves anyway (it is the only definition of a listed name of its
# own: the standard library's `Swift.o`, the argument parser's objects). The others go to the
# end of the list: their copies in Sundial's objects still join the agent's code, and the whole
# objects they bring (the toolchain's 487 KB regex parser, FoundationEssentials' JSONDecoder,
# which the agent never runs) come after it instead of splitting it. Measured on an idle agent
# with 1,000 jobs (docs/benchmarks.md, eighteenth session), code mapped: names left out
# altogether (seventeenth session) 4.7-5.0 MiB, kept only when safe 4.3-4.5, at the end 3.7-3.9,
# in place 3.6-4.1.
import collections, glob, os, shutil, subprocess
def definitions(paths):
    """name -> the objects (files, or archive:member) that define it."""
    where = collections.defaultdict(set)
    for chunk in range(0, len(paths), 200):
        # Not check=True: nm fails on an archive member that is not an object, and goes on.
        out = subprocess.run(["nm", "-A", "--defined-only"] + paths[chunk:chunk + 200], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) == 3 and parts[1] in "tTwW":
                where[parts[2]].add(parts[0].rsplit(":", 1)[0])
    return where
defined = collections.Counter()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split(maxsplit=2)
    if len(parts) == 3 and parts[1] in "tTwW":
        defined[parts[2]] += 1
# Every other object the link takes code from: the dependencies' objects (SwiftPM's list of the
# link's inputs) and the toolchain's static libraries.
OWN = ("SundialCore", "SundialConfig", "SundialRuntime", "sundial", "CSundialShim", "CSundialExecutor")
bin_dir = os.environ["SUNDIAL_BIN"]
link_inputs = [l.strip().strip('"') for l in open(os.path.join(bin_dir, "sundial.product", "Objects.LinkFileList")) if l.strip()]
own = [p for p in link_inputs if os.path.basename(os.path.dirname(p))[: -len(".build")] in OWN]
others = [p for p in link_inputs if p not in own]
swiftc = shutil.which("swiftc") or ""
static_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(swiftc))), "lib", "swift_static")
archives = sorted(glob.glob(os.path.join(static_dir, "**", "*.a"), recursive=True))
if not others or not archives:
    sys.exit("order-symbols: cannot find the dependencies' objects or the toolchain's static libraries")
elsewhere = definitions(others + archives)
everywhere = definitions(own + others + archives)
# What the launcher's vfork child runs before its exec: callgrind does not follow that child, but
# it runs at every fire. Listed after the agent's own functions.
VFORK_CHILD = ["spawn_child", "child_fail"]
# The C start-up code, which callgrind shows only as "(below main)", and crtbegin's constructor
# runner.
START = ["_start", "frame_dummy", "register_tm_clones"]
profiled = []
for i, profile in enumerate(profiles):
    profiled += (START if i == 0 else []) + executed(profile, binary) + (VFORK_CHILD if i == 0 else [])
# The other objects that move anyway: those that are the only definition, among all the link's
# inputs, of a listed name. (Not merely one definition of a name the binary has once: the
# linker's --gc-sections drops unused copies, and a copy in the regex parser would pass.)
moving = set()
for name in profiled:
    providers = everywhere.get(name, set())
    if defined[name] == 1 and len(providers) == 1:
        moving |= providers & elsewhere.get(name, set())
seen, last = set(), []
for name in profiled:
    if name in seen or defined[name] == 0:
        continue
    seen.add(name)
    if defined[name] == 1 or elsewhere.get(name, set()) <= moving:
        print(name)
    else:
        last.append(name)
for name in last:
    print(name)
EOF
python3 - "$work/sundial" "$work/data.trace" "$(cat "$work/data.base")" >"$work/order.data" <<'EOF'
import bisect, collections, subprocess, sys
binary, trace, base = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
sections = {}
for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    if line.strip().startswith("[") and "]" in line:
        f = line.split("]", 1)[1].split()
        if len(f) > 4 and f[0] in (".rodata", ".data", ".bss"):
            start = int(f[2], 16)
            sections[f[0]] = (start, start + int(f[4], 16))
symbols, defined = [], collections.Counter()
for line in subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "dDbBrRvV":
        symbols.append((int(f[0], 16), max(int(f[1], 16), 1), f[3]))
        defined[f[3]] += 1
starts = [s[0] for s in symbols]
seen = set()
for line in open(trace):
    if line.strip() == "end":
        break
    address = int(line, 16) * 16 - base
    if not any(lo <= address < hi for lo, hi in sections.values()):
        continue
    # Every symbol that overlaps the granule (a granule can hold the end of one and the start
    # of the next, and the trace does not say which was read); merged strings and padding have
    # none, and stay where the linker puts them. Symbols start at most 64 KiB below.
    i = bisect.bisect_right(starts, address + 15) - 1
    here = []
    while i >= 0 and address - symbols[i][0] < 65536:
        if symbols[i][0] + symbols[i][1] > address:
            here.append(symbols[i][2])
        i -= 1
    for name in reversed(here):
        # A name defined more than once would move every copy, as for functions above: left out.
        if name not in seen and defined[name] == 1:
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
data=$(wc -l <"$work/order.data")
if [ "$data" -lt 1000 ]; then
  echo "order-symbols: only $data data symbols found in the trace; packaging/sundial.order left as it was" >&2
  exit 1
fi
cat "$work/order" "$work/order.data" >"$work/order.all"
mv "$work/order.all" packaging/sundial.order
echo "order-symbols: $count functions and $data data symbols in packaging/sundial.order"
# The build does not track the list as an input of the link: relink by removing the output.
rm -f "$bin/sundial"
swift build -c release --static-swift-stdlib -Xswiftc -Osize --product sundial
