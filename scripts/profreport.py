#!/usr/bin/env python3
"""make profile's report: /proc/profile counters of base and patched VM runs
mapped to kernel functions.

  profreport.py KIND SYSTEM.MAP OUTPUT.TXT [KIND SYSTEM.MAP OUTPUT.TXT ...]

OUTPUT.TXT is what bench/guest.sh printed in MODE=prof: "T" lines (the
migrations, as make bench's) and "P <step>" / "p <index> <hits>" (the
counters: /proc/profile's first word is the step, the bytes of kernel text
each counter covers).  Per KIND (base, patched) the ticks of every run are summed per
function and given per 1000 migrated 4 KiB pages; the table lists the
functions by how much more (or less) the patched kernel spends there.
"""
import bisect
import collections
import statistics
import sys


def load_map(path):
    syms = []
    stext = None
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            addr, kind, name = int(parts[0], 16), parts[1], parts[2]
            if name == '_stext':
                stext = addr
            if name == '_etext':
                syms.append((addr, '(after _etext)'))
                continue
            if kind in 'tTwW':
                syms.append((addr, name))
    if stext is None:
        sys.exit('profreport: no _stext in %s' % path)
    syms.sort()
    return stext, [a for a, _ in syms], [n for _, n in syms]


def load_run(path):
    step, hits, pages, times = None, collections.Counter(), 0, []
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == 'P':
                step = int(p[1])
            elif p[0] == 'p':
                hits[int(p[1])] += int(p[2])
            elif p[0] == 'T' and len(p) >= 9 and p[3] == 'plain':
                pages += int(p[2]) * 256
                times.append(float(p[6]))
    if step is None:
        sys.exit('profreport: no /proc/profile dump in %s' % path)
    return step, hits, pages, times


def main(argv):
    if len(argv) < 3 or len(argv) % 3:
        sys.exit(__doc__)
    per = collections.defaultdict(collections.Counter)
    pages = collections.Counter()
    times = collections.defaultdict(list)
    runs = collections.Counter()
    perrun = []
    for i in range(0, len(argv), 3):
        kind, smap, out = argv[i:i + 3]
        stext, addrs, names = load_map(smap)
        step, hits, npages, t = load_run(out)
        for idx, n in hits.items():
            pc = stext + idx * step
            j = bisect.bisect_right(addrs, pc) - 1
            per[kind][names[j] if j >= 0 else '?'] += n
        rc = collections.Counter()
        for idx, n in hits.items():
            pc = stext + idx * step
            j = bisect.bisect_right(addrs, pc) - 1
            rc[names[j] if j >= 0 else '?'] += n
        perrun.append((kind, out, rc, npages))
        pages[kind] += npages
        times[kind] += t
        runs[kind] += 1
    kinds = sorted(per)
    if kinds != ['base', 'patched']:
        sys.exit('profreport: need base and patched runs, got %s' % kinds)
    for k in kinds:
        if not pages[k]:
            sys.exit('profreport: no migrations in the %s runs' % k)
    norm = {k: 1000.0 / pages[k] for k in kinds}
    print('make profile: %d base and %d patched VM runs, %d pages each kind'
          % (runs['base'], runs['patched'], pages['base']))
    for k in kinds:
        print('  %-8s migration ms: median %.1f of %s' % (
            k, statistics.median(times[k]),
            ' '.join('%.1f' % x for x in times[k])))
    print('  patched / base, median migration time: %.3f'
          % (statistics.median(times['patched']) / statistics.median(times['base'])))
    tot = {k: sum(per[k].values()) * norm[k] for k in kinds}
    print('  kernel ticks per 1000 pages: base %.1f, patched %.1f (ratio %.3f)'
          % (tot['base'], tot['patched'], tot['patched'] / tot['base']))
    idle = ('default_idle',)
    nid = {k: sum(n for f, n in per[k].items() if f not in idle) * norm[k]
           for k in kinds}
    print('  the same without default_idle: base %.2f, patched %.2f (diff %+.2f)'
          % (nid['base'], nid['patched'], nid['patched'] - nid['base']))
    print()
    funcs = set(per['base']) | set(per['patched'])
    top = sorted(funcs, key=lambda f: -abs(per['patched'][f] * norm['patched']
                                           - per['base'][f] * norm['base']))[:5]
    print('per run (ticks per 1000 pages): without default_idle; %s'
          % ', '.join(top))
    for kind, out, rc, npages in perrun:
        if not npages:
            continue
        n = 1000.0 / npages
        print('  %-8s %-24s %6.2f  %s' % (
            kind, out.split('/')[-3] if out.count('/') >= 2 else out,
            sum(v for f, v in rc.items() if f not in idle) * n,
            '  '.join('%.3f' % (rc[f] * n) for f in top)))
    print()
    print('%-40s %9s %9s %9s' % ('function (ticks per 1000 pages)', 'base',
                                 'patched', 'diff'))
    funcs = set(per['base']) | set(per['patched'])
    rows = [(per['patched'][f] * norm['patched'] - per['base'][f] * norm['base'], f)
            for f in funcs]
    rows.sort(key=lambda r: -abs(r[0]))
    for d, f in rows[:40]:
        print('%-40s %9.2f %9.2f %+9.2f' % (f[:40], per['base'][f] * norm['base'],
                                            per['patched'][f] * norm['patched'], d))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
