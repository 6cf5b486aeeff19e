#!/usr/bin/env bash
# Tests of cover_text (scripts/common.sh), which make export and make send
# use to take a cover letter's subject and text out of git format-patch
# output, on a committed cover letter (fixtures/cover): the folded subject
# is joined, the generated shortlog, diffstat and base-commit/prerequisite
# lines are cut, and text that only looks like a shortlog is kept.
set -u
d=$(cd "$(dirname "$0")" && pwd); f=$d/fixtures/cover
# shellcheck source=../common.sh
. "$d/../common.sh"
set +e
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
cover_text "$f/0000-cover-letter.patch" > "$tmp/got"
if diff -u "$f/expected.txt" "$tmp/got"; then echo "ok: the subject and text of the cover letter"
else echo "FAIL: cover_text does not give fixtures/cover/expected.txt"; fail=1; fi
# Without a text (a fresh git format-patch cover letter): the placeholders.
sed '/^First paragraph/,/^- two$/c\*** BLURB HERE ***' "$f/0000-cover-letter.patch" > "$tmp/blank.patch"
got=$(cover_text "$tmp/blank.patch" | tail -1)
if [ "$got" = "*** BLURB HERE ***" ]; then echo "ok: a cover letter without a text gives the blurb placeholder"
else echo "FAIL: blank cover letter gives '$got'"; fail=1; fi
exit $fail
