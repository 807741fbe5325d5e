#!/usr/bin/env bash
# A backup taken in the middle of a 1,000-feed cycle, restored: N generated feeds
# served by nginx from loopback (benches/make_feeds.py), one `newshound once` with
# `first_poll = "alert"` (every match alerted into a Maildir), and `newshound backup`
# run while that cycle polls and delivers. Then the daemon's state is replaced with
# the backup (`restore`), `status` reads it, and one more `once` runs on it.
#
# Prints how long the backup took and what it holds, whether the cycle was still
# running when it finished, the same for a backup of the whole state once the cycle
# is over, and after the restore of the first: whether `status` read the state,
# alerts queued again for items the backup had already seen (must be 0), alerts
# queued for items first seen after the backup (they are new to the restored state),
# and the Maildir's file count before and after (a re-sent alert replaces its own
# file: its name comes from the Message-ID).
#
#   benches/backup.sh          # N = 1000
#   benches/backup.sh 5000
#
# Needs nginx (Debian: apt-get install nginx-light) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
cargo build --release --quiet
bin=$PWD/target/release/newshound
n=${1:-1000}

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 benches/make_feeds.py "$work" "$n" "$port"
mkdir -p "$work/tmp"
chmod -R a+rX "$work"
nginx -c "$work/nginx.conf" -p "$work"
trap 'nginx -c "$work/nginx.conf" -p "$work" -s stop; rm -rf "$work"' EXIT
sed -i 's/^state_dir = "state"$/state_dir = "state"\nfirst_poll = "alert"/' "$work/newshound.toml"
config=$work/newshound.toml
db=$work/state/newshound.db

"$bin" once --config "$config" > "$work/once.out" 2> "$work/once.err" &
cycle=$!
# The backup starts once the cycle has committed its first polls.
until [ -f "$db" ] && python3 - "$db" <<'EOF'
import sqlite3, sys
n = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT count(*) FROM seen_item").fetchone()[0]
sys.exit(0 if n > 0 else 1)
EOF
do
  kill -0 "$cycle" 2>/dev/null || { echo "the cycle ended before anything was recorded"; exit 1; }
  sleep 0.05
done
start=$(date +%s.%N)
"$bin" backup "$work/backup.db" --config "$config" > "$work/backup.out"
took=$(echo "$(date +%s.%N) - $start" | bc)
running=no
kill -0 "$cycle" 2>/dev/null && running=yes
wait "$cycle"
echo "N = $n feeds"
printf 'backup: %.2f s, %s; the cycle still running when it finished: %s\n' "$took" "$(sed -E 's/^backed up //; s/ to [^ ]+$//' "$work/backup.out")" "$running"
before=$(ls "$work/alerts/new" | wc -l)
start=$(date +%s.%N)
"$bin" backup "$work/whole.db" --config "$config" > "$work/whole.out"
printf 'backup of the whole state after the cycle: %.2f s, %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$(sed -E 's/^backed up //; s/ to [^ ]+$//' "$work/whole.out")"

"$bin" restore "$work/backup.db" --config "$config" > "$work/restore.out"
status=ok
"$bin" status --config "$config" > "$work/status.out" 2>&1 || status="failed: $(tail -1 "$work/status.out")"
restored_at=$(date +%s)
"$bin" once --config "$config" > "$work/once2.out" 2> "$work/once2.err" || true
after=$(ls "$work/alerts/new" | wc -l)
python3 - "$db" "$work/backup.db" "$restored_at" "$status" "$before" "$after" <<'EOF'
import sqlite3, sys
db, backup, restored_at, status, before, after = sys.argv[1:]
conn = sqlite3.connect(db)
conn.execute("ATTACH DATABASE ? AS backup", (backup,))
again = conn.execute(
    "SELECT count(*) FROM outbox o WHERE o.created >= ? AND EXISTS "
    "(SELECT 1 FROM backup.seen_item s WHERE s.feed = o.feed AND s.item_key = o.item_key)",
    (int(restored_at),)).fetchone()[0]
later = conn.execute("SELECT count(*) FROM outbox WHERE created >= ?", (int(restored_at),)).fetchone()[0]
pending = conn.execute("SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]
print(f"after the restore: status {status}; alerts queued again for items the backup had seen: {again}; "
      f"for items first seen after it: {later - again}; left undelivered: {pending}; "
      f"Maildir files {before} before, {after} after")
EOF
