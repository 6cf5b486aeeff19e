#!/usr/bin/env bash
# Every patch builds on its own (check step 3; "make build-patch N=").
#   bisect.sh WORKTREE O TIP [N...]
# Checks out each selected commit of base..TIP (all by default; N counts
# from 1) in WORKTREE, builds the x86_64 VM kernel (configs/vm.config plus
# the series' KUnit configuration at TIP) incrementally in O (vmlinux;
# bzImage for the last selected commit and BISECT_KEEP's), then compiles
# the C files the patch touches, and the series' C files that include a
# header it touches, with W=1 and runs sparse on them.  Any diagnostic the
# base does not give, in the build, the W=1 compile, sparse or the
# hmm-tests build, fails the patch.  A patch that changes nothing the
# kernel build reads (tools/, Documentation/, C files and headers this
# configuration does not compile) is not rebuilt after its parent was.
# The worktree is left at the last selected commit with a complete build.
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

# The source tree path as the build's dependency files spell it (set
# after a build).
srcpath=

# build LABEL TARGET: configure (unless CONFIGURED=1) and build TARGET;
# LABEL.log gets the output.
build() {
	local label=$1 target=$2
	if [ "${CONFIGURED:-}" != 1 ]; then
		# The fragments' KUnit options do not exist before the patch adding them.
		KCONFIG_LAX=1 kconfig "$wt" "$o" x86_64 "${frags[@]}" 2>"$st/$label.kconfig.log" >&2 || {
			cat "$st/$label.kconfig.log"; return 1; }
	fi
	kmake -C "$wt" O="$o" "$target" > "$st/$label.log" 2>&1
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
# depended FILE: does an object of the build in O depend on FILE (a source
# or header of the tree)?  From the dependency lists kbuild keeps in .cmd
# files.
depended() {
	grep -rqlF --include='*.cmd' -- "$srcpath/$1" "$o" 2>/dev/null
}
# reads_nothing PREV C: the kernel build in O, complete at PREV, reads none
# of the files C changes (tools/, Documentation/, MAINTAINERS, kunitconfig
# files, or C sources and headers no object of this configuration depends
# on), so building C would give the same kernel.
reads_nothing() {
	local f
	[ -f "$o/vmlinux" ] || return 1
	while read -r f; do
		case "$f" in
		tools/*|Documentation/*|MAINTAINERS|*.kunitconfig) ;;
		*.c|*.h) ! depended "$f" || return 1 ;;
		*) return 1 ;;
		esac
	done < <(touched_files "$wt" "$1" "$2")
}
# includers HEADER...: the series' C files whose objects include a HEADER.
includers() {
	local f h
	for f in "${allc[@]}"; do
		[ -f "$o/$(dirname "$f")/.$(basename "${f%.c}").o.cmd" ] || continue
		for h in "$@"; do
			if grep -qF -- "$srcpath/$h" "$o/$(dirname "$f")/.$(basename "${f%.c}").o.cmd"; then
				echo "$f"; break
			fi
		done
	done
}

# The base is not built: the first commit's build is the starting point.
# Known diagnostics (base.keys) are those of the series' C files with W=1
# and sparse at the base and of its hmm-tests; the base is built whole
# (base_full) only when a patch gives a diagnostic they do not explain, or
# the first commit does not build, to tell what the base already gives.
stamp="$base $(cat "${frags[@]}" | sha1sum | cut -c1-12)"
if [ "$(cat "$st/base.stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -f "$st/base.keys" "$st/base.files" "$st/base.full" "$st/base.tests.done"
	echo "$stamp" > "$st/base.stamp"
fi
touch "$st/base.keys" "$st/base.files"
# built_at: the commit the objects in O were last built from, by this run.
built_at=
base_full() {
	local t; t=$(date +%s)
	[ -f "$st/base.full" ] && return 0
	git -C "$wt" checkout -q --detach "$base"
	built_at=
	build base bzImage || die "the base does not build (log: $st/base.log)"
	"$TOP/scripts/warnings.py" keys "$st/base.log" >> "$st/base.keys"
	sort -u -o "$st/base.keys" "$st/base.keys"
	touch "$st/base.full"
	echo "  base: built whole, $(wc -l < "$st/base.keys") known diagnostics ($(( $(date +%s) - t ))s)"
}
# base_extra: W=1/sparse at the base of the series' C files not yet
# known, and hmm-tests at the base, in O as built for a commit of the
# series (which tells what this configuration compiles).
base_extra() {
	local need=() f t; t=$(date +%s)
	for f in "${allc[@]}"; do grep -qxF "$f" "$st/base.files" || need+=("$f"); done
	[ ${#need[@]} -gt 0 ] || [ ! -f "$st/base.tests.done" ] || return 0
	git -C "$wt" checkout -q --detach "$base"
	built_at=
	extra base "${need[@]}" || die "W=1/sparse on the base failed (log: $st/base.w1.log)"
	tests base || die "hmm-tests does not build on the base (log: $st/base.tests.log)"
	"$TOP/scripts/warnings.py" keys "$st/base.w1.log" "$st/base.tests.log" >> "$st/base.keys"
	sort -u -o "$st/base.keys" "$st/base.keys"
	printf '%s\n' "${need[@]}" >> "$st/base.files"
	touch "$st/base.tests.done"
	echo "  base: W=1/sparse of ${#need[@]} touched C files and hmm-tests, $(wc -l < "$st/base.keys") known diagnostics ($(( $(date +%s) - t ))s)"
}

# BISECT_KEEP=COMMIT=DIR: when COMMIT (one of the series') builds cleanly,
# copy its bzImage and hmm-tests to DIR (check step 7 boots the fixes tip).
keep_c= keep_d=
if [ -n "${BISECT_KEEP:-}" ]; then
	keep_c=$(git -C "$wt" rev-parse --verify "${BISECT_KEEP%%=*}^{commit}") ||
		die "BISECT_KEEP: no commit ${BISECT_KEEP%%=*}"
	keep_d=${BISECT_KEEP#*=}
	rm -rf "$keep_d"
fi
last=${sel[$((${#sel[@]} - 1))]}

# check_commit N: build patch N and look at what it gives; sets problem,
# new (unknown diagnostics) and how (what was built).
check_commit() {
	local n=$1 files cfiles hdrs target=vmlinux
	c=${commits[$((n - 1))]}
	prev=$(git -C "$wt" rev-parse "$c^")
	label=$(printf 'patch%02d' "$n")
	git -C "$wt" checkout -q --detach "$c"
	mapfile -t files < <(touched_files "$wt" "$prev" "$c")
	mapfile -t cfiles < <(printf '%s\n' "${files[@]}" | grep '\.c$' | grep -v '^tools/' || true)
	mapfile -t hdrs < <(printf '%s\n' "${files[@]}" | grep '\.h$' | grep -v '^tools/' || true)
	# bzImage where it is booted (the fixes tip, the last commit), vmlinux
	# elsewhere.
	{ [ "$c" = "$keep_c" ] || [ "$n" = "$last" ]; } && target=bzImage
	problem= new= how=
	rm -f "$st/$label.log" "$st/$label.w1.log" "$st/$label.tests.log"
	if [ "$built_at" = "$prev" ] && [ "$target" = vmlinux ] && reads_nothing "$prev" "$c"; then
		# The kernel in O is this commit's as well.
		how="no kernel input changed"; cfiles=(); built_at=$c
		: > "$st/$label.log"; : > "$st/$label.w1.log"
	else
		local conf=
		[ "$built_at" = "$prev" ] && ! printf '%s\n' "${files[@]}" | grep -E '(^|/)Kconfig' >/dev/null && conf=1
		if ! CONFIGURED=$conf build "$label" "$target"; then
			problem="build failed"; built_at=
			return
		fi
		built_at=$c
		srcpath=$(readlink "$o/source" 2>/dev/null || (cd "$wt" && pwd))
		# The series' C files that include a touched header are checked
		# too.
		[ ${#hdrs[@]} -eq 0 ] || mapfile -t cfiles < <({ printf '%s\n' "${cfiles[@]}"; includers "${hdrs[@]}"; } | sed '/^$/d' | sort -u)
		how="$target, W=1/sparse: ${#cfiles[@]} C files"
	fi
	if ! extra "$label" "${cfiles[@]}"; then
		problem="W=1/sparse compile failed"; return
	fi
	if selftests_touched "$prev" "$c" && ! tests "$label"; then
		problem="hmm-tests does not build"; return
	fi
	if [ "$c" = "$keep_c" ]; then
		{ tests "$label.keep" && mkdir -p "$keep_d" &&
		  cp "$o/arch/x86/boot/bzImage" "$st/tests/hmm-tests" "$keep_d/"; } ||
			{ problem="saving its build to $keep_d (BISECT_KEEP) failed"; return; }
	fi
	local logs=("$st/$label.log" "$st/$label.w1.log")
	[ -f "$st/$label.tests.log" ] && selftests_touched "$prev" "$c" && logs+=("$st/$label.tests.log")
	new=$("$TOP/scripts/warnings.py" new "$st/base.keys" "${logs[@]}" 2>/dev/null || true)
	[ -z "$new" ] || problem="new diagnostics"
}

fail=0 first=1
for n in "${sel[@]}"; do
	t=$(date +%s)
	check_commit "$n"
	if [ "$first" = 1 ]; then
		first=
		# The first commit built gives what this configuration compiles:
		# the base's known diagnostics come next, then the commit's own
		# look (rebuilt where the base's sources were compiled).
		if [ "$problem" != "build failed" ]; then
			base_extra
			[ -n "$built_at" ] || check_commit "$n"
		fi
	fi
	if [ -n "$problem" ] && [ ! -f "$st/base.full" ] && { [ "$problem" = "build failed" ] || [ -n "$new" ]; }; then
		# A failure or diagnostic the base may give as well: build the
		# base whole and look again.
		echo "  [$n/$total] $problem: building the base whole to compare"
		base_full
		base_extra
		check_commit "$n"
	fi
	secs=$(( $(date +%s) - t ))
	if [ -z "$problem" ]; then
		echo "  [$n/$total] ok   $(git -C "$wt" log -1 --format=%s "$c") (${secs}s; $how)"
	else
		fail=1
		echo "  [$n/$total] FAIL $(git -C "$wt" log -1 --format=%s "$c"): $problem (${secs}s; logs $st/$label.*)"
		[ -n "$new" ] && echo "$new" | sed -n 1,20p | sed 's/^/      /'
		[ -z "$new" ] && grep -E 'error|Error' "$st/$label.log" "$st/$label.w1.log" "$st/$label.tests.log" 2>/dev/null | sed -n 1,10p | sed 's/^/      /' || true
	fi
done
exit $fail
