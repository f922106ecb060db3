#!/usr/bin/env bash
# The serving table of docs/PERF.md: `llama3 serve` under `llama3 bench-serve` load for each
# (layers, prefix caching, concurrency), RUNS times each, one after the other. Prints one markdown
# row per run and keeps every run's JSON in OUT_DIR. Minutes per configuration, so a make target
# (`make bench-serve-table`), not part of `make test`.
#
#   LAYERS="2 16" CACHING="on off" CONCURRENCY="32 8" RUNS=2 bench/serve_table.sh [path/to/llama3]
# Requests per run: REQUESTS_SMALL (200) for up to 2 layers, REQUESTS_LARGE (64) above.
set -euo pipefail
source "$(dirname "$0")/serve_common.sh"
BIN=${1:-build/llama3}
LAYERS=${LAYERS:-"2 16"}
CACHING=${CACHING:-"on off"}
CONCURRENCY=${CONCURRENCY:-"32 8"}
RUNS=${RUNS:-2}
REQUESTS_SMALL=${REQUESTS_SMALL:-200}
REQUESTS_LARGE=${REQUESTS_LARGE:-64}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/llama3-serve-table.XXXXXX)}
mkdir -p "$OUT_DIR"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  server_pid=""
}
trap stop_server EXIT

# CPU time the hypervisor gave to others while a run went on (the 8th field of /proc/stat's cpu
# line, in USER_HZ ticks): on a shared virtual machine the one sign of a disturbed run that no
# process list shows.
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }
hz=$(getconf CLK_TCK)

echo "| layers | prefix caching | C | run | duration s | req/s | output tok/s | total tok/s | TTFT ms mean / p50 / p90 / p99 | TPOT ms mean / p50 / p90 / p99 | ITL ms mean / p50 / p90 / p99 | prefix-cache hit rate | CPU stolen s |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for layers in $LAYERS; do
  requests=$REQUESTS_LARGE
  [ "$layers" -le 2 ] && requests=$REQUESTS_SMALL
  for caching in $CACHING; do
    for c in $CONCURRENCY; do
      for run in $(seq 1 "$RUNS"); do
        log="$OUT_DIR/server-L$layers-$caching-C$c-$run.log"
        flags=()
        [ "$caching" = off ] && flags+=(--no_prefix_caching)
        start_server "$BIN" "$log" --weights random --layers "$layers" --max_seq_len 1024 "${flags[@]}"
        json="$OUT_DIR/L$layers-$caching-C$c-$run.json"
        steal_before=$(steal_ticks)
        "$BIN" bench-serve --port "$port" --requests "$requests" --concurrency "$c" --shared_prefix 256 \
          --prompt_tokens 64,256 --max_tokens 64 --seed 1 --timeout_s 1800 --json "$json" >"$json.txt" 2>&1 ||
          { cat "$json.txt" >&2; exit 1; }
        stolen=$(awk -v a="$steal_before" -v b="$(steal_ticks)" -v hz="$hz" 'BEGIN{printf "%.1f", (b - a) / hz}')
        stop_server
        /usr/bin/env python3 - "$json" "$layers" "$caching" "$c" "$run" "$stolen" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["summary"]
def q(k): return " / ".join(f"{s[k][f]:.0f}" for f in ("mean", "p50", "p90", "p99"))
hit = j["server"].get("prefix_cache_hit_rate", 0.0)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {s['duration_s']:.1f} | "
      f"{s['request_throughput']:.2f} | {s['output_throughput']:.1f} | {s['total_token_throughput']:.0f} | "
      f"{q('ttft_ms')} | {q('tpot_ms')} | {q('itl_ms')} | {hit:.3f} | {sys.argv[6]} |")
assert s["completed"] == s["requests"], f"{s['requests'] - s['completed']} requests did not complete"
assert j["server"].get("idle_at_end", False), "the server was not idle after the run"
EOF
      done
    done
  done
done
echo "runs kept in $OUT_DIR" >&2
