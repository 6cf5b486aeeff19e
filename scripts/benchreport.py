#!/usr/bin/env python3
"""make bench: turn bench/raw/{base,patched}/ into bench/results.md and the
time-versus-size plot.

    benchreport.py RAWDIR RESULTS.md PLOT.png

RAWDIR/<kind>/output.txt is what bench/guest.sh printed in the VM of that
kernel (see bench/hmm-bench.c for the line formats), RAWDIR/<kind>/meta
describes the kernel and the run.  bench/analysis.md, when present, is
quoted as the explanation of the targets' results.
"""
import os
import re
import statistics
import sys
from collections import defaultdict

SCN = ["present", "untouched", "zeropage", "rofile", "cow", "thp", "thp-split", "swap"]
SCN_TEXT = {
    "present": "all pages present (4 KiB, written)",
    "untouched": "never touched",
    "zeropage": "zero page mapped (read before)",
    "rofile": "read-only: private file mapping read before (write fault needed)",
    "cow": "COW-shared with a forked child",
    "thp": "THP, migrated compound",
    "thp-split": "THP, migrated as 4 KiB pages (NO_COMPOUND)",
    "swap": "swapped out to zram (MADV_PAGEOUT)",
}
GRAPH = ["hmm_range_fault", "migrate_vma_setup", "migrate_vma_pages", "migrate_vma_finalize"]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, nd=1):
    if x != x:
        return "-"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) >= 100:
        return f"{x:.{max(nd - 1, 0)}f}" if nd > 1 else f"{x:.0f}"
    return f"{x:.{nd}f}" if abs(x) >= 10 else f"{x:.{nd + 1}f}"


def mmm(xs, nd=1):
    """median [min-max]"""
    if not xs:
        return "-"
    return f"{fmt(med(xs), nd)} [{fmt(min(xs), nd)}–{fmt(max(xs), nd)}]"


def rmm(xs):
    if not xs:
        return "-"
    return f"{med(xs):.3f} [{min(xs):.3f}–{max(xs):.3f}]"


class Run:
    def __init__(self, d):
        self.dir = d
        self.meta = {}
        self.info = {}
        self.phases = []
        self.T = []   # dicts
        self.W = []
        self.bench = []   # per run: {size_mb: {s2d_thp, s2d_reg, d2s_thp, d2s_reg}}
        self.noprobe = []
        mp = os.path.join(d, "meta")
        if os.path.exists(mp):
            for line in open(mp):
                k, _, v = line.rstrip("\n").partition(" ")
                self.meta[k] = v
        self.params = {}
        pp = os.path.join(d, "params")
        if os.path.exists(pp):
            for line in open(pp):
                k, _, v = line.strip().partition("=")
                self.params[k] = v
        self.parse(os.path.join(d, "output.txt"))

    def parse(self, path):
        cur = None
        size = None
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            f = line.split()
            if not f:
                continue
            if f[0] == "I" and len(f) >= 2:
                if f[1] == "phase":
                    self.phases.append((f[2], float(f[3])))
                elif f[1] == "noprobe":
                    self.noprobe.append(f[2])
                else:
                    self.info.setdefault(f[1], " ".join(f[2:]))
            elif f[0] == "T" and len(f) >= 9:
                t = dict(scn=f[1], size=int(f[2]), seq=f[3], phase=f[4], rep=int(f[5]),
                         ms=float(f[6]), ret=int(f[7]), cpages=int(f[8]), us={}, calls={})
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

    def times(self, scn, size, seq, phase):
        """{rep: T} of valid runs"""
        return {t["rep"]: t for t in self.T
                if (t["scn"], t["size"], t["seq"], t["phase"]) == (scn, size, seq, phase)}

    def bad(self, t):
        if t["phase"] == "setup":
            return t["ret"] not in (0, -2)
        return t["ret"] != 0 or t["cpages"] != t["size"] * 256

    def phase_secs(self):
        out = []
        prev = None
        for name, up in self.phases:
            if prev is not None:
                out.append((name, up - prev))
            prev = up
        return out


def setup_us(t, seq):
    """The traced setup phase of a whole-migration run: the depth-0 calls of
    hmm_range_fault() and migrate_vma_setup() (the one walk makes no
    migrate_vma_setup() call; plain makes no hmm_range_fault() call)."""
    if not t["us"]:
        return None
    return t["us"].get("hmm_range_fault", 0) + t["us"].get("migrate_vma_setup", 0)


def paired(run, scn, size, phase, key=None):
    """lists two, one, one/two ratios (per repetition, same VM run)"""
    a = run.times(scn, size, "two", phase)
    b = run.times(scn, size, "one", phase)
    two, one, ratio, bad = [], [], [], 0
    for rep in sorted(set(a) | set(b)):
        ta, tb = a.get(rep), b.get(rep)
        if ta is None or tb is None or run.bad(ta) or run.bad(tb):
            bad += 1
            continue
        if key == "traced":
            va, vb = setup_us(ta, "two"), setup_us(tb, "one")
            if va is None or vb is None:
                continue
            va, vb = va / 1000, vb / 1000
        else:
            va, vb = ta["ms"], tb["ms"]
        two.append(va)
        one.append(vb)
        ratio.append(vb / va if va else float("nan"))
    return two, one, ratio, bad


def main():
    raw, out_md, out_png = sys.argv[1:4]
    runs = {}
    for kind in ("base", "patched"):
        d = os.path.join(raw, kind)
        if os.path.exists(os.path.join(d, "output.txt")):
            runs[kind] = Run(d)
    P = runs.get("patched")
    B = runs.get("base")
    runinfo = {}
    for f in sorted(os.listdir(raw)):
        if f.startswith("run."):
            for line in open(os.path.join(raw, f)):
                k, _, v = line.rstrip("\n").partition(" ")
                runinfo.setdefault(k, v)

    L = []
    w = L.append
    w("# What one walk buys, measured")
    w("")
    w("Generated by `make bench` (scripts/bench.sh, scripts/benchreport.py); "
      "raw output in [raw/](raw/). Issue 5.")
    w("")
    w("## How it was run")
    w("")
    w(f"- Command: `{runinfo.get('command', 'make bench')}` in the workbench's top directory. "
      f"Kernel builds took {runinfo.get('build_seconds', '?')} s (mostly cached), "
      f"the VM runs {runinfo.get('vm_seconds', '?')} s, "
      f"all of it {runinfo.get('total_seconds', '?')} s.")
    for kind, r in runs.items():
        m = r.meta
        secs = sum(s for _, s in r.phase_secs())
        w(f"- **{kind}** kernel: {m.get('kernel_release', r.info.get('kernel', '?'))}, "
          f"commit {m.get('tree_commit', '?')[:12]} (\"{m.get('tree_subject', '')}\"; "
          f"{m.get('series_commits', '?')} commits on the base "
          f"{m.get('base_commit', '?')[:12]}{', uncommitted changes' if m.get('tree_dirty', '0') not in ('0', '') else ''}). "
          f"Its own VM run: workload {secs:.0f} s "
          f"({', '.join(f'{n} {s:.0f} s' for n, s in r.phase_secs())}); "
          f"{m.get('vm_status', '')}; host load before/after {m.get('host_load_before', '?')} / "
          f"{m.get('host_load_after', '?')}.")
    w("- Kernel configuration, the same for both: `configs/vm.config` + `configs/bench.config` "
      "(ftrace, function_graph tracer, function profiler, kprobe events), no KUnit suites; "
      "full `.config`s in `raw/<kind>/kernel.config`.")
    if P:
        w(f"- VM: {P.meta.get('vm', 'QEMU TCG')}, kernel command line `{P.meta.get('vm_cmdline', '')}`, "
          f"busybox initramfs (scripts/benchvm.sh), zram swap, THP `{P.info.get('thp_enabled', '?')}`, "
          f"clocksource {P.info.get('clocksource', '?')}. The host has "
          f"{P.meta.get('host_nproc', '?')} cores shared with other jobs: TCG timings are noisy, "
          "which is why every ratio below is taken per repetition inside one VM run.")
        w(f"- Sequences: **two** = `HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS` "
          "(`hmm_range_fault(REQ_FAULT|REQ_WRITE)` then `migrate_vma_setup()`), "
          "**one** = `HMM_DMIRROR_MIGRATE_ON_FAULT` (`hmm_range_fault(REQ_FAULT|REQ_WRITE|REQ_MIGRATE)`), "
          "**plain** = `HMM_DMIRROR_MIGRATE_TO_DEV` (`migrate_vma_setup()`, the only one 7.3 has). "
          "All per 2 MiB chunk, as lib/test_hmm does.")
        w("- Phases: **setup** = the ioctl with `HMM_DMIRROR_FLAG_SETUP_ONLY` (fault, collect, then "
          "`migrate_vma_finalize()` puts everything back; the driver also allocates its read-back "
          "buffer and finds nothing to read: the same cost for both sequences), timed with "
          "`clock_gettime()` in the guest; **whole** = the full ioctl (fault, collect, allocate "
          "and copy to device memory, finalize, read the data back through the device); "
          "**traced setup** = within the whole-migration runs, the time of the depth-0 calls "
          "of `hmm_range_fault()` + `migrate_vma_setup()`, from the function_graph tracer "
          "(only the four functions hmm_range_fault, migrate_vma_setup, migrate_vma_pages, "
          "migrate_vma_finalize are traced, `max_graph_depth=1`): exactly \"up to and "
          "including what migrate_vma_setup() returns\".")
        w(f"- Every measurement maps and populates fresh memory (never counted); repetitions per "
          f"size {P.params.get('REPS', '?')} for sizes {P.params.get('SIZES', '?')} MiB; in each "
          "repetition the two sequences run back to back, in alternating order. Figures are "
          "median [min–max]; ratios are one/two per repetition, then median [min–max].")
    w("")

    # ---- targets ---------------------------------------------------------
    targets = []
    if P:
        sizes_big = sorted({t["size"] for t in P.T if t["size"] >= 64})

        def tgt_seq(name, scn, phase, key, limit):
            rows = []
            ok = True
            have = False
            for s in sizes_big:
                two, one, ratio, bad = paired(P, scn, s, phase, key)
                if not ratio:
                    continue
                have = True
                r = med(ratio)
                ok = ok and r <= limit
                rows.append(f"{s} MiB: {rmm(ratio)}")
            targets.append((name, f"≤ {limit}", "; ".join(rows) or "not measured",
                            ("met" if ok else "**missed**") if have else "not measured"))

        tgt_seq("present pages: one-walk setup / two-walk setup (traced setup)",
                "present", "whole", "traced", 0.97)
        tgt_seq("present pages: one-walk setup / two-walk setup (SETUP_ONLY ioctl)",
                "present", "setup", None, 0.97)
        # one-walk setup vs 7.3's plain migrate_vma_setup(), across VM runs
        if B:
            rows, ok, have = [], True, False
            for s in sizes_big:
                one = [setup_us(t, "one") for t in P.times("present", s, "one", "whole").values()
                       if not P.bad(t) and t["us"]]
                base = [t["us"].get("migrate_vma_setup", 0) for t in
                        B.times("present", s, "plain", "whole").values() if not B.bad(t) and t["us"]]
                if one and base:
                    have = True
                    r = med(one) / med(base)
                    ok = ok and r <= 1.02
                    rows.append(f"{s} MiB: {r:.3f} ({fmt(med(one) / 1000)} ms vs {fmt(med(base) / 1000)} ms)")
            targets.append(("present pages: one-walk setup / 7.3's plain migrate_vma_setup() "
                            "(traced; patched and base are separate VM runs)", "≤ 1.02",
                            "; ".join(rows) or "not measured",
                            ("met" if ok else "**missed**") if have else "not measured"))
        tgt_seq("never touched, device writes: one-walk / two-walk whole migration",
                "untouched", "whole", None, 0.3)
        tgt_seq("COW-shared after fork, device writes: one-walk / two-walk whole migration",
                "cow", "whole", None, 0.8)
    if P and B:
        rows, ok, have = [], True, False
        for s in sorted(hmm_sizes(P) & hmm_sizes(B)):
            if s < 64:
                continue
            for k, lab in (("s2d_thp", "sys→dev"), ("d2s_thp", "dev→sys")):
                p = [r[s][k] for r in P.bench if s in r and k in r[s]]
                b = [r[s][k] for r in B.bench if s in r and k in r[s]]
                if p and b:
                    have = True
                    # throughput ratio = base time / patched time
                    r = med(b) / med(p)
                    ok = ok and r >= 1.0
                    rows.append(f"{s:g} MB {lab}: {r:.3f}")
        targets.append(("THP migration throughput, hmm-tests benchmark_thp_migration, "
                        "patched / 7.3 (with THP; separate VM runs)", "≥ 1.0",
                        "; ".join(rows) or "not measured",
                        ("met" if ok else "**missed**") if have else "not measured"))
    w("## Targets (issue 5; at 64 MiB and above)")
    w("")
    w("| target | wanted | measured: ratio median [min–max] per size | result |")
    w("|---|---|---|---|")
    for t in targets:
        w("| " + " | ".join(t) + " |")
    w("")
    ap = os.path.join(os.path.dirname(out_md), "analysis.md")
    if os.path.exists(ap):
        w(open(ap).read().rstrip())
        w("")

    # ---- the sequences ----------------------------------------------------
    if P:
        w("## Two walks versus one, per scenario and size (patched kernel, one VM run)")
        w("")
        w("Times in ms. one/two: per-repetition ratio, median [min–max]. "
          "A figure marked † had repetitions with an unexpected result (left out).")
        w("")
        for scn in SCN:
            sizes = sorted({t["size"] for t in P.T if t["scn"] == scn})
            if not sizes:
                continue
            w(f"### {scn}: {SCN_TEXT[scn]}")
            w("")
            w("| MiB | two: setup | one: setup | one/two setup | two: traced setup | one: traced setup | one/two traced | two: whole | one: whole | one/two whole |")
            w("|---|---|---|---|---|---|---|---|---|---|")
            for s in sizes:
                cells = [str(s)]
                for phase, key in (("setup", None), ("whole", "traced"), ("whole", None)):
                    two, one, ratio, bad = paired(P, scn, s, phase, key)
                    mark = " †" if bad else ""
                    cells += [mmm(two) + mark, mmm(one) + mark, rmm(ratio)]
                w("| " + " | ".join(cells) + " |")
            w("")
        extra = []
        for k in ("thp_backed_kb", "swapped_kb"):
            if k in P.info:
                extra.append(f"{k.replace('_', ' ')}: {P.info[k]} kB (first check)")
        if extra:
            w("Checks: " + "; ".join(extra) + ".")
            w("")

    # ---- walks -------------------------------------------------------------
    if P or B:
        w("## Page-table walks per sequence (kprobe events, one run each)")
        w("")
        w("Counted with kprobe events on the walk entry points of mm/pagewalk.c "
          "(`kprobe_profile` hit counts around the one ioctl), no counters in the kernel. "
          "walks = calls of `__walk_page_range()` (every walk of a VMA range goes through it; "
          "the range is one VMA), with the public entry points beside it. "
          "Per ioctl, the range is done in 2 MiB chunks.")
        w("")
        for kind, r in runs.items():
            if not r.W:
                continue
            probes = []
            for x in r.W:
                for k in x["hits"]:
                    if k not in probes:
                        probes.append(k)
            w(f"**{kind}** kernel ({r.W[0]['size']} MiB = {r.W[0]['size'] // 2} chunks)"
              + (f"; no kprobe on: {', '.join(r.noprobe)}" if r.noprobe else "") + ":")
            w("")
            w("| scenario | sequence | phase | ret | " + " | ".join(probes) + " |")
            w("|---|---|---|---|" + "---|" * len(probes))
            for x in r.W:
                w(f"| {x['scn']} | {x['seq']} | {x['phase']} | {x.get('ret', '')} | "
                  + " | ".join(str(x["hits"].get(k, "")) for k in probes) + " |")
            w("")

    # ---- base vs patched ---------------------------------------------------
    if B or P:
        w("## Base (7.3) versus patched: the same workload, each kernel in its own VM run")
        w("")
        w("Plain `HMM_DMIRROR_MIGRATE_TO_DEV` (`migrate_vma_setup()` per 2 MiB chunk) on "
          "present 4 KiB pages. ms; ratio = patched/base of the medians (separate VM runs, "
          "so the spread of each side is shown).")
        w("")
        w("| MiB | base: whole | patched: whole | patched/base | base: migrate_vma_setup | patched: migrate_vma_setup | patched/base | patched one-walk setup | one-walk / 7.3 migrate_vma_setup |")
        w("|---|---|---|---|---|---|---|---|---|")
        sizes = sorted({t["size"] for r in runs.values() for t in r.T if t["seq"] == "plain"})
        for s in sizes:
            def col(r, f):
                if not r:
                    return []
                return [f(t) for t in r.times("present", s, "plain", "whole").values() if not r.bad(t)]
            bw, pw = col(B, lambda t: t["ms"]), col(P, lambda t: t["ms"])
            bs = [x / 1000 for x in col(B, lambda t: t["us"].get("migrate_vma_setup", 0)) if x]
            ps = [x / 1000 for x in col(P, lambda t: t["us"].get("migrate_vma_setup", 0)) if x]
            one = []
            if P:
                one = [setup_us(t, "one") / 1000 for t in P.times("present", s, "one", "whole").values()
                       if not P.bad(t) and t["us"]]
            rat = lambda a, b: f"{med(a) / med(b):.3f}" if a and b else "-"
            w(f"| {s} | {mmm(bw)} | {mmm(pw)} | {rat(pw, bw)} | {mmm(bs)} | {mmm(ps)} | {rat(ps, bs)} | {mmm(one)} | {rat(one, bs)} |")
        w("")
        if B and P and B.bench and P.bench:
            w(f"hmm-tests `benchmark_thp_migration` (each tree's own hmm-tests; "
              f"{len(B.bench)} base runs, {len(P.bench)} patched runs; each run's figure is "
              "already the mean of 5 iterations). ms, median [min–max] over the runs; ratio = "
              "patched/base time (< 1: patched faster; throughput ratio is its inverse).")
            w("")
            w("| MB | base THP s→d | patched THP s→d | ratio | base THP d→s | patched THP d→s | ratio | base 4K s→d | patched 4K s→d | ratio | base 4K d→s | patched 4K d→s | ratio |")
            w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for s in sorted(hmm_sizes(P) & hmm_sizes(B)):
                cells = [f"{s:g}"]
                for k in ("s2d_thp", "d2s_thp", "s2d_reg", "d2s_reg"):
                    b = [r[s][k] for r in B.bench if s in r and k in r[s]]
                    p = [r[s][k] for r in P.bench if s in r and k in r[s]]
                    cells += [mmm(b, 2), mmm(p, 2), f"{med(p) / med(b):.3f}" if b and p else "-"]
                w("| " + " | ".join(cells) + " |")
            w("")

    w("## Files")
    w("")
    w("- `raw/<kind>/output.txt`: everything the guest printed (hmm-bench lines: "
      "`T scenario MiB sequence phase rep ms ret cpages [function=us/calls...]`, "
      "`W scenario MiB sequence phase ret probe=hits...`, `I` info; then hmm-tests' output).")
    w("- `raw/<kind>/console.log`: the guest kernel log; `raw/<kind>/kernel.config`: its `.config`; "
      "`raw/<kind>/meta`: commits and run data; `raw/<kind>/params`: sizes and repetitions.")
    w("- `time-vs-size.png`: whole migration and setup time versus size, two walks and one, per scenario.")
    w("")
    open(out_md, "w").write("\n".join(L))

    if P:
        plot(P, out_png)


def hmm_sizes(r):
    s = set()
    for x in r.bench:
        s |= set(x)
    return s


def plot(P, out_png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("benchreport: no matplotlib: no plot", file=sys.stderr)
        return
    scns = [s for s in SCN if any(t["scn"] == s for t in P.T)]
    n = len(scns)
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for i, scn in enumerate(scns):
        ax = axes[i // cols][i % cols]
        sizes = sorted({t["size"] for t in P.T if t["scn"] == scn})
        for seq, color in (("two", "tab:red"), ("one", "tab:blue")):
            for phase, style in (("whole", "-"), ("setup", "--")):
                ys, lo, hi, xs = [], [], [], []
                for s in sizes:
                    v = [t["ms"] for t in P.times(scn, s, seq, phase).values() if not P.bad(t)]
                    if v:
                        xs.append(s)
                        ys.append(med(v))
                        lo.append(med(v) - min(v))
                        hi.append(max(v) - med(v))
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style + "o", color=color, ms=3,
                                capsize=2, label=f"{seq} walk{'s' if seq == 'two' else ''}: {phase}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(scn)
        ax.set_xlabel("range (MiB)")
        ax.set_ylabel("ms (median, min–max)")
        ax.grid(True, which="both", alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Fault + migrate to the test_hmm device: two walks vs one (QEMU TCG VM, patched kernel)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
