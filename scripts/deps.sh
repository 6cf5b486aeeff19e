#!/usr/bin/env bash
# Install what the workbench needs on Debian bookworm (or newer): build
# dependencies, QEMU with qboot, busybox, ccache; b4 from sid (architecture
# all, through the private apt configuration; the system's sources are not
# changed); sparse built from sid's source package.  make and make check
# run it first: when everything is there it installs nothing and needs no
# privilege (about 2 s); otherwise it needs root, or sudo.
. "$(dirname "$0")/common.sh"

SUDO=
# need_root WHAT: installing WHAT needs root, or sudo.
need_root() {
	[ "$(id -u)" = 0 ] && return 0
	command -v sudo >/dev/null && sudo -n true 2>/dev/null && { SUDO=sudo; return 0; }
	command -v sudo >/dev/null && { SUDO=sudo; msg "sudo will ask for your password to install $1"; return 0; }
	die "installing $1 needs root: run 'make deps' as root (or install sudo), then run make again"
}
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential dpkg-dev flex bison bc libelf-dev libssl-dev dwarves
      ccache git python3 perl rsync cpio kmod busybox-static
      qemu-system-x86 libcap-dev libnuma-dev file xz-utils
      python3-matplotlib python3-ply python3-git)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'ok installed' >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	need_root "${missing[*]}"
	msg "installing: ${missing[*]}"
	$SUDO apt-get -q update >&2 || die "apt-get update failed"
	$SUDO apt-get -q -y install --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install failed"
fi
[ -f /usr/share/qemu/qboot.rom ] || die "qboot.rom missing from /usr/share/qemu (package qemu-system-x86 / qemu-system-data)"

# b4 from sid: b4 and the two helper modules bookworm lacks; everything
# else it needs resolves from the system's own suites.
if ! b4 --version 2>/dev/null | grep '^0\.1[4-9]\|^[1-9]' >/dev/null; then
	need_root "b4 (from sid)"
	apt_private_update
	d=$CACHE/debs/b4
	mkdir -p "$d"
	(cd "$d" && rm -f ./*.deb && apt-get "${APTOPTS[@]}" -q download b4 python3-ezgb python3-liblore >&2) ||
		die "downloading b4 from sid failed; check the network and $APTDIR/sources.list"
	$SUDO apt-get -q -y install --no-install-recommends "$d"/*.deb >&2 ||
		die "installing b4 failed; see the messages above"
fi
msg "b4 $(b4 --version 2>/dev/null)"

"$(dirname "$0")/sparse.sh" >/dev/null
