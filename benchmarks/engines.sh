#!/bin/sh
# Benchmark: the two path engines against each other and against no delay, in one boot
# (one kernel, one CPU budget), on a kernel with sch_netem.  On a machine without it, run
# it in the stock-kernel VM:  tests/vm/run.sh --command 'sh benchmarks/engines.sh'
#
# 1. edgecollab probe on the default scenario (3 devices here, 30 Mbit/s) with no delay,
#    with the delay line and with netem: each device's RTT and goodput in its share;
# 2. benchmarks.fidelity at 10 and 50 Mbit/s, split 0.5, RTT 0 and 40 ms, both engines;
# 3. the default scenario (edgecollab run, every policy) with each engine;
# 4. what the kernel logged about HTB (netem under HTB used to warn).
set -u
cd "$(dirname "$0")/.."
work=$(mktemp -d)
variant() {   # variant NAME KEY VALUE...: the default scenario with keys replaced
    name=$1; shift
    cp scenarios/default.yaml "$work/$name.yaml"
    while [ $# -gt 0 ]; do
        sed -i "s/^$1:.*/$1: $2/" "$work/$name.yaml"; shift 2
    done
}
variant probe-none devices 3 capacity 30mbit delay 0ms
variant probe-userspace devices 3 capacity 30mbit delay_engine userspace
variant probe-netem devices 3 capacity 30mbit delay_engine netem
variant run-userspace delay_engine userspace
variant run-netem delay_engine netem
echo "*** engines: kernel $(uname -r), $(nproc) CPUs"
for engine in none userspace netem; do
    echo "*** engines: probe, $engine"
    edgecollab probe "$work/probe-$engine.yaml" --json
done
echo "*** engines: fidelity"
.venv/bin/python -m benchmarks.fidelity --capacities 10,50 --splits 0.5 --rtt 0,40 \
    --engine userspace,netem --out "$work/fidelity.json"
for engine in userspace netem; do
    echo "*** engines: edgecollab run, $engine"
    edgecollab run "$work/run-$engine.yaml" --out "$work/run-$engine"
done
echo "*** engines: kernel log lines about htb: $(dmesg | grep -c htb)"
dmesg | grep htb | head -n 5
rm -rf "$work"
