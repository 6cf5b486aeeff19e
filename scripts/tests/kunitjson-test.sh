#!/usr/bin/env bash
# Tests of scripts/kunitjson.py on committed kunit.py --json output
# (fixtures/kunit-um.json: UML, with kunit-um.out, the [SKIPPED] lines
# kunit.py printed; fixtures/kunit-x86.json: x86_64).
set -u
d=$(cd "$(dirname "$0")" && pwd); k="python3 $d/../kunitjson.py"; f=$d/fixtures
fail=0
t() {	# t WANT_RC DESCRIPTION CMD...
	local want=$1 what=$2 rc=0; shift 2
	"$@" > /dev/null 2>&1 || rc=$?
	if [ "$rc" = "$want" ]; then echo "ok: $what"; else echo "FAIL: $what (exit $rc, want $want)"; fail=1; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
t 0 "UML results meet expect/kunit-um.expect" $k check "$f/kunit-um.json" "$d/../../expect/kunit-um.expect"
t 0 "UML skip reasons meet expect/kunit-um.expect" $k check "$f/kunit-um.json" "$d/../../expect/kunit-um.expect" "$f/kunit-um.out"
sed 's/hmm_migrate_test_cow (needs CONFIG_DEVICE_MIGRATION/hmm_migrate_test_cow (needs CONFIG_NUMA/' "$f/kunit-um.out" > "$tmp/o1"
t 1 "a case that skips for another reason fails" $k check "$f/kunit-um.json" "$d/../../expect/kunit-um.expect" "$tmp/o1"
grep -v hmm_migrate_test_cow "$f/kunit-um.out" > "$tmp/o2"
t 1 "a skip whose reason kunit.py did not print fails" $k check "$f/kunit-um.json" "$d/../../expect/kunit-um.expect" "$tmp/o2"
t 1 "UML results are not all-pass" $k check "$f/kunit-um.json" all-pass
t 0 "x86_64 results are all-pass" $k check "$f/kunit-x86.json" all-pass
sed 's/hmm_migrate_test_invalid PASS/hmm_migrate_test_invalid SKIP/' "$d/../../expect/kunit-um.expect" > "$tmp/e1"
t 1 "a case that passes where it should skip fails" $k check "$f/kunit-um.json" "$tmp/e1"
grep -v hmm_migrate_test_collect "$d/../../expect/kunit-um.expect" > "$tmp/e2"
t 1 "a case missing from the expectations fails" $k check "$f/kunit-um.json" "$tmp/e2"
python3 - "$f/kunit-x86.json" "$tmp/x1.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
def walk(g):
    for c in g.get('test_cases', []):
        if c['name'] == 'half PMD range': c['status'] = 'SKIP'
    for s in g.get('sub_groups', []): walk(s)
walk(j); json.dump(j, open(sys.argv[2], 'w'))
PY
t 1 "a parameter that skips makes its case not all-pass" $k check "$tmp/x1.json" all-pass
t 0 "x86_64 results report every case expect/kunit-um.expect names" $k covers "$f/kunit-x86.json" "$d/../../expect/kunit-um.expect"
python3 - "$f/kunit-x86.json" "$tmp/x2.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
def walk(g):
    g['test_cases'] = [c for c in g.get('test_cases', []) if c['name'] != 'hmm_migrate_test_cow']
    for s in g.get('sub_groups', []): walk(s)
walk(j); json.dump(j, open(sys.argv[2], 'w'))
PY
t 1 "a case the kernel did not run fails covers" $k covers "$tmp/x2.json" "$d/../../expect/kunit-um.expect"
t 2 "usage error" $k nonsense
exit $fail
