#!/usr/bin/env bash
# Run the series' KUnit suites with tools/testing/kunit/kunit.py.
#   kunit.sh um  [SRC [BUILD_DIR [MODE [FILTER]]]]  UML: configure, build, run
#   kunit.sh x86 [SRC [O [MODE [FILTER]]]]          x86_64 under QEMU/TCG, on the
#                                                   VM kernel already built in O
#   kunit.sh um-build [SRC [BUILD_DIR [MODE]]]      UML: configure and build only
# Defaults: the working tree, $WORK/build/um or $WORK/build/x86.
# The suites come from the series' .kunitconfig files (MODE "commit": those
# the commits add; otherwise the working tree's; KUNITCONFIG= overrides).
# Exit 77 when there is none.  Results are read from kunit.py --json
# (DIR/kunit.json) by scripts/kunitjson.py: with KUNIT_NO_SKIP=1 every case
# must pass; with KUNIT_EXPECT=FILE each case must give what FILE says
# (expect/kunit-um.expect), so a case that newly skips fails.
. "$(dirname "$0")/common.sh"

[ $# -ge 1 ] || die "usage: kunit.sh um|x86|um-build [SRC [DIR [MODE [FILTER]]]]"
what=$1 src=${2:-$KTREE} dir=${3:-} mode=${4:-worktree} filter=${5:-}
src=$(cd "$src" && pwd)
case "$what" in
x86) dir=${dir:-$BUILD/x86} ;;
*) dir=${dir:-$BUILD/um} ;;
esac
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
mapfile -t kcs < <(series_kunitconfigs "$src" "$mode")
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
x86)
	[ -f "$dir/arch/x86/boot/bzImage" ] || { echo "no kernel in $dir: build it first"; exit 1; }
	# The VM kernel has the suites built in (configs/vm.config plus the
	# series' .kunitconfig): check that before running.
	for k in "${kcs[@]}"; do
		miss=$(kconfig_missing "$dir" "$k")
		[ -z "$miss" ] || { echo "$dir/.config lacks $miss from $k: rebuild it"; exit 1; }
	done
	kunit exec --build_dir="$dir" --qemu_config="$TOP/configs/kunit-x86_64-tcg.py" \
		"${kargs[@]}" --timeout=900 --json="$json" ${filter:+"$filter"} 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]} ;;
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
		grep -E '\[SKIPPED\]' "$out" | head -20
		rc=1; }
elif [ -n "${KUNIT_EXPECT:-}" ]; then
	python3 "$TOP/scripts/kunitjson.py" check "$json" "$KUNIT_EXPECT" || {
		echo "the results differ from $KUNIT_EXPECT (see the lines above)"; rc=1; }
fi
exit "$rc"
