#!/usr/bin/env python3
"""Compiler and sparse diagnostics of a build log, normalised so that logs
of different revisions compare: the path is made relative to the kernel
tree and line/column numbers are dropped.

  warnings.py keys LOG [LOG...]          print "file: kind: message" keys
  warnings.py new BASEKEYS LOG [LOG...]  print diagnostics of LOG whose key
                                         BASEKEYS does not have
"""
import re
import sys

DIAG_RE = re.compile(r'^(?P<path>[^\s:][^:]*?):(?P<line>\d+)(?::(?P<col>\d+))?:\s*'
                     r'(?P<kind>warning|error|note|sparse: warning|sparse: error)?:?\s*(?P<msg>.*)$')
KNOWN_TOP = ('arch', 'block', 'certs', 'crypto', 'drivers', 'fs', 'include', 'init',
             'io_uring', 'ipc', 'kernel', 'lib', 'mm', 'net', 'rust', 'samples',
             'scripts', 'security', 'sound', 'tools', 'usr', 'virt')


def relpath(p):
    parts = p.split('/')
    for i, part in enumerate(parts):
        if part in KNOWN_TOP and i < len(parts) - 1:
            return '/'.join(parts[i:])
    return parts[-1]


def diags(paths):
    for path in paths:
        with open(path, errors='replace') as f:
            for line in f:
                line = line.rstrip('\n')
                if 'warning:' not in line and 'error:' not in line:
                    continue
                m = DIAG_RE.match(line)
                if not m:
                    # "make ... warning" lines and the like
                    if re.search(r'\bwarning:|\berror:', line):
                        yield re.sub(r'\d+', 'N', line), line
                    continue
                kind = m.group('kind') or ('warning' if 'warning' in line else 'error')
                msg = re.sub(r"\s+", ' ', m.group('msg')).strip()
                yield f"{relpath(m.group('path'))}: {kind}: {msg}", line


def main(argv):
    if len(argv) >= 2 and argv[0] == 'keys':
        for k, _ in diags(argv[1:]):
            print(k)
        return 0
    if len(argv) >= 3 and argv[0] == 'new':
        with open(argv[1], errors='replace') as f:
            base = set(l.rstrip('\n') for l in f)
        seen = set()
        bad = 0
        for k, line in diags(argv[2:]):
            if k not in base and k not in seen:
                print(line)
                bad += 1
            seen.add(k)
        return 1 if bad else 0
    sys.exit(__doc__)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
