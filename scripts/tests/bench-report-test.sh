#!/usr/bin/env bash
# Tests of scripts/benchreport.py on a committed fixture:
# bench-report-fixture/raw is bench/raw of the committed run cut down (VM
# runs cmp1 and cmp2 of each kernel with only the 64 MiB plain migrations,
# and seq with only 8 and 64 MiB, repetitions 0-2 everywhere; the 64 MiB
# COW one-walk whole migration of repetition 1 given ioctl return -14, so
# that a left-out repetition is marked; plus, from the 2026-12-03 run, the
# drivers' sequences of seq and the hmm_range_fault() runs of cmp1 and
# cmp2 at 2 and 64 MiB, repetitions 0-2), with analysis.md; the report must
# be bench-report-fixture/expected.md exactly.  BENCHREPORT= tests another
# benchreport.py.  Regenerate expected.md (after an intended change of the
# report) with: bench-report-test.sh --update
set -u
d=$(cd "$(dirname "$0")" && pwd); f=$d/bench-report-fixture
br=${BENCHREPORT:-$d/../benchreport.py}
fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
report() {	# report RAWDIR OUTDIR: OUTDIR/results.md, with the fixture's analysis.md
	mkdir -p "$2" && cp "$f/analysis.md" "$2/" &&
		python3 "$br" "$1" "$2/results.md" "$2/plot.png" 2> "$2/stderr"
}
if [ "${1:-}" = --update ]; then
	report "$f/raw" "$tmp/u" || { cat "$tmp/u/stderr"; exit 1; }
	cp "$tmp/u/results.md" "$f/expected.md"
	echo "wrote $f/expected.md"
	exit 0
fi
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

# The fixture gives the expected report.
if ! report "$f/raw" "$tmp/a"; then
	bad "benchreport.py fails on the fixture: $(tail -3 "$tmp/a/stderr")"
elif diff -u "$f/expected.md" "$tmp/a/results.md" > "$tmp/a/diff"; then
	ok "the fixture gives expected.md"
else
	bad "the report differs from expected.md:"; head -40 "$tmp/a/diff"
fi
# The comparison notices a change of the data: one measurement changed
# (the 64 MiB present-pages two-walk setup of repetition 0: a 9 put in
# front of its ms) must change the report.
cp -a "$f/raw" "$tmp/raw2"
sed -i 's/^\(T present 64 two setup 0\) \([0-9.]*\) /\1 9\2 /' "$tmp/raw2/patched/seq/output.txt"
if cmp -s "$f/raw/patched/seq/output.txt" "$tmp/raw2/patched/seq/output.txt"; then
	bad "the mutation of the fixture changed nothing (its line format changed?)"
elif report "$tmp/raw2" "$tmp/b" && ! cmp -s "$f/expected.md" "$tmp/b/results.md"; then
	ok "a changed measurement changes the report"
else
	bad "a changed measurement leaves the report as it was"
fi
# Without analysis.md next to results.md, its text is not quoted.
mkdir -p "$tmp/c"
if python3 "$br" "$f/raw" "$tmp/c/results.md" "$tmp/c/plot.png" 2>/dev/null &&
   ! grep -qF "$(head -1 "$f/analysis.md")" "$tmp/c/results.md" &&
   grep -qF "$(head -1 "$f/analysis.md")" "$f/expected.md"; then
	ok "analysis.md is quoted only when present"
else
	bad "analysis.md quoting"
fi
exit $fail
