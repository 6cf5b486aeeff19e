#!/bin/sh
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T
./hmm-bench plain -s 2 -r 2 -c thp,present >/dev/null
echo function_graph > $T/current_tracer
for f in migrate_vma_setup dmirror_interval_invalidate walk_page_range walk_page_range_vma hmm_vma_walk_pmd migrate_vma_collect_pmd migrate_device_unmap migrate_vma_collect_start hmm_range_fault; do echo $f >> $T/set_ftrace_filter; done
echo 0 > $T/max_graph_depth
echo 1 > $T/options/funcgraph-tail
for c in thp present; do
echo > $T/trace
echo 1 > $T/tracing_on
./hmm-bench plain -s 8 -r 1 -c $c
echo 0 > $T/tracing_on
echo "=== $c"
cat $T/trace
done
