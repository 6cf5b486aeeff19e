#!/usr/bin/env bash
# Build sparse from Debian sid's source package (bookworm's 0.6.4 is too old
# for Linux 7.3: "make C=1" then prints "sparse is not available or not up to
# date" and checks nothing).  The binary goes to $CACHE/tools/sparse; a
# second run reuses it.
. "$(dirname "$0")/common.sh"

OUT=$CACHE/tools
if [ -x "$OUT/sparse" ] && [ -z "${REFRESH:-}" ]; then
	msg "sparse: $("$OUT/sparse" --version 2>&1 | sed -n 1p) ($OUT/sparse)"
	echo "$OUT/sparse"
	exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found; build sparse >= 0.6.5 yourself and set SPARSE=/path/to/sparse"
command -v dpkg-source >/dev/null || die "dpkg-source not found: install dpkg-dev"
apt_private_update src
src=$CACHE/src/sparse
rm -rf "$src"; mkdir -p "$src"
msg "downloading sparse source from sid"
(cd "$src" && apt-get "${APTOPTS[@]}" -q source sparse >&2) ||
	die "apt-get source sparse failed; check the network and $APTDIR/sources.list"
dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'sparse-*' -print -quit)
[ -n "$dir" ] || die "sparse source did not unpack in $src"
msg "building $(basename "$dir")"
# debian/patches points CC at a sid compiler: use the host gcc.
make -s -C "$dir" -j"$JOBS" CC=gcc sparse >&2 || die "building sparse failed (see above)"
mkdir -p "$OUT"
install -m 0755 "$dir/sparse" "$OUT/sparse"
rm -rf "$src"
msg "sparse: $("$OUT/sparse" --version 2>&1 | sed -n 1p) ($OUT/sparse)"
echo "$OUT/sparse"
