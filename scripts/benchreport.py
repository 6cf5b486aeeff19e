#!/usr/bin/env python3
"""make bench: turn bench/raw/ into bench/results.md and the time-versus-size
plot.

    benchreport.py RAWDIR RESULTS.md PLOT.png

RAWDIR/<kind>/<run>/ holds one VM run (kind: base or patched; run: cmpN,
the workload both kernels run, or seq, two walks versus one): output.txt
(what bench/guest.sh printed, see bench/hmm-bench.c for the line formats),
console.log, params and meta.  bench/analysis.md, when present, is quoted
after the targets as their explanation.
"""
import os
import re
import statistics
import sys

SCN = ["present", "untouched", "zeropage", "rofile", "cow", "thp", "thp-split", "swap"]
SCN_TEXT = {
    "present": "all pages present (4 KiB pages, written)",
    "untouched": "never touched",
    "zeropage": "zero page mapped (read before)",
    "rofile": "read-only: private file mapping, read before (a write fault is needed)",
    "cow": "COW-shared with a forked child (a write fault is needed)",
    "thp": "THP, migrated compound",
    "thp-split": "THP, migrated as 4 KiB pages (HMM_DMIRROR_FLAG_NO_COMPOUND)",
    "swap": "swapped out to zram (MADV_PAGEOUT)",
}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x):
    if x != x:
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def mmm(xs):
    """median [min–max]"""
    if not xs:
        return "-"
    return f"{fmt(med(xs))} [{fmt(min(xs))}–{fmt(max(xs))}]"


def rmm(xs):
    if not xs:
        return "-"
    return f"{med(xs):.3f} [{min(xs):.3f}–{max(xs):.3f}]"


def ratio(a, b):
    return a / b if b else float("nan")


class Run:
    """One VM run."""

    def __init__(self, d):
        self.dir = d
        self.name = os.path.basename(d)
        self.meta = self.kv(os.path.join(d, "meta"), " ")
        self.params = self.kv(os.path.join(d, "params"), "=")
        self.info, self.phases, self.T, self.W, self.bench, self.noprobe = {}, [], [], [], [], []
        self.parse(os.path.join(d, "output.txt"))

    @staticmethod
    def kv(path, sep):
        out = {}
        if os.path.exists(path):
            for line in open(path):
                k, _, v = line.rstrip("\n").partition(sep)
                out[k] = v
        return out

    def parse(self, path):
        cur = size = None
        last_phase = None
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            f = line.split()
            if not f:
                continue
            if f[0] == "I" and len(f) >= 2:
                if f[1] == "phase":
                    self.phases.append((f[2], float(f[3])))
                    last_phase = f[2]
                elif f[1] == "noprobe":
                    self.noprobe.append(f[2])
                else:
                    self.info.setdefault(f[1], " ".join(f[2:]))
            elif f[0] == "T" and len(f) >= 9:
                t = dict(scn=f[1], size=int(f[2]), seq=f[3], phase=f[4], rep=int(f[5]),
                         ms=float(f[6]), ret=int(f[7]), cpages=int(f[8]), us={}, calls={})
                # The drivers mode (after the seq mode) printed "whole" before
                # it printed "drivers": keep its runs apart from seq's.
                if t["phase"] == "whole" and last_phase == "seq":
                    t["phase"] = "drivers"
                for kv in f[9:]:
                    k, _, v = kv.partition("=")
                    us, _, n = v.partition("/")
                    t["us"][k] = float(us)
                    t["calls"][k] = int(n or 0)
                self.T.append(t)
            elif f[0] == "W" and len(f) >= 6:
                w = dict(scn=f[1], size=int(f[2]), seq=f[3], phase=f[4], hits={})
                for kv in f[5:]:
                    k, _, v = kv.partition("=")
                    if k == "ret":
                        w["ret"] = int(v)
                    else:
                        w["hits"][k] = int(v)
                self.W.append(w)
            elif f[0] == "B" and len(f) >= 3 and f[1] == "run":
                cur = {}
                self.bench.append(cur)
            elif cur is not None:
                m = re.match(r"=== .* \(([\d.]+) MB\) ===", line)
                if m:
                    size = float(m.group(1))
                    cur[size] = {}
                    continue
                m = re.match(r"(Sys->Dev|Dev->Sys) Migration\s*\|\s*([\d.]+) ms\s*\|\s*([\d.]+) ms", line)
                if m and size is not None:
                    k = "s2d" if m.group(1) == "Sys->Dev" else "d2s"
                    cur[size][k + "_thp"] = float(m.group(2))
                    cur[size][k + "_reg"] = float(m.group(3))

    def bad(self, t):
        if t["phase"] == "setup":
            return t["ret"] not in (0, -2)
        return t["ret"] != 0 or t["cpages"] != t["size"] * 256

    def times(self, scn, size, seq, phase):
        """{rep: T}"""
        return {t["rep"]: t for t in self.T
                if (t["scn"], t["size"], t["seq"], t["phase"]) == (scn, size, seq, phase)}

    def values(self, scn, size, seq, phase, f):
        return [f(t) for t in self.times(scn, size, seq, phase).values() if not self.bad(t)]

    def sizes(self, scn=None, seq=None):
        return sorted({t["size"] for t in self.T
                       if (scn is None or t["scn"] == scn) and (seq is None or t["seq"] == seq)})

    def hmm(self, size, key):
        return [r[size][key] for r in self.bench if size in r and key in r[size]]

    def hmm_sizes(self):
        s = set()
        for r in self.bench:
            s |= set(r)
        return s

    def secs(self):
        out, prev = [], None
        for name, up in self.phases:
            if prev is not None:
                out.append((name, up - prev))
            prev = up
        return out


def setup_ms(t):
    """The traced setup phase of a whole-migration run: the depth-0 calls of
    hmm_range_fault() and migrate_vma_setup() (the one walk makes no
    migrate_vma_setup() call; the plain migration no hmm_range_fault() call
    at depth 0)."""
    if not t["us"]:
        return None
    return (t["us"].get("hmm_range_fault", 0) + t["us"].get("migrate_vma_setup", 0)) / 1000


def paired(run, scn, size, phase, traced=False, a_seq="two", b_seq="one"):
    """per repetition of one VM run: a values, b values, b/a ratios, bad reps"""
    A = run.times(scn, size, a_seq, phase)
    B = run.times(scn, size, b_seq, phase)
    av, bv, rv, bad = [], [], [], 0
    for rep in sorted(set(A) | set(B)):
        ta, tb = A.get(rep), B.get(rep)
        if ta is None or tb is None or run.bad(ta) or run.bad(tb):
            bad += 1
            continue
        if traced:
            va, vb = setup_ms(ta), setup_ms(tb)
            if va is None or vb is None:
                continue
        else:
            va, vb = ta["ms"], tb["ms"]
        av.append(va)
        bv.append(vb)
        rv.append(ratio(vb, va))
    return av, bv, rv, bad


def table(header, rows, indent=""):
    """A markdown table: the header line, the separator, one line per row
    (each a list of cells, already formatted), every line after indent."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [indent + line for line in lines]


class Data:
    """Every VM run of RAWDIR, and how they pair up."""

    def __init__(self, raw):
        self.runs = {"base": [], "patched": []}
        for kind in self.runs:
            d = os.path.join(raw, kind)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if os.path.exists(os.path.join(d, name, "output.txt")):
                    self.runs[kind].append(Run(os.path.join(d, name)))
        # cmpN: the workload both kernels run; seq: two walks versus one.
        self.cmp = {k: [r for r in v if r.name.startswith("cmp")] for k, v in self.runs.items()}
        seqs = [r for r in self.runs["patched"] if r.name == "seq"]
        self.S = seqs[0] if seqs else None
        self.rounds = sorted({r.name for r in self.cmp["base"]} & {r.name for r in self.cmp["patched"]})
        self.byname = {k: {r.name: r for r in v} for k, v in self.cmp.items()}
        self.runinfo = {}
        for f in sorted(os.listdir(raw)):
            if f.startswith("run."):
                self.runinfo.update(Run.kv(os.path.join(raw, f), " "))
        self.allruns = sorted([r for v in self.runs.values() for r in v], key=lambda r: r.meta.get("date", ""))


def sec_how(D):
    """The title and how it was run."""
    runs, S, runinfo, allruns = D.runs, D.S, D.runinfo, D.allruns
    L = []
    w = L.append
    w("# What one walk buys, measured")
    w("")
    w("Issues 5 and 16. Generated by `make bench` (scripts/bench.sh, scripts/benchreport.py) from the raw "
      "output in [raw/](raw/); the plot is [time-vs-size.png](time-vs-size.png).")
    w("")
    w("## How it was run")
    w("")
    w(f"- Command: `{runinfo.get('command', 'make bench')}` in the workbench's top directory: "
      f"{runinfo.get('build_seconds', '?')} s of kernel builds, "
      f"{runinfo.get('vm_seconds', '?')} s of VM runs.")
    for kind in ("base", "patched"):
        if not runs[kind]:
            continue
        m = runs[kind][0].meta
        total = sum(s for r in runs[kind] for _, s in r.secs())
        w(f"- **{kind}** kernel {m.get('kernel_release', '?')}: commit {m.get('tree_commit', '?')[:12]} "
          f"(\"{m.get('tree_subject', '')}\"), {m.get('series_commits', '?')} commits on the 7.3 base "
          f"{m.get('base_commit', '?')[:12]}"
          f"{' (with uncommitted changes)' if m.get('tree_dirty', '0') not in ('0', '') else ''}; "
          f"{len(runs[kind])} VM runs, {total:.0f} s of workload in all.")
    w("- Each VM run boots one kernel: the base and the patched kernel are never in the same VM. "
      "VM runs in order, with the host's load average (1, 5, 15 min) before and after:")
    w("")
    L += table(["run", "kernel", "workload", "status", "host load before", "after"],
               [[r.name, r.meta.get('kind', '?'), ', '.join(f'{n} {s:.0f} s' for n, s in r.secs()),
                 r.meta.get('vm_status', ''), r.meta.get('host_load_before', ''),
                 r.meta.get('host_load_after', '')] for r in allruns], indent="  ")
    w("")
    anyr = S or (allruns[0] if allruns else None)
    if anyr:
        w("- Kernel configuration, the same for both: `configs/vm.config` + `configs/bench.config` "
          "(ftrace, function_graph tracer, function profiler, kprobe events), no KUnit suites; "
          "the full `.config`s are `raw/<kind>/kernel.config`.")
        # Runs before scripts/vm.sh --script recorded no vm_runner.
        w(f"- VM: `{anyr.meta.get('vm', 'QEMU TCG')}`, kernel command line "
          f"`{anyr.meta.get('vm_cmdline', '').strip()}`, busybox initramfs "
          f"({anyr.meta.get('vm_runner', 'scripts/benchvm.sh')}), "
          f"zram swap, THP `{anyr.info.get('thp_enabled', '?')}`, clocksource "
          f"{anyr.info.get('clocksource', '?')}. The host has {anyr.meta.get('host_nproc', '?')} "
          + ("cores, shared with other jobs (kernel builds). The VM runs with -icount "
             "(VM_ACCEL=icount): one vCPU on one host thread, and the guest's clock counts the "
             "instructions it executed, 1 ns each, so a \"ms\" below is a million guest "
             "instructions, whatever the host does: the same measurement in another VM run "
             "agrees to 0.1%, while repetitions within a run can differ with the guest's own "
             "state (the first of a size is often slower); instructions are not time on "
             "hardware (cache and memory effects do not show). "
             if anyr.meta.get('vm_accel') == 'icount' else
             "cores, shared with other jobs (kernel builds): TCG timings are noisy. ")
          + "Within one VM run "
          "the compared sequences alternate per repetition and every ratio is taken per "
          "repetition; between kernels (separate VM runs) the runs alternate base, patched, "
          "base, patched, and the ratios are taken per round.")
    w("- Sequences (test_hmm ioctls; all work per 2 MiB chunk): **two** = "
      "`HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS`: `hmm_range_fault(REQ_FAULT|REQ_WRITE)`, then "
      "`migrate_vma_setup()`; **one** = `HMM_DMIRROR_MIGRATE_ON_FAULT`: "
      "`hmm_range_fault(REQ_FAULT|REQ_WRITE|REQ_MIGRATE)`; **plain** = "
      "`HMM_DMIRROR_MIGRATE_TO_DEV`: `migrate_vma_setup()`, the only one 7.3 has, and what "
      "nouveau's `nouveau_dmem_migrate_vma()` calls per chunk; **xe** = "
      "`HMM_DMIRROR_MIGRATE_LIKE_XE`: what xe's GPU fault handler calls "
      "(`drm_pagemap_migrate_to_devmem()`: `migrate_vma_setup()` without faulting, all or "
      "nothing; when short, `drm_gpusvm_get_pages()` = `hmm_range_fault(REQ_FAULT)` and "
      "`migrate_vma_setup()` once more; then `drm_gpusvm_get_pages()` to map the range); "
      "**xe-one-walk** = the same with `MIGRATE_VMA_FAULT` (the xe RFC); "
      "**amdkfd** = `HMM_DMIRROR_MIGRATE_LIKE_AMDKFD`: `svm_migrate_ram_to_vram()` "
      "(`migrate_vma_setup()`, migrate what it collected), then `svm_range_validate_and_map()` "
      "(`hmm_range_fault(REQ_FAULT)`); **hrf-fault** = `HMM_DMIRROR_READ`: "
      "`hmm_range_fault(REQ_FAULT)` 64 pages a call, and **hrf-snapshot** = "
      "`HMM_DMIRROR_SNAPSHOT`: `hmm_range_fault()` without faulting, both without "
      "`HMM_PFN_REQ_MIGRATE` and in both kernels.")
    w("- Phases: **whole** = the whole ioctl (fault, collect, allocate device memory and copy, "
      "`migrate_vma_pages()`, finalize, read the data back through the device), timed with "
      "`clock_gettime()` in the guest; **traced setup** = in the same whole-migration runs, the "
      "time spent in the outermost calls of `hmm_range_fault()` and `migrate_vma_setup()` "
      "(function_graph tracer on only hmm_range_fault, migrate_vma_setup, migrate_vma_pages and "
      "migrate_vma_finalize, `max_graph_depth=1`), i.e. exactly \"up to and including what "
      "migrate_vma_setup() returns\"; **setup** = the ioctl with `HMM_DMIRROR_FLAG_SETUP_ONLY` "
      "(fault and collect, then `migrate_vma_finalize()` puts everything back; the driver also "
      "allocates its read-back buffer, the same for both), timed with `clock_gettime()`.")
    if S:
        w(f"- Every measurement maps and populates fresh memory (not timed). Sizes "
          f"{S.params.get('SIZES', '?')} MiB with {S.params.get('REPS', '?')} repetitions; "
          f"capped: largest size {S.params.get('CAPS', '-')}, repetitions "
          f"{S.params.get('REPCAPS', '-')} (set when the one walk faulted a page per walk and took 10–15 s "
          "per 64 MiB there). Figures are median [min–max] over the repetitions.")
    w("")
    return L


def judge(vals, ok):
    if not vals:
        return "not measured"
    return "met" if all(ok(v) for v in vals) else "**missed**"


def targets(D):
    """The targets of issue 5: (target, wanted, measured, result) rows."""
    S, rounds, byname = D.S, D.rounds, D.byname
    T = []

    def tgt(name, scn, phase, traced, limit):
        rows, meds = [], []
        for s in [s for s in S.sizes() if s >= 64]:
            a, b, r, bad = paired(S, scn, s, phase, traced)
            if r:
                meds.append(med(r))
                rows.append(f"{s} MiB: {rmm(r)} (min/min {ratio(min(b), min(a)):.3f})")
        T.append((name, f"≤ {limit}", "; ".join(rows) or "-", judge(meds, lambda v: v <= limit)))

    if S:
        tgt("Present pages: one-walk setup / two-walk setup, traced setup", "present", "whole", True, 0.97)
        tgt("Present pages: one-walk setup / two-walk setup, SETUP_ONLY ioctl", "present", "setup", False, 0.97)
    if rounds:
        rows, meds = [], []
        sizes = sorted(set(byname["base"][rounds[0]].sizes(seq="plain")) &
                       set(byname["patched"][rounds[0]].sizes(seq="one")))
        for s in sizes:
            per = []
            for rn in rounds:
                one = byname["patched"][rn].values("present", s, "one", "whole", setup_ms)
                base = byname["base"][rn].values("present", s, "plain", "whole", setup_ms)
                if one and base:
                    per.append(ratio(med(one), med(base)))
            if per:
                meds.append(med(per))
                rows.append(f"{s} MiB: " + ", ".join(f"{x:.3f}" for x in per))
        T.append(("Present pages: one-walk setup / 7.3's plain migrate_vma_setup(), traced "
                  "(per round: separate VM runs)", "≤ 1.02", "; ".join(rows) or "-",
                  judge(meds, lambda v: v <= 1.02)))
    if S:
        tgt("Never touched, device writes: one-walk / two-walk whole migration", "untouched", "whole", False, 0.3)
        tgt("COW-shared after fork, device writes: one-walk / two-walk whole migration", "cow", "whole", False, 0.8)
    if rounds:
        rows, vals = [], []
        hs = sorted(s for s in byname["base"][rounds[0]].hmm_sizes() & byname["patched"][rounds[0]].hmm_sizes()
                    if s >= 64)
        for s in hs:
            for k, lab in (("s2d_thp", "sys→dev"), ("d2s_thp", "dev→sys")):
                per = []
                for rn in rounds:
                    b = byname["base"][rn].hmm(s, k)
                    p = byname["patched"][rn].hmm(s, k)
                    if b and p:
                        per.append(ratio(med(b), med(p)))   # throughput ratio
                if per:
                    vals.append(med(per))
                    rows.append(f"{s:g} MB {lab}: " + ", ".join(f"{x:.3f}" for x in per))
        T.append(("THP migration throughput (hmm-tests benchmark_thp_migration, with THP): "
                  "patched / 7.3 (per round)", "≥ 1.0", "; ".join(rows) or "-",
                  judge(vals, lambda v: v >= 1.0)))
        rows, vals = [], []
        for s in sorted(set(byname["base"][rounds[0]].sizes(scn="thp", seq="plain"))):
            per = []
            for rn in rounds:
                b = byname["base"][rn].values("thp", s, "plain", "whole", lambda t: t["ms"])
                p = byname["patched"][rn].values("thp", s, "plain", "whole", lambda t: t["ms"])
                if b and p:
                    per.append(ratio(med(b), med(p)))
            if per:
                vals.append(med(per))
                rows.append(f"{s} MiB: " + ", ".join(f"{x:.3f}" for x in per))
        if rows:
            T.append(("(also) THP migration throughput, hmm-bench plain migration of THPs "
                      "(HMM_DMIRROR_MIGRATE_TO_DEV, median of the repetitions): patched / 7.3 (per round)",
                      "≥ 1.0", "; ".join(rows), judge(vals, lambda v: v >= 1.0)))
    return T


def per_round(D, scn, size, seq, f):
    """patched/base ratio of the medians, per round (cmpN runs)."""
    per = []
    for rn in D.rounds:
        b = D.byname["base"][rn].values(scn, size, seq, "whole", f)
        p = D.byname["patched"][rn].values(scn, size, seq, "whole", f)
        if b and p:
            per.append(ratio(med(p), med(b)))
    return per


def hrf_ms(t):
    """The traced time in hmm_range_fault() of a run."""
    if not t["us"]:
        return None
    return t["us"].get("hmm_range_fault", 0) / 1000


def mig_setup_ms(t):
    """The traced time in migrate_vma_setup() of a run."""
    if not t["us"]:
        return None
    return t["us"].get("migrate_vma_setup", 0) / 1000


def targets16(D):
    """The targets of issue 16: (target, wanted, measured, result) rows."""
    S, rounds = D.S, D.rounds
    T = []

    def between(name, scn, seq, f, sizes, limit, worst=None):
        rows, ok = [], []
        for s in sizes:
            per = per_round(D, scn, s, seq, f)
            if not per:
                continue
            m = med(per)
            ok.append(m <= limit and (worst is None or max(per) <= worst))
            rows.append(f"{s} MiB: median {m:.3f} of " + ", ".join(f"{x:.3f}" for x in per))
        want = f"≤ {limit}" + (f", no round > {worst}" if worst else "")
        T.append((name, want, "; ".join(rows) or "-",
                  "not measured" if not ok else ("met" if all(ok) else "**missed**")))

    if rounds:
        r0 = (D.byname["base"][rounds[0]], D.byname["patched"][rounds[0]])
        both = lambda scn, seq: sorted(set(r0[0].sizes(scn=scn, seq=seq)) & set(r0[1].sizes(scn=scn, seq=seq)))
        big = [s for s in both("present", "plain") if s >= 64]
        between("No regression: plain `migrate_vma_setup()` on present 4 KiB pages, traced "
                "`migrate_vma_setup()`: patched / 7.3 (per round)", "present", "plain",
                mig_setup_ms, big, 1.00, 1.03)
        between("No regression: plain `migrate_vma_setup()` of THPs, traced `migrate_vma_setup()`: "
                "patched / 7.3 (per round)", "thp", "plain", mig_setup_ms,
                [s for s in both("thp", "plain") if s >= 64], 1.02)
        for scn, seq, what in (("present", "hrf-snapshot", "snapshot of present pages"),
                               ("present", "hrf-fault", "faulting, pages present"),
                               ("untouched", "hrf-fault", "faulting, never-touched pages")):
            between(f"No regression: `hmm_range_fault()` without REQ_MIGRATE, {what}, traced "
                    "`hmm_range_fault()`: patched / 7.3 (per round)", scn, seq, hrf_ms,
                    [s for s in both(scn, seq) if s >= 64], 1.01)
    if S and any(t["seq"] == "xe" for t in S.T):
        def drv(name, scns, other, limit):
            rows, meds = [], []
            for scn in scns:
                for s in S.sizes(scn, "xe"):
                    a, b, r, bad = paired(S, scn, s, "drivers", False, other, "one")
                    if r:
                        meds.append(med(r))
                        rows.append(f"{scn} {s} MiB: {rmm(r)}")
            T.append((name, f"≤ {limit}", "; ".join(rows) or "-", judge(meds, lambda v: v <= limit)))
        drv("One walk / xe's sequence, whole migration, never-touched and swapped-out memory",
            ("untouched", "swap"), "xe", 0.5)
        drv("One walk / xe's sequence, whole migration, present pages", ("present",), "xe", 0.95)
        for other in ("xe", "amdkfd", "plain"):
            drv(f"One walk / {other}'s sequence{' (nouveau)' if other == 'plain' else ''}, whole "
                "migration, every scenario", [x for x in SCN if S.sizes(x, other)], other, 1.00)
    # Scaling: time per page, the smallest size to the largest.
    for seq, runs, lab in (("plain", D.cmp.get("patched", []), "plain `migrate_vma_setup()`"),
                           ("one", D.cmp.get("patched", []), "the one walk")):
        sizes = sorted(set().union(*[set(r.sizes(scn="present", seq=seq)) for r in runs])) if runs else []
        if len(sizes) < 2:
            continue
        pp = []
        for s in sizes:
            v = [x for r in runs for x in r.values("present", s, seq, "whole", lambda t: t["ms"])]
            if v:
                pp.append((s, med(v) * 1000 / (s * 256)))
        if len(pp) < 2:
            continue
        spread = max(x for _, x in pp) / min(x for _, x in pp)
        T.append((f"Scaling: whole-migration time per 4 KiB page, present pages, {lab} "
                  f"(patched, every cmp run), {pp[0][0]} MiB to {pp[-1][0]} MiB: largest / smallest",
                  "≤ 1.10", ", ".join(f"{s} MiB {x:.2f} µs" for s, x in pp) + f"; spread {spread:.3f}",
                  "met" if spread <= 1.10 else "**missed**"))
    return T


def sec_drivers(D):
    """The one walk against the drivers' sequences, per scenario and size."""
    S = D.S
    L = []
    w = L.append
    if not S or not any(t["seq"] == "xe" for t in S.T):
        return L
    w("## The one walk against what drivers run (patched kernel, one VM run)")
    w("")
    w("Whole migration (fault, collect, migrate, map for the device, read back), ms, median "
      "[min–max]; one/xe, one/amdkfd, one/plain: the ratio per repetition, median [min–max]. "
      "xe-one-walk is xe's sequence with `MIGRATE_VMA_FAULT` (`HMM_DMIRROR_FLAG_SETUP_FAULT`), as "
      "the xe RFC makes it. The five sequences run interleaved, the order rotating per repetition.")
    w("")
    rows = []
    for scn in SCN:
        for s in S.sizes(scn, "xe"):
            cells = [scn, str(s)]
            for seq in ("one", "xe", "xe-one-walk", "amdkfd", "plain"):
                cells.append(mmm(S.values(scn, s, seq, "drivers", lambda t: t["ms"])))
            for other in ("xe", "xe-one-walk", "amdkfd", "plain"):
                a, b, r, bad = paired(S, scn, s, "drivers", False, other, "one")
                cells.append(rmm(r) + (" †" if bad else ""))
            rows.append(cells)
    L += table(["scenario", "MiB", "one", "xe", "xe-one-walk", "amdkfd", "plain (nouveau)", "one/xe",
                "one/xe-one-walk", "one/amdkfd", "one/plain"], rows)
    w("")
    return L


def sec_hrf(D):
    """hmm_range_fault() without REQ_MIGRATE, base versus patched."""
    rounds, byname = D.rounds, D.byname
    L = []
    w = L.append
    if not rounds or not any(t["seq"].startswith("hrf-") for t in byname["base"][rounds[0]].T):
        return L
    w("## hmm_range_fault() without HMM_PFN_REQ_MIGRATE, base (7.3) versus patched")
    w("")
    w("Traced time in `hmm_range_fault()` and the whole ioctl, ms, median [min–max] over all "
      "rounds; patched/base: the ratio of the medians per round.")
    w("")
    rows = []
    for scn, seq in (("present", "hrf-snapshot"), ("present", "hrf-fault"), ("untouched", "hrf-fault")):
        for s in sorted(set(byname["base"][rounds[0]].sizes(scn=scn, seq=seq))):
            cells = [seq, scn, str(s)]
            for f in (hrf_ms, lambda t: t["ms"]):
                b = [v for rn in rounds for v in byname["base"][rn].values(scn, s, seq, "whole", f)]
                p = [v for rn in rounds for v in byname["patched"][rn].values(scn, s, seq, "whole", f)]
                cells += [mmm(b), mmm(p), ", ".join(f"{x:.3f}" for x in per_round(D, scn, s, seq, f)) or "-"]
            rows.append(cells)
    L += table(["ioctl", "scenario", "MiB", "base: hmm_range_fault", "patched: hmm_range_fault",
                "patched/base per round", "base: whole", "patched: whole", "patched/base per round"], rows)
    w("")
    return L


def sec_targets16(D):
    L = ["## Targets of issue 16 (no regression, the drivers' sequences, scaling)", ""]
    L += table(["target", "wanted", "measured", "result"], targets16(D))
    L.append("")
    return L


def sec_targets(D, analysis):
    """The targets table, then ANALYSIS (bench/analysis.md) when it exists."""
    L = []
    w = L.append
    w("## Targets (issue 5: at 64 MiB and above, as ratios)")
    w("")
    w("Judged on the median ratio at every size ≥ 64 MiB (and, between kernels, on the median "
      "of the per-round ratios); min/min is the ratio of the fastest runs, the least disturbed "
      "by the host.")
    w("")
    L += table(["target", "wanted",
                "measured: median [min–max] of the per-repetition ratios, or per-round ratios", "result"],
               targets(D))
    w("")
    if os.path.exists(analysis):
        w(open(analysis).read().rstrip())
        w("")
    return L


def sec_walks(D):
    """Page-table walks per sequence (the kprobe counts)."""
    S, cmp = D.S, D.cmp
    L = []
    w = L.append
    wr = ([S] if S and S.W else []) + [r for k in ("base", "patched") for r in cmp[k][:1] if r.W]
    if not wr:
        return L
    w("## Page-table walks per sequence")
    w("")
    w("Counted with kprobe events on the walk entry points of mm/pagewalk.c and on the "
      "sequences' functions (`kprobe_profile` hit counts read before and after the one "
      "ioctl; no counters in kernel code). walks = calls of `__walk_page_range()`, which "
      "every page-table walk of a VMA range goes through (the range is one VMA); here every "
      "walk came through `walk_page_range()` (patched) or `walk_page_range_vma()` (7.3). "
      "The ioctls work per 2 MiB chunk: per chunk, divide by the number of chunks. "
      "invalidations = calls of `__mmu_notifier_invalidate_range_start()`, every MMU notifier "
      "invalidation in the VM during the ioctl (the migrations' own, COW breaks, ...); "
      "test_hmm's interval notifier filters none of them; of them MIGRATE = those with "
      "`MMU_NOTIFY_MIGRATE` (a kprobe on the same function with a filter on the event, counted "
      "in the trace buffer). xe and amdkfd: the drivers' "
      "sequences (`HMM_DMIRROR_MIGRATE_LIKE_XE`, `HMM_DMIRROR_MIGRATE_LIKE_AMDKFD`), their "
      "mapping walk after the migration included.")
    w("")
    rows = []
    for r in wr:
        for x in r.W:
            h = x["hits"]
            rows.append([r.meta.get('kind', '?'), x['scn'], x['seq'], x['phase'],
                         f"{x['size']} ({x['size'] // 2})", h.get('__walk_page_range', '-'),
                         h.get('hmm_range_fault', '-'), h.get('migrate_vma_setup', '-'),
                         h.get('handle_mm_fault', '-'),
                         h.get('__mmu_notifier_invalidate_range_start', '-'),
                         h.get('migrate_invalidations', '-')])
    L += table(["kernel", "scenario", "sequence", "phase", "MiB (chunks)", "walks", "hmm_range_fault",
                "migrate_vma_setup", "handle_mm_fault", "invalidations", "of them MIGRATE"], rows)
    w("")
    one = [x for x in (S.W if S else []) if x["seq"] == "one"]
    if one:
        w("Per 2 MiB chunk, the one walk (`HMM_DMIRROR_MIGRATE_ON_FAULT`) against the bound the "
          "core states (Documentation/mm/hmm.rst, the feature's cover letter): without concurrent "
          "invalidations one `hmm_range_fault()` call per range, two when a fault breaks COW or a THP "
          "has to be split first (that invalidation makes the first call return -EBUSY before "
          "anything is collected); "
          "an `MMU_NOTIFY_MIGRATE` invalidation per collection, at most two collections per call.")
        w("")
        rows = []
        for x in one:
            h, n = x["hits"], max(1, x["size"] // 2)
            calls = h.get("hmm_range_fault")
            mig = h.get("migrate_invalidations")
            # a write fault that breaks COW, or a THP split first, invalidates
            # before anything is collected: the first call returns -EBUSY
            bound_calls = 2 if x["scn"] in ("cow", "rofile", "thp-split") else 1
            ok = calls is not None and calls <= bound_calls * n and (mig is None or mig <= 2 * calls)
            rows.append([x["scn"], x["phase"], n,
                         "-" if calls is None else f"{calls / n:g}",
                         "-" if mig is None else f"{mig / n:g}",
                         f"≤ {bound_calls}", "≤ 2 per call", "within" if ok else "**above**"])
        L += table(["scenario", "phase", "chunks", "hmm_range_fault per chunk",
                    "MIGRATE invalidations per chunk", "bound: calls", "bound: MIGRATE", "result"], rows)
        w("")
    w("All probe counts (walk_page_range, walk_page_range_vma, ... and the ioctl's return "
      "value) are the `W` lines of `raw/patched/seq/output.txt` and `raw/<kind>/cmp1/output.txt`.")
    w("")
    return L


def sec_sequences(D):
    """Two walks versus one, a table per scenario."""
    S = D.S
    L = []
    w = L.append
    if not S:
        return L
    w("## Two walks versus one, per scenario and size (patched kernel, one VM run)")
    w("")
    w("Times in ms, median [min–max]; one/two: the per-repetition ratio, median [min–max]. "
      "† marks figures with repetitions left out for an unexpected result.")
    w("")
    for scn in SCN:
        sizes = S.sizes(scn)
        if not sizes:
            continue
        w(f"### {scn}: {SCN_TEXT[scn]}")
        w("")
        rows = []
        for s in sizes:
            cells = [str(s), str(len(S.times(scn, s, "two", "whole")))]
            for phase, traced in (("whole", False), ("whole", True), ("setup", False)):
                a, b, r, bad = paired(S, scn, s, phase, traced)
                mark = " †" if bad else ""
                cells += [mmm(a) + mark, mmm(b) + mark, rmm(r)]
            rows.append(cells)
        L += table(["MiB", "reps", "two: whole", "one: whole", "one/two whole", "two: traced setup",
                    "one: traced setup", "one/two traced setup", "two: setup", "one: setup",
                    "one/two setup"], rows)
        w("")
    chk = []
    if "thp_backed_kb" in S.info:
        chk.append(f"THP-backed after populating: {S.info['thp_backed_kb']} kB")
    if "swapped_kb" in S.info:
        chk.append(f"swapped out after MADV_PAGEOUT: {S.info['swapped_kb']} kB")
    if chk:
        w("Checks (first size): " + "; ".join(chk) + ".")
        w("")
    return L


def sec_time(D):
    """Where the time of the whole migration goes (the traced functions)."""
    S = D.S
    L = []
    w = L.append
    if not S:
        return L
    w("## Where the time of the whole migration goes (patched kernel, traced)")
    w("")
    w("Medians in ms of the whole-migration runs above (64 MiB and 256 MiB): the outermost "
      "calls of the four traced functions, and the rest of the ioctl, which is test_hmm's "
      "device side (allocating device pages and their backing pages, copying or zero-filling "
      "them, its page table) and its read-back of the data to user space. mm = the four "
      "functions together.")
    w("")
    fn = ["hmm_range_fault", "migrate_vma_setup", "migrate_vma_pages", "migrate_vma_finalize"]
    rows = []
    for scn in SCN:
        for s in [x for x in S.sizes(scn) if x in (64, 256)]:
            mm = {}
            for seq in ("two", "one"):
                ts = [t for t in S.times(scn, s, seq, "whole").values() if not S.bad(t) and t["us"]]
                if not ts:
                    continue
                cols = [med([t["us"].get(f, 0) / 1000 for t in ts]) for f in fn]
                mm[seq] = [sum(t["us"].get(f, 0) for f in fn) / 1000 for t in ts]
                rest = med([t["ms"] - sum(t["us"].get(f, 0) for f in fn) / 1000 for t in ts])
                r = ""
                if seq == "one" and "two" in mm:
                    A = S.times(scn, s, "two", "whole")
                    B = S.times(scn, s, "one", "whole")
                    rr = [sum(B[k]["us"].get(f, 0) for f in fn) / sum(A[k]["us"].get(f, 0) for f in fn)
                          for k in sorted(set(A) & set(B))
                          if not S.bad(A[k]) and not S.bad(B[k]) and A[k]["us"] and B[k]["us"]]
                    r = rmm(rr)
                rows.append([scn, s, seq] + [fmt(c) for c in cols] +
                            [fmt(rest), fmt(med([t['ms'] for t in ts])), fmt(med(mm[seq])), r])
    L += table(["scenario", "MiB", "sequence"] + fn + ["rest (driver)", "whole", "mm", "one/two mm"], rows)
    w("")
    return L


def sec_base_patched(D):
    """Base (7.3) versus patched: the cmpN runs."""
    cmp, rounds, byname = D.cmp, D.rounds, D.byname
    L = []
    w = L.append
    if not rounds:
        return L
    w("## Base (7.3) versus patched")
    w("")
    w(f"The same workload in {len(rounds)} rounds of two VM runs (base, then patched). "
      "Plain `HMM_DMIRROR_MIGRATE_TO_DEV` on present 4 KiB pages and on THPs (migrated compound); ms, median [min–max] "
      "over all rounds; patched/base: the ratio of the medians per round.")
    w("")
    rows = []
    for scn in ("present", "thp"):
        sizes = sorted(set().union(*[set(r.sizes(scn=scn, seq="plain")) for r in cmp["base"] + cmp["patched"]]))
        for s in sizes:
            cells = ["4 KiB" if scn == "present" else "THP", str(s)]
            for f in (lambda t: t["ms"], setup_ms):
                b = [v for rn in rounds for v in byname["base"][rn].values(scn, s, "plain", "whole", f)]
                p = [v for rn in rounds for v in byname["patched"][rn].values(scn, s, "plain", "whole", f)]
                per = []
                for rn in rounds:
                    bb = byname["base"][rn].values(scn, s, "plain", "whole", f)
                    pp = byname["patched"][rn].values(scn, s, "plain", "whole", f)
                    if bb and pp:
                        per.append(f"{ratio(med(pp), med(bb)):.3f}")
                cells += [mmm(b), mmm(p), ", ".join(per) or "-"]
            rows.append(cells)
    L += table(["pages", "MiB", "base: whole", "patched: whole", "patched/base per round",
                "base: migrate_vma_setup", "patched: migrate_vma_setup", "patched/base per round"], rows)
    w("")
    w("In the patched VM runs the one walk (`HMM_DMIRROR_MIGRATE_ON_FAULT`) ran interleaved "
      "with the plain migration on the same kind of memory: ms, and one/plain per repetition "
      "(same VM run).")
    w("")
    rows = []
    for scn in ("present", "thp"):
        sizes = sorted(set().union(*[set(r.sizes(scn=scn, seq="one")) for r in cmp["patched"]]))
        for s in sizes:
            cells = ["4 KiB" if scn == "present" else "THP", str(s)]
            for traced in (False, True):
                a, b, r = [], [], []
                for rn in rounds:
                    x, y, z, _ = paired(byname["patched"][rn], scn, s, "whole", traced, "plain", "one")
                    a += x
                    b += y
                    r += z
                cells += [mmm(a), mmm(b), rmm(r)]
            rows.append(cells)
    L += table(["pages", "MiB", "plain: whole", "one: whole", "one/plain whole", "plain: traced setup",
                "one: traced setup", "one/plain traced setup"], rows)
    w("")
    hs = sorted(set().union(*[r.hmm_sizes() for r in cmp["base"] + cmp["patched"]]))
    if hs:
        nb = sum(len(r.bench) for r in cmp["base"])
        npch = sum(len(r.bench) for r in cmp["patched"])
        w(f"hmm-tests `benchmark_thp_migration`, each kernel's own hmm-tests ({nb} base runs, "
          f"{npch} patched runs, {len(rounds)} rounds; each run's figure is already the mean of "
          "5 iterations). ms, median [min–max] over all runs; patched/base: ratio of the "
          "time medians per round (below 1: the patched kernel is faster; the throughput "
          "ratio is its inverse).")
        w("")
        rows = []
        for s in hs:
            for k, pg, d in (("s2d_thp", "THP", "sys→dev"), ("d2s_thp", "THP", "dev→sys"),
                             ("s2d_reg", "4 KiB", "sys→dev"), ("d2s_reg", "4 KiB", "dev→sys")):
                b = [v for r in cmp["base"] for v in r.hmm(s, k)]
                p = [v for r in cmp["patched"] for v in r.hmm(s, k)]
                per = []
                for rn in rounds:
                    bb, pp = byname["base"][rn].hmm(s, k), byname["patched"][rn].hmm(s, k)
                    if bb and pp:
                        per.append(f"{ratio(med(pp), med(bb)):.3f}")
                rows.append([f"{s:g}", pg, d, mmm(b), mmm(p), ', '.join(per) or '-'])
        L += table(["MB", "pages", "direction", "base", "patched", "patched/base per round"], rows)
        w("")
    return L


def sec_files():
    return [
        "## Files",
        "",
        "- `raw/<kind>/<run>/output.txt`: what the guest printed. hmm-bench lines: "
        "`T scenario MiB sequence phase repetition ms ioctl-return pages-on-device "
        "[function=µs/calls ...]`, `W scenario MiB sequence phase ret=... probe=hits ...`, "
        "`I` information; then hmm-tests' output (`B run N` ... `B end N`).",
        "- `raw/<kind>/<run>/console.log`: the guest's kernel log; `params`: sizes and repetitions; "
        "`meta`: commits, VM and host load. `raw/<kind>/kernel.config`: the kernel's `.config`.",
        "- `time-vs-size.png`: whole migration and SETUP_ONLY time against size, two walks and one, "
        "per scenario (median, bars min–max).",
        "",
    ]


def report(D, analysis):
    """The whole of results.md, as a list of lines."""
    return (sec_how(D) + sec_targets16(D) + sec_targets(D, analysis) + sec_walks(D) +
            sec_drivers(D) + sec_sequences(D) + sec_time(D) + sec_base_patched(D) + sec_hrf(D) +
            sec_files())


def main():
    raw, out_md, out_png = sys.argv[1:4]
    D = Data(raw)
    L = report(D, os.path.join(os.path.dirname(out_md), "analysis.md"))
    open(out_md, "w").write("\n".join(L))
    if D.S:
        plot(D.S, out_png)


def plot(S, out_png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, FixedFormatter, NullLocator
    except ImportError:
        print("benchreport: no matplotlib: no plot", file=sys.stderr)
        return
    scns = [s for s in SCN if S.sizes(s)]
    cols = 4
    rows = (len(scns) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.7 * rows), squeeze=False)
    for i, scn in enumerate(scns):
        ax = axes[i // cols][i % cols]
        sizes = S.sizes(scn)
        for seq, color in (("two", "tab:red"), ("one", "tab:blue")):
            for phase, style in (("whole", "-"), ("setup", "--")):
                xs, ys, lo, hi = [], [], [], []
                for s in sizes:
                    v = S.values(scn, s, seq, phase, lambda t: t["ms"])
                    if v:
                        xs.append(s)
                        ys.append(med(v))
                        lo.append(med(v) - min(v))
                        hi.append(max(v) - med(v))
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style + "o", color=color, ms=3,
                                capsize=2, label=f"{seq} walk{'s' if seq == 'two' else ''}: "
                                                 f"{'whole' if phase == 'whole' else 'setup only'}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_major_formatter(FixedFormatter([str(s) for s in sizes]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(f"{scn}")
        ax.set_xlabel("range (MiB)")
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(len(scns), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Fault and migrate to the test_hmm device: two walks (red) vs one walk (blue); "
                 "median, bars min–max; QEMU TCG VM, patched kernel")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)


if __name__ == "__main__":
    main()
