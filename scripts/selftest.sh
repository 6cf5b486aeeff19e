#!/usr/bin/env bash
# make selftest [TEST=name]: build the VM kernel and hmm-tests from the
# working tree, boot it under QEMU/TCG and run hmm-tests (one test by name,
# in every fixture and variant; or fixture.variant.test; or all), then
# compare with the base expectations and scan the kernel log.
#   selftest.sh [TEST]          results and logs in $WORK/selftest-run
. "$(dirname "$0")/common.sh"

test=${1:-}
"$TOP/scripts/kernel.sh" "$KTREE" "$BUILD/x86" "$BUILD/x86-tests"
args=()
if [ -n "$test" ]; then
	case "$test" in *.*.*) args=(-r "$test") ;; *) args=(-t "$test") ;; esac
fi
run=$WORK/selftest-run
vrc=0
"$TOP/scripts/vm.sh" "$BUILD/x86/arch/x86/boot/bzImage" "$run" "$BUILD/x86-tests/hmm-tests" "${args[@]}" || vrc=$?
# The guest did not finish (1) or timed out (124): show what it reported,
# then fail.  Anything else (usage error, interrupted): stop here.
case $vrc in 0|1|124) ;; *) exit "$vrc" ;; esac
grep -E '^(ok|not ok) |^# +(SKIP|FAIL)|^#.*(Expected|ASSERT)' "$run/tests.tap" || true
crc=0
if [ -n "$test" ]; then
	python3 "$TOP/scripts/hmmtap.py" results "$run" | tail -1 || true
	# Only the selected tests ran: compare what was reported.
	python3 "$TOP/scripts/hmmtap.py" compare "$run" "$TOP/expect/hmm-tests.base" --only-reported || crc=$?
else
	python3 "$TOP/scripts/hmmtap.py" compare "$run" "$TOP/expect/hmm-tests.base" || crc=$?
fi
[ "$vrc" = 0 ] || exit "$vrc"
exit "$crc"
