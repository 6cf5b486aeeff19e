#!/usr/bin/env bash
# The workbench's own tests: every scripts/tests/*-test.sh (parsers and
# report generators on committed fixtures).  Check step 6 runs them first.
# Exit 1 when one fails, naming it.
set -u
d=$(cd "$(dirname "$0")" && pwd)
bad=()
for t in "$d"/*-test.sh; do
	name=$(basename "$t" .sh)
	if out=$("$t" 2>&1); then
		echo "ok: $name ($(grep -c '^ok' <<< "$out") checks)"
	else
		echo "FAIL: $name"; sed 's/^/    /' <<< "$out" | grep -v '^    ok' | sed -n 1,30p
		bad+=("$name")
	fi
done
[ ${#bad[@]} = 0 ] || { echo "workbench tests failing: ${bad[*]}"; exit 1; }
