#!/usr/bin/env bash
# make debug: hmm-tests on a debug kernel (configs/vm.config plus
# configs/debug.config: KASAN, PROVE_LOCKING, DEBUG_VM) built from the
# working tree.  Fails on any test that passes on the base and on any
# BUG/WARNING/lockdep/KASAN report in the kernel log (no base allowance).
#   debug.sh [TEST]     results and logs in $WORK/debug-run
. "$(dirname "$0")/common.sh"

test=${1:-}
o=$BUILD/debug
start=$(date +%s)
"$TOP/scripts/kernel.sh" "$KTREE" "$o" "$o-tests" "$TOP/configs/debug.config"
args=()
if [ -n "$test" ]; then
	case "$test" in *.*.*) args=(-r "$test") ;; *) args=(-t "$test") ;; esac
fi
run=$WORK/debug-run
vrc=0
VM_TIMEOUT=${VM_TIMEOUT:-3600} "$TOP/scripts/vm.sh" "$o/arch/x86/boot/bzImage" "$run" "$o-tests/hmm-tests" "${args[@]}" || vrc=$?
# The guest did not finish (1) or timed out (124): compare what it
# reported, then fail.  Anything else (usage error, interrupted): stop here.
case $vrc in 0|1|124) ;; *) exit "$vrc" ;; esac
rc=0
python3 "$TOP/scripts/hmmtap.py" compare "$run" "$TOP/expect/hmm-tests.base" \
	${test:+--only-reported} || rc=$?
echo "debug kernel $(grep -m1 -o 'Linux version [^ ]*' "$run/console.log" || true): $(cat "$run/status"); total $(( $(date +%s) - start ))s"
[ "$vrc" = 0 ] || exit "$vrc"
exit $rc
