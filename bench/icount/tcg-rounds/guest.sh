#!/bin/sh
./hmm-bench info
./hmm-bench plain -s 64,512 -r 7,5 -c thp,present -g
