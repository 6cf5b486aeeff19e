#!/usr/bin/env bash
# The xe RFC series (patches/xe/) built as the rest: each of its patches
# checked out in WORKTREE and the C files it touches under drivers/
# compiled with W=1 and checked with sparse, in a configuration with
# DRM_XE, DRM_GPUSVM and DRM_PAGEMAP (configs/vm.config + configs/xe.config,
# build directory $BUILD/check-xe).  A diagnostic that the same files do not
# give before the series (at the feature's tip) fails, as does a file that
# this configuration does not compile.
#   xe.sh WORKTREE TIP    TIP: the tip of the xe series in WORKTREE
#   xe.sh                 (make xe) a worktree $WORK/xe-check at $XE_BRANCH
# Exit 77 when patches/xe/ holds no patch.
. "$(dirname "$0")/common.sh"

if [ $# = 0 ]; then
	wt=$WORK/xe-check
	fresh_worktree "$wt" "$XE_BRANCH"
	tip=$(git -C "$wt" rev-parse HEAD)
else
	[ $# = 2 ] || die "usage: xe.sh [WORKTREE TIP]"
	wt=$1 tip=$2
fi
n=$(series_patches xe | wc -l)
[ "$n" -gt 0 ] || { echo "patches/xe/ holds no patch"; exit 77; }
mapfile -t commits < <(git -C "$wt" rev-list --reverse "$tip~$n..$tip")
before=$(git -C "$wt" rev-parse "$tip~$n")
o=$BUILD/check-xe
mkdir -p "$o"
sparse=$(sparse_bin)

mapfile -t files < <(git -C "$wt" diff --name-only --diff-filter=AM "$before" "$tip" -- 'drivers/*.c')
[ ${#files[@]} -gt 0 ] || { echo "the xe series touches no C file under drivers/"; exit 0; }

# compile LOG FILES...: W=1 to .s (the objects stay as built), then sparse
# (C=2 checks without recompiling), of FILES.
compile() {
	local log=$1 f objs=() ss=(); shift
	for f in "$@"; do
		[ -f "$wt/$f" ] || continue
		objs+=("${f%.c}.o"); ss+=("${f%.c}.s")
	done
	: > "$log"
	[ ${#objs[@]} -gt 0 ] || return 0
	kmake -C "$wt" O="$o" "${objs[@]}" >> "$log" 2>&1 || return 1
	kmake -C "$wt" O="$o" W=1 "${ss[@]}" >> "$log" 2>&1 || return 1
	kmake -C "$wt" O="$o" C=2 CHECK="$sparse" "${objs[@]}" >> "$log" 2>&1 || return 1
	rm -f "${ss[@]/#/$o/}"
	for f in "${objs[@]}"; do
		[ -f "$o/$f" ] || { echo "$f: not built in this configuration" >> "$log"; return 1; }
	done
}

t=$(date +%s)
git -C "$wt" checkout -q --detach "$before"
KCONFIG_LAX=1 kconfig "$wt" "$o" x86_64 "$TOP/configs/vm.config" "$TOP/configs/xe.config" > "$o.kconfig.log" 2>&1 ||
	{ cat "$o.kconfig.log"; die "configuring $o failed"; }
miss=$(kconfig_missing "$o" "$TOP/configs/xe.config")
[ -z "$miss" ] || die "Kconfig refused $miss of configs/xe.config"
compile "$o.before.log" "${files[@]}" || { tail -20 "$o.before.log"; die "the files the xe series touches do not compile before it ($o.before.log)"; }
"$TOP/scripts/warnings.py" keys "$o.before.log" > "$o.before.keys"
echo "  before the series: ${files[*]} compile, $(wc -l < "$o.before.keys") known diagnostics ($(( $(date +%s) - t ))s)"

bad=0 i=0
for c in "${commits[@]}"; do
	i=$((i + 1)); t=$(date +%s)
	git -C "$wt" checkout -q --detach "$c"
	mapfile -t cf < <(git -C "$wt" diff --name-only --diff-filter=AM "$c^" "$c" -- 'drivers/*.c')
	# a header change compiles every file of the series
	git -C "$wt" diff --name-only "$c^" "$c" | grep '\.h$' >/dev/null && cf=("${files[@]}")
	log=$o.patch$i.log
	if ! compile "$log" "${cf[@]}"; then
		echo "  [$i/$n] FAIL $(git -C "$wt" log -1 --format=%s "$c"): does not compile ($log)"
		grep -E 'error|not built' "$log" | sed -n 1,10p || true; bad=1; continue
	fi
	new=$("$TOP/scripts/warnings.py" new "$o.before.keys" "$log" || true)
	if [ -n "$new" ]; then
		echo "  [$i/$n] FAIL $(git -C "$wt" log -1 --format=%s "$c"): new diagnostics"
		echo "$new" | sed -n 1,10p | sed 's/^/      /'; bad=1; continue
	fi
	echo "  [$i/$n] ok   $(git -C "$wt" log -1 --format=%s "$c") (${cf[*]:-no C file}; $(( $(date +%s) - t ))s)"
done
git -C "$wt" checkout -q --detach "$tip"
[ $bad = 0 ] || { echo "result: an xe patch does not build cleanly with DRM_XE"; exit 1; }
echo "result: the $n xe patches build one by one with DRM_XE, DRM_GPUSVM and DRM_PAGEMAP, no new W=1/sparse diagnostic"
