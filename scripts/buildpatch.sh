#!/usr/bin/env bash
# make build-patch N=n: patch n of branch $BRANCH (counting from 1 on the base,
# the fixes first) built on its own, as check step 3 does for every patch: the VM
# kernel incrementally, W=1 and sparse on what the patch touches, compared
# with the base.  Uses a worktree and build directory of its own.
. "$(dirname "$0")/common.sh"

[ $# -ge 1 ] || die "usage: buildpatch.sh N..."
base=$(base_rev)
git -C "$KTREE" rev-parse -q --verify "refs/heads/$BRANCH" >/dev/null || die "no branch $BRANCH: run 'make tree'"
wt=$WORK/patchbuild
fresh_worktree "$wt" "$base"
"$TOP/scripts/bisect.sh" "$wt" "$BUILD/patch-x86" "refs/heads/$BRANCH" "$@"
