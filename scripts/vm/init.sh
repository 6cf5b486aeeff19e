#!/bin/busybox sh
# The guest's /init for scripts/vm.sh, which copies it into the initramfs
# with the programs under /t and its parameters as files under /vm:
#   /vm/mode  hmm:    run /t/hmm-tests with the arguments in /vm/args (one
#                     a line), or with /vm/each the matching tests one by one
#             script: run /t/run.sh with sh, in /t
#             probe:  nothing: only say that the guest came up (the KVM probe)
#   /vm/tag   the kernel log's marker ("hmmwalk-vm", "hmmwalk-bench")
#   /vm/zram  size of the zram swap device, or empty for none
#   /vm/each  (hmm) an extended regular expression: run each matching
#             fixture.variant.test of "hmm-tests -l" as a run of its own,
#             named in the kernel log before it starts
#   /vm/args  (hmm) the arguments of hmm-tests, one a line
# The program's output goes to the second serial port (/dev/ttyS1, the
# host's OUTDIR/tests.tap or OUTDIR/output.txt); when the program has
# finished, the last line there is "hmmwalk-vm: exit=N" (its exit status).
# Then the guest reboots, which ends QEMU (-no-reboot).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
conf() { cat "/vm/$1" 2>/dev/null; }
mode=$(conf mode)
tag=$(conf tag)
tag=${tag:-hmmwalk-vm}
if [ "$mode" = probe ]; then
	echo "hmmwalk-vm: exit=0" > /dev/ttyS1
	reboot -f
fi
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages
# Swap on zram, for tests that swap pages out.
zram=$(conf zram)
if [ -n "$zram" ] && [ -e /sys/block/zram0/disksize ]; then
	echo "$zram" > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null 2>&1 &&
		swapon /dev/zram0
fi
echo "$tag: start $(uname -r)" > /dev/kmsg
cd /t || exit 1
rc=0
case "$mode" in
hmm)
	each=$(conf each)
	if [ -n "$each" ]; then
		# One test per run, each named in the kernel log before it starts.
		./hmm-tests -l 2>&1 | awk '
			function flush(  i, j) { for (i = 0; i < nv; i++) for (j = 0; j < nt; j++) print cf "." v[i] "." t[j]; nv = nt = 0 }
			/^----/ { flush(); next }
			/^#/ || length($0) < 22 { next }
			{ f = substr($0, 1, 21); vv = substr($0, 22, 26); tt = substr($0, 48)
			  gsub(/ /, "", f); gsub(/ /, "", vv); gsub(/ /, "", tt)
			  if (f != "") cf = f; if (vv != "") v[nv++] = vv; if (tt != "") t[nt++] = tt }
			END { flush() }' | grep -E "$each" > /tmp/tests
		while read -r t; do
			echo "$tag: test $t" > /dev/kmsg
			./hmm-tests -r "$t" > /dev/ttyS1 2>&1 || rc=1
		done < /tmp/tests
	else
		set --
		if [ -f /vm/args ]; then
			while IFS= read -r a; do set -- "$@" "$a"; done < /vm/args
		fi
		./hmm-tests "$@" > /dev/ttyS1 2>&1
		rc=$?
	fi ;;
script)
	sh ./run.sh > /dev/ttyS1 2>&1
	rc=$? ;;
*)
	# Not a run: no exit line, so the host reports that it did not finish.
	echo "$tag: unknown mode '$mode' in /vm/mode" > /dev/ttyS1
	sync
	reboot -f ;;
esac
echo "hmmwalk-vm: exit=$rc" > /dev/ttyS1
echo "$tag: done exit=$rc" > /dev/kmsg
sync
reboot -f
