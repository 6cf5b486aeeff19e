#!/bin/sh
# Guest side, after fixes patch 26: the two tests that failed with -ENOENT,
# with khugepaged scanning without pause, on a kernel with the fix and an
# hmm-tests from before any test-side change (the old binary), so that only
# test_hmm changed.
#   scripts/vm.sh --script <bzImage> <outdir> scripts/repro/amdkfd-khugepaged-fixed.sh <hmm-tests>
# (the coherent device needs VM_APPEND with the memmap= and spm_addr options
# of make check).
kh=/sys/kernel/mm/transparent_hugepage/khugepaged
echo 0 > $kh/scan_sleep_millisecs; echo 0 > $kh/alloc_sleep_millisecs; echo 65536 > $kh/pages_to_scan
fails=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	./hmm-tests -t migrate_like_amdkfd_mm_race > /tmp/o 2>&1 || { fails=$((fails+1)); grep -E "Expected" /tmp/o | head -2; }
done
echo "amdkfd_mm_race, khugepaged unpaused: fails=$fails/10 pages_collapsed=$(cat $kh/pages_collapsed)"
fails=0
for i in 1 2 3 4 5; do
	./hmm-tests -r hmm.hmm_device_coherent.benchmark_thp_migration > /tmp/o 2>&1 || { fails=$((fails+1)); grep -E "Expected" /tmp/o | head -2; }
done
echo "coherent benchmark_thp_migration, khugepaged unpaused: fails=$fails/5 pages_collapsed=$(cat $kh/pages_collapsed)"
