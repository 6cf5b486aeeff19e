#!/usr/bin/env bash
# make selftest [TEST=name]: build the VM kernel and hmm-tests from the
# working tree, boot it under QEMU/TCG and run hmm-tests (one test by name,
# in every fixture and variant; or fixture.variant.test; or all), then
# compare with the base expectations and scan the kernel log.
#   selftest.sh [TEST]          results and logs in $WORK/selftest-run
. "$(dirname "$0")/common.sh"

test=${1:-}
"$TOP/scripts/kernel.sh" "$KERNEL" "$BUILD/x86" "$BUILD/x86-tests"
args=()
if [ -n "$test" ]; then
	case "$test" in *.*.*) args=(-r "$test") ;; *) args=(-t "$test") ;; esac
fi
run=$WORK/selftest-run
"$TOP/scripts/vm.sh" "$BUILD/x86/arch/x86/boot/bzImage" "$run" "$BUILD/x86-tests/hmm-tests" "${args[@]}"
grep -E '^(ok|not ok) |^# +(SKIP|FAIL)|^#.*(Expected|ASSERT)' "$run/tests.tap" || true
if [ -n "$test" ]; then
	python3 "$TOP/scripts/hmmtap.py" results "$run" | tail -1
	# Only the selected tests ran: compare what was reported.
	python3 "$TOP/scripts/hmmtap.py" compare "$run" "$TOP/expect/hmm-tests.base" --only-reported
else
	python3 "$TOP/scripts/hmmtap.py" compare "$run" "$TOP/expect/hmm-tests.base"
fi
