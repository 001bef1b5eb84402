#!/bin/sh
# How sample_traces/compaction-writers.perf-script.zst was captured (as root, Linux 6.18,
# 2 CPUs, 1 NUMA node): memory compaction while the two threads of `writers` write their pages.
#
#   sh bench/capture/compaction-writers.sh OUT_DIR
set -eu
out=${1:?usage: compaction-writers.sh OUT_DIR}
here=$(dirname "$0")
mkdir -p "$out"
cc -O2 -pthread -o "$out/writers" "$here/writers.c"
# 2 threads, 256 MiB (every other page returned to the kernel), 8 s of writes
"$out/writers" 2 256 8 2> "$out/writers.log" &
sleep 1.5  # the mapping is populated and fragmented
perf record -a -m 64M -e tlb:tlb_flush -e 'migrate:*' -e exceptions:page_fault_user \
    -o "$out/cap.data" -- sh -c 'sleep 1; echo 1 > /proc/sys/vm/compact_memory; sleep 1'
wait
perf script --header -F comm,pid,tid,cpu,time,event,trace -i "$out/cap.data" \
    2>/dev/null | zstd -19 -q > "$out/compaction-writers.perf-script.zst"
