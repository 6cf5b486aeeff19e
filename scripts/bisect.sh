#!/usr/bin/env bash
# Every patch builds on its own (check step 3; "make build-patch N=").
#   bisect.sh WORKTREE O TIP [N...]
# Checks out each selected commit of base..TIP (all by default; N counts
# from 1) in WORKTREE, builds the x86_64 VM kernel (configs/vm.config plus
# the series' KUnit configuration at TIP) incrementally in O, then compiles
# the C files the patch touches (all the series' C files when it touches a
# header) with W=1 and runs sparse on them.  Any diagnostic the base does
# not give, in the build, the W=1 compile, sparse or the hmm-tests build,
# fails the patch.  The worktree is left at the last selected commit with
# a complete build.
. "$(dirname "$0")/common.sh"

[ $# -ge 3 ] || die "usage: bisect.sh WORKTREE O TIP [N...]"
wt=$1 o=$2 tip=$3; shift 3
base=$(base_rev)
tip=$(git -C "$wt" rev-parse --verify "$tip^{commit}")
mapfile -t commits < <(git -C "$wt" rev-list --reverse "$base..$tip")
total=${#commits[@]}
[ "$total" -gt 0 ] || die "no commits between the base and $tip"
sel=("$@")
[ ${#sel[@]} -gt 0 ] || mapfile -t sel < <(seq 1 "$total")
for n in "${sel[@]}"; do
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$total" ] ||
		die "no patch $n: the series has $total"
done

sparse=$(sparse_bin)
[ -n "$sparse" ] || die "sparse not found: run scripts/sparse.sh (or set SPARSE=)"
[ "$(sh "$wt/scripts/checker-valid.sh" "$sparse" --arch=x86_64 -mlittle-endian -m64 2>/dev/null)" = 1 ] ||
	die "$sparse is too old for this kernel (scripts/checker-valid.sh); run scripts/sparse.sh"

st=$o.wb
mkdir -p "$st"
# The worktree's checkouts are ours while this runs.
exec 7>"$st/lock"
flock -n 7 || die "$wt is in use by another build check ($st/lock)"
# The configuration comes from the tip, for every commit.
rm -rf "$st/frags"; mkdir -p "$st/frags"
cp "$TOP/configs/vm.config" "$st/frags/00-vm.config"
i=10
while read -r k; do
	git -C "$wt" show "$tip:$k" > "$st/frags/$i-$(echo "$k" | tr / _)"; i=$((i + 1))
done < <(git -C "$wt" diff --name-only --diff-filter=AM "$base" "$tip" -- '*kunitconfig' ':!*_x86_64.kunitconfig')
for k in ${KUNITCONFIG:-}; do cp "$k" "$st/frags/$i-extra.config"; i=$((i + 1)); done
frags=("$st"/frags/*)

mapfile -t allc < <(touched_files "$wt" "$base" "$tip" | grep '\.c$' | grep -v '^tools/' || true)
selftests_touched() { touched_files "$wt" "$1" "$2" | grep '^tools/testing/selftests/mm/' >/dev/null; }

# build LABEL: configure and build bzImage; LABEL.log gets the output.
build() {
	local label=$1
	# The fragments' KUnit options do not exist before the patch adding them.
	KCONFIG_LAX=1 kconfig "$wt" "$o" x86_64 "${frags[@]}" 2>"$st/$label.kconfig.log" >&2 || {
		cat "$st/$label.kconfig.log"; return 1; }
	kmake -C "$wt" O="$o" bzImage > "$st/$label.log" 2>&1
}
# extra LABEL FILES...: W=1 compile (to .s, so the objects stay as built)
# and sparse (C=2 checks without recompiling) of the C files built in
# this configuration.
extra() {
	local label=$1 f objs=() ss=(); shift
	for f in "$@"; do
		# built into this configuration's kernel?
		[ -f "$wt/$f" ] && [ -f "$o/${f%.c}.o" ] &&
			grep -qw -- "$(basename "${f%.c}").o" "$o/$(dirname "$f")/.built-in.a.cmd" 2>/dev/null ||
			continue
		objs+=("${f%.c}.o"); ss+=("${f%.c}.s")
	done
	: > "$st/$label.w1.log"
	[ ${#objs[@]} -gt 0 ] || return 0
	kmake -C "$wt" O="$o" W=1 "${ss[@]}" >> "$st/$label.w1.log" 2>&1 || return 1
	kmake -C "$wt" O="$o" C=2 CHECK="$sparse" "${objs[@]}" >> "$st/$label.w1.log" 2>&1 || return 1
	rm -f "${ss[@]/#/$o/}"
	! grep -q 'not available or not up to date' "$st/$label.w1.log"
}
tests() {
	local label=$1
	build_hmm_tests "$wt" "$o" "$st/tests" > "$st/$label.tests.log" 2>&1
}

# The base: a full build, and W=1/sparse of every C file the series touches.
stamp="$base $(cat "${frags[@]}" | sha1sum | cut -c1-12)"
if [ "$(cat "$st/base.stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -f "$st/base.keys" "$st/base.files"
fi
touch "$st/base.keys" "$st/base.files"
need=()
for f in "${allc[@]}"; do grep -qxF "$f" "$st/base.files" || need+=("$f"); done
if [ ! -s "$st/base.stamp" ] || [ "$(cat "$st/base.stamp")" != "$stamp" ] || [ ${#need[@]} -gt 0 ]; then
	t=$(date +%s)
	git -C "$wt" checkout -q --detach "$base"
	build base || die "the base does not build (log: $st/base.log)"
	extra base "${need[@]}" || die "W=1/sparse on the base failed (log: $st/base.w1.log)"
	tests base || die "hmm-tests does not build on the base (log: $st/base.tests.log)"
	"$TOP/scripts/warnings.py" keys "$st/base.log" "$st/base.w1.log" "$st/base.tests.log" >> "$st/base.keys"
	sort -u -o "$st/base.keys" "$st/base.keys"
	printf '%s\n' "${need[@]}" >> "$st/base.files"
	echo "$stamp" > "$st/base.stamp"
	echo "  base: built, $(wc -l < "$st/base.keys") known diagnostics ($(( $(date +%s) - t ))s)"
fi

# BISECT_KEEP=COMMIT=DIR: when COMMIT (one of the series') builds cleanly,
# copy its bzImage and hmm-tests to DIR (check step 7 boots the fixes tip).
keep_c= keep_d=
if [ -n "${BISECT_KEEP:-}" ]; then
	keep_c=$(git -C "$wt" rev-parse --verify "${BISECT_KEEP%%=*}^{commit}") ||
		die "BISECT_KEEP: no commit ${BISECT_KEEP%%=*}"
	keep_d=${BISECT_KEEP#*=}
	rm -rf "$keep_d"
fi

fail=0
for n in "${sel[@]}"; do
	c=${commits[$((n - 1))]}
	prev=$(git -C "$wt" rev-parse "$c^")
	label=$(printf 'patch%02d' "$n")
	subj=$(git -C "$wt" log -1 --format=%s "$c")
	t=$(date +%s)
	git -C "$wt" checkout -q --detach "$c"
	mapfile -t files < <(touched_files "$wt" "$prev" "$c")
	mapfile -t cfiles < <(printf '%s\n' "${files[@]}" | grep '\.c$' | grep -v '^tools/' || true)
	if printf '%s\n' "${files[@]}" | grep '\.h$' >/dev/null; then cfiles=("${allc[@]}"); fi
	problem=
	if ! build "$label"; then
		problem="build failed"
	elif ! extra "$label" "${cfiles[@]}"; then
		problem="W=1/sparse compile failed"
	elif selftests_touched "$prev" "$c" && ! tests "$label"; then
		problem="hmm-tests does not build"
	fi
	if [ -z "$problem" ] && [ "$c" = "$keep_c" ]; then
		{ tests "$label.keep" && mkdir -p "$keep_d" &&
		  cp "$o/arch/x86/boot/bzImage" "$st/tests/hmm-tests" "$keep_d/"; } ||
			problem="saving its build to $keep_d (BISECT_KEEP) failed"
	fi
	logs=("$st/$label.log" "$st/$label.w1.log")
	[ -f "$st/$label.tests.log" ] && selftests_touched "$prev" "$c" && logs+=("$st/$label.tests.log")
	new=$("$TOP/scripts/warnings.py" new "$st/base.keys" "${logs[@]}" 2>/dev/null || true)
	[ -z "$problem" ] && [ -n "$new" ] && problem="new diagnostics"
	secs=$(( $(date +%s) - t ))
	if [ -z "$problem" ]; then
		echo "  [$n/$total] ok   $subj (${secs}s)"
	else
		fail=1
		echo "  [$n/$total] FAIL $subj: $problem (${secs}s; logs $st/$label.*)"
		[ -n "$new" ] && echo "$new" | sed -n 1,20p | sed 's/^/      /'
		[ -z "$new" ] && grep -E 'error|Error' "${logs[@]}" 2>/dev/null | sed -n 1,10p | sed 's/^/      /' || true
	fi
done
exit $fail
