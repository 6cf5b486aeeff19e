#!/usr/bin/env bash
# make send: prepare the series in patches/ for mailing with b4; nothing is
# sent.
#   send.sh [OUTDIR]        default $WORK/send
# A worktree at the base gets patches/ with git am (branch b4-send), b4 prep
# enrolls it and takes the cover letter of patches/0000-cover-letter.patch,
# b4 prep --auto-to-cc fills To/Cc from scripts/get_maintainer.pl on the
# patched tree (MAINTAINERS as the series changes it), and b4 send --no-sign
# -o writes the would-be emails to OUTDIR.  Then the round trip: the emails,
# applied with git am to a fresh base, must give the same tree.
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
name=$(git -C "$KERNEL" config user.name || true)
email=$(git -C "$KERNEL" config user.email || true)
[ -n "$name" ] && [ -n "$email" ] ||
	die "the emails are yours: set git config user.name and user.email (for example git config --global user.name 'Your Name'), then run make send again"
[ "$name <$email>" != "$PLACEHOLDER" ] ||
	die "git config user.name/user.email is the series' placeholder identity ($PLACEHOLDER): set your own"
sender="$name <$email>"

mapfile -t patches < <(series_patches)
[ ${#patches[@]} -gt 0 ] || die "patches/ holds no series"
base=$(base_rev)

# b4 prep needs b4.ez, which b4 0.16 (from sid) cannot import with
# bookworm's pygit2; bookworm's own b4 0.12 can, and is enough here.
b4cmd=(b4)
if ! command -v b4 >/dev/null || ! /usr/bin/python3 -c 'import b4.ez' 2>/dev/null; then
	d=$CACHE/b4-bookworm
	if [ ! -f "$d/ok" ]; then
		msg "fetching bookworm's b4 (b4 prep cannot run with the installed one)"
		rm -rf "$d"; mkdir -p "$d"
		(cd "$d" && apt-get -q download "b4/bookworm" >&2) ||
			{ [ "$(id -u)" = 0 ] && apt-get -q update >&2 &&
			  (cd "$d" && apt-get -q download "b4/bookworm" >&2); } ||
			die "apt-get download b4/bookworm failed: run apt-get update, or install a b4 whose 'b4 prep' works"
		dpkg-deb -x "$d"/b4_*.deb "$d/root"
		touch "$d/ok"
	fi
	b4cmd=(env "PYTHONPATH=$d/root/usr/lib/python3/dist-packages" /usr/bin/python3
	       -c 'import sys; from b4.command import cmd; sys.argv[0] = "b4"; sys.exit(cmd())')
fi
msg "b4 $("${b4cmd[@]}" --version 2>/dev/null)"

# Worktrees of the kernel repository, recreated on every run.
wt=$WORK/send-wt rt=$WORK/send-rt
for w in "$wt" "$rt"; do
	git -C "$KERNEL" worktree remove --force "$w" 2>/dev/null || rm -rf "$w"
done
git -C "$KERNEL" worktree prune
git -C "$KERNEL" branch -D b4-send >/dev/null 2>&1 || true
git -C "$KERNEL" worktree add -q -b b4-send "$wt" "$base"
git -C "$wt" am -q "${patches[@]}" || die "patches/ does not apply to the base ($base)"

# The sender's authorship and sign-off, in place of the placeholder's.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/resign" <<'EOT'
#!/bin/sh
set -e
git log -1 --format=%B | grep -vxF "Signed-off-by: $PLACEHOLDER" > "$RESIGN_MSG" || true
git commit -q --amend --reset-author -s -F "$RESIGN_MSG"
EOT
chmod +x "$tmp/resign"
PLACEHOLDER=$PLACEHOLDER RESIGN_MSG=$tmp/msg \
	git -C "$wt" -c user.name="$name" -c user.email="$email" \
	rebase -q --exec "$tmp/resign" "$base" >&2 ||
	die "re-signing the patches as $sender failed (worktree $wt)"
tip=$(git -C "$wt" rev-parse HEAD)

# Identity and a sendemail setting, for this run only: b4 refuses to write
# emails without a way to send them, even with -o.
export GIT_CONFIG_PARAMETERS="'user.name=$name' 'user.email=$email' 'sendemail.smtpserver=/bin/false'"
cover_text "$PATCHDIR/0000-cover-letter.patch" > "$tmp/cover"
printf '#!/bin/sh\ncp "%s" "$1"\n' "$tmp/cover" > "$tmp/editor"
chmod +x "$tmp/editor"
(
	cd "$wt"
	"${b4cmd[@]}" prep -e "$base" >&2
	EDITOR=$tmp/editor "${b4cmd[@]}" prep --edit-cover >&2
	"${b4cmd[@]}" prep --auto-to-cc >&2
	rm -rf "$out"
	"${b4cmd[@]}" send --no-sign -o "$out" >&2
) || die "b4 failed (worktree $wt)"

mapfile -t mails < <(ls "$out"/*.eml 2>/dev/null | sort)
[ ${#mails[@]} = $(( ${#patches[@]} + 1 )) ] ||
	die "b4 wrote ${#mails[@]} emails to $out, expected ${#patches[@]} patches and a cover letter"
to=$(sed -n '/^To:/,/^[A-Z][a-z-]*:/p' "${mails[0]}" | grep -o '<[^>]*>' | wc -l)
cc=$(sed -n '/^Cc:/,/^[A-Z][a-z-]*:/p' "${mails[0]}" | grep -o '<[^>]*>' | wc -l)
[ "$to" -gt 0 ] || die "the cover letter has no To: (get_maintainer.pl found nobody?)"

# Every email is the sender's: From: and, for patches, a Signed-off-by:
# of the sender and none of the placeholder.
for m in "${mails[@]}"; do
	grep -qxF "From: $sender" "$m" || die "$(basename "$m") is not from $sender"
	! grep -qF "$PLACEHOLDER" "$m" || die "$(basename "$m") still names $PLACEHOLDER"
done
for m in "${mails[@]:1}"; do
	grep -qxF "Signed-off-by: $sender" "$m" ||
		die "$(basename "$m") is not signed off by $sender"
done

# Round trip: the emails (not the cover letter) onto a fresh base.
git -C "$KERNEL" worktree add -q --detach "$rt" "$base"
git -C "$rt" am -q "${mails[@]:1}" || die "the emails in $out do not apply with git am to the base"
git -C "$rt" diff --quiet "$tip" HEAD -- ||
	die "the emails in $out, applied to the base, do not give the tree of patches/"
n=$(git -C "$rt" rev-list --count "$base..HEAD")

# MAINTAINERS-fragment applies to the base's MAINTAINERS, and with the
# series get_maintainer.pl gives the series' new files the people and list
# of the HMM entry.
git -C "$rt" checkout -q "$base" -- MAINTAINERS
git -C "$rt" apply --check "$TOP/MAINTAINERS-fragment" ||
	die "MAINTAINERS-fragment does not apply to the base's MAINTAINERS"
git -C "$rt" checkout -q HEAD -- MAINTAINERS
gm() { (cd "$wt" && perl scripts/get_maintainer.pl --no-git --no-git-fallback -f "$1"); }
hmm_people() { gm lib/test_hmm.c | grep 'HMM - Heterogeneous' | sed 's/ (.*//' | sort; }
[ -n "$(hmm_people)" ] || die "get_maintainer.pl finds no HMM entry for lib/test_hmm.c"
for f in $(git -C "$wt" diff --name-only --diff-filter=A "$base" "$tip" -- lib mm include); do
	missing=$(comm -23 <(hmm_people) <(gm "$f" | grep 'HMM - Heterogeneous' | sed 's/ (.*//' | sort))
	[ -z "$missing" ] || die "get_maintainer.pl misses for $f: $missing"
done
git -C "$KERNEL" worktree remove --force "$rt"
echo "${#mails[@]} emails in $out from $sender, every patch signed off by $sender (cover letter: $to To, $cc Cc, from get_maintainer.pl); nothing sent"
echo "round trip: the $n patch emails applied with git am to the base give the series' tree"
