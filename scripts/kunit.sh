#!/usr/bin/env bash
# Run the series' KUnit suites with tools/testing/kunit/kunit.py.
#   kunit.sh um  [SRC [BUILD_DIR [MODE [FILTER]]]]  UML: configure, build, run
#   kunit.sh x86 [SRC [BUILD_DIR [MODE [FILTER]]]]  x86_64 under QEMU: configure,
#                                                   build, run
#   kunit.sh um-build [SRC [BUILD_DIR [MODE]]]      UML: configure and build only
#   kunit.sh x86-exec SRC BUILD_DIR [MODE [FILTER]] x86_64 under QEMU: run the
#                                                   kernel already built in
#                                                   BUILD_DIR (kunit.py exec),
#                                                   which must have every option
#                                                   of the x86_64 kunitconfigs
#                                                   (check step 6: the VM kernel)
# Defaults: the working tree, $WORK/build/um or $WORK/build/kunit-x86_64.
# The suites come from the series' .kunitconfig files (MODE "commit": those
# the commits add; otherwise the working tree's; KUNITCONFIG= overrides):
# for UML the generic ones, for x86_64 the *_x86_64.kunitconfig ones, which
# run every case.  Each is the command the kunitconfig tells users to run,
#   tools/testing/kunit/kunit.py run [--arch=x86_64] --kunitconfig=FILE
# with a build directory, jobs and ccache added, and on x86_64 without KVM
# (VM_ACCEL=tcg, or auto when the probe of scripts/vm.sh --accel on
# KUNIT_PROBE_IMAGE, a bzImage, does not give kvm)
# --qemu_config=configs/kunit-x86_64-tcg.py, the same QEMU without -accel kvm.
# Exit 77 when there is none.  Results are read from kunit.py --json
# (DIR/kunit.json) by scripts/kunitjson.py: with KUNIT_NO_SKIP=1 every case
# must pass; with KUNIT_EXPECT=FILE each case must give what FILE says
# (expect/kunit-um.expect), so a case that newly skips fails.
. "$(dirname "$0")/common.sh"

[ $# -ge 1 ] || die "usage: kunit.sh um|x86|um-build|x86-exec [SRC [DIR [MODE [FILTER]]]]"
what=$1 src=${2:-$KTREE} dir=${3:-} mode=${4:-worktree} filter=${5:-}
src=$(cd "$src" && pwd)
case "$what" in
x86|x86-exec) dir=${dir:-$BUILD/kunit-x86_64} arch=x86_64 ;;
*) dir=${dir:-$BUILD/um} arch= ;;
esac
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
mapfile -t kcs < <(series_kunitconfigs "$src" "$mode" "$arch")
if [ ${#kcs[@]} -eq 0 ]; then
	echo "no series KUnit suite: the series adds no .kunitconfig (set KUNITCONFIG= to pick one)"
	exit 77
fi
kargs=()
for k in "${kcs[@]}"; do kargs+=(--kunitconfig="$k"); done
out=$(mktemp); trap 'rm -f "$out"' EXIT
json=$dir/kunit.json; rm -f "$json"
kunit() {
	mkdir -p "$WORK"
	flock "$WORK/.kbuild.lock" python3 "$src/tools/testing/kunit/kunit.py" "$@"
}
cc=gcc; command -v ccache >/dev/null && cc="ccache gcc"
set +e
case "$what" in
um)
	kunit run --build_dir="$dir" "${kargs[@]}" --jobs="$JOBS" \
		--make_options="CC=$cc" --make_options="HOSTCC=$cc" --timeout=600 \
		--json="$json" ${filter:+"$filter"} 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]} ;;
um-build)
	kunit build --build_dir="$dir" "${kargs[@]}" --jobs="$JOBS" \
		--make_options="CC=$cc" --make_options="HOSTCC=$cc" 2>&1 | tee "$out"
	exit "${PIPESTATUS[0]}" ;;
x86|x86-exec)
	if [ "$what" = x86-exec ]; then
		[ -f "$dir/.config" ] && [ -f "$dir/arch/x86/boot/bzImage" ] ||
			die "no x86_64 kernel built in $dir (.config and arch/x86/boot/bzImage)"
		for k in "${kcs[@]}"; do
			m=$(kconfig_missing "$dir" "$k")
			[ -z "$m" ] || die "the kernel in $dir lacks what $(basename "$k") asks for: $m(add it to its configuration, or use 'kunit.sh x86')"
		done
		: "${KUNIT_PROBE_IMAGE:=$dir/arch/x86/boot/bzImage}"
	fi
	qemu=(--arch=x86_64) accel=${VM_ACCEL:-auto}
	if [ "$accel" = auto ]; then
		accel=tcg
		if [ -n "${KUNIT_PROBE_IMAGE:-}" ] && [ -f "$KUNIT_PROBE_IMAGE" ]; then
			accel=$("$TOP/scripts/vm.sh" --accel "$KUNIT_PROBE_IMAGE" 2>/dev/null || echo tcg)
		fi
	fi
	# scripts/bin has the qemu-system-x86_64-tcg wrapper the TCG config names
	[ "$accel" = kvm ] || { qemu+=(--qemu_config="$TOP/configs/kunit-x86_64-tcg.py"); export PATH="$TOP/scripts/bin:$PATH"; }
	if [ "$what" = x86-exec ]; then
		echo "kunit.py exec ${qemu[*]} --build_dir=$dir ${kargs[*]} (QEMU accelerator: $accel)"
		# No build, so no build lock either.
		python3 "$src/tools/testing/kunit/kunit.py" exec "${qemu[@]}" --build_dir="$dir" \
			"${kargs[@]}" --timeout=900 --json="$json" ${filter:+"$filter"} 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
	else
		echo "kunit.py run ${qemu[*]} ${kargs[*]} (QEMU accelerator: $accel)"
		kunit run "${qemu[@]}" --build_dir="$dir" "${kargs[@]}" --jobs="$JOBS" \
			--make_options="CC=$cc" --make_options="HOSTCC=$cc" --timeout=900 \
			--json="$json" ${filter:+"$filter"} 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
	fi ;;
*) die "unknown: $what" ;;
esac
set -e
summary=$(grep -E 'Testing complete\.' "$out" | tail -1)
[ -n "$summary" ] || { echo "kunit.py gave no result"; exit 1; }
echo "result: $what: ${summary#*Testing complete. }"
[ -s "$json" ] || { echo "kunit.py wrote no JSON results ($json)"; exit 1; }
if [ -n "${KUNIT_NO_SKIP:-}" ]; then
	python3 "$TOP/scripts/kunitjson.py" check "$json" all-pass || {
		echo "on $what every case is expected to run and pass:"
		grep -E '\[SKIPPED\]' "$out" | sed -n 1,20p || true
		rc=1; }
elif [ -n "${KUNIT_EXPECT:-}" ]; then
	python3 "$TOP/scripts/kunitjson.py" check "$json" "$KUNIT_EXPECT" "$out" || {
		echo "the results differ from $KUNIT_EXPECT (see the lines above)"; rc=1; }
fi
exit "$rc"
