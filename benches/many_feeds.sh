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
#   BIN=/path/to/newshound benches/many_feeds.sh   # another build, for before/after
#
# Needs python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/common.sh
source benches/common.sh
bin=$(measured_bin)
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
# The files on disk before anything is timed: their writeback moved a seed by a second.
sync
config=$work/newshound.toml
echo "N = $n feeds"
timed "check" "$bin" check --config "$config"
timed "once (seed)" "$bin" once --config "$config"
timed "status" "$bin" status --config "$config"
timed "status --all" "$bin" status --all --config "$config"
timed "status --json" "$bin" status --json --config "$config"
page_time "$config" "$port"
