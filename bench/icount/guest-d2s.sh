#!/bin/sh
# Where hmm-tests' benchmark_thp_migration spends its device-to-system
# time: the function profiler (inclusive time, per function) over one run
# of the benchmark, in a VM_ACCEL=icount VM.
#   VM_ACCEL=icount scripts/vm.sh --script <bench bzImage> <out> \
#       bench/icount/guest-d2s.sh <that kernel's hmm-tests>
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T
for f in dmirror_migrate_to_system dmirror_migrate_to_device \
	migrate_vma_setup migrate_vma_pages migrate_vma_finalize \
	hmm_range_fault walk_page_range walk_page_range_vma \
	dmirror_interval_invalidate dmirror_do_update \
	dmirror_devmem_fault_alloc_and_copy dmirror_migrate_alloc_and_copy \
	dmirror_successful_migrated_pages dmirror_migrate_finalize_and_map \
	migrate_device_unmap migrate_vma_unmap migrate_device_finalize \
	remove_migration_ptes try_to_migrate folio_split split_huge_pmd_locked \
	__split_huge_pmd __folio_split migrate_vma_collect_huge_pmd \
	hmm_vma_walk_pmd migrate_vma_collect_pmd folio_get_anon_vma \
	__mmu_notifier_invalidate_range_start; do
	echo $f >> $T/set_ftrace_filter 2>/dev/null || echo "I no-trace $f"
done
echo "I filter $(cat $T/set_ftrace_filter | tr '\n' ' ')"
./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration > /dev/null 2>&1
echo 1 > $T/function_profile_enabled
./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration
echo 0 > $T/function_profile_enabled
echo "=== profile"
cat $T/trace_stat/function0
