#!/usr/bin/env bash
# make bench: what one walk buys, measured (issue 5).
#
# Builds two VM kernels with the same configuration (configs/vm.config +
# configs/bench.config, which adds ftrace, the function_graph tracer and
# kprobe events; no KUnit suites): the base ($BASE_BRANCH, in a worktree
# $WORK/bench-base) and the series (the working tree $KERNEL, or
# BENCH_TREE=).  Boots each in its own QEMU/TCG VM (scripts/benchvm.sh)
# and runs bench/guest.sh there: bench/hmm-bench (two walks versus one,
# walk counts, plain migrate_vma_setup() migration) and hmm-tests'
# benchmark_thp_migration from the kernel's own tree.  Writes the raw
# output to bench/raw/, then bench/results.md and bench/time-vs-size.png
# (scripts/benchreport.py).
#
# Environment: BENCH_SIZES (MiB, default 2,8,64,256,512), BENCH_REPS (per
# size, default 7,7,5,3,3), BENCH_CAPS (largest size of some scenarios,
# default rofile=64,cow=64,swap=256: the one walk is slow there),
# BENCH_PLAIN_SIZES (64,256,512), BENCH_PLAIN_REPS (5,5,3), BENCH_WALK_SIZE
# (8), BENCH_HMM_RUNS (3),
# BENCH_ONLY=base|patched (one VM only; the report uses the other's
# committed raw output), BENCH_NO_BUILD=1 (use the built kernels as they
# are), BENCH_REPORT_ONLY=1 (only regenerate the report from bench/raw).
. "$(dirname "$0")/common.sh"

RAW=$TOP/bench/raw
RUN=$WORK/bench-run
base_tree=${BENCH_BASE_TREE:-$WORK/bench-base}
patched_tree=${BENCH_TREE:-$KERNEL}
T_START=$(date +%s)

report() {
	local py=python3
	# The plot needs matplotlib: take a python3 that has it.
	if ! $py -c 'import matplotlib' 2>/dev/null && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
		py=/usr/bin/python3
	fi
	$py "$TOP/scripts/benchreport.py" "$RAW" "$TOP/bench/results.md" "$TOP/bench/time-vs-size.png"
	msg "wrote bench/results.md and bench/time-vs-size.png"
}

if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
	report
	exit 0
fi

# The base tree: a worktree of $BASE_BRANCH.
if [ ! -e "$base_tree/Makefile" ]; then
	base_rev >/dev/null
	msg "adding worktree $base_tree ($BASE_BRANCH)"
	git -C "$KERNEL" worktree add --detach "$base_tree" "$BASE_BRANCH" >&2
fi
[ -e "$patched_tree/Makefile" ] || die "no series tree at $patched_tree: run 'make tree' first"

kinds=(base patched)
[ -n "${BENCH_ONLY:-}" ] && kinds=("$BENCH_ONLY")

# Build both kernels first (one build at a time, through kmake's lock).
for kind in "${kinds[@]}"; do
	tree=$base_tree
	[ "$kind" = patched ] && tree=$patched_tree
	o=$BUILD/bench-$kind
	if [ -z "${BENCH_NO_BUILD:-}" ] || [ ! -f "$o/arch/x86/boot/bzImage" ]; then
		# KUNITCONFIG=/dev/null: no KUnit suites, the same fragments for both.
		KUNITCONFIG=/dev/null "$TOP/scripts/kernel.sh" "$tree" "$o" "$o-tests" "$TOP/configs/bench.config"
	fi
done
T_BUILT=$(date +%s)

gcc -static -O2 -Wall -Wextra -o "$BUILD/hmm-bench" "$TOP/bench/hmm-bench.c" ||
	die "building bench/hmm-bench.c failed"

for kind in "${kinds[@]}"; do
	tree=$base_tree
	[ "$kind" = patched ] && tree=$patched_tree
	o=$BUILD/bench-$kind
	r=$RUN/$kind
	rm -rf "$r"; mkdir -p "$r"
	# Private copies: the build directories may be rebuilt meanwhile.
	cp "$o/arch/x86/boot/bzImage" "$r/bzImage"
	cp "$o-tests/hmm-tests" "$BUILD/hmm-bench" "$r/"
	cat > "$r/params" <<EOT
KIND=$kind
SIZES=${BENCH_SIZES:-2,8,64,256,512}
REPS=${BENCH_REPS:-7,7,5,3,3}
CAPS=${BENCH_CAPS:-rofile=64,cow=64,swap=256}
PLAIN_SIZES=${BENCH_PLAIN_SIZES:-64,256,512}
PLAIN_REPS=${BENCH_PLAIN_REPS:-5,5,3}
WALK_SIZE=${BENCH_WALK_SIZE:-8}
HMM_RUNS=${BENCH_HMM_RUNS:-3}
EOT
	msg "$kind kernel: VM run ($(elapsed))"
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	VM_TIMEOUT=${VM_TIMEOUT:-1800} "$TOP/scripts/benchvm.sh" "$r/bzImage" "$r/vm" \
		"$TOP/bench/guest.sh" "$r/hmm-bench" "$r/hmm-tests" "$r/params"
	load1=$(cut -d' ' -f1-3 /proc/loadavg)

	d=$RAW/$kind
	rm -rf "$d"; mkdir -p "$d"
	cp "$r/vm/output.txt" "$d/output.txt"
	cp "$r/vm/console.log" "$d/console.log"
	cp "$r/params" "$d/params"
	cp "$o/.config" "$d/kernel.config"
	{
		echo "kind $kind"
		echo "tree_branch $(git -C "$tree" symbolic-ref -q --short HEAD || echo detached)"
		echo "tree_commit $(git -C "$tree" rev-parse HEAD)"
		echo "tree_subject $(git -C "$tree" log -1 --format=%s)"
		echo "tree_dirty $(git -C "$tree" status --porcelain --untracked-files=no | wc -l)"
		echo "base_commit $(git -C "$tree" rev-parse "$BASE_BRANCH")"
		echo "series_commits $(git -C "$tree" rev-list --count "$BASE_BRANCH..HEAD")"
		echo "kernel_release $(cat "$o/include/config/kernel.release" 2>/dev/null)"
		echo "fragments configs/vm.config configs/bench.config"
		echo "vm_cmdline $(cat "$r/vm/cmdline")"
		echo "vm qemu-system-x86_64 -accel tcg -smp ${VM_SMP:-2} -m ${VM_MEM:-5G}"
		echo "vm_status $(cat "$r/vm/status")"
		echo "host_nproc $(nproc)"
		echo "host_load_before $load0"
		echo "host_load_after $load1"
		echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
	} > "$d/meta"
done
# The command as given: make bench and the BENCH_ settings, paths relative.
cmd="make bench"
for v in $(compgen -e | grep '^BENCH_' | sort); do
	cmd+=" $v=${!v#"$TOP"/}"
done
{
	echo "command $cmd"
	echo "build_seconds $(( T_BUILT - T_START ))"
	echo "vm_seconds $(( $(date +%s) - T_BUILT ))"
	echo "total_seconds $(( $(date +%s) - T_START ))"
} > "$RAW/run.${BENCH_ONLY:-all}"
report
msg "make bench done in $(elapsed)"
