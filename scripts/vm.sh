#!/usr/bin/env bash
# Boot a kernel in a QEMU TCG VM (KVM guests hang on these machines) with a
# busybox initramfs and run hmm-tests in it as root.
#   vm.sh BZIMAGE OUTDIR HMM_TESTS [hmm-tests arguments...]
# OUTDIR gets console.log (the kernel log), tests.tap (hmm-tests output)
# and cmdline.  The device-coherent variants get memory from the command
# line (memmap= reserves 512 MiB; test_hmm's two coherent devices use 256
# MiB each).  VM_TIMEOUT (seconds, default 900), VM_MEM (default 3G),
# VM_SMP (default 2), VM_APPEND (extra kernel arguments) and VM_EACH (see
# below) adjust the run.
. "$(dirname "$0")/common.sh"

[ $# -ge 3 ] || die "usage: vm.sh BZIMAGE OUTDIR HMM_TESTS [args...]"
img=$1 out=$2 bin=$3; shift 3
[ -f "$img" ] || die "no kernel image $img"
[ -x "$bin" ] || die "no test binary $bin"
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
cp "$bin" "$root/t/hmm-tests"
# The test binary's shared libraries, at the same paths.
ldd "$bin" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | while read -r lib; do
	[ -n "$lib" ] && [ -f "$lib" ] || continue
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
args=$(printf ' %q' "$@")
# VM_EACH=REGEX: run the matching tests one by one instead (for debugging:
# the kernel log names the test before each one, so reports can be placed).
each=${VM_EACH:-}
cat > "$root/init" <<EOT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages
# Swap on zram, for tests that swap pages out.
if [ -e /sys/block/zram0/disksize ]; then
	echo 512M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null 2>&1 &&
		swapon /dev/zram0
fi
echo "hmmwalk-vm: start \$(uname -r)" > /dev/kmsg
cd /t
if [ -n "$each" ]; then
	# One test per run, each named in the kernel log before it starts.
	rc=0
	./hmm-tests -l 2>&1 | awk '
		function flush(  i, j) { for (i = 0; i < nv; i++) for (j = 0; j < nt; j++) print cf "." v[i] "." t[j]; nv = nt = 0 }
		/^----/ { flush(); next }
		/^#/ || length(\$0) < 22 { next }
		{ f = substr(\$0, 1, 21); vv = substr(\$0, 22, 26); tt = substr(\$0, 48)
		  gsub(/ /, "", f); gsub(/ /, "", vv); gsub(/ /, "", tt)
		  if (f != "") cf = f; if (vv != "") v[nv++] = vv; if (tt != "") t[nt++] = tt }
		END { flush() }' | grep -E "$each" > /tmp/tests
	while read -r t; do
		echo "hmmwalk-vm: test \$t" > /dev/kmsg
		./hmm-tests -r "\$t" > /dev/ttyS1 2>&1 || rc=1
	done < /tmp/tests
else
	./hmm-tests$args > /dev/ttyS1 2>&1
	rc=\$?
fi
echo "hmmwalk-vm: exit=\$rc" > /dev/ttyS1
echo "hmmwalk-vm: done exit=\$rc" > /dev/kmsg
sync
reboot -f
EOT
chmod +x "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out/initramfs.cpio"
rm -rf "$root"

cmdline="console=ttyS0 panic=-1 kunit.enable=0 rdinit=/init"
cmdline+=' memmap=512M$0x40000000 test_hmm.spm_addr_dev0=0x40000000 test_hmm.spm_addr_dev1=0x50000000'
cmdline+=" ${VM_APPEND:-}"
echo "$cmdline" > "$out/cmdline"
timeout=${VM_TIMEOUT:-900}
start=$(date +%s)
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 -nodefaults -no-reboot -display none \
	-accel tcg -smp "${VM_SMP:-2}" -m "${VM_MEM:-3G}" -bios qboot.rom \
	-kernel "$img" -initrd "$out/initramfs.cpio" -append "$cmdline" \
	-serial "file:$out/console.log" -serial "file:$out/tests.tap" \
	</dev/null >"$out/qemu.log" 2>&1
rc=$?
set -e
rm -f "$out/initramfs.cpio"
secs=$(( $(date +%s) - start ))
sed -i 's/\r$//' "$out/console.log" "$out/tests.tap"
if [ $rc = 124 ] || [ $rc = 137 ]; then
	echo "timeout after ${timeout}s" > "$out/status"
	msg "VM timed out after ${timeout}s (logs in $out)"
elif ! grep -q '^hmmwalk-vm: exit=' "$out/tests.tap"; then
	echo "VM ended before hmm-tests finished (qemu exit $rc)" > "$out/status"
	msg "VM ended before hmm-tests finished after ${secs}s (logs in $out)"
else
	echo "finished in ${secs}s" > "$out/status"
	msg "VM run finished in ${secs}s (logs in $out)"
fi
