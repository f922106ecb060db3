#!/usr/bin/env bash
# Runs every libFuzzer harness (or those named in FUZZ_ONLY) for SECONDS each, one after the
# other, from the committed seeds (fuzz/corpus/<name>) plus a working corpus kept in the build
# folder (new inputs go there, the repository stays clean). Any crash, sanitizer report, leak or
# input slower than 10 s fails the run; the input is saved as BUILD/fuzz-artifacts/<name>-*.
#   fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS}
names=${FUZZ_ONLY:-"safetensors pth gguf tokenizer_files json_inputs server_request image"}
declare -A dict=([json_inputs]=json [server_request]=json [tokenizer_files]=json [safetensors]=json [gguf]=gguf)
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
status=0
for name in $names; do
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1
        -artifact_prefix="$build/fuzz-artifacts/$name-")
  [ -n "${dict[$name]:-}" ] && args+=(-dict="fuzz/dict/${dict[$name]}.dict")
  log="$build/fuzz-logs/$name.log"
  start=$SECONDS
  if "$build/fuzz/fuzz_$name" "${args[@]}" "$work" "fuzz/corpus/$name" > "$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  # libFuzzer's final stats: executions, and the coverage (edges) and features reached.
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  # The time it ran: a finding stops the harness before its SECONDS.
  printf 'fuzz %-16s %-6s %8ss %12s execs  %-22s corpus %s files\n' "$name" "$result" "$((SECONDS - start))" "$execs" \
    "$cov" "$(ls "$work" | wc -l)"
  [ "$result" = ok ] || tail -40 "$log"
done
exit $status
