#!/bin/sh
# #16's drivers' sequences in one icount VM: the one walk against test_hmm's
# ioctls that make xe's, amdkfd's and nouveau's calls in their order (plus
# xe's with MIGRATE_VMA_FAULT, "xe-one-walk"), whole migrations of 64 MiB,
# 3 repetitions with the order rotating; then the walk, fault and
# invalidation counts per scenario (kprobe events).
./hmm-bench info
./hmm-bench drivers -s 64 -r 3 -c present,untouched,zeropage,thp
./hmm-bench drivers -s 16 -r 3 -c cow,swap
./hmm-bench walks -s 16
