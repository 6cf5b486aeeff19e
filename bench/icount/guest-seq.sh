#!/bin/sh
# The one walk against two walks (hmm_range_fault(REQ_FAULT), then
# migrate_vma_setup()) with the setup functions traced, then the drivers'
# sequences on present pages, in one icount VM.
./hmm-bench info
./hmm-bench seq -s 64 -r 3 -c present,thp,untouched -g
./hmm-bench drivers -s 64 -r 2 -c present -g
