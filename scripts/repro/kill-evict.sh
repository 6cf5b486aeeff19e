#!/bin/sh
# Reproducer (guest side) of the KASAN slab-use-after-free in
# rmap_walk_anon() seen by make debug.  On a debug kernel
# (configs/debug.config) under TCG, hmm-tests' benchmark_thp_migration on the
# private device runs past its 120 s limit, and the kselftest harness kills
# it mid-benchmark.  Opening and closing the private device again then
# evicts its chunks, and remove_migration_ptes() walks an anon_vma that the
# killed process, still exiting, freed.  Seen on 7.3 and on the series
# before fixes patch 23, which fixes it; since patch 25 the benchmark has
# 300 s, so this needs an older hmm-tests to be killed (evict-race.sh runs
# the test that hits the race directly).
#   scripts/vm.sh --script <debug bzImage> <outdir> scripts/repro/kill-evict.sh \
#       <that kernel's hmm-tests>
# The last line of output.txt before the exit line is the number of KASAN
# reports in the kernel log (<outdir>/console.log).
./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration > bench.out 2>&1
echo "benchmark rc=$?"
grep -E "terminated|ok 1" bench.out
./hmm-tests -r hmm.hmm_device_private.open_close
echo "open_close rc=$?"
dmesg | grep -c "BUG: KASAN"
