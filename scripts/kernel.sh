#!/usr/bin/env bash
# make kernel: build the x86_64 VM kernel (configs/vm.config plus the
# series' KUnit configuration) and hmm-tests from a kernel tree.
#   kernel.sh [SRC [O [TESTS_OUT [FRAGMENT...]]]]
# Defaults: the working tree $KTREE, $WORK/build/x86, $WORK/build/x86-tests.
# Extra fragments (for example configs/debug.config) are appended.
. "$(dirname "$0")/common.sh"

src=${1:-$KTREE}; o=${2:-$BUILD/x86}; tests=${3:-$o-tests}
shift $(( $# < 3 ? $# : 3 ))
[ -d "$src" ] || die "no kernel tree at $src: run 'make base' first"
mapfile -t frags < <(vm_fragments "$src")
kconfig "$src" "$o" x86_64 "${frags[@]}" "$@"
msg "building $(basename "$o") kernel from $src"
start=$(date +%s)
kmake -C "$src" O="$o" bzImage 2>&1 | tee "$o.log" >&2
[ "${PIPESTATUS[0]}" = 0 ] || die "kernel build failed (log: $o.log)"
build_hmm_tests "$src" "$o" "$tests"
msg "built $o/arch/x86/boot/bzImage and $tests/hmm-tests in $(( $(date +%s) - start ))s"
