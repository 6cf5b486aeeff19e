#!/usr/bin/env bash
# make expect: regenerate the committed base-kernel expectations of the
# selftest steps from a run on the base kernel: build the 7.3 base (VM
# configuration, in a worktree of its own) and its hmm-tests, run them in
# the VM exactly as "make check" does, and write
#   expect/hmm-tests.base         per-test results (pass/fail/skip + reason)
#   expect/hmm-tests.base.splats  kernel log reports the base prints
#   expect/hmm-tests.base.tap     the raw hmm-tests output
. "$(dirname "$0")/common.sh"

base=$(base_rev)
wt=$WORK/base-wt
o=$BUILD/base-x86
fresh_worktree "$wt" "$base"
"$TOP/scripts/kernel.sh" "$wt" "$o" "$o-tests"
run=$WORK/expect-run
vrc=0
"$TOP/scripts/vm.sh" "$o/arch/x86/boot/bzImage" "$run" "$o-tests/hmm-tests" || vrc=$?
[ "$vrc" = 0 ] || die "the VM run did not finish (scripts/vm.sh exit $vrc: $(cat "$run/status" 2>/dev/null)): expect/ not written"
mkdir -p "$TOP/expect"
python3 "$TOP/scripts/hmmtap.py" expect "$run" "$TOP/expect/hmm-tests.base"
cp "$run/tests.tap" "$TOP/expect/hmm-tests.base.tap"
python3 "$TOP/scripts/hmmtap.py" results "$run" | tail -1
msg "kernel log of the run: $run/console.log; commit expect/ if the change is intended"
