#!/usr/bin/env bash
# make bench: what one walk buys, measured (issue 5).
#
# Builds two VM kernels with the same configuration (configs/vm.config +
# configs/bench.config, which adds ftrace, the function_graph tracer and
# kprobe events; no KUnit suites): the base ($BASE_BRANCH, in a worktree
# $WORK/bench-base) and the series (the working tree $KERNEL, or
# BENCH_TREE=).  Then QEMU/TCG VM runs (scripts/benchvm.sh), each running
# bench/guest.sh: BENCH_CMP_ROUNDS rounds (default 2) of base then patched
# with the same workload (walk counts and timing of plain
# migrate_vma_setup() migration with bench/hmm-bench, hmm-tests'
# benchmark_thp_migration from each kernel's own tree), then one patched
# run of two walks versus one (every scenario and size).  Raw output goes
# to bench/raw/<kind>/<run>/, the report to bench/results.md and
# bench/time-vs-size.png (scripts/benchreport.py).
#
# Environment: BENCH_SIZES (MiB, default 2,8,64,256,512), BENCH_REPS (per
# size, default 5,5,9,5,3), BENCH_CAPS (largest size of some scenarios,
# default rofile=8,cow=64,swap=64: the one walk is slow there),
# BENCH_REPCAPS (most repetitions, default cow=3), BENCH_PLAIN_SIZES
# (64,256,512), BENCH_PLAIN_REPS (5,5,3), BENCH_WALK_SIZE (8),
# BENCH_HMM_RUNS (per VM run, 2), BENCH_CMP_ROUNDS (2),
# BENCH_ONLY=base|patched (that kernel's runs only), BENCH_NO_BUILD=1 (use
# the built kernels as they are), BENCH_REPORT_ONLY=1 (only regenerate the
# report from bench/raw).
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

# One VM run: vmrun KIND MODE NAME.  Raw output to bench/raw/KIND/NAME/.
vmrun() {
	local kind=$1 mode=$2 name=$3 tree=$base_tree
	[ "$kind" = patched ] && tree=$patched_tree
	local o=$BUILD/bench-$kind r=$RUN/$kind-$name d=$RAW/$kind/$name
	rm -rf "$r"; mkdir -p "$r"
	# Private copies: the build directories may be rebuilt meanwhile.
	cp "$o/arch/x86/boot/bzImage" "$r/bzImage"
	cp "$o-tests/hmm-tests" "$BUILD/hmm-bench" "$r/"
	cat > "$r/params" <<EOT
KIND=$kind
MODE=$mode
SIZES=${BENCH_SIZES:-2,8,64,256,512}
REPS=${BENCH_REPS:-5,5,9,5,3}
CAPS=${BENCH_CAPS:-rofile=8,cow=64,swap=64}
REPCAPS=${BENCH_REPCAPS:-cow=3}
PLAIN_SIZES=${BENCH_PLAIN_SIZES:-64,256,512}
PLAIN_REPS=${BENCH_PLAIN_REPS:-5,5,3}
WALK_SIZE=${BENCH_WALK_SIZE:-8}
HMM_RUNS=${BENCH_HMM_RUNS:-2}
EOT
	msg "$kind kernel, $name: VM run ($(elapsed))"
	local load0 load1
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	VM_TIMEOUT=${VM_TIMEOUT:-1800} "$TOP/scripts/benchvm.sh" "$r/bzImage" "$r/vm" \
		"$TOP/bench/guest.sh" "$r/hmm-bench" "$r/hmm-tests" "$r/params"
	load1=$(cut -d' ' -f1-3 /proc/loadavg)

	rm -rf "$d"; mkdir -p "$d"
	cp "$r/vm/output.txt" "$r/vm/console.log" "$r/params" "$d/"
	cp "$o/.config" "$RAW/$kind/kernel.config"
	{
		echo "kind $kind"
		echo "mode $mode"
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
}

# A full run replaces all raw output; BENCH_ONLY= that kernel's.
if [ -z "${BENCH_ONLY:-}" ]; then
	rm -rf "$RAW"
fi
for kind in "${kinds[@]}"; do rm -rf "${RAW:?}/$kind"; done
mkdir -p "$RAW"

# Base versus patched: the same workload, alternating kernels
# (BENCH_CMP_ROUNDS rounds, default 2), then two walks versus one.
for i in $(seq 1 "${BENCH_CMP_ROUNDS:-2}"); do
	for kind in "${kinds[@]}"; do
		vmrun "$kind" cmp "cmp$i"
	done
done
case " ${kinds[*]} " in *" patched "*) vmrun patched seq seq ;; esac

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
