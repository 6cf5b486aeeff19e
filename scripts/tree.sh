#!/usr/bin/env bash
# make tree: the two series of patches/ applied with git am on branches of
# the kernel tree: patches/fixes/ on the base as $FIXES_BRANCH (hmm-fixes),
# patches/feature/ on top of it as $BRANCH (hmm-migrate), which is checked
# out.  Branches that already hold exactly these patches are left alone;
# one that differs is not overwritten unless FORCE=1 (its old tip is then
# kept as <branch>-old).
. "$(dirname "$0")/common.sh"

base=$(base_rev)
cd "$KTREE"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	die "$KTREE has uncommitted changes; commit them (then 'make export') or stash them"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Does branch $1 hold series $2 of patches/ on top of the ref it starts
# from?  0: yes; 1: it differs; 2: there is no such branch.
holds() {
	local branch=$1 series=$2 n p
	local -a pp
	git rev-parse -q --verify "refs/heads/$branch" >/dev/null || return 2
	git rev-parse -q --verify "refs/heads/$(series_from "$series")" >/dev/null || return 1
	git merge-base --is-ancestor "refs/heads/$(series_from "$series")" "refs/heads/$branch" || return 1
	mapfile -t pp < <(series_patches "$series")
	n=$(git rev-list --count "refs/heads/$(series_from "$series")..refs/heads/$branch")
	[ "${#pp[@]}" -eq "$n" ] || return 1
	[ "$n" -gt 0 ] || return 0
	rm -rf "$tmp/$series"
	format_series "$KTREE" "$series" "$tmp/$series"
	for p in "${pp[@]}"; do
		same_patch "$p" "$tmp/$series/$(basename "$p")" || return 1
	done
	return 0
}

# From the first series whose branch does not hold its patches on, every
# branch is (re)created: a later series starts from the earlier's branch.
redo=
for s in "${SERIES_ALL[@]}"; do
	b=$(series_branch "$s")
	if [ -z "$redo" ]; then
		r=0; holds "$b" "$s" || r=$?
		if [ $r = 0 ]; then
			msg "tree: $b already holds the $(series_patches "$s" | wc -l) patches of patches/$s/ ($(git log -1 --format='%h %s' "$b"))"
			continue
		fi
		if [ $r = 1 ] && [ -z "${FORCE:-}" ]; then
			die "branch $b differs from patches/$s/.
  To keep the branches: 'make export' writes them to patches/.
  To recreate them from patches/: 'make tree FORCE=1' (the old tips are kept as <branch>-old)."
		fi
		redo=1
	fi
	if git rev-parse -q --verify "refs/heads/$b" >/dev/null; then
		git branch -f "$b-old" "refs/heads/$b"
		msg "old $b kept as $b-old"
	fi
	from=$(git rev-parse "refs/heads/$(series_from "$s")")
	git checkout -q -B "$b" "$from"
	mapfile -t pp < <(series_patches "$s")
	if [ ${#pp[@]} -eq 0 ]; then
		msg "tree: patches/$s/ holds no patch; $b is $(series_from "$s")"
		continue
	fi
	apply_series "$KTREE" "${pp[@]}"
	msg "tree: $b = $(series_from "$s") + ${#pp[@]} patches of patches/$s/ ($(git log -1 --format='%h %s'))"
done
[ "$(git symbolic-ref -q --short HEAD)" = "$BRANCH" ] || git checkout -q "$BRANCH"
