#!/usr/bin/env python3
"""Parse hmm-tests (kselftest harness, TAP) output and the kernel log of a
VM run; write the base expectations or compare a run with them.

  hmmtap.py results RUNDIR                 print the parsed results
  hmmtap.py expect RUNDIR EXPECT_PREFIX    write EXPECT_PREFIX{,.splats}
  hmmtap.py compare RUNDIR EXPECT_PREFIX [--only-reported] [--base]

RUNDIR holds tests.tap and console.log as scripts/vm.sh writes them.
Results file lines: "<pass|fail|skip|xfail|missing> <test> [# reason]".

compare judges a run of a patched kernel against the base's results in
EXPECT_PREFIX (expect/hmm-tests.base) and three lists next to it, named
after it without ".base" ('#' starts a comment):
  STEM.known-fail    "<test glob> <reason>": tests that fail on the base
                     and may still fail (any other base failure must now
                     pass: the series fixes it);
  STEM.skips         "<test glob> <skip reason as printed> -- <why>": the
                     only skips accepted of a test the base does not skip;
  STEM.splats.allow  "<report signature> -- <why>": kernel log reports
                     accepted (none by default: what the base prints,
                     EXPECT_PREFIX.splats, are the bugs the series fixes,
                     and fail a patched run).
--base: the run is of the base kernel itself (no series): its failures and
the reports in EXPECT_PREFIX.splats are what the base does.
"""
import fnmatch
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
    return exp


def load_list(path, sep=None):
    """Lines of a list file, comments and blank lines dropped.  With sep,
    each line is split once at it ("what -- why"), else at the first
    whitespace ("glob reason")."""
    out = []
    for l in read(path):
        l = l.strip()
        if not l or l.startswith('#'):
            continue
        if sep is not None:
            what, _, why = l.partition(sep)
            out.append((what.strip(), why.strip()))
        else:
            parts = l.split(None, 1)
            out.append((parts[0], parts[1] if len(parts) > 1 else ''))
    return out


def listed(name, entries):
    return any(fnmatch.fnmatchcase(name, g) for g, _ in entries)


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
        f.write('# hmm-tests run, written by "make expect": the bugs the series fixes.\n')
        f.write('# A patched run that prints any of them, or any other report, fails\n')
        f.write('# (hmm-tests.splats.allow lists the exceptions, with a reason).\n')
        for s in sigs:
            f.write(s + '\n')
    print(f'wrote {prefix} ({len(res)} tests) and {prefix}.splats ({len(sigs)} reports)')


def cmd_compare(rundir, prefix, only_reported=False, base_run=False):
    plan, res, rc = results(rundir)
    exp = load_expect(prefix)
    stem = prefix[:-len('.base')] if prefix.endswith('.base') else prefix
    known_fail = [(g, why) for g, why in load_list(stem + '.known-fail') if why]
    skips = []
    for what, why in load_list(stem + '.skips', ' -- '):
        parts = what.split(None, 1)
        if len(parts) == 2 and why:
            skips.append((parts[0], parts[1]))
    allowed = dict(load_list(stem + '.splats.allow', ' -- '))
    if base_run:
        for sig in read(prefix + '.splats'):
            if sig and not sig.startswith('#'):
                allowed.setdefault(sig, 'the base prints it')
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
        if r == 'skip' and (base is None or base[0] != 'skip'):
            # A skip the base does not have: only for a listed reason.
            if any(fnmatch.fnmatchcase(n, g) and why == reason for g, reason in skips):
                notes.append(f'{n}: skips ({why}), as expect/ allows')
            else:
                problems.append(f'{n}: skips ({why}), a reason {os.path.basename(stem)}.skips does not list')
            continue
        if base is None:
            # A test the base suite does not have: it must pass (or skip
            # for a listed reason).
            if r in ('fail', 'xpass', 'xfail'):
                problems.append(f'{n}: new test {r}s')
            continue
        if base[0] == 'pass' and r != 'pass':
            problems.append(f'{n}: {r}' + (f' ({why})' if why else '') + ', passes on the base')
        elif base[0] != 'pass' and r == 'pass':
            notes.append(f'{n}: passes (base: {base[0]})')
        elif base[0] == 'fail' and r != 'pass':
            if base_run:
                notes.append(f'{n}: {r}s, as on the base')
            elif listed(n, known_fail):
                notes.append(f'{n}: {r}s, as on the base (listed in {os.path.basename(stem)}.known-fail)')
            else:
                problems.append(f'{n}: {r}s as on the base, but the series fixes it: it must pass')
    for n, (r, _) in exp.items():
        if n not in res and r == 'pass' and not only_reported:
            problems.append(f'{n}: not reported (passes on the base)')
    seen = set()
    for sig, line in splats(read(os.path.join(rundir, 'console.log'))):
        if sig in seen:
            continue
        seen.add(sig)
        if sig in allowed and allowed[sig] and not NEVER_OK_RE.search(sig):
            notes.append(f'kernel log: {line} (allowed: {allowed[sig]})')
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
        return cmd_compare(argv[1], argv[2], '--only-reported' in argv,
                           '--base' in argv)
    sys.exit(__doc__)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]) or 0)
