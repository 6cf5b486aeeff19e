#!/bin/sh
./hmm-bench info
./hmm-bench plain -s 64 -r 5 -c thp,present -g
