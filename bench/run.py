"""Benchmark: freezer-ui against restic, borg and upstream freezer on the same data, in one run.

    python -m bench.run [--scale 1.0] [--tools ours,restic,borg,freezer] [--steps ...] [--quick]

Steps per tool (all tools finish a step before the next step starts, so they see the same tree):
  first      first backup of the corpus
  unchanged  the same backup again, nothing changed
  mutated    after a seeded ~1% mutation of the corpus (bench/corpus.py)
  restore    full restore of the latest backup into an empty dir, verified by a hash-tree walk
Page caches are dropped before every step (root only; the report says whether it worked).
Each step is a fresh subprocess: wall time, CPU time and peak RSS come from os.wait4's rusage
(ru_maxrss = the largest single process of the step's tree, e.g. freezer's tar or gzip children
count separately, not summed).  Stored bytes = sum of file sizes under the tool's repository.

Targets (printed pass/fail, never asserted: benchmarks are not tests): every step of ours
<= 0.8x the best peer's time; stored bytes <= the best peer's; peak RSS <= restic's.

Also, unless --quick or --no-scaling: ours and restic first backups at 0.5x and 2x the corpus,
to show whether peak RSS stays flat with data size.

With --repeat N every step of every tool runs N times and the report shows the median (time,
CPU, peak RSS) with the spread (min-max), so one noisy run does not decide pass/fail.  A
repeated `first` starts each time from a fresh repository; a repeated `mutated` from a copy of
the tool's state taken before the mutated step (repository and caches); `unchanged` and
`restore` simply run again (every restore is verified).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from bench import corpus
from bench.tools import PEERS, TOOLS, Cmd, Tool

HERE = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.dirname(HERE)
STEPS = ("first", "unchanged", "mutated", "restore")
STEP_TIMEOUT = 3600  # a hung tool must not eat the whole run: it is killed and marked

_log_file = None


def log(msg: str) -> None:
    line = f"[{dt.datetime.now(dt.timezone.utc).strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if _log_file:
        _log_file.write(line + "\n")
        _log_file.flush()


def drop_caches() -> bool:
    """sync + drop page/dentry/inode caches, so each step reads from disk.  False if not allowed."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def discard(path: str, work: str) -> None:
    """Move a tree aside; deleted at the end of the run.  Deleting ~80k files on this ext4
    (mounted with `discard`) takes minutes, and its writeback would leak into the next step's
    `sync` and timings."""
    if os.path.exists(path):
        trash = os.path.join(work, "trash")
        os.makedirs(trash, exist_ok=True)
        os.rename(path, os.path.join(trash, f"{len(os.listdir(trash))}-{os.path.basename(path)}"))


def stored_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def run_cmd(cmd: Cmd, logpath: str, timeout: float = STEP_TIMEOUT) -> dict:
    """Run in a fresh process group; wall time + rusage of exactly that child (os.wait4)."""
    env = os.environ | cmd.env
    with open(logpath + ".out", "w") as out, open(logpath + ".err", "w") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(
            cmd.argv, cwd=cmd.cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        _pid, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
    t1 = time.monotonic()
    os.sync()  # durability cost the tool left behind (not in "time"; shown as "+sync")
    sync_s = time.monotonic() - t1
    with open(logpath + ".out") as f:
        stdout = f.read()
    with open(logpath + ".err") as f:
        stderr_tail = f.read()[-600:]
    return {
        "rc": p.returncode,
        "timeout": bool(killed),
        "time": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024,
        "sync": sync_s,
        "stdout": stdout,
        "stderr": stderr_tail.strip(),
    }


def machine_facts() -> dict:
    def sh(cmd: str) -> str:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    dev = sh(f"df --output=source,fstype {MAIN} | tail -1")
    rota = ""
    devname = os.path.basename(dev.split()[0]) if dev else ""
    if devname and os.path.exists(f"/sys/block/{devname}/queue/rotational"):
        rota = "kernel says rotational=" + sh(f"cat /sys/block/{devname}/queue/rotational")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "disk": f"{' '.join(dev.split())} ({rota})",
        "kernel": platform.release(),
        "python": platform.python_version(),
        # The machine may be shared (other sessions' tests): the load says how quiet it was.
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def fmt_mb(n: float | None) -> str:
    return "–" if n is None else f"{n / 1e6:,.1f}"


def combine_runs(runs: list[dict]) -> dict:
    """One result from the repeats of a step: medians of time, sync, CPU and peak RSS over
    the successful runs, every run's time kept (``times``) for the spread; the step failed
    if any run failed, and a restore verifies only if every run verified."""
    ok = [r for r in runs if r["rc"] == 0]
    out = dict(runs[-1])
    out["runs"] = len(runs)
    out["times"] = [r["time"] for r in runs]
    failed = [r for r in runs if r["rc"] != 0]
    if failed:
        out.update({k: failed[0][k] for k in ("rc", "timeout", "stderr")})
    if ok:
        for key in ("time", "sync", "cpu", "rss_mb"):
            out[key] = statistics.median(r[key] for r in ok)
    verifies = [r["verify"] for r in runs if "verify" in r]
    if verifies:
        out["verify"] = next((v for v in verifies if not v["ok"]), verifies[-1])
    # stored bytes: the last run's (the state the next step starts from)
    return out


def fmt_spread(r: dict) -> str:
    times = r.get("times") or []
    if len(times) < 2:
        return ""
    return f"{min(times):.1f}–{max(times):.1f}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.results: list[dict] = []
        self.notes: list[str] = []
        self.cache_drop = None

    def _step(
        self,
        tool: Tool,
        step: str,
        cmd: Cmd,
        scale: float,
        *,
        reset: Callable[[], None] | None = None,
        verify: Callable[[], dict] | None = None,
    ) -> dict:
        """Run one step ``--repeat`` times; ``reset`` restores the state before a repeat,
        ``verify`` checks a restore after each run.  The result holds the medians."""
        runs = []
        for i in range(self.args.repeat):
            if i and reset is not None:
                reset()
            dropped = drop_caches() if not self.args.keep_caches else False
            if self.cache_drop is None:
                self.cache_drop = dropped
            before = stored_bytes(tool.repo)
            n = f" #{i + 1}" if self.args.repeat > 1 else ""
            log(f"{tool.name:9s} {step:10s}{n} running ...")
            log_name = f"{tool.name}-{step}-{scale}" + (f"-{i + 1}" if i else "")
            r = run_cmd(cmd, os.path.join(self.work, "logs", log_name))
            after = stored_bytes(tool.repo)
            r.update(tool=tool.name, step=step, scale=scale, stored=after, delta=after - before)
            r["parsed"] = tool.parse(step, r.pop("stdout")) if r["rc"] == 0 else {}
            status = "ok" if r["rc"] == 0 else ("TIMEOUT" if r["timeout"] else f"FAIL rc={r['rc']}")
            log(
                f"{tool.name:9s} {step:10s}{n} {status}: {r['time']:.1f}s "
                f"(+{r['sync']:.1f}s sync) cpu {r['cpu']:.1f}s rss {r['rss_mb']:.0f} MB "
                f"stored {fmt_mb(after)} MB (+{fmt_mb(r['delta'])})"
            )
            if r["rc"] != 0:
                log(f"    stderr: {r['stderr'][-300:]}")
            if verify is not None and r["rc"] == 0:
                r["verify"] = verify()
            runs.append(r)
        r = combine_runs(runs)
        self.results.append(r)
        return r

    def _reset_first(self, tool: Tool) -> Callable[[], None]:
        """Before a repeated first backup: a fresh, empty repository (and caches)."""

        def reset() -> None:
            tool.finish()
            discard(tool.work, self.work)
            tool.prepare(log)

        return reset

    def _reset_to_snapshot(self, tool: Tool) -> Callable[[], None]:
        """Copy the tool's whole state now; the returned function puts that copy back."""
        snap = os.path.join(self.work, "snapshots", tool.name)
        shutil.rmtree(snap, ignore_errors=True)
        os.makedirs(os.path.dirname(snap), exist_ok=True)
        subprocess.run(["cp", "-a", tool.work, snap], check=True)

        def reset() -> None:
            discard(tool.work, self.work)
            subprocess.run(["cp", "-a", snap, tool.work], check=True)

        return reset

    def pin_ours(self) -> None:
        """Benchmark one commit of freezer_ui: `git archive` it into the work dir (the engine
        may be edited while a run takes 30 minutes; each step is a fresh process)."""
        from bench.tools import Ours

        ref = self.args.ours_ref
        if ref == "worktree":
            self.ours_commit = "working tree (not pinned)"
            return
        git = ["git", "-C", MAIN]
        commit = subprocess.run(
            [*git, "rev-parse", ref], capture_output=True, text=True, check=True
        ).stdout.strip()
        dest = os.path.join(self.work, "ours-src")
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        archive = subprocess.Popen([*git, "archive", commit, "freezer_ui"], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
        archive.wait()
        Ours.pinned_src = dest
        self.ours_commit = commit[:12]
        log(f"ours pinned at {self.ours_commit} ({dest})")

    def main_run(self) -> None:
        a = self.args
        src = os.path.join(self.work, "corpus")
        log(f"building corpus (scale {a.scale}) in {src}")
        info = corpus.build(src, a.scale, progress=log)
        self.corpus_info = info
        log(f"corpus: {info.files} files, {info.symlinks} symlinks, {info.bytes / 1e9:.2f} GB")
        self.pin_ours()
        tools: list[Tool] = []
        names = list(a.tools)
        if "ours" in names and not a.no_enc and "first" in a.steps:
            names.insert(names.index("ours") + 1, "ours-enc")
        for name in names:
            t = TOOLS[name](os.path.join(self.work, "tools"), src)
            log(f"preparing {name}")
            try:
                t.prepare(log)
            except Exception as e:  # a missing tool must not stop the others
                log(f"  {name} unavailable: {e}")
                self.notes.append(f"{name} could not be prepared: {e}")
                continue
            tools.append(t)
        self.versions = {t.name: t.version() for t in tools}
        try:
            for step in ("first", "unchanged"):
                if step in a.steps:
                    for t in tools:
                        if t.name == "ours-enc" and step != "first":
                            continue
                        reset = self._reset_first(t) if step == "first" else None
                        self._step(t, step, t.backup(step), a.scale, reset=reset)
            if "mutated" in a.steps:
                resets = {}
                if a.repeat > 1:
                    for t in tools:
                        if t.name != "ours-enc":
                            resets[t.name] = self._reset_to_snapshot(t)
                self.mutation = corpus.mutate(src, seed=a.seed)
                log(f"mutation: {json.dumps(self.mutation)}")
                for t in tools:
                    if t.name != "ours-enc":
                        self._step(
                            t, "mutated", t.backup("mutated"), a.scale, reset=resets.get(t.name)
                        )
            if "restore" in a.steps:
                log("hashing the source tree for restore verification")
                expected = corpus.hash_tree(src)
                for t in tools:
                    if t.name == "ours-enc":
                        continue
                    target = os.path.join(self.work, "restore", t.name)
                    discard(target, self.work)
                    os.makedirs(target)

                    def fresh_target(target=target) -> None:
                        discard(target, self.work)
                        os.makedirs(target)

                    def verify(t=t, target=target) -> dict:
                        v = corpus.compare_trees(expected, corpus.hash_tree(target))
                        log(
                            f"    verify {t.name}: {'OK' if v['ok'] else 'MISMATCH'} "
                            f"missing={v['missing']} extra={v['extra']} content={v['content']} "
                            f"perms={v['perms']} {v['examples'][:2]}"
                        )
                        return v

                    self._step(
                        t, "restore", t.restore(target), a.scale, reset=fresh_target, verify=verify
                    )
                    discard(target, self.work)
        finally:
            for t in tools:
                t.finish()

    def scaling_run(self) -> None:
        for scale in self.args.scaling:
            src = os.path.join(self.work, f"corpus-{scale}")
            log(f"scaling: building corpus at {scale}x")
            info = corpus.build(src, scale, progress=log)
            self.scaling_info = getattr(self, "scaling_info", {})
            self.scaling_info[scale] = info
            log(f"corpus {scale}x: {info.files} files, {info.bytes / 1e9:.2f} GB")
            for name in ("ours", "restic"):
                if name not in self.args.tools:
                    continue
                t = TOOLS[name](os.path.join(self.work, f"tools-{scale}"), src)
                t.prepare(log)
                self._step(t, "first", t.backup("first"), scale, reset=self._reset_first(t))
                if "unchanged" in self.args.steps:
                    self._step(t, "unchanged", t.backup("unchanged"), scale)
                discard(t.work, self.work)
            discard(src, self.work)

    def profile_ours(self) -> None:
        """cProfile of our first backup and unchanged re-run (corpus at its mutated state)."""
        import pstats

        src = os.path.join(self.work, "corpus")
        t = TOOLS["ours"](os.path.join(self.work, "tools-profile"), src)
        t.prepare(log)
        self.profiles = {}
        for step in ("first", "unchanged"):
            prof = os.path.join(self.work, f"ours-{step}.prof")
            cmd = t.backup(step)
            args = ["freezer-ui-agent", *cmd.argv[len(t.cli_argv) :]]
            code = (
                f"import cProfile, sys; sys.argv = {args!r}; "
                f"from freezer_ui.cli.main import main; cProfile.run('main()', {prof!r})"
            )
            if not self.args.keep_caches:
                drop_caches()
            log(f"profiling ours {step}")
            run_cmd(
                Cmd([sys.executable, "-c", code], cmd.cwd, cmd.env),
                os.path.join(self.work, "logs", f"prof-{step}"),
            )
            if os.path.exists(prof):
                import io

                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
                buf2 = io.StringIO()
                pstats.Stats(prof, stream=buf2).sort_stats("tottime").print_stats(15)
                self.profiles[step] = (buf.getvalue(), buf2.getvalue())
                with open(os.path.join(self.work, f"ours-{step}-profile.txt"), "w") as f:
                    f.write(buf.getvalue() + "\n" + buf2.getvalue())
                log(f"  profile written to {self.work}/ours-{step}-profile.txt")
        discard(t.work, self.work)

    # ---------------------------------------------------------------- report
    def get(self, tool: str, step: str, scale: float) -> dict | None:
        for r in self.results:
            if r["tool"] == tool and r["step"] == step and r["scale"] == scale:
                return r
        return None

    def report(self, command: str, facts: dict) -> tuple[str, str]:
        a = self.args
        sc = a.scale
        lines: list[str] = []
        summary: list[str] = []
        add = lines.append
        info = self.corpus_info
        add(
            f"# Benchmark results {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"
        )
        add("")
        add(f"Command: `{command}`")
        add("")
        add(
            f"Machine: {facts['cpus']} CPUs ({facts['cpu']}), {facts['memory']} RAM, "
            f"disk {facts['disk']}, Linux {facts['kernel']}, Python {facts['python']}; "
            f"load average at start {facts['loadavg_at_start']}, at end "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}."
        )
        add(
            f"Corpus: {info.files:,} files + {info.symlinks:,} symlinks, {info.bytes / 1e9:.2f} GB "
            f"(scale {sc}; real files of /usr, see bench/corpus.py)."
        )
        if getattr(self, "mutation", None):
            m = self.mutation
            add(
                f"Mutation (seed {m['seed']}): {m['overwritten']} in-place overwrites, "
                f"{m['appended']} appends, {m['deleted']} deletes, {m['new']} new files, "
                f"directory `{m['renamed_dir']}` "
                f"({m['renamed_files']} files) renamed; {m['bytes_written'] / 1e6:.1f} MB written."
            )
        add(
            "Page caches dropped before every step: "
            + (
                "yes (`sync; echo 3 > /proc/sys/vm/drop_caches` as root)."
                if self.cache_drop
                else (
                    "**NO** (--keep-caches): every step reads from a warm cache."
                    if a.keep_caches
                    else "**NO** (not permitted here): steps after the first read warm caches."
                )
            )
        )
        vers = ", ".join(f"{k} {v}" for k, v in getattr(self, "versions", {}).items())
        vers += f"; ours = freezer_ui at commit {getattr(self, 'ours_commit', '?')}"
        add(f"Versions: {vers}.")
        add("")
        rep = a.repeat > 1
        table = [
            "| step | tool | time s"
            + (f" (median of {a.repeat}) | spread s" if rep else "")
            + " | +sync s | CPU s | peak RSS MB | stored MB | Δ stored MB "
            "| ours ÷ best peer (time) | notes |",
            "|---|---|---:|" + ("---:|" if rep else "") + "---:|---:|---:|---:|---:|---:|---|",
        ]
        targets: list[str] = []
        for step in STEPS:
            rows = [r for r in self.results if r["step"] == step and r["scale"] == sc]
            if not rows:
                continue
            peers = [r for r in rows if r["tool"] in PEERS and r["rc"] == 0]
            best = min(peers, key=lambda r: r["time"]) if peers else None
            for r in rows:
                ok = r["rc"] == 0
                ratio = ""
                if r["tool"].startswith("ours") and best and ok:
                    ratio = f"{r['time'] / best['time']:.2f} (vs {best['tool']})"
                note = "" if ok else ("timeout" if r["timeout"] else f"FAILED rc={r['rc']}")
                if "verify" in r:
                    v = r["verify"]
                    note += (
                        " verified OK"
                        if v["ok"]
                        else f" VERIFY FAILED (missing {v['missing']}, extra {v['extra']}, "
                        f"content {v['content']})"
                    )
                    if v["perms"]:
                        note += f", {v['perms']} perm diffs"
                p = r.get("parsed") or {}
                if r["tool"].startswith("ours") and p.get("new_bytes") is not None:
                    note += f" new bytes (tool) {fmt_mb(p['new_bytes'])} MB"
                spread = f" {fmt_spread(r)} |" if rep else ""
                table.append(
                    f"| {step} | {TOOLS[r['tool']].label} | {r['time']:.1f} |{spread} "
                    f"{r['sync']:.1f} "
                    f"| {r['cpu']:.1f} | {r['rss_mb']:.0f} "
                    f"| {fmt_mb(r['stored']) if step != 'restore' else '–'} "
                    f"| {fmt_mb(r['delta']) if step != 'restore' else '–'} | {ratio} "
                    f"| {note.strip()} |"
                )
            ours = self.get("ours", step, sc)
            if ours is None:
                continue
            if ours["rc"] != 0:
                targets.append(f"- {step}: ours FAILED (rc={ours['rc']}): all targets fail")
                continue
            if best:
                lim = 0.8 * best["time"]
                targets.append(
                    f"- {step} time: ours {ours['time']:.1f}s vs 0.8 × {best['tool']} "
                    f"{best['time']:.1f}s = {lim:.1f}s → "
                    + ("**PASS**" if ours["time"] <= lim else "**FAIL**")
                )
            if step != "restore" and peers:
                bp = min(peers, key=lambda r: r["stored"])
                targets.append(
                    f"- {step} stored: ours {fmt_mb(ours['stored'])} MB vs best {bp['tool']} "
                    f"{fmt_mb(bp['stored'])} MB → "
                    + ("**PASS**" if ours["stored"] <= bp["stored"] else "**FAIL**")
                )
            rr = self.get("restic", step, sc)
            if rr and rr["rc"] == 0:
                targets.append(
                    f"- {step} peak RSS: ours {ours['rss_mb']:.0f} MB "
                    f"vs restic {rr['rss_mb']:.0f} MB → "
                    + ("**PASS**" if ours["rss_mb"] <= rr["rss_mb"] else "**FAIL**")
                )
        lines += table
        add("")
        add(
            "Targets (ours vs peers in this run"
            + (f", medians of {a.repeat} runs" if a.repeat > 1 else "")
            + "; pass/fail, not asserted):"
        )
        add("")
        lines += targets or ["- ours not run: no targets evaluated"]
        scal = [r for r in self.results if r["scale"] != sc or False]
        scale_rows = []
        if scal:
            scale_rows = [
                "| tool | scale | files | GB | first s | first peak RSS MB | unchanged s "
                "| unchanged peak RSS MB |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            scales = sorted({r["scale"] for r in scal} | {sc})
            for name in ("ours", "restic"):
                for s in scales:
                    f, u = self.get(name, "first", s), self.get(name, "unchanged", s)
                    if not f:
                        continue
                    inf = info if s == sc else self.scaling_info[s]

                    def cell(r, key, fmt):
                        if not r:
                            return "–"
                        return fmt.format(r[key]) if r["rc"] == 0 else "FAIL"

                    scale_rows.append(
                        f"| {TOOLS[name].label} | {s} | {inf.files:,} | {inf.bytes / 1e9:.2f} "
                        f"| {cell(f, 'time', '{:.1f}')} | {cell(f, 'rss_mb', '{:.0f}')} "
                        f"| {cell(u, 'time', '{:.1f}')} | {cell(u, 'rss_mb', '{:.0f}')} |"
                    )
            add("")
            add(
                "Scaling (fresh repository per scale; 2x = the corpus plus a byte-bijected copy, "
                "see bench/corpus.py):"
            )
            add("")
            lines += scale_rows
        notes = list(self.notes)
        if "restic" in getattr(self, "versions", {}):
            notes.append(
                "restic 0.14 always encrypts (AES-256 + Poly1305); borg, freezer and `freezer-ui` "
                "run unencrypted."
            )
        if "freezer" in getattr(self, "versions", {}):
            notes.append(
                "freezer's peak RSS is the largest single process (the agent, tar or gzip), "
                "not their sum; "
                "its Keystone is a loopback stub (bench/fake_keystone.py), outside the timings."
            )
        if {"freezer", "ours"} <= set(getattr(self, "versions", {})):
            notes.append(
                "GNU tar (freezer) reads without O_NOATIME, so freezer's first backup moves every "
                "corpus file's atime (relatime; the copies keep the originals' old atimes). "
                "restic and borg read with O_NOATIME and do not store a changed atime as new data; "
                "ours keeps an unchanged file's atime from its last read (files cache), so the "
                "moved atimes cost it nothing either (before that fix they cost ~3.6 MB of item "
                "stream per unchanged run)."
            )
        notes.append(
            "`+sync` = time of a `sync` right after the step (data the tool left unflushed); "
            "not in `time`."
        )
        if notes:
            add("")
            add("Notes:")
            add("")
            lines += [f"- {n}" for n in notes]
        if getattr(self, "profiles", None):
            add("")
            add("## Profile of ours (cProfile, top by cumulative time)")
            for step, (cum, tot) in self.profiles.items():
                add("")
                add(f"### {step}")
                add("")
                add("```")
                lines += cum.strip().splitlines()[:45]
                lines += [""] + tot.strip().splitlines()[:30]
                add("```")
        summary = table + [""] + targets
        if scale_rows:
            summary += [""] + scale_rows
        return "\n".join(lines) + "\n", "\n".join(summary) + "\n"


def update_docs(summary: str, command: str, facts: dict, when: str) -> None:
    """Replace the generated block of docs/performance.md (between the bench markers)."""
    path = os.path.join(MAIN, "docs", "performance.md")
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    block = (
        f"{begin}\n_Generated by `{command}` on {when}; machine: {facts['cpus']} CPUs "
        f"({facts['cpu']}), "
        f"{facts['memory']} RAM, disk {facts['disk']}._\n\n{summary}{end}"
    )
    text = open(path).read() if os.path.exists(path) else "# Performance\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="corpus size (1.0 = ~1.5 GB)")
    p.add_argument("--tools", default="ours,restic,borg,freezer")
    p.add_argument("--steps", default=",".join(STEPS))
    p.add_argument(
        "--quick",
        action="store_true",
        help="scale 0.05, no scaling runs, results kept in bench/work",
    )
    p.add_argument("--scaling", default="0.5,2", help="extra scales for ours+restic ('' = none)")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--no-enc", action="store_true", help="skip the encrypted first backup of ours")
    p.add_argument(
        "--profile", action="store_true", help="cProfile our first and unchanged backups"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--ours-ref",
        default="HEAD",
        help="git commit of freezer_ui to measure ('worktree' = as is)",
    )
    p.add_argument("--work", default=os.path.join(HERE, "work"))
    p.add_argument("--no-docs", action="store_true", help="do not update docs/performance.md")
    p.add_argument(
        "--keep-caches",
        action="store_true",
        help="do not drop page caches (a shared machine): timings are warm-cache",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per step per tool; the report shows medians and the spread",
    )
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    a.tools = [t for t in a.tools.split(",") if t]
    a.steps = [s for s in a.steps.split(",") if s]
    for t in a.tools:
        if t not in TOOLS:
            p.error(f"unknown tool {t} (known: {', '.join(TOOLS)})")
    if a.quick:
        a.scale = 0.05 if a.scale == 1.0 else a.scale
        a.no_scaling = True
    a.scaling = [] if a.no_scaling else [float(s) for s in a.scaling.split(",") if s]
    command = (
        "python -m bench.run"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )

    global _log_file
    os.makedirs(os.path.join(a.work, "logs"), exist_ok=True)
    _log_file = open(os.path.join(a.work, "run.log"), "a")
    facts = machine_facts()
    log(f"machine: {json.dumps(facts)}")
    b = Bench(a)
    b.main_run()
    if a.scaling:
        b.scaling_run()
    if a.profile and "ours" in a.tools:
        b.profile_ours()
    log("removing work trees")
    shutil.rmtree(os.path.join(a.work, "trash"), ignore_errors=True)
    if b.cache_drop is False:
        log(
            "WARNING: could not drop page caches (needs root): "
            "timings after the first step are warm-cache"
        )
    report, summary = b.report(command, facts)
    print()
    print(report)
    now = dt.datetime.now(dt.timezone.utc)
    # Only a complete default run replaces bench/results/<date>.md and the docs block.
    official = (
        not a.quick
        and not a.keep_caches
        and a.scale == 1.0
        and list(a.steps) == list(STEPS)
        and {"ours", "restic", "borg", "freezer"} <= set(a.tools)
    )
    if official:
        out = os.path.join(HERE, "results", f"{now.strftime('%Y-%m-%d')}.md")
        os.makedirs(os.path.dirname(out), exist_ok=True)
    else:
        out = os.path.join(a.work, f"results-{now.strftime('%Y%m%dT%H%M%S')}.md")
    with open(out, "w") as f:
        f.write(report)
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(b.results, f, indent=1, default=str)
    log(f"report written to {out}")
    if official and not a.no_docs:
        update_docs(summary, command, facts, now.strftime("%Y-%m-%d %H:%M UTC"))
        log("docs/performance.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
