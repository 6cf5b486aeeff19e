# shellcheck shell=bash
# Shared settings for the workbench scripts.  Sourced, not executed.
set -euo pipefail
# A command that ends a script through set -e says so: without this, a
# failing assignment or pipeline (a SIGPIPE of its producer, with pipefail)
# ends the script with nothing in its log.  Commands tested by if, && or ||
# do not trigger it, nor anything run under set +e.
trap '__rc=$?; [[ $- != *e* ]] || printf "error: %s:%s: \"%s\" exited with %s\n" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" "$__rc" >&2' ERR

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$TOP/.work}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmwalk}
# The working kernel tree: a git repository (or, with KERNEL=, a worktree of
# the user's own checkout) with the base commit on branch $BASE_BRANCH and
# the series on branches $FIXES_BRANCH and $BRANCH.  KERNEL (make KERNEL=, or
# the environment when a script runs on its own) only ever names the user's
# checkout: base.sh reads it as USER_KERNEL.
KTREE=$WORK/linux
USER_KERNEL=${USER_KERNEL:-${KERNEL:-}}
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
	# Source packages (sparse) only when asked: the sid Sources index is big.
	if [ "${1:-}" = src ]; then
		echo "deb-src [signed-by=$key] $mirror sid main" >> "$APTDIR/sources.list"
	fi
	APTOPTS=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list"
		 -o "Dir::Etc::sourceparts=-"
		 -o "Dir::State::Lists=$APTDIR/lists"
		 -o "Dir::Cache=$APTDIR"
		 -o "Dir::Cache::Archives=$APTDIR/archives"
		 -o "APT::Get::List-Cleanup=0"
		 -o "APT::Sandbox::User=root")
}

apt_private_update() {
	apt_private "${1:-}"
	local want='*Packages*'
	[ "${1:-}" = src ] && want='*Sources*'
	# Refresh at most once a day.
	if [ -z "$(find "$APTDIR/lists" -name "$want" -mmin -1440 -print -quit 2>/dev/null)" ]; then
		msg "updating the private apt lists (trixie-backports, sid)"
		apt-get "${APTOPTS[@]}" -q update >&2 ||
			die "apt-get update of the private lists failed; check the network and $APTDIR/sources.list"
	fi
}

# Elapsed-time helpers for progress lines.
T0=${T0:-$(date +%s)}
elapsed() { local s=$(( $(date +%s) - T0 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# ---------------------------------------------------------------------------
# Series, configuration and build helpers shared by the series, check and VM
# scripts.

PATCHDIR=${PATCHDIR:-$TOP/patches}
BUILD=$WORK/build
# Folders of the repo that hold post-series copies of the touched kernel
# files (the kernel layout); nothing else of the repo is a kernel file.
COPY_DIRS=(mm include lib tools Documentation drivers arch fs kernel samples)
export PATH="$TOP/scripts/bin:$PATH"

# Three series, applied in this order: the 7.3 fixes (patches/fixes/, branch
# $FIXES_BRANCH on the base, for mm-hotfixes), the feature
# (patches/feature/, branch $BRANCH on $FIXES_BRANCH, for mm-new) and the
# RFC that converts xe's GPU fault path to it (patches/xe/, branch
# $XE_BRANCH on $BRANCH, compile-tested only).
FIXES_BRANCH=${FIXES_BRANCH:-hmm-fixes}
XE_BRANCH=${XE_BRANCH:-hmm-xe}
SERIES_ALL=(fixes feature xe)

# series_names [NAME...]: the series named, in application order; all of
# them by default.
series_names() {
	local want=("$@") n
	[ ${#want[@]} -gt 0 ] || want=("${SERIES_ALL[@]}")
	for n in "${want[@]}"; do
		case "$n" in fixes|feature|xe) ;; *) die "no series '$n': the series are ${SERIES_ALL[*]}" ;; esac
	done
	for n in "${SERIES_ALL[@]}"; do
		case " ${want[*]} " in *" $n "*) echo "$n" ;; esac
	done
}

# The branch of series $1, and the ref it starts from.
series_branch() {
	case "$1" in fixes) echo "$FIXES_BRANCH" ;; feature) echo "$BRANCH" ;; xe) echo "$XE_BRANCH" ;; esac
}
series_from() {
	case "$1" in fixes) echo "$BASE_BRANCH" ;; feature) echo "$FIXES_BRANCH" ;; xe) echo "$BRANCH" ;; esac
}

# The patch files of the named series (all by default), in application
# order; the cover letters excluded.
series_patches() {
	local n f
	for n in $(series_names "$@"); do
		for f in "$PATCHDIR/$n"/[0-9][0-9][0-9][0-9]-*.patch; do
			[ -e "$f" ] || continue
			case "$(basename "$f")" in 0000-*) continue ;; esac
			echo "$f"
		done
	done
}

# fresh_worktree DIR [COMMIT] [BRANCH]: DIR as a clean worktree of the
# kernel tree at COMMIT (default the base), detached, or on a new BRANCH
# (recreated).  An existing worktree is reset (an am or rebase in progress
# is aborted, local changes and untracked files dropped); anything else at
# DIR is removed first.
fresh_worktree() {
	local wt=$1 c=${2:-$BASE_BRANCH} b=${3:-}
	c=$(git -C "$KTREE" rev-parse --verify "$c^{commit}") || die "fresh_worktree: no commit $c in $KTREE"
	if [ -z "$b" ] && [ -e "$wt/.git" ] && git -C "$wt" rev-parse -q --verify HEAD >/dev/null 2>&1; then
		git -C "$wt" am --abort >/dev/null 2>&1 || true
		git -C "$wt" rebase --abort >/dev/null 2>&1 || true
		git -C "$wt" checkout -q -f --detach "$c"
		git -C "$wt" clean -q -fdx
		return 0
	fi
	git -C "$KTREE" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
	git -C "$KTREE" worktree prune
	if [ -n "$b" ]; then
		git -C "$KTREE" branch -D "$b" >/dev/null 2>&1 || true
		git -C "$KTREE" worktree add -q -b "$b" "$wt" "$c" >&2
	else
		git -C "$KTREE" worktree add -q --detach "$wt" "$c" >&2
	fi
}

# The base commit of the kernel tree.
base_rev() {
	git -C "$KTREE" rev-parse -q --verify "$BASE_BRANCH^{commit}" ||
		die "no $BASE_BRANCH branch in $KTREE: run 'make base' first"
}

# sparse: $SPARSE, else the one scripts/sparse.sh builds, else $PATH's.
sparse_bin() {
	if [ -n "${SPARSE:-}" ]; then echo "$SPARSE"
	elif [ -x "$CACHE/tools/sparse" ]; then echo "$CACHE/tools/sparse"
	else command -v sparse || true
	fi
}

# The series' KUnit configuration files in tree $1 ($2: "commit" compares
# the base with HEAD; anything else with the working tree).
series_kunitconfigs() {
	# A kunitconfig named *_<arch>.kunitconfig is for kunit.py run
	# --arch=<arch> only (today: *_x86_64.kunitconfig, which runs every
	# case); ARCH (third argument) empty gives the others, for UML and the
	# VM kernel, ARCH=x86_64 gives those.
	local tree=$1 mode=${2:-worktree} arch=${3:-} f spec
	if [ -n "${KUNITCONFIG:-}" ]; then
		for f in $KUNITCONFIG; do
			case "$f" in /*) echo "$f" ;; *) echo "$tree/$f" ;; esac
		done
		return
	fi
	if [ -n "$arch" ]; then spec=("*_$arch.kunitconfig")
	else spec=('*kunitconfig' ':!*_x86_64.kunitconfig'); fi
	{
		if [ "$mode" = commit ]; then
			git -C "$tree" diff --name-only --diff-filter=AM "$BASE_BRANCH" HEAD -- "${spec[@]}"
		else
			git -C "$tree" diff --name-only --diff-filter=AM "$BASE_BRANCH" -- "${spec[@]}"
			git -C "$tree" ls-files --others --exclude-standard -- "${spec[@]}"
		fi
	} | sort -u | sed "s|^|$tree/|"
}

# kconfig SRC O ARCH FRAGMENT...: configure the build directory O as
# alldefconfig (KCONFIG_BASE=tinyconfig for another start) + the fragments
# + olddefconfig.  Nothing happens when the
# fragments are unchanged and every "=y" they ask for is still in .config
# (so a tree that gained a Kconfig symbol is reconfigured).  Set
# KCONFIG_LAX=1 to accept options the fragments ask for but Kconfig refuses.
kconfig() {
	local src=$1 o=$2 arch=$3; shift 3
	mkdir -p "$o"
	local start=${KCONFIG_BASE:-alldefconfig}
	{ [ "$start" = alldefconfig ] || echo "# kconfig start: $start"; cat "$@"; } > "$o/.config.frag.new"
	if [ -f "$o/.config" ] && cmp -s "$o/.config.frag.new" "$o/.config.frag" 2>/dev/null &&
	   [ -z "$(kconfig_missing "$o" "$o/.config.frag.new")" ]; then
		rm -f "$o/.config.frag.new"
		return 0
	fi
	msg "configuring $o"
	kmake -C "$src" O="$o" ARCH="$arch" "$start" >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$o" "$o/.config" "$o/.config.frag.new" >/dev/null
	kmake -C "$src" O="$o" ARCH="$arch" olddefconfig >/dev/null
	rm -f "$o/.config.frag"
	mv "$o/.config.frag.new" "$o/.config.frag"
	local miss
	miss=$(kconfig_missing "$o" "$o/.config.frag")
	if [ -n "$miss" ]; then
		if [ -n "${KCONFIG_LAX:-}" ]; then
			msg "note: not in $o/.config (dependencies): $miss"
		else
			die "Kconfig refused options the fragments ask for: $miss"
		fi
	fi
}

# Options a fragment sets (=y/=m/not set) that .config does not have.
kconfig_missing() {
	local o=$1 frag=$2
	awk -v cfg="$o/.config" '
		BEGIN { while ((getline l < cfg) > 0) {
			if (l ~ /^CONFIG_[A-Za-z0-9_]+=/) { split(l, a, "="); have[a[1]] = substr(l, length(a[1]) + 2) }
			else if (l ~ /^# CONFIG_[A-Za-z0-9_]+ is not set/) { split(l, a, " "); have[a[2]] = "n" } } }
		/^CONFIG_[A-Za-z0-9_]+=[ym]$/ { split($0, a, "="); want[a[1]] = a[2]; next }
		/^# CONFIG_[A-Za-z0-9_]+ is not set/ { want[$2] = "n"; next }
		END { for (k in want) { v = (k in have) ? have[k] : "n"; if (v != want[k]) printf "%s ", k "=" want[k] } }
	' "$frag"
}

# The VM kernel's fragments for tree $1: configs/vm.config plus the
# series' KUnit configuration files ($2 as in series_kunitconfigs).
vm_fragments() {
	echo "$TOP/configs/vm.config"
	series_kunitconfigs "$1" "${2:-worktree}"
}

# build_hmm_tests SRC O OUT: build tools/testing/selftests/mm/hmm-tests of
# tree SRC against the UAPI headers of build directory O, into OUT.
build_hmm_tests() {
	local src=$1 o=$2 out=$3
	mkdir -p "$out"
	kmake -C "$src" O="$o" headers >/dev/null
	make -s -C "$src/tools/testing/selftests/mm" OUTPUT="$out" \
		KHDR_INCLUDES="-isystem $o/usr/include" "$out/hmm-tests" >&2 ||
		die "building hmm-tests of $src failed"
}

# The cover letter text (subject line, blank line, body) of an existing
# git format-patch cover letter: what the user wrote, without the
# generated shortlog, diffstat and base-commit.
cover_text() {
	python3 - "$1" <<'PY'
import email, re, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.compat32)
subj = re.sub(r'\s+', ' ', str(msg.get('Subject', ''))).strip()
subj = re.sub(r'^\[[^]]*\]\s*', '', subj)
body = msg.get_payload(decode=True).decode('utf-8', 'replace').split('\n')
# The generated part: shortlog blocks ("Author (N):", N indented
# subjects, a blank line), the diffstat ending in "N files changed", then
# base-commit.  Cut at the first line from which that parses.
def generated_from(i):
    while i < len(body):
        m = re.match(r'^\S.* \((\d+)\):$', body[i])
        if not m:
            break
        n = int(m.group(1))
        # n subjects ("  subject"), long ones wrapped ("    rest")
        i += 1
        seen = 0
        while i < len(body) and body[i].startswith('  '):
            if not body[i].startswith('   '):
                seen += 1
            i += 1
        if seen != n:
            return False
        if i < len(body) and body[i] != '':
            return False
        i += 1
    while i < len(body) and re.match(r'^ \S.*\|', body[i]):
        i += 1
    return i < len(body) and re.match(r'^ \d+ files? changed', body[i]) is not None
cut = len(body)
for i, l in enumerate(body):
    if (i == 0 or body[i - 1] == '') and generated_from(i):
        cut = i
        break
text = '\n'.join(body[:cut]).strip('\n')
print(subj + '\n\n' + text)
PY
}

# format_series TREE SERIES OUT [COVER_LETTER]: git format-patch of the
# series' branch (from the ref it starts from) into OUT with stable output
# (zeroed "From" hashes, no git version signature).  The cover letter
# records the base commit, and for the feature the patch-id of each fix it
# needs (prerequisite-patch-id), as b4 does for dependencies, so that a
# reviewer can apply it on the fixes.  The cover letter's subject and text
# come from COVER_LETTER when given.
format_series() {
	local tree=$1 series=$2 out=$3 cover=${4:-} desc=() branch from base
	local prefix=PATCH
	# The xe conversion is compile-tested only: it goes out as an RFC.
	[ "$series" != xe ] || prefix="RFC PATCH"
	branch=$(series_branch "$series")
	from=$(git -C "$tree" rev-parse -q --verify "refs/heads/$(series_from "$series")^{commit}") ||
		die "no branch $(series_from "$series") in $tree: run 'make tree'"
	base=$(git -C "$tree" rev-parse "refs/heads/$BASE_BRANCH^{commit}")
	if [ -n "$cover" ] && [ -f "$cover" ]; then
		desc=(-c "branch.$branch.description=$(cover_text "$cover")")
	fi
	mkdir -p "$out"
	# The cover letters are the placeholder's, like the patches: make send
	# re-authors everything as the sender.
	git -C "$tree" -c user.name="HMM Walk" -c user.email=hmmwalk@example.org \
		"${desc[@]}" format-patch -q --cover-letter \
		--cover-from-description=subject --zero-commit --no-signature \
		--subject-prefix="$prefix" \
		--base="$base" -o "$out" "$from..refs/heads/$branch" >/dev/null ||
		die "git format-patch of the $series series failed in $tree"
}

# Are two patch files the same, the cover letter's Date: line aside?
same_patch() {
	cmp -s <(sed '1,/^$/{/^Date: /d}' "$1") <(sed '1,/^$/{/^Date: /d}' "$2")
}

# Apply the patch files in order on the current HEAD of TREE, one by one,
# naming the first that does not apply.
apply_series() {
	local tree=$1 p; shift
	for p in "$@"; do
		if ! git -C "$tree" am -q --keep-non-patch "$p" >&2; then
			git -C "$tree" am --abort >/dev/null 2>&1 || true
			die "patch $(basename "$p") does not apply"
		fi
	done
}

# Files a commit range touches (renames as delete + add).
touched_files() {
	git -C "$1" diff --name-only --no-renames "$2" "$3"
}

# Is path $1 one that has a post-series copy in the repo?
is_copy_path() {
	local d
	for d in "${COPY_DIRS[@]}"; do
		case "$1" in "$d"/*) return 0 ;; esac
	done
	return 1
}
