#!/usr/bin/env bash
# Tests of scripts/profreport.py (make profile's report) on a small
# synthetic System.map and /proc/profile dumps: the counters are mapped with
# /proc/profile's step (its first word) from _stext, per function, per 1000
# migrated pages, and a dump that is missing or has no migrations fails.
set -u
d=$(cd "$(dirname "$0")" && pwd); p="python3 $d/../profreport.py"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $1"; }
no() { echo "FAIL: $1"; fail=1; }
cat > "$tmp/map" <<'M'
ffffffff81000000 T _stext
ffffffff81000000 T walk_a
ffffffff81000040 t walk_b
ffffffff81000080 T _etext
ffffffff81000100 t init_c
M
# step 4: index 1 is byte 4 (walk_a), index 16 byte 64 (walk_b), 40 is
# after _etext.  Base: 2 x 512 pages; patched: 1 x 1024 pages.
printf 'T present 2 plain whole 0 10.0 0 512\nT present 2 plain whole 1 10.0 0 512\nP 4\np 1 10\np 16 4\n' > "$tmp/b"
printf 'T present 4 plain whole 0 30.0 0 1024\nP 4\np 1 10\np 16 8\np 40 1\n' > "$tmp/q"
out=$($p base "$tmp/map" "$tmp/b" patched "$tmp/map" "$tmp/q" 2>&1) || no "the report runs ($out)"
# 1024 pages each: walk_a 10 ticks each (9.77 per 1000), walk_b 4 and 8
grep -Eq '^walk_b +3\.91 +7\.81 +\+3\.91$' <<< "$out" && ok "walk_b: step-sized buckets, per 1000 pages" || no "walk_b row ($out)"
grep -Eq '^walk_a +9\.77 +9\.77 +\+0\.00$' <<< "$out" && ok "walk_a unchanged" || no "walk_a row ($out)"
grep -Eq '^\(after _etext\) +0\.00 +0\.98' <<< "$out" && ok "ticks past _etext are named so" || no "after _etext row ($out)"
grep -q 'patched / base, median migration time: 3.000' <<< "$out" && ok "migration time ratio" || no "time ratio ($out)"
grep -Eq '^walk_b' <<< "$(grep -E '^(walk|\()' <<< "$out" | sed -n 1p)" && ok "largest difference first" || no "order ($out)"
printf 'T present 2 plain whole 0 10.0 0 512\n' > "$tmp/n"
$p base "$tmp/map" "$tmp/n" patched "$tmp/map" "$tmp/q" > /dev/null 2>&1 && no "a run without a dump fails" || ok "a run without a dump fails"
printf 'P 4\np 1 1\n' > "$tmp/z"
$p base "$tmp/map" "$tmp/z" patched "$tmp/map" "$tmp/q" > /dev/null 2>&1 && no "a kind without migrations fails" || ok "a kind without migrations fails"
$p base "$tmp/map" "$tmp/b" > /dev/null 2>&1 && no "base alone fails" || ok "base alone fails"
exit $fail
