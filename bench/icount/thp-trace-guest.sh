#!/bin/sh
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T
./hmm-bench plain -s 2 -r 2 -c thp,present >/dev/null
echo function_graph > $T/current_tracer
echo migrate_vma_setup > $T/set_graph_function
echo 8 > $T/max_graph_depth
echo 1 > $T/options/funcgraph-tail
echo 1 > $T/tracing_on
./hmm-bench plain -s 2 -r 1 -c thp
echo 0 > $T/tracing_on
echo "=== thp"
cat $T/trace
echo > $T/trace
echo 1 > $T/tracing_on
./hmm-bench plain -s 2 -r 1 -c present
echo 0 > $T/tracing_on
echo "=== present"
cat $T/trace
