#!/usr/bin/env bash
# Boot a kernel in a QEMU TCG VM (as scripts/vm.sh does) with a busybox
# initramfs and run a shell script in it as root: what make bench runs.
#   benchvm.sh BZIMAGE OUTDIR SCRIPT [FILE...]
# SCRIPT and the FILEs (programs, with their shared libraries) are copied
# to /t in the guest; SCRIPT runs there with /t as the working directory.
# OUTDIR gets output.txt (what SCRIPT prints), console.log (the kernel
# log), cmdline and status.  The guest has tracefs at /sys/kernel/tracing,
# zram swap (BENCH_ZRAM, default 1G) and no device-coherent memory (no
# memmap=: only the device-private test_hmm devices).  VM_TIMEOUT
# (seconds, default 1200), VM_MEM (default 5G), VM_SMP (default 2) and
# VM_APPEND (extra kernel arguments) adjust the run.
. "$(dirname "$0")/common.sh"

[ $# -ge 3 ] || die "usage: benchvm.sh BZIMAGE OUTDIR SCRIPT [FILE...]"
img=$1 out=$2 script=$3; shift 3
[ -f "$img" ] || die "no kernel image $img"
[ -f "$script" ] || die "no script $script"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" | grep -q 'statically linked' ||
	busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	die "a statically linked busybox is needed (apt-get install busybox-static)"

rm -rf "$out"; mkdir -p "$out"
root=$out/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,t,etc}
cp "$busybox" "$root/bin/busybox"
cp "$script" "$root/t/run.sh"
for f in "$@"; do
	[ -f "$f" ] || die "no file $f"
	cp "$f" "$root/t/"
	# A program's shared libraries, at the same paths.
	{ ldd "$f" 2>/dev/null || true; } | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | while read -r lib; do
		[ -n "$lib" ] && [ -f "$lib" ] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done
cat > "$root/init" <<EOT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t tmpfs tmpfs /tmp
if [ -e /sys/block/zram0/disksize ]; then
	echo ${BENCH_ZRAM:-1G} > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null 2>&1 &&
		swapon /dev/zram0
fi
echo "hmmwalk-bench: start \$(uname -r)" > /dev/kmsg
cd /t
sh ./run.sh > /dev/ttyS1 2>&1
rc=\$?
echo "hmmwalk-vm: exit=\$rc" > /dev/ttyS1
echo "hmmwalk-bench: done exit=\$rc" > /dev/kmsg
sync
reboot -f
EOT
chmod +x "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out/initramfs.cpio"
rm -rf "$root"

cmdline="console=ttyS0 panic=-1 kunit.enable=0 rdinit=/init ${VM_APPEND:-}"
echo "$cmdline" > "$out/cmdline"
timeout=${VM_TIMEOUT:-1200}
start=$(date +%s)
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 -nodefaults -no-reboot -display none \
	-accel tcg -smp "${VM_SMP:-2}" -m "${VM_MEM:-5G}" -bios qboot.rom \
	-kernel "$img" -initrd "$out/initramfs.cpio" -append "$cmdline" \
	-serial "file:$out/console.log" -serial "file:$out/output.txt" \
	</dev/null >"$out/qemu.log" 2>&1
rc=$?
set -e
rm -f "$out/initramfs.cpio"
secs=$(( $(date +%s) - start ))
sed -i 's/\r$//' "$out/console.log" "$out/output.txt"
if [ $rc = 124 ] || [ $rc = 137 ]; then
	echo "timeout after ${timeout}s" > "$out/status"
	msg "VM timed out after ${timeout}s (logs in $out)"
	exit 1
elif ! grep -q '^hmmwalk-vm: exit=' "$out/output.txt"; then
	echo "VM ended before the script finished (qemu exit $rc)" > "$out/status"
	msg "VM ended before the script finished after ${secs}s (logs in $out)"
	exit 1
fi
echo "finished in ${secs}s" > "$out/status"
msg "VM run finished in ${secs}s (logs in $out)"
