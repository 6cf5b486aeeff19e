#!/usr/bin/env bash
# Tests of scripts/warnings.py on committed build logs (fixtures/warnings):
# the same diagnostic at another line, or in another checkout, is not new;
# a diagnostic the base does not give is.
set -u
d=$(cd "$(dirname "$0")" && pwd); w="python3 $d/../warnings.py"; f=$d/fixtures/warnings
fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() {	# check DESCRIPTION CONDITION...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
$w keys "$f/base.log" > "$tmp/keys"
check "a compiler warning's key is its relative path, kind and message" \
	grep -qxF "mm/hmm.c: warning: unused variable 'x' [-Wunused-variable]" "$tmp/keys"
check "make's own warnings are keyed without their numbers" \
	grep -q "^make\[N\]: warning: jobserver unavailable" "$tmp/keys"
rc=0; $w new "$tmp/keys" "$f/patched.log" > "$tmp/new" || rc=$?
check "new diagnostics make 'new' exit 1" [ "$rc" = 1 ]
check "the sparse warning the base does not give is new" \
	grep -q "migrate_device.c:55:1: sparse: warning: symbol 'migrate_vma_collect_start'" "$tmp/new"
check "and it is the only one (moved lines and other checkouts are not new)" [ "$(wc -l < "$tmp/new")" = 1 ]
rc=0; $w new "$tmp/keys" "$f/base.log" > /dev/null || rc=$?
check "the base's own log has nothing new" [ "$rc" = 0 ]
exit $fail
