#!/usr/bin/env bash
# make send: prepare the two series of patches/ for mailing with b4; nothing
# is sent.
#   send.sh [OUTDIR]        default $WORK/send; SERIES=fixes|feature|xe for one
# For each series, in order (fixes, then feature), a worktree at the base
# (.work/send-<series>, branch b4-send-<series>) gets the series with git am
# (the feature on top of the fixes), b4 prep enrolls the series' own commits
# and takes the cover letter of patches/<series>/0000-cover-letter.patch,
# b4 prep --auto-to-cc fills To/Cc from scripts/get_maintainer.pl on the
# patched tree (MAINTAINERS as the series changes it), and b4 send --no-sign
# -o writes the would-be emails to OUTDIR/<series>/.  The feature's cover
# letter names the 7.3 base and the fixes it needs (base-commit:,
# prerequisite-patch-id:).  Then the round trip: the emails, applied in
# order with git am to a fresh base, must give each series' tree.
#
# The emails are the sender's: every patch is re-authored and signed off
# with `git config user.name` and `user.email` (of the kernel tree, which
# includes the global ones), and the placeholder sign-off of the committed
# patches is dropped.  Signing off certifies the Developer's Certificate of
# Origin (Documentation/process/submitting-patches.rst) for each patch:
# only do it for patches you may submit under the kernel's licence.
. "$(dirname "$0")/common.sh"

# The committed patches' placeholder identity, which nothing mailed keeps.
PLACEHOLDER='HMM Walk <hmmwalk@example.org>'

out=$(realpath -m "${1:-$WORK/send}")
name=$(git -C "$KTREE" config user.name || true)
email=$(git -C "$KTREE" config user.email || true)
[ -n "$name" ] && [ -n "$email" ] ||
	die "the emails are yours: set git config user.name and user.email (for example git config --global user.name 'Your Name'), then run make send again"
[ "$name <$email>" != "$PLACEHOLDER" ] ||
	die "git config user.name/user.email is the series' placeholder identity ($PLACEHOLDER): set your own"
sender="$name <$email>"

# SERIES="fixes feature" (the default), "fixes" or "feature".
read -r -a want <<< "${SERIES:-}"
mapfile -t names < <(series_names "${want[@]}")
[ ${#names[@]} -gt 0 ] || exit 1
for s in "${names[@]}"; do
	[ -n "$(series_patches "$s")" ] || die "patches/$s/ holds no patch"
done
base=$(base_rev)

# b4 prep needs a b4 that imports b4.ez with the system's python3 and
# pygit2: make deps installs one from the system's suites (bookworm: 0.12).
command -v b4 >/dev/null && /usr/bin/python3 -c 'import b4.ez' 2>/dev/null ||
	die "b4 prep cannot run with the installed b4 (it cannot import b4.ez): run make deps, which installs the b4 of the system's suites"
b4cmd=(b4)
msg "b4 $("${b4cmd[@]}" --version 2>/dev/null)"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/resign" <<'EOT'
#!/bin/sh
set -e
git log -1 --format=%B | grep -vxF "Signed-off-by: $PLACEHOLDER" > "$RESIGN_MSG" || true
git commit -q --amend --reset-author -s -F "$RESIGN_MSG"
EOT
chmod +x "$tmp/resign"
printf '#!/bin/sh\ncp "%s" "$1"\n' "$tmp/cover" > "$tmp/editor"
chmod +x "$tmp/editor"
gm() { (cd "$1" && perl scripts/get_maintainer.pl --no-git --no-git-fallback -f "$2"); }
hmm_people() { gm "$1" lib/test_hmm.c | grep 'HMM - Heterogeneous' | sed 's/ (.*//' | sort; }
# addrs EMAIL HEADER: the addresses of that header, one per line.
addrs() {
	python3 - "$1" "$2" <<'PY' | sort -u
import email, email.utils, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
for _, a in email.utils.getaddresses(m.get_all(sys.argv[2], [])):
    if a:
        print(a.lower())
PY
}
rt=$WORK/send-rt
declare -A tips=()
summary=()

for s in "${names[@]}"; do
	wt=$WORK/send-$s
	fresh_worktree "$wt" "$base" "b4-send-$s"
	# The series this one goes on (the fixes, for the feature) as the
	# committed patches have it: only the series' own commits are mailed.
	for p in "${SERIES_ALL[@]}"; do
		[ "$p" != "$s" ] || break
		mapfile -t pp < <(series_patches "$p")
		git -C "$wt" am -q "${pp[@]}" || die "patches/$p/ does not apply to the base ($base)"
	done
	from=$(git -C "$wt" rev-parse HEAD)
	mapfile -t pp < <(series_patches "$s")
	git -C "$wt" am -q "${pp[@]}" ||
		die "patches/$s/ does not apply to the base ($base)$([ "$from" = "$base" ] || echo " with the series before it")"

	# The sender's authorship and sign-off, in place of the placeholder's.
	PLACEHOLDER=$PLACEHOLDER RESIGN_MSG=$tmp/msg \
		git -C "$wt" -c user.name="$name" -c user.email="$email" \
		rebase -q --exec "$tmp/resign" "$from" >&2 ||
		die "re-signing the $s patches as $sender failed (worktree $wt)"
	tips[$s]=$(git -C "$wt" rev-parse HEAD)

	# Identity and a sendemail setting, for this run only: b4 refuses to
	# write emails without a way to send them, even with -o.
	cover_text "$PATCHDIR/$s/0000-cover-letter.patch" > "$tmp/cover"
	o=$out/$s
	(
		export GIT_CONFIG_PARAMETERS="'user.name=$name' 'user.email=$email' 'sendemail.smtpserver=/bin/false'"
		cd "$wt"
		"${b4cmd[@]}" prep -e "$from" >&2
		# The xe conversion is compile-tested only: an RFC.
		[ "$s" != xe ] || "${b4cmd[@]}" prep --set-prefixes RFC >&2
		EDITOR=$tmp/editor "${b4cmd[@]}" prep --edit-cover >&2
		"${b4cmd[@]}" prep --auto-to-cc >&2
		rm -rf "$o"
		"${b4cmd[@]}" send --no-sign -o "$o" >&2
	) || die "b4 failed for the $s series (worktree $wt)"

	mapfile -t mails < <(ls "$o"/*.eml 2>/dev/null | sort)
	[ ${#mails[@]} = $(( ${#pp[@]} + 1 )) ] ||
		die "b4 wrote ${#mails[@]} emails to $o, expected ${#pp[@]} patches and a cover letter"
	# Every email is the sender's: From: and, for patches, a
	# Signed-off-by: of the sender and none of the placeholder.
	for m in "${mails[@]}"; do
		grep -qxF "From: $sender" "$m" || die "$(basename "$m") is not from $sender"
		! grep -qF "$PLACEHOLDER" "$m" || die "$(basename "$m") still names $PLACEHOLDER"
	done
	for m in "${mails[@]:1}"; do
		grep -qxF "Signed-off-by: $sender" "$m" ||
			die "$s/$(basename "$m") is not signed off by $sender"
	done
	to=$(addrs "${mails[0]}" To | wc -l)
	cc=$(addrs "${mails[0]}" Cc | wc -l)
	[ "$to" -gt 0 ] || die "the $s cover letter has no To: (get_maintainer.pl found nobody?)"

	# The base and what the series needs, in the cover letter: b4 0.12
	# names the commit it was enrolled on, which for the feature is the
	# local tip of the fixes; git format-patch --base (the committed cover
	# letter) names the 7.3 base and the patch-id of every fix instead, the
	# trailers b4 writes for a series with dependencies.
	want=$(sed -n '/^base-commit: /,$p' "$PATCHDIR/$s/0000-cover-letter.patch" | grep -E '^(base-commit|prerequisite-patch-id): ')
	[ "$(echo "$want" | sed -n 1p)" = "base-commit: $(git -C "$KTREE" rev-parse "$base")" ] ||
		die "patches/$s/0000-cover-letter.patch does not name the base $base: run make export"
	python3 - "${mails[0]}" "$want" <<'PY' || die "cannot set the base-commit trailers of ${mails[0]}"
import sys
path, want = sys.argv[1], sys.argv[2]
lines = open(path).read().split('\n')
idx = [i for i, l in enumerate(lines) if l.startswith('base-commit: ')]
if len(idx) != 1:
    sys.exit('expected one base-commit: line, found %d' % len(idx))
i = idx[0]
j = i + 1
while j < len(lines) and lines[j].startswith('prerequisite-'):
    j += 1
lines[i:j] = want.split('\n')
open(path, 'w').write('\n'.join(lines))
PY
	case "$s" in
	fixes)
		# For mm-hotfixes: Andrew Morton and linux-mm get the series.
		addrs "${mails[0]}" To > "$tmp/rcpt"; addrs "${mails[0]}" Cc >> "$tmp/rcpt"
		grep -qx 'akpm@linux-foundation.org' "$tmp/rcpt" ||
			die "the fixes cover letter is not addressed to Andrew Morton (akpm@linux-foundation.org)"
		grep -qx 'linux-mm@kvack.org' "$tmp/rcpt" ||
			die "the fixes cover letter does not go to linux-mm@kvack.org"
		;;
	esac
	summary+=("$s: ${#mails[@]} emails in $o from $sender, every patch signed off by $sender (cover letter: $to To, $cc Cc, from get_maintainer.pl)")
done

# Round trip: the emails (not the cover letters) onto a fresh base, in
# order; a series not written in this run (SERIES=feature) goes on as
# patches/ has it.  The feature's prerequisite-patch-id lines must be the
# patch-ids of the fixes as applied.
fresh_worktree "$rt" "$base"
rtmsg=()
for s in "${SERIES_ALL[@]}"; do
	from=$(git -C "$rt" rev-parse HEAD)
	if [ -n "${tips[$s]:-}" ]; then
		mapfile -t mails < <(ls "$out/$s"/*.eml | sort)
		git -C "$rt" am -q "${mails[@]:1}" ||
			die "the $s emails in $out/$s do not apply with git am$([ "$s" = fixes ] || echo ' after the fixes')"
		git -C "$rt" diff --quiet "${tips[$s]}" HEAD -- ||
			die "the $s emails, applied with git am, do not give the tree of patches/$s/"
		rtmsg+=("$s: $(git -C "$rt" rev-list --count "$from..HEAD") emails")
		if [ "$s" != fixes ]; then
			# What git format-patch --base names for the series as
			# applied from the emails (git 2.39 computes some of these
			# ids unlike git patch-id --stable: compare like with like).
			first=$(git -C "$rt" rev-list --reverse "$from..HEAD" | sed -n 1p)
			git -C "$rt" format-patch --stdout --base="$base" "$from..$first" |
				grep '^prerequisite-patch-id: ' | cut -d' ' -f2 > "$tmp/have"
			grep '^prerequisite-patch-id: ' "${mails[0]}" | cut -d' ' -f2 > "$tmp/want"
			[ "$(wc -l < "$tmp/have")" = "$(git -C "$rt" rev-list --count "$base..$from")" ] &&
			cmp -s "$tmp/have" "$tmp/want" ||
				die "the $s cover letter's prerequisite-patch-id lines are not those of the series before it as applied"
		fi
	else
		mapfile -t pp < <(series_patches "$s")
		git -C "$rt" am -q "${pp[@]}" || die "patches/$s/ does not apply for the round trip"
	fi
	[ "$s" != "${names[-1]}" ] || break
done
n=$(git -C "$rt" rev-list --count "$base..HEAD")

# MAINTAINERS-fragment applies to the base's MAINTAINERS, and with the
# series get_maintainer.pl gives the series' new files the people and list
# of the HMM entry.
if [ -n "${tips[feature]:-}" ]; then
	wt=$WORK/send-feature
	git -C "$rt" checkout -q "$base" -- MAINTAINERS
	git -C "$rt" apply --check "$TOP/MAINTAINERS-fragment" ||
		die "MAINTAINERS-fragment does not apply to the base's MAINTAINERS"
	git -C "$rt" checkout -q HEAD -- MAINTAINERS
	[ -n "$(hmm_people "$wt")" ] || die "get_maintainer.pl finds no HMM entry for lib/test_hmm.c"
	for f in $(git -C "$wt" diff --name-only --diff-filter=A "$base" "${tips[feature]}" -- lib mm include); do
		missing=$(comm -23 <(hmm_people "$wt") <(gm "$wt" "$f" | grep 'HMM - Heterogeneous' | sed 's/ (.*//' | sort))
		[ -z "$missing" ] || die "get_maintainer.pl misses for $f: $missing"
	done
fi
git -C "$KTREE" worktree remove --force "$rt"
printf '%s\n' "${summary[@]}"
echo "nothing sent; round trip (${rtmsg[*]}): applied with git am in order on the base, the emails give each series' tree ($n commits on the base)"
