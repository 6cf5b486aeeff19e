#!/usr/bin/env python3
"""Parse hmm-tests (kselftest harness, TAP) output and the kernel log of a
VM run; write the base expectations or compare a run with them.

  hmmtap.py results RUNDIR                 print the parsed results
  hmmtap.py expect RUNDIR EXPECT_PREFIX    write EXPECT_PREFIX{,.splats}
  hmmtap.py compare RUNDIR EXPECT_PREFIX [--no-base-splats] [--only-reported]

RUNDIR holds tests.tap and console.log as scripts/vm.sh writes them.
Results file lines: "<pass|fail|skip|xfail|missing> <test> [# reason]".
"""
import os
import re
import sys

TAP_RE = re.compile(r'^(not ok|ok) (\d+) (\S+)(?:\s+#\s*(\w+)\s*(.*))?$')
PLAN_RE = re.compile(r'^1\.\.(\d+)$')

# Kernel log lines that report a problem.  Lockdep and KASAN reports are
# never accepted, whatever the base kernel printed.
SPLAT_RE = re.compile(
    r'(BUG:|WARNING:|Oops|general protection fault|kernel BUG at|'
    r'Kernel panic|Unable to handle kernel|UBSAN:|KASAN|'
    r'possible circular locking|possible recursive locking|'
    r'inconsistent lock state|suspicious RCU usage|'
    r'bad unlock balance|DEBUG_LOCKS_WARN_ON|lock held when returning|'
    r'blocked for more than|soft lockup|hard LOCKUP|rcu_sched self-detected|'
    r'rcu: INFO:|page dumped because|Bad page state|list_del corruption|'
    r'refcount_t:)')
NEVER_OK_RE = re.compile(r'(KASAN|possible circular locking|possible recursive locking|'
                         r'inconsistent lock state|suspicious RCU usage|bad unlock balance|'
                         r'DEBUG_LOCKS_WARN_ON|lock held when returning|lockdep)')
TS_RE = re.compile(r'^\[\s*\d+\.\d+\]\s*')
RIP_RE = re.compile(r'RIP: \d+:(\S+?)\+0x')


def read(path):
    try:
        with open(path, errors='replace') as f:
            return [l.rstrip('\r\n') for l in f]
    except FileNotFoundError:
        return []


def parse_tap(lines):
    """Return (plan, {name: (result, reason)} in order, exit code or None)."""
    plan, res, rc = None, {}, None
    for l in lines:
        m = PLAN_RE.match(l)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = TAP_RE.match(l)
        if m:
            ok, _, name, directive, reason = m.groups()
            d = (directive or '').upper()
            if d == 'SKIP':
                r = 'skip'
            elif d == 'XFAIL':
                r = 'xfail'
            elif ok == 'ok':
                r = 'pass'
            else:
                r = 'fail'
            res[name] = (r, (reason or '').strip())
            continue
        if l.startswith('hmmwalk-vm: exit='):
            rc = int(l.split('=', 1)[1] or -1)
    return plan, res, rc


def normalise(line):
    l = TS_RE.sub('', line)
    l = re.sub(r'CPU: \d+ (UID: \d+ )?PID: \d+', 'CPU: N PID: N', l)
    l = re.sub(r'CPU#\d+: (\S+)/\d+', r'CPU#N: \1', l)
    l = re.sub(r'\[#\d+\]', '[#N]', l)
    l = re.sub(r'0x[0-9a-fA-F]+', '0x?', l)
    l = re.sub(r'\b[0-9a-f]{8,16}\b', '?', l)
    l = re.sub(r'(\.[ch]):\d+', r'\1', l)
    l = re.sub(r'\+0x\?/0x\?', '', l)
    l = re.sub(r'\s+', ' ', l).strip()
    return l


def splats(lines):
    """Signatures of the problem reports in a kernel log: the normalised
    headline plus the function the report's RIP line names."""
    out = []
    for i, line in enumerate(lines):
        body = TS_RE.sub('', line)
        if not SPLAT_RE.search(body) or body.startswith('hmmwalk-vm:'):
            continue
        if body.startswith('Modules linked in') or body.startswith('---[ end trace'):
            continue
        rip = ''
        for nxt in lines[i + 1:i + 40]:
            m = RIP_RE.search(nxt)
            if m:
                rip = m.group(1)
                break
        sig = normalise(line)
        # compiler clones (foo.constprop.0, foo.isra.0, foo.part.0, foo.cold)
        rip = re.sub(r'(\.(constprop|isra|part|cold|llvm)(\.\d+)?)+$', '', rip)
        if rip:
            sig += ' @ ' + rip
        out.append((sig, TS_RE.sub('', line)))
    return out


def load_expect(prefix):
    exp = {}
    for l in read(prefix):
        if not l or l.startswith('#'):
            continue
        parts = l.split(' ', 2)
        exp[parts[1]] = (parts[0], parts[2][2:] if len(parts) > 2 else '')
    allowed = set(l for l in read(prefix + '.splats') if l and not l.startswith('#'))
    return exp, allowed


def results(rundir):
    plan, res, rc = parse_tap(read(os.path.join(rundir, 'tests.tap')))
    return plan, res, rc


def fmt(name, r):
    return f'{r[0]} {name}' + (f' # {r[1]}' if r[1] else '')


def cmd_results(rundir):
    plan, res, rc = results(rundir)
    for n, r in res.items():
        print(fmt(n, r))
    counts = {}
    for r, _ in res.values():
        counts[r] = counts.get(r, 0) + 1
    print(f'# plan {plan}, reported {len(res)}, exit {rc}: ' +
          ', '.join(f'{k} {v}' for k, v in sorted(counts.items())))


def cmd_expect(rundir, prefix):
    plan, res, rc = results(rundir)
    if not res:
        sys.exit(f'no hmm-tests results in {rundir}/tests.tap')
    kver = ''
    for l in read(os.path.join(rundir, 'console.log')):
        m = re.search(r'Linux version (\S+)', l)
        if m:
            kver = m.group(1)
            break
    cmdline = ' '.join(read(os.path.join(rundir, 'cmdline'))).strip()
    with open(prefix, 'w') as f:
        f.write('# hmm-tests results on the base kernel, written by "make expect".\n')
        f.write(f'# kernel {kver}; {len(res)} of {plan} tests reported; exit {rc}\n')
        f.write(f'# command line: {cmdline}\n')
        for n, r in res.items():
            f.write(fmt(n, r) + '\n')
    sigs = sorted(set(s for s, _ in splats(read(os.path.join(rundir, 'console.log')))))
    with open(prefix + '.splats', 'w') as f:
        f.write('# Kernel log reports (normalised) the base kernel prints in the same\n')
        f.write('# hmm-tests run, written by "make expect".  A patched run may repeat\n')
        f.write('# these; any other BUG/WARNING/oops, lockdep or KASAN report fails.\n')
        for s in sigs:
            f.write(s + '\n')
    print(f'wrote {prefix} ({len(res)} tests) and {prefix}.splats ({len(sigs)} reports)')


def cmd_compare(rundir, prefix, base_splats=True, only_reported=False):
    plan, res, rc = results(rundir)
    exp, allowed = load_expect(prefix)
    if not base_splats:
        allowed = set()
    problems, notes = [], []
    status = ' '.join(read(os.path.join(rundir, 'status')))
    if not res:
        problems.append(f'no hmm-tests results ({status or "no status"})')
    if rc is None:
        problems.append(f'hmm-tests did not finish: {status}')
    if plan is not None and len(res) < plan:
        problems.append(f'only {len(res)} of {plan} planned tests reported')
    for n, (r, why) in res.items():
        base = exp.get(n)
        if r == 'skip' and not why:
            problems.append(f'{n}: skipped without a reason')
        if base is None:
            # A test the base suite does not have: it must pass (or skip
            # with a reason).
            if r in ('fail', 'xpass'):
                problems.append(f'{n}: new test fails')
            continue
        if base[0] == 'pass' and r != 'pass':
            problems.append(f'{n}: {r}' + (f' ({why})' if why else '') + ', passes on the base')
        elif base[0] != 'pass' and r == 'fail':
            notes.append(f'{n}: fails, as on the base ({base[0]})')
        elif base[0] != 'pass' and r == 'pass':
            notes.append(f'{n}: passes (base: {base[0]})')
    for n, (r, _) in exp.items():
        if n not in res and r == 'pass' and not only_reported:
            problems.append(f'{n}: not reported (passes on the base)')
    seen = set()
    for sig, line in splats(read(os.path.join(rundir, 'console.log'))):
        if sig in seen:
            continue
        seen.add(sig)
        if sig in allowed and not NEVER_OK_RE.search(sig):
            notes.append(f'kernel log: {line} (the base prints it too)')
        else:
            problems.append(f'kernel log: {line}')
    counts = {}
    for r, _ in res.values():
        counts[r] = counts.get(r, 0) + 1
    summary = ', '.join(f'{k} {v}' for k, v in sorted(counts.items()))
    print(f'hmm-tests: {len(res)} reported ({summary}); {status}')
    for n in notes:
        print('  note: ' + n)
    for p in problems:
        print('  FAIL: ' + p)
    return 1 if problems else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == 'results':
        return cmd_results(argv[1])
    if len(argv) >= 3 and argv[0] == 'expect':
        return cmd_expect(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == 'compare':
        return cmd_compare(argv[1], argv[2], '--no-base-splats' not in argv,
                           '--only-reported' in argv)
    sys.exit(__doc__)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]) or 0)
