#!/bin/sh
# make bench, inside the VM (run by scripts/vm.sh --script from /t): one VM
# run's workload.  ./params (written by scripts/bench.sh) sets KIND (base or
# patched), MODE, and the sizes and repetitions:
#   MODE=cmp  the workload both kernels run (base versus patched): walk
#             counts and timing of plain HMM_DMIRROR_MIGRATE_TO_DEV on
#             present 4 KiB pages and on THPs (PLAIN_SIZES/PLAIN_REPS; the series' kernel
#             also runs the one walk, interleaved), hmm_range_fault()
#             without REQ_MIGRATE (faulting and snapshot), then HMM_RUNS runs of
#             hmm-tests' benchmark_thp_migration from the kernel's tree;
#   MODE=prof (make profile) plain HMM_DMIRROR_MIGRATE_TO_DEV on present
#             4 KiB pages (PLAIN_SIZES/PLAIN_REPS), /proc/profile reset after
#             the warm-up and printed at the end;
#   MODE=seq  (series only) two walks versus one: walk counts per scenario
#             (WALK_SIZE), then every scenario and size (SIZES/REPS, CAPS:
#             largest size per scenario, REPCAPS: most repetitions), then
#             the one walk against the in-tree drivers' sequences
#             (DRV_SIZES/DRV_REPS, CAPS).
. ./params
phase() { echo "I phase $1 $(cut -d' ' -f1 /proc/uptime)"; }

./hmm-bench info
phase start
if [ "$MODE" = prof ]; then
	./hmm-bench plain -s "$PLAIN_SIZES" -r "$PLAIN_REPS" -c present -P
	phase prof
	exit 0
fi
if [ "$MODE" = seq ]; then
	# Page-table walks per sequence, one size, every scenario (kprobes).
	./hmm-bench walks -s "$WALK_SIZE"
	phase walks
	# Two walks versus one, every scenario and size, interleaved;
	# -g: the whole-migration runs also time the setup functions.
	./hmm-bench seq -s "$SIZES" -r "$REPS" -m "$CAPS" -R "$REPCAPS" -g
	phase seq
	# The one walk against xe's, amdkfd's and nouveau's sequences.
	./hmm-bench drivers -s "$DRV_SIZES" -r "$DRV_REPS" -m "$CAPS"
	phase drivers
	exit 0
fi

one=
[ "$KIND" = patched ] && one=-o
./hmm-bench walks -s "$WALK_SIZE" -p
phase walks
./hmm-bench plain -s "$PLAIN_SIZES" -r "$PLAIN_REPS" -c present,thp $one -g
phase plain
# hmm_range_fault() without HMM_PFN_REQ_MIGRATE: faulting and snapshot.
./hmm-bench hrf -s "$PLAIN_SIZES" -r "$PLAIN_REPS" -g
phase hrf
# hmm-tests' own benchmark, from this kernel's tree.
i=1
while [ "$i" -le "$HMM_RUNS" ]; do
	echo "B run $i"
	./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration
	echo "B end $i rc=$?"
	i=$((i + 1))
done
phase hmm-tests
