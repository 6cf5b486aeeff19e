#!/usr/bin/env bash
# Tests of scripts/hmmtap.py compare on a committed fixture (fixtures/hmmtap:
# base expectations in expect/, a patched run in run/ that meets them) and
# variations of it, one rule each.
set -u
d=$(cd "$(dirname "$0")" && pwd); h="python3 $d/../hmmtap.py"; f=$d/fixtures/hmmtap
fail=0
t() {	# t WANT_RC DESCRIPTION CMD...
	local want=$1 what=$2 rc=0; shift 2
	"$@" > "$tmp/out" 2>&1 || rc=$?
	if [ "$rc" = "$want" ]; then echo "ok: $what"
	else echo "FAIL: $what (exit $rc, want $want)"; sed 's/^/    /' "$tmp/out"; fail=1; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# run NAME: a copy of the good run to vary
run() { rm -rf "$tmp/$1"; cp -r "$f/run" "$tmp/$1"; echo "$tmp/$1"; }
exp() { rm -rf "$tmp/e-$1"; cp -r "$f/expect" "$tmp/e-$1"; echo "$tmp/e-$1/hmm-tests.base"; }

t 0 "the fixture run meets the expectations" $h compare "$f/run" "$f/expect/hmm-tests.base"

r=$(run basefail)
sed -i 's/^ok 6 hmm.hmm_device_coherent.migrate_multiple$/not ok 6 hmm.hmm_device_coherent.migrate_multiple/' "$r/tests.tap"
t 1 "a test that fails on the base must pass on the patched kernel" $h compare "$r" "$f/expect/hmm-tests.base"
grep -q "the series fixes it: it must pass" "$tmp/out" || { echo "FAIL: no reason given for the base failure"; fail=1; }
e=$(exp known)
echo "hmm.hmm_device_coherent.migrate_* still fails on the coherent device (fixture)" >> "$(dirname "$e")/hmm-tests.known-fail"
t 0 "... unless hmm-tests.known-fail lists it with a reason" $h compare "$r" "$e"
e=$(exp known-noreason)
echo "hmm.hmm_device_coherent.migrate_multiple" >> "$(dirname "$e")/hmm-tests.known-fail"
t 1 "... a known-fail line without a reason does not count" $h compare "$r" "$e"
t 0 "a base run (--base) may fail as the base does" $h compare "$r" "$f/expect/hmm-tests.base" --base

r=$(run regress)
sed -i 's/^ok 2 hmm.hmm_device_private.migrate$/not ok 2 hmm.hmm_device_private.migrate/' "$r/tests.tap"
t 1 "a test that passes on the base must pass" $h compare "$r" "$f/expect/hmm-tests.base"

r=$(run newfail)
sed -i 's/^ok 5 hmm.hmm_device_private.migrate_race_dev_sys_read$/not ok 5 hmm.hmm_device_private.migrate_race_dev_sys_read/' "$r/tests.tap"
t 1 "a new test that fails" $h compare "$r" "$f/expect/hmm-tests.base"

r=$(run skip)
sed -i 's/^ok 5 hmm.hmm_device_private.migrate_race_dev_sys_read$/ok 5 hmm.hmm_device_private.migrate_race_dev_sys_read # SKIP no THP here/' "$r/tests.tap"
t 1 "a new test skips for a reason hmm-tests.skips does not list" $h compare "$r" "$f/expect/hmm-tests.base"
r=$(run skip2)
sed -i 's/^ok 2 hmm.hmm_device_private.migrate$/ok 2 hmm.hmm_device_private.migrate # SKIP device memory not exhausted by 320 MiB/' "$r/tests.tap"
t 1 "a listed skip reason counts only for the tests it names" $h compare "$r" "$f/expect/hmm-tests.base"
r=$(run skip3)
sed -i 's/^ok 2 hmm.hmm_device_private.migrate$/ok 2 hmm.hmm_device_private.migrate # SKIP/' "$r/tests.tap"
t 1 "a skip without a reason" $h compare "$r" "$f/expect/hmm-tests.base"

r=$(run splat)
cat "$f/oops.log" >> "$r/console.log"
t 1 "an oops the base prints fails a patched run" $h compare "$r" "$f/expect/hmm-tests.base"
t 0 "... but not a base run (--base)" $h compare "$r" "$f/expect/hmm-tests.base" --base
e=$(exp allow)
echo "BUG: kernel NULL pointer dereference, address: ? @ dmirror_migrate_to_device -- fixture" >> "$(dirname "$e")/hmm-tests.splats.allow"
echo "Oops: Oops: 0000 [#N] SMP NOPTI @ dmirror_migrate_to_device -- fixture" >> "$(dirname "$e")/hmm-tests.splats.allow"
t 0 "... or one hmm-tests.splats.allow lists with a reason" $h compare "$r" "$e"

r=$(run lockdep)
cat "$f/lockdep.log" >> "$r/console.log"
e=$(exp lockdep)
echo "WARNING: possible circular locking dependency detected -- fixture" >> "$(dirname "$e")/hmm-tests.splats.allow"
t 1 "a lockdep report fails even when allowed" $h compare "$r" "$e"

r=$(run unfinished)
sed -i '/^hmmwalk-vm: exit=/d; /^ok 6 /d' "$r/tests.tap"
echo "timeout after 900s" > "$r/status"
t 1 "a run that did not finish" $h compare "$r" "$f/expect/hmm-tests.base"

r=$(run missing)
sed -i 's/^1\.\.6$/1..5/; /^ok 2 /d' "$r/tests.tap"
t 1 "a test the base passes that is not reported" $h compare "$r" "$f/expect/hmm-tests.base"
t 0 "... unless --only-reported (one test run alone)" $h compare "$r" "$f/expect/hmm-tests.base" --only-reported

exit $fail
