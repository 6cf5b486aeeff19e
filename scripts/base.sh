#!/usr/bin/env bash
# make base: create the working kernel tree $KERNEL_TREE with one base commit.
#
# Default: Linux 7.3 from Debian's linux-source-7.3 binary package
# (trixie-backports), fetched through a private apt configuration.  With
# KERNEL=/path/to/linux the user's own mainline checkout is used instead: a
# git worktree on a new branch is added, so their branch and working tree
# stay untouched.
. "$(dirname "$0")/common.sh"

TREE=$KTREE
DEBS=$CACHE/debs
GIT_ID=(-c user.name=hmmwalk -c user.email=hmmwalk@localhost)

if [ -d "$TREE/.git" ] || [ -f "$TREE/.git" ]; then
	if git -C "$TREE" rev-parse -q --verify "$BASE_BRANCH" >/dev/null; then
		msg "base tree exists: $TREE ($(git -C "$TREE" log -1 --format=%s "$BASE_BRANCH"))"
		exit 0
	fi
fi

if [ -n "${USER_KERNEL:-}" ]; then
	[ -d "$USER_KERNEL" ] || die "KERNEL=$USER_KERNEL does not exist"
	git -C "$USER_KERNEL" rev-parse --git-dir >/dev/null 2>&1 ||
		die "KERNEL=$USER_KERNEL is not a git checkout"
	if [ -n "$(git -C "$USER_KERNEL" status --porcelain --untracked-files=no)" ]; then
		die "KERNEL=$USER_KERNEL has uncommitted changes; commit or stash them first (nothing was changed)"
	fi
	v=$(make -s -C "$USER_KERNEL" kernelversion 2>/dev/null || true)
	case "$v" in
	7.3*|7.4-rc*) ;;
	*) msg "warning: $USER_KERNEL is Linux '$v'; the series is made against 7.3 and may not apply" ;;
	esac
	git -C "$USER_KERNEL" branch -f "$BASE_BRANCH" HEAD
	mkdir -p "$WORK"
	rm -rf "$TREE"
	git -C "$USER_KERNEL" worktree prune
	git -C "$USER_KERNEL" worktree add --detach "$TREE" "$BASE_BRANCH" >&2
	msg "base: $(git -C "$TREE" log -1 --oneline "$BASE_BRANCH") from $USER_KERNEL (worktree at $TREE)"
	exit 0
fi

mkdir -p "$DEBS"
deb=$(ls -1 "$DEBS"/linux-source-7.3_*_all.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$deb" ] || [ -n "${REFRESH:-}" ]; then
	command -v apt-get >/dev/null || die "apt-get not found: make base needs Debian's apt (or use KERNEL=/path/to/linux)"
	apt_private_update
	ver=$(apt-cache "${APTOPTS[@]}" show linux-source-7.3 2>/dev/null |
		awk '/^Version:/ { print $2 }' | sort -V | tail -1)
	[ -n "$ver" ] || die "linux-source-7.3 is not offered by trixie-backports; check $APTDIR/sources.list or use KERNEL=/path/to/linux"
	msg "downloading linux-source-7.3 $ver (about 170 MB)"
	(cd "$DEBS" && apt-get "${APTOPTS[@]}" -q download "linux-source-7.3=$ver" >&2) ||
		die "download of linux-source-7.3 $ver failed; check the network, or put the .deb into $DEBS by hand"
	deb=$(ls -1 "$DEBS"/linux-source-7.3_*_all.deb | sort -V | tail -1)
else
	msg "using cached $(basename "$deb")"
fi
# apt verified the hash against the signed index on download; check the
# archive is whole before using it (a truncated cache entry is removed).
if ! dpkg-deb --fsys-tarfile "$deb" >/dev/null 2>&1; then
	rm -f "$deb"
	die "$deb is damaged and was removed; run 'make base' again to download it"
fi
pkgver=$(dpkg-deb -f "$deb" Version)

mkdir -p "$WORK"
tmp=$(mktemp -d "$WORK/.base.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
msg "unpacking linux-source-7.3 $pkgver"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/src/
tarball=$(ls "$tmp"/usr/src/linux-source-7.3.tar.*)
mkdir -p "$tmp/src"
tar -x -C "$tmp/src" -f "$tarball"
src=$(ls -d "$tmp"/src/linux-source-*)
# Debian appends a block to .gitignore that ignores every top-level entry.
awk '/^# Debian packaging/ { cut = 1 } !cut' "$src/.gitignore" |
	sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$tmp/gi"
# drop the "#" line that opens the block
sed -i -e '${/^#$/d}' "$tmp/gi"
mv "$tmp/gi" "$src/.gitignore"
kver=$(make -s -C "$src" kernelversion)

rm -rf "$TREE"
mv "$src" "$TREE"
msg "creating git repository in $TREE"
cd "$TREE"
git init -q -b "$BASE_BRANCH"
git add -A
# Fixed identity and dates: the base commit id is the same on every machine.
GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
	git "${GIT_ID[@]}" commit -q -m "Linux $kver (Debian linux-source-7.3 $pkgver)" \
	-m "Unpacked from Debian's linux-source-7.3 binary package, version $pkgver,
with the Debian block at the end of .gitignore removed."
msg "base: $(git log -1 --oneline)"
