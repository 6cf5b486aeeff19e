#!/usr/bin/env bash
# checkpatch.sh TREE PATCH...: scripts/checkpatch.pl --strict of TREE on each
# PATCH (check step 2, and make export on the patches it rewrote).  A report
# whose type expect/checkpatch.allow allows for that patch, with its reason,
# is shown as allowed; any other fails.  The last line starts with
# "result: ".  Cover letters (0000-*) are not patches and are not checked.
. "$(dirname "$0")/common.sh"

tree=$1; shift
[ -f "$tree/scripts/checkpatch.pl" ] || die "no scripts/checkpatch.pl in $tree"
allow=$TOP/expect/checkpatch.allow
# checkpatch runs scripts/spdxcheck.py with the python3 on PATH, which
# needs ply and git (Debian's python3-ply and python3-git).
if ! python3 -c 'import ply, git' 2>/dev/null; then
	/usr/bin/python3 -c 'import ply, git' 2>/dev/null ||
		die "python3 lacks ply or git: apt-get install python3-ply python3-git (make deps)"
	mkdir -p "$WORK/pybin"; ln -sf /usr/bin/python3 "$WORK/pybin/python3"
	PATH=$WORK/pybin:$PATH
fi
bad=0 n=0
for p in "$@"; do
	name=$(basename "$p")
	case "$name" in 0000-*) continue ;; esac
	n=$((n + 1))
	out=$(cd "$tree" && perl scripts/checkpatch.pl --strict --show-types --no-summary --terse "$p" 2>&1 || true)
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		type=$(echo "$line" | sed -nE 's/^[^:]*:[0-9]*: (ERROR|WARNING|CHECK):([A-Z0-9_]+):.*/\2/p')
		if [ -n "$type" ] && [ -f "$allow" ] &&
		   awk -v n="$name" -v t="$type" '!/^#/ && NF >= 3 && $2 == t && (n ~ ("^" $1 "$")) { f = 1 } END { exit !f }' "$allow"; then
			echo "allowed ($type, expect/checkpatch.allow): $line"
			continue
		fi
		echo "$line"; bad=$((bad + 1))
	done <<< "$out"
done
[ $bad = 0 ] || { echo "result: $bad checkpatch --strict reports"; exit 1; }
echo "result: $n patches clean with --strict"
