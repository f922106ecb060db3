#!/usr/bin/env bash
# A 2-rank mesh whose ranks talk over TCP through a limited link, on one machine: each rank runs
# in its own network namespace, joined to a bridge by a veth pair whose egress is shaped by a
# token bucket (tc tbf) to RATE. `llama3 bench --mesh 2x1` then prints the per-step split between
# computing and communicating, as it would between two machines on such a link.
#
# Needs root (namespaces, veth, tc) and a kernel with the tbf qdisc. Latency cannot be added
# where the kernel lacks sch_netem (this machine's does): the link then has veth's own latency
# (tens of microseconds) and the figure says so.
#
# Usage: bench/mesh_links.sh [RATE ...]   (default: 10gbit 25gbit unlimited)
# Environment: LLAMA3 (the binary, default build/llama3), BENCH_ARGS (extra bench flags).
set -euo pipefail

llama3=${LLAMA3:-build/llama3}
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(10gbit 25gbit unlimited)
net=10.77.0
prefix=l3mesh

cleanup() {
  for i in 0 1; do ip netns del "${prefix}$i" 2>/dev/null || true; done
  ip link del "${prefix}br" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip link add "${prefix}br" type bridge
ip addr add "$net.254/24" dev "${prefix}br"
ip link set "${prefix}br" up
for i in 0 1; do
  ns="${prefix}$i"
  ip netns add "$ns"
  ip link add "${prefix}h$i" type veth peer name eth0 netns "$ns"
  ip link set "${prefix}h$i" master "${prefix}br" up
  ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done

run() {
  local rate=$1
  for i in 0 1; do
    ip netns exec "${prefix}$i" tc qdisc del dev eth0 root 2>/dev/null || true
    if [ "$rate" != unlimited ]; then
      # A bucket of 1 ms at the rate: bursts of one all-reduce's bytes pass at the line rate.
      ip netns exec "${prefix}$i" tc qdisc add dev eth0 root tbf rate "$rate" burst 2mb latency 5ms
    fi
  done
  echo "=== link: $rate (tbf on each rank's egress; veth latency, no added delay)"
  local args=(bench --weights random --layers 4 --threads 1 --mesh 2x1 --prefill 0 --decode 0
              --batch_sizes 1,32 --steps 16 --reps 3 --idle_wait 0 ${BENCH_ARGS:-})
  # Ranks reach mpirun (in this namespace) and each other through the bridge; no shared memory.
  env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=tcp,self \
    OMPI_MCA_btl_tcp_if_include="$net.0/24" OMPI_MCA_oob_tcp_if_include="$net.0/24" \
    PMIX_MCA_ptl_tcp_remote_connections=1 PMIX_MCA_ptl_tcp_if_include="$net.0/24" \
    mpirun -np 1 ip netns exec "${prefix}0" "$llama3" "${args[@]}" : \
    -np 1 ip netns exec "${prefix}1" "$llama3" "${args[@]}" | sed -n '/mesh of 2 ranks/,$p'
}

for rate in "${rates[@]}"; do run "$rate"; done
