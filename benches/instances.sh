#!/usr/bin/env bash
# Several instances on one PostgreSQL against one instance on SQLite: N generated
# feeds (benches/make_feeds.py) served by nginx from 250 loopback addresses, polled by
# `newshound run` every 30 s (the web minimum). For each setup: how long the first
# cycle (every feed fetched and recorded: 200s) and the second (all 304) take from
# their first request to their last, the requests each instance made, and the closest
# two fetches of one feed (none may come within 27 s: 30 s less the ±10% jitter).
#
#   benches/instances.sh            # N = 10000, 3 instances
#   benches/instances.sh 1000 2     # N, instances
#
# Needs nginx (Debian: apt-get install nginx-light), python3, and PostgreSQL at
# $NEWSHOUND_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres),
# where it makes a database of its own and drops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
cargo build --release --quiet
bin=${BIN:-$PWD/target/release/newshound}
n=${1:-10000}
count=${2:-3}
server=${NEWSHOUND_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 benches/make_feeds.py "$work" "$n" "$port"
# Each request with its time in ms and its status.
sed -i "s|  access_log $work/access.log;|  log_format timed '\$msec \$status \$uri';\n  access_log $work/access.log timed;|" "$work/nginx.conf"
mkdir -p "$work/tmp"
chmod -R a+rX "$work"
nginx -c "$work/nginx.conf" -p "$work"
database="newshound_bench_$$"
psql "$server" -qc "CREATE DATABASE $database"
db_url="${server%/*}/$database"
cleanup() {
  kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  pkill -f "$work/" 2>/dev/null || true
  psql "$server" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# Runs `count` instances (with [store] when `url` is set) until every feed has been
# fetched twice, then prints the figures.
setup() {
  local label=$1 instances=$2 url=$3 i
  : > "$work/access.log"
  for i in $(seq 0 $((instances - 1))); do
    {
      printf '[daemon]\nstate_dir = "state-%s-%d"\npoll_interval = "30s"\ninstance = "i%d"\n' "$label" "$i" "$i"
      [ -n "$url" ] && printf '\n[store]\nurl = "%s"\n' "$url"
      sed -e '1,2d' "$work/newshound.toml"
    } > "$work/$label-$i.toml"
    RUST_LOG=newshound=debug "$bin" run --config "$work/$label-$i.toml" 2> "$work/$label-$i.log" &
  done
  while [ "$(wc -l < "$work/access.log")" -lt $((2 * n)) ]; do sleep 1; done
  pkill -f "$work/$label-" || true
  wait 2>/dev/null || true
  python3 - "$work" "$label" "$instances" "$n" <<'PY'
import collections, re, sys
work, label, instances, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fetches = collections.defaultdict(list)
by_status = collections.defaultdict(list)
for line in open(f"{work}/access.log"):
    t, status, uri = line.split()
    fetches[uri].append(float(t))
    by_status[status].append(float(t))
def span(times):
    return max(times) - min(times) if times else 0.0
gaps = [b - a for times in fetches.values() for a, b in zip(sorted(times), sorted(times)[1:])]
shares = []
for i in range(instances):
    log = open(f"{work}/{label}-{i}.log", errors="replace").read()
    shares.append(len(re.findall(r"\bpolled\b", log)))
print(f"{label:>22}: {n} feeds, {instances} instance(s): first cycle {span(by_status['200']):.2f} s "
      f"({len(by_status['200'])} × 200), second {span(by_status['304']):.2f} s ({len(by_status['304'])} × 304); "
      f"polls per instance {shares}; closest two fetches of one feed {min(gaps):.1f} s apart, "
      f"{sum(g < 27 for g in gaps)} within 27 s")
PY
}

setup "postgres" "$count" "$db_url"
setup "sqlite" 1 ""
