#!/usr/bin/env bash
# The stress test through the server: one `llama3 serve --check_finite` under `llama3 bench-serve`
# rounds for MINUTES, with a KV pool small enough that requests are preempted, a shared prefix
# (prefix cache), and a share of clients that hang up mid-stream. Between rounds bench-serve reads
# the server's VmRSS and C heap from /metrics. Prints one line per round and a summary: tokens/s/user
# over time (first, middle and last 10% of the rounds), RSS and heap at start and end, every
# request accounted for (completed +
# cancelled = sent, none failed), logits checked for NaN/Inf, preemptions, and the server idle
# with no KV block held after every round. Exit non-zero if any of that fails. Half an hour by
# default, so a make target (`make stress-serve`), not part of `make test`.
#
#   MINUTES=30 LAYERS=2 THREADS=0 CONCURRENCY=32 REQUESTS=200 KV_GIB=0.04 bench/serve_stress.sh [llama3]
set -euo pipefail
source "$(dirname "$0")/serve_common.sh"
BIN=${1:-build/llama3}
MINUTES=${MINUTES:-30}
LAYERS=${LAYERS:-2}
THREADS=${THREADS:-0}
CONCURRENCY=${CONCURRENCY:-32}
REQUESTS=${REQUESTS:-200}  # per round
KV_GIB=${KV_GIB:-0.04}     # 2 layers: ~330 blocks of 32 tokens, fewer than 32 requests of up to 544 need
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/llama3-serve-stress.XXXXXX)}
mkdir -p "$OUT_DIR"

server_pid=""
trap '[ -n "$server_pid" ] && { kill -TERM $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true; }' EXIT
start_server "$BIN" "$OUT_DIR/server.log" --weights random --layers "$LAYERS" --threads "$THREADS" \
  --max_seq_len 1024 --max_batch 32 --kv_memory "$KV_GIB" --check_finite

echo "server pid $server_pid on port $port; rounds of $REQUESTS requests for $MINUTES minutes; files in $OUT_DIR"
end=$(( $(date +%s) + MINUTES * 60 ))
round=0
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  json="$OUT_DIR/round$round.json"
  # bench-serve exits non-zero on a failed request or a server not idle after the round.
  "$BIN" bench-serve --port "$port" --requests "$REQUESTS" --concurrency "$CONCURRENCY" --shared_prefix 32 \
    --prompt_tokens 64,256 --max_tokens 256 --cancel_fraction 0.05 --seed "$round" --timeout_s 1800 \
    --idle_wait_s 30 --json "$json" >"$json.txt" 2>&1 || { cat "$json.txt" >&2; exit 1; }
  /usr/bin/env python3 - "$json" "$round" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); s = j["summary"]; sv = j["server"]
print(f"round {sys.argv[2]}: {s['completed']} completed, {s['cancelled']} cancelled, {s['failed']} failed "
      f"in {s['duration_s']:.0f} s; {1000 / s['tpot_ms']['mean']:.2f} tok/s/user (TPOT mean "
      f"{s['tpot_ms']['mean']:.1f} ms), {s['output_throughput']:.0f} tok/s; {sv['preemptions']:.0f} preemptions; "
      f"server VmRSS {sv['after']['resident_bytes'] / 2**20:.1f} MiB, heap in use {sv['after']['heap_in_use'] / 2**20:.2f} MiB, "
      f"freed but held {sv['after']['heap_free_held'] / 2**20:.2f} MiB", flush=True)
EOF
done

/usr/bin/env python3 - "$OUT_DIR" "$round" <<'EOF'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/round{r}.json")) for r in range(1, rounds + 1)]
tsu = [1000 / j["summary"]["tpot_ms"]["mean"] for j in runs]
def window(lo, hi):
    a = int(lo * len(tsu)); b = max(a + 1, int(hi * len(tsu)))
    part = tsu[a:b]; return sum(part) / len(part)
tot = lambda k: sum(j["summary"][k] for j in runs)
sent, done, cancelled, failed = tot("requests"), tot("completed"), tot("cancelled"), tot("failed")
first, last = runs[0]["server"]["before"], runs[-1]["server"]["after"]
rss = [first["resident_bytes"] / 2**20] + [j["server"]["after"]["resident_bytes"] / 2**20 for j in runs]  # MiB
checked = last["logits_checked"] - first["logits_checked"]
generated = last["generation_tokens"] - first["generation_tokens"]
print(f"stress-serve: {rounds} rounds, {sent} requests: {done} completed, {cancelled} cancelled by their client, "
      f"{failed} failed; {generated:.0f} tokens generated")
print(f"stress-serve: tok/s/user first 10% {window(0, 0.1):.2f}, middle {window(0.45, 0.55):.2f}, "
      f"last 10% {window(0.9, 1.0):.2f}")
print(f"stress-serve: server VmRSS {rss[0]:.1f} MiB at start, {rss[1]:.1f} after round 1, "
      f"{rss[-1]:.1f} at the end (min {min(rss[1:]):.1f}, max {max(rss[1:]):.1f} after round 1)")
heap = [j["server"]["after"]["heap_in_use"] for j in runs]
held = [j["server"]["after"]["heap_free_held"] for j in runs]
print(f"stress-serve: C heap in use {first['heap_in_use'] / 2**20:.2f} MiB at start, {heap[0] / 2**20:.2f} after round 1, "
      f"{heap[-1] / 2**20:.2f} at the end (max {max(heap) / 2**20:.2f}); freed but held by malloc "
      f"{first['heap_free_held'] / 2**20:.2f}, {held[0] / 2**20:.2f}, {held[-1] / 2**20:.2f} MiB (max {max(held) / 2**20:.2f})")
print(f"stress-serve: NaN/Inf checks {checked:.0f} rows, {last['logits_nonfinite'] - first['logits_nonfinite']:.0f} "
      f"failed; preemptions {sum(j['server']['preemptions'] for j in runs):.0f}; KV blocks in use at the end "
      f"{last['kv_blocks_used']:.0f} of {last['kv_blocks_total']:.0f}; idle after every round: "
      f"{all(j['server']['idle_at_end'] for j in runs)}")
ok = (done + cancelled == sent and failed == 0 and checked == generated and checked > 0
      and last["logits_nonfinite"] == first["logits_nonfinite"] and all(j["server"]["idle_at_end"] for j in runs))
sys.exit(0 if ok else 1)
EOF
