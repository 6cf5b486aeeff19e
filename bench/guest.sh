#!/bin/sh
# make bench, inside the VM (run by scripts/benchvm.sh from /t): the
# workload of one kernel.  ./params (written by scripts/bench.sh) sets KIND
# (base or patched), SIZES/REPS (the sequences), CAPS (the largest size of
# some scenarios: scenario=MiB,...), PLAIN_SIZES/PLAIN_REPS
# (plain migrate_vma_setup() migration), WALK_SIZE and HMM_RUNS.
. ./params
phase() { echo "I phase $1 $(cut -d' ' -f1 /proc/uptime)"; }

./hmm-bench info
phase start
if [ "$KIND" = patched ]; then
	# Page-table walks per sequence, one size, every scenario (kprobes).
	./hmm-bench walks -s "$WALK_SIZE"
	phase walks
	# Two walks versus one, every scenario and size, interleaved;
	# -g: the whole-migration runs also time the setup functions.
	./hmm-bench seq -s "$SIZES" -r "$REPS" -m "$CAPS" -g
	phase seq
else
	./hmm-bench walks -s "$WALK_SIZE" -p
	phase walks
fi
# Base versus patched: plain HMM_DMIRROR_MIGRATE_TO_DEV on present pages.
./hmm-bench plain -s "$PLAIN_SIZES" -r "$PLAIN_REPS" -g
phase plain
# hmm-tests' own benchmark, from this kernel's tree.
i=1
while [ "$i" -le "$HMM_RUNS" ]; do
	echo "B run $i"
	./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration
	echo "B end $i rc=$?"
	i=$((i + 1))
done
phase hmm-tests
