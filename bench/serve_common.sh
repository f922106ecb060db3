# Sourced by the serving scripts (serve_table.sh, serve_stress.sh).
# start_server BIN LOG [serve flags...]: starts `BIN serve FLAGS --port 0` in the background with
# its output in LOG, waits until it prints the port it listens on, and sets server_pid and port.
# If the server exits or prints no port within 5 minutes: its log to stderr, and exit 1.
start_server() {
  local bin=$1 log=$2
  shift 2
  "$bin" serve "$@" --port 0 >"$log" 2>&1 &
  server_pid=$!
  port=""
  for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
  done
  echo "the server did not start: $log" >&2
  exit 1
}
