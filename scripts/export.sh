#!/usr/bin/env bash
# make export: write the two series' branches of the kernel tree to the repo:
#  - patches/fixes/ ($FIXES_BRANCH on the base) and patches/feature/
#    ($BRANCH on $FIXES_BRANCH): git format-patch output with stable names,
#    each cover letter's subject and text kept from the existing
#    0000-cover-letter.patch of its folder (shortlog, diffstat, base-commit
#    and, for the feature, prerequisite-patch-id regenerated); files whose
#    content did not change are not rewritten, so a re-export gives no diff;
#  - the post-series copy of every file the series touch, as at the tip
#    of the last one ($XE_BRANCH), at its kernel path in the repo (mm/, include/, lib/, tools/,
#    Documentation/, ...); copies of files no longer touched are removed.
. "$(dirname "$0")/common.sh"

base=$(base_rev)
for s in "${SERIES_ALL[@]}"; do
	b=$(series_branch "$s") f=$(series_from "$s")
	git -C "$KTREE" rev-parse -q --verify "refs/heads/$b" >/dev/null ||
		die "no branch $b in $KTREE: run 'make tree' and commit your work there"
	git -C "$KTREE" merge-base --is-ancestor "refs/heads/$f" "refs/heads/$b" ||
		die "branch $b does not start from $f: the $s series goes on top of it (git rebase $f $b)"
	n=$(git -C "$KTREE" rev-list --count "refs/heads/$f..refs/heads/$b")
	[ "$n" -gt 0 ] || die "branch $b has no commits on top of $f: nothing to export"
	merges=$(git -C "$KTREE" rev-list --merges --count "refs/heads/$f..refs/heads/$b")
	[ "$merges" = 0 ] || die "$b has merge commits: the series must be linear"
done
if [ -n "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ]; then
	msg "warning: $KTREE has uncommitted changes; only commits are exported"
fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
changed=0 total=0
rewritten=()
for s in "${SERIES_ALL[@]}"; do
	dir=$PATCHDIR/$s
	cover=$dir/0000-cover-letter.patch
	format_series "$KTREE" "$s" "$tmp/$s" "$cover"
	mkdir -p "$dir"
	for f in "$tmp/$s"/*.patch; do
		dst=$dir/$(basename "$f")
		case "$f" in */0000-*) ;; *) total=$((total + 1)) ;; esac
		if [ -f "$dst" ] && same_patch "$f" "$dst"; then continue; fi
		cp "$f" "$dst"; changed=$((changed + 1))
		case "$f" in */0000-*) ;; *) rewritten+=("$dst") ;; esac
	done
	for f in "$dir"/[0-9][0-9][0-9][0-9]-*.patch; do
		[ -e "$f" ] || continue
		[ -e "$tmp/$s/$(basename "$f")" ] || { rm -f "$f"; msg "removed stale $s/$(basename "$f")"; changed=$((changed + 1)); }
	done
	grep -q '\*\*\* SUBJECT HERE \*\*\*' "$cover" &&
		msg "note: write the cover letter's subject and text in patches/$s/0000-cover-letter.patch; later exports keep them"
done
# Patch files of the one-series layout (patches/*.patch) are gone.
for f in "$PATCHDIR"/*.patch; do
	[ -e "$f" ] || continue
	rm -f "$f"; msg "removed $(basename "$f") (the series now live in patches/fixes/ and patches/feature/)"
	changed=$((changed + 1))
done

# Post-series copies, as at the tip of the last series.
last=$(series_branch "${SERIES_ALL[-1]}")
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
	if git -C "$KTREE" cat-file -e "refs/heads/$last:$f" 2>/dev/null; then
		keep[$f]=1
		mkdir -p "$TOP/$(dirname "$f")"
		git -C "$KTREE" show "refs/heads/$last:$f" > "$tmp/copy"
		if ! cmp -s "$tmp/copy" "$TOP/$f"; then
			cp "$tmp/copy" "$TOP/$f"; copies=$((copies + 1))
		fi
		# keep the executable bit of scripts
		mode=$(git -C "$KTREE" ls-tree "refs/heads/$last" -- "$f" | awk '{ print $1 }')
		if [ "$mode" = 100755 ]; then chmod +x "$TOP/$f"; else chmod -x "$TOP/$f"; fi
	fi
done < <(touched_files "$KTREE" "$base" "refs/heads/$last")
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
msg "export: $total patches in ${#SERIES_ALL[@]} series ($changed files changed in patches/), ${#keep[@]} post-series copies ($copies changed)"
# A patch that changed is checked as check step 2 will check it: a reworded
# commit message is as easy to break as the code.
if [ ${#rewritten[@]} -gt 0 ]; then
	msg "checkpatch --strict on the ${#rewritten[@]} rewritten patches"
	"$TOP/scripts/checkpatch.sh" "$KTREE" "${rewritten[@]}" | grep -v '^allowed ' ||
		die "a rewritten patch is not checkpatch --strict clean (above); fix it on its branch and export again"
fi
