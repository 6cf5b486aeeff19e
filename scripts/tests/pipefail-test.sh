#!/usr/bin/env bash
# The workbench's scripts run with set -e and pipefail (scripts/common.sh).
# There a reader that stops early (grep -q, grep -m, head) can kill the
# writer with SIGPIPE, and the pipeline then fails (141) although the reader
# found what it wanted: make send once ended silently that way, after b4
# had written every email, on a fresh kernel tree.  This test checks that
#  - no script pipes into such a reader (sed -n 1,Np and grep >/dev/null
#    read all their input);
#  - the ERR trap of common.sh names a command that ends a script through
#    set -e, so that such an exit is never silent again.
set -u
d=$(cd "$(dirname "$0")" && pwd); top=$(cd "$d/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0

files=("$top"/scripts/*.sh "$top"/scripts/vm/*.sh "$top"/.ci/run "$top"/Makefile)
if grep -nE '\|[[:space:]]*(head([[:space:]]|$)|grep[[:space:]]+-[[:alpha:]]*[qm])' "${files[@]}" > "$tmp/hits"; then
	echo "FAIL: a pipeline ends in a reader that stops early (SIGPIPE under pipefail):"
	sed "s|^$top/|    |" "$tmp/hits"; fail=1
else
	echo "ok: no pipeline of the scripts ends in head, grep -q or grep -m"
fi

# A pipeline whose writer dies of SIGPIPE ends the script with a message.
cat > "$tmp/sigpipe.sh" <<EOF
. "$top/scripts/common.sh"
first=\$(seq 100000 | head -1)
echo "not reached: \$first"
EOF
out=$(bash "$tmp/sigpipe.sh" 2>&1); rc=$?
if [ $rc = 141 ] && grep -qF 'error: sigpipe.sh:2: "first=$(seq 100000 | head -1)" exited with 141' <<< "$out" &&
   ! grep -q 'not reached' <<< "$out"; then
	echo "ok: a set -e exit names its command and status"
else
	echo "FAIL: the SIGPIPE exit gave status $rc and: $out"; fail=1
fi
# The reader that the scripts use instead keeps the pipeline's status 0.
cat > "$tmp/sed.sh" <<EOF
. "$top/scripts/common.sh"
first=\$(seq 100000 | sed -n 1p)
echo "first=\$first"
EOF
out=$(bash "$tmp/sed.sh" 2>&1); rc=$?
if [ $rc = 0 ] && [ "$out" = "first=1" ]; then echo "ok: sed -n 1p takes the first line with status 0"
else echo "FAIL: sed -n 1p gave status $rc and: $out"; fail=1; fi
# Under set +e (a step's own error handling) the trap says nothing.
cat > "$tmp/quiet.sh" <<EOF
. "$top/scripts/common.sh"
set +e
false
echo "rc=\$?"
EOF
out=$(bash "$tmp/quiet.sh" 2>&1)
if [ "$out" = "rc=1" ]; then echo "ok: nothing is reported under set +e, and \$? is kept"
else echo "FAIL: under set +e: $out"; fail=1; fi
exit $fail
