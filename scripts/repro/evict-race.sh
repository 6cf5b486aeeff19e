#!/bin/sh
# Guest side: hmm-tests' migrate_evict_exit_race (fixes patch 24) on a debug
# kernel, then the number of KASAN reports in the kernel log.  It evicts the
# device's memory while a child whose memory is on the device exits; without
# fixes patch 23 the eviction walks the child's freed anon_vma.
#   scripts/vm.sh --script <debug bzImage> <outdir> scripts/repro/evict-race.sh \
#       <hmm-tests with the test>
./hmm-tests -t migrate_evict_exit_race
echo "rc=$?"
dmesg | grep -c "BUG: KASAN"
