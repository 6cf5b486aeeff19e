#!/usr/bin/env bash
# make tree: the base plus "git am patches/*.patch" on branch $BRANCH of
# the kernel tree, checked out.  An existing branch that already holds
# exactly these patches is left alone; one that differs is not overwritten
# unless FORCE=1 (its old tip is then kept as $BRANCH-old).
. "$(dirname "$0")/common.sh"

base=$(base_rev)
mapfile -t patches < <(series_patches)
cd "$KERNEL"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	die "$KERNEL has uncommitted changes; commit them (then 'make export') or stash them"

if git rev-parse -q --verify "refs/heads/$BRANCH" >/dev/null; then
	n=$(git rev-list --count "$base..refs/heads/$BRANCH")
	same=1
	if [ ${#patches[@]} -ne "$n" ]; then
		same=
	elif [ "$n" -gt 0 ]; then
		tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
		format_series "$KERNEL" "$base" "$tmp"
		for p in "${patches[@]}"; do
			same_patch "$p" "$tmp/$(basename "$p")" || { same=; break; }
		done
	fi
	if [ -n "$same" ]; then
		[ "$(git symbolic-ref -q --short HEAD)" = "$BRANCH" ] || git checkout -q "$BRANCH"
		msg "tree: $BRANCH already holds the ${#patches[@]} patches of patches/ ($(git log -1 --format='%h %s' "$BRANCH"))"
		exit 0
	fi
	if [ -z "${FORCE:-}" ]; then
		die "branch $BRANCH ($n commits on the base) differs from patches/ (${#patches[@]} patches).
  To keep the branch: 'make export' writes it to patches/.
  To recreate it from patches/: 'make tree FORCE=1' (the old tip is kept as $BRANCH-old)."
	fi
	git branch -f "$BRANCH-old" "refs/heads/$BRANCH"
	msg "old $BRANCH kept as $BRANCH-old"
fi
git checkout -q -B "$BRANCH" "$base"
if [ ${#patches[@]} -eq 0 ]; then
	msg "tree: patches/ holds no series; $BRANCH is the base"
	exit 0
fi
apply_series "$KERNEL" "${patches[@]}"
msg "tree: $BRANCH = base + ${#patches[@]} patches ($(git log -1 --format='%h %s'))"
