#!/bin/sh
# Guest side: why hmm_device_private.migrate_like_amdkfd_mm_race failed once
# in make debug.  The test's last call migrates the range after its races
# stopped; what amdkfd's sequence does not migrate stays mapped from system
# memory, and the read-back after the ioctl dropped the mmap lock finds no
# mirror entry (-ENOENT) when khugepaged collapsed the range in between.
# Runs the test 10 times with the default khugepaged, 10 times with
# khugepaged scanning without pause, and 10 times with THP "never".
#   scripts/vm.sh --script <bzImage> <outdir> scripts/repro/amdkfd-khugepaged.sh \
#       <hmm-tests>
# Output in scripts/repro/amdkfd-khugepaged.out.
kh=/sys/kernel/mm/transparent_hugepage/khugepaged
cat /sys/kernel/mm/transparent_hugepage/enabled
run() {
	fails=0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		./hmm-tests -t migrate_like_amdkfd_mm_race > /tmp/o 2>&1 ||
			{ fails=$((fails+1)); grep -E "Expected|rounds" /tmp/o | head -3; }
	done
	echo "$1: fails=$fails/10 pages_collapsed=$(cat $kh/pages_collapsed)"
}
run default
echo 0 > $kh/scan_sleep_millisecs
echo 0 > $kh/alloc_sleep_millisecs
echo 65536 > $kh/pages_to_scan
run aggressive
echo never > /sys/kernel/mm/transparent_hugepage/enabled
run thp-never
