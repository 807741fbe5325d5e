#!/usr/bin/env bash
# What the commands that read every feed cost with N feeds (default 100,000): N small
# local feed files (5 items each, file: URLs, so nothing waits on a network), one
# config. Prints the wall time and peak RSS of `check`, of a first `once` (the seed:
# every item recorded, none alerted), of `status` (the summary), `status --all` and
# `status --json`, and the time the status page takes to answer (`run` with
# daemon.listen, asked once its first round of polls is done).
#
#   benches/many_feeds.sh            # N = 100000
#   benches/many_feeds.sh 10000
#
# Needs python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/newshound
n=${1:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$work" "$n" "$port" <<'EOF'
import os, sys
work, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{work}/feeds")
with open(f"{work}/newshound.toml", "w") as config:
    config.write(f'[daemon]\nstate_dir = "state"\nlisten = "127.0.0.1:{port}"\n\n'
                 '[channels.inbox]\ntype = "maildir"\npath = "alerts"\n\n'
                 '[[rules]]\nname = "talks"\nkeywords = ["Lavrov", "NATO"]\nchannels = ["inbox"]\n')
    for i in range(n):
        items = "".join(f"<item><guid>f{i}-{j}</guid><title>Story {j} of feed {i}</title></item>"
                        for j in range(5))
        with open(f"{work}/feeds/f{i}.xml", "w") as f:
            f.write(f'<rss version="2.0"><channel><title>f{i}</title>{items}</channel></rss>')
        config.write(f'\n[[feeds]]\nname = "f{i}"\nurl = "file:feeds/f{i}.xml"\ninterval = "1h"\n')
EOF
config=$work/newshound.toml
timed() {
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || true
  read -r wall rss < "$work/time"
  printf '%-16s %7.2f s wall  %7.1f MB peak RSS  %s\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)" "$(tail -c 300 "$work/out" | tail -1 | cut -c1-100)"
}
echo "N = $n feeds"
timed "check" "$bin" check --config "$config"
timed "once (seed)" "$bin" once --config "$config"
timed "status" "$bin" status --config "$config"
timed "status --all" "$bin" status --all --config "$config"
timed "status --json" "$bin" status --json --config "$config"
"$bin" run --config "$config" > "$work/run.out" 2>&1 &
daemon=$!
until curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; do
  kill -0 "$daemon" 2>/dev/null || { cat "$work/run.out"; exit 1; }
  sleep 0.2
done
best=
for _ in 1 2 3; do
  t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/")
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
done
kill -TERM "$daemon"
wait "$daemon" || true
printf '%-16s %7.3f s (best of 3, while the daemon runs)\n' "status page" "$best"
