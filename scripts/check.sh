#!/usr/bin/env bash
# make check: every step of the test pipeline on the two series in patches/
# (patches/fixes/, then patches/feature/ on top: steps 1-3 cover every patch
# of both, steps 4-8 the tip of the second), and their preparation for
# mailing (b4, nothing sent), each series on its own.
# One progress line per step with its time, then "N passed, N failed" as
# the last line; exit status non-zero when a step failed.  Steps that need a
# series are skipped (never passed) while patches/ holds none; the selftest
# steps then run on the base kernel.  Logs: $WORK/check-logs/.
. "$(dirname "$0")/common.sh"

T0=$(date +%s)
mkdir -p "$WORK"
# One check at a time: the worktree and build directories are shared.
exec 8>"$WORK/.check.lock"
flock -n 8 || die "another 'make check' is running (lock $WORK/.check.lock)"
LOGS=$WORK/check-logs
CW=$WORK/check                 # worktree: base + series
CO=$BUILD/check-x86            # VM kernel of the series (steps 3, 6, 7, 8)
rm -rf "$LOGS"; mkdir -p "$LOGS"
base=$(base_rev)
mapfile -t patches < <(series_patches)
NSTEPS=9
passed=0 failed=0 skipped=0
declare -A state=()

hms() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# step N NAME FUNCTION: run FUNCTION with its output in $LOGS/N-NAME.log.
# It returns 0 (pass), 77 (skip: its last line says why) or else (fail).
step() {
	local n=$1 name=$2 fn=$3 t rc log why
	log=$LOGS/$n-$name.log
	t=$(date +%s)
	printf '[%d/%d] %-12s ... (started at %s)\n' "$n" "$NSTEPS" "$name" "$(hms $((t - T0)))"
	set +e
	# The log gets everything; per-item progress lines ("  [n/N] ...", the
	# bisect step's one per patch) reach the terminal too.
	( set -e; "$fn" ) 2>&1 | tee "$log" |
		{ grep --line-buffered -E '^  \[[0-9]+/[0-9]+\] ' || true; }
	rc=${PIPESTATUS[0]}
	set -e
	local d; d=$(hms $(( $(date +%s) - t )))
	local total; total=$(hms $(( $(date +%s) - T0 )))
	why=$(grep -E '^result: ' "$log" | tail -1 | sed 's/^result: //' || true)
	if [ $rc = 0 ]; then
		passed=$((passed + 1)); state[$n]=pass
		printf '[%d/%d] %-12s PASS  %s (total %s)%s\n' "$n" "$NSTEPS" "$name" "$d" "$total" "${why:+  $why}"
	elif [ $rc = 77 ]; then
		skipped=$((skipped + 1)); state[$n]=skip
		[ -n "$why" ] || why=$(tail -1 "$log")
		printf '[%d/%d] %-12s SKIP  %s (total %s)  %s\n' "$n" "$NSTEPS" "$name" "$d" "$total" "$why"
	else
		failed=$((failed + 1)); state[$n]=fail
		printf '[%d/%d] %-12s FAIL  %s (total %s)%s\n' "$n" "$NSTEPS" "$name" "$d" "$total" "${why:+  $why}"
		grep -vE '^result: ' "$log" | tail -25 | sed 's/^/      /'
		printf '      (log: %s)\n' "$log"
	fi
}
skip() { echo "result: $*"; exit 77; }
need_series() {
	[ ${#patches[@]} -gt 0 ] || skip "patches/ holds no series"
	[ "${state[1]:-}" != fail ] || [ -n "$applied" ] || skip "the series does not apply (step 1)"
}

# Preparation: the check worktree at the base, the base's hmm-tests.
prepare() {
	fresh_worktree "$CW" "$base"
	build_hmm_tests "$CW" "$BUILD/check-base-hdr" "$BUILD/check-base-tests" 2>&1
}
applied=
tip=$base

s_apply() {
	[ ${#patches[@]} -gt 0 ] || skip "patches/ holds no series"
	"$TOP/scripts/verify.sh" "$CW"
	echo "result: ${#patches[@]} patches apply; the repo's copies match"
}
s_checkpatch() {
	[ ${#patches[@]} -gt 0 ] || skip "patches/ holds no series"
	"$TOP/scripts/checkpatch.sh" "$CW" "${patches[@]}"
}
s_bisect() {
	need_series
	# The fixes tip's kernel and hmm-tests are kept for step 7.
	BISECT_KEEP=${fixes_tip:+$fixes_tip=$BUILD/check-fixes-tip} \
		"$TOP/scripts/bisect.sh" "$CW" "$CO" "$tip"
	echo "result: ${#patches[@]} patches build one by one, no new W=1/sparse diagnostic"
}
# The touched C files a build directory did not compile (their Kconfig
# options are off there).
not_compiled() {
	local f miss=()
	while read -r f; do
		[ -f "$CW/$f" ] && [ ! -f "$1/${f%.c}.o" ] && miss+=("$f")
	done < <(touched_files "$CW" "$base" "$tip" | grep '\.c$' | grep -v '^tools/')
	[ ${#miss[@]} -eq 0 ] || echo "; not compiled in this configuration: ${miss[*]}"
}
s_variants() {
	need_series
	local v o frags k bad=0 t at name c
	# At the tip only: every fix is in it, and at the fixes tip these small
	# configurations compile almost none of the touched files (hmm.c and
	# test_hmm need options only the feature's KUnit suite selects), at 4-5
	# minutes a build.  Step 3 builds every fix in the full configuration.
	for at in all; do
	if [ "$at" = fixes ]; then c=$fixes_tip; name="fixes tip"; else c=$tip; name="tip"; fi
	git -C "$CW" checkout -q --detach "$c"
	# A small kernel (tinyconfig + configs/variant.config + the series'
	# KUnit configuration) keeps the two extra x86_64 builds cheap.
	mapfile -t frags < <(series_kunitconfigs "$CW" commit)
	for v in nothp nodev; do
		o=$BUILD/check-$v; t=$(date +%s)
		KCONFIG_BASE=tinyconfig KCONFIG_LAX=1 kconfig "$CW" "$o" x86_64 \
			"$TOP/configs/variant.config" "${frags[@]}" "$TOP/configs/$v.config"
		k=$(kconfig_missing "$o" "$TOP/configs/$v.config")
		[ -z "$k" ] || { echo "$name, $v: Kconfig kept $k"; bad=1; continue; }
		if kmake -C "$CW" O="$o" vmlinux > "$LOGS/4-$at-$v.build.log" 2>&1; then
			echo "$name, $v: vmlinux builds ($(( $(date +%s) - t ))s)$(not_compiled "$o")"
		else
			echo "$name, $v: build failed ($LOGS/4-$at-$v.build.log)"; grep -E 'error' "$LOGS/4-$at-$v.build.log" | sed -n 1,10p || true; bad=1
		fi
	done
	# 32-bit x86 with PAE, where hmm pfns need all their pfn bits: the
	# hmm.h layout checks, mm/hmm.c and the KUnit suite with W=1, any
	# warning failing.  Only what hmm pulls in is compiled (no vmlinux).
	o=$BUILD/check-i386; t=$(date +%s)
	KCONFIG_BASE=tinyconfig kconfig "$CW" "$o" i386 "$TOP/configs/i386.config"
	local objs=(mm/hmm.o) f
	for f in $(touched_files "$CW" "$base" "$c" | grep '^lib/tests/.*\.c$' || true); do objs+=("${f%.c}.o"); done
	if kmake -C "$CW" O="$o" ARCH=i386 W=1 "${objs[@]}" > "$LOGS/4-i386.build.log" 2>&1 &&
	   ! grep -q 'warning:' "$LOGS/4-i386.build.log"; then
		echo "$name, i386 (PAE): ${objs[*]} compile without warnings ($(( $(date +%s) - t ))s)"
	else
		echo "$name, i386 (PAE): ${objs[*]} do not compile cleanly ($LOGS/4-i386.build.log)"
		grep -E 'warning:|error:' "$LOGS/4-i386.build.log" | sed -n 1,10p || true; bad=1
	fi
	t=$(date +%s)
	local rc=0
	"$TOP/scripts/kunit.sh" um-build "$CW" "$BUILD/check-um" commit > "$LOGS/4-$at-um.build.log" 2>&1 || rc=$?
	if [ $rc = 77 ]; then
		# No series suite: a plain UML KUnit kernel (configs/um.kunitconfig).
		rc=0
		KUNITCONFIG="$TOP/configs/um.kunitconfig" \
			"$TOP/scripts/kunit.sh" um-build "$CW" "$BUILD/check-um" commit > "$LOGS/4-$at-um.build.log" 2>&1 || rc=$?
	fi
	if [ $rc = 0 ]; then
		echo "$name, um: builds ($(( $(date +%s) - t ))s)$(not_compiled "$BUILD/check-um")"
	else
		echo "$name, um: build failed ($LOGS/4-$at-um.build.log)"; tail -15 "$LOGS/4-$at-um.build.log"; bad=1
	fi
	done
	git -C "$CW" checkout -q --detach "$tip"
	# The xe RFC: each of its patches, its drivers/ files with DRM_XE.
	local xrc=0 xe=
	"$TOP/scripts/xe.sh" "$CW" "$tip" > "$LOGS/4-xe.log" 2>&1 || xrc=$?
	case $xrc in
	0) xe=", the xe patches build with DRM_XE"; grep -E '^  ' "$LOGS/4-xe.log" ;;
	77) ;;
	*) echo "xe: $(tail -1 "$LOGS/4-xe.log") ($LOGS/4-xe.log)"; tail -12 "$LOGS/4-xe.log"; bad=1 ;;
	esac
	git -C "$CW" checkout -q --detach "$tip"
	[ $bad = 0 ] || { echo "result: a variant does not build"; exit 1; }
	echo "result: the tip builds without THP, without ZONE_DEVICE/DEVICE_PRIVATE, on UML, and hmm compiles on 32-bit x86$xe"
}
kdoc_at() {
	# kdoc_at COMMIT NAME: no new kernel-doc warning at COMMIT
	# The files are read from git, not checked out: a checkout would
	# make the next build of the worktree recompile what they touch.
	local f files=() bad=0 d=$LOGS/kdoc-base-$2 dc=$LOGS/kdoc-$2
	mapfile -t files < <(touched_files "$CW" "$base" "$1" | grep -E '\.(c|h)$' | grep -v '^tools/' || true)
	[ ${#files[@]} -gt 0 ] || { echo "$2: no kernel C file touched"; return 0; }
	rm -rf "$d" "$dc"; mkdir -p "$d" "$dc"
	local have=()
	for f in "${files[@]}"; do
		git -C "$CW" cat-file -e "$1:$f" 2>/dev/null || continue
		have+=("$f")
		mkdir -p "$dc/$(dirname "$f")"; git -C "$CW" show "$1:$f" > "$dc/$f"
		if git -C "$CW" cat-file -e "$base:$f" 2>/dev/null; then
			mkdir -p "$d/$(dirname "$f")"; git -C "$CW" show "$base:$f" > "$d/$f"
		fi
	done
	kdoc_keys() { sed -E 's/^(warning|Warning|error|Error): *//; s/:[0-9]+(:[0-9]+)?/:/g; s/ line [0-9]+/ line/g' | sort -u; }
	(cd "$d" && for f in "${have[@]}"; do [ -f "$f" ] && python3 "$CW/scripts/kernel-doc" -Wall -none "$f" 2>&1; done) | kdoc_keys > "$LOGS/5-$2-base.keys" || true
	(cd "$dc" && for f in "${have[@]}"; do python3 "$CW/scripts/kernel-doc" -Wall -none "$f" 2>&1; done) > "$LOGS/5-$2.out" || true
	while IFS= read -r line; do
		k=$(echo "$line" | kdoc_keys)
		[ -n "$k" ] || continue
		grep -qxF -- "$k" "$LOGS/5-$2-base.keys" || { echo "new: $line"; bad=$((bad + 1)); }
	done < "$LOGS/5-$2.out"
	echo "$2: ${#have[@]} touched files, $bad new kernel-doc warnings"
	[ $bad = 0 ]
}
s_kerneldoc() {
	need_series
	local bad=0
	[ -z "$fixes_tip" ] || kdoc_at "$fixes_tip" fixes || bad=1
	kdoc_at "$tip" tip || bad=1
	[ $bad = 0 ] || { echo "result: new kernel-doc warnings"; exit 1; }
	echo "result: no new kernel-doc warning at the fixes tip nor at the tip"
}
s_kunit() {
	need_series
	git -C "$CW" checkout -q --detach "$tip"
	local rc=0
	# The workbench's own parsers and report generators, on committed
	# fixtures (KUnit JSON, hmm-tests TAP, build warnings, cover letters,
	# the benchmark report).
	"$TOP/scripts/tests/run.sh" ||
		{ echo "result: the workbench's own tests fail (scripts/tests/run.sh)"; exit 1; }
	# UML: each case as expect/kunit-um.expect says (a new skip fails).
	KUNIT_EXPECT="$TOP/expect/kunit-um.expect" \
		"$TOP/scripts/kunit.sh" um "$CW" "$BUILD/check-um" commit || rc=$?
	[ $rc != 77 ] || skip "the series adds no KUnit suite (.kunitconfig)"
	# x86_64: the tip's VM kernel, which step 3 built with the suites in
	# and every option of the kunitconfig that runs every case, booted by
	# kunit.py exec --arch=x86_64 (make kunit-x86 builds a kunit.py kernel
	# of its own instead); none may skip.
	local rc2=0
	"$TOP/scripts/kernel.sh" "$CW" "$CO" "$CO-tests" > "$LOGS/6-kernel.log" 2>&1 ||
		{ echo "result: the tip's VM kernel does not build ($LOGS/6-kernel.log)"; exit 1; }
	KUNIT_NO_SKIP=1 "$TOP/scripts/kunit.sh" x86-exec "$CW" "$CO" commit || rc2=$?
	# That kernel is not kunit.py's: it must have run every case UML
	# knows of (expect/kunit-um.expect), not only passed what it ran.
	[ $rc2 != 0 ] || python3 "$TOP/scripts/kunitjson.py" covers "$CO/kunit.json" \
		"$TOP/expect/kunit-um.expect" || rc2=1
	[ $rc = 0 ] && [ $rc2 = 0 ] || { echo "result: KUnit failed (UML rc $rc, x86_64 rc $rc2)"; exit 1; }
	echo "result: KUnit passes in UML and on x86_64"
}
# pick_accel BZIMAGE: the accelerator every later VM of this check uses
# (VM_ACCEL), from scripts/vm.sh's probe of BZIMAGE, unless set already:
# the host's KVM does not change within a check.
pick_accel() {
	[ "${VM_ACCEL:-auto}" = auto ] || return 0
	VM_ACCEL=$("$TOP/scripts/vm.sh" --accel "$1") || VM_ACCEL=tcg
	export VM_ACCEL
	echo "QEMU accelerator for the VMs of this check: $VM_ACCEL"
}
# vm_step LABEL HMM_TESTS [BZIMAGE]: hmm-tests in the VM on the series tip's
# kernel (or BZIMAGE), compared with the base's results.
vm_step() {
	local label=$1 bin=$2 image=${3:-} rc=0
	if [ -z "$image" ]; then
		git -C "$CW" checkout -q --detach "$tip"
		# Step 7 makes sure the kernel is built; step 8 boots the same one.
		if [ "$label" = patched ] || [ ! -f "$CO/arch/x86/boot/bzImage" ]; then
			"$TOP/scripts/kernel.sh" "$CW" "$CO" "$CO-tests"
		fi
		image=$CO/arch/x86/boot/bzImage
	fi
	"$TOP/scripts/vm.sh" "$image" "$LOGS/vm-$label" "$bin" || rc=$?
	echo "kernel log: $LOGS/vm-$label/console.log; test output: $LOGS/vm-$label/tests.tap"
	# Compare what did run even when the VM did not finish (timeout, panic):
	# the comparison names the tests that were reached and how they ended.
	local r=0
	python3 "$TOP/scripts/hmmtap.py" compare "$LOGS/vm-$label" "$TOP/expect/hmm-tests.base" \
		$([ ${#patches[@]} -gt 0 ] || echo --base) > "$LOGS/vm-$label/compare" || r=$?
	cat "$LOGS/vm-$label/compare"
	if [ $rc != 0 ]; then
		echo "result: the VM run did not finish (scripts/vm.sh exit $rc: $(cat "$LOGS/vm-$label/status" 2>/dev/null || echo 'no status')); see the kernel log"
		exit 1
	fi
	echo "result: $(head -1 "$LOGS/vm-$label/compare")$([ ${#patches[@]} -eq 0 ] && echo ' [base kernel: no series]')"
	return "$r"
}
s_mail() {
	need_series
	# make send mails as the sender of git config: a test identity here,
	# which every email must carry as author and sign-off.
	GIT_CONFIG_PARAMETERS="'user.name=Check Sender' 'user.email=check.sender@example.com'" \
		"$TOP/scripts/send.sh" "$LOGS/mail"
	echo "result: b4 wrote the emails of every series (nothing sent), each authored and signed off by the test sender; applied with git am in order they give each series' tree"
}
s_selftests() {
	# The fixes series on its own first (its tip as step 3 built it), then
	# both series.
	local r1=0 r2=0 k=$BUILD/check-fixes-tip
	if [ -n "$fixes_tip" ] && [ "$fixes_tip" != "$tip" ]; then
		[ -f "$k/bzImage" ] && [ -f "$k/hmm-tests" ] ||
			{ echo "result: no build of the fixes tip (step 3 keeps it in $k)"; exit 1; }
		( vm_step fixes "$k/hmm-tests" "$k/bzImage" ) > "$LOGS/7-fixes.log" 2>&1 || r1=$?
		sed 's/^result: /fixes tip: /' "$LOGS/7-fixes.log"
	fi
	( vm_step patched "$CO-tests/hmm-tests" ) || r2=$?
	[ $r1 = 0 ] || { echo "result: hmm-tests on the fixes tip fail (log $LOGS/7-fixes.log)"; exit 1; }
	return $r2
}
s_regress()   { vm_step base-tests "$BUILD/check-base-tests/hmm-tests"; }

echo "make check: ${#patches[@]} patches in patches/ ($(for n in "${SERIES_ALL[@]}"; do printf '%s %s ' "$(series_patches "$n" | wc -l)" "$n"; done | sed 's/ $//')), base $(git -C "$KTREE" log -1 --format='%h %s' "$base")"
t=$(date +%s)
set +e
( set -e; prepare ) > "$LOGS/0-prepare.log" 2>&1
rc=$?
set -e
if [ $rc != 0 ]; then
	echo "preparation failed (log: $LOGS/0-prepare.log)"; tail -20 "$LOGS/0-prepare.log"
	echo "0 passed, 1 failed"; exit 1
fi
echo "[0/$NSTEPS] prepare      done  $(hms $(( $(date +%s) - t ))) (check worktree, base hmm-tests)"
step 1 apply s_apply
fixes_tip=
if [ ${#patches[@]} -gt 0 ] && [ "$(git -C "$CW" rev-list --count "$base..HEAD")" = ${#patches[@]} ]; then
	applied=1; tip=$(git -C "$CW" rev-parse HEAD)
	nf=$(series_patches fixes | wc -l)
	[ "$nf" = 0 ] || fixes_tip=$(git -C "$CW" rev-list --reverse "$base..$tip" | sed -n "${nf}p")
fi
step 2 checkpatch s_checkpatch
step 3 bisect s_bisect
step 4 variants s_variants
step 5 kernel-doc s_kerneldoc
# One KVM probe for the VMs of steps 6-8 (step 3 built the tip's kernel).
if [ -f "$CO/arch/x86/boot/bzImage" ]; then
	pick_accel "$CO/arch/x86/boot/bzImage" > "$LOGS/accel.log" 2>&1 || true
	tail -1 "$LOGS/accel.log"
fi
step 6 kunit s_kunit
step 7 selftests s_selftests
step 8 regression s_regress
step 9 mail s_mail
echo "total $(hms $(( $(date +%s) - T0 ))); logs in $LOGS"
echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
