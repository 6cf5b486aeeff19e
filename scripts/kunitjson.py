#!/usr/bin/env python3
"""KUnit results as kunit.py --json writes them, for the checks.

  kunitjson.py show FILE           one line per case: SUITE.CASE[.PARAM] STATUS
  kunitjson.py check FILE EXPECT [OUTPUT]
                                   compare with EXPECT, lines "SUITE.CASE
                                   STATUS [REASON]" (PASS or SKIP; '#' starts
                                   a comment); fails when a case is not
                                   reported, fails, crashes, or has another
                                   status than expected, or a case runs that
                                   EXPECT does not list; with OUTPUT (what
                                   kunit.py printed), a SKIP line's REASON
                                   must be in the reason the case gave
                                   ("[SKIPPED] CASE (reason)")
  kunitjson.py check FILE all-pass every case must pass: none may skip
  kunitjson.py covers FILE EXPECT  every case EXPECT names is reported in FILE
                                   (whatever its result): a kernel of another
                                   configuration ran the same cases

A parameterised case passes when all of its parameters pass, and skips when
all of them skip.
"""
import json
import re
import sys


def cases(group, prefix=''):
    """Yield (name, status) for every case below a kunit.py JSON group."""
    for sub in group.get('sub_groups', []):
        name = prefix + sub['name']
        if sub.get('test_cases') and not sub.get('sub_groups') and prefix:
            # a parameterised case: its parameters are the test cases
            st = [c['status'] for c in sub['test_cases']]
            if all(s == 'PASS' for s in st):
                yield name, 'PASS'
            elif all(s == 'SKIP' for s in st):
                yield name, 'SKIP'
            else:
                yield name, 'FAIL'
            continue
        yield from cases(sub, name + '.')
    for c in group.get('test_cases', []):
        yield prefix + c['name'], c['status']


def load(path):
    with open(path) as f:
        return dict(cases(json.load(f)))


def expectations(path):
    exp = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].split()
            if not line:
                continue
            if (len(line) < 2 or line[1] not in ('PASS', 'SKIP') or
                    (line[1] == 'PASS' and len(line) > 2)):
                sys.exit(f'{path}:{n}: expected "SUITE.CASE PASS|SKIP [REASON]"')
            exp[line[0]] = (line[1], ' '.join(line[2:]))
    return exp


def skip_reasons(path):
    """{case name: reason} from kunit.py's output, '[SKIPPED] CASE (reason)'."""
    reasons = {}
    with open(path, errors='replace') as f:
        for line in f:
            m = re.search(r'\[SKIPPED\] (\S+) \((.*)\)\s*$', line)
            if m:
                reasons[m.group(1)] = m.group(2)
    return reasons


def check(got, exp, reasons=None):
    """The problems, one line each; empty when got meets exp (and the skip
    reasons, when given, name what exp asks for)."""
    bad = []
    if exp is None:
        for name, st in sorted(got.items()):
            if st != 'PASS':
                bad.append(f'{name}: {st}, every case must pass here')
        return bad
    for name, (want, why) in sorted(exp.items()):
        st = got.get(name)
        if st is None:
            bad.append(f'{name}: not reported (expected {want})')
        elif st != want:
            bad.append(f'{name}: {st}, expected {want}')
        elif why and reasons is not None:
            gave = reasons.get(name.rsplit('.', 1)[-1])
            if gave is None or why not in gave:
                bad.append(f'{name}: skips saying "{gave}", expected "{why}"')
    for name in sorted(set(got) - set(exp)):
        bad.append(f'{name}: {got[name]}, not in the expectations')
    return bad


def main(argv):
    if len(argv) == 3 and argv[1] == 'show':
        for name, st in sorted(load(argv[2]).items()):
            print(name, st)
        return 0
    if len(argv) == 4 and argv[1] == 'covers':
        got = load(argv[2])
        missing = sorted(set(expectations(argv[3])) - set(got))
        for name in missing:
            print(f'  {name}: not reported (named in {argv[3]})')
        print(f'kunit: {len(got)} cases reported, '
              f'{len(missing)} of those {argv[3]} names missing')
        return 1 if missing else 0
    if len(argv) in (4, 5) and argv[1] == 'check':
        got = load(argv[2])
        if not got:
            print(f'{argv[2]}: no KUnit case reported')
            return 1
        exp = None if argv[3] == 'all-pass' else expectations(argv[3])
        bad = check(got, exp, skip_reasons(argv[4]) if len(argv) == 5 else None)
        for b in bad:
            print('  ' + b)
        n = {s: sum(1 for v in got.values() if v == s) for s in set(got.values())}
        print('kunit: ' + ', '.join(f'{v} {k.lower()}' for k, v in sorted(n.items())) +
              (' (as expected)' if not bad else f'; {len(bad)} unexpected'))
        return 1 if bad else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
