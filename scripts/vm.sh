#!/usr/bin/env bash
# The VM runner: boot a kernel in QEMU with a busybox initramfs and run a
# program in it as root.
#
#   vm.sh BZIMAGE OUTDIR HMM_TESTS [hmm-tests arguments...]
#       hmm-tests (make check steps 7 and 8, make selftest, debug, expect).
#       The device-coherent variants get memory from the command line
#       (memmap= reserves 512 MiB; test_hmm's two coherent devices use 256
#       MiB each).  OUTDIR gets tests.tap (what hmm-tests prints).
#   vm.sh --script BZIMAGE OUTDIR SCRIPT [FILE...]
#       A shell script (make bench: bench/guest.sh).  SCRIPT (as run.sh) and
#       the FILEs (programs, with their shared libraries) are copied to /t;
#       SCRIPT runs there with /t as the working directory.  No memmap=:
#       only the device-private test_hmm devices.  OUTDIR gets output.txt
#       (what SCRIPT prints).
#   vm.sh --accel BZIMAGE
#       Print the accelerator the settings give for BZIMAGE (kvm or tcg),
#       running the KVM probe if its result is not cached; no other run.
#
# OUTDIR (emptied first) also gets console.log (the kernel log), cmdline
# (the kernel command line), status (one line: "finished in Ns", "timeout
# after Ns", "VM ended before ... finished (qemu exit N)" or "interrupted by
# SIGINT after Ns"), accel (kvm or tcg), qemu.log (QEMU's own output) and,
# when the KVM probe ran, kvm-probe/ (its logs).  The last line of
# tests.tap or output.txt is "hmmwalk-vm: exit=N" when the program
# finished, N its exit status.  The guest's /init is scripts/vm/init.sh.
#
# Settings (environment):
#   VM_ACCEL=auto|kvm|tcg|icount  the accelerator (default auto).  tcg: QEMU's
#           emulation, slow but sure.  kvm: KVM, an error (exit 2) when
#           /dev/kvm cannot be opened; no probe.  auto: KVM when /dev/kvm
#           opens and a probe guest (this kernel, busybox only) boots with it
#           within VM_PROBE_TIMEOUT seconds, otherwise TCG: KVM guests are
#           known to hang on some machines.  The probe's result is cached in
#           $WORK/kvm-probe (.work/kvm-probe), one line per QEMU version, host
#           kernel release and guest kernel image (its SHA-256); delete the
#           file to probe again.  The choice is printed and written to
#           OUTDIR/accel.
#           icount: TCG on one host thread with -icount shift=0, one vCPU
#           (VM_SMP is ignored): the guest's clock counts the instructions
#           it executed, 1 ns each, so guest timings repeat to within 0.1%
#           whatever else the host runs.  They count instructions, not
#           cache misses or memory bandwidth: compare kernels with it, do
#           not read it as time on hardware.
#   VM_PROBE_TIMEOUT  seconds the KVM probe may take (default 20).
#   VM_TIMEOUT  seconds the run may take before QEMU is stopped (default
#           900; with --script 1200).
#   VM_MEM  guest memory (default 3G; with --script 5G).
#   VM_SMP  guest CPUs (default 2).
#   VM_APPEND  extra kernel arguments.
#   VM_ZRAM  size of the guest's zram swap, empty for none (default 512M;
#           with --script $BENCH_ZRAM, default 1G).
#   VM_EACH=REGEX  (hmm-tests only) run the matching fixture.variant.test
#           names one by one instead, each named in the kernel log before it
#           starts (for debugging: kernel reports can be placed); the
#           hmm-tests arguments are then ignored.
#
# Exit status (the same for every caller):
#   0    the program finished (its own exit status is the "exit=N" line:
#        test failures are for scripts/hmmtap.py to judge);
#   1    the guest did not finish: the VM ended before the program did
#        (kernel panic, QEMU error);
#   2    usage or setup error (arguments, missing files or tools, VM_ACCEL);
#   124  VM_TIMEOUT reached: QEMU was stopped;
#   129, 130, 143  interrupted by SIGHUP, SIGINT, SIGTERM: QEMU was stopped.
# Whichever way the runner exits (Ctrl-C included), QEMU is stopped at once
# (SIGTERM, then SIGKILL after 1 s); should the runner itself be killed with
# SIGKILL, its watchdog stops QEMU within a second.
. "$(dirname "$0")/common.sh"
set -E
trap 'exit 2' ERR

fail() { printf 'error: %s\n' "$*" >&2; exit 2; }
usage() {
	fail "usage: vm.sh BZIMAGE OUTDIR HMM_TESTS [args...]
       vm.sh --script BZIMAGE OUTDIR SCRIPT [FILE...]
       vm.sh --accel BZIMAGE"
}

mode=hmm
case "${1:-}" in
--script) mode=script; shift; [ $# -ge 3 ] || usage ;;
--accel) mode=accel; shift; [ $# -eq 1 ] || usage ;;
-*) usage ;;
*) [ $# -ge 3 ] || usage ;;
esac
img=$1
[ -f "$img" ] || fail "no kernel image $img"
if [ "$mode" != accel ]; then
	out=$2 prog=$3; shift 3
	case "$out" in ""|/) fail "bad OUTDIR '$out'" ;; esac
	if [ "$mode" = hmm ]; then
		[ -x "$prog" ] || fail "no test binary $prog"
	else
		[ -f "$prog" ] || fail "no script $prog"
		for f in "$@"; do [ -f "$f" ] || fail "no file $f"; done
	fi
fi
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || fail "cpio not found (apt-get install cpio)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" | grep 'statically linked' >/dev/null ||
	busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep 'statically linked' >/dev/null ||
	fail "a statically linked busybox is needed (apt-get install busybox-static)"

if [ "$mode" = script ]; then
	timeout=${VM_TIMEOUT:-1200} mem=${VM_MEM:-5G} zram=${VM_ZRAM-${BENCH_ZRAM:-1G}} tag=hmmwalk-bench
	outfile=output.txt what="the script"
else
	timeout=${VM_TIMEOUT:-900} mem=${VM_MEM:-3G} zram=${VM_ZRAM-512M} tag=hmmwalk-vm
	outfile=tests.tap what="hmm-tests"
fi
case "$timeout" in ''|*[!0-9]*) fail "VM_TIMEOUT must be a number of seconds" ;; esac
case "${VM_PROBE_TIMEOUT:-20}" in ''|*[!0-9]*) fail "VM_PROBE_TIMEOUT must be a number of seconds" ;; esac
case "${VM_ACCEL:-auto}" in auto|kvm|tcg|icount) ;; *) fail "VM_ACCEL must be auto, kvm, tcg or icount (not '$VM_ACCEL')" ;; esac
smp=${VM_SMP:-2}

# ---------------------------------------------------------------------------
# QEMU runs in the background, in the runner's process group (so signals to
# the group reach it too), watched by a watchdog that stops it after
# VM_TIMEOUT seconds or as soon as the runner is gone.  stop_qemu, called
# from the traps, ends it: SIGTERM, SIGKILL after 1 s.
qpid="" wpid=""
alive() {	# a process that exists and is not a zombie
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || true
	[ -n "$st" ] && [ "$st" != Z ]
}
stop_qemu() {
	local p=$qpid
	if [ -n "$wpid" ]; then kill "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; wpid=""; fi
	[ -n "$p" ] || return 0
	qpid=""
	kill -TERM "$p" 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		alive "$p" || break
		sleep 0.1
	done
	if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
	wait "$p" 2>/dev/null || true
}
watchdog() {	# watchdog PID SECONDS FLAG: stop PID when the time is up (touch FLAG) or the runner is gone
	local p=$1 t=$2 flag=$3 runner=$$ n=0
	trap - INT TERM HUP EXIT ERR
	while [ "$n" -lt "$t" ]; do
		sleep 1
		n=$((n + 1))
		alive "$runner" || break	# gone, or a zombie its parent has not reaped
		kill -0 "$p" 2>/dev/null || exit 0
	done
	[ "$n" -lt "$t" ] || : > "$flag"
	kill -TERM "$p" 2>/dev/null || exit 0
	sleep 2
	kill -KILL "$p" 2>/dev/null || true
}
# run_qemu DIR SECONDS OUTFILE QEMU-ARGS...: one VM run, its logs in DIR;
# sets qrc (QEMU's exit status) and timed_out (1 when stopped by the
# watchdog at SECONDS).
run_qemu() {
	local dir=$1 secs=$2 file=$3; shift 3
	rm -f "$dir/.timed-out"
	qemu-system-x86_64 -nodefaults -no-reboot -display none "$@" \
		-serial "file:$dir/console.log" -serial "file:$dir/$file" \
		</dev/null >"$dir/qemu.log" 2>&1 &
	qpid=$!
	watchdog "$qpid" "$secs" "$dir/.timed-out" &
	wpid=$!
	qrc=0
	wait "$qpid" || qrc=$?
	qpid=""
	kill "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	wpid=""
	timed_out=0
	if [ -e "$dir/.timed-out" ]; then timed_out=1; rm -f "$dir/.timed-out"; fi
	sed -i 's/\r$//' "$dir/console.log" "$dir/$file" 2>/dev/null || true
}

start="" outdir_ready=""
on_signal() {	# on_signal NAME STATUS
	trap - INT TERM HUP
	stop_qemu
	if [ -n "$outdir_ready" ]; then
		local s=""
		[ -z "$start" ] || s=" after $(( $(date +%s) - start ))s"
		echo "interrupted by SIG$1$s" > "$out/status"
		sed -i 's/\r$//' "$out/console.log" "$out/$outfile" 2>/dev/null || true
		rm -f "$out/initramfs.cpio"
	fi
	msg "interrupted by SIG$1: QEMU stopped"
	exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP
trap 'stop_qemu' EXIT

# ---------------------------------------------------------------------------
# The initramfs: busybox, scripts/vm/init.sh as /init, /vm/* its parameters.
# mkroot DIR MODE: the common part.
mkroot() {
	local root=$1
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,t,etc,vm}
	cp "$busybox" "$root/bin/busybox"
	cp "$TOP/scripts/vm/init.sh" "$root/init"
	chmod +x "$root/init"
	echo "$2" > "$root/vm/mode"
	echo "$tag" > "$root/vm/tag"
}
# addlibs ROOT PROGRAM: a program's shared libraries, at the same paths.
addlibs() {
	local root=$1 lib
	{ ldd "$2" 2>/dev/null || true; } | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' |
	while read -r lib; do
		[ -f "$lib" ] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
# mkcpio ROOT CPIO
mkcpio() {
	(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$2"
	rm -rf "$1"
}

# ---------------------------------------------------------------------------
# The accelerator: sets accel (kvm or tcg) and accel_why.  QEMU's default
# CPU model either way ("-cpu host" made QEMU 7.2 abort at start on a test
# machine: "failed to set MSR 0x10a").
kvm_opens() { [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; }
rel() { case "$1" in "$TOP"/*) echo "${1#"$TOP"/}" ;; *) echo "$1" ;; esac; }
kvm_probe() {	# kvm_probe DIR: boot BZIMAGE with KVM; sets probe_ok and probe_why
	local dir=$1 t=${VM_PROBE_TIMEOUT:-20} s0
	rm -rf "$dir"; mkdir -p "$dir"
	mkroot "$dir/initramfs" probe
	mkcpio "$dir/initramfs" "$dir/initramfs.cpio"
	s0=$(date +%s)
	run_qemu "$dir" "$t" output.txt -accel kvm -smp 1 -m 512M -bios qboot.rom \
		-kernel "$img" -initrd "$dir/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 kunit.enable=0 rdinit=/init"
	rm -f "$dir/initramfs.cpio"
	if grep -q '^hmmwalk-vm: exit=0' "$dir/output.txt" 2>/dev/null; then
		probe_ok=1 probe_why="the KVM probe guest booted in $(( $(date +%s) - s0 ))s"
	elif [ "$timed_out" = 1 ]; then
		probe_ok=0 probe_why="the KVM probe guest did not come up within ${t}s"
	else
		probe_ok=0 probe_why="the KVM probe guest failed (qemu exit $qrc: $(head -c 200 "$dir/qemu.log" | tr '\n' ' '))"
	fi
}
choose_accel() {	# choose_accel PROBE_DIR
	case "${VM_ACCEL:-auto}" in
	tcg) accel=tcg accel_why="VM_ACCEL=tcg" ;;
	icount) accel=icount accel_why="VM_ACCEL=icount (TCG, one vCPU, guest time counts instructions)" ;;
	kvm)
		kvm_opens || fail "VM_ACCEL=kvm, but /dev/kvm cannot be opened"
		accel=kvm accel_why="VM_ACCEL=kvm (no probe)" ;;
	auto)
		if ! kvm_opens; then
			accel=tcg accel_why="auto: /dev/kvm cannot be opened"
			return
		fi
		local cache=$WORK/kvm-probe key line
		key="qemu=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') host=$(uname -r) kernel=$(sha256sum < "$img" | cut -c1-16)"
		mkdir -p "$WORK"
		line=$(grep -F " $key " "$cache" 2>/dev/null | tail -1 || true)
		if [ -z "$line" ]; then
			msg "probing KVM with $(rel "$img") (at most ${VM_PROBE_TIMEOUT:-20}s)"
			kvm_probe "$1"
			local r=tcg
			[ "$probe_ok" = 1 ] && r=kvm
			line="$r $key $(date -u +%Y-%m-%dT%H:%MZ) $probe_why"
			{ tail -n 49 "$cache" 2>/dev/null || true; echo "$line"; } > "$cache.new"
			mv "$cache.new" "$cache"
			accel=$r accel_why="auto: $probe_why"
		else
			local date why
			read -r accel _ _ _ date why <<< "$line"
			accel_why="auto: $why (probed $date, cached in $(rel "$cache"))"
		fi ;;
	*) fail "VM_ACCEL must be auto, kvm, tcg or icount (not '$VM_ACCEL')" ;;
	esac
}

if [ "$mode" = accel ]; then
	d=$(mktemp -d)
	trap 'stop_qemu; rm -rf "$d"' EXIT
	choose_accel "$d/kvm-probe"
	msg "accelerator: $accel ($accel_why)"
	echo "$accel"
	exit 0
fi

rm -rf "$out"; mkdir -p "$out"
outdir_ready=1
choose_accel "$out/kvm-probe"
echo "$accel" > "$out/accel"
msg "accelerator: $accel ($accel_why)"

root=$out/initramfs
mkroot "$root" "$mode"
echo "$zram" > "$root/vm/zram"
if [ "$mode" = hmm ]; then
	cp "$prog" "$root/t/hmm-tests"
	addlibs "$root" "$prog"
	for a in "$@"; do
		case "$a" in *$'\n'*) fail "an hmm-tests argument with a newline" ;; esac
		printf '%s\n' "$a"
	done > "$root/vm/args"
	printf '%s\n' "${VM_EACH:-}" > "$root/vm/each"
else
	cp "$prog" "$root/t/run.sh"
	for f in "$@"; do
		cp "$f" "$root/t/"
		addlibs "$root" "$f"
	done
fi
mkcpio "$root" "$out/initramfs.cpio"

cmdline="console=ttyS0 panic=-1 kunit.enable=0 rdinit=/init"
if [ "$mode" = hmm ]; then
	# shellcheck disable=SC2016 # a literal $ for memmap=
	cmdline+=' memmap=512M$0x40000000 test_hmm.spm_addr_dev0=0x40000000 test_hmm.spm_addr_dev1=0x50000000'
fi
cmdline+=" ${VM_APPEND:-}"
echo "$cmdline" > "$out/cmdline"
start=$(date +%s)
accel_args=(-accel "$accel")
# One vCPU: with several on one thread, a cross-CPU spin (the clocksource
# watchdog's skew check) can stall the guest for good.
[ "$accel" = icount ] && accel_args=(-accel tcg,thread=single -icount shift=0,sleep=on) smp=1
run_qemu "$out" "$timeout" "$outfile" "${accel_args[@]}" -smp "$smp" -m "$mem" \
	-bios qboot.rom -kernel "$img" -initrd "$out/initramfs.cpio" -append "$cmdline"
rm -f "$out/initramfs.cpio"
secs=$(( $(date +%s) - start ))
if [ "$timed_out" = 1 ]; then
	echo "timeout after ${timeout}s" > "$out/status"
	msg "VM timed out after ${timeout}s (logs in $out)"
	exit 124
elif ! grep -q '^hmmwalk-vm: exit=' "$out/$outfile"; then
	echo "VM ended before $what finished (qemu exit $qrc)" > "$out/status"
	msg "VM ended before $what finished after ${secs}s (logs in $out)"
	exit 1
fi
echo "finished in ${secs}s" > "$out/status"
msg "VM run finished in ${secs}s (logs in $out)"
