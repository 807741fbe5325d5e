#!/usr/bin/env bash
# What the tools for tuning rules cost with N rules (default 10,000): N keyword rules
# (each a word of a 20,000-word vocabulary, some never met: dead rules), a filter,
# 1,000 local feed files of 20 items each (file: URLs, nothing waits on a network),
# every match alerted into a Maildir. Prints the wall time and peak RSS of `check`,
# of a first `once` (every item matched, filtered, counted per rule and day), of a
# second `once` after every feed got 5 new items, of `status`, `status --json`,
# `why` (by words of a title), `rules --learned`, and the time the status page (a
# chart per rule, 100 at most) takes to answer while the daemon runs.
#
#   benches/many_rules.sh            # N = 10000
#   benches/many_rules.sh 1000
#   BIN=/path/to/newshound benches/many_rules.sh   # another build, for before/after
#
# Needs python3, curl and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/common.sh
source benches/common.sh
bin=$(measured_bin)
n=${1:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_feeds() {
python3 - "$work" "$1" <<'EOF2'
import os, random, sys
work, round_ = sys.argv[1], int(sys.argv[2])
random.seed(round_)
words = [f"word{k}" for k in range(20000)]
os.makedirs(f"{work}/feeds", exist_ok=True)
for i in range(1000):
    items = "".join(
        f"<item><guid>f{i}-{round_}-{j}</guid><title>{' '.join(random.sample(words, 8))} "
        f"{'sponsored' if j % 10 == 0 else 'story'}</title>"
        f"<description>{' '.join(random.sample(words, 30))}</description></item>"
        for j in range(20 if round_ == 0 else 5))
    with open(f"{work}/feeds/f{i}.xml", "w") as f:
        f.write(f'<rss version="2.0"><channel><title>f{i}</title>{items}</channel></rss>')
EOF2
}
python3 - "$work" "$n" "$port" <<'EOF2'
import sys
work, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/newshound.toml", "w") as config:
    config.write(f'[daemon]\nstate_dir = "state"\nfirst_poll = "alert"\nflood_threshold = 1000\n'
                 f'listen = "127.0.0.1:{port}"\n\n'
                 '[channels.inbox]\ntype = "maildir"\npath = "alerts"\n\n'
                 '[[filters]]\nname = "no ads"\ndrop = "sponsored"\n')
    for i in range(1000):
        config.write(f'\n[[feeds]]\nname = "f{i}"\nurl = "file:feeds/f{i}.xml"\ninterval = "1h"\n')
    for r in range(n):
        # Rules past the vocabulary never match: dead ones.
        config.write(f'\n[[rules]]\nname = "rule-{r}"\nkeywords = ["word{r * 3}"]\nchannels = ["inbox"]\n')
EOF2
write_feeds 0
# The files on disk before anything is timed: their writeback moves the timings.
sync
config=$work/newshound.toml
echo "N = $n rules, 1000 feeds"
timed "check" "$bin" check --config "$config"
timed "once (first)" "$bin" once --config "$config"
write_feeds 1
sync
timed "once (5 new each)" "$bin" once --config "$config"
timed "status" "$bin" status --config "$config"
timed "status --json" "$bin" status --json --config "$config"
title=$(grep -o '<title>word[^<]*' "$work/feeds/f7.xml" | head -1 | cut -d'>' -f2 | cut -d' ' -f1-3)
timed "why (3 words)" "$bin" why "$title" --config "$config"
timed "rules --learned" "$bin" rules --learned --config "$config"
page_time "$config" "$port"
