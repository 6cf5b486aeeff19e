#!/usr/bin/env bash
# make export: write branch $BRANCH of the kernel tree to the repo:
#  - patches/: git format-patch output with stable names, the cover letter's
#    subject and text kept from the existing patches/0000-cover-letter.patch
#    (shortlog, diffstat and base-commit regenerated); files whose content
#    did not change are not rewritten, so a re-export gives no diff;
#  - the post-series copy of every file the series touches, at its kernel
#    path in the repo (mm/, include/, lib/, tools/, Documentation/, ...);
#    copies of files the series no longer touches are removed.
. "$(dirname "$0")/common.sh"

base=$(base_rev)
git -C "$KERNEL" rev-parse -q --verify "refs/heads/$BRANCH" >/dev/null ||
	die "no branch $BRANCH in $KERNEL: run 'make tree' and commit your work there"
n=$(git -C "$KERNEL" rev-list --count "$base..refs/heads/$BRANCH")
[ "$n" -gt 0 ] || die "branch $BRANCH has no commits on top of the base: nothing to export"
if [ -n "$(git -C "$KERNEL" status --porcelain --untracked-files=no)" ] &&
   [ "$(git -C "$KERNEL" symbolic-ref -q --short HEAD)" = "$BRANCH" ]; then
	msg "warning: $KERNEL has uncommitted changes; only commits are exported"
fi
merges=$(git -C "$KERNEL" rev-list --merges --count "$base..refs/heads/$BRANCH")
[ "$merges" = 0 ] || die "$BRANCH has merge commits: the series must be linear"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cover=$PATCHDIR/0000-cover-letter.patch
format_series "$KERNEL" "$base" "$tmp" "$cover"
mkdir -p "$PATCHDIR"
changed=0
for f in "$tmp"/*.patch; do
	dst=$PATCHDIR/$(basename "$f")
	if [ -f "$dst" ] && same_patch "$f" "$dst"; then continue; fi
	cp "$f" "$dst"; changed=$((changed + 1))
done
for f in "$PATCHDIR"/[0-9][0-9][0-9][0-9]-*.patch; do
	[ -e "$f" ] || continue
	[ -e "$tmp/$(basename "$f")" ] || { rm -f "$f"; msg "removed stale $(basename "$f")"; changed=$((changed + 1)); }
done
grep -q '\*\*\* SUBJECT HERE \*\*\*' "$cover" &&
	msg "note: write the cover letter's subject and text in patches/0000-cover-letter.patch; later exports keep them"

# Post-series copies.
declare -A keep=()
copies=0
while read -r f; do
	if ! is_copy_path "$f"; then
		case "$f" in
		MAINTAINERS) msg "note: the series changes MAINTAINERS; keep MAINTAINERS-fragment in step with it" ;;
		*) msg "warning: $f is outside the repo's kernel-layout folders (${COPY_DIRS[*]}); no copy kept" ;;
		esac
		continue
	fi
	if git -C "$KERNEL" cat-file -e "refs/heads/$BRANCH:$f" 2>/dev/null; then
		keep[$f]=1
		mkdir -p "$TOP/$(dirname "$f")"
		git -C "$KERNEL" show "refs/heads/$BRANCH:$f" > "$tmp/copy"
		if ! cmp -s "$tmp/copy" "$TOP/$f"; then
			cp "$tmp/copy" "$TOP/$f"; copies=$((copies + 1))
		fi
		# keep the executable bit of scripts
		mode=$(git -C "$KERNEL" ls-tree "refs/heads/$BRANCH" -- "$f" | awk '{ print $1 }')
		if [ "$mode" = 100755 ]; then chmod +x "$TOP/$f"; else chmod -x "$TOP/$f"; fi
	fi
done < <(touched_files "$KERNEL" "$base" "refs/heads/$BRANCH")
for d in "${COPY_DIRS[@]}"; do
	[ -d "$TOP/$d" ] || continue
	while read -r f; do
		rel=${f#"$TOP"/}
		if [ -z "${keep[$rel]:-}" ]; then
			rm -f "$f"; msg "removed stale copy $rel"; copies=$((copies + 1))
		fi
	done < <(find "$TOP/$d" -type f)
	find "$TOP/$d" -depth -type d -empty -delete
done
msg "export: $n patches ($changed files changed in patches/), ${#keep[@]} post-series copies ($copies changed)"
