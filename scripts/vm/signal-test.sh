#!/usr/bin/env bash
# Tests of scripts/vm.sh's process handling on a real kernel:
#   scripts/vm/signal-test.sh BZIMAGE [CASE...]
# Boots BZIMAGE (VM_ACCEL=tcg unless set) with a guest script that sleeps,
# then ends the runner one way per case and checks that no QEMU of the run
# is left 2 s later and that the runner's exit status is the documented one.
# Cases (default all): int term hup (that signal sent to the runner), ctrlc
# (^C typed at the runner's terminal), kill (SIGKILL of the runner alone:
# its watchdog stops QEMU), timeout (VM_TIMEOUT=5: status 124), finish
# (the guest script ends: status 0), crash (the guest's init dies: status 1).
# Takes about a minute.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
vm=${VM_SH:-$top/scripts/vm.sh}	# VM_SH: another runner to test
if [ $# -lt 1 ] || [ ! -f "$1" ]; then echo "usage: signal-test.sh BZIMAGE [CASE...]" >&2; exit 2; fi
img=$1; shift
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(int term hup ctrlc kill timeout finish crash)
export VM_ACCEL=${VM_ACCEL:-tcg}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
set -m	# background jobs get SIGINT as a terminal's foreground job does
printf 'echo guest: sleeping\nsleep 600\n' > "$tmp/sleep.sh"
printf 'echo guest: done\n' > "$tmp/quick.sh"
fail=0
qemu_of() { pgrep -f "qemu-system-x86_64 .*$1/" || true; }
# wait_started OUT: until the guest script runs (at most 120 s)
wait_started() {
	local i
	for i in $(seq 1 1200); do
		grep -q 'guest: sleeping' "$1/output.txt" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# gone_within OUT TENTHS: no QEMU of the run within that time
gone_within() {
	local i
	for i in $(seq 0 "$2"); do
		[ -z "$(qemu_of "$1")" ] && { echo "$i"; return 0; }
		sleep 0.1
	done
	return 1
}
check() {	# check CASE WANT_RC GOT_RC GONE(tenths or empty)
	if [ -n "$4" ] && [ "$3" = "$2" ]; then
		echo "ok: $1: exit $3, no QEMU left after $(( $4 / 10 )).$(( $4 % 10 ))s"
	else
		echo "FAIL: $1: exit $3 (want $2), QEMU ${4:+gone after $4/10 s}${4:-still running: $(qemu_of "$o" | tr '\n' ' ')}"
		fail=1
		for p in $(qemu_of "$o"); do kill -KILL "$p" 2>/dev/null; done
	fi
}
for c in "${cases[@]}"; do
	o=$tmp/$c
	case "$c" in
	int|term|hup)
		"$vm" --script "$img" "$o" "$tmp/sleep.sh" 2>"$tmp/$c.log" &
		pid=$!
		wait_started "$o" || { echo "FAIL: $c: the guest did not start"; fail=1; }
		kill -"${c^^}" "$pid"
		gone=$(gone_within "$o" 20)
		rc=0; wait "$pid" || rc=$?
		want=130; [ "$c" = term ] && want=143; [ "$c" = hup ] && want=129
		check "$c" "$want" "$rc" "$gone" ;;
	ctrlc)
		python3 - "$vm" "$img" "$o" "$tmp/sleep.sh" > "$tmp/ctrlc.rc" <<'PY' &
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--script"] + sys.argv[2:])
out = sys.argv[3] + "/output.txt"
t = time.time()
while time.time() - t < 120:
    try:
        if "guest: sleeping" in open(out).read():
            break
    except OSError:
        pass
    time.sleep(0.1)
os.write(fd, b"\x03")
while True:
    try:
        if not os.read(fd, 4096):
            break
    except OSError:
        break
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st))
PY
		ppid=$!
		wait_started "$o" || { echo "FAIL: $c: the guest did not start"; fail=1; }
		sleep 0.3
		gone=$(gone_within "$o" 20)
		wait "$ppid"
		check "$c" 130 "$(cat "$tmp/ctrlc.rc")" "$gone" ;;
	kill)
		"$vm" --script "$img" "$o" "$tmp/sleep.sh" 2>"$tmp/$c.log" &
		pid=$!
		wait_started "$o" || { echo "FAIL: $c: the guest did not start"; fail=1; }
		kill -KILL "$pid"
		gone=$(gone_within "$o" 20)
		rc=0; wait "$pid" || rc=$?
		check "$c" 137 "$rc" "$gone" ;;
	timeout)
		rc=0; VM_TIMEOUT=5 "$vm" --script "$img" "$o" "$tmp/sleep.sh" 2>"$tmp/$c.log" || rc=$?
		gone=$(gone_within "$o" 20)
		check "$c" 124 "$rc" "$gone"
		grep -qx 'timeout after 5s' "$o/status" || { echo "FAIL: $c: status $(cat "$o/status")"; fail=1; } ;;
	finish)
		rc=0; "$vm" --script "$img" "$o" "$tmp/quick.sh" 2>"$tmp/$c.log" || rc=$?
		gone=$(gone_within "$o" 20)
		check "$c" 0 "$rc" "$gone"
		[ "$(tail -1 "$o/output.txt")" = 'hmmwalk-vm: exit=0' ] || { echo "FAIL: $c: no exit line"; fail=1; } ;;
	crash)
		# rdinit= names a program that does not exist: the kernel panics.
		rc=0; VM_APPEND=rdinit=/nonexistent "$vm" --script "$img" "$o" "$tmp/quick.sh" 2>"$tmp/$c.log" || rc=$?
		gone=$(gone_within "$o" 20)
		check "$c" 1 "$rc" "$gone"
		grep -q '^VM ended before the script finished' "$o/status" || { echo "FAIL: $c: status $(cat "$o/status")"; fail=1; } ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
exit $fail
