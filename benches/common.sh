# Shared by the benchmark scripts that time newshound's commands (many_feeds.sh,
# many_rules.sh): sourced, not run. Both need `bin` (the binary) and `work` (a
# scratch folder) set.

# measured_bin: the binary to measure: $BIN (another build, for before and after),
# else this checkout's release build, built now.
measured_bin() {
  if [ -n "${BIN:-}" ]; then
    echo "$BIN"
  else
    cargo build --release --quiet
    echo "$PWD/target/release/newshound"
  fi
}

# timed LABEL COMMAND...: runs COMMAND and prints its wall time, peak RSS and the
# end of what it printed.
timed() {
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || true
  read -r wall rss < "$work/time"
  printf '%-18s %7.2f s wall  %7.1f MB peak RSS  %s\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)" "$(tail -c 300 "$work/out" | tail -1 | cut -c1-100)"
}

# page_time CONFIG PORT: runs the daemon on CONFIG (its daemon.listen on PORT) and
# prints the best of 3 times the status page takes to answer, and its size.
page_time() {
  local config=$1 port=$2
  "$bin" run --config "$config" > "$work/run.out" 2>&1 &
  local daemon=$!
  until curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; do
    kill -0 "$daemon" 2>/dev/null || { cat "$work/run.out"; exit 1; }
    sleep 0.2
  done
  local best= t
  for _ in 1 2 3; do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  local size
  size=$(curl -s "http://127.0.0.1:$port/" | wc -c)
  kill -TERM "$daemon"
  wait "$daemon" || true
  printf '%-18s %7.3f s (best of 3, while the daemon runs), %s bytes\n' "status page" "$best" "$size"
}
