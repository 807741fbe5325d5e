#!/usr/bin/env bash
# The longer crash run: `kill -9` at random moments over 200 runs (the test suite
# does 50), then checks that every alert arrived at least once and prints the figures.
#
#   benches/crash.sh          # 200 runs
#   benches/crash.sh 500      # another number
set -euo pipefail
cd "$(dirname "$0")/.."
NEWSHOUND_CRASH_RUNS="${1:-200}" cargo test --quiet --test crash -- --nocapture 2>&1 | grep -E "crash test:|panicked|test result"
