#!/usr/bin/python3
"""Orchestration of `bench/run` (issue 9): Sundial side by side with Debian's cron and the
machine's physical limits, in one run.

Stdlib only, so that it runs on a fresh Debian machine with nothing but the system's Python.
`bench/run` (bash) installs what is missing, builds the release binaries and calls this file;
read that script first. Every process started here goes through `Procs`, which records its pid
(and start time, so that a recycled pid is never signalled) in WORK/pids: the normal path stops
them in a `finally`, and `bench/run`'s EXIT trap calls `--cleanup WORK` in case this process
itself was killed.

Figures are medians over the repetitions with the min-max range. Nothing here fails on a
timing: a missed target is written down as such. Only a broken set-up (a binary missing, an
agent that does not start) makes the run fail.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sqlite3
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
BEGIN = "<!-- bench/run:begin -->"
END = "<!-- bench/run:end -->"

# The figures to reach (issues 5, 9 and 15).
IDLE_ANON_TARGET_MIB = 4.0
IDLE_PSS_TARGET_MIB = 6.0
DISK_PER_FIRE_TARGET_BYTES = 4096  # "4 KB": one page, the unit in which write_bytes counts
SINGLE_JOB_P50_TARGET_MS = 2.0
BURST_RATIO_TARGET = 1.5
# Issue 16: one job due, and one among others due at the same instant, against the C loop.
SERIES_RATIO_TARGET = 1.2
SERIES_SIZES = (1, 5)
# Bursts per series in the full run (one a second). Sixty, because fifteen left the five-jobs ratio
# to chance: full runs of builds that differ in nothing at a fire read from 0.87× to 1.39×, where
# `bench/lateness-ab` with 60 fires read 1.05× and 1.11× (twentieth session). Costs three minutes.
SERIES_FIRES = 60
SERIES_FIRES_QUICK = 6
LAUNCH_RATIO_TARGET = 0.5
# Issue 15's speed figures, each for 10,000 jobs (1,000 for the reload).
VALIDATE_CPU_TARGET_S = 0.2
STARTUP_CPU_TARGET_S = 0.25
IDLE_ANON_10K_TARGET_MIB = 10.0
SIGHUP_RELOAD_TARGET_MS = 15.0
# The starts whose CPU `startup_cpu` measures, as they are keyed and named.
STARTUP_VARIANTS = (("100-fresh", "100 files, fresh state"), ("1-fresh", "one file, fresh state"),
                    ("100-existing", "100 files, existing state"), ("1-existing", "one file, existing state"))
# Repetitions of the whole-minute slots in the full run (each one minute per size). Five, because
# three left the 100-job ratio to the slot: the C loop's burst took 26.6, 28.3 and 34.6 ms in one
# run, Sundial's 37.8, 49.0 and 51.9 ms, and the verdict read 1.43× in one run and 1.74× in the
# next (twentieth session). Costs six minutes.
LATENESS_REPS = 5
# How long every scheduler under test sleeps before a whole-minute (or first) fire: Sundial's agents
# and cron are started this long before their minute, and the C loop's whole-minute bursts and
# first fires sleep as long. The same for all, because a job starts later after a long sleep (in
# its creation, not in the wake-up): on the development machine a fresh C process that slept 15 s
# started its job 2.2 ms late (median of 8), one that slept 1.5 s 1.1 ms late (docs/benchmarks.md,
# seventeenth session).
SLOT_LEAD_S = 15
# The C loop's whole-minute burst fires this long after Sundial's, in the same minute slot.
C_BURST_OFFSET_S = 30


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# MARK: - Processes


def start_time_of(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks): with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


class Procs:
    """Every process the benchmark starts, stopped by pid at the end whatever happens."""

    def __init__(self, work):
        self.pidfile = os.path.join(work, "pids")
        self.live = {}

    def start(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        self.live[p.pid] = p
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid} {start_time_of(p.pid)}\n")
        return p

    def run(self, argv, timeout, **kw):
        """Runs to completion (killed after `timeout` s); returns (exit code, stdout text)."""
        kw.setdefault("stdout", subprocess.PIPE)
        p = self.start(argv, text=True, **kw)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p, signal.SIGKILL)
            raise RuntimeError(f"timed out after {timeout} s: {' '.join(argv)}")
        self.live.pop(p.pid, None)
        return p.returncode, out or ""

    def stop(self, p, sig=signal.SIGTERM, grace=5.0):
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        self.live.pop(p.pid, None)

    def stop_all(self):
        for p in list(self.live.values()):
            self.stop(p, grace=3.0)


def cleanup(work):
    """For bench/run's EXIT trap: stops what a killed orchestrator left running, by pid."""
    path = os.path.join(work, "pids")
    if not os.path.exists(path):
        return
    for line in open(path):
        pid, started = line.split()
        pid = int(pid)
        if start_time_of(pid) != started:
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            for _ in range(30):
                if start_time_of(pid) != started:
                    break
                time.sleep(0.1)
            else:
                continue
            break


# MARK: - /proc sampling and statistics


def smaps_rollup(pid):
    """kB figures of /proc/PID/smaps_rollup (Linux 4.14): `Pss` (each resident page divided by
    the number of processes mapping it: what this process costs the machine), `Pss_Anon`,
    `Pss_File` (Linux 5.9), `Rss`, `Anonymous`."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Anonymous"):
                out[k] = int(v.split()[0])
    return out


def io_counters(pid):
    """/proc/PID/io: `write_bytes` counts the bytes this process caused to be written to a block
    device (a page when it first dirties it in the page cache, or on direct I/O); the kernel adds
    the counters of exited threads and of reaped children. `cancelled_write_bytes` is what it
    dirtied and then truncated away before writeback."""
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = int(v)
    return out


def sample(pid):
    """RSS, peak RSS, anonymous memory, PSS, CPU seconds and context switches summed over all threads."""
    s = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "Threads"):
                s[k] = int(v.split()[0])
    roll = smaps_rollup(pid)
    s["Pss"] = roll.get("Pss", 0)
    s["Pss_Anon"] = roll.get("Pss_Anon")
    s["Pss_File"] = roll.get("Pss_File")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    s["cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    s["tasks"] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        vol = invol = 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except OSError:
            continue  # a thread that ended meanwhile
        s["tasks"][tid] = (vol, invol)
    return s


def switches(before, after):
    """Context switches during a window, per thread: a thread started in the window counts in
    full; one that ended in it is lost (its counters go with it), so this is a lower bound."""
    vol = invol = 0
    for tid, (v, i) in after["tasks"].items():
        v0, i0 = before["tasks"].get(tid, (0, 0))
        vol += v - v0
        invol += i - i0
    ended = len(set(before["tasks"]) - set(after["tasks"]))
    return vol, invol, ended


def cpu_ticks(pid, children):
    """User + system clock ticks of `pid`, with those of its reaped children when `children`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15 if children else 13])


def cpu_until_quiet(pid, children, quiet_s=0.5, timeout=120.0):
    """CPU seconds `pid` has used from its exec until its count stayed unchanged for `quiet_s`
    (start-up done: the agent then sleeps until its first fire, cron until its next minute)."""
    last = cpu_ticks(pid, children)
    still = time.monotonic()
    end = still + timeout
    while time.monotonic() < end:
        time.sleep(0.05)
        now = cpu_ticks(pid, children)
        if now != last:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet_s:
            return last / CLK_TCK
    raise RuntimeError(f"pid {pid} never went quiet in {timeout:.0f} s")


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def agg(values):
    """Median with range over repetitions."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def fmt(a, digits=1, unit=""):
    if a is None:
        return "—"
    if not isinstance(a, dict):
        return f"{a:,.{digits}f}{unit}"
    m = f"{a['median']:,.{digits}f}"
    if a["n"] > 1 and (a["min"] != a["max"]):
        return f"{m}{unit} [{a['min']:,.{digits}f}–{a['max']:,.{digits}f}]"
    return f"{m}{unit}"


def loadavg():
    return os.getloadavg()[0]


# MARK: - The agent's log


def events(path):
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def wait_event(path, name, count=1, timeout=120.0, proc=None):
    """Waits until the log holds `count` events named `name`; returns the last one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events(path) if e.get("event") == name]
        if len(found) >= count:
            return found[count - 1]
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the agent exited ({proc.returncode}) before {name}; log: {path}")
        time.sleep(0.005)
    raise RuntimeError(f"no {name} event within {timeout} s in {path}")


def read_stamps(path):
    """The stamp program's lines: id -> start time (seconds since the epoch, ns resolution)."""
    stamps = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    stamps.setdefault(parts[0], []).append(float(parts[1]))
    except OSError:
        pass
    return stamps


def lateness_stats(starts, target, n):
    """p50/p99/max lateness and time until all started (ms) of one burst due at `target`."""
    lat = sorted((t - target) * 1000 for t in starts)
    return {
        "n": n, "started": len(lat), "missing": n - len(lat),
        "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": lat[-1] if lat else None,
        "all_started_ms": lat[-1] if len(lat) == n else None,
        "first_ms": lat[0] if lat else None,
    }


def series_stats(starts, instants):
    """Seconds-field fires: for each instant the time until its last job started (ms); p50/p99/max
    over the instants where every job started within half a second."""
    lasts = []
    for s in instants:
        mine = [t for t in starts if s <= t < s + 0.5]
        if mine:
            lasts.append((mine, (max(mine) - s) * 1000))
    if lasts:
        n = max(len(m) for m, _ in lasts)
        lasts = [x for m, x in lasts if len(m) == n]
    lasts.sort()
    return {"samples": len(lasts), "p50_ms": pct(lasts, 50), "p99_ms": pct(lasts, 99),
            "max_ms": lasts[-1] if lasts else None}


class EventPipe:
    """The agent's event log on a pipe (`--log -`): nothing reaches a disk, as with /dev/null, and
    the benchmark still sees which fires happened. Keeps only, for each `run.started`, when it
    arrived and its scheduled instant (bounded by the phase's length), and whether `config.loaded`
    came."""

    def __init__(self, stream):
        self.started = []  # (time.monotonic() at arrival, scheduled_for in seconds since the epoch)
        self.loaded = threading.Event()
        self.lines = 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines += 1
            if '"run.started"' not in line and '"config.loaded"' not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "config.loaded":
                self.loaded.set()
            elif e.get("event") == "run.started" and e.get("scheduled_for"):
                self.started.append((time.monotonic(), parse_ts(e["scheduled_for"])))

    def fires_between(self, m0, m1):
        """Scheduled instants of the runs started between two `time.monotonic()` readings: by
        arrival, so that a window counts the fires whose writes it saw even when a loaded agent
        runs behind its schedule."""
        return [t for at, t in list(self.started) if m0 <= at < m1]


def db_files_bytes(state):
    """The state database's files (main, -wal, -shm) in a state directory, by name."""
    out = {}
    for name in sorted(os.listdir(state)):
        path = os.path.join(state, name)
        if os.path.isfile(path) and (name.endswith(".db") or name.endswith("-wal") or name.endswith("-shm")):
            out[name] = os.path.getsize(path)
    return out


# Default retention (StateRetention.default): 500 finished runs and 1,440 ledger entries per job,
# nothing older than 30 days. What a typical box (50 hourly, 5 minutely jobs) keeps once it has
# run 30 days: every job's 500 newest runs (a minutely job reaches the cap in 8 h, an hourly one in
# 21 days), a minutely job's 1,440 newest ledger entries, an hourly one's 720 (30 days).
TYPICAL_HOURLY, TYPICAL_MINUTELY = 50, 5
TYPICAL_RETAINED = {"runs": 500 * (TYPICAL_HOURLY + TYPICAL_MINUTELY),
                    "attempts": 500 * (TYPICAL_HOURLY + TYPICAL_MINUTELY),
                    "ledger": 1440 * TYPICAL_MINUTELY + 720 * TYPICAL_HOURLY}


def steady_state_estimate(db_path, workdir):
    """Bytes per row of each table of a stopped agent's database (its b-tree and indexes, from
    SQLite's `dbstat`), and the size they give for a typical box's retained rows. Works on a
    copy, so SQLite's recovery never touches the agent's files. None if `dbstat` is missing or a
    table the estimate needs is not there (a schema change: then only the measured sizes count)."""
    copy = os.path.join(workdir, "steady-copy.db")
    for suffix in ("", "-wal"):
        if os.path.exists(db_path + suffix):
            shutil.copy2(db_path + suffix, copy + suffix)
    try:
        con = sqlite3.connect(copy)
        try:
            owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
            pages = {}
            for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                t = owner.get(name, name)
                pages[t] = pages.get(t, 0) + size
            rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TYPICAL_RETAINED if t in owner}
            page_size = con.execute("PRAGMA page_size").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if any(rows.get(t, 0) == 0 for t in TYPICAL_RETAINED):
        return None
    per_row = {t: pages[t] / rows[t] for t in TYPICAL_RETAINED}
    rest = sum(v for t, v in pages.items() if t not in TYPICAL_RETAINED)  # jobs, agent, schema: small
    estimate = sum(per_row[t] * TYPICAL_RETAINED[t] for t in TYPICAL_RETAINED) + rest
    return {"bytes_per_row": per_row, "rows": rows, "page_size": page_size, "other_bytes": rest,
            "typical_box_bytes": estimate, "retained_rows": TYPICAL_RETAINED}


# MARK: - The benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.only = set(args.only.split(",")) if getattr(args, "only", None) else None
        self.work = args.work
        self.bin = args.bin
        self.sundial = os.path.join(self.bin, "sundial")
        self.sbench = os.path.join(self.bin, "sundial-bench")
        self.procs = Procs(self.work)
        self.reps = 1 if self.quick else 3
        self.results = {"mode": "quick" if self.quick else "full", "commands": {}, "notes": []}
        self.t_start = time.monotonic()
        self.cron_ok = False

    def cmd(self, key, argv):
        """Records the exact command of a measurement for the report."""
        def quote(a):
            a = a.replace(self.work, "$WORK").replace(ROOT + "/", "")
            # $WORK stays readable: it is the scratch directory bench/run creates.
            return a if re.fullmatch(r"[\w$/.,:%=+-]+", a) else shlex.quote(a)
        shown = " ".join(quote(a) for a in argv)
        self.results["commands"].setdefault(key, shown)

    def note(self, text):
        log("note: " + text)
        self.results["notes"].append(text)

    # -- setup

    def machine(self):
        def first(path, key):
            try:
                for line in open(path):
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
            except OSError:
                return None
        def version(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
            except Exception:
                return None
        def dpkg(name):
            return version(["dpkg-query", "-W", "-f=${Version}", name])
        try:
            commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                    text=True).stdout.strip()
        except Exception:
            commit = "unknown"
        mem_kb = int(first("/proc/meminfo", "MemTotal").split()[0])
        self.results["machine"] = {
            "cpu": first("/proc/cpuinfo", "model name"), "cpus": os.cpu_count(),
            "memory_gib": round(mem_kb / 1048576, 1), "kernel": platform.release(),
            "os": (open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else platform.platform()),
            "swift": version(["swift", "--version"]) if shutil.which("swift") else None,
            "cron": dpkg("cron"), "gcc": version(["gcc", "--version"]), "python": platform.python_version(),
        }
        self.results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.results["commit"] = commit
        self.results["load_start"] = loadavg()

    def compile_tools(self):
        tools = os.path.join(self.work, "tools")
        os.makedirs(tools, exist_ok=True)
        here = os.path.dirname(os.path.abspath(__file__))
        self.stamp = os.path.join(tools, "stamp")
        self.limits = os.path.join(tools, "limits")
        # Static: no dynamic loader in the measured start-up. Falls back to dynamic if libc.a is missing.
        for argv in (["gcc", "-O2", "-static", "-o", self.stamp, os.path.join(here, "stamp.c")],
                     ["gcc", "-O2", "-o", self.stamp, os.path.join(here, "stamp.c")]):
            if subprocess.run(argv).returncode == 0:
                self.results["stamp_static"] = "-static" in argv
                break
        else:
            raise RuntimeError("cannot compile bench/stamp.c")
        if subprocess.run(["gcc", "-O2", "-o", self.limits, os.path.join(here, "limits.c")]).returncode != 0:
            raise RuntimeError("cannot compile bench/limits.c")

    def check_cron(self):
        """cron runs in a private mount namespace with its own crontab, cron.d, spool and /run
        (for its pid file) bound over the machine's, so several instances run at once and the
        machine's own crontabs are neither read nor touched."""
        if not os.path.exists("/usr/sbin/cron"):
            self.note("Debian's cron is not installed: cron columns are empty")
            return
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "true"], capture_output=True)
        if r.returncode != 0:
            self.note("cannot create a mount namespace (unshare): cron columns are empty")
            return
        self.cron_ok = True

    def start_cron(self, name, lines):
        """Debian's cron in its own mount namespace, from its own copy of /usr/sbin/cron (see
        `own_copy`)."""
        d = os.path.join(self.work, "cron", name)
        for sub in ("cron.d", "spool", "run"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "cron.d"), 0o755)
        with open(os.path.join(d, "crontab"), "w") as f:
            f.write("SHELL=/bin/sh\nMAILTO=\"\"\n")
        with open(os.path.join(d, "cron.d", "bench"), "w") as f:
            f.write("MAILTO=\"\"\n" + "".join(l + "\n" for l in lines))
        os.chmod(os.path.join(d, "cron.d", "bench"), 0o644)
        os.chmod(os.path.join(d, "crontab"), 0o644)
        script = ('mount --bind "$1/cron.d" /etc/cron.d && mount --bind "$1/crontab" /etc/crontab && '
                  'mount --bind "$1/spool" /var/spool/cron/crontabs && mount --bind "$1/run" /run && '
                  'exec "$2" -f -L 0')
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", d,
                self.own_copy("/usr/sbin/cron", f"cron-{name}")]
        self.cmd("cron", argv)
        return self.procs.start(argv, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC"},
                                stdout=open(os.path.join(d, "out.log"), "w"), stderr=subprocess.STDOUT)

    def start_agent(self, name, config, extra=(), binary=None):
        d = os.path.join(self.work, "agents", name)
        os.makedirs(d, exist_ok=True)
        logf = os.path.join(d, "events.log")
        argv = [binary or self.sundial, "run", config, "--state", os.path.join(d, "state"), "--log", logf, *extra]
        self.cmd("agent", argv)
        t0 = time.time()
        p = self.procs.start(argv, stdout=open(os.path.join(d, "stdout"), "w"), stderr=subprocess.STDOUT, cwd=d)
        return p, logf, t0

    def own_copy(self, path, name):
        """A copy of the executable at `path` for one process alone. PSS divides each page by the
        number of processes that map it: agents (or crons) of one binary running side by side would
        share its file pages and each show a fraction of what it costs a box where it runs alone."""
        d = os.path.join(self.work, "bin", name)
        os.makedirs(d, exist_ok=True)
        dest = os.path.join(d, os.path.basename(path))
        if not os.path.exists(dest):
            shutil.copy2(path, dest)
        return dest

    def gen_config(self, name, jobs, files, not_due=True):
        d = os.path.join(self.work, "configs", name)
        if not os.path.exists(d):
            os.makedirs(os.path.dirname(d), exist_ok=True)  # gen-config creates only the last level
            argv = [self.sbench, "gen-config", d, str(jobs), str(files)] + (["--not-due"] if not_due else [])
            self.cmd("gen-config", argv)
            rc, out = self.procs.run(argv, timeout=120)
            if rc != 0:
                raise RuntimeError(f"gen-config failed: {out}")
        return d

    # -- 3. physical limits

    def phase_limits(self):
        log("physical limits: fork+exec loop, clock_nanosleep, stamp start-up")
        n_fork = 500 if self.quick else 2000
        n_sleep = 200 if self.quick else 500
        n_start = 100 if self.quick else 300
        forks, sleeps_p50, sleeps_p99, startup_p50, startup_p99 = [], [], [], [], []
        for _ in range(self.reps):
            argv = [self.limits, "forkloop", str(n_fork)]
            self.cmd("forkloop", argv)
            rc, out = self.procs.run(argv, timeout=120)
            forks.append(float(out.strip()))
            argv = [self.limits, "sleeplat", str(n_sleep)]
            self.cmd("sleeplat", argv)
            rc, out = self.procs.run(argv, timeout=120)
            lat = [int(x) / 1000 for x in out.split()]
            sleeps_p50.append(pct(lat, 50))
            sleeps_p99.append(pct(lat, 99))
            sfile = os.path.join(self.work, f"startup-{len(forks)}.txt")
            argv = [self.limits, "startup", str(n_start), self.stamp, sfile]
            self.cmd("startup", argv)
            rc, out = self.procs.run(argv, timeout=120)
            stamps = read_stamps(sfile)
            cost = []
            for line in out.split("\n"):
                if line.strip():
                    i, t0 = line.split()
                    if i in stamps:
                        cost.append((stamps[i][0] - float(t0)) * 1e6)
            startup_p50.append(pct(cost, 50))
            startup_p99.append(pct(cost, 99))
        self.results["limits"] = {
            "fork_exec_per_s": agg(forks), "nanosleep_p50_us": agg(sleeps_p50), "nanosleep_p99_us": agg(sleeps_p99),
            "stamp_startup_p50_us": agg(startup_p50), "stamp_startup_p99_us": agg(startup_p99),
            "n_fork": n_fork, "n_sleep": n_sleep, "n_startup": n_start,
        }

    @staticmethod
    def summarise_runs(runs):
        out = {"runs": runs}
        for k in ("p50_ms", "p99_ms", "max_ms", "all_started_ms", "first_ms"):
            out[k] = agg([r[k] for r in runs])
        out["missing"] = sum(r["missing"] for r in runs)
        return out

    # -- Sundial's own launch benchmark

    def phase_runner_launch(self):
        log("sundial-bench runner-launch")
        n = "300" if self.quick else "2000"
        serial, cloop, inflight = [], [], []
        for _ in range(self.reps):
            argv = [self.sbench, "runner-launch", n, "4"]
            self.cmd("runner-launch", argv)
            rc, out = self.procs.run(argv, timeout=300)
            m = re.search(r"one at a time:\s+(\d+) /s", out)
            c = re.search(r"fork\+exec\+waitpid loop:\s+(\d+) /s", out)
            f = re.search(r"\d+ in flight:\s+(\d+) /s", out)
            if not m:
                raise RuntimeError("runner-launch printed no rate:\n" + out)
            serial.append(float(m.group(1)))
            cloop.append(float(c.group(1)) if c else None)
            inflight.append(float(f.group(1)) if f else None)
        self.results["runner_launch"] = {"serial_per_s": agg(serial), "in_process_fork_loop_per_s": agg(cloop),
                                         "four_in_flight_per_s": agg(inflight), "n": int(n)}

    # -- 5. validation

    def phase_validate(self):
        log("sundial validate: 10,000 jobs in 100 files")
        d = self.gen_config("validate-10000", 10000, 100, not_due=False)
        wall, rss, cpu = [], [], []
        for r in range(self.reps):
            tfile = os.path.join(self.work, f"validate-time-{r}")
            argv = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tfile, self.sundial, "validate", d]
            self.cmd("validate", argv)
            rc, out = self.procs.run(argv, timeout=300)
            if rc != 0:
                raise RuntimeError(f"sundial validate failed ({rc}): {out[-2000:]}")
            e, m, u, s = open(tfile).read().split()[-4:]
            wall.append(float(e))
            rss.append(int(m) / 1024)
            cpu.append(float(u) + float(s))
        self.results["validate"] = {"jobs": 10000, "files": 100, "wall_s": agg(wall), "max_rss_mib": agg(rss),
                                    "cpu_s": agg(cpu)}

    # -- 4. load and reload

    def phase_load(self):
        log("start-up with 10,000 jobs")
        d = self.gen_config("idle-10000", 10000, 100)
        start, rss, hwm, anon, pss = [], [], [], [], []
        for r in range(self.reps):
            p, logf, t0 = self.start_agent(f"load-{r}", d)
            e = wait_event(logf, "config.loaded", proc=p)
            start.append((parse_ts(e["ts"]) - t0) * 1000)
            time.sleep(1.0)
            s = sample(p.pid)
            rss.append(s["VmRSS"] / 1024)
            hwm.append(s["VmHWM"] / 1024)
            anon.append(s.get("RssAnon", 0) / 1024)
            pss.append(s["Pss"] / 1024)
            self.procs.stop(p)
        self.results["load"] = {"jobs": 10000, "files": 100, "startup_ms": agg(start), "rss_mib": agg(rss),
                                "peak_rss_mib": agg(hwm), "anon_mib": agg(anon), "pss_mib": agg(pss)}
        self.startup_cpu()

        log("reload of a 1,000-job set")
        d = os.path.join(self.work, "configs", "reload-1000")
        shutil.copytree(self.gen_config("reload-src", 1000, 10), d)
        p, logf, _ = self.start_agent("reload", d)
        wait_event(logf, "config.loaded", proc=p)
        target = os.path.join(d, "jobs-0000.yaml")
        original = open(target).read()
        watch, hup = [], []
        loads = 1
        reps = 3 if self.quick else 5
        for r in range(reps):
            for how in ("watch", "sighup"):
                time.sleep(0.8)  # past the watcher's debounce of the previous change
                text = original.replace("Generated job 0 of file 0", f"Generated job 0 of file 0, {how} {r}")
                tmp = target + ".tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                t0 = time.time()
                os.rename(tmp, target)  # atomic, as config management writes files
                if how == "sighup":
                    os.kill(p.pid, signal.SIGHUP)
                loads += 1
                e = wait_event(logf, "config.loaded", count=loads, timeout=30, proc=p)
                if e.get("changed") != ["job-0-0"]:
                    self.note(f"reload {how} {r}: unexpected change set {e.get('changed')}")
                (watch if how == "watch" else hup).append((parse_ts(e["ts"]) - t0) * 1000)
        time.sleep(0.8)
        self.procs.stop(p)
        self.cmd("reload-sighup", ["kill", "-HUP", "PID"])
        self.results["reload"] = {"jobs": 1000, "files": 10, "debounce_ms": 250,
                                  "file_change_ms": agg(watch), "sighup_ms": agg(hup), "samples": reps}

    def startup_cpu(self):
        """Issue 15: the CPU a start with 10,000 jobs costs, from `exec` until the process goes
        quiet, in one file and in 100, on a fresh state and on an existing one (a state directory
        made by one unmeasured start, then started on again); and Debian's cron starting on
        10,000 entries in the same run. The agent's figure includes its loader child (reaped, so
        in the agent's `cutime`/`cstime`); cron's is its own (`utime`/`stime`: the shell that
        mounts its private files before `exec`ing it is part of it, the `mount`s are not)."""
        log("start-up CPU until quiet: 10,000 jobs, 100 files and one, fresh and existing state; cron beside")
        out = {}
        for files in (100, 1):
            config = self.gen_config("idle-10000" if files == 100 else "startup-10000-1", 10000, files)
            for existing in (False, True):
                key = f"{files}-{'existing' if existing else 'fresh'}"
                cpu = []
                runs = self.reps + (1 if existing else 0)
                for r in range(runs):
                    name = f"startup-{key}" if existing else f"startup-{key}-{r}"
                    agent_dir = os.path.join(self.work, "agents", name)
                    if not existing or r == 0:
                        shutil.rmtree(agent_dir, ignore_errors=True)
                    else:
                        os.remove(os.path.join(agent_dir, "events.log"))  # keep the state, not the last log
                    p, logf, _ = self.start_agent(name, config)
                    wait_event(logf, "config.loaded", proc=p)
                    seconds = cpu_until_quiet(p.pid, children=True)
                    self.procs.stop(p)
                    if existing and r == 0:
                        continue  # the start that makes the state
                    cpu.append(seconds)
                out[key] = agg(cpu)
        if self.cron_ok:
            cpu = []
            for r in range(self.reps):
                p = self.start_cron(f"startup-{r}", self.cron_idle_lines(10000))
                # Quiet is judged from cron's own start: before its `exec`, the shell waits on the
                # `mount`s, whose CPU is not its own, and a slow mount must not read as quiet.
                end = time.monotonic() + 30
                while not os.readlink(f"/proc/{p.pid}/exe").endswith("/cron"):
                    if time.monotonic() > end or p.poll() is not None:
                        raise RuntimeError("cron did not start")
                    time.sleep(0.005)
                cpu.append(cpu_until_quiet(p.pid, children=False))
                self.procs.stop(p)
            out["cron"] = agg(cpu)
        self.results["startup_cpu"] = out

    # -- 1. idle footprint

    def cron_idle_lines(self, n):
        """n entries that are not due during the benchmark: a day of the month 10 days away."""
        dom = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)).day
        dom = min(dom, 28)
        return [f"{i % 60} {(i // 60) % 24} {dom} * * root /bin/true --job idle-{i}" for i in range(n)]

    def phase_idle(self):
        window = 10.0 if self.quick else 60.0
        sizes = [10, 1000, 10000]
        log(f"idle footprint: {sizes} jobs, {window:.0f} s window, {self.reps} repetition(s), all side by side")
        configs = {n: self.gen_config(f"idle-{n}", n, max(1, n // 100)) for n in sizes}
        # Each agent from its own copy of the binary, each cron from its own copy of cron:
        # side by side they would otherwise share (and split) one binary's pages in PSS.
        binaries = {n: self.own_copy(self.sundial, f"sundial-idle-{n}") for n in sizes}
        raw = {f"{who}-{n}": [] for n in sizes for who in ("sundial", "cron")}
        for r in range(self.reps):
            procs = {}
            for n in sizes:
                procs[f"sundial-{n}"] = self.start_agent(f"idle-{n}-{r}", configs[n], binary=binaries[n])
                if self.cron_ok:
                    procs[f"cron-{n}"] = (self.start_cron(f"idle-{n}-{r}", self.cron_idle_lines(n)), None, None)
            for key, (p, logf, _) in procs.items():
                if logf:
                    wait_event(logf, "config.loaded", proc=p)
            time.sleep(2.0 if self.quick else 5.0)
            before = {k: sample(p.pid) for k, (p, _, _) in procs.items()}
            t0 = time.monotonic()
            time.sleep(window)
            after = {k: sample(p.pid) for k, (p, _, _) in procs.items()}
            elapsed = time.monotonic() - t0
            for k, (p, logf, _) in procs.items():
                a, b = after[k], before[k]
                vcs, nvcs, ended = switches(b, a)
                runs = sum(1 for e in events(logf) if e.get("event") == "run.started") if logf else 0
                raw[k].append({
                    "rss_mib": a["VmRSS"] / 1024, "anon_mib": a.get("RssAnon", 0) / 1024, "pss_mib": a["Pss"] / 1024,
                    "pss_anon_mib": a["Pss_Anon"] / 1024 if a["Pss_Anon"] is not None else None,
                    "pss_file_mib": a["Pss_File"] / 1024 if a["Pss_File"] is not None else None,
                    "cpu_s": a["cpu_s"] - b["cpu_s"],
                    "vcs": vcs, "nvcs": nvcs, "threads": a.get("Threads"), "threads_ended": ended,
                    "window_s": elapsed, "runs_started": runs,
                })
                if runs:
                    self.note(f"idle {k}: {runs} run(s) started although no job should be due")
            for p, _, _ in procs.values():
                self.procs.stop(p)
        out = {"window_s": window, "raw": raw}
        for k, runs in raw.items():
            if runs:
                out[k] = {m: agg([x[m] for x in runs]) for m in ("rss_mib", "anon_mib", "pss_mib", "pss_anon_mib", "pss_file_mib",
                                                                "cpu_s", "vcs", "nvcs", "threads")}
        self.results["idle"] = out

    # -- 6. flash wear

    def start_piped_agent(self, name, jobs, schedule, env=None):
        """An agent with `jobs` jobs running /bin/true on `schedule`, its event log on a pipe
        (EventPipe). /bin/true writes nothing: the kernel adds a reaped child's I/O to its
        parent's /proc/PID/io, so a job that wrote would be counted as the agent's. `env`: extra
        environment variables for the agent."""
        d = os.path.join(self.work, "configs", f"flash-{name}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "jobs.yaml"), "w") as f:
            f.write("version: 1\njobs:\n")
            for i in range(jobs):
                # `allow`: a fire whose previous run is still being reaped (a loaded machine) runs
                # too, instead of being skipped (a skip writes to the ledger but launches nothing).
                f.write(f"  tick-{i}:\n    schedule: \"{schedule}\"\n    timezone: UTC\n    concurrency: allow\n"
                        "    command: [/bin/true]\n")
        a = os.path.join(self.work, "agents", f"flash-{name}")
        os.makedirs(a, exist_ok=True)
        state = os.path.join(a, "state")
        argv = [self.sundial, "run", d, "--state", state, "--log", "-"]
        self.cmd("flash-agent", (" ".join(f"{k}={v}" for k, v in (env or {}).items()).split() + argv))
        p = self.procs.start(argv, stdout=subprocess.PIPE, stderr=open(os.path.join(a, "stderr"), "w"), cwd=a, text=True,
                             env={**os.environ, **(env or {})})
        return p, EventPipe(p.stdout), state

    def measure_writes(self, agents, period, ticks):
        """Waits until the agents are loaded, then measures `write_bytes` over `ticks` periods of
        `period` seconds, from the middle of one gap between fires to the middle of another, so
        that each window holds whole ticks: their commits, the WAL sync a second after them and
        the checkpoints that fall in it (see phase_flash for the typical box's compressed time;
        docs/state.md)."""
        for p, pipe, _ in agents:
            deadline = time.monotonic() + 60
            while not pipe.loaded.is_set():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the flash agent did not load (exit {p.poll()})")
                time.sleep(0.05)
        # Past start-up's writes (migrations, warm-up, the first checkpoint) and one tick.
        t0 = (int(time.time() + 3.0) // period + 1) * period + period / 2
        while time.time() < t0:
            time.sleep(min(0.05, max(0.0, t0 - time.time())))
        m0 = time.monotonic()
        before = [io_counters(p.pid) for p, _, _ in agents]
        t1 = t0 + ticks * period
        while time.time() < t1:
            time.sleep(min(0.05, max(0.0, t1 - time.time())))
        after = [io_counters(p.pid) for p, _, _ in agents]
        m1 = time.monotonic()
        out = []
        for (p, pipe, state), b, a in zip(agents, before, after):
            fires = pipe.fires_between(m0, m1)
            written = a["write_bytes"] - b["write_bytes"]
            cancelled = a["cancelled_write_bytes"] - b["cancelled_write_bytes"]
            out.append({"window_s": t1 - t0, "fires": len(fires), "ticks": len(set(fires)),
                        "write_bytes": written, "cancelled_write_bytes": cancelled,
                        "bytes_per_fire": (written - cancelled) / len(fires) if fires else None,
                        "bytes_per_tick": (written - cancelled) / len(set(fires)) if fires else None,
                        "db_files": db_files_bytes(state)})
        return out

    def phase_flash(self):
        # 30 s in the quick run too: it is issue 15's measure, and the figure grows with the
        # database over the first minutes (a 10 s window read 2.6-2.8 KB per fire where 30 s
        # read 4.6 KB, eighth session).
        window = 30
        log(f"flash wear: 100 per-second jobs for {window} s, event log on a pipe")
        p, pipe, state = self.start_piped_agent("per-second", 100, "* * * * * *")
        try:
            per_second = self.measure_writes([(p, pipe, state)], 1, window)[0]
        finally:
            self.procs.stop(p)
        db = os.path.join(state, "state.db")
        per_second["db_files_after_stop"] = db_files_bytes(state)
        per_second["fires_total"] = len(pipe.started)
        per_second["steady_state"] = steady_state_estimate(db, os.path.join(self.work, "agents", "flash-per-second")) \
            if os.path.exists(db) else None

        # A typical box, 50 hourly and 5 minutely jobs, in compressed time: a tick of 5 jobs
        # stands for a minute, one of 55 (both sets due together) for an hour. Ticks 15 s apart,
        # a quarter of a minute, and the store's checkpoint interval compressed alike (a quarter
        # of its 5 minutes), so that the ticks share checkpoints as a real box's minutes do: the
        # window is four such intervals (one in the quick run), whole ticks.
        ticks = 5 if self.quick else 20
        log(f"flash wear: a typical box's ticks (5 and 55 jobs), {ticks} ticks of each")
        compressed = {"SUNDIAL_CHECKPOINT_INTERVAL_MS": "75000"}
        agents = [self.start_piped_agent("typical-5", TYPICAL_MINUTELY, "*/15 * * * * *", compressed),
                  self.start_piped_agent("typical-55", TYPICAL_MINUTELY + TYPICAL_HOURLY, "*/15 * * * * *", compressed)]
        try:
            five, fifty_five = self.measure_writes(agents, 15, ticks)
        finally:
            for a in agents:
                self.procs.stop(a[0])
        day = None
        if five["bytes_per_tick"] is not None and fifty_five["bytes_per_tick"] is not None:
            day = (1440 - 24) * five["bytes_per_tick"] + 24 * fifty_five["bytes_per_tick"]
        fires_per_day = 1440 * TYPICAL_MINUTELY + 24 * TYPICAL_HOURLY
        self.results["flash"] = {
            "per_second": per_second, "typical_5": five, "typical_55": fifty_five,
            "typical_bytes_per_day": day, "typical_fires_per_day": fires_per_day,
            "typical_bytes_per_fire": day / fires_per_day if day is not None else None,
        }
        for name, x in (("per-second", per_second), ("typical 5", five), ("typical 55", fifty_five)):
            if x["ticks"] < (window if x is per_second else ticks) - 1:
                self.note(f"flash {name}: only {x['ticks']} ticks in the window")

    # -- 2. lateness

    def lateness_plan(self):
        """Minute slots: in each, Sundial's jobs fire at :00.000 and cron's (same minute) run from
        about :01, when cron wakes. Pairs are chosen so that one scheduler's burst is normally
        over before the other's begins (three minutes per repetition instead of six); Sundial's
        1,000 may outlast a second, so it shares its minute with cron's single job, and every
        slot is checked for overlap."""
        if self.quick:
            return [[("sundial", 100), ("cron", 1)]]
        slot = [[("sundial", 1), ("cron", 1000)], [("sundial", 100), ("cron", 100)], [("sundial", 1000), ("cron", 1)]]
        return [s for _ in range(LATENESS_REPS) for s in slot]

    def phase_lateness(self):
        plan = self.lateness_plan()
        if not self.cron_ok:
            plan = [[x for x in s if x[0] == "sundial"] for s in plan]
        count = SERIES_FIRES_QUICK if self.quick else SERIES_FIRES
        now = time.time()
        first = (int(now) // 60 + 1) * 60
        # Room before the first slot for the series (each size: the C loop's, then Sundial's) and
        # the slot's own 15 s of start-up.
        while first - now < len(SERIES_SIZES) * 2 * (count + 4) + SLOT_LEAD_S + 3:
            first += 60
        log(f"lateness: {len(plan)} minute slot(s) from {time.strftime('%H:%M', time.gmtime(first))} UTC; "
            f"seconds-field series (one job, then five; the C loop's, then Sundial's) until then")
        self.series_pairs(count)
        per = {}
        overlaps = []
        c_bursts = {}
        for k, slot in enumerate(plan):
            target = first + 60 * k
            res = self.run_slot(k, slot, target)
            for (who, n), stats in res.items():
                per.setdefault(f"{who}-{n}", []).append(stats)
            for who, n in slot:
                if who == "sundial":
                    c_bursts.setdefault(str(n), []).append(self.c_burst(k, n, target + C_BURST_OFFSET_S))
            s_end = [v["last_abs"] for (w, _), v in res.items() if w == "sundial" and v.get("last_abs")]
            c_start = [v["first_abs"] for (w, _), v in res.items() if w == "cron" and v.get("first_abs")]
            if s_end and c_start and s_end[0] > c_start[0]:
                overlaps.append(k)
                self.note(f"lateness slot {k}: Sundial's burst was still running when cron's began")
        out = {}
        for key, runs in per.items():
            for r in runs:
                r.pop("first_abs", None)
                r.pop("last_abs", None)
            out[key] = self.summarise_runs(runs)
        out["overlapping_slots"] = overlaps
        self.results["lateness"] = out
        self.results["c_burst"] = {n: self.summarise_runs(runs) for n, runs in c_bursts.items()}
        self.results["first_fires"] = self.first_fires(1 if self.quick else 16)

    def first_fires(self, pairs):
        """One job's first fire after a sleep of SLOT_LEAD_S, many times: a fresh C loop (`limits
        burst T 1`) and a fresh agent, alternating, each started SLOT_LEAD_S before an instant on a
        whole second (the agent's job is `S M H * * *`). The whole-minute slots give five such
        fires a run, too few to tell a build from the machine's noise; this gives `pairs` of each
        in 33 s a pair."""
        log(f"first fires: {pairs} pair(s) of a C loop and an agent, each idle {SLOT_LEAD_S} s before its instant")
        lat = {"c": [], "sundial": []}
        for k in range(pairs):
            for who in ("c", "sundial"):
                target = int(time.time()) + SLOT_LEAD_S
                out = os.path.join(self.work, f"first-{k}-{who}.txt")
                if who == "c":
                    argv = [self.limits, "burst", str(target), "1", self.stamp, out]
                    self.cmd("first fire (C)", argv)
                    p = self.procs.start(argv)
                else:
                    tm = time.gmtime(target)
                    d = os.path.join(self.work, "configs", f"first-{k}")
                    os.makedirs(d, exist_ok=True)
                    with open(os.path.join(d, "jobs.yaml"), "w") as f:
                        f.write(f"version: 1\njobs:\n  stamp:\n    schedule: \"{tm.tm_sec} {tm.tm_min} {tm.tm_hour} * * *\"\n"
                                f"    timezone: UTC\n    command: [{self.stamp}, \"0\", {out}]\n")
                    p, _, _ = self.start_agent(f"first-{k}", d)
                while time.time() < target + 5 and not read_stamps(out):
                    time.sleep(0.05)
                starts = [t for ts in read_stamps(out).values() for t in ts]
                if starts:
                    lat[who].append((min(starts) - target) * 1000)
                else:
                    self.note(f"first fire {k}: {who} did not start its job within 5 s")
                self.procs.stop(p, grace=10.0)
        return {who: {"samples": len(v), "p50_ms": pct(sorted(v), 50), "mean_ms": sum(v) / len(v) if v else None,
                      "min_ms": min(v, default=None), "max_ms": max(v, default=None),
                      "all_ms": [round(x, 3) for x in v]} for who, v in lat.items()}

    def c_burst(self, k, n, target):
        """The C loop's burst of `n` in slot `k`'s minute, half a minute after Sundial's (cron's own
        burst is over by then, and the next slot starts 15 s before its minute): measured beside
        Sundial's, as the limit of that minute, after the same 15 s asleep."""
        if time.time() > target - SLOT_LEAD_S + 2:
            self.note(f"lateness slot {k}: the C loop's burst started only {target - time.time():.1f} s before its instant")
        while time.time() < target - SLOT_LEAD_S:
            time.sleep(0.2)
        out = os.path.join(self.work, f"cburst-{n}-{k}.txt")
        argv = [self.limits, "burst", str(target), str(n), self.stamp, out]
        self.cmd("burst", argv)
        self.procs.run(argv, timeout=60)
        starts = [t for ts in read_stamps(out).values() for t in ts]
        return lateness_stats(starts, target, n)

    def run_slot(self, k, slot, target):
        tm = time.gmtime(target)
        while time.time() < target - SLOT_LEAD_S:
            time.sleep(0.2)
        started = []
        files = {}
        for who, n in slot:
            out = os.path.join(self.work, f"late-{k}-{who}-{n}.txt")
            files[(who, n)] = out
            if who == "sundial":
                d = os.path.join(self.work, "configs", f"late-{k}")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "jobs.yaml"), "w") as f:
                    f.write("version: 1\njobs:\n")
                    for i in range(n):
                        f.write(f"  stamp-{i}:\n    schedule: \"{tm.tm_min} {tm.tm_hour} * * *\"\n    timezone: UTC\n"
                                f"    command: [{self.stamp}, \"{i}\", {out}]\n")
                p, logf, _ = self.start_agent(f"late-{k}", d)
                wait_event(logf, "config.loaded", proc=p)
                started.append((who, n, p, logf))
            else:
                lines = [f"{tm.tm_min} {tm.tm_hour} * * * root {self.stamp} {i} {out}" for i in range(n)]
                started.append((who, n, self.start_cron(f"late-{k}", lines), None))
        if time.time() > target - 2:
            self.note(f"lateness slot {k}: the schedulers started only {target - time.time():.1f} s before the minute")
        deadline = target + (20 if self.quick else 40)
        while time.time() < deadline:
            if all(sum(len(v) for v in read_stamps(files[(w, n)]).values()) >= n for w, n, _, _ in started):
                break
            time.sleep(0.2)
        time.sleep(0.5)
        res = {}
        for who, n, p, logf in started:
            starts = [t for ts in read_stamps(files[(who, n)]).values() for t in ts]
            st = lateness_stats(starts, target, n)
            st["first_abs"] = min(starts) if starts else None
            st["last_abs"] = max(starts) if starts else None
            if logf:
                sched = {e.get("scheduled_for") for e in events(logf) if e.get("event") == "run.started"}
                if sched and {parse_ts(s) for s in sched} != {float(target)}:
                    self.note(f"lateness slot {k}: run.started scheduled_for {sorted(sched)} is not the minute")
            if st["missing"]:
                self.note(f"lateness slot {k}: {who} started {st['started']} of {n} jobs")
            res[(who, n)] = st
            self.procs.stop(p, grace=10.0)
        return res

    def series_pairs(self, count):
        """Seconds-field series: for one job, then five due together, `count` bursts a second apart
        from the C loop (`limits burst T N STAMP FILE COUNT`), then Sundial's agent with the same
        jobs on `* * * * * *` for as many seconds. Each pair runs back to back: measured minutes
        apart, the two drifted with the machine (five together read 0.87× in one run and 1.39× in
        another of the same build)."""
        series = {}
        for n in SERIES_SIZES:
            out = os.path.join(self.work, f"cseries-{n}.txt")
            target = int(time.time()) + 2
            argv = [self.limits, "burst", str(target), str(n), self.stamp, out, str(count)]
            self.cmd(f"burst series {n}", argv)
            self.procs.run(argv, timeout=120)
            starts = [t for ts in read_stamps(out).values() for t in ts]
            series[str(n)] = series_stats(starts, [target + k for k in range(count)])
            key = "lateness_extra" if n == 1 else f"lateness_extra{n}"
            self.results[key] = self.seconds_field_run(f"late-extra{n}", n, time.time() + count + 1.5)
        self.results["c_series"] = series

    def seconds_field_run(self, name, n, until):
        d = os.path.join(self.work, "configs", name)
        os.makedirs(d, exist_ok=True)
        out = os.path.join(self.work, f"{name}.txt")
        with open(os.path.join(d, "jobs.yaml"), "w") as f:
            f.write("version: 1\njobs:\n")
            for i in range(n):
                f.write(f"  stamp{i}:\n    schedule: \"* * * * * *\"\n    timezone: UTC\n"
                        f"    command: [{self.stamp}, \"x{i}\", {out}]\n")
        p, logf, _ = self.start_agent(name, d)
        wait_event(logf, "config.loaded", proc=p)
        while time.time() < until:
            time.sleep(0.2)
        self.procs.stop(p)
        sched = sorted({parse_ts(e["scheduled_for"]) for e in events(logf) if e.get("event") == "run.started"})
        starts = [t for ts in read_stamps(out).values() for t in ts]
        st = series_stats(starts, sched)
        return {"schedule": "* * * * * *", "jobs": n, **st}

    # -- everything

    def run(self):
        self.machine()
        self.compile_tools()
        self.check_cron()
        phases = [self.phase_limits, self.phase_runner_launch, self.phase_validate, self.phase_load,
                  self.phase_idle, self.phase_flash, self.phase_lateness]
        if self.only:
            phases = [ph for ph in phases if ph.__name__.removeprefix("phase_") in self.only]
        timings, loads = {}, {}
        for ph in phases:
            t = time.monotonic()
            ph()
            name = ph.__name__.removeprefix("phase_")
            timings[name] = round(time.monotonic() - t, 1)
            loads[name] = round(loadavg(), 2)  # the 1-minute average as the phase ends
        self.results["phase_seconds"] = timings
        self.results["phase_load"] = loads
        self.results["load_end"] = loadavg()
        self.results["total_seconds"] = round(time.monotonic() - self.t_start, 1)
        self.results["verdicts"] = self.verdicts()
        return self.results

    def verdicts(self):
        r = self.results
        v = []
        idle = r.get("idle", {})
        s1k, c1k = idle.get("sundial-1000"), idle.get("cron-1000")
        if s1k:
            sv = s1k["vcs"]["max"]
            cv = c1k["vcs"]["median"] if c1k else None
            v.append({"target": f"0 idle wake-ups in {idle['window_s']:.0f} s (1,000 jobs loaded, none due; voluntary context switches, "
                                "most of any repetition)",
                      "measured": f"Sundial {sv:.0f}, cron {cv:.0f}" if cv is not None else f"Sundial {sv:.0f}, cron not measured",
                      "met": sv == 0})
            def beside_cron(key):
                return f" (cron {c1k[key]['median']:.1f} MiB)" if c1k and c1k.get(key) else ""
            anon = s1k["anon_mib"]["median"]
            v.append({"target": f"idle RssAnon at most {IDLE_ANON_TARGET_MIB:g} MiB with 1,000 jobs",
                      "measured": f"{anon:.1f} MiB{beside_cron('anon_mib')}", "met": anon <= IDLE_ANON_TARGET_MIB})
            pss = s1k["pss_mib"]["median"]
            v.append({"target": f"idle PSS at most {IDLE_PSS_TARGET_MIB:g} MiB with 1,000 jobs",
                      "measured": f"{pss:.1f} MiB{beside_cron('pss_mib')}; VmRSS {s1k['rss_mib']['median']:.1f} MiB",
                      "met": pss <= IDLE_PSS_TARGET_MIB})
        fl = r.get("flash")
        if fl and fl.get("per_second") and fl["per_second"].get("bytes_per_fire") is not None:
            b = fl["per_second"]["bytes_per_fire"]
            v.append({"target": f"disk writes per fire at most {DISK_PER_FIRE_TARGET_BYTES:,} bytes (100 per-second jobs, "
                                "`write_bytes` of /proc/PID/io)",
                      "measured": f"{b:,.0f} bytes", "met": b <= DISK_PER_FIRE_TARGET_BYTES})
        late = r.get("lateness", {})
        extra = r.get("lateness_extra")
        # Every single-job fire after SLOT_LEAD_S asleep: the whole-minute slots' and the first
        # fires', which are the same situation. The median of a few whole-minute fires alone
        # landed in either of the two modes such fires have (about 1 ms, or about 2 ms more).
        s_slept, c_slept = slept_fires(r, "sundial"), slept_fires(r, "c")
        has_extra = bool(extra) and extra["p50_ms"] is not None
        p50 = None
        if s_slept:
            p50 = pct(sorted(s_slept), 50)
            shown = f"{p50:.2f} ms over {len(s_slept)} fires after {SLOT_LEAD_S} s asleep"
            if c_slept:
                shown += f" (the C loop's: {pct(sorted(c_slept), 50):.2f} ms over {len(c_slept)})"
            if has_extra:
                shown += f"; {extra['p50_ms']:.2f} ms over {extra['samples']} seconds-field fires"
        elif has_extra:
            p50 = extra["p50_ms"]
            shown = f"{p50:.2f} ms (seconds-field fires)"
        if p50 is not None:
            v.append({"target": f"single-job lateness under {SINGLE_JOB_P50_TARGET_MS:g} ms median",
                      "measured": shown, "met": p50 < SINGLE_JOB_P50_TARGET_MS})
        ff = r.get("first_fires", {})
        fs, fc = ff.get("sundial", {}), ff.get("c", {})
        if fs.get("mean_ms") is not None and fc.get("mean_ms"):
            # The mean, not the median: first fires are bimodal here (section 2), and the median of
            # a few such fires jumps between the modes.
            a, b = fs["mean_ms"], fc["mean_ms"]
            v.append({"target": f"single-job lateness at most {SERIES_RATIO_TARGET}× the C loop's (first fires after "
                                f"{SLOT_LEAD_S} s asleep, mean)",
                      "measured": f"{a:.2f} ms vs {b:.2f} ms = {a / b:.2f}× ({fs['samples']} and {fc['samples']} fires)",
                      "met": a <= SERIES_RATIO_TARGET * b})
        cs = r.get("c_series", {})
        for n, key, label in ((1, "lateness_extra", "single-job lateness"),
                              (5, "lateness_extra5", "lateness of five jobs due together (until the last started)")):
            sx, cx = r.get(key), cs.get(str(n))
            if sx and cx and sx.get("p50_ms") is not None and cx.get("p50_ms"):
                a, b = sx["p50_ms"], cx["p50_ms"]
                v.append({"target": f"{label} at most {SERIES_RATIO_TARGET}× the C loop's (seconds-field fires, p50)",
                          "measured": f"{a:.2f} ms vs {b:.2f} ms = {a / b:.2f}×", "met": a <= SERIES_RATIO_TARGET * b})
        s100, c100 = late.get("sundial-100"), r.get("c_burst", {}).get("100")
        if s100 and c100 and s100["all_started_ms"] and c100["all_started_ms"]:
            a, b = s100["all_started_ms"]["median"], c100["all_started_ms"]["median"]
            # Shown, not judged: each slot's own ratio (the C loop's burst is in the same minute).
            paired = [x["all_started_ms"] / y["all_started_ms"] for x, y in zip(s100.get("runs", []), c100.get("runs", []))
                      if x.get("all_started_ms") and y.get("all_started_ms")]
            slots = f"; slot by slot {', '.join(f'{q:.2f}×' for q in paired)}" if len(paired) > 1 else ""
            n = s100["all_started_ms"]["n"]
            v.append({"target": f"100 simultaneous jobs all started within {BURST_RATIO_TARGET}× the C loop's time",
                      "measured": f"{a:.1f} ms vs {b:.1f} ms = {a / b:.2f}× (medians of {n} slot{'s' if n != 1 else ''}{slots})",
                      "met": a <= BURST_RATIO_TARGET * b})
        va = r.get("validate")
        if va:
            c, wl = va["cpu_s"]["median"], va["wall_s"]["median"]
            v.append({"target": f"`sundial validate` of 10,000 jobs in 100 files in at most {VALIDATE_CPU_TARGET_S:g} s (CPU, "
                                "which its parallel threads keep above the wall time)",
                      "measured": f"{c:.2f} s CPU, {wl:.2f} s wall", "met": c <= VALIDATE_CPU_TARGET_S})
        sc = r.get("startup_cpu")
        if sc:
            variants = [(k, label) for k, label in STARTUP_VARIANTS if sc.get(k)]
            if variants:
                worst = max(sc[k]["median"] for k, _ in variants)
                shown = ", ".join(f"{label} {sc[k]['median']:.2f} s" for k, label in variants)
                cron = f"; cron {sc['cron']['median']:.2f} s" if sc.get("cron") else ""
                v.append({"target": f"start-up with 10,000 jobs at most {STARTUP_CPU_TARGET_S:g} s of CPU until quiet "
                                    "(100 files and one, fresh and existing state)",
                          "measured": shown + cron, "met": worst <= STARTUP_CPU_TARGET_S})
        s10k = r.get("idle", {}).get("sundial-10000")
        if s10k:
            a = s10k["anon_mib"]["median"]
            v.append({"target": f"idle RssAnon at most {IDLE_ANON_10K_TARGET_MIB:g} MiB with 10,000 jobs",
                      "measured": f"{a:.1f} MiB", "met": a <= IDLE_ANON_10K_TARGET_MIB})
        rlo = r.get("reload")
        if rlo:
            h = rlo["sighup_ms"]["median"]
            v.append({"target": f"SIGHUP reload of 1,000 jobs at most {SIGHUP_RELOAD_TARGET_MS:g} ms (to `config.loaded`)",
                      "measured": f"{h:.0f} ms", "met": h <= SIGHUP_RELOAD_TARGET_MS})
        rl, lim = r.get("runner_launch"), r.get("limits")
        if rl and lim:
            a, b = rl["serial_per_s"]["median"], lim["fork_exec_per_s"]["median"]
            v.append({"target": "launch rate at least half the C fork+exec loop's",
                      "measured": f"{a:,.0f}/s vs {b:,.0f}/s = {a / b:.2f}×", "met": a >= LAUNCH_RATIO_TARGET * b})
        return v


def lateness_slot_reps(r):
    """How many whole-minute slots each size had in this run."""
    return max((len(x.get("runs", [])) for k, x in r.get("lateness", {}).items() if k.startswith("sundial-")), default=0)


def slept_fires(r, who):
    """Lateness in ms of every single-job fire of `who` ("sundial" or "c") that came after
    SLOT_LEAD_S asleep: one per whole-minute slot, and every first fire."""
    runs = (r.get("lateness", {}).get("sundial-1") if who == "sundial" else r.get("c_burst", {}).get("1")) or {}
    out = [x["first_ms"] for x in runs.get("runs", []) if x.get("first_ms") is not None]
    return out + list(r.get("first_fires", {}).get(who, {}).get("all_ms", []))


# MARK: - Report


def markdown(r):
    m = r["machine"]
    L = []
    w = L.append
    quick = r["mode"] == "quick"
    w("## Side by side: Sundial, Debian's cron and the machine's limits (`bench/run`)")
    w("")
    w(f"Generated by `bench/run{' --quick' if quick else ''}` on {r['date']} at commit `{r['commit']}`, "
      f"in {r['total_seconds'] / 60:.1f} min. Machine: {m['cpus']} × {m['cpu']}, {m['memory_gib']} GiB, "
      f"Linux {m['kernel']}, Debian {m['os']}, {m['swift']}, cron {m['cron']}, Python {m['python']}. "
      f"1-minute load average {r['load_start']:.2f} at the start, {r['load_end']:.2f} at the end "
      "(the machine is shared with other builds: wall-clock figures under load are pessimistic); "
      "at the end of each phase: " + ", ".join(f"{k} {v:.2f}" for k, v in r.get("phase_load", {}).items()) + ". "
      f"Each figure is the median of {1 if quick else 3} repetitions ({lateness_slot_reps(r)} for the whole-minute "
      "lateness slots), with [min–max] where they differ. "
      "Raw figures: `docs/benchmarks.json`.")
    w("")
    w("### Figures to reach (issues 5, 9 and 15)")
    w("")
    w("| target | measured | |")
    w("| --- | --- | --- |")
    for v in r["verdicts"]:
        verdict = "met" if v["met"] else ("**NOT MET**" if v["met"] is False else "not measured")
        w(f"| {v['target']} | {v['measured']} | {verdict} |")
    w("")

    idle = r.get("idle")
    if idle:
        win = idle["window_s"]
        w(f"### 1. Idle footprint: jobs loaded, none due, {win:.0f} s window")
        w("")
        w("Both schedulers run at the same time, three sizes each, every process from its own copy of its "
          "binary (so that none shares, and splits, another's file pages). Wake-ups are voluntary context switches "
          "summed over all threads (`/proc/PID/task/*/status`) during the window; CPU is user + system time "
          "during the window. Memory at the window's end: `RssAnon` (`/proc/PID/status`) is the process's own "
          "memory, heap and stacks, which nothing else can use while it lives; PSS (`/proc/PID/smaps_rollup`) adds "
          "its file-backed pages, each divided by the number of processes mapping it: what the process costs "
          "the box. `VmRSS`, beside them, counts every mapped page in full, including shared libraries' and the "
          "binary's code, which stay in the page cache when unmapped: a figure that moves without the box "
          "getting memory back.")
        w("")
        w("| jobs | scheduler | RssAnon MiB | PSS MiB (anon + file) | VmRSS MiB | CPU s | wake-ups | threads |")
        w("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in (10, 1000, 10000):
            for who in ("sundial", "cron"):
                x = idle.get(f"{who}-{n}")
                if x:
                    split = (f" ({x['pss_anon_mib']['median']:.1f} + {x['pss_file_mib']['median']:.1f})"
                             if x.get("pss_anon_mib") and x.get("pss_file_mib") else "")
                    w(f"| {n:,} | {'Sundial' if who == 'sundial' else 'cron'} | {fmt(x['anon_mib'])} | {fmt(x['pss_mib'])}{split} | "
                      f"{fmt(x['rss_mib'])} | {fmt(x['cpu_s'], 2)} | {fmt(x['vcs'], 0)} | {fmt(x['threads'], 0)} |")
        w("")

    late = r.get("lateness", {})
    cb = r.get("c_burst", {})
    lim = r.get("limits", {})
    w("### 2. Lateness: N jobs due at the same whole minute")
    w("")
    w("Lateness runs from the scheduled instant to the job's own first instruction: each job is `stamp ID FILE`, "
      "a static C program that reads `CLOCK_REALTIME` first thing in `main` and appends it to a file with one "
      "`write(2)`. Its own start-up cost (fork + exec + libc start, measured from a C parent) is "
      f"{fmt(lim.get('stamp_startup_p50_us'), 0, ' µs')} median, p99 {fmt(lim.get('stamp_startup_p99_us'), 0, ' µs')}; "
      "it is part of every figure below, the C loop's too. The C loop is the limit: it sleeps with "
      "`clock_nanosleep(TIMER_ABSTIME)` to the instant, then `fork`s and `exec`s the N stamps without waiting. "
      f"Every scheduler is started {SLOT_LEAD_S} s before its instant and sleeps until then, the C loop too, "
      f"whose burst fires in the same minute slot, {C_BURST_OFFSET_S} s after Sundial's: the machine's state drifts "
      "over minutes, and a process's first fork after a long sleep is slower, so the figures compare only alike. "
      "cron wakes about one second after each minute by design (`sleep` to second 1), which is its lateness.")
    w("")
    w("| N | scheduler | p50 ms | p99 ms | max ms | all N started, ms | not started |")
    w("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for n in (1, 100, 1000):
        for who, name, src in (("c", "C fork+exec loop (limit)", cb.get(str(n))), ("sundial", "Sundial", late.get(f"sundial-{n}")),
                               ("cron", "cron", late.get(f"cron-{n}"))):
            if src:
                w(f"| {n:,} | {name} | {fmt(src['p50_ms'], 2)} | {fmt(src['p99_ms'], 2)} | {fmt(src['max_ms'], 2)} | "
                  f"{fmt(src['all_started_ms'], 1)} | {src['missing']} |")
    extra = r.get("lateness_extra")
    if extra and extra["samples"]:
        w("")
        w(f"Sundial alone, one job on a seconds-field schedule (`{extra['schedule']}`), {extra['samples']} fires: "
          f"p50 {extra['p50_ms']:.2f} ms, p99 {extra['p99_ms']:.2f} ms, max {extra['max_ms']:.2f} ms.")
    ff = r.get("first_fires", {})
    slot_reps = lateness_slot_reps(r)
    if ff.get("c", {}).get("samples") and ff.get("sundial", {}).get("samples"):
        w("")
        w(f"First fires: one job, each scheduler a fresh process that slept {SLOT_LEAD_S} s before its instant "
          "(the C loop as `limits burst T 1`, Sundial as an agent whose one job is due at that second), the two "
          f"alternating. The whole-minute rows above have the same sleep, but only {slot_reps} fire(s) each; the single-job "
          "verdict takes the median of these fires and the whole-minute ones together. On the "
          "development machine such fires are bimodal for both: about 1 ms, or about 2 ms more in some 60 % of them. "
          "The extra is in the child's `fork` and `exec`, not in the wake-up (a C process timing both woke 0.1–0.25 ms "
          "late every time), so the mean compares the two better than a median of few fires.")
        w("")
        w("| scheduler | fires | p50 ms | mean ms | min ms | max ms |")
        w("| --- | ---: | ---: | ---: | ---: | ---: |")
        for who, name in (("c", "C loop (limit)"), ("sundial", "Sundial")):
            x = ff[who]
            mean = f"{x['mean_ms']:.2f}" if x.get("mean_ms") is not None else "–"
            w(f"| {name} | {x['samples']} | {x['p50_ms']:.2f} | {mean} | {x['min_ms']:.2f} | {x['max_ms']:.2f} |")
    cs = r.get("c_series", {})
    if cs and (extra or r.get("lateness_extra5")):
        w("")
        w("Seconds-field fires beside the C loop's own series (a burst a second, same machine, same run): the time "
          "from the instant until the last job of the instant started, p50 over the instants.")
        w("")
        w("| jobs due together | C loop p50 ms (instants) | Sundial p50 ms (instants) | ratio |")
        w("| ---: | ---: | ---: | ---: |")
        for n, key in ((1, "lateness_extra"), (5, "lateness_extra5")):
            sx, cx = r.get(key), cs.get(str(n))
            if sx and cx and sx.get("p50_ms") is not None and cx.get("p50_ms"):
                w(f"| {n} | {cx['p50_ms']:.2f} ({cx['samples']}) | {sx['p50_ms']:.2f} ({sx['samples']}) | "
                  f"{sx['p50_ms'] / cx['p50_ms']:.2f}× |")
    if late.get("overlapping_slots"):
        w("")
        w(f"In minute slot(s) {late['overlapping_slots']} (numbered from 0) Sundial's 1,000-job burst was still running when cron woke for its single job: that "
          "cron figure includes the contention; one extra process hardly changes Sundial's burst.")
    w("")

    w("### 3. The machine's limits, and Sundial's ratios to them")
    w("")
    rl = r.get("runner_launch", {})
    w("| what | figure | Sundial | ratio |")
    w("| --- | ---: | ---: | ---: |")
    fe = lim.get("fork_exec_per_s")
    if fe and rl:
        w(f"| launches per second: C `fork`+`exec`+`waitpid` of `/bin/true` vs Sundial's runner one at a time "
          f"(`sundial-bench runner-launch`) | {fmt(fe, 0, '/s')} | {fmt(rl['serial_per_s'], 0, '/s')} | "
          f"{rl['serial_per_s']['median'] / fe['median']:.2f}× |")
        if rl.get("four_in_flight_per_s"):
            w(f"| Sundial's runner, 4 runs in flight | | {fmt(rl['four_in_flight_per_s'], 0, '/s')} | "
              f"{rl['four_in_flight_per_s']['median'] / fe['median']:.2f}× |")
    ns = lim.get("nanosleep_p50_us")
    s1 = late.get("sundial-1")
    if ns:
        w(f"| `clock_nanosleep(TIMER_ABSTIME)` wake-up lateness p50 / p99 | {fmt(ns, 0, ' µs')} / "
          f"{fmt(lim.get('nanosleep_p99_us'), 0, ' µs')} | | |")
    c1 = cb.get("1")
    if s1 and c1 and s1["p50_ms"] and c1["p50_ms"]:
        w(f"| one job due: C sleep + fork + exec vs Sundial, p50 lateness | {fmt(c1['p50_ms'], 2, ' ms')} | "
          f"{fmt(s1['p50_ms'], 2, ' ms')} | {s1['p50_ms']['median'] / c1['p50_ms']['median']:.1f}× |")
    for n in (100, 1000):
        s, c = late.get(f"sundial-{n}"), cb.get(str(n))
        if s and c and s["all_started_ms"] and c["all_started_ms"]:
            w(f"| {n:,} jobs due: time until all started, C loop vs Sundial | {fmt(c['all_started_ms'], 1, ' ms')} | "
              f"{fmt(s['all_started_ms'], 1, ' ms')} | {s['all_started_ms']['median'] / c['all_started_ms']['median']:.2f}× |")
    w("")

    fl = r.get("flash")
    if fl:
        ps, t5, t55 = fl["per_second"], fl["typical_5"], fl["typical_55"]

        def kib(b):
            return "—" if b is None else f"{b:,.0f} bytes ({b / 1024:,.1f} KiB)"

        def files(d):
            return ", ".join(f"`{k}` {v / 1024:,.0f} KiB" for k, v in d.items()) or "—"
        w("### 6. Flash wear: disk writes per fire")
        w("")
        w("`write_bytes` of `/proc/PID/io` over a window, less `cancelled_write_bytes`, divided by the fires in it. "
          "The kernel counts a page (4 KiB) when the process first dirties it in the page cache (again after each "
          "writeback: with SQLite's syncs, every commit), and adds in the counters of exited threads and reaped children; "
          "so the jobs run `/bin/true`, which writes nothing. It does not count what the file system adds on its own "
          "(journal, inode and metadata blocks, written by the kernel's threads) nor the flash's internal write "
          "amplification: the medium sees at least this much. The event log goes to a pipe the benchmark reads "
          "(no disk, as `/dev/null`). Windows run from the middle of one gap between fires to the middle of another, "
          "past start-up's writes.")
        w("")
        w("| what | window | fires | written less cancelled | per fire |")
        w("| --- | ---: | ---: | ---: | ---: |")
        w(f"| 100 jobs every second | {ps['window_s']:.0f} s | {ps['fires']:,} | {kib(ps['write_bytes'] - ps['cancelled_write_bytes'])} | "
          f"{kib(ps['bytes_per_fire'])} |")
        w(f"| a minute of the typical box: 5 jobs due together, {t5['ticks']} ticks 15 s apart | {t5['window_s']:.0f} s | "
          f"{t5['fires']:,} | {kib(t5['bytes_per_tick'])} per tick | {kib(t5['bytes_per_fire'])} |")
        w(f"| an hour of the typical box: 55 jobs due together, {t55['ticks']} ticks | {t55['window_s']:.0f} s | "
          f"{t55['fires']:,} | {kib(t55['bytes_per_tick'])} per tick | {kib(t55['bytes_per_fire'])} |")
        w("")
        if fl.get("typical_bytes_per_day") is not None:
            day = fl["typical_bytes_per_day"]
            w(f"**A typical box** (50 hourly and 5 minutely jobs: {fl['typical_fires_per_day']:,} fires a day) writes about "
              f"**{day / 1e6:,.1f} MB a day** ({day / 1e9 * 365:,.2f} GB a year; {kib(fl['typical_bytes_per_fire'])} per fire): "
              "1,416 ticks of 5 jobs and 24 of 55, at the bytes per tick measured above (the hourly prune's writes "
              "are not in it). The typical box runs in compressed time: ticks 15 s apart stand for minutes, and its "
              "agents' checkpoint interval is compressed alike (`SUNDIAL_CHECKPOINT_INTERVAL_MS=75000`, a quarter of "
              "the 5 minutes), so that ticks share checkpoints as a real box's minutes do.")
            w("")
        w(f"State database after the per-second window ({ps['fires_total']:,} fires since start): {files(ps['db_files'])}; "
          f"after the agent stopped: {files(ps.get('db_files_after_stop', {}))}.")
        st = ps.get("steady_state")
        if st:
            rows = ", ".join(f"{t} {b:,.0f} bytes per row" for t, b in st["bytes_per_row"].items())
            w(f" At steady state, the typical box's database holds {st['retained_rows']['runs']:,} runs and attempts "
              f"and {st['retained_rows']['ledger']:,} ledger entries (default retention: 500 runs and 1,440 ledger entries "
              f"per job, 30 days): about **{st['typical_box_bytes'] / 1e6:,.1f} MB** at the sizes measured in this "
              f"database ({rows}, from SQLite's `dbstat`; free pages left by pruning come on top).")
        w("")

    ld, rlo, va = r.get("load"), r.get("reload"), r.get("validate")
    w("### 4. Load and reload; 5. validation")
    w("")
    w("| what | figure |")
    w("| --- | ---: |")
    if ld:
        w(f"| start-up to `config.loaded`, 10,000 jobs in 100 files (from `exec`, fresh state) | {fmt(ld['startup_ms'], 0, ' ms')} |")
        w(f"| 1 s after loading 10,000 jobs: RssAnon; PSS; VmRSS (peak VmHWM) | {fmt(ld['anon_mib'])}; "
          f"{fmt(ld.get('pss_mib'))}; {fmt(ld['rss_mib'])} MiB ({fmt(ld['peak_rss_mib'])}) |")
    sc = r.get("startup_cpu")
    if sc:
        for key, label in STARTUP_VARIANTS:
            if sc.get(key):
                w(f"| start-up CPU until quiet, 10,000 jobs, {label} (agent and loader child) | {fmt(sc[key], 2, ' s')} |")
        if sc.get("cron"):
            w(f"| start-up CPU until quiet, Debian's cron with 10,000 entries in `/etc/cron.d` | {fmt(sc['cron'], 2, ' s')} |")
    if rlo:
        w(f"| reload of a 1,000-job set after an atomic file rewrite, to `config.loaded` (includes the {rlo['debounce_ms']} ms "
          f"debounce), {rlo['samples']} samples | {fmt(rlo['file_change_ms'], 0, ' ms')} |")
        w(f"| reload of the same set on SIGHUP, to `config.loaded` | {fmt(rlo['sighup_ms'], 0, ' ms')} |")
    if va:
        w(f"| `sundial validate` of 10,000 jobs in 100 files: wall (CPU) | {fmt(va['wall_s'], 2, ' s')} ({fmt(va['cpu_s'], 2, ' s')}) |")
        w(f"| `sundial validate` peak RSS | {fmt(va['max_rss_mib'])} MiB |")
    w("")
    if r["notes"]:
        w("Notes from the run: " + "; ".join(r["notes"]) + ".")
        w("")
    w("<details><summary>Exact commands</summary>")
    w("")
    w("```")
    w("bench/run" + (" --quick" if quick else "") + "   # builds with `swift build -c release --static-swift-stdlib`, then:")
    for k, c in r["commands"].items():
        w(f"{c}")
    w("```")
    w("")
    w("</details>")
    return "\n".join(L)


def write_report(results, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    md_path = os.path.join(out_dir, "benchmarks.md")
    section = BEGIN + "\n" + markdown(results) + "\n" + END
    text = open(md_path).read() if os.path.exists(md_path) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        # First time: after the page's introduction, before the first section.
        i = text.find("\n## ")
        text = (text[:i + 1] + section + "\n\n" + text[i + 1:]) if i >= 0 else (text.rstrip() + "\n\n" + section + "\n")
    with open(md_path, "w") as f:
        f.write(text)
    log(f"wrote {md_path} and benchmarks.json")


def main():
    ap = argparse.ArgumentParser(description="bench/run's orchestration; run bench/run, not this file")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma-separated phases to run (limits, runner_launch, validate, load, idle, flash, lateness); "
                                   "writes to .build/bench unless --out says otherwise")
    ap.add_argument("--cleanup", action="store_true", help="stop what a killed run left behind, then exit")
    args = ap.parse_args()
    if args.cleanup:
        cleanup(args.work)
        return 0
    out = args.out or (os.path.join(ROOT, ".build", "bench") if args.quick or args.only else os.path.join(ROOT, "docs"))
    bench = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    try:
        results = bench.run()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}): stopping what was started")
        return 130
    finally:
        bench.procs.stop_all()
    write_report(results, out)
    for v in results["verdicts"]:
        log(f"{'met      ' if v['met'] else 'NOT MET  '} {v['target']}: {v['measured']}")
    log(f"done in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
