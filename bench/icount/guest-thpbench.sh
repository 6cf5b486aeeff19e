#!/bin/sh
# hmm-tests' benchmark_thp_migration twice, in a VM_ACCEL=icount VM, no
# tracing: the throughputs of make bench's hmm-tests line, for one kernel.
#   VM_ACCEL=icount scripts/vm.sh --script <bench bzImage> <out> \
#       bench/icount/guest-thpbench.sh <that kernel's hmm-tests>
for i in 1 2; do
	echo "B run $i"
	./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration
	echo "B end $i rc=$?"
done
