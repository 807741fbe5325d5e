#!/usr/bin/env bash
# Polling cost at scale: N generated feeds (RSS and Atom, 20-50 items, ~40 KB each),
# served by nginx (static files: real ETag / Last-Modified / 304 handling) from 250
# loopback addresses (127.0.x.y, so the per-host limit applies as on the web), and
# one `newshound once` per step: the seed (first ingest: every item recorded, none
# alerted), a steady-state cycle (all 304), a cycle after 10% of the feeds
# changed, and a first ingest on a fresh state with every match alerted by email to
# an SMTP sink on loopback (beside a plain client sending as many messages to the
# same sink). Prints wall time, CPU time, peak RSS and the requests
# nginx answered (200 / 304), the fsyncs of one more steady cycle (strace), and beside them the
# floor on the same files: curl fetching all of them (--parallel, 32 at a time, like
# newshound) and a quick-xml walk of all of them on all cores (benches/xml_floor.rs).
# With TOPIC_RULES=10 the config also has 10 topic rules (the builtin model): run it
# with and without to see what they cost (the new items of "10% changed" carry a
# 60-word summary to embed).
#
#   benches/fetch_cycle.sh            # N = 1000 and 10000
#   benches/fetch_cycle.sh 500        # one N
#   TOPIC_RULES=10 benches/fetch_cycle.sh 1000
#   BIN=/path/to/newshound benches/fetch_cycle.sh 1000   # another build, for before/after
#   SMALL_FEEDS=1 benches/fetch_cycle.sh 100000           # 5-item feeds (~2 KB each)
#
# Needs nginx (Debian: apt-get install nginx-light), curl, strace and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
cargo build --release --quiet
bin=${BIN:-$PWD/target/release/newshound}
cargo bench --quiet --bench xml_floor --no-run 2>/dev/null
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)

for n in "${sizes[@]}"; do
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 benches/make_feeds.py "$work" "$n" "$port"
  mkdir -p "$work/tmp"
  chmod -R a+rX "$work"   # nginx workers run as an unprivileged user
  nginx -c "$work/nginx.conf" -p "$work"
  size=$(du -sh "$work/www" | cut -f1)
  step() {
    local before after ok notmod
    before=$(wc -l < "$work/access.log" 2>/dev/null || echo 0)
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" env ${BENCH_ENV:-} "$bin" once --config "$work/newshound.toml" > "$work/once.out" 2>"$work/once.err" || true
    after=$(wc -l < "$work/access.log")
    ok=$(tail -n +$((before + 1)) "$work/access.log" | awk '$9 == 200' | wc -l)
    notmod=$(tail -n +$((before + 1)) "$work/access.log" | awk '$9 == 304' | wc -l)
    read -r wall user sys rss < <(grep -v "^Command" "$work/time")
    printf '%6d feeds  %-16s %7.2f s wall  %7.2f s CPU  %6.1f MB peak RSS  %6d requests (%d × 200, %d × 304)\n' \
      "$n" "$1" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "$rss / 1024" | bc -l)" $((after - before)) "$ok" "$notmod"
  }
  echo "N = $n ($size of feeds)"
  # The floor: every file fetched in full (200s, so more bytes than newshound's 304s).
  for i in $(seq 0 $((n - 1))); do
    printf 'url = "http://127.0.1.%d:%d/f%d.xml"\noutput = "/dev/null"\n' $((1 + i % 250)) "$port" "$i"
  done > "$work/curl.cfg"
  curl_best=
  for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o "$work/time" curl -s --no-progress-meter --parallel --parallel-max 32 -K "$work/curl.cfg"
    t=$(cat "$work/time")
    if [ -z "$curl_best" ] || [ "$(echo "$t < $curl_best" | bc)" = 1 ]; then curl_best=$t; fi
  done
  printf '%6d feeds  %-16s %7.2f s wall  (best of 3)\n' "$n" "floor: curl" "$curl_best"
  cargo bench --quiet --bench xml_floor -- "$work/www" > "$work/floor" 2>/dev/null
  xml_floor=$(tail -1 "$work/floor" | sed -E 's/.* in ([0-9.]+) s.*/\1/')
  printf '%6d feeds  %-16s %7.2f s wall  (%s)\n' "$n" "floor: quick-xml" "$xml_floor" "$(tail -1 "$work/floor")"
  printf '%6d feeds  %-16s %7.2f s wall  (feed-rs parsing the same files, nothing else)\n' "$n" "feed-rs alone" \
    "$(head -1 "$work/floor" | sed -E 's/.* in ([0-9.]+) s.*/\1/')"
  step "seed"
  seed=$wall
  step "steady (all 304)"
  steady=$wall
  # Times are stored in whole seconds: a cycle within the same second as the last one
  # rewrites identical rows, which SQLite skips, and would show no fsync at all.
  sleep 1
  strace -f -c -e trace=fsync,fdatasync -o "$work/strace" "$bin" once --config "$work/newshound.toml" >"$work/strace.out" 2>&1 || cat "$work/strace.out"
  fsyncs=$(awk '$NF ~ /^f(data)?sync$/ {n += $4} END {print n + 0}' "$work/strace")
  printf '%6d feeds  %-16s %7d fsync/fdatasync calls in one more steady cycle (strace -f -c)\n' "$n" "fsyncs" "$fsyncs"
  printf '%6d feeds  %-16s steady %.2f× the curl fetch, seed %.2f× the quick-xml floor\n' "$n" "ratios" \
    "$(echo "$steady / $curl_best" | bc -l)" "$(echo "$seed / $xml_floor" | bc -l)"
  # 10% of the feeds gain a new item (a new file, so a new ETag).
  python3 - "$work" "$n" <<'PY'
import random, sys
work, n = sys.argv[1], int(sys.argv[2])
base = ("Envoys from Moscow and Washington met for a second day to discuss troop deployments, "
           "missile placement and the alliance's expansion, while officials in both capitals said a "
           "written reply was expected before the next round; markets barely moved and analysts "
           "cautioned that a deal was still months away at best.")
for i in range(0, n, 10):
    # The same words in another order for each feed: 100 different stories on one
    # topic, not copies of one text (which would merge into a single alert).
    words = base.split()
    random.Random(i).shuffle(words)
    summary = " ".join(words)
    path = f"{work}/www/f{i}.xml"
    doc = open(path).read()
    if "<channel>" in doc:
        doc = doc.replace("</title>", f"</title><item><guid>new-{i}</guid><title>NATO update {i}</title><description>{summary}</description></item>", 1)
    else:
        doc = doc.replace("</updated>", f"</updated><entry><id>urn:new:{i}</id><title>NATO update {i}</title><updated>2026-11-28T11:00:00Z</updated><summary>{summary}</summary></entry>", 1)
    open(path, "w").write(doc)
PY
  step "10% changed"
  tail -1 "$work/once.out"
  # First ingest with alerts: a fresh state, every matching item alerted by email to an
  # SMTP sink on loopback (asyncio, no TLS: the relay's own speed is not measured here).
  sink_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 - "$sink_port" "$work/sink.count" <<'PY' &
import asyncio, sys
port, count_file = int(sys.argv[1]), sys.argv[2]
count = 0
async def session(reader, writer):
    global count
    writer.write(b"220 sink\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"DATA":
            writer.write(b"354 go\r\n")
            await reader.readuntil(b"\r\n.\r\n")
            count += 1
            open(count_file, "w").write(str(count))
            writer.write(b"250 ok\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
  sink=$!
  sed -e "s/^state_dir = \"state\"$/state_dir = \"state-alerts\"\nfirst_poll = \"alert\"\n\n[smtp]\nhost = \"localhost\"\nport = $sink_port\nsecurity = \"none\"\nfrom = \"newshound <n@localhost>\"/" \
      -e 's/^type = "maildir"$/type = "email"/' -e 's/^path = "alerts"$/to = ["me@localhost"]/' \
      "$work/newshound.toml" > "$work/alerts.toml"
  while ! (exec 3<>/dev/tcp/127.0.0.1/"$sink_port") 2>/dev/null; do :; done
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$bin" once --config "$work/alerts.toml" > "$work/once.out" 2>"$work/once.err" || true
  read -r wall user sys rss < <(grep -v "^Command" "$work/time")
  printf '%6d feeds  %-16s %7.2f s wall  %7.2f s CPU  %6.1f MB peak RSS  %6s messages at the SMTP sink\n' \
    "$n" "first ingest" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "$rss / 1024" | bc -l)" "$(cat "$work/sink.count" 2>/dev/null || echo 0)"
  tail -1 "$work/once.out"
  ingest=$wall
  # The floor of that step: the seed's fetch, parse and store, beside what a plain
  # client takes to hand as many messages of an alert's size to the same sink.
  count=$(cat "$work/sink.count" 2>/dev/null || echo 0)
  plain=$(python3 - "$sink_port" "$count" <<'PY'
import smtplib, sys, time
from concurrent.futures import ThreadPoolExecutor
port, count = int(sys.argv[1]), int(sys.argv[2])
body = "Subject: [newshound] talks: a title\r\n\r\n" + "x" * 70 + ("\r\n" + "x" * 70) * 20
def send(n):
    with smtplib.SMTP("127.0.0.1", port) as s:
        for _ in range(n):
            s.sendmail("n@localhost", ["me@localhost"], body)
start = time.monotonic()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(send, [count // 8 + (i < count % 8) for i in range(8)]))
print(f"{time.monotonic() - start:.2f}")
PY
)
  printf '%6d feeds  %-16s %7.2f s wall  (smtplib, 8 sessions, %d messages to the same sink)\n' "$n" "floor: delivery" "$plain" "$count"
  printf '%6d feeds  %-16s first ingest %.2f× the seed (%.2f s: the same fetch, parse and store, no alert)\n' "$n" "ratios" \
    "$(echo "$ingest / $seed" | bc -l)" "$seed"
  kill "$sink"
  kill "$(cat "$work/nginx.pid")"
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
done
