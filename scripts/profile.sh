#!/usr/bin/env bash
# make profile: where plain migrate_vma_setup() migration spends its time,
# base kernel versus series, by the kernel's own timer-tick profiler.
#
# Builds the base and the series kernel as make bench does, plus
# configs/profile.config (CONFIG_PROFILING), in $BUILD/prof-{base,patched};
# then PROF_ROUNDS (default 2) VM runs of each, alternating, booted with
# profile=2: each migrates PLAIN_SIZES MiB (PROF_SIZE, default 256) of
# present 4 KiB pages PROF_REPS times (default 8) with HMM_DMIRROR_MIGRATE_TO_DEV
# and prints /proc/profile.  scripts/profreport.py maps the counters to
# functions with each kernel's System.map and prints ticks per 1000
# migrated pages per function, base against patched, and the times of the
# migrations themselves (the same runs).  Output: $WORK/profile/ (raw runs),
# then, when every run finished, bench/profile/: report.txt (with the
# command and the kernels' commits) and each run's output.txt as
# <kind>-<round>.txt (the counters; the System.map of a build of the same
# commits maps them again).  VM settings as make bench (VM_ACCEL=tcg).
. "$(dirname "$0")/common.sh"

T0=$(date +%s)
export VM_ACCEL=${VM_ACCEL:-tcg}
size=${PROF_SIZE:-256} reps=${PROF_REPS:-8} rounds=${PROF_ROUNDS:-2}
base_tree=$WORK/bench-base
out=$WORK/profile
if [ ! -e "$base_tree/Makefile" ]; then
	base_rev >/dev/null
	msg "adding worktree $base_tree ($BASE_BRANCH)"
	fresh_worktree "$base_tree" "$BASE_BRANCH"
fi
[ -e "$KTREE/Makefile" ] || die "no series tree at $KTREE: run 'make tree' first"
for kind in base patched; do
	tree=$base_tree
	[ "$kind" = patched ] && tree=$KTREE
	o=$BUILD/prof-$kind
	if [ -z "${PROF_NO_BUILD:-}" ] || [ ! -f "$o/arch/x86/boot/bzImage" ]; then
		msg "building the $kind kernel with CONFIG_PROFILING ($(elapsed))"
		KUNITCONFIG=/dev/null "$TOP/scripts/kernel.sh" "$tree" "$o" "$o-tests" \
			"$TOP/configs/bench.config" "$TOP/configs/profile.config"
	fi
	grep -q '^CONFIG_PROFILING=y' "$o/.config" || die "$o/.config has no CONFIG_PROFILING"
done
gcc -static -O2 -Wall -Wextra -o "$BUILD/hmm-bench" "$TOP/bench/hmm-bench.c" ||
	die "building bench/hmm-bench.c failed"

rm -rf "$out"; mkdir -p "$out"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
args=()
for i in $(seq 1 "$rounds"); do
	for kind in base patched; do
		o=$BUILD/prof-$kind r=$out/$kind-$i
		mkdir -p "$r"
		cp "$o/arch/x86/boot/bzImage" "$o/System.map" "$o-tests/hmm-tests" "$BUILD/hmm-bench" "$r/"
		printf 'KIND=%s\nMODE=prof\nPLAIN_SIZES=%s\nPLAIN_REPS=%s\n' "$kind" "$size" "$reps" > "$r/params"
		msg "$kind kernel, round $i of $rounds: $reps migrations of $size MiB ($(elapsed))"
		VM_APPEND="${VM_APPEND:+$VM_APPEND }profile=2" VM_TIMEOUT=${VM_TIMEOUT:-1800} \
			"$TOP/scripts/vm.sh" --script "$r/bzImage" "$r/vm" \
			"$TOP/bench/guest.sh" "$r/hmm-bench" "$r/hmm-tests" "$r/params"
		grep -q 'hmmwalk-vm: exit=0' "$r/vm/output.txt" ||
			die "the $kind VM run $i did not finish (see $r/vm/output.txt and console.log)"
		rm -f "$r/bzImage" "$r/hmm-tests" "$r/hmm-bench"
		args+=("$kind" "$r/System.map" "$r/vm/output.txt")
	done
done
cmd="make profile"
for v in $(compgen -e | grep '^PROF_\|^VM_' | sort); do cmd+=" $v=${!v}"; done
{
	echo "command: $cmd"
	echo "base: $(git -C "$base_tree" log -1 --format='%h %s')"
	echo "patched: $(git -C "$KTREE" log -1 --format='%h %s')$( [ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] || echo ' (with uncommitted changes)')"
	echo "fragments: configs/vm.config configs/bench.config configs/profile.config; VM: scripts/vm.sh --script, accel $(cat "$out/base-1/vm/accel"), kernel command line +profile=2"
	echo "host load before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg); took $(elapsed)"
	echo
	python3 "$TOP/scripts/profreport.py" "${args[@]}"
} > "$out/report.txt"
cat "$out/report.txt"
dst=$TOP/bench/profile
rm -rf "$dst"; mkdir -p "$dst"
cp "$out/report.txt" "$dst/"
for r in "$out"/*-*/; do r=${r%/}; cp "$r/vm/output.txt" "$dst/$(basename "$r").txt"; done
msg "profile: bench/profile/report.txt ($(elapsed))"
