#!/usr/bin/env bash
# Install what the workbench needs on Debian bookworm (or newer): build
# dependencies, QEMU with qboot, busybox, ccache; b4 from the system's
# suites; sparse built from sid's source package (through the private apt
# configuration; the system's sources are not changed).  make and make check
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

# b4: the one whose `b4 prep` works with this system's python3 and
# pygit2, from the system's own suites (bookworm: 0.12).  sid's 0.16, say,
# cannot import b4.ez with bookworm's pygit2; it is replaced.
if ! /usr/bin/python3 -c 'import b4.ez' 2>/dev/null; then
	need_root "b4 (from the system's suites)"
	v=$(apt-cache madison b4 2>/dev/null | awk -F'|' 'NR == 1 { gsub(/ /, "", $2); print $2 }')
	if [ -z "$v" ]; then
		$SUDO apt-get -q update >&2 || die "apt-get update failed"
		v=$(apt-cache madison b4 2>/dev/null | awk -F'|' 'NR == 1 { gsub(/ /, "", $2); print $2 }')
	fi
	[ -n "$v" ] || die "no b4 in the system's apt sources: add Debian's main suite"
	msg "installing b4 $v from the system's suites (b4 prep needs one that imports b4.ez)"
	$SUDO apt-get -q -y install --allow-downgrades --no-install-recommends "b4=$v" >&2 ||
		die "installing b4 $v failed; see the messages above"
	/usr/bin/python3 -c 'import b4.ez' ||
		die "b4 $v is installed but /usr/bin/python3 cannot import b4.ez: b4 prep will not work"
fi
msg "b4 $(b4 --version 2>/dev/null)"

"$(dirname "$0")/sparse.sh" >/dev/null
