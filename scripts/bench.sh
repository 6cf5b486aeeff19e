#!/usr/bin/env bash
# make bench: what one walk buys, measured (issue 5).
#
# Builds two VM kernels with the same configuration (configs/vm.config +
# configs/bench.config, which adds ftrace, the function_graph tracer and
# kprobe events; no KUnit suites): the base ($BASE_BRANCH, in a worktree
# $WORK/bench-base) and the series (the working tree $KTREE, or
# BENCH_TREE=).  Then QEMU/TCG VM runs (scripts/vm.sh --script), each
# running bench/guest.sh: BENCH_CMP_ROUNDS rounds (default 2) of base then patched
# with the same workload (walk counts and timing of plain
# migrate_vma_setup() migration with bench/hmm-bench, hmm-tests'
# benchmark_thp_migration from each kernel's own tree), then one patched
# run of two walks versus one (every scenario and size).  Raw output goes
# to bench/raw/<kind>/<run>/, the report to bench/results.md and
# bench/time-vs-size.png (scripts/benchreport.py).  All of it is written to
# $WORK/bench-new first and moved into bench/ only when every VM run and
# the report succeeded: a failed or interrupted run leaves the committed
# results as they are (and its own output in $WORK/bench-new).
#
# Environment: BENCH_SIZES (MiB, default 2,8,64,256,512), BENCH_REPS (per
# size, default 5,5,9,5,3), BENCH_CAPS (largest size of some scenarios,
# default rofile=8,cow=64,swap=64: the one walk is slow there),
# BENCH_REPCAPS (most repetitions, default cow=3), BENCH_PLAIN_SIZES
# (64,256,512), BENCH_PLAIN_REPS (5,5,3), BENCH_WALK_SIZE (8),
# BENCH_HMM_RUNS (per VM run, 2), BENCH_DRV_SIZES (the drivers' sequences,
# 2,64,256), BENCH_DRV_REPS (5,5,3), BENCH_CMP_ROUNDS (2),
# BENCH_ONLY=base|patched (that kernel's runs only), BENCH_NO_BUILD=1 (use
# the built kernels as they are), BENCH_REPORT_ONLY=1 (only regenerate the
# report from bench/raw).  The VM runs take scripts/vm.sh's settings
# (VM_TIMEOUT here 1800 by default, VM_MEM, VM_SMP, VM_APPEND); VM_ACCEL
# defaults to tcg here, not auto, so that every run (and the committed
# figures) used the same accelerator; a run whose accelerator differs from
# the first one's stops the benchmark.
. "$(dirname "$0")/common.sh"

RAW=$TOP/bench/raw
RUN=$WORK/bench-run
# The new results, moved into bench/ on success.
NEW=$WORK/bench-new
base_tree=${BENCH_BASE_TREE:-$WORK/bench-base}
patched_tree=${BENCH_TREE:-$KTREE}
T_START=$(date +%s)
# The VM settings as given, for the command line in the report.
vm_settings=$(compgen -e | grep '^VM_' | sort || true)
export VM_ACCEL=${VM_ACCEL:-tcg}

# report RAWDIR OUTDIR: OUTDIR/results.md and OUTDIR/time-vs-size.png.
report() {
	local py=python3
	# The plot needs matplotlib: take a python3 that has it.
	if ! $py -c 'import matplotlib' 2>/dev/null && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
		py=/usr/bin/python3
	fi
	# benchreport.py quotes analysis.md from next to results.md.
	if [ -f "$TOP/bench/analysis.md" ]; then cp "$TOP/bench/analysis.md" "$2/"; fi
	$py "$TOP/scripts/benchreport.py" "$1" "$2/results.md" "$2/time-vs-size.png"
	[ -s "$2/results.md" ] || die "scripts/benchreport.py wrote no $2/results.md"
}
# install OUTDIR [raw]: move the report (and the raw output) into bench/.
install_results() {
	local s=$1 old=$WORK/bench-old
	installing=1
	if [ "${2:-}" = raw ]; then
		rm -rf "$old"; mkdir -p "$old"
		if [ -e "$RAW" ]; then mv "$RAW" "$old/raw"; fi
		mv "$s/raw" "$RAW"
		rm -rf "$old"
	fi
	mv -f "$s/results.md" "$TOP/bench/results.md"
	if [ -f "$s/time-vs-size.png" ]; then
		mv -f "$s/time-vs-size.png" "$TOP/bench/time-vs-size.png"
		msg "wrote bench/results.md and bench/time-vs-size.png"
	else
		msg "wrote bench/results.md; no plot (no matplotlib): bench/time-vs-size.png is unchanged"
	fi
	rm -rf "$s"
	installing=""
}

installing=""
on_exit() {
	local rc=$?
	[ "$rc" = 0 ] && return
	if [ -n "$installing" ]; then
		msg "make bench failed (exit $rc) while moving the results from $NEW into bench/: check bench/ (git status)"
	else
		msg "make bench failed (exit $rc): bench/ is unchanged; what this run wrote is in $NEW"
	fi
}
trap on_exit EXIT
rm -rf "$NEW"; mkdir -p "$NEW"

if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
	report "$RAW" "$NEW"
	install_results "$NEW"
	exit 0
fi

# The base tree: a worktree of $BASE_BRANCH.
if [ ! -e "$base_tree/Makefile" ]; then
	base_rev >/dev/null
	msg "adding worktree $base_tree ($BASE_BRANCH)"
	fresh_worktree "$base_tree" "$BASE_BRANCH"
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

# One VM run: vmrun KIND MODE NAME.  Raw output to $NEW/raw/KIND/NAME/
# (bench/raw/ once all succeeded).
bench_accel=""
vmrun() {
	local kind=$1 mode=$2 name=$3 tree=$base_tree
	[ "$kind" = patched ] && tree=$patched_tree
	local o=$BUILD/bench-$kind r=$RUN/$kind-$name d=$NEW/raw/$kind/$name
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
DRV_SIZES=${BENCH_DRV_SIZES:-2,64,256}
DRV_REPS=${BENCH_DRV_REPS:-5,5,3}
HMM_RUNS=${BENCH_HMM_RUNS:-2}
EOT
	msg "$kind kernel, $name: VM run ($(elapsed))"
	local load0 load1
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	VM_TIMEOUT=${VM_TIMEOUT:-1800} "$TOP/scripts/vm.sh" --script "$r/bzImage" "$r/vm" \
		"$TOP/bench/guest.sh" "$r/hmm-bench" "$r/hmm-tests" "$r/params"
	load1=$(cut -d' ' -f1-3 /proc/loadavg)
	local accel
	accel=$(cat "$r/vm/accel")
	[ -n "$bench_accel" ] || bench_accel=$accel
	[ "$accel" = "$bench_accel" ] ||
		die "$kind $name ran with $accel, the runs before with $bench_accel: not comparable (set VM_ACCEL=tcg or kvm)"

	rm -rf "$d"; mkdir -p "$d"
	cp "$r/vm/output.txt" "$r/vm/console.log" "$r/params" "$d/"
	cp "$o/.config" "$NEW/raw/$kind/kernel.config"
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
		if [ "$accel" = icount ]; then
			echo "vm qemu-system-x86_64 -accel tcg,thread=single -icount shift=0,sleep=on -smp 1 -m ${VM_MEM:-5G}"
		else
			echo "vm qemu-system-x86_64 -accel $accel -smp ${VM_SMP:-2} -m ${VM_MEM:-5G}"
		fi
		echo "vm_accel $accel"
		echo "vm_runner scripts/vm.sh --script"
		echo "vm_status $(cat "$r/vm/status")"
		echo "host_nproc $(nproc)"
		echo "host_load_before $load0"
		echo "host_load_after $load1"
		echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
	} > "$d/meta"
}

# A full run replaces all raw output; BENCH_ONLY= that kernel's (the
# other's is kept).
mkdir -p "$NEW/raw"
if [ -n "${BENCH_ONLY:-}" ] && [ -d "$RAW" ]; then
	cp -a "$RAW/." "$NEW/raw/"
fi
for kind in "${kinds[@]}"; do rm -rf "${NEW:?}/raw/$kind"; done

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
for v in $(compgen -e | grep '^BENCH_' | sort) $vm_settings; do
	cmd+=" $v=${!v#"$TOP"/}"
done
{
	echo "command $cmd"
	echo "build_seconds $(( T_BUILT - T_START ))"
	echo "vm_seconds $(( $(date +%s) - T_BUILT ))"
	echo "total_seconds $(( $(date +%s) - T_START ))"
} > "$NEW/raw/run.${BENCH_ONLY:-all}"
report "$NEW/raw" "$NEW"
install_results "$NEW" raw
msg "make bench done in $(elapsed)"
