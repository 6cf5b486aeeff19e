# shellcheck shell=bash
# Shared settings for the workbench scripts.  Sourced, not executed.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$TOP/.work}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmwalk}
# The working kernel tree: a git repository with the base commit on branch
# "base" and the series on branch $BRANCH.  KERNEL= points at a user's own
# mainline checkout instead.
KERNEL=${KERNEL:-$WORK/linux}
BRANCH=${BRANCH:-hmm-migrate}
BASE_BRANCH=${BASE_BRANCH:-hmmwalk-base}
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-1970-01-01}
export KBUILD_BUILD_USER=hmmwalk KBUILD_BUILD_HOST=hmmwalk

msg()  { printf '==> %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# Kernel builds share two cores: serialise them across processes.
kmake() {
	mkdir -p "$WORK"
	local cc=gcc
	command -v ccache >/dev/null && cc="ccache gcc"
	flock "$WORK/.kbuild.lock" make -s -j"$JOBS" CC="$cc" HOSTCC="$cc" "$@"
}

# The private apt configuration: the system's sources are never touched.
# Only the suites are named here; the mirror is taken from the system's
# own apt sources.
apt_mirror() {
	local m=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || die "cannot find a Debian mirror in the system's apt sources; set MIRROR=<url>"
	echo "${MIRROR:-$m}"
}

APTDIR=$CACHE/apt
apt_private() {
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial"
	local mirror key=/usr/share/keyrings/debian-archive-keyring.gpg
	mirror=$(apt_mirror)
	cat > "$APTDIR/sources.list" <<EOT
deb [signed-by=$key] $mirror trixie-backports main
deb [signed-by=$key] $mirror sid main
EOT
	APTOPTS=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list"
		 -o "Dir::Etc::sourceparts=-"
		 -o "Dir::State::Lists=$APTDIR/lists"
		 -o "Dir::Cache=$APTDIR"
		 -o "Dir::Cache::Archives=$APTDIR/archives"
		 -o "APT::Get::List-Cleanup=0"
		 -o "APT::Sandbox::User=root")
}

apt_private_update() {
	apt_private
	# Refresh at most once a day.
	if [ -z "$(find "$APTDIR/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
		msg "updating the private apt lists (trixie-backports, sid)"
		apt-get "${APTOPTS[@]}" -q update >&2 ||
			die "apt-get update of the private lists failed; check the network and $APTDIR/sources.list"
	fi
}

# Elapsed-time helpers for progress lines.
T0=${T0:-$(date +%s)}
elapsed() { local s=$(( $(date +%s) - T0 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
