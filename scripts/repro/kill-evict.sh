#!/bin/sh
# Reproducer (guest side) of the KASAN slab-use-after-free in
# rmap_walk_anon() seen by make debug: kill hmm-tests' benchmark_thp_migration
# in the middle, then open and close the private device again, which evicts
# its chunks.  Run on a debug kernel (configs/debug.config):
#   scripts/vm.sh --script <debug bzImage> <outdir> scripts/repro/kill-evict.sh \
#       <that kernel's hmm-tests>
# then look for "BUG: KASAN" in <outdir>/console.log.  The last line of
# output.txt before the exit line is the number of KASAN reports.
./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration > bench.out 2>&1 &
h=$!
sleep 40
# The harness forks the test: kill the newest hmm-tests process, the test.
c=$(pgrep -n hmm-tests)
echo "killing $c (harness $h)"
kill -9 "$c"
wait "$h"
echo "harness rc=$?"
tail -3 bench.out
./hmm-tests -r hmm.hmm_device_private.open_close
echo "second rc=$?"
dmesg | grep -c "BUG: KASAN"
