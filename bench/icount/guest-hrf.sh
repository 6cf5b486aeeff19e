#!/bin/sh
# hmm_range_fault() without HMM_PFN_REQ_MIGRATE, the path every
# hmm_range_fault() user runs: HMM_DMIRROR_READ (faulting) on present and
# never-touched pages, HMM_DMIRROR_SNAPSHOT on present pages, 64 MiB, 5 times.
./hmm-bench info
./hmm-bench hrf -s 64 -r 5 -g
