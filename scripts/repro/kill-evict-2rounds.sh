#!/bin/sh
for r in 1 2; do
./hmm-tests -r hmm.hmm_device_private.benchmark_thp_migration > bench.out 2>&1
echo "benchmark rc=$?"
grep -E "terminated|ok 1" bench.out
./hmm-tests -r hmm.hmm_device_private.open_close | grep "^ok"
dmesg | grep -c "BUG: KASAN"
done
