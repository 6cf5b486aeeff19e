#!/usr/bin/env bash
# make verify: a fresh base plus "git am patches/*.patch" must reproduce the
# repo's post-series copies byte for byte, and the repo must hold no copy
# of a file the series does not touch.  Differences are shown.
#   verify.sh [WORKTREE]   (default $WORK/verify; left at the series tip)
. "$(dirname "$0")/common.sh"

wt=${1:-$WORK/verify}
base=$(base_rev)
mapfile -t patches < <(series_patches)
[ ${#patches[@]} -gt 0 ] || die "patches/ holds no series: nothing to verify"

fresh_worktree "$wt" "$base"
apply_series "$wt" "${patches[@]}"
msg "applied ${#patches[@]} patches on the base in $wt"

bad=0
declare -A touched=()
while read -r f; do
	touched[$f]=1
	is_copy_path "$f" || continue
	if [ -e "$wt/$f" ]; then
		if [ ! -e "$TOP/$f" ]; then
			echo "missing copy: $f (run 'make export')"; bad=1
		elif ! cmp -s "$wt/$f" "$TOP/$f"; then
			echo "differs: $f"
			diff -u --label "series/$f" --label "repo/$f" "$wt/$f" "$TOP/$f" | sed -n 1,60p
			bad=1
		fi
	elif [ -e "$TOP/$f" ]; then
		echo "the series deletes $f but the repo has a copy"; bad=1
	fi
done < <(touched_files "$wt" "$base" HEAD)
for d in "${COPY_DIRS[@]}"; do
	[ -d "$TOP/$d" ] || continue
	while read -r f; do
		rel=${f#"$TOP"/}
		[ -n "${touched[$rel]:-}" ] || { echo "stale copy: $rel (the series does not touch it)"; bad=1; }
	done < <(find "$TOP/$d" -type f)
done
[ $bad = 0 ] || die "verify: the repo's copies do not match base + patches/"
msg "verify: ${#touched[@]} touched files; every copy matches base + patches/"
